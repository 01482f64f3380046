"""Department-target API (R-H3) at /api/v1/hospital/targets: list, detail, generate, adjust, publish.

A department head sees published plans only, and in them their own department's lines. Errors as
the demand API: 404 outside the territory, 403 for a role that may not act, 400 with Chinese and
English messages for a step the workflow refuses (e.g. a total that is no longer exact).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.http import HttpRequest
from ninja import Router, Schema
from ninja.errors import HttpError
from ninja.responses import Status

from jicai.core.tenancy import Level, Scope
from jicai.hospital.common import WorkflowError
from jicai.hospital.models import TargetPlan
from jicai.hospital.shell import api_scope
from jicai.hospital.targets import actions, queries

router = Router(tags=["hospital"])


class ErrorOut(Schema):
    code: str
    field: str = ""
    message_zh: str
    message_en: str


class TargetCellOut(Schema):
    department: str
    slice: str
    slice_start: dt.date
    slice_end: dt.date
    qty: int
    generated_qty: int
    reason: str


class TargetItemOut(Schema):
    item_code: str
    generic_name: str
    agreed_qty: Decimal | None
    total: int
    generated: int
    exact: bool
    cells: list[TargetCellOut]


class TargetPlanOut(Schema):
    id: int
    institution_code: str
    batch_code: str
    year: int
    granularity: str
    status: str
    window_from: dt.date
    window_to: dt.date
    published_at: dt.datetime | None
    items: list[TargetItemOut] | None = None
    warnings: dict[str, Any] = {}


class TargetGenerateIn(Schema):
    batch: str
    year: int
    granularity: str = "month"
    reference_months: int = 12


class TargetCellIn(Schema):
    department: str
    slice: str
    qty: int


class TargetAdjustIn(Schema):
    item: str
    values: list[TargetCellIn]
    reason: str


class TargetReasonIn(Schema):
    reason: str = ""


STEP_RESPONSES: dict[int, Any] = {200: TargetPlanOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut}

NOT_FOUND = {
    "code": "targets.not_found",
    "message_zh": "任务量计划不存在或不在您的权限范围内",
    "message_en": "No such target plan",
}


def _scope(request: HttpRequest) -> Scope:
    return api_scope(request, "target")


def _error(exc: WorkflowError) -> Any:
    return Status(400, {"code": exc.code or "workflow", "message_zh": exc.message_zh, "message_en": exc.message_en})


def _plan_out(scope: Scope, plan: TargetPlan, *, detail: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": plan.pk,
        "institution_code": plan.institution.code,
        "batch_code": plan.batch.code,
        "year": plan.year,
        "granularity": plan.granularity,
        "status": plan.status,
        "window_from": plan.window_from,
        "window_to": plan.window_to,
        "published_at": plan.published_at,
    }
    if detail:
        agreed = queries.agreed_quantities(scope, plan) if scope.level is not Level.DEPARTMENT else {}
        out["items"] = [
            {
                "item_code": b.item.item_code,
                "generic_name": b.item.generic_name,
                "agreed_qty": b.agreed,
                "total": b.total,
                "generated": b.generated,
                "exact": b.exact,
                "cells": [
                    {
                        "department": r["department"].code,
                        "slice": c["label"],
                        "slice_start": start,
                        "slice_end": end,
                        "qty": c["qty"],
                        "generated_qty": c["generated"],
                        "reason": c["line"].reason if c["line"] else "",
                    }
                    for r in b.rows
                    for c, (_, start, end) in zip(r["cells"], b.slices, strict=True)
                    if c["line"] is not None
                ],
            }
            for b in queries.plan_matrix(scope, plan, agreed=agreed)
        ]
    return out


def _detail(scope: Scope, plan_id: int, status: int = 200) -> Any:
    try:
        plan = queries.get_plan(scope, plan_id)
    except TargetPlan.DoesNotExist:
        return Status(404, NOT_FOUND)
    return Status(status, _plan_out(scope, plan, detail=True))


@router.get("/", response=list[TargetPlanOut])
def list_plans(request: HttpRequest) -> list[dict[str, Any]]:
    """Target plans in the caller's scope (a department head: published ones)."""
    scope = _scope(request)
    return [_plan_out(scope, row.plan) for row in queries.plan_rows(scope)]


