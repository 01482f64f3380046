"""Reads of demand reporting (R-H2): the hospital's monthly history per item, the plans and their lines.

History comes from the fact store through ``FactQuery`` under the acting scope (so a hospital reads
only its own lines), in item units: each line's ``qty × conversion`` rounded to 4 places
(``monitoring.progress.item_qty_sql``), for the round's *selected and same-generic* products of each
item (``item_products`` kinds ``selected`` and ``same_generic``: the generic's history, whichever
product was used; substitutes are other generics and are left out).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from jicai.core.tenancy import Level, Scope, use_scope
from jicai.facts.query import FactQuery
from jicai.hospital.models import DemandComment, DemandLine, DemandPlan, DemandStatus
from jicai.monitoring.progress import item_qty_sql
from jicai.monitoring.reference import load_reference
from jicai.programme.models import SelectedProduct

SOURCES = ("dispensing", "purchases")
"""Where monthly use comes from: dispensing (default; lets shortage months be detected from purchases)
or accepted purchases."""

_DATE_COLUMN = {"dispensing": "dispensed_on", "purchases": "accepted_on"}


@dataclass
class ItemHistory:
    """One item's monthly use and accepted purchases (item units), keyed by the month's first day."""

    used: dict[dt.date, Decimal] = field(default_factory=dict)
    purchased: dict[dt.date, Decimal] = field(default_factory=dict)


def _monthly(q: FactQuery, relation: str, *, batch: str, institution: str, first: dt.date, last: dt.date) -> list[Any]:
    qty = item_qty_sql(q, relation, qty="f.qty", conversion="p.conversion")
    day = _DATE_COLUMN[relation]
    sql = f"""
        WITH prod AS (
            SELECT DISTINCT item_code, product_code, conversion FROM item_products
            WHERE batch_code = $batch AND kind IN ('selected', 'same_generic')
        )
        SELECT p.item_code, CAST(date_trunc('month', f.{day}) AS DATE) AS month, sum({qty}) AS qty
        FROM {relation} f JOIN prod p ON p.product_code = f.product_code
        WHERE f.institution_code = $institution AND f.{day} BETWEEN $first AND $last
        GROUP BY ALL
    """  # noqa: S608 - identifiers are ours; values are bound
    params = {"batch": batch, "institution": institution, "first": first, "last": last}
    return q.con.execute(sql, params).fetchall()


def item_history(
    scope: Scope, home: Path, *, batch: str, institution: str, first: dt.date, last: dt.date
) -> dict[str, ItemHistory]:
    """Each item's monthly dispensing and accepted purchases in [first, last] (module docstring)."""
    reference = load_reference(scope)
    out: dict[str, ItemHistory] = defaultdict(ItemHistory)
    window: dict[str, Any] = {"batch": batch, "institution": institution, "first": first, "last": last}
    with FactQuery(home, scope) as q:
        q.register("item_products", reference.item_products)
        for item, month, qty in _monthly(q, "dispensing", **window):
            out[item].used[month] = Decimal(qty)
        for item, month, qty in _monthly(q, "purchases", **window):
            out[item].purchased[month] = Decimal(qty)
    return dict(out)


# --------------------------------------------------------------------------------------------------
# Plans


def visible_plans(scope: Scope) -> QuerySet[DemandPlan]:
    """Plans the scope may open: a hospital's own (any status); a bureau's region's locked submissions."""
    qs = DemandPlan.objects.select_related("institution", "batch", "created_by", "approved_by")
    if scope.level is Level.REGION:
        qs = qs.filter(status=DemandStatus.LOCKED)
    return qs


@dataclass(frozen=True)
class PlanRow:
    plan: DemandPlan
    lines: int
    suggested: Decimal
    reported: Decimal
    adjusted: int


def _qty(value: Any) -> Decimal:
    """A summed quantity to 4 places (SQLite's sums lose the column's scale)."""
    return Decimal(value or 0).quantize(Decimal("0.0001"))


def plan_rows(scope: Scope, *, batch: str | None = None, status: str | None = None) -> list[PlanRow]:
    """The list page: plans with their line counts and totals (two queries)."""
    with use_scope(scope):
        qs = visible_plans(scope).order_by("-created_at")
        if batch:
            qs = qs.filter(batch__code=batch)
        if status:
            qs = qs.filter(status=status)
        plans = list(qs[:500])
        totals = {
            row["plan"]: row
            for row in DemandLine.objects.filter(plan__in=[p.pk for p in plans])
            .values("plan")
            .annotate(
                n=Count("id"),
                suggested=Sum("suggested_qty"),
                reported=Sum(Coalesce("adjusted_qty", "suggested_qty")),
                adjusted=Count("id", filter=Q(adjusted_qty__isnull=False)),
            )
        }
    out = []
    for plan in plans:
        row = totals.get(plan.pk, {})
        out.append(
            PlanRow(
                plan,
                row.get("n", 0),
                _qty(row.get("suggested")),
                _qty(row.get("reported")),
                row.get("adjusted", 0),
            )
        )
    return out


