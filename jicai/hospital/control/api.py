"""API of the substitute-control workflow at /api/v1/hospital/control (R-H7–H9).

Reads: ``GET board`` (use by department and prescriber, anomalies with reasons, diagnosis mix,
measures in force, dispensing above a limit), ``GET exceptions``, ``GET measures``.
Actions: ``POST exceptions``, ``POST exceptions/{id}/end``, ``POST measures``,
``POST measures/{id}/decide``, ``POST measures/{id}/revoke``.

Errors as in the feedback API: 400 ErrorOut for a refused step, 403 for a role that may not act,
404 outside the caller's territory (and for roles without ``substitute_control:read``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.errors import HttpError
from ninja.responses import Status

from jicai.hospital.control import actions, queries
from jicai.hospital.feedback.api import ErrorOut, api_scope, run

router = Router(tags=["hospital"])
RESOURCE = "substitute_control"


@router.get("/board", response={200: dict[str, Any], 400: ErrorOut, 404: ErrorOut})
def get_board(
    request: HttpRequest,
    month_from: str | None = None,
    month_to: str | None = None,
    department: str | None = None,
    institution: str | None = None,
) -> Any:
    scope = api_scope(request, RESOURCE)
    months = None
    if month_from or month_to:
        try:
            months = queries.MonthRange.of(month_from or month_to or "", month_to or month_from or "")
        except ValueError as exc:
            raise HttpError(400, f"months look like 2023-04: {exc}") from exc
    return run(
        lambda: queries.control_board(scope, months=months, department=department, institution=institution).as_dict(),
        "institution",
    )


@router.get("/exceptions", response=list[dict[str, Any]])
def list_exceptions(request: HttpRequest, current: bool = False) -> list[dict[str, Any]]:
    scope = api_scope(request, RESOURCE)
    return [queries.exception_dict(e) for e in queries.exceptions(scope, current_only=current)[:2000]]


@router.get("/measures", response=list[dict[str, Any]])
def list_measures(request: HttpRequest, status: str | None = None) -> list[dict[str, Any]]:
    scope = api_scope(request, RESOURCE)
    return [queries.measure_dict(m) for m in queries.measures(scope, status=status)[:2000]]


class ExceptionIn(Schema):
    product_code: str
    department_code: str
    reason: str
    valid_from: dt.date
    valid_until: dt.date
    prescriber_code: str = ""
    patient_key: str = ""
    note: str = ""
    institution: str | None = None


@router.post("/exceptions", response={200: dict[str, Any], 400: ErrorOut, 404: ErrorOut})
def record_exception(request: HttpRequest, payload: ExceptionIn) -> Any:
    scope = api_scope(request, RESOURCE)
    result = run(lambda: actions.do_record_exception(scope, **payload.dict()), "institution")
    return result if isinstance(result, Status) else queries.exception_dict(result)


class EndIn(Schema):
    on: dt.date | None = None
    note: str = ""


@router.post("/exceptions/{exception_id}/end", response={200: dict[str, Any], 400: ErrorOut, 404: ErrorOut})
def end_exception(request: HttpRequest, exception_id: int, payload: EndIn) -> Any:
    scope = api_scope(request, RESOURCE)
    result = run(lambda: actions.do_end_exception(scope, exception_id, on=payload.on, note=payload.note), "exception")
    return result if isinstance(result, Status) else queries.exception_dict(result)


class MeasureIn(Schema):
    product_code: str
    kind: str
    reason: str
    effective_from: dt.date
    expires_on: dt.date
    limit_qty: Decimal | None = None
    department_code: str | None = None
    prescriber_code: str = ""
    anomaly: dict[str, Any] | None = None
    institution: str | None = None


@router.post("/measures", response={200: dict[str, Any], 400: ErrorOut, 404: ErrorOut})
def propose_measure(request: HttpRequest, payload: MeasureIn) -> Any:
    scope = api_scope(request, RESOURCE)
    result = run(lambda: actions.do_propose_measure(scope, **payload.dict()), "institution")
    return result if isinstance(result, Status) else queries.measure_dict(result)


class DecideIn(Schema):
    approve: bool
    note: str = ""


@router.post("/measures/{measure_id}/decide", response={200: dict[str, Any], 400: ErrorOut, 404: ErrorOut})
def decide_measure(request: HttpRequest, measure_id: int, payload: DecideIn) -> Any:
    scope = api_scope(request, RESOURCE)
    result = run(
        lambda: actions.do_decide_measure(scope, measure_id, approve=payload.approve, note=payload.note), "measure"
    )
    return result if isinstance(result, Status) else queries.measure_dict(result)


class RevokeIn(Schema):
    note: str = ""


@router.post("/measures/{measure_id}/revoke", response={200: dict[str, Any], 400: ErrorOut, 404: ErrorOut})
def revoke_measure(request: HttpRequest, measure_id: int, payload: RevokeIn) -> Any:
    scope = api_scope(request, RESOURCE)
    result = run(lambda: actions.do_revoke_measure(scope, measure_id, note=payload.note), "measure")
    return result if isinstance(result, Status) else queries.measure_dict(result)