@router.get("/mine", response=list[dict[str, Any]])
def mine(request: HttpRequest) -> list[dict[str, Any]]:
    """A department head's published targets: per plan and item, the slices and the total."""
    scope = _scope(request)
    if scope.level is not Level.DEPARTMENT:
        raise HttpError(404, "only a department has its own targets")
    return [
        {
            "batch_code": g["plan"].batch.code,
            "year": g["plan"].year,
            "item_code": g["item"].item_code,
            "department": g["department"].code,
            "total": g["total"],
            "slices": [{"slice": ln.slice_label, "qty": ln.qty} for ln in g["slices"]],
        }
        for g in queries.my_targets(scope)
    ]


@router.post("/generate", response={201: TargetPlanOut, 400: ErrorOut, 404: ErrorOut})
def generate(request: HttpRequest, payload: TargetGenerateIn) -> Any:
    """Generate (or regenerate a draft of) the year's targets from the departments' history (target:write)."""
    scope = _scope(request)
    try:
        result = actions.do_generate_targets(
            scope,
            batch_code=payload.batch,
            year=payload.year,
            granularity=payload.granularity,
            reference_months=payload.reference_months,
        )
    except WorkflowError as exc:
        return _error(exc)
    except ObjectDoesNotExist:
        return Status(404, NOT_FOUND | {"code": "batch.not_found", "message_en": "No such round"})
    response = _plan_out(scope, queries.get_plan(scope, result.plan.pk), detail=True)
    response["warnings"] = {
        "unknown_departments": result.unknown_departments,
        "without_history": result.without_history,
    }
    return Status(201, response)


@router.get("/{plan_id}", response={200: TargetPlanOut, 404: ErrorOut})
def get_plan(request: HttpRequest, plan_id: int) -> Any:
    return _detail(_scope(request), plan_id)


@router.post("/{plan_id}/adjust", response=STEP_RESPONSES)
def adjust(request: HttpRequest, plan_id: int, payload: TargetAdjustIn) -> Any:
    """New values for cells of one item with a reason; refused unless the item's total stays exact."""
    scope = _scope(request)
    try:
        queries.get_plan(scope, plan_id)
        actions.do_adjust_targets(
            scope,
            plan_id,
            item_code=payload.item,
            values={(v.department, v.slice): v.qty for v in payload.values},
            reason=payload.reason,
        )
    except TargetPlan.DoesNotExist:
        return Status(404, NOT_FOUND)
    except WorkflowError as exc:
        return _error(exc)
    return _detail(scope, plan_id)


@router.post("/{plan_id}/publish", response=STEP_RESPONSES)
def publish(request: HttpRequest, plan_id: int) -> Any:
    """Draft → published (target:publish)."""
    scope = _scope(request)
    try:
        queries.get_plan(scope, plan_id)
        actions.do_publish(scope, plan_id)
    except TargetPlan.DoesNotExist:
        return Status(404, NOT_FOUND)
    except WorkflowError as exc:
        return _error(exc)
    return _detail(scope, plan_id)


@router.post("/{plan_id}/unpublish", response=STEP_RESPONSES)
def unpublish(request: HttpRequest, plan_id: int, payload: TargetReasonIn) -> Any:
    """Published → draft with the reason (target:publish)."""
    scope = _scope(request)
    try:
        queries.get_plan(scope, plan_id)
        actions.do_unpublish(scope, plan_id, reason=payload.reason)
    except TargetPlan.DoesNotExist:
        return Status(404, NOT_FOUND)
    except WorkflowError as exc:
        return _error(exc)
    return _detail(scope, plan_id)
