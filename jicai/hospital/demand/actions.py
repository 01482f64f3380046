"""Demand reporting (R-H2; XJ 五(二)1): every write of the workflow, each audited with old and new values.

The plan's life: **draft** (pharmacy or the VBP office creates it for a round; lines carry the suggestion
from history, ``policy.demand``; they adjust quantities with a reason and mark shortage months;
clinicians comment) → **pending** (submitted for approval: nothing but comments can change) →
**approved** (leadership signs off; or *returned* to draft with a note) → **locked** (submitted to the
bureau; nothing changes any more, the bureau of the region can read it).

Who (``accounts.permissions``): ``demand:write`` creates, adjusts, marks, submits and locks (pharmacy, VBP
office); ``demand:approve`` approves or returns (leadership); ``demand:comment`` comments (medical
affairs, department heads). Steps taken by a role without ``demand:write`` (approve, return, comment)
are written after the permission and scope checks here, as the system, with the audit row in the real
actor's name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jicai.core.tenancy import Scope, use_scope
from jicai.hospital.common import WorkflowError, acting_institution, audited, fields_of, require
from jicai.hospital.demand import queries
from jicai.hospital.models import AdjustmentReason, DemandComment, DemandLine, DemandPlan, DemandStatus
from jicai.policy.demand import (
    DEFAULT_DEMAND_PARAMS,
    DemandParams,
    MonthUse,
    forecast_demand,
    history_window,
    month_label,
    month_start,
    monthly_series,
)
from jicai.programme.models import Batch, Item

MIN_HISTORY_MONTHS = 12
MAX_HISTORY_MONTHS = 24
"""R-H2: "last 12–24 months" of history."""

MAX_COMMENT = 2000

PLAN_FIELDS = ("status", "history_from", "history_to", "note", "submitted_by", "approved_by")
LINE_FIELDS = ("suggested_qty", "adjusted_qty", "reason", "reason_note", "months_used", "months_excluded")


@contextmanager
def _as_system(acting: Scope) -> Iterator[None]:
    """Write as the system after this module checked the actor's permission and territory."""
    with use_scope(Scope.system(f"{acting.actor_name} via demand workflow")):
        yield


def _home(home: Path | None) -> Path:
    return Path(home) if home is not None else Path(settings.JICAI_HOME)


def _params_json(params: DemandParams) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in asdict(params).items()}


def _params_from(data: dict[str, Any] | None) -> DemandParams:
    if not data:
        return DEFAULT_DEMAND_PARAMS
    values = dict(data)
    values["shortage_ratio"] = Decimal(str(values.get("shortage_ratio", DEFAULT_DEMAND_PARAMS.shortage_ratio)))
    return DemandParams(**values)


def _month(label: str) -> dt.date:
    try:
        return dt.date.fromisoformat(f"{label}-01")
    except ValueError:
        raise WorkflowError(f"月份格式应为 YYYY-MM：{label}", f"months look like YYYY-MM: {label}") from None


def _forecast_line(line_method: dict[str, Any], round_start: dt.date, marked: Sequence[dt.date]) -> dict[str, Any]:
    """The suggestion from a line's stored series (``method``), with ``marked`` shortage months."""
    used = {_month(k): Decimal(v) for k, v in (line_method.get("series") or {}).items()}
    raw = line_method.get("purchased")
    purchased = None if raw is None else {_month(k): Decimal(v) for k, v in raw.items()}
    months = sorted(used)
    series: tuple[MonthUse, ...] = tuple(
        MonthUse(m, used[m], None if purchased is None else purchased.get(m, Decimal(0))) for m in months
    )
    params = _params_from(line_method.get("params"))
    forecast = forecast_demand(series, round_start, marked=marked, params=params)
    method = dict(line_method)
    method.update(forecast.as_json())
    return {"forecast": forecast, "method": method}


def _line_values(forecast: Any) -> dict[str, Any]:
    return {
        "history_qty": forecast.history_qty.quantize(Decimal("0.0001")),
        "months_used": len(forecast.months_used),
        "months_excluded": [month_label(m) for m in forecast.excluded],
        "suggested_qty": forecast.suggested_qty,
    }


