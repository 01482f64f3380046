"""Reads of the substitute-control workflow (R-H7, R-H8, R-H9): use by department and prescriber,
anomalies with their reasons, the diagnosis mix, the exceptions and measures registers.

Figures come from DISPENSING (prescribing side) for one institution and a month range, through the
scoped ``FactQuery``. A line's product is classified as ``monitoring.substitutes`` does: through
the registered ``item_products`` of the batches the institution holds an agreement of (selected /
``same_generic`` non-selected / ``substitute``), in item units (qty × conversion, each line rounded
to four places as the engine does); a product listed for two items counts for both.

Lines covered by a valid antimicrobial exception (R-H8) — same product, and the exception's patient
or prescriber, dispensed within its validity — are excluded from the *counted* figures that
anomalies are judged on; every table shows the figure with all lines beside it.

Growth is the last month of the range against the month before (month on month) and the same month
a year earlier (year on year), on counted quantities. Anomaly rules and thresholds:
``control.rules``. Essential medicines are kept (R-H9): a product flagged ``is_essential`` when none
of the item's selected products is one (and the profile's ``formulary.keep_essential`` holds) is
listed with "基本药物，予以保留" and never proposed for a measure.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pyarrow as pa
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from jicai.catalog.models import Product
from jicai.core.tenancy import Scope, ScopeError, use_scope
from jicai.facts.query import FactQuery
from jicai.hospital.common import acting_institution
from jicai.hospital.control import rules
from jicai.hospital.control.icd10 import CHAPTERS, chapter_label_zh, chapter_of
from jicai.hospital.feedback.display import pct_text, qty_text
from jicai.hospital.feedback.queries import engine
from jicai.hospital.models import AntimicrobialException, ControlKind, ControlMeasure, ControlStatus
from jicai.monitoring.progress import item_qty_sql
from jicai.monitoring.reference import load_reference
from jicai.organizations.models import Department, Institution
from jicai.policy import params
from jicai.programme.models import Agreement, Item, NonSelectedProduct

RESOURCE = "substitute_control"
SELECTED = "selected"
NON_SELECTED = rules.NON_SELECTED
SUBSTITUTE = rules.SUBSTITUTE
KINDS = (SELECTED, NON_SELECTED, SUBSTITUTE)
WATCHED = (NON_SELECTED, SUBSTITUTE)
DEFAULT_MONTHS = 3
KEEP_ESSENTIAL_ZH = "基本药物，予以保留"
KEEP_ESSENTIAL_EN = "essential medicine, kept (the selected product is not one)"
KIND_LABELS: dict[str, Any] = {
    SELECTED: _("Selected"),
    NON_SELECTED: _("Non-selected (same generic)"),
    SUBSTITUTE: _("Substitute"),
}
EXCEPTIONS_SCHEMA = pa.schema(
    [
        ("product_code", pa.string()),
        ("prescriber_code", pa.string()),
        ("patient_key", pa.string()),
        ("valid_from", pa.date32()),
        ("valid_until", pa.date32()),
    ]
)


def require_read(scope: Scope) -> None:
    if not (scope.is_system or scope.can(RESOURCE, "read")):
        raise ScopeError(f"{scope.label} may not read {RESOURCE}")


# --------------------------------------------------------------------------------------------------
# Months


def month_index(label: str) -> int:
    """``2023-03`` → year × 12 + month − 1; ValueError for anything else."""
    if len(label) != 7 or label[4] != "-" or not (label[:4].isdigit() and label[5:].isdigit()):
        raise ValueError(f"not a month: {label!r}")
    month = int(label[5:])
    if not 1 <= month <= 12:
        raise ValueError(f"not a month: {label!r}")
    return int(label[:4]) * 12 + month - 1


def month_label(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_start(index: int) -> dt.date:
    return dt.date(index // 12, index % 12 + 1, 1)


def month_end(index: int) -> dt.date:
    return month_start(index + 1) - dt.timedelta(days=1)


@dataclass(frozen=True)
class MonthRange:
    first: int
    last: int

    @classmethod
    def of(cls, first: str, last: str) -> MonthRange:
        lo, hi = month_index(first), month_index(last)
        if lo > hi:
            raise ValueError("the first month is after the last")
        if hi - lo >= 36:
            raise ValueError("at most 36 months at a time")
        return cls(lo, hi)

    @property
    def months(self) -> list[str]:
        return [month_label(m) for m in range(self.first, self.last + 1)]

    @property
    def start(self) -> dt.date:
        return month_start(self.first)

    @property
    def end(self) -> dt.date:
        return month_end(self.last)

    @property
    def first_label(self) -> str:
        return month_label(self.first)

    @property
    def last_label(self) -> str:
        return month_label(self.last)


# --------------------------------------------------------------------------------------------------
# The dispensing lines of an institution's VBP items


class _Lines:
    """A scoped query with the reference, the exceptions and a temp table ``ctl_lines`` of the
    institution's dispensing lines of its items' products in [lo, hi]."""

    def __init__(self, scope: Scope, inst: Institution, lo: dt.date, hi: dt.date, department: str | None) -> None:
        home, _profiles = engine()
        self.reference = load_reference(scope)
        self.q = FactQuery(home, scope)
        try:
            self.q.register("agreements", self.reference.agreements)
            self.q.register("item_products", self.reference.item_products)
            self.q.register("ctl_exceptions", exception_rows(scope, inst), EXCEPTIONS_SCHEMA)
            qty = item_qty_sql(self.q, "dispensing", qty="d.qty", conversion="p.conversion")
            dept = " AND coalesce(d.department_code, '') = $department" if department is not None else ""
            args: dict[str, Any] = {"inst": inst.code, "lo": lo, "hi": hi}
            if department is not None:
                args["department"] = department
            # SQL from our own identifiers (``qty``, ``dept``); every value is a bound parameter
            sql = f"""
                CREATE TEMP TABLE ctl_lines AS
                WITH pairs AS (
                    SELECT DISTINCT batch_code, item_code FROM agreements WHERE institution_code = $inst
                ),
                prod AS (
                    SELECT DISTINCT p.batch_code, p.item_code, p.product_code, p.kind, p.conversion
                    FROM item_products p JOIN pairs r ON r.batch_code = p.batch_code AND r.item_code = p.item_code
                )
                SELECT coalesce(d.department_code, '') AS department_code,
                       coalesce(d.prescriber_code, '') AS prescriber_code,
                       coalesce(d.diagnosis_code, '') AS diagnosis_code,
                       d.dispensed_on, d.product_code, p.batch_code, p.item_code, p.kind,
                       CAST(d.qty AS DECIMAL(18, 4)) AS raw_qty, {qty} AS qty,
                       EXISTS (
                           SELECT 1 FROM ctl_exceptions e
                           WHERE e.product_code = d.product_code
                             AND d.dispensed_on BETWEEN e.valid_from AND e.valid_until
                             AND ((e.patient_key <> '' AND e.patient_key = coalesce(d.patient_key, ''))
                                  OR (e.prescriber_code <> '' AND e.prescriber_code = coalesce(d.prescriber_code, '')))
                       ) AS covered
                FROM dispensing d JOIN prod p ON p.product_code = d.product_code
                WHERE d.institution_code = $inst AND d.dispensed_on BETWEEN $lo AND $hi{dept}
                """  # noqa: S608
            self.q.con.execute(sql, args)
        except BaseException:
            self.q.close()
            raise

    def rows(self, sql: str, args: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        cursor = self.q.con.execute(sql, args or {})
        names = [d[0] for d in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def close(self) -> None:
        self.q.close()

    def __enter__(self) -> _Lines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def exception_rows(scope: Scope, inst: Institution) -> list[dict[str, Any]]:
    """The institution's antimicrobial exceptions as rows for the lines query (patient or prescriber)."""
    with use_scope(scope):
        found = AntimicrobialException.objects.filter(institution=inst).values_list(
            "product__code", "prescriber_code", "patient_key", "valid_from", "valid_until"
        )
        return [
            {"product_code": p, "prescriber_code": pr or "", "patient_key": pk or "", "valid_from": f, "valid_until": u}
            for p, pr, pk, f, u in found
        ]


