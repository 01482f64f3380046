"""Reads of the supply registers: filtered lists, the engine's interruption inputs, credit scores, the
distributor scorecard and the low-stock list. Everything runs under the caller's scope.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Coalesce

from jicai.core.tenancy import Scope, region_prefix, use_scope
from jicai.facts.query import FactQuery
from jicai.monitoring.substitutes import INTERRUPTION_SCHEMA
from jicai.organizations.models import Company, Institution
from jicai.policy.supply import (
    DEFAULT_CREDIT,
    DEFAULT_DELIVERY,
    STOCK_COVER_ALERT_MONTHS,
    CreditParams,
    CreditScore,
    DayInterval,
    DeliveryParams,
    Period,
    clip_and_merge,
    credit_score,
    rate,
)
from jicai.programme.models import Agreement, SelectedProduct
from jicai.supply.models import (
    CreditEvent,
    IncidentKind,
    IncidentStatus,
    Sanction,
    SupplyIncident,
    SupplyReport,
)

# --------------------------------------------------------------------------------------------------
# List filters: (GET parameter → lookup) and sort keys per register; unknown values are ignored.


def _apply(qs: QuerySet[Any], params: Mapping[str, str], filters: Mapping[str, str], search: tuple[str, ...]) -> Any:
    for name, lookup in filters.items():
        value = (params.get(name) or "").strip()
        if value:
            qs = qs.filter(**{lookup: value})
    text = (params.get("q") or "").strip()
    if text and search:
        condition = Q()
        for path in search:
            condition |= Q(**{f"{path}__icontains": text})
        qs = qs.filter(condition)
    return qs


def _sorted(qs: QuerySet[Any], params: Mapping[str, str], keys: Mapping[str, str]) -> QuerySet[Any]:
    sort = (params.get("sort") or "").strip()
    if sort.lstrip("-") in keys:
        field = keys[sort.lstrip("-")]
        return qs.order_by(f"-{field}" if sort.startswith("-") else field, "-pk")
    return qs


INCIDENT_FILTERS = {
    "status": "status",
    "kind": "kind",
    "batch": "batch__code",
    "item": "item__item_code",
    "institution": "institution__code",
    "region": "region_code__startswith",
}
INCIDENT_SORTS = {"start_on": "start_on", "end_on": "end_on", "status": "status", "reported_at": "reported_at"}


def incidents(params: Mapping[str, str]) -> QuerySet[SupplyIncident]:
    """The incidents in scope matching the list's filters (``open=1``, ``malicious=1`` besides the fields)."""
    qs = SupplyIncident.objects.select_related("batch", "item", "institution", "company", "selected__product")
    qs = _apply(qs, params, INCIDENT_FILTERS, ("cause", "item__generic_name", "institution__name", "company__name"))
    if params.get("open") == "1":
        qs = qs.filter(status__in=(IncidentStatus.REPORTED, IncidentStatus.CONFIRMED), end_on__isnull=True)
    if params.get("malicious") == "1":
        qs = qs.filter(malicious=True)
    if params.get("region_wide") == "1":
        qs = qs.filter(institution__isnull=True)
    return _sorted(qs, params, INCIDENT_SORTS)


def flagged_incidents() -> QuerySet[SupplyIncident]:
    """Malicious interruptions flagged to the bureau, newest flag first (XJ 五(二)2)."""
    return (
        SupplyIncident.objects.select_related("batch", "item", "institution", "company", "malicious_flagged_by")
        .filter(malicious=True)
        .order_by("-malicious_flagged_at", "-pk")
    )


# --------------------------------------------------------------------------------------------------
# The engine's inputs: interruptions on record and the days they affect (R-I2)

EXEMPTING_STATUSES = (IncidentStatus.CONFIRMED, IncidentStatus.CLOSED)
"""Incidents that exempt purchases: confirmed by the bureau (still open or closed since)."""
EXEMPTING_KINDS = (IncidentKind.INTERRUPTION, IncidentKind.SHORTAGE)
"""Both an interruption and a shortage of the selected product allow non-selected purchases."""


