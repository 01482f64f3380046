"""Reads of department targets (R-H3): departments' historical use, plans, the item × department × slice
matrix, a department head's own targets, and the published targets the engine's department progress uses.

Historical use is the engine's (``monitoring.departments``): each department's dispensing of the item's
products — selected, same generic and substitutes, × conversion — in the ``reference_months`` before the
agreement year (``allocation.reference_window``), a department's net use of a kind floored at 0.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from django.db.models import Count, QuerySet, Sum

from jicai.core.tenancy import Level, Scope, use_scope
from jicai.facts.query import FactQuery
from jicai.hospital.models import TargetLine, TargetPlan, TargetStatus
from jicai.monitoring.departments import TARGET_SCHEMA
from jicai.monitoring.progress import item_qty_sql
from jicai.monitoring.reference import load_reference
from jicai.policy.allocation import DEFAULT_USAGE_BASIS, DepartmentUsage, Granularity
from jicai.policy.profile import ProfileLibrary
from jicai.programme.models import Agreement

# --------------------------------------------------------------------------------------------------
# History


@dataclass(frozen=True)
class AgreementRow:
    agreement_id: int
    item_code: str
    period_start: dt.date
    period_end: dt.date
    agreed_qty: Decimal


@dataclass
class History:
    agreements: list[AgreementRow] = field(default_factory=list)
    usage: dict[int, dict[str, DepartmentUsage]] = field(default_factory=dict)


def department_history(
    scope: Scope, home: Path, *, institution: str, batch: str, year: int, reference_months: int
) -> History:
    """The year's agreements of the institution and batch, and each department's use before each."""
    reference = load_reference(scope)
    agreements = reference.agreements.filter(
        pc.and_(
            pc.and_(
                pc.equal(reference.agreements["institution_code"], institution),
                pc.equal(reference.agreements["batch_code"], batch),
            ),
            pc.equal(reference.agreements["year"], year),
        )
    )
    out = History(
        agreements=[
            AgreementRow(r["agreement_id"], r["item_code"], r["period_start"], r["period_end"], r["agreed_qty"])
            for r in sorted(agreements.to_pylist(), key=lambda r: r["item_code"])
        ]
    )
    if not out.agreements:
        return out
    with FactQuery(home, scope) as q:
        q.register("agreements", agreements)
        q.register("item_products", reference.item_products)
        qty = item_qty_sql(q, "dispensing", qty="d.qty", conversion="p.conversion")
        sql = f"""
            WITH ag AS (
                SELECT a.*, CAST(a.period_start - to_months(CAST($months AS INTEGER)) AS DATE) AS window_start,
                       a.period_start - 1 AS window_end
                FROM agreements a
            ),
            prod AS (SELECT DISTINCT batch_code, item_code, product_code, kind, conversion FROM item_products)
            SELECT ag.agreement_id, d.department_code,
                   greatest(coalesce(sum({qty}) FILTER (WHERE p.kind = 'selected'), 0), 0) AS selected,
                   greatest(coalesce(sum({qty}) FILTER (WHERE p.kind = 'same_generic'), 0), 0) AS non_selected,
                   greatest(coalesce(sum({qty}) FILTER (WHERE p.kind = 'substitute'), 0), 0) AS substitutes
            FROM ag
            JOIN prod p ON p.batch_code = ag.batch_code AND p.item_code = ag.item_code
            JOIN dispensing d ON d.institution_code = ag.institution_code AND d.product_code = p.product_code
                AND d.dispensed_on BETWEEN ag.window_start AND ag.window_end
            WHERE coalesce(d.department_code, '') <> ''
            GROUP BY ALL
        """  # noqa: S608 - identifiers are ours; values are bound
        for agreement_id, dept, selected, non_selected, substitutes in q.con.execute(
            sql, {"months": reference_months}
        ).fetchall():
            out.usage.setdefault(agreement_id, {})[dept] = DepartmentUsage(
                Decimal(selected), Decimal(non_selected), Decimal(substitutes)
            )
    return out


def target_defaults(batch_profile: str, on: dt.date, home: Path) -> dict[str, Any]:
    """The profile's history window and slice length for the generate form (R-H3 profile settings)."""
    defaults: dict[str, Any] = {
        "reference_months": DEFAULT_USAGE_BASIS.reference_months,
        "granularity": Granularity.MONTH.value,
    }
    try:
        profile = ProfileLibrary([home / "profiles"]).resolve(batch_profile, on)
    except Exception:  # an unknown or broken profile: the rule's own defaults
        return defaults
    defaults["reference_months"] = profile.get_or("department_targets.reference_months", defaults["reference_months"])
    defaults["granularity"] = profile.get_or("department_targets.granularity", defaults["granularity"])
    return defaults


