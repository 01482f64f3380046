"""Demand reporting API (R-H2) at /api/v1/hospital/demand: the same actions and reads as the pages.

Errors: 404 for a plan or line outside the caller's territory (or a bureau asking for an unlocked
plan), 403 for a step the caller's role may not take, 400 with ``message_zh`` / ``message_en`` for a
step the workflow does not allow now.
"""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.http import FileResponse, HttpRequest
from ninja import Router, Schema
from ninja.responses import Status

from jicai.core.tenancy import Scope, ScopeError
from jicai.hospital.common import WorkflowError
from jicai.hospital.demand import actions, export, queries
from jicai.hospital.models import DemandLine, DemandPlan
from jicai.hospital.shell import api_scope

router = Router(tags=["hospital"])


class ErrorOut(Schema):
    code: str
    field: str = ""
    message_zh: str
    message_en: str


class DemandCommentOut(Schema):
    id: int
    author: str
    department: str | None
    text: str
    created_at: dt.datetime


class DemandLineOut(Schema):
    id: int
    item_code: str
    generic_name: str
    unit: str
    history_qty: Decimal
    months_used: int
    months_excluded: list[str]
    suggested_qty: Decimal
    adjusted_qty: Decimal | None
    reported_qty: Decimal
    reason: str
    reason_note: str
    method: dict[str, Any]
    comments: list[DemandCommentOut] = []


class DemandPlanOut(Schema):
    id: int
    institution_code: str
    institution_name: str
    batch_code: str
    batch_name: str
    status: str
    history_from: dt.date
    history_to: dt.date
    note: str
    submitted_at: dt.datetime | None
    approved_by: str | None
    approved_at: dt.datetime | None
    locked_at: dt.datetime | None
    suggested_total: Decimal | None = None
    reported_total: Decimal | None = None
    steps: dict[str, bool] = {}
    lines: list[DemandLineOut] | None = None


class DemandCreateIn(Schema):
    batch: str
    history_months: int = 24
    source: str = "dispensing"
    until: dt.date | None = None
    marked: dict[str, list[str]] = {}
    note: str = ""


class DemandAdjustIn(Schema):
    qty: Decimal | None = None
    reason: str = ""
    note: str = ""


class DemandShortageIn(Schema):
    months: list[str]
    note: str = ""


class DemandCommentIn(Schema):
    text: str


class DemandNoteIn(Schema):
    note: str = ""


def _scope(request: HttpRequest) -> Scope:
    return api_scope(request, "demand")


def _error(exc: WorkflowError) -> Any:
    return Status(400, {"code": exc.code or "workflow", "message_zh": exc.message_zh, "message_en": exc.message_en})


STEP_RESPONSES: dict[int, Any] = {200: DemandPlanOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut}

NOT_FOUND = {
    "code": "demand.not_found",
    "message_zh": "需求申报不存在或不在您的权限范围内",
    "message_en": "No such report",
}


def _plan_out(scope: Scope, plan: DemandPlan, *, lines: list[DemandLine] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": plan.pk,
        "institution_code": plan.institution.code,
        "institution_name": plan.institution.name,
        "batch_code": plan.batch.code,
        "batch_name": plan.batch.name,
        "status": plan.status,
        "history_from": plan.history_from,
        "history_to": plan.history_to,
        "note": plan.note,
        "submitted_at": plan.submitted_at,
        "approved_by": plan.approved_by.get_username() if plan.approved_by else None,
        "approved_at": plan.approved_at,
        "locked_at": plan.locked_at,
        "steps": queries.allowed_steps(scope, plan),
    }
    if lines is not None:
        comments = queries.line_comments(scope, plan)
        out["lines"] = [
            {
                "id": line.pk,
                "item_code": line.item.item_code,
                "generic_name": line.item.generic_name,
                "unit": line.item.unit_label,
                "history_qty": line.history_qty,
                "months_used": line.months_used,
                "months_excluded": line.months_excluded,
                "suggested_qty": line.suggested_qty,
                "adjusted_qty": line.adjusted_qty,
                "reported_qty": line.reported_qty,
                "reason": line.reason,
                "reason_note": line.reason_note,
                "method": line.method,
                "comments": [
                    {
                        "id": c.pk,
                        "author": c.created_by.get_username() if c.created_by else "",
                        "department": c.department.code if c.department else None,
                        "text": c.text,
                        "created_at": c.created_at,
                    }
                    for c in comments.get(line.pk, [])
                ],
            }
            for line in lines
        ]
        out["suggested_total"] = sum((line.suggested_qty for line in lines), Decimal(0))
        out["reported_total"] = sum((line.reported_qty for line in lines), Decimal(0))
    return out


def _detail(scope: Scope, plan_id: int) -> Any:
    plan = queries.get_plan(scope, plan_id)
    return Status(200, _plan_out(scope, plan, lines=queries.plan_lines(scope, plan)))


def _created(scope: Scope, plan_id: int) -> Any:
    plan = queries.get_plan(scope, plan_id)
    return Status(201, _plan_out(scope, plan, lines=queries.plan_lines(scope, plan)))