def open_interruptions(
    scope: Scope | None,
    as_of: dt.date,
    *,
    include_reported: bool = False,
    kinds: tuple[str, ...] = EXEMPTING_KINDS,
) -> pa.Table:
    """Supply interruptions on record on ``as_of``, as ``jicai.monitoring.substitutes.substitutes`` reads
    them (its ``INTERRUPTION_SCHEMA``: batch_code, item_code, institution_code, start, end).

    One row per incident that started on or before ``as_of`` and is confirmed or closed (with
    ``include_reported`` also those still awaiting the bureau; rejected ones never): ``end`` NULL while
    it is open, else its end date; ``institution_code`` NULL for an incident covering the whole region
    of the batch. A region-wide incident of a narrower region (a city inside a provincial round) becomes
    one row per institution of that region inside the scope, because the engine reads a NULL
    institution as every institution of the round. ``scope`` None is the system scope (the cycle).
    """
    scope = scope or Scope.system("supply")
    statuses = [*EXEMPTING_STATUSES, *([IncidentStatus.REPORTED] if include_reported else [])]
    with use_scope(scope):
        rows = list(
            SupplyIncident.objects.filter(status__in=statuses, kind__in=kinds, start_on__lte=as_of)
            .order_by("batch__code", "item__item_code", "start_on", "pk")
            .values_list(
                "batch__code",
                "batch__region_code",
                "item__item_code",
                "institution__code",
                "region_code",
                "start_on",
                "end_on",
            )
        )
        narrower = sorted(
            {
                region
                for _, batch_region, _, inst, region, _, _ in rows
                if inst is None and not region_prefix(batch_region).startswith(region_prefix(region))
            }
        )
        members = {
            region: list(
                Institution.objects.filter(region_code__startswith=region_prefix(region))
                .order_by("code")
                .values_list("code", flat=True)
            )
            for region in narrower
        }
    out: list[dict[str, Any]] = []
    for batch, batch_region, item, inst, region, start, end in rows:
        whole = inst is None and region_prefix(batch_region).startswith(region_prefix(region))
        codes: list[str | None] = [None] if whole else [inst] if inst is not None else list(members[region])
        out += [
            {"batch_code": batch, "item_code": item, "institution_code": code, "start": start, "end": end}
            for code in codes
        ]
    return pa.Table.from_pylist(out, schema=INTERRUPTION_SCHEMA)


AFFECTED_DAYS_SCHEMA = pa.schema(
    [
        ("agreement_id", pa.int64()),
        ("batch_code", pa.string()),
        ("item_code", pa.string()),
        ("institution_code", pa.string()),
        ("year", pa.int64()),
        ("period_start", pa.date32()),
        ("period_end", pa.date32()),
        ("start_on", pa.date32()),
        ("end_on", pa.date32()),
        ("days", pa.int64()),
    ]
)
"""One row per agreement year × affected interval: the interruptions on record for the agreement's
institution (its own or region-wide) and item, clipped to period_start … min(period_end, as_of) and
merged where they overlap or touch, so the intervals of one agreement never overlap and ``days``
sums to its affected days."""


def affected_intervals(scope: Scope | None, as_of: dt.date, **kw: Any) -> dict[int, tuple[DayInterval, ...]]:
    """Agreement id → its affected day intervals (see ``AFFECTED_DAYS_SCHEMA``); agreements without
    any affected day are left out. ``kw`` as for ``open_interruptions``."""
    return {row["agreement_id"]: row["intervals"] for row in _affected(scope, as_of, **kw)}


def affected_days(scope: Scope | None, as_of: dt.date, **kw: Any) -> pa.Table:
    """The affected days per agreement year as an Arrow table (``AFFECTED_DAYS_SCHEMA``), for the
    progress computation to show completion with and without them (``policy.supply.adjusted_completion``)."""
    out = []
    for row in _affected(scope, as_of, **kw):
        for interval in row["intervals"]:
            out.append(
                {
                    **{k: row[k] for k in ("agreement_id", "batch_code", "item_code", "institution_code", "year")},
                    "period_start": row["period_start"],
                    "period_end": row["period_end"],
                    "start_on": interval.start,
                    "end_on": interval.end,
                    "days": interval.days,
                }
            )
    return pa.Table.from_pylist(out, schema=AFFECTED_DAYS_SCHEMA)