def use_by_department(scope: Scope, inst: Institution, start: dt.date, end: dt.date) -> dict[str, dict[str, Decimal]]:
    """Each department's counted use (exception lines excluded) of its items' products in [start, end],
    by kind (selected / same_generic / substitute), in item units — for the appraisal (R-H5)."""
    out: dict[str, dict[str, Decimal]] = defaultdict(lambda: dict.fromkeys(KINDS, Decimal(0)))
    with _Lines(scope, inst, start, end, None) as lines:
        for r in lines.rows(
            "SELECT department_code, kind, coalesce(sum(qty) FILTER (WHERE NOT covered), 0) AS qty "
            "FROM ctl_lines GROUP BY ALL"
        ):
            out[r["department_code"]][r["kind"]] += Decimal(r["qty"])
    return dict(out)


def latest_month(scope: Scope, inst: Institution) -> str | None:
    """The last month with dispensing at the institution (the board's default range ends there)."""
    home, _profiles = engine()
    with FactQuery(home, scope) as q:
        found = q.rows("SELECT max(dispensed_on) AS d FROM dispensing WHERE institution_code = ?", [inst.code])
    day = found[0]["d"] if found else None
    return day.strftime("%Y-%m") if day else None


def default_range(scope: Scope, inst: Institution) -> MonthRange:
    last = latest_month(scope, inst) or timezone.localdate().strftime("%Y-%m")
    hi = month_index(last)
    return MonthRange(hi - DEFAULT_MONTHS + 1, hi)


