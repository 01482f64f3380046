"""The supplier credit file (R-I3): manual events, events derived from the purchase facts, sanctions.

Derivation (``do_derive_credit_events``) reads the scope's purchase lines through ``FactQuery`` and, per
calendar month of the period, writes:

* ``late_delivery`` — one event per company × institution × product × delivery month with at least one
  line delivered more than ``late_days`` after it was ordered (``policy.supply.is_late``); severity from
  the worst delay (``late_delivery_severity``), the figures (lines, late lines, worst delay) in
  ``metrics``;
* ``shortage`` — one event per company × institution × order month whose fill rate falls below the
  target (``fill_rate_severity``). The purchase facts carry one quantity per line and no separate
  ordered quantity, so the fill rate is **lines accepted ÷ lines ordered** (a line counts as filled once
  it has an acceptance date); the quantity-weighted rate (quantity of accepted lines ÷ quantity of
  ordered lines) is kept in ``metrics`` beside it. Lines ordered fewer than ``late_days`` days before
  the derivation date are not yet due and are left out.

A line is attributed to the company named as its distributor (``Company.name`` = ``distributor``);
when the distributor is blank or not a known company, to the winning company of its product
(``SelectedProduct.company``); otherwise it is counted as unmatched. Re-deriving a period deletes the
derived events of its months in the acting scope's territory and writes them afresh, so the result
never depends on how often it ran; manual and incident events are never touched.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jicai.catalog.models import Product
from jicai.core import audit
from jicai.core.tenancy import Level, Scope, ScopeError, use_scope
from jicai.facts.query import FactQuery
from jicai.organizations.models import Company, Institution
from jicai.policy.supply import (
    DEFAULT_DELIVERY,
    DeliveryParams,
    Period,
    fill_rate_severity,
    late_delivery_severity,
    parse_period,
    rate,
)
from jicai.programme.models import SelectedProduct
from jicai.supply import lookups
from jicai.supply import permissions as perms
from jicai.supply.common import WorkflowError, audited, changed, fields_of, require
from jicai.supply.models import CreditEvent, CreditKind, CreditSource, Sanction, SanctionKind, Severity

EVENT_AUDITED = ("company", "kind", "occurred_on", "institution", "region_code", "product", "description", "severity")
SANCTION_AUDITED = (
    "company",
    "kind",
    "decided_on",
    "region_code",
    "batch",
    "item",
    "backup_company",
    "amount",
    "note",
)

# --------------------------------------------------------------------------------------------------
# Manual events


@dataclass(frozen=True)
class CreditInput:
    company: str
    kind: str
    occurred_on: dt.date
    severity: str = Severity.MINOR
    description: str = ""
    institution_code: str = ""
    product_code: str = ""
    region_code: str = ""


def resolve_credit_event(acting: Scope, data: CreditInput) -> dict[str, Any]:
    """Fields of a manual credit event (inside ``use_scope(acting)``); raises WorkflowError."""
    if data.kind not in CreditKind.values:
        raise WorkflowError("事件类型不是可选值", "unknown kind", "value.choice", "kind")
    if data.severity not in Severity.values:
        raise WorkflowError("严重程度应为“一般”“较重”或“严重”", "unknown severity", "value.choice", "severity")
    company = lookups.company(data.company)
    institution = lookups.institution(acting, data.institution_code)
    region_code = lookups.region_of(acting, institution, data.region_code)
    product = lookups.product(data.product_code) if data.product_code.strip() else None
    return {
        "company": company,
        "kind": data.kind,
        "occurred_on": data.occurred_on,
        "institution": institution,
        "region_code": region_code,
        "product": product,
        "description": data.description.strip(),
        "severity": data.severity,
    }


def do_record_credit_event(acting: Scope, data: CreditInput) -> CreditEvent:
    """Enter an event in a company's credit file (XJ 四.3: shortages, near-expiry deliveries, unsuitable
    packs and other problems, fed back by the pharmacy)."""
    require(acting, perms.CREDIT, "write")
    with use_scope(acting), transaction.atomic():
        fields = resolve_credit_event(acting, data)
        event = CreditEvent(**fields, source=CreditSource.MANUAL, created_by_id=acting.actor_id)
        event.save()
        audited(acting, "create", event, new=fields_of(event, EVENT_AUDITED))
    return event


def do_update_credit_event(acting: Scope, event_id: int, data: CreditInput) -> CreditEvent:
    """Correct a manual event; derived and incident events follow their sources and are not edited."""
    require(acting, perms.CREDIT, "write")
    with use_scope(acting), transaction.atomic():
        event: CreditEvent | None = CreditEvent.objects.select_for_update().filter(pk=event_id).first()
        if event is None:
            raise ScopeError(f"no credit event {event_id} in scope")
        if event.source != CreditSource.MANUAL:
            raise WorkflowError(
                "由采购数据或供应事件生成的记录不能手工修改",
                "derived and incident events cannot be edited",
                "credit.not_manual",
            )
        old = fields_of(event, EVENT_AUDITED)
        for name, value in resolve_credit_event(acting, data).items():
            setattr(event, name, value)
        event.save()
        before, after = changed(old, fields_of(event, EVENT_AUDITED))
        if after:
            audited(acting, "update", event, old=before, new=after)
    return event


# --------------------------------------------------------------------------------------------------
# Derived events


@dataclass
class DeriveResult:
    period: str
    months: tuple[str, ...]
    removed: int = 0
    late_events: int = 0
    shortage_events: int = 0
    unmatched_lines: int = 0
    unknown_institutions: list[str] = field(default_factory=list)

    @property
    def created(self) -> int:
        return self.late_events + self.shortage_events


_LINES = """
    SELECT p.institution_code, p.product_code, p.ordered_on, p.delivered_on, p.accepted_on, p.qty,
           coalesce(d.company_id, pc.company_id) AS company_id,
           strftime(p.delivered_on, '%Y-%m') AS delivered_month,
           strftime(p.ordered_on, '%Y-%m') AS ordered_month,
           date_diff('day', p.ordered_on, p.delivered_on) AS days
    FROM purchases p
    LEFT JOIN supply_distributor_company d ON d.distributor = p.distributor
    LEFT JOIN supply_product_company pc ON pc.product_code = p.product_code
