"""Department targets (R-H3; XJ 五(四)): generate, adjust, publish and unpublish, each audited.

* **Generate** (``target:write``, the VBP office): for an institution × batch × agreement year, every
  agreement's agreed quantity is split across departments in proportion to their historical use and
  across calendar slices (month / quarter / half-year) by days — ``allocation.targets_by_department_and_slice``,
  whole units, exact in both margins (semantics.md "Department targets"). Only departments on the
  hospital's department list get targets; dispensing under other codes is reported, not counted. An
  item no listed department used in the window is split equally over all the hospital's departments
  (the rule's "no history" case) for the office to adjust. Lines store ``generated_qty = qty``. A draft
  plan may be generated again (its lines are replaced); a published one must be unpublished first.
* **Adjust** (``target:write``): new values for some cells (department × slice) of one item, with a
  reason; refused unless the item's total stays exactly its generated total (the agreed quantity).
* **Publish** (``target:publish``): department heads then see their own lines. **Unpublish**
  (``target:publish``, with a reason) re-opens a published plan for changes; both are audited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jicai.core import audit
from jicai.core.tenancy import Scope, use_scope
from jicai.hospital.common import WorkflowError, acting_institution, audited, fields_of, require
from jicai.hospital.models import TargetLine, TargetPlan, TargetStatus
from jicai.hospital.targets import queries
from jicai.organizations.models import Department
from jicai.policy.allocation import (
    DepartmentUsage,
    Granularity,
    Usage,
    UsageBasis,
    reference_window,
    targets_by_department_and_slice,
)
from jicai.programme.models import Batch, Item

PLAN_FIELDS = ("status", "granularity", "window_from", "window_to", "published_by", "published_at")
MIN_REFERENCE_MONTHS = 1
MAX_REFERENCE_MONTHS = 36
"""The profile schema's bounds for ``department_targets.reference_months``."""


@dataclass
class Generated:
    plan: TargetPlan
    lines: int
    unknown_departments: dict[str, list[str]] = field(default_factory=dict)
    without_history: list[str] = field(default_factory=list)


def _home(home: Path | None) -> Path:
    return Path(home) if home is not None else Path(settings.JICAI_HOME)


def _draft(plan: TargetPlan) -> None:
    if plan.status != TargetStatus.DRAFT:
        raise WorkflowError(
            "任务量已发布，不能修改；如需调整请先撤回发布", "the targets are published: unpublish them first"
        )


def _split_agreements(
    history: queries.History,
    departments: Mapping[str, Department],
    items: Mapping[str, Item],
    slices: Granularity,
    basis: UsageBasis,
) -> tuple[list[dict[str, Any]], dict[str, list[str]], list[str], list[tuple[dt.date, dt.date]]]:
    """Each agreement's department × slice cells (the rule), with the warnings the office should see."""
    result_unknown: dict[str, list[str]] = {}
    without_history: list[str] = []
    planned: list[dict[str, Any]] = []
    windows: list[tuple[dt.date, dt.date]] = []
    for agreement in history.agreements:
        agreed = Decimal(agreement.agreed_qty)
        if agreed < 0 or agreed != agreed.to_integral_value(rounding=ROUND_DOWN):
            raise WorkflowError(
                f"品种 {agreement.item_code} 的约定采购量 {agreed} 不是整数单位，无法按整数分解",
                f"agreed quantity {agreed} of {agreement.item_code} is not a whole number of units",
            )
        usage = history.usage.get(agreement.agreement_id, {})
        unknown = sorted(code for code in usage if code not in departments)
        if unknown:
            result_unknown[agreement.item_code] = unknown
        known: dict[str, Usage] = {code: use for code, use in usage.items() if code in departments}
        if not any(isinstance(use, DepartmentUsage) and use.counted(basis) for use in known.values()):
            without_history.append(agreement.item_code)
            known = dict.fromkeys(departments, Decimal(0))
        table = targets_by_department_and_slice(
            agreed, known, agreement.period_start, agreement.period_end, slices, basis=basis
        )
        windows.append(reference_window(agreement.period_start, basis))
        for (dept, piece), qty in table.cells.items():
            planned.append(
                {
                    "item": items[agreement.item_code],
                    "department": departments[dept],
                    "slice_label": piece.label,
                    "slice_start": piece.start,
                    "slice_end": piece.end,
                    "qty": int(qty),
                }
            )
    return planned, result_unknown, without_history, windows