# --------------------------------------------------------------------------------------------------
# The board


@dataclass
class KindFigures:
    qty_all: Decimal = Decimal(0)
    qty: Decimal = Decimal(0)
    last: Decimal = Decimal(0)
    prev: Decimal = Decimal(0)
    year_ago: Decimal = Decimal(0)


@dataclass
class UseRow:
    """One department's (or prescriber's) use of one item in the range, by kind."""

    level: str  # department | prescriber
    unit: str  # department code or prescriber code
    unit_name: str
    batch_code: str
    item_code: str
    item_name: str
    unit_label: str
    kinds: dict[str, KindFigures] = field(default_factory=lambda: {k: KindFigures() for k in KINDS})
    products: dict[str, rules.ProductFigures] = field(default_factory=dict)
    departments: set[str] = field(default_factory=set)

    def total(self, counted: bool = True) -> Decimal:
        return sum(((k.qty if counted else k.qty_all) for k in self.kinds.values()), Decimal(0))

    def share(self, kind: str, counted: bool = True) -> Decimal | None:
        k = self.kinds[kind]
        return rules.share(k.qty if counted else k.qty_all, self.total(counted))

    def mom(self, kind: str) -> Decimal | None:
        return rules.growth(self.kinds[kind].last, self.kinds[kind].prev)

    def yoy(self, kind: str) -> Decimal | None:
        return rules.growth(self.kinds[kind].last, self.kinds[kind].year_ago)

    @property
    def excluded(self) -> Decimal:
        return self.total(False) - self.total(True)

    @property
    def watched(self) -> Decimal:
        return self.kinds[NON_SELECTED].qty_all + self.kinds[SUBSTITUTE].qty_all

    def figures(self, selected_mix: dict[str | None, Decimal] | None = None) -> rules.UnitFigures:
        return rules.UnitFigures(
            selected=self.kinds[SELECTED].qty,
            non_selected=self.kinds[NON_SELECTED].qty,
            substitute=self.kinds[SUBSTITUTE].qty,
            selected_mix=selected_mix,
        )

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "level": self.level,
            "unit": self.unit,
            "unit_name": self.unit_name,
            "batch_code": self.batch_code,
            "item_code": self.item_code,
            "item_name": self.item_name,
            "excluded_qty": str(self.excluded),
        }
        if self.level == "prescriber":
            out["departments"] = sorted(self.departments)
        for kind in KINDS:
            k = self.kinds[kind]
            out[kind] = {
                "qty_all": str(k.qty_all),
                "qty": str(k.qty),
                "share_all": _s(self.share(kind, counted=False)),
                "share": _s(self.share(kind)),
                "last_month_qty": str(k.last),
                "mom_growth": _s(self.mom(kind)),
                "yoy_growth": _s(self.yoy(kind)),
            }
        return out

    # display
    def cells(self) -> list[dict[str, str]]:
        out = []
        for kind in KINDS:
            k = self.kinds[kind]
            out.append(
                {
                    "kind": kind,
                    "qty_all": qty_text(k.qty_all),
                    "qty": qty_text(k.qty),
                    "share_all": pct_text(self.share(kind, counted=False)),
                    "share": pct_text(self.share(kind)),
                    "mom": pct_text(self.mom(kind)),
                    "yoy": pct_text(self.yoy(kind)),
                }
            )
        return out

    @property
    def excluded_text(self) -> str:
        return qty_text(self.excluded)