def get_plan(scope: Scope, plan_id: int) -> DemandPlan:
    """The plan if the scope may open it; ``DemandPlan.DoesNotExist`` otherwise (a 404)."""
    with use_scope(scope):
        return visible_plans(scope).get(pk=plan_id)


def plan_lines(scope: Scope, plan: DemandPlan) -> list[DemandLine]:
    with use_scope(scope):
        return list(DemandLine.objects.filter(plan=plan).select_related("item").order_by("item__item_code"))


def line_in_plan(scope: Scope, plan: DemandPlan, line_id: int) -> bool:
    with use_scope(scope):
        return DemandLine.objects.filter(pk=line_id, plan=plan).exists()


def line_comments(scope: Scope, plan: DemandPlan) -> dict[int, list[DemandComment]]:
    with use_scope(scope):
        comments = list(
            DemandComment.objects.filter(line__plan=plan)
            .select_related("created_by", "department")
            .order_by("created_at")
        )
    out: dict[int, list[DemandComment]] = defaultdict(list)
    for comment in comments:
        out[comment.line_id].append(comment)
    return dict(out)


def item_specs(scope: Scope, plan: DemandPlan) -> dict[int, tuple[str, str]]:
    """Per item of the plan's batch: (dosage forms, strengths) of its selected products, for the sheet."""
    with use_scope(scope):
        rows = list(
            SelectedProduct.objects.filter(batch_id=plan.batch_id)
            .select_related("product")
            .values_list("item_id", "product__dosage_form", "product__strength")
        )
    forms: dict[int, list[str]] = defaultdict(list)
    strengths: dict[int, list[str]] = defaultdict(list)
    for item_id, form, strength in rows:
        if form and form not in forms[item_id]:
            forms[item_id].append(form)
        if strength and strength not in strengths[item_id]:
            strengths[item_id].append(strength)
    return {k: ("、".join(forms.get(k, [])), "、".join(strengths.get(k, []))) for k in set(forms) | set(strengths)}


# --------------------------------------------------------------------------------------------------
# What the acting scope may do next


def allowed_steps(scope: Scope, plan: DemandPlan) -> dict[str, bool]:
    """Which steps of the plan's workflow the scope may take now (the buttons a page shows)."""
    status = plan.status
    hospital = scope.level is not Level.REGION
    write = hospital and scope.can("demand", "write")
    approve = hospital and scope.can("demand", "approve")
    return {
        "edit": write and status == DemandStatus.DRAFT,
        "submit": write and status == DemandStatus.DRAFT,
        "approve": approve and status == DemandStatus.PENDING,
        "return": approve and status == DemandStatus.PENDING,
        "lock": write and status == DemandStatus.APPROVED,
        "comment": hospital and scope.can("demand", "comment") and status in (DemandStatus.DRAFT, DemandStatus.PENDING),
        "export": hospital and scope.can("demand", "export"),
    }


def sparkline(method: dict[str, Any], width: int = 160, height: int = 28) -> dict[str, Any]:
    """SVG points of a line's monthly use (and its excluded months) for the detail page."""
    series = method.get("series") or {}
    labels = list(series)
    values = [Decimal(series[k]) for k in labels]
    if not values:
        return {"points": "", "excluded": [], "width": width, "height": height}
    top = max(values) or Decimal(1)
    step = Decimal(width - 4) / max(len(values) - 1, 1)

    def xy(i: int, v: Decimal) -> tuple[str, str]:
        x = 2 + step * i
        y = Decimal(height - 2) - (Decimal(height - 4) * v / top)
        return f"{x:.1f}", f"{y:.1f}"

    points = " ".join(",".join(xy(i, v)) for i, v in enumerate(values))
    excluded = set(method.get("excluded") or [])
    dots = [xy(i, v) for i, (k, v) in enumerate(zip(labels, values, strict=True)) if k in excluded]
    return {"points": points, "excluded": dots, "width": width, "height": height}


def month_table(method: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows (month, use, purchases, excluded as marked / detected) for the line's monthly table."""
    series = method.get("series") or {}
    purchased = method.get("purchased") or {}
    marked = set(method.get("marked") or [])
    detected = set(method.get("detected") or [])
    return [
        {
            "month": month,
            "used": series[month],
            "purchased": purchased.get(month),
            "marked": month in marked,
            "detected": month in detected,
        }
        for month in series
    ]