def do_generate_targets(
    acting: Scope,
    *,
    batch_code: str,
    year: int,
    granularity: str = Granularity.MONTH.value,
    reference_months: int = 12,
    institution_code: str | None = None,
    home: Path | None = None,
) -> Generated:
    """Generate (or, for a draft, regenerate) the year's department targets by time slice (R-H3)."""
    require(acting, "target", "write")
    try:
        slices = Granularity(granularity)
    except ValueError:
        raise WorkflowError(f"未知的时间粒度：{granularity}", f"unknown granularity {granularity}") from None
    if not MIN_REFERENCE_MONTHS <= reference_months <= MAX_REFERENCE_MONTHS:
        raise WorkflowError("历史区间应为 1–36 个月", f"the history window is 1–36 months, not {reference_months}")
    with use_scope(acting):
        institution = acting_institution(acting, institution_code)
        batch = Batch.objects.get(code=batch_code)
        departments = {d.code: d for d in Department.objects.filter(institution=institution)}
        items = {i.item_code: i for i in Item.objects.filter(batch=batch)}
    history = queries.department_history(
        acting,
        _home(home),
        institution=institution.code,
        batch=batch.code,
        year=year,
        reference_months=reference_months,
    )
    if not history.agreements:
        raise WorkflowError(
            f"{institution.name}在{batch.name}第 {year} 年没有约定采购量",
            f"no agreed volumes for {batch_code} year {year}",
        )
    if not departments:
        raise WorkflowError("本院尚未维护科室，无法分解任务量", "the hospital has no departments to give targets to")
    basis = UsageBasis(reference_months=reference_months)
    planned, result_unknown, without_history, windows = _split_agreements(history, departments, items, slices, basis)
    window_from = min(w[0] for w in windows)
    window_to = max(w[1] for w in windows)
    with transaction.atomic(), use_scope(acting):
        plan = TargetPlan.objects.select_for_update().filter(institution=institution, batch=batch, year=year).first()
        old = None
        if plan is None:
            plan = TargetPlan(institution=institution, batch=batch, year=year, created_by_id=acting.actor_id)
        else:
            _draft(plan)
            old = fields_of(plan, PLAN_FIELDS) | {"lines": TargetLine.objects.filter(plan=plan).count()}
            TargetLine.objects.filter(plan=plan).delete()
        plan.granularity, plan.window_from, plan.window_to = slices.value, window_from, window_to
        plan.status = TargetStatus.DRAFT
        plan.save()
        TargetLine.objects.bulk_create(
            [
                TargetLine(
                    institution=institution,
                    plan=plan,
                    generated_qty=row["qty"],
                    created_by_id=acting.actor_id,
                    **row,
                )
                for row in planned
            ]
        )
        audited(
            acting,
            "hospital.targets.generate" if old is None else "hospital.targets.regenerate",
            plan,
            old=old,
            new=fields_of(plan, PLAN_FIELDS) | {"lines": len(planned)},
            context={
                "batch": batch.code,
                "year": year,
                "reference_months": reference_months,
                "totals": {a.item_code: str(a.agreed_qty) for a in history.agreements},
                "unknown_departments": result_unknown,
                "without_history": without_history,
            },
        )
    return Generated(plan, len(planned), result_unknown, without_history)


def _plan_for_update(acting: Scope, plan_id: int) -> TargetPlan:
    with use_scope(acting):
        plan: TargetPlan = TargetPlan.objects.select_for_update().select_related("batch", "institution").get(pk=plan_id)
    return plan