def _s(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


@dataclass
class Anomaly:
    level: str
    unit: str
    unit_name: str
    batch_code: str
    item_code: str
    item_name: str
    product_code: str
    product_name: str
    kind: str
    qty_all: Decimal
    qty: Decimal
    reasons: list[rules.Reason]
    keep_essential: bool
    department_code: str = ""
    prescriber_code: str = ""
    measures: list[ControlMeasure] = field(default_factory=list)

    @property
    def key(self) -> dict[str, str]:
        """What a measure proposed for this anomaly records in ``anomaly`` (and the form prefills)."""
        return {
            "level": self.level,
            "unit": self.unit,
            "batch_code": self.batch_code,
            "item_code": self.item_code,
            "product_code": self.product_code,
            "kind": self.kind,
            "reasons": ",".join(r.code for r in self.reasons),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.key,
            "reasons": [
                {"code": r.code, "message_zh": r.message_zh, "message_en": r.message_en, "figures": r.figures}
                for r in self.reasons
            ],
            "unit_name": self.unit_name,
            "item_name": self.item_name,
            "product_name": self.product_name,
            "department_code": self.department_code,
            "prescriber_code": self.prescriber_code,
            "qty_all": str(self.qty_all),
            "qty": str(self.qty),
            "keep_essential": self.keep_essential,
            "keep_message_zh": KEEP_ESSENTIAL_ZH if self.keep_essential else "",
            "measures": [m.pk for m in self.measures],
        }

    @property
    def qty_all_text(self) -> str:
        return qty_text(self.qty_all)

    @property
    def qty_text(self) -> str:
        return qty_text(self.qty)

    @property
    def keep_message(self) -> str:
        return KEEP_ESSENTIAL_ZH

    @property
    def propose_query(self) -> str:
        """Query string of the measures page's form, prefilled for this anomaly."""
        return urlencode(
            {
                "product": self.product_code,
                "department": self.department_code,
                "prescriber": self.prescriber_code,
                "anomaly": json.dumps(self.key, ensure_ascii=False),
            }
        )


@dataclass
class MixRow:
    chapter: str | None
    label: str
    qty: dict[str, Decimal]
    shares: dict[str, Decimal | None]

    def cells(self) -> list[dict[str, str]]:
        return [{"qty": qty_text(self.qty[k]), "share": pct_text(self.shares[k])} for k in KINDS]


@dataclass
class MixTable:
    department_code: str
    department_name: str
    batch_code: str
    item_code: str
    item_name: str
    rows: list[MixRow]

    def as_dict(self) -> dict[str, Any]:
        return {
            "department_code": self.department_code,
            "batch_code": self.batch_code,
            "item_code": self.item_code,
            "rows": [
                {
                    "chapter": r.chapter,
                    "label": r.label,
                    **{f"{k}_qty": str(r.qty[k]) for k in KINDS},
                    **{f"{k}_share": _s(r.shares[k]) for k in KINDS},
                }
                for r in self.rows
            ],
        }


@dataclass
class OverLimit:
    measure: ControlMeasure
    month: str
    qty_all: Decimal
    qty: Decimal

    def as_dict(self) -> dict[str, Any]:
        return {
            "measure": self.measure.pk,
            "product_code": self.measure.product.code,
            "month": self.month,
            "limit_qty": str(self.measure.limit_qty),
            "qty_all": str(self.qty_all),
            "qty": str(self.qty),
        }


@dataclass
class ControlBoard:
    institution: Institution
    months: MonthRange
    department: str | None
    departments: list[UseRow]
    prescribers: list[UseRow]
    anomalies: list[Anomaly]
    mixes: list[MixTable]
    measures: list[ControlMeasure]
    over_limit: list[OverLimit]
    thresholds: dict[tuple[str, str], rules.Thresholds]
    department_names: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "institution_code": self.institution.code,
            "month_from": self.months.first_label,
            "month_to": self.months.last_label,
            "department": self.department,
            "departments": [r.as_dict() for r in self.departments],
            "prescribers": [r.as_dict() for r in self.prescribers],
            "anomalies": [a.as_dict() for a in self.anomalies],
            "diagnosis_mix": [m.as_dict() for m in self.mixes],
            "measures": [measure_dict(m) for m in self.measures],
            "over_limit": [o.as_dict() for o in self.over_limit],
            "thresholds": {f"{b}/{i}": t.as_dict() for (b, i), t in sorted(self.thresholds.items())},
        }


def control_institution(scope: Scope, code: str | None = None) -> Institution:
    with use_scope(scope):
        return acting_institution(scope, code)


def thresholds_for(
    reference_agreements: pa.Table, inst: str, as_of: dt.date
) -> dict[tuple[str, str], rules.Thresholds]:
    """Thresholds per (batch, item): the module constants with the profile's non-selected cap ratio."""
    _home, profiles = engine()
    out: dict[tuple[str, str], rules.Thresholds] = {}
    cache: dict[str, rules.Thresholds] = {}
    for row in reference_agreements.to_pylist():
        if row["institution_code"] != inst:
            continue
        name = row["profile"] or "national"
        if name not in cache:
            cap = params.cap_params(profiles.resolve(name, as_of))
            cache[name] = rules.Thresholds(cap_ratio=None if cap is None else Decimal(cap.cap_ratio))
        out[(row["batch_code"], row["item_code"])] = cache[name]
    return out