# --------------------------------------------------------------------------------------------------
# Create


def do_create_plan(
    acting: Scope,
    *,
    batch_code: str,
    history_months: int = DEFAULT_DEMAND_PARAMS.history_months,
    source: str = "dispensing",
    until: dt.date | None = None,
    marked: Mapping[str, Sequence[str]] | None = None,
    note: str = "",
    institution_code: str | None = None,
    home: Path | None = None,
    params: DemandParams = DEFAULT_DEMAND_PARAMS,
) -> DemandPlan:
    """Create the round's demand report with one suggested line per item of the batch (R-H2).

    ``history_months`` (12–24) whole months end before the round's first month, or before ``until``'s
    month (default: today) when earlier; ``source`` is ``dispensing`` (shortage months also detected
    from purchases) or ``purchases``; ``marked`` the pharmacy's shortage months per item code (YYYY-MM).
    """
    require(acting, "demand", "write")
    if source not in queries.SOURCES:
        raise WorkflowError(f"未知的用量来源：{source}", f"unknown source {source}")
    if not MIN_HISTORY_MONTHS <= history_months <= MAX_HISTORY_MONTHS:
        raise WorkflowError(
            f"历史用量取 {MIN_HISTORY_MONTHS}–{MAX_HISTORY_MONTHS} 个月",
            f"history must be 12–24 months, not {history_months}",
        )
    params = DemandParams(**{**asdict(params), "history_months": history_months})
    with use_scope(acting):
        institution = acting_institution(acting, institution_code)
        batch = Batch.objects.get(code=batch_code)
        items = list(Item.objects.filter(batch=batch).order_by("item_code"))
        if not items:
            raise WorkflowError("该批次没有品种，无法生成需求申报", f"batch {batch_code} has no items")
        if DemandPlan.objects.filter(institution=institution, batch=batch).exists():
            raise WorkflowError(
                f"{institution.name}已有{batch.name}的需求申报", f"a demand report for {batch_code} exists already"
            )
    first, last = history_window(batch.start_date, history_months, until=until or timezone.localdate())
    history = queries.item_history(
        acting, _home(home), batch=batch.code, institution=institution.code, first=first, last=last
    )
    marked = marked or {}
    with transaction.atomic(), use_scope(acting):
        plan = DemandPlan(
            institution=institution,
            batch=batch,
            history_from=first,
            history_to=last,
            note=note,
            created_by_id=acting.actor_id,
        )
        plan.save()
        lines = []
        for item in items:
            found = history.get(item.item_code, queries.ItemHistory())
            if source == "dispensing":
                series = monthly_series(first, last, found.used, found.purchased)
            else:  # purchases are the use: a month without an order is no evidence of a shortage
                series = monthly_series(first, last, found.purchased)
            shortage = [_month(m) for m in marked.get(item.item_code, ())]
            forecast = forecast_demand(series, batch.start_date, marked=shortage, params=params)
            method: dict[str, Any] = {
                "source": source,
                "window": [month_label(first), month_label(last)],
                "round_start": batch.start_date.isoformat(),
                "params": _params_json(params),
                "series": {month_label(m.month): str(m.used) for m in series},
                "purchased": None
                if source != "dispensing"
                else {month_label(m.month): str(m.purchased) for m in series},
            }
            method.update(forecast.as_json())
            lines.append(
                DemandLine(
                    institution=institution,
                    plan=plan,
                    item=item,
                    method=method,
                    created_by_id=acting.actor_id,
                    **_line_values(forecast),
                )
            )
        DemandLine.objects.bulk_create(lines)
        audited(
            acting,
            "hospital.demand.create",
            plan,
            new=fields_of(plan, PLAN_FIELDS) | {"batch": batch.code, "institution": institution.code},
            context={
                "source": source,
                "history_months": history_months,
                "lines": {line.item.item_code: str(line.suggested_qty) for line in lines},
            },
        )
    return plan


# --------------------------------------------------------------------------------------------------
# Lines: adjust, mark shortage months, comment