def _affected(scope: Scope | None, as_of: dt.date, **kw: Any) -> list[dict[str, Any]]:
    scope = scope or Scope.system("supply")
    breaks: dict[tuple[str, str], list[tuple[str | None, dt.date, dt.date | None]]] = defaultdict(list)
    for row in open_interruptions(scope, as_of, **kw).to_pylist():
        breaks[row["batch_code"], row["item_code"]].append((row["institution_code"], row["start"], row["end"]))
    if not breaks:
        return []
    with use_scope(scope):
        agreements = list(
            Agreement.objects.filter(
                batch__code__in={b for b, _ in breaks},
                item__item_code__in={i for _, i in breaks},
                period_start__lte=as_of,
            )
            .order_by("batch__code", "item__item_code", "institution__code", "year")
            .values_list(
                "pk", "batch__code", "item__item_code", "institution__code", "year", "period_start", "period_end"
            )
        )
    out = []
    for pk, batch, item, inst, year, start, end in agreements:
        spans = [(s, e) for code, s, e in breaks.get((batch, item), ()) if code is None or code == inst]
        intervals = clip_and_merge(spans, start, min(end, as_of))
        if intervals:
            out.append(
                {
                    "agreement_id": pk,
                    "batch_code": batch,
                    "item_code": item,
                    "institution_code": inst,
                    "year": year,
                    "period_start": start,
                    "period_end": end,
                    "intervals": intervals,
                }
            )
    return out


# --------------------------------------------------------------------------------------------------
# Credit file


CREDIT_FILTERS = {
    "kind": "kind",
    "severity": "severity",
    "source": "source",
    "company": "company__name",
    "institution": "institution__code",
    "from": "occurred_on__gte",
    "to": "occurred_on__lte",
}
CREDIT_SORTS = {"occurred_on": "occurred_on", "kind": "kind", "severity": "severity", "company": "company__name"}


def credit_events(params: Mapping[str, str]) -> QuerySet[CreditEvent]:
    qs = CreditEvent.objects.select_related("company", "institution", "product")
    qs = _apply(qs, params, CREDIT_FILTERS, ("company__name", "description", "product__generic_name"))
    return _sorted(qs, params, CREDIT_SORTS)


SANCTION_FILTERS = {"kind": "kind", "company": "company__name", "from": "decided_on__gte", "to": "decided_on__lte"}
SANCTION_SORTS = {"decided_on": "decided_on", "kind": "kind", "company": "company__name"}


def sanctions(params: Mapping[str, str]) -> QuerySet[Sanction]:
    qs = Sanction.objects.select_related("company", "batch", "item", "backup_company", "decided_by")
    qs = _apply(qs, params, SANCTION_FILTERS, ("company__name", "note"))
    return _sorted(qs, params, SANCTION_SORTS)


@dataclass(frozen=True)
class CompanyScore:
    company_id: int
    name: str
    score: CreditScore
    sanctions: int
    rank: int = 0


def credit_scores(period: Period, params: CreditParams = DEFAULT_CREDIT, *, search: str = "") -> list[CompanyScore]:
    """Every company with an event in ``period`` or a selected product in scope, best score first
    (ties by name), ranked 1, 2, … (equal scores share a rank)."""
    counts: dict[int, dict[tuple[str, str], int]] = defaultdict(dict)
    for company_id, kind, severity, n in (
        CreditEvent.objects.filter(occurred_on__range=(period.start, period.end))
        .values("company_id", "kind", "severity")
        .annotate(n=Count("pk"))
        .values_list("company_id", "kind", "severity", "n")
    ):
        counts[company_id][kind, severity] = n
    sanctioned = dict(
        Sanction.objects.filter(decided_on__range=(period.start, period.end))
        .values("company_id")
        .annotate(n=Count("pk"))
        .values_list("company_id", "n")
    )
    ids = set(counts) | set(SelectedProduct.objects.values_list("company_id", flat=True).distinct())
    companies = Company.objects.filter(pk__in=ids)
    if search.strip():
        companies = companies.filter(name__icontains=search.strip())
    scored = [
        CompanyScore(pk, name, credit_score(counts.get(pk, {}), params), sanctioned.get(pk, 0))
        for pk, name in companies.values_list("pk", "name")
    ]
    scored.sort(key=lambda s: (-s.score.score, s.name))
    out: list[CompanyScore] = []
    for position, row in enumerate(scored, start=1):
        rank = out[-1].rank if out and out[-1].score.score == row.score.score else position
        out.append(CompanyScore(row.company_id, row.name, row.score, row.sanctions, rank))
    return out