def keeps_essential(reference_agreements: pa.Table, inst: str, as_of: dt.date) -> dict[tuple[str, str], bool]:
    """Whether R-H9 applies to each (batch, item): the profile's ``formulary.keep_essential``."""
    _home, profiles = engine()
    cache: dict[str, bool] = {}
    out: dict[tuple[str, str], bool] = {}
    for row in reference_agreements.to_pylist():
        if row["institution_code"] != inst:
            continue
        name = row["profile"] or "national"
        if name not in cache:
            cache[name] = params.formulary_params(
                profiles.resolve(name, as_of)
            ).keep_essential_when_selected_not_essential
        out[(row["batch_code"], row["item_code"])] = cache[name]
    return out


def essential_kept(
    product_code: str, selected_codes: Iterable[str], essential: dict[str, bool], applies: bool = True
) -> bool:
    """R-H9: the product is an essential medicine and none of the item's selected products is one."""
    if not applies or not essential.get(product_code, False):
        return False
    return not any(essential.get(code, False) for code in selected_codes)


def _mix_add(target: dict[str | None, Decimal], chapter: str | None, qty: Decimal) -> None:
    target[chapter] = target.get(chapter, Decimal(0)) + qty


@dataclass
class _Context:
    """What the board's figures are read against: names, products, thresholds, measures."""

    months: MonthRange
    dept_names: dict[str, str]
    items: dict[tuple[str, str], tuple[str, str]]
    products: dict[str, Product]
    selected_of: dict[tuple[str, str], set[str]]
    thresholds: dict[tuple[str, str], rules.Thresholds]
    keep_rule: dict[tuple[str, str], bool]
    measures: list[ControlMeasure]

    def new_row(self, level: str, unit: str, batch: str, item: str) -> UseRow:
        name, label = self.items.get((batch, item), (item, ""))
        unit_name = self.dept_names.get(unit, unit or "—") if level == "department" else unit or "—"
        return UseRow(level, unit, unit_name, batch, item, name, label)


_MONTHLY_SQL = """
    SELECT department_code, prescriber_code, batch_code, item_code, product_code, kind,
           CAST(year(dispensed_on) * 12 + month(dispensed_on) - 1 AS INTEGER) AS midx,
           sum(raw_qty) AS raw_all, coalesce(sum(raw_qty) FILTER (WHERE NOT covered), 0) AS raw,
           sum(qty) AS qty_all, coalesce(sum(qty) FILTER (WHERE NOT covered), 0) AS qty
    FROM ctl_lines GROUP BY ALL
"""
_MIX_SQL = """
    SELECT department_code, batch_code, item_code, product_code, kind, diagnosis_code,
           coalesce(sum(qty) FILTER (WHERE NOT covered), 0) AS qty
    FROM ctl_lines WHERE dispensed_on >= $lo GROUP BY ALL
"""


def _context(
    scope: Scope, inst: Institution, months: MonthRange, monthly: list[dict[str, Any]], reference: Any
) -> _Context:
    as_of = min(months.end, timezone.localdate())
    selected_of: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in reference.item_products.to_pylist():
        if r["kind"] == SELECTED:
            selected_of[(r["batch_code"], r["item_code"])].add(r["product_code"])
    codes = {r["product_code"] for r in monthly} | {c for s in selected_of.values() for c in s}
    pairs = {(r["batch_code"], r["item_code"]) for r in monthly}
    with use_scope(scope):
        dept_names = dict(Department.objects.filter(institution=inst).values_list("code", "name"))
        products = {
            p.code: p
            for p in Product.objects.filter(code__in=codes).only("code", "generic_name", "pack", "is_essential")
        }
        items = {
            (b, i): (g, u)
            for b, i, g, u in Item.objects.filter(
                batch__code__in={p[0] for p in pairs}, item_code__in={p[1] for p in pairs}
            ).values_list("batch__code", "item_code", "generic_name", "unit_label")
        }
        measures = list(
            ControlMeasure.objects.filter(institution=inst, status=ControlStatus.APPROVED)
            .filter(
                Q(effective_from__lte=months.end, expires_on__gte=months.start)
                | Q(expires_on__gte=timezone.localdate())
            )
            .select_related("product", "department")
            .order_by("effective_from", "pk")
        )
    return _Context(
        months=months,
        dept_names=dept_names,
        items=items,
        products=products,
        selected_of=selected_of,
        thresholds=thresholds_for(reference.agreements, inst.code, as_of),
        keep_rule=keeps_essential(reference.agreements, inst.code, as_of),
        measures=measures,
    )