def _line_for_update(acting: Scope, line_id: int) -> DemandLine:
    line: DemandLine = (
        DemandLine.objects.select_for_update().select_related("plan", "plan__batch", "item").get(pk=line_id)
    )
    return line


def _editable(plan: DemandPlan) -> None:
    if plan.status != DemandStatus.DRAFT:
        raise WorkflowError(
            f"需求申报{plan.get_status_display()}，不能再修改", f"the demand report is {plan.status}: no more changes"
        )


def _whole_qty(value: Decimal | int | str) -> Decimal:
    try:
        qty = Decimal(str(value).strip())
    except InvalidOperation:
        raise WorkflowError(f"申报量应为数字：{value}", f"not a number: {value}") from None
    if not qty.is_finite() or qty < 0 or qty != qty.to_integral_value():
        raise WorkflowError(f"申报量应为不小于 0 的整数：{value}", f"quantity must be a whole number ≥ 0: {value}")
    return qty.quantize(Decimal(1))


def do_adjust_line(
    acting: Scope, line_id: int, *, qty: Decimal | int | str | None, reason: str = "", note: str = ""
) -> DemandLine:
    """Set (or, with ``qty=None``, clear) the reported quantity of a line, with a reason (R-H2)."""
    require(acting, "demand", "write")
    with transaction.atomic(), use_scope(acting):
        line = _line_for_update(acting, line_id)
        _editable(line.plan)
        old = fields_of(line, LINE_FIELDS)
        if qty is None or str(qty).strip() == "":
            line.adjusted_qty, line.reason, line.reason_note = None, "", note.strip()
        else:
            if reason not in AdjustmentReason.values:
                raise WorkflowError("请选择调整原因", "choose a reason for the adjustment")
            if reason == AdjustmentReason.OTHER and not note.strip():
                raise WorkflowError("调整原因为“其他”时请填写说明", "explain an adjustment for another reason")
            line.adjusted_qty, line.reason, line.reason_note = _whole_qty(qty), reason, note.strip()
        line.save()
        audited(
            acting,
            "hospital.demand.adjust",
            line,
            old=old,
            new=fields_of(line, LINE_FIELDS),
            context={"plan": line.plan_id, "item": line.item.item_code},
        )
    return line


def do_mark_shortage(acting: Scope, line_id: int, *, months: Sequence[str], note: str = "") -> DemandLine:
    """Mark a line's shortage months (YYYY-MM; replaces the marks) and recompute its suggestion (R-H2)."""
    require(acting, "demand", "write")
    with transaction.atomic(), use_scope(acting):
        line = _line_for_update(acting, line_id)
        _editable(line.plan)
        old = fields_of(line, LINE_FIELDS) | {"marked": list(line.method.get("marked") or [])}
        marked = sorted({month_start(_month(m.strip())) for m in months if m.strip()})
        window = set((line.method.get("series") or {}).keys())
        outside = [month_label(m) for m in marked if month_label(m) not in window]
        if outside:
            raise WorkflowError(
                f"月份不在历史区间内：{'、'.join(outside)}", f"months outside the history window: {', '.join(outside)}"
            )
        result = _forecast_line(line.method, line.plan.batch.start_date, marked)
        for name, value in _line_values(result["forecast"]).items():
            setattr(line, name, value)
        line.method = result["method"] | {"shortage_note": note.strip()}
        line.save()
        audited(
            acting,
            "hospital.demand.shortage",
            line,
            old=old,
            new=fields_of(line, LINE_FIELDS) | {"marked": [month_label(m) for m in marked]},
            context={"plan": line.plan_id, "item": line.item.item_code, "note": note.strip()},
        )
    return line


