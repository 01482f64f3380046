"""API of the progress-feedback workflow at /api/v1/hospital/feedback (R-H4, R-H5).

Reads: ``GET board``, ``GET notifications``, ``GET notifications/unread-count``, ``GET sheets``,
``GET sheets/{id}``, ``GET sheets/{id}/export`` (xlsx), ``GET schemes``, ``GET scores``.
Actions: ``POST reminders``, ``POST notifications/{id}/read``, ``POST sheets``, ``POST schemes``,
``PUT schemes/{id}``, ``POST schemes/{id}/scores``, ``POST schemes/{id}/publish``.

Errors: 400 with ErrorOut (code, field, message_zh, message_en) for a refused step, 403 for a role
that may not act (the API's ScopeError handler), 404 for what is outside the caller's territory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.exceptions import ObjectDoesNotExist
from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema
from ninja.errors import HttpError
from ninja.responses import Status

from jicai.core.tenancy import Scope, ScopeError
from jicai.hospital import shell
from jicai.hospital.common import WorkflowError
from jicai.hospital.feedback import actions, queries
from jicai.hospital.feedback.display import plain
from jicai.hospital.models import AppraisalScheme, AppraisalScore, Notification, ProgressSheet

router = Router(tags=["hospital"])
T = TypeVar("T")


class ErrorOut(Schema):
    code: str
    field: str = ""
    message_zh: str
    message_en: str


ERRORS: dict[int, Any] = {400: ErrorOut, 404: ErrorOut}


def api_scope(request: HttpRequest, resource: str = "feedback") -> Scope:
    """The caller's scope; 404 when the caller may not read the workflow at all."""
    return shell.api_scope(request, resource)


def not_found(what: str) -> Status[Any]:
    return Status(
        404,
        {
            "code": "not_found",
            "message_zh": "记录不存在或不在您的权限范围内",
            "message_en": f"no such {what} in your scope",
        },
    )


def refused(exc: WorkflowError) -> Status[Any]:
    return Status(
        400, {"code": str(exc.code or "workflow"), "message_zh": exc.message_zh, "message_en": exc.message_en}
    )


def run(call: Callable[[], T], what: str) -> T | Status[Any]:
    """``call()``, with a refused step as 400 and an unknown record as 404 (ScopeError → 403 upstream)."""
    try:
        return call()
    except WorkflowError as exc:
        return refused(exc)
    except ObjectDoesNotExist:
        return not_found(what)
    except ScopeError:
        raise


def day(text: str | None) -> dt.date:
    try:
        return dt.date.fromisoformat(text) if text else dt.date.today()
    except ValueError as exc:
        raise HttpError(400, "dates look like 2026-01-31") from exc


def notification_dict(n: Notification) -> dict[str, Any]:
    return {
        "id": n.pk,
        "department_code": n.department.code,
        "department_name": n.department.name,
        "kind": n.kind,
        "title": n.title,
        "body": n.body,
        "link": n.link,
        "data": n.data,
        "emailed_to": n.emailed_to,
        "created_at": n.created_at.isoformat(),
        "read_at": n.read_at.isoformat() if n.read_at else None,
    }


def sheet_dict(s: ProgressSheet, *, rows: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": s.pk,
        "as_of": s.as_of.isoformat(),
        "title": s.title,
        "published_by": s.published_by.username if s.published_by else "",
        "created_at": s.created_at.isoformat(),
        "departments": len(s.rows),
    }
    if rows:
        out["rows"] = s.rows
    return out


def scheme_dict(s: AppraisalScheme) -> dict[str, Any]:
    return {"id": s.pk, "name": s.name, "weights": s.weights, "active": s.active}


def score_dict(s: AppraisalScore) -> dict[str, Any]:
    return {
        "id": s.pk,
        "scheme": s.scheme_id,
        "department_code": s.department.code,
        "department_name": s.department.name,
        "period": s.period,
        "score": str(s.score),
        "components": s.components,
        "published": s.published,
    }


# --------------------------------------------------------------------------------------------------
# Reads


@router.get("/board", response={200: dict[str, Any], 404: ErrorOut})
def get_board(
    request: HttpRequest, as_of: str | None = None, batch: str | None = None, institution: str | None = None
) -> Any:
    """The department progress board: ranking, per item and overall completion, elapsed share, status."""
    scope = api_scope(request)
    return run(lambda: queries.board(scope, as_of=day(as_of), batch=batch, institution=institution).as_dict(), "board")


@router.get("/notifications", response=list[dict[str, Any]])
def list_notifications(request: HttpRequest, unread: bool = False) -> list[dict[str, Any]]:
    scope = api_scope(request)
    return [notification_dict(n) for n in queries.notifications(scope, unread_only=unread)[:500]]


@router.get("/notifications/unread-count", response=dict[str, int])
def get_unread_count(request: HttpRequest) -> dict[str, int]:
    return {"unread": queries.unread_count(api_scope(request))}


@router.get("/sheets", response=list[dict[str, Any]])
def list_sheets(request: HttpRequest) -> list[dict[str, Any]]:
    scope = api_scope(request)
    return [sheet_dict(s) for s in queries.sheets(scope)[:500]]