Key = tuple[str, str, str]


def _aggregate(
    ctx: _Context, monthly: list[dict[str, Any]]
) -> tuple[dict[Key, UseRow], dict[Key, UseRow], dict[tuple[str, str, str, int], tuple[Decimal, Decimal]]]:
    """Department × item and prescriber × item rows, and the raw monthly quantity per unit × product."""
    months = ctx.months
    marks = (("last", months.last), ("prev", months.last - 1), ("year_ago", months.last - 12))
    by_dept: dict[Key, UseRow] = {}
    by_prescriber: dict[Key, UseRow] = {}
    raw_by_month: dict[tuple[str, str, str, int], tuple[Decimal, Decimal]] = {}
    for r in monthly:
        midx, kind, code = r["midx"], r["kind"], r["product_code"]
        raw_by_month[(r["department_code"], r["prescriber_code"], code, midx)] = (
            Decimal(r["raw_all"]),
            Decimal(r["raw"]),
        )
        dept_key = (r["department_code"], r["batch_code"], r["item_code"])
        targets = [by_dept.setdefault(dept_key, ctx.new_row("department", *dept_key))]
        if r["prescriber_code"]:
            key = (r["prescriber_code"], r["batch_code"], r["item_code"])
            row = by_prescriber.setdefault(key, ctx.new_row("prescriber", *key))
            row.departments.add(r["department_code"])
            targets.append(row)
        qty_all, qty = Decimal(r["qty_all"]), Decimal(r["qty"])
        for row in targets:
            figures: list[Any] = [row.kinds[kind]]
            if kind in WATCHED:
                figures.append(row.products.setdefault(code, rules.ProductFigures(code, kind)))
            for f in figures:
                if midx >= months.first:
                    f.qty_all += qty_all
                    f.qty += qty
                for which, at in marks:
                    if midx == at:
                        setattr(f, which, getattr(f, which) + qty)
    return by_dept, by_prescriber, raw_by_month


def _mixes(
    mix_rows: list[dict[str, Any]], by_dept: dict[Key, UseRow]
) -> tuple[dict[Key, dict[str | None, Decimal]], dict[Key, dict[str, dict[str | None, Decimal]]]]:
    """The selected products' chapter mix per department × item (products' mixes are filled in
    ``by_dept``) and each kind's mix for the diagnosis table."""
    cache: dict[str, str | None] = {}

    def chapter(code: str) -> str | None:
        if code not in cache:
            found = chapter_of(code)
            cache[code] = found.roman if found else None
        return cache[code]

    selected_mix: dict[Key, dict[str | None, Decimal]] = defaultdict(dict)
    kind_mix: dict[Key, dict[str, dict[str | None, Decimal]]] = defaultdict(lambda: {k: {} for k in KINDS})
    for r in mix_rows:
        key = (r["department_code"], r["batch_code"], r["item_code"])
        qty = Decimal(r["qty"])
        ch = chapter(r["diagnosis_code"])
        _mix_add(kind_mix[key][r["kind"]], ch, qty)
        if r["kind"] == SELECTED:
            _mix_add(selected_mix[key], ch, qty)
        elif key in by_dept and r["product_code"] in by_dept[key].products:
            _mix_add(by_dept[key].products[r["product_code"]].mix, ch, qty)
    return selected_mix, kind_mix


def _applies(m: ControlMeasure, level: str, unit: str) -> bool:
    if level == "department":
        return m.department is None or m.department.code == unit
    return not m.prescriber_code or m.prescriber_code == unit