# --------------------------------------------------------------------------------------------------
# Plans


def visible_plans(scope: Scope) -> QuerySet[TargetPlan]:
    """Plans the scope may open: a hospital's all; a department head's published ones only."""
    qs = TargetPlan.objects.select_related("institution", "batch", "published_by", "created_by")
    if scope.level is Level.DEPARTMENT:
        qs = qs.filter(status=TargetStatus.PUBLISHED)
    return qs


@dataclass(frozen=True)
class PlanRow:
    plan: TargetPlan
    lines: int
    items: int
    departments: int
    total: int


def plan_rows(scope: Scope) -> list[PlanRow]:
    """The list page: plans with counts and totals (two queries)."""
    with use_scope(scope):
        plans = list(visible_plans(scope).order_by("-year", "batch__code", "institution__code")[:500])
        totals = {
            row["plan"]: row
            for row in TargetLine.objects.filter(plan__in=[p.pk for p in plans])
            .values("plan")
            .annotate(
                n=Count("id"),
                items=Count("item", distinct=True),
                departments=Count("department", distinct=True),
                total=Sum("qty"),
            )
        }
    return [
        PlanRow(
            plan,
            totals.get(plan.pk, {}).get("n", 0),
            totals.get(plan.pk, {}).get("items", 0),
            totals.get(plan.pk, {}).get("departments", 0),
            totals.get(plan.pk, {}).get("total") or 0,
        )
        for plan in plans
    ]


def get_plan(scope: Scope, plan_id: int) -> TargetPlan:
    """The plan if the scope may open it; ``TargetPlan.DoesNotExist`` otherwise (a 404)."""
    with use_scope(scope):
        return visible_plans(scope).get(pk=plan_id)


@dataclass
class ItemBlock:
    """One item's department × slice matrix with its totals and the exact-total check."""

    item: Any
    slices: list[tuple[str, dt.date, dt.date]]
    rows: list[dict[str, Any]]
    slice_totals: list[int]
    total: int
    generated: int
    agreed: Decimal | None

    @property
    def difference(self) -> int:
        return self.total - self.generated

    @property
    def exact(self) -> bool:
        return self.total == self.generated and (self.agreed is None or Decimal(self.total) == self.agreed)


def plan_matrix(scope: Scope, plan: TargetPlan, *, agreed: dict[str, Decimal] | None = None) -> list[ItemBlock]:
    """Per item: the departments (rows) × slices (columns) of the lines the scope sees."""
    with use_scope(scope):
        lines = list(
            TargetLine.objects.filter(plan=plan)
            .select_related("item", "department")
            .order_by("item__item_code", "department__code", "slice_start")
        )
    by_item: dict[int, list[TargetLine]] = defaultdict(list)
    items: dict[int, Any] = {}
    for line in lines:
        by_item[line.item_id].append(line)
        items[line.item_id] = line.item
    blocks = []
    for item_id, item_lines in by_item.items():
        slices = sorted({(ln.slice_label, ln.slice_start, ln.slice_end) for ln in item_lines}, key=lambda s: s[1])
        labels = [s[0] for s in slices]
        cells: dict[str, dict[str, TargetLine]] = defaultdict(dict)
        departments: dict[str, Any] = {}
        for ln in item_lines:
            cells[ln.department.code][ln.slice_label] = ln
            departments[ln.department.code] = ln.department
        rows = []
        for code in sorted(departments):
            row_cells = [cells[code].get(label) for label in labels]
            rows.append(
                {
                    "department": departments[code],
                    "cells": [
                        {"label": label, "qty": c.qty if c else 0, "generated": c.generated_qty if c else 0, "line": c}
                        for label, c in zip(labels, row_cells, strict=True)
                    ],
                    "total": sum(c.qty for c in row_cells if c),
                    "generated": sum(c.generated_qty for c in row_cells if c),
                }
            )
        slice_totals = [sum(r["cells"][i]["qty"] for r in rows) for i in range(len(labels))]
        item = items[item_id]
        blocks.append(
            ItemBlock(
                item=item,
                slices=slices,
                rows=rows,
                slice_totals=slice_totals,
                total=sum(slice_totals),
                generated=sum(r["generated"] for r in rows),
                agreed=(agreed or {}).get(item.item_code),
            )
        )
    return sorted(blocks, key=lambda b: b.item.item_code)