def do_adjust_targets(
    acting: Scope,
    plan_id: int,
    *,
    item_code: str,
    values: Mapping[tuple[str, str], int],
    reason: str,
) -> int:
    """Set cells ``(department code, slice label) → qty`` of one item; the item's total must stay exact.

    Returns the number of cells changed. A department of the hospital without a line yet gets one
    (generated 0); a slice must be one of the item's.
    """
    require(acting, "target", "write")
    reason = reason.strip()
    if not reason:
        raise WorkflowError("请填写调整原因", "give a reason for the adjustment")
    with transaction.atomic():
        plan = _plan_for_update(acting, plan_id)
        _draft(plan)
        with use_scope(acting):
            lines = list(
                TargetLine.objects.select_for_update()
                .filter(plan=plan, item__item_code=item_code)
                .select_related("item", "department")
            )
            if not lines:
                raise WorkflowError(f"本计划没有品种 {item_code}", f"the plan has no item {item_code}")
            departments = {d.code: d for d in Department.objects.filter(institution_id=plan.institution_id)}
        item = lines[0].item
        slices = {ln.slice_label: (ln.slice_start, ln.slice_end) for ln in lines}
        cells = {(ln.department.code, ln.slice_label): ln for ln in lines}
        generated = sum(ln.generated_qty for ln in lines)
        new_qty = {key: ln.qty for key, ln in cells.items()}
        for (dept, label), value in values.items():
            if label not in slices:
                raise WorkflowError(f"没有时间段 {label}", f"unknown slice {label}")
            if dept not in departments:
                raise WorkflowError(f"本院没有科室 {dept}", f"unknown department {dept}")
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise WorkflowError(f"任务量应为不小于 0 的整数：{value}", f"targets are whole numbers ≥ 0: {value}")
            new_qty[(dept, label)] = value
        total = sum(new_qty.values())
        if total != generated:
            diff = total - generated
            raise WorkflowError(
                f"{item.generic_name}（{item.item_code}）调整后合计 {total}，约定采购量 {generated}，"
                f"{'多' if diff > 0 else '少'} {abs(diff)}；请在科室或时间段之间调剂，保持合计不变",
                f"{item.item_code}: the targets add up to {total}, not {generated} (difference {diff:+d})",
            )
        changed: list[tuple[TargetLine, dict[str, Any]]] = []
        created: list[TargetLine] = []
        now = timezone.now()
        for (dept, label), qty in sorted(new_qty.items()):
            line = cells.get((dept, label))
            if line is None:
                if qty:
                    start, end = slices[label]
                    created.append(
                        TargetLine(
                            institution_id=plan.institution_id,
                            plan=plan,
                            item=item,
                            department=departments[dept],
                            slice_label=label,
                            slice_start=start,
                            slice_end=end,
                            generated_qty=0,
                            qty=qty,
                            reason=reason,
                            created_by_id=acting.actor_id,
                        )
                    )
            elif line.qty != qty:
                changed.append((line, {"qty": line.qty, "reason": line.reason}))
                line.qty, line.reason, line.updated_at = qty, reason, now
        with use_scope(acting):
            if changed:
                TargetLine.objects.bulk_update([ln for ln, _ in changed], ["qty", "reason", "updated_at"])
            if created:
                TargetLine.objects.bulk_create(created)
        context = {"plan": plan.pk, "item": item_code}
        changes = [
            audit.Change(
                "hospital.targets.adjust",
                TargetLine._meta.label,
                line.pk,
                str(line)[:255],
                old,
                {"qty": line.qty, "reason": reason},
                context,
            )
            for line, old in changed
        ] + [
            audit.Change(
                "hospital.targets.adjust",
                TargetLine._meta.label,
                line.pk,
                str(line)[:255],
                {"qty": 0},
                {"qty": line.qty, "reason": reason},
                context | {"created": True},
            )
            for line in created
        ]
        audit.record(acting, changes)
    return len(changes)


def _save_plan(acting: Scope, plan: TargetPlan, fields: list[str]) -> None:
    plan.updated_at = timezone.now()
    if acting.is_system or acting.can("target", "write"):
        with use_scope(acting):
            plan.save(update_fields=[*fields, "updated_at"])
    else:  # publish without write: checked above, written as the system
        with use_scope(Scope.system(f"{acting.actor_name} via targets workflow")):
            plan.save(update_fields=[*fields, "updated_at"])


def do_publish(acting: Scope, plan_id: int) -> TargetPlan:
    """Draft → published: department heads see their targets (R-H3 "明确各临床科室任务目标")."""
    require(acting, "target", "publish")
    with transaction.atomic():
        plan = _plan_for_update(acting, plan_id)
        _draft(plan)
        blocks = queries.plan_matrix(acting, plan, agreed=queries.agreed_quantities(acting, plan))
        if not blocks:
            raise WorkflowError("计划没有任务量，无法发布", "the plan has no targets")
        off = [
            f"{b.item.item_code}（{b.total}≠{b.agreed if b.agreed is not None else b.generated}）"
            for b in blocks
            if not b.exact
        ]
        if off:
            raise WorkflowError(
                f"以下品种合计与约定采购量不符，请重新生成或调整：{'、'.join(off)}",
                f"items whose targets do not add up to the agreed quantity: {', '.join(off)}",
            )
        old = fields_of(plan, PLAN_FIELDS)
        plan.status, plan.published_by_id, plan.published_at = TargetStatus.PUBLISHED, acting.actor_id, timezone.now()
        _save_plan(acting, plan, ["status", "published_by", "published_at"])
        audited(
            acting,
            "hospital.targets.publish",
            plan,
            old=old,
            new=fields_of(plan, PLAN_FIELDS),
            context={"items": len(blocks), "total": sum(b.total for b in blocks)},
        )
    return plan


def do_unpublish(acting: Scope, plan_id: int, *, reason: str) -> TargetPlan:
    """Published → draft with the reason, so the office can adjust and publish again."""
    require(acting, "target", "publish")
    if not reason.strip():
        raise WorkflowError("撤回发布时请说明原因", "say why the targets are withdrawn")
    with transaction.atomic():
        plan = _plan_for_update(acting, plan_id)
        if plan.status != TargetStatus.PUBLISHED:
            raise WorkflowError("任务量尚未发布", "the targets are not published")
        old = fields_of(plan, PLAN_FIELDS)
        plan.status, plan.published_by_id, plan.published_at = TargetStatus.DRAFT, None, None
        _save_plan(acting, plan, ["status", "published_by", "published_at"])
        audited(
            acting,
            "hospital.targets.unpublish",
            plan,
            old=old,
            new=fields_of(plan, PLAN_FIELDS),
            context={"reason": reason.strip()},
        )
    return plan