def _anomalies(
    ctx: _Context,
    tables: tuple[dict[Key, UseRow], dict[Key, UseRow]],
    selected_mix: dict[Key, dict[str | None, Decimal]],
) -> list[Anomaly]:
    essential = {code: p.is_essential for code, p in ctx.products.items()}
    month = month_label(ctx.months.last)
    out: list[Anomaly] = []
    for level, table in zip(("department", "prescriber"), tables, strict=True):
        for key, row in table.items():
            pair = (row.batch_code, row.item_code)
            th = ctx.thresholds.get(pair, rules.Thresholds())
            unit = row.figures(selected_mix.get(key) if level == "department" else None)
            for code, product in sorted(row.products.items()):
                found = rules.reasons(product, unit, th, month=month)
                if not found:
                    continue
                p = ctx.products.get(code)
                keep = essential_kept(code, ctx.selected_of.get(pair, set()), essential, ctx.keep_rule.get(pair, True))
                out.append(
                    Anomaly(
                        level=level,
                        unit=row.unit,
                        unit_name=row.unit_name,
                        batch_code=row.batch_code,
                        item_code=row.item_code,
                        item_name=row.item_name,
                        product_code=code,
                        product_name=str(p) if p else code,
                        kind=product.kind,
                        qty_all=product.qty_all,
                        qty=product.qty,
                        reasons=found,
                        keep_essential=keep,
                        department_code=row.unit if level == "department" else "",
                        prescriber_code=row.unit if level == "prescriber" else "",
                        measures=[m for m in ctx.measures if m.product.code == code and _applies(m, level, row.unit)],
                    )
                )
    out.sort(key=lambda a: (a.level != "department", a.unit, a.item_code, a.product_code))
    return out


def _mix_tables(ctx: _Context, kind_mix: dict[Key, dict[str, dict[str | None, Decimal]]]) -> list[MixTable]:
    out = []
    for key in sorted(kind_mix):
        by_kind = kind_mix[key]
        if not any(by_kind[k] for k in WATCHED):
            continue
        dept_code, batch, item = key
        totals = {k: sum(by_kind[k].values(), Decimal(0)) for k in KINDS}
        chapters = sorted({c for k in KINDS for c in by_kind[k]}, key=lambda c: (c is None, _roman_order(c)))
        rows = [
            MixRow(
                chapter=c,
                label=chapter_label_zh(c),
                qty={k: by_kind[k].get(c, Decimal(0)) for k in KINDS},
                shares={k: rules.share(by_kind[k].get(c, Decimal(0)), totals[k]) for k in KINDS},
            )
            for c in chapters
        ]
        name, _unit = ctx.items.get((batch, item), (item, ""))
        out.append(MixTable(dept_code, ctx.dept_names.get(dept_code, dept_code or "—"), batch, item, name, rows))
    return out


def control_board(
    scope: Scope,
    *,
    months: MonthRange | None = None,
    department: str | None = None,
    institution: str | None = None,
) -> ControlBoard:
    """The monitoring page's figures for one institution and month range (module docstring)."""
    require_read(scope)
    inst = control_institution(scope, institution)
    months = months or default_range(scope, inst)
    with _Lines(scope, inst, month_start(months.first - 12), months.end, department) as lines:
        monthly = lines.rows(_MONTHLY_SQL)
        mix_rows = lines.rows(_MIX_SQL, {"lo": months.start})
        reference = lines.reference
    ctx = _context(scope, inst, months, monthly, reference)
    by_dept, by_prescriber, raw_by_month = _aggregate(ctx, monthly)
    selected_mix, kind_mix = _mixes(mix_rows, by_dept)
    dept_rows = sorted(
        (r for r in by_dept.values() if r.total(False) > 0), key=lambda r: (r.unit, r.batch_code, r.item_code)
    )
    prescriber_rows = sorted(
        (r for r in by_prescriber.values() if r.watched > 0),
        key=lambda r: (-(r.share(NON_SELECTED, False) or 0) - (r.share(SUBSTITUTE, False) or 0), r.unit, r.item_code),
    )
    return ControlBoard(
        institution=inst,
        months=months,
        department=department,
        departments=dept_rows,
        prescribers=prescriber_rows,
        anomalies=_anomalies(ctx, (by_dept, by_prescriber), selected_mix),
        mixes=_mix_tables(ctx, kind_mix),
        measures=ctx.measures,
        over_limit=_over_limit(ctx.measures, raw_by_month, months),
        thresholds=ctx.thresholds,
        department_names=ctx.dept_names,
    )


def _roman_order(roman: str | None) -> int:
    return next((c.number for c in CHAPTERS if c.roman == roman), 99)


def _over_limit(
    measures: list[ControlMeasure],
    raw_by_month: dict[tuple[str, str, str, int], tuple[Decimal, Decimal]],
    months: MonthRange,
) -> list[OverLimit]:
    """Months of the range in which an approved limit was in force and the counted dispensing of its
    product (within its department / prescriber, in the product's own units) exceeded it."""
    out = []
    for m in measures:
        if m.kind != ControlKind.LIMIT or m.limit_qty is None:
            continue
        for midx in range(months.first, months.last + 1):
            if m.effective_from > month_end(midx) or m.expires_on < month_start(midx):
                continue
            qty_all = qty = Decimal(0)
            for (dept, prescriber, product, at), (raw_all, raw) in raw_by_month.items():
                if at != midx or product != m.product.code:
                    continue
                if m.department is not None and dept != m.department.code:
                    continue
                if m.prescriber_code and prescriber != m.prescriber_code:
                    continue
                qty_all += raw_all
                qty += raw
            if qty > m.limit_qty:
                out.append(OverLimit(m, month_label(midx), qty_all, qty))
    return out