def agreed_quantities(scope: Scope, plan: TargetPlan) -> dict[str, Decimal]:
    """The agreed quantity of each item of the plan's institution, batch and year (for the check)."""
    with use_scope(scope):
        return dict(
            Agreement.objects.filter(institution_id=plan.institution_id, batch_id=plan.batch_id, year=plan.year)
            .select_related("item")
            .values_list("item__item_code", "agreed_qty")
        )


def my_targets(scope: Scope) -> list[dict[str, Any]]:
    """A department head's published targets: per plan and item, the slices and the year's total."""
    with use_scope(scope):
        lines = list(
            TargetLine.objects.filter(plan__status=TargetStatus.PUBLISHED)
            .select_related("plan", "plan__batch", "item", "department")
            .order_by("-plan__year", "plan__batch__code", "item__item_code", "slice_start")
        )
    groups: dict[tuple[int, int], dict[str, Any]] = {}
    for line in lines:
        key = (line.plan_id, line.item_id)
        group = groups.setdefault(
            key, {"plan": line.plan, "item": line.item, "department": line.department, "slices": [], "total": 0}
        )
        group["slices"].append(line)
        group["total"] += line.qty
    return list(groups.values())


# --------------------------------------------------------------------------------------------------
# The engine's source of published targets (registered in jicai.monitoring.reports.TARGET_SOURCES)


def published_target_table(scope: Scope, request: Any) -> pa.Table | None:
    """Published plans' targets in ``scope`` summed over slices (``departments.TARGET_SCHEMA``), with a
    NULL-department row per item of each plan marking its agreement as covered; None when none."""
    if not scope.is_system and not scope.can("target", "read"):
        return None
    with use_scope(scope):
        plans = TargetPlan.objects.filter(status=TargetStatus.PUBLISHED).select_related("batch", "institution")
        if getattr(request, "batch", None):
            plans = plans.filter(batch__code=request.batch)
        if getattr(request, "institution", None):
            plans = plans.filter(institution__code=request.institution)
        found = {p.pk: p for p in plans}
        if not found:
            return None
        sums = list(
            TargetLine.objects.filter(plan__in=list(found))
            .values("plan", "item__item_code", "department__code")
            .annotate(total=Sum("qty"))
        )
    # which items each plan covers, whichever departments' lines the scope may see (plans checked above)
    covered = set(TargetLine.unguarded.filter(plan__in=list(found)).values_list("plan", "item__item_code").distinct())
    rows: list[dict[str, Any]] = []
    for plan_id, item_code in sorted(covered):
        plan = found[plan_id]
        rows.append(_target_row(plan, item_code, None, Decimal(0)))
    for s in sums:
        rows.append(_target_row(found[s["plan"]], s["item__item_code"], s["department__code"], Decimal(s["total"])))
    return pa.Table.from_pylist(rows, schema=TARGET_SCHEMA)


def _target_row(plan: TargetPlan, item_code: str, department: str | None, qty: Decimal) -> dict[str, Any]:
    return {
        "batch_code": plan.batch.code,
        "item_code": item_code,
        "institution_code": plan.institution.code,
        "year": plan.year,
        "department_code": department,
        "target_qty": qty,
    }