def do_comment(acting: Scope, line_id: int, *, text: str) -> DemandComment:
    """A clinician's view on a line while the report is a draft or awaits approval (R-H2 "征求临床专家意见")."""
    require(acting, "demand", "comment")
    text = text.strip()
    if not text:
        raise WorkflowError("请填写意见", "the comment is empty")
    if len(text) > MAX_COMMENT:
        raise WorkflowError(f"意见不超过 {MAX_COMMENT} 字", f"comments are at most {MAX_COMMENT} characters")
    with transaction.atomic():
        with use_scope(acting):
            line = DemandLine.objects.select_related("plan", "item").get(pk=line_id)
        if line.plan.status not in (DemandStatus.DRAFT, DemandStatus.PENDING):
            raise WorkflowError(
                f"需求申报{line.plan.get_status_display()}，不再收集意见",
                f"the demand report is {line.plan.status}: comments are closed",
            )
        with _as_system(acting):
            comment = DemandComment(
                institution_id=line.institution_id,
                line=line,
                department_id=acting.department_id,
                text=text,
                created_by_id=acting.actor_id,
            )
            comment.save()
        audited(
            acting,
            "hospital.demand.comment",
            comment,
            new={"line": line.pk, "department": acting.department_id, "text": text},
            context={"plan": line.plan_id, "item": line.item.item_code},
        )
    return comment


# --------------------------------------------------------------------------------------------------
# Status steps


def _plan_for_update(acting: Scope, plan_id: int) -> DemandPlan:
    with use_scope(acting):
        plan: DemandPlan = DemandPlan.objects.select_for_update().select_related("batch", "institution").get(pk=plan_id)
    return plan


def _step(
    acting: Scope,
    plan_id: int,
    *,
    verb: str,
    frm: DemandStatus,
    to: DemandStatus,
    action: str,
    changes: dict[str, Any],
    note: str = "",
) -> DemandPlan:
    require(acting, "demand", verb)
    with transaction.atomic():
        plan = _plan_for_update(acting, plan_id)
        if plan.status != frm:
            raise WorkflowError(
                f"需求申报当前为“{plan.get_status_display()}”，不能执行此操作",
                f"the demand report is {plan.status}, not {frm}",
            )
        old = fields_of(plan, PLAN_FIELDS)
        for name, value in ({"status": to} | changes).items():
            setattr(plan, name, value)
        fields = ["status", *changes, "updated_at"]
        plan.updated_at = timezone.now()
        if acting.is_system or acting.can("demand", "write"):
            with use_scope(acting):
                plan.save(update_fields=fields)
        else:
            with _as_system(acting):
                plan.save(update_fields=fields)
        audited(acting, action, plan, old=old, new=fields_of(plan, PLAN_FIELDS), context={"note": note} if note else {})
    return plan


def do_submit(acting: Scope, plan_id: int) -> DemandPlan:
    """Draft → awaiting approval (pharmacy or VBP office); lines can no longer be changed."""
    now = timezone.now()
    return _step(
        acting,
        plan_id,
        verb="write",
        frm=DemandStatus.DRAFT,
        to=DemandStatus.PENDING,
        action="hospital.demand.submit",
        changes={"submitted_by_id": acting.actor_id, "submitted_at": now},
    )


def do_approve(acting: Scope, plan_id: int, *, note: str = "") -> DemandPlan:
    """Awaiting approval → approved (leadership: XJ "经相关院领导审核同意")."""
    return _step(
        acting,
        plan_id,
        verb="approve",
        frm=DemandStatus.PENDING,
        to=DemandStatus.APPROVED,
        action="hospital.demand.approve",
        changes={"approved_by_id": acting.actor_id, "approved_at": timezone.now()},
        note=note.strip(),
    )


def do_return(acting: Scope, plan_id: int, *, note: str) -> DemandPlan:
    """Awaiting approval → draft, with the reason (leadership sends it back)."""
    if not note.strip():
        raise WorkflowError("退回时请说明原因", "say why the report is sent back")
    return _step(
        acting,
        plan_id,
        verb="approve",
        frm=DemandStatus.PENDING,
        to=DemandStatus.DRAFT,
        action="hospital.demand.return",
        changes={"note": note.strip(), "submitted_by_id": None, "submitted_at": None},
        note=note.strip(),
    )


def do_lock(acting: Scope, plan_id: int) -> DemandPlan:
    """Approved → locked and submitted to the bureau; nothing changes afterwards."""
    return _step(
        acting,
        plan_id,
        verb="write",
        frm=DemandStatus.APPROVED,
        to=DemandStatus.LOCKED,
        action="hospital.demand.lock",
        changes={"locked_at": timezone.now()},
    )