# --------------------------------------------------------------------------------------------------
# Registers


def measure_state(m: ControlMeasure, today: dt.date | None = None) -> str:
    """proposed / rejected / revoked, or for an approved measure scheduled / active / expired."""
    if m.status != ControlStatus.APPROVED:
        return str(m.status)
    day = today or timezone.localdate()
    if day < m.effective_from:
        return "scheduled"
    if day > m.expires_on:
        return "expired"
    return "active"


STATE_LABELS: dict[str, Any] = {
    "proposed": _("Proposed"),
    "rejected": _("Rejected"),
    "revoked": _("Revoked"),
    "scheduled": _("Approved, not yet in force"),
    "active": _("In force"),
    "expired": _("Expired"),
}


def measure_dict(m: ControlMeasure, today: dt.date | None = None) -> dict[str, Any]:
    return {
        "id": m.pk,
        "product_code": m.product.code,
        "product_name": str(m.product),
        "department_code": m.department.code if m.department else "",
        "prescriber_code": m.prescriber_code,
        "kind": m.kind,
        "limit_qty": None if m.limit_qty is None else str(m.limit_qty),
        "reason": m.reason,
        "anomaly": m.anomaly,
        "status": m.status,
        "state": measure_state(m, today),
        "effective_from": m.effective_from.isoformat(),
        "expires_on": m.expires_on.isoformat(),
        "decided_by": m.decided_by.username if m.decided_by else "",
        "decided_at": m.decided_at.isoformat() if m.decided_at else None,
        "decision_note": m.decision_note,
    }


def measures(scope: Scope, *, status: str | None = None) -> QuerySet[ControlMeasure]:
    require_read(scope)
    with use_scope(scope):
        qs = ControlMeasure.objects.select_related("product", "department", "decided_by", "created_by").order_by(
            "-created_at", "-pk"
        )
        if status:
            qs = qs.filter(status=status)
        return qs


def measure(scope: Scope, pk: int) -> ControlMeasure | None:
    require_read(scope)
    with use_scope(scope):
        return ControlMeasure.objects.select_related("product", "department").filter(pk=pk).first()


def exceptions(scope: Scope, *, current_only: bool = False) -> QuerySet[AntimicrobialException]:
    require_read(scope)
    with use_scope(scope):
        qs = AntimicrobialException.objects.select_related("product", "department", "created_by").order_by(
            "-valid_from", "-pk"
        )
        if current_only:
            today = timezone.localdate()
            qs = qs.filter(valid_from__lte=today, valid_until__gte=today)
        return qs


def exception_dict(e: AntimicrobialException, today: dt.date | None = None) -> dict[str, Any]:
    day = today or timezone.localdate()
    return {
        "id": e.pk,
        "product_code": e.product.code,
        "product_name": str(e.product),
        "department_code": e.department.code,
        "prescriber_code": e.prescriber_code,
        "patient_key": e.patient_key,
        "reason": e.reason,
        "note": e.note,
        "valid_from": e.valid_from.isoformat(),
        "valid_until": e.valid_until.isoformat(),
        "valid_now": e.valid_from <= day <= e.valid_until,
    }


def watched_products(scope: Scope, inst: Institution, *, antimicrobial_only: bool = False) -> list[tuple[str, str]]:
    """The non-selected and substitute products of the institution's items, as (code, label) choices."""
    with use_scope(scope):
        item_ids = set(Agreement.objects.filter(institution=inst).values_list("item_id", flat=True))
        qs = NonSelectedProduct.objects.filter(item_id__in=item_ids).select_related("product", "item")
        if antimicrobial_only:
            qs = qs.exclude(product__antimicrobial_class="")
        seen: dict[str, str] = {}
        for n in qs.order_by("product__code"):
            seen.setdefault(n.product.code, f"{n.product}（{n.item.generic_name}）")
    return sorted(seen.items())


def department_choices(scope: Scope, inst: Institution) -> list[tuple[str, str]]:
    with use_scope(scope):
        return [(c, f"{n}（{c}）") for c, n in Department.objects.filter(institution=inst).values_list("code", "name")]