# --------------------------------------------------------------------------------------------------
# Distributor scorecard (R-D4, R-I3): on-time rate and fill rate from the purchase facts

SCORECARD_SQL = """
    SELECT coalesce(distributor, '') AS distributor, {group}
           count(*) AS ordered_lines,
           count(*) FILTER (WHERE delivered_on IS NOT NULL) AS delivered_lines,
           count(*) FILTER (WHERE delivered_on IS NOT NULL
                            AND date_diff('day', ordered_on, delivered_on) <= $late) AS on_time_lines,
           count(*) FILTER (WHERE accepted_on IS NOT NULL) AS accepted_lines,
           coalesce(sum(qty), 0) AS ordered_qty,
           coalesce(sum(qty) FILTER (WHERE accepted_on IS NOT NULL), 0) AS accepted_qty,
           count(DISTINCT institution_code) AS institutions,
           CAST(count(*) FILTER (WHERE delivered_on IS NOT NULL
                                 AND date_diff('day', ordered_on, delivered_on) <= $late) AS DOUBLE)
               / nullif(count(*) FILTER (WHERE delivered_on IS NOT NULL), 0) AS on_time_sort,
           CAST(count(*) FILTER (WHERE accepted_on IS NOT NULL) AS DOUBLE) / count(*) AS fill_sort
    FROM purchases
    WHERE ordered_on BETWEEN $start AND $end {where}
    GROUP BY ALL
"""
SCORECARD_SORTS = {
    "distributor": "distributor",
    "ordered_lines": "ordered_lines",
    "on_time_rate": "on_time_sort",
    "fill_rate": "fill_sort",
    "institutions": "institutions",
}


@dataclass(frozen=True)
class ScorecardRow:
    distributor: str
    month: str
    ordered_lines: int
    delivered_lines: int
    on_time_lines: int
    accepted_lines: int
    ordered_qty: Decimal
    accepted_qty: Decimal
    institutions: int
    on_time_rate: Decimal | None
    fill_rate: Decimal | None
    qty_fill_rate: Decimal | None


def _scorecard_row(row: dict[str, Any]) -> ScorecardRow:
    return ScorecardRow(
        distributor=row["distributor"],
        month=row.get("month") or "",
        ordered_lines=int(row["ordered_lines"]),
        delivered_lines=int(row["delivered_lines"]),
        on_time_lines=int(row["on_time_lines"]),
        accepted_lines=int(row["accepted_lines"]),
        ordered_qty=Decimal(row["ordered_qty"]),
        accepted_qty=Decimal(row["accepted_qty"]),
        institutions=int(row["institutions"]),
        on_time_rate=rate(int(row["on_time_lines"]), int(row["delivered_lines"])),
        fill_rate=rate(int(row["accepted_lines"]), int(row["ordered_lines"])),
        qty_fill_rate=rate(Decimal(row["accepted_qty"]), Decimal(row["ordered_qty"])),
    )