"""

LATE_SQL = f"""
    WITH lines AS ({_LINES}
        WHERE p.ordered_on IS NOT NULL AND p.delivered_on BETWEEN $start AND $end
    )
    SELECT company_id, institution_code, product_code, delivered_month AS month,
           count(*) AS lines,
           count(*) FILTER (WHERE days > $late) AS late_lines,
           max(days) FILTER (WHERE days > $late) AS max_days,
           max(delivered_on) FILTER (WHERE days > $late) AS last_late
    FROM lines WHERE company_id IS NOT NULL
    GROUP BY ALL HAVING count(*) FILTER (WHERE days > $late) > 0
"""  # noqa: S608 - assembled from this module's constants; values are bound parameters

FILL_SQL = f"""
    WITH lines AS ({_LINES}
        WHERE p.ordered_on BETWEEN $start AND $end AND p.ordered_on <= $due
    )
    SELECT company_id, institution_code, ordered_month AS month,
           count(*) AS ordered_lines,
           count(*) FILTER (WHERE accepted_on IS NOT NULL) AS accepted_lines,
           sum(qty) AS ordered_qty,
           coalesce(sum(qty) FILTER (WHERE accepted_on IS NOT NULL), 0) AS accepted_qty,
           count(DISTINCT product_code) AS products,
           min(product_code) AS product_code,
           max(ordered_on) AS last_order
    FROM lines WHERE company_id IS NOT NULL
    GROUP BY ALL
"""  # noqa: S608

UNMATCHED_SQL = f"""
    WITH lines AS ({_LINES}
        WHERE (p.delivered_on BETWEEN $start AND $end) OR (p.ordered_on BETWEEN $start AND $end)
    )
    SELECT count(*) AS n FROM lines WHERE company_id IS NULL