@router.get("/", response=list[DemandPlanOut])
def list_plans(request: HttpRequest, batch: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
    """Demand reports: a hospital's own; a bureau's region's locked submissions."""
    scope = _scope(request)
    out = []
    for row in queries.plan_rows(scope, batch=batch, status=status):
        item = _plan_out(scope, row.plan)
        item["suggested_total"], item["reported_total"] = row.suggested, row.reported
        out.append(item)
    return out


@router.post("/", response={201: DemandPlanOut, 400: ErrorOut, 404: ErrorOut})
def create_plan(request: HttpRequest, payload: DemandCreateIn) -> Any:
    """Create the round's report with a suggestion per item from the hospital's history (demand:write)."""
    scope = _scope(request)
    try:
        plan = actions.do_create_plan(
            scope,
            batch_code=payload.batch,
            history_months=payload.history_months,
            source=payload.source,
            until=payload.until,
            marked=payload.marked,
            note=payload.note,
        )
    except WorkflowError as exc:
        return _error(exc)
    except ObjectDoesNotExist:
        return Status(404, NOT_FOUND | {"code": "batch.not_found", "message_en": "No such round"})
    return _created(scope, plan.pk)


@router.get("/{plan_id}", response={200: DemandPlanOut, 404: ErrorOut})
def get_plan(request: HttpRequest, plan_id: int) -> Any:
    scope = _scope(request)
    try:
        return _detail(scope, plan_id)
    except DemandPlan.DoesNotExist:
        return Status(404, NOT_FOUND)


def _line_step(scope: Scope, plan_id: int, line_id: int, run: Any) -> Any:
    try:
        plan = queries.get_plan(scope, plan_id)
        if not queries.line_in_plan(scope, plan, line_id):
            return Status(404, NOT_FOUND)
        run()
    except (DemandPlan.DoesNotExist, DemandLine.DoesNotExist):
        return Status(404, NOT_FOUND)
    except WorkflowError as exc:
        return _error(exc)
    return _detail(scope, plan_id)


@router.post("/{plan_id}/lines/{line_id}/adjust", response=STEP_RESPONSES)
def adjust_line(request: HttpRequest, plan_id: int, line_id: int, payload: DemandAdjustIn) -> Any:
    """Set (qty) or clear (qty null) a line's reported quantity with a reason (demand:write, draft only)."""
    scope = _scope(request)
    return _line_step(
        scope,
        plan_id,
        line_id,
        lambda: actions.do_adjust_line(scope, line_id, qty=payload.qty, reason=payload.reason, note=payload.note),
    )


@router.post("/{plan_id}/lines/{line_id}/shortage", response=STEP_RESPONSES)
def mark_shortage(request: HttpRequest, plan_id: int, line_id: int, payload: DemandShortageIn) -> Any:
    """Replace a line's marked shortage months and recompute its suggestion (demand:write, draft only)."""
    scope = _scope(request)
    return _line_step(
        scope,
        plan_id,
        line_id,
        lambda: actions.do_mark_shortage(scope, line_id, months=payload.months, note=payload.note),
    )


@router.post("/{plan_id}/lines/{line_id}/comments", response=STEP_RESPONSES)
def comment_line(request: HttpRequest, plan_id: int, line_id: int, payload: DemandCommentIn) -> Any:
    """A clinician's comment on a line (demand:comment; draft or awaiting approval)."""
    scope = _scope(request)
    return _line_step(scope, plan_id, line_id, lambda: actions.do_comment(scope, line_id, text=payload.text))


def _plan_step(scope: Scope, plan_id: int, run: Any) -> Any:
    try:
        queries.get_plan(scope, plan_id)
        run()
    except DemandPlan.DoesNotExist:
        return Status(404, NOT_FOUND)
    except WorkflowError as exc:
        return _error(exc)
    return _detail(scope, plan_id)


@router.post("/{plan_id}/submit", response=STEP_RESPONSES)
def submit_plan(request: HttpRequest, plan_id: int) -> Any:
    """Draft → awaiting approval (demand:write)."""
    scope = _scope(request)
    return _plan_step(scope, plan_id, lambda: actions.do_submit(scope, plan_id))


@router.post("/{plan_id}/approve", response=STEP_RESPONSES)
def approve_plan(request: HttpRequest, plan_id: int, payload: DemandNoteIn) -> Any:
    """Awaiting approval → approved (demand:approve: leadership)."""
    scope = _scope(request)
    return _plan_step(scope, plan_id, lambda: actions.do_approve(scope, plan_id, note=payload.note))


@router.post("/{plan_id}/return", response=STEP_RESPONSES)
def return_plan(request: HttpRequest, plan_id: int, payload: DemandNoteIn) -> Any:
    """Awaiting approval → draft with the reason (demand:approve)."""
    scope = _scope(request)
    return _plan_step(scope, plan_id, lambda: actions.do_return(scope, plan_id, note=payload.note))


@router.post("/{plan_id}/lock", response=STEP_RESPONSES)
def lock_plan(request: HttpRequest, plan_id: int) -> Any:
    """Approved → locked and submitted (demand:write)."""
    scope = _scope(request)
    return _plan_step(scope, plan_id, lambda: actions.do_lock(scope, plan_id))


@router.get("/{plan_id}/export", response={404: ErrorOut})
def export_plan(request: HttpRequest, plan_id: int) -> Any:
    """The submission sheet (采购需求量申报表) as .xlsx (demand:export)."""
    scope = _scope(request)
    try:
        plan = queries.get_plan(scope, plan_id)
    except DemandPlan.DoesNotExist:
        return Status(404, NOT_FOUND)
    if not queries.allowed_steps(scope, plan)["export"]:
        raise ScopeError(f"{scope.label} may not export demand reports")
    buffer = io.BytesIO()
    export.write_submission(scope, plan, buffer)
    buffer.seek(0)
    return FileResponse(buffer, content_type=export.CONTENT_TYPE, as_attachment=True, filename=export.filename(plan))