@router.get("/sheets/{sheet_id}", response={200: dict[str, Any], 404: ErrorOut})
def get_sheet(request: HttpRequest, sheet_id: int) -> Any:
    found = queries.sheet(api_scope(request), sheet_id)
    return sheet_dict(found, rows=True) if found else not_found("sheet")


@router.get("/sheets/{sheet_id}/export", response={200: None, 404: ErrorOut})
def export_sheet(request: HttpRequest, sheet_id: int) -> Any:
    scope = api_scope(request)
    found = queries.sheet(scope, sheet_id)
    if found is None:
        return not_found("sheet")
    response = HttpResponse(
        queries.sheet_workbook(scope, found),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    response["Content-Disposition"] = f'attachment; filename="progress-sheet-{found.as_of.isoformat()}-{found.pk}.xlsx"'
    return response


@router.get("/schemes", response=list[dict[str, Any]])
def list_schemes(request: HttpRequest) -> list[dict[str, Any]]:
    return [scheme_dict(s) for s in queries.schemes(api_scope(request))]


@router.get("/scores", response=list[dict[str, Any]])
def list_scores(request: HttpRequest, scheme: int | None = None, period: str | None = None) -> list[dict[str, Any]]:
    scope = api_scope(request)
    return [score_dict(s) for s in queries.scores(scope, scheme_id=scheme, period=period)[:2000]]


# --------------------------------------------------------------------------------------------------
# Actions


class ReminderIn(Schema):
    as_of: dt.date
    batch: str | None = None
    departments: list[str] | None = None
    email: bool = False
    note: str = ""
    institution: str | None = None


@router.post("/reminders", response={200: list[dict[str, Any]], 400: ErrorOut, 404: ErrorOut})
def send_reminders(request: HttpRequest, payload: ReminderIn) -> Any:
    scope = api_scope(request)
    result = run(lambda: actions.do_send_reminders(scope, **payload.dict()), "institution")
    return result if isinstance(result, Status) else [notification_dict(n) for n in result]


@router.post("/notifications/{notification_id}/read", response={200: dict[str, Any], 400: ErrorOut, 404: ErrorOut})
def mark_read(request: HttpRequest, notification_id: int) -> Any:
    scope = api_scope(request)
    result = run(lambda: actions.do_mark_read(scope, notification_id), "notification")
    return result if isinstance(result, Status) else notification_dict(result)


class SheetIn(Schema):
    as_of: dt.date
    batch: str | None = None
    title: str = ""
    institution: str | None = None


@router.post("/sheets", response={200: dict[str, Any], 400: ErrorOut, 404: ErrorOut})
def publish_sheet(request: HttpRequest, payload: SheetIn) -> Any:
    scope = api_scope(request)
    result = run(lambda: actions.do_publish_sheet(scope, **payload.dict()), "institution")
    return result if isinstance(result, Status) else sheet_dict(result, rows=True)


class SchemeIn(Schema):
    name: str
    weights: dict[str, str]
    active: bool = True
    institution: str | None = None


class SchemeUpdateIn(Schema):
    name: str | None = None
    weights: dict[str, str] | None = None
    active: bool | None = None


@router.post("/schemes", response={200: dict[str, Any], 400: ErrorOut, 404: ErrorOut})
def create_scheme(request: HttpRequest, payload: SchemeIn) -> Any:
    scope = api_scope(request)
    result = run(lambda: actions.do_create_scheme(scope, **payload.dict()), "institution")
    return result if isinstance(result, Status) else scheme_dict(result)


@router.put("/schemes/{scheme_id}", response={200: dict[str, Any], 400: ErrorOut, 404: ErrorOut})
def update_scheme(request: HttpRequest, scheme_id: int, payload: SchemeUpdateIn) -> Any:
    scope = api_scope(request)
    result = run(lambda: actions.do_update_scheme(scope, scheme_id, **payload.dict()), "scheme")
    return result if isinstance(result, Status) else scheme_dict(result)


class ComputeIn(Schema):
    period: str
    batch: str | None = None


@router.post("/schemes/{scheme_id}/scores", response={200: dict[str, Any], 400: ErrorOut, 404: ErrorOut})
def compute_scores(request: HttpRequest, scheme_id: int, payload: ComputeIn) -> Any:
    scope = api_scope(request)
    result = run(
        lambda: actions.do_compute_scores(scope, scheme_id, period=payload.period, batch=payload.batch), "scheme"
    )
    if isinstance(result, Status):
        return result
    done, skipped = result
    return {"scores": [plain(score_dict(s)) for s in done], "skipped": skipped}


class PublishScoresIn(Schema):
    period: str


@router.post("/schemes/{scheme_id}/publish", response={200: dict[str, int], 400: ErrorOut, 404: ErrorOut})
def publish_scores(request: HttpRequest, scheme_id: int, payload: PublishScoresIn) -> Any:
    scope = api_scope(request)
    result = run(lambda: actions.do_publish_scores(scope, scheme_id, period=payload.period), "scheme")
    return result if isinstance(result, Status) else {"published": result}