"""  # noqa: S608


def register_company_maps(q: FactQuery) -> None:
    """Distributor name → company and product → winning company, as relations for the SQL."""
    distributors = [r["distributor"] for r in q.rows("SELECT DISTINCT distributor FROM purchases") if r["distributor"]]
    named: dict[str, int] = {}
    for start in range(0, len(distributors), 500):
        chunk = distributors[start : start + 500]
        named.update(dict(Company.objects.filter(name__in=chunk).values_list("name", "pk")))
    by_product: dict[str, int] = {}
    for code, company_id in SelectedProduct.objects.order_by("pk").values_list("product__code", "company_id"):
        by_product.setdefault(code, company_id)
    q.register(
        "supply_distributor_company",
        [{"distributor": k, "company_id": v} for k, v in named.items()],
        schema=pa.schema([("distributor", pa.string()), ("company_id", pa.int64())]),
    )
    q.register(
        "supply_product_company",
        [{"product_code": k, "company_id": v} for k, v in by_product.items()],
        schema=pa.schema([("product_code", pa.string()), ("company_id", pa.int64())]),
    )


def _late_event(row: dict[str, Any], params: DeliveryParams) -> dict[str, Any]:
    return {
        "company_id": row["company_id"],
        "kind": CreditKind.LATE_DELIVERY,
        "occurred_on": row["last_late"],
        "product_code": row["product_code"],
        "institution_code": row["institution_code"],
        "severity": late_delivery_severity(int(row["max_days"]), params).value,
        "period": row["month"],
        "description": (
            f"{row['month']} 共配送 {row['lines']} 行，其中 {row['late_lines']} 行超过下单后 "
            f"{params.late_days} 天送达，最长 {row['max_days']} 天"
        ),
        "metrics": {
            "lines": int(row["lines"]),
            "late_lines": int(row["late_lines"]),
            "max_days": int(row["max_days"]),
            "late_days": params.late_days,
        },
    }


def _shortage_event(row: dict[str, Any], params: DeliveryParams) -> dict[str, Any] | None:
    fill = rate(int(row["accepted_lines"]), int(row["ordered_lines"]))
    severity = fill_rate_severity(fill, params) if fill is not None else None
    if fill is None or severity is None:
        return None
    qty_fill = rate(Decimal(row["accepted_qty"]), Decimal(row["ordered_qty"]))
    return {
        "company_id": row["company_id"],
        "kind": CreditKind.SHORTAGE,
        "occurred_on": row["last_order"],
        "product_code": row["product_code"] if row["products"] == 1 else None,
        "institution_code": row["institution_code"],
        "severity": severity.value,
        "period": row["month"],
        "description": (
            f"{row['month']} 下单 {row['ordered_lines']} 行，验收 {row['accepted_lines']} 行，"
            f"到货率 {fill:.2%}（低于 {params.fill_rate_target:.0%}）"
        ),
        "metrics": {
            "ordered_lines": int(row["ordered_lines"]),
            "accepted_lines": int(row["accepted_lines"]),
            "fill_rate": str(fill),
            "ordered_qty": str(row["ordered_qty"]),
            "accepted_qty": str(row["accepted_qty"]),
            "qty_fill_rate": str(qty_fill) if qty_fill is not None else None,
            "target": str(params.fill_rate_target),
        },
    }


def derive_rows(
    q: FactQuery, period: Period, params: DeliveryParams, as_of: dt.date
) -> tuple[list[dict[str, Any]], int]:
    """The derived events of ``period`` (as dicts with codes) and the number of unmatched lines."""
    register_company_maps(q)
    values = {"start": period.start, "end": period.end, "late": params.late_days}
    late = [_late_event(r, params) for r in _fetch(q, LATE_SQL, values)]
    due = as_of - dt.timedelta(days=params.late_days)
    window = {"start": period.start, "end": period.end}
    shortages = [_shortage_event(r, params) for r in _fetch(q, FILL_SQL, {**window, "due": due})]
    unmatched = int(_fetch(q, UNMATCHED_SQL, window)[0]["n"])
    return [*late, *(s for s in shortages if s is not None)], unmatched


def _fetch(q: FactQuery, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    cursor = q.con.execute(sql, params)
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def do_derive_credit_events(
    acting: Scope,
    period_label: str,
    *,
    params: DeliveryParams = DEFAULT_DELIVERY,
    as_of: dt.date | None = None,
    home: Path | None = None,
) -> DeriveResult:
    """Replace the derived late-delivery and shortage events of ``period_label`` (2026, 2026Q1, 2026-03)."""
    require(acting, perms.CREDIT, "manage")
    if not acting.is_system and acting.level is not Level.REGION:
        raise ScopeError("deriving the credit file is a bureau's task")
    try:
        period = parse_period(period_label)
    except ValueError:
        raise WorkflowError(
            "期间格式应为 2026、2026Q1 或 2026-03", "period is 2026, 2026Q1 or 2026-03", "period.format", "period"
        ) from None
    as_of = as_of or timezone.localdate()
    result = DeriveResult(period=period.label, months=period.months())
    with use_scope(acting), transaction.atomic():
        with FactQuery(home or Path(settings.JICAI_HOME), acting) as q:
            rows, result.unmatched_lines = derive_rows(q, period, params, as_of)
        codes = sorted({r["institution_code"] for r in rows})
        institutions = {
            code: (pk, region)
            for code, pk, region in Institution.objects.filter(code__in=codes).values_list("code", "pk", "region_code")
        }
        result.unknown_institutions = [c for c in codes if c not in institutions]
        products = dict(
            Product.objects.filter(code__in={r["product_code"] for r in rows if r["product_code"]}).values_list(
                "code", "pk"
            )
        )
        removed, _ = CreditEvent.objects.filter(source=CreditSource.DERIVED, period__in=result.months).delete()
        result.removed = removed
        events = []
        for row in rows:
            if row["institution_code"] not in institutions:
                continue
            inst_pk, region = institutions[row["institution_code"]]
            events.append(
                CreditEvent(
                    company_id=row["company_id"],
                    kind=row["kind"],
                    occurred_on=row["occurred_on"],
                    institution_id=inst_pk,
                    region_code=region,
                    product_id=products.get(row["product_code"]) if row["product_code"] else None,
                    description=row["description"],
                    severity=row["severity"],
                    source=CreditSource.DERIVED,
                    period=row["period"],
                    metrics=row["metrics"],
                    created_by_id=acting.actor_id,
                )
            )
        CreditEvent.objects.bulk_create(events, batch_size=1000)
        result.late_events = sum(1 for e in events if e.kind == CreditKind.LATE_DELIVERY)
        result.shortage_events = sum(1 for e in events if e.kind == CreditKind.SHORTAGE)
        audit.record(
            acting,
            [
                audit.Change(
                    "derive",
                    CreditEvent._meta.label,
                    "",
                    f"derived {period.label}",
                    None,
                    {
                        "removed": result.removed,
                        "late_delivery": result.late_events,
                        "shortage": result.shortage_events,
                        "unmatched_lines": result.unmatched_lines,
                    },
                    {
                        "period": period.label,
                        "months": list(result.months),
                        "as_of": as_of,
                        "late_days": params.late_days,
                        "fill_rate_target": params.fill_rate_target,
                    },
                )
            ],
        )
    return result


# --------------------------------------------------------------------------------------------------
# Sanctions


@dataclass(frozen=True)
class SanctionInput:
    company: str
    kind: str
    decided_on: dt.date
    note: str = ""
    batch_code: str = ""
    item_code: str = ""
    backup_company: str = ""
    amount: Decimal | None = None
    region_code: str = ""


def resolve_sanction(acting: Scope, data: SanctionInput) -> dict[str, Any]:
    if data.kind not in SanctionKind.values:
        raise WorkflowError("措施类型不是可选值", "unknown sanction kind", "value.choice", "kind")
    company = lookups.company(data.company)
    batch = lookups.batch(data.batch_code) if data.batch_code.strip() else None
    if data.item_code.strip() and batch is None:
        raise WorkflowError("填写品种时请同时填写批次", "an item needs its batch", "value.required", "batch_code")
    item = lookups.item(batch, data.item_code) if batch is not None and data.item_code.strip() else None
    backup = lookups.company(data.backup_company, "backup_company") if data.backup_company.strip() else None
    if data.kind in (SanctionKind.BACKUP_SUPPLIER, SanctionKind.EMERGENCY_SUPPLY) and backup is None:
        raise WorkflowError(
            "备选或应急保障措施请填写承担供应的企业", "name the backup supplier", "value.required", "backup_company"
        )
    if data.amount is not None and data.amount < 0:
        raise WorkflowError("赔偿金额不能为负数", "amount must not be negative", "decimal.negative", "amount")
    return {
        "company": company,
        "kind": data.kind,
        "decided_on": data.decided_on,
        "region_code": lookups.region_of(acting, None, data.region_code),
        "batch": batch,
        "item": item,
        "backup_company": backup,
        "amount": data.amount,
        "note": data.note.strip(),
    }


def do_record_sanction(acting: Scope, data: SanctionInput) -> Sanction:
    """A bureau's measure against a supplier that did not supply as contracted (JL 三(八), CQ 二(六))."""
    require(acting, perms.SANCTION, "write")
    with use_scope(acting), transaction.atomic():
        sanction = Sanction(**resolve_sanction(acting, data), decided_by_id=acting.actor_id)
        sanction.save()
        audited(acting, "create", sanction, new=fields_of(sanction, SANCTION_AUDITED))
    return sanction


def do_update_sanction(acting: Scope, sanction_id: int, data: SanctionInput) -> Sanction:
    require(acting, perms.SANCTION, "write")
    with use_scope(acting), transaction.atomic():
        sanction: Sanction | None = Sanction.objects.select_for_update().filter(pk=sanction_id).first()
        if sanction is None:
            raise ScopeError(f"no sanction {sanction_id} in scope")
        old = fields_of(sanction, SANCTION_AUDITED)
        for name, value in resolve_sanction(acting, data).items():
            setattr(sanction, name, value)
        sanction.save()
        before, after = changed(old, fields_of(sanction, SANCTION_AUDITED))
        if after:
            audited(acting, "update", sanction, old=before, new=after)
    return sanction