def _fetch(q: FactQuery, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    cursor = q.con.execute(sql, params)
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def distributor_scorecard(
    scope: Scope,
    period: Period,
    *,
    params: DeliveryParams = DEFAULT_DELIVERY,
    search: str = "",
    sort: str = "",
    offset: int = 0,
    limit: int = 50,
    home: Path | None = None,
) -> tuple[list[ScorecardRow], int]:
    """Per distributor, the lines ordered in ``period`` (in scope): on-time rate = lines delivered within
    ``late_days`` of the order ÷ lines delivered; fill rate = lines accepted ÷ lines ordered (the facts
    hold one quantity per line, so the quantity-weighted fill rate is given beside it). Lines without an
    order date are left out. Returns one page (sorted in DuckDB) and the number of distributors."""
    where = ""
    values: dict[str, Any] = {"start": period.start, "end": period.end, "late": params.late_days}
    if search.strip():
        where = "AND coalesce(distributor, '') ILIKE $search"
        values["search"] = f"%{search.strip()}%"
    key = sort.lstrip("-")
    if key in SCORECARD_SORTS:
        column, direction = SCORECARD_SORTS[key], "DESC" if sort.startswith("-") else "ASC"
    else:
        column, direction = "ordered_lines", "DESC"
    base = SCORECARD_SQL.format(group="", where=where)
    with FactQuery(home or Path(settings.JICAI_HOME), scope) as q:
        total = int(_fetch(q, f"SELECT count(*) AS n FROM ({base})", values)[0]["n"])  # noqa: S608
        page = _fetch(
            q,
            f"SELECT * FROM ({base}) ORDER BY {column} {direction} NULLS LAST, distributor "  # noqa: S608
            f"LIMIT {int(limit)} OFFSET {int(offset)}",
            values,
        )
    return [_scorecard_row(r) for r in page], total


def distributor_months(
    scope: Scope,
    distributor: str,
    period: Period,
    *,
    params: DeliveryParams = DEFAULT_DELIVERY,
    home: Path | None = None,
) -> list[ScorecardRow]:
    """One distributor's scorecard month by month (order month) within ``period``."""
    sql = SCORECARD_SQL.format(
        group="strftime(ordered_on, '%Y-%m') AS month,", where="AND coalesce(distributor, '') = $name"
    )
    values = {"start": period.start, "end": period.end, "late": params.late_days, "name": distributor}
    with FactQuery(home or Path(settings.JICAI_HOME), scope) as q:
        rows = _fetch(q, f"SELECT * FROM ({sql}) ORDER BY month", values)  # noqa: S608
    return [_scorecard_row(r) for r in rows]


# --------------------------------------------------------------------------------------------------
# Supply reports (R-I4)

REPORT_FILTERS = {
    "company": "company__name",
    "batch": "batch__code",
    "item": "item__item_code",
    "from": "report_date__gte",
    "to": "report_date__lte",
}
REPORT_SORTS = {"report_date": "report_date", "stock_cover": "stock_cover", "company": "company__name"}


def supply_reports(params: Mapping[str, str]) -> QuerySet[SupplyReport]:
    qs = SupplyReport.objects.select_related("company", "batch", "item", "product")
    qs = _apply(qs, params, REPORT_FILTERS, ("company__name", "item__generic_name", "note"))
    if params.get("stopped") == "1":
        qs = qs.filter(production_stopped=True)
    return _sorted(qs, params, REPORT_SORTS)


def low_stock_reports(threshold: Decimal = STOCK_COVER_ALERT_MONTHS) -> Any:
    """The latest report of each manufacturer × item × product × region whose stock cover is below
    ``threshold`` months, or whose production has stopped; lowest cover first."""
    newer = (
        SupplyReport.objects.annotate(product_key=Coalesce("product_id", Value(0)))
        .filter(
            company_id=OuterRef("company_id"),
            item_id=OuterRef("item_id"),
            region_code=OuterRef("region_code"),
            product_key=OuterRef("product_key"),
        )
        .filter(
            Q(report_date__gt=OuterRef("report_date")) | Q(report_date=OuterRef("report_date"), pk__gt=OuterRef("pk"))
        )
    )
    return (
        SupplyReport.objects.select_related("company", "batch", "item", "product")
        .annotate(product_key=Coalesce("product_id", Value(0)))
        .filter(~Exists(newer))
        .filter(Q(stock_cover__lt=threshold) | Q(production_stopped=True))
        .order_by(Coalesce("stock_cover", Value(Decimal(0))), "company__name", "pk")
    )
