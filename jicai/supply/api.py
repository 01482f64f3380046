"""The supply registers' API under /api/v1/supply (R-I1–I4), under the caller's tenant scope.

Lists page on the server (``page``, ``page_size`` ≤ 500) with the same filters as the pages; records
outside the caller's territory answer 404, a missing permission 403, a refused step 400 with the
Chinese reason (``message_zh``). Exports are the same Excel files as the pages'; imports take the same
CSV/XLSX files, all-or-nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.http import FileResponse, HttpRequest
from ninja import File, Form, Router, Schema
from ninja.errors import HttpError
from ninja.files import UploadedFile
from ninja.responses import Status

from jicai.core.tenancy import Scope, ScopeError, use_scope
from jicai.imports.datasets import cell_text
from jicai.imports.engine import ImportDenied, ImportResult
from jicai.policy.supply import STOCK_COVER_ALERT_MONTHS, parse_period
from jicai.supply import actions, queries
from jicai.supply import permissions as perms
from jicai.supply.common import WorkflowError
from jicai.supply.datasets import SPECS
from jicai.supply.export import export_xlsx
from jicai.supply.models import CreditEvent, IncidentProof, Sanction, SupplyIncident, SupplyReport

router = Router(tags=["supply"])

MAX_PAGE_SIZE = 500


def _scope(request: HttpRequest) -> Scope:
    user = request.auth  # type: ignore[attr-defined]
    try:
        return user.scope()  # type: ignore[no-any-return]
    except Exception as exc:
        raise HttpError(403, "account has no valid territory") from exc


def _need(request: HttpRequest, resource: str, verb: str = "read") -> Scope:
    scope = _scope(request)
    if not scope.can(resource, verb):
        raise ScopeError(f"{scope.label} may not {verb} {resource}")
    return scope


class ErrorOut(Schema):
    code: str
    field: str = ""
    message_zh: str
    message_en: str


def _refused(exc: WorkflowError) -> Status[dict[str, Any]]:
    """A refused step: 400 with the Chinese reason and the field it concerns."""
    return Status(
        400,
        {
            "code": str(exc.code or "workflow"),
            "field": exc.field,
            "message_zh": exc.message_zh,
            "message_en": exc.message_en,
        },
    )


def _value(value: Any) -> Any:
    if isinstance(value, Decimal | dt.date):
        return cell_text(value)
    return value


def _page(qs: Any, page: int, page_size: int, row: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    page_size = max(1, min(page_size, MAX_PAGE_SIZE))
    page = max(page, 1)
    count = qs.count()
    objects = list(qs[(page - 1) * page_size : page * page_size])
    return {"count": count, "page": page, "page_size": page_size, "results": [row(o) for o in objects]}


def _one(qs: Any, pk: int) -> Any:
    found = qs.filter(pk=pk).first()
    if found is None:
        raise HttpError(404, "记录不存在或不在您的权限范围内")
    return found


class PageOut(Schema):
    count: int
    page: int
    page_size: int
    results: list[dict[str, Any]]


class ImportOut(Schema):
    dataset: str
    status: str
    total_rows: int
    created: int
    updated: int
    unchanged: int
    rejected: int
    run_id: int | None
    issues: list[dict[str, Any]]


def _import(request: HttpRequest, register: str, file: UploadedFile, dry_run: bool) -> dict[str, Any]:
    scope = _need(request, SPECS[register].resource, "import")
    try:
        result: ImportResult = actions.do_import(scope, register, file.read(), file.name or "upload", dry_run=dry_run)
    except ImportDenied as exc:
        raise ScopeError(str(exc)) from exc
    return {
        "dataset": result.dataset,
        "status": result.status,
        "total_rows": result.total_rows,
        "created": result.created,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "rejected": result.rejected,
        "run_id": result.run_id,
        "issues": [
            {
                "line": i.line,
                "column": i.column,
                "value": i.value,
                "code": i.code,
                "severity": i.severity,
                "message_zh": i.message_zh,
                "message_en": i.message_en,
            }
            for i in result.issues[:1000]
        ],
    }


def _export(request: HttpRequest, register: str, qs_of: Callable[[dict[str, str]], Any], name: str) -> FileResponse:
    scope = _need(request, SPECS[register].resource, "export")
    query = {k: v for k, v in request.GET.items() if isinstance(v, str)}
    with use_scope(scope):
        return export_xlsx(SPECS[register], list(qs_of(query)), name)


def _filters(request: HttpRequest) -> dict[str, str]:
    return {k: v for k, v in request.GET.items() if isinstance(v, str) and k not in {"page", "page_size"}}


# --------------------------------------------------------------------------------------------------
# Supply incidents


def incident_row(o: SupplyIncident) -> dict[str, Any]:
    return {
        "id": o.pk,
        **{k: _value(v) for k, v in SPECS["supply_incidents"].export_row(o).items()},
        "company": o.company.name if o.company else "",
        "status": o.status,
        "malicious": o.malicious,
        "malicious_reason": o.malicious_reason,
        "malicious_flagged_by": o.malicious_flagged_by_id,
        "malicious_flagged_at": o.malicious_flagged_at.isoformat() if o.malicious_flagged_at else None,
        "decision_note": o.decision_note,
        "reported_by": o.reported_by_id,
        "reported_at": o.reported_at.isoformat(),
    }


class IncidentIn(Schema):
    batch_code: str
    item_code: str
    kind: str
    start_on: dt.date
    cause: str
    product_code: str = ""
    institution_code: str = ""
    region_code: str = ""
    end_on: dt.date | None = None
    confirm: bool = False


class DecisionIn(Schema):
    note: str = ""
    reason: str = ""
    end_on: dt.date | None = None


@router.get("/incidents", response=PageOut)
def list_incidents(request: HttpRequest, page: int = 1, page_size: int = 100) -> dict[str, Any]:
    scope = _need(request, perms.SUPPLY_INCIDENT)
    with use_scope(scope):
        return _page(queries.incidents(_filters(request)), page, page_size, incident_row)


@router.get("/incidents/flagged", response=PageOut)
def list_flagged(request: HttpRequest, page: int = 1, page_size: int = 100) -> dict[str, Any]:
    scope = _need(request, perms.SUPPLY_INCIDENT)
    with use_scope(scope):
        return _page(queries.flagged_incidents().select_related("selected__product"), page, page_size, incident_row)


@router.get("/incidents/export")
def export_incidents(request: HttpRequest) -> FileResponse:
    return _export(request, "supply_incidents", queries.incidents, "supply-incidents.xlsx")


@router.post("/incidents/import", response=ImportOut)
def import_incidents(request: HttpRequest, file: File[UploadedFile], dry_run: Form[bool] = False) -> Any:
    return _import(request, "supply_incidents", file, dry_run)


@router.get("/incidents/{incident_id}", response=dict[str, Any])
def get_incident(request: HttpRequest, incident_id: int) -> dict[str, Any]:
    scope = _need(request, perms.SUPPLY_INCIDENT)
    with use_scope(scope):
        incident = _one(queries.incidents({}), incident_id)
        proofs = [
            {
                "id": p.pk,
                "original_name": p.original_name,
                "size": p.size,
                "content_type": p.content_type,
                "sha256": p.sha256,
                "uploaded_by": p.uploaded_by_id,
                "uploaded_at": p.uploaded_at.isoformat(),
            }
            for p in IncidentProof.objects.filter(incident=incident)
        ]
    return {**incident_row(incident), "proofs": proofs}


@router.post("/incidents", response={201: dict[str, Any], 400: ErrorOut})
def create_incident(request: HttpRequest, payload: IncidentIn) -> Any:
    scope = _need(request, perms.SUPPLY_INCIDENT, "write")
    data = actions.IncidentInput(**payload.dict(exclude={"confirm"}))
    try:
        incident = actions.do_report_incident(scope, data, confirm=payload.confirm)
    except WorkflowError as exc:
        return _refused(exc)
    with use_scope(scope):
        return Status(201, incident_row(_one(queries.incidents({}), incident.pk)))


@router.post("/incidents/{incident_id}/proofs", response={201: dict[str, Any], 400: ErrorOut})
def upload_proof(request: HttpRequest, incident_id: int, file: File[UploadedFile]) -> Any:
    scope = _need(request, perms.SUPPLY_INCIDENT, "write")
    with use_scope(scope):
        _one(SupplyIncident.objects.all(), incident_id)
    try:
        proof = actions.do_attach_proof(
            scope, incident_id, file.chunks(), file.name or "proof", declared_size=file.size
        )
    except WorkflowError as exc:
        return _refused(exc)
    return Status(201, {"id": proof.pk, "size": proof.size, "content_type": proof.content_type, "sha256": proof.sha256})


INCIDENT_STEPS: dict[str, tuple[str, Callable[[Scope, int, DecisionIn], Any]]] = {
    "confirm": ("approve", lambda s, pk, d: actions.do_confirm_incident(s, pk, d.note)),
    "reject": ("approve", lambda s, pk, d: actions.do_reject_incident(s, pk, d.note)),
    "close": ("approve", lambda s, pk, d: actions.do_close_incident(s, pk, end_on=d.end_on, note=d.note)),
    "flag": ("write", lambda s, pk, d: actions.do_flag_malicious(s, pk, d.reason)),
    "unflag": ("approve", lambda s, pk, d: actions.do_clear_malicious(s, pk, d.note)),
}


@router.post("/incidents/{incident_id}/{step}", response={200: dict[str, Any], 400: ErrorOut})
def incident_step(request: HttpRequest, incident_id: int, step: str, payload: DecisionIn) -> Any:
    """confirm, reject, close (optional end_on), flag (reason: malicious interruption), unflag."""
    if step not in INCIDENT_STEPS:
        raise HttpError(404, f"unknown step {step}")
    verb, run = INCIDENT_STEPS[step]
    scope = _need(request, perms.SUPPLY_INCIDENT, verb)
    with use_scope(scope):
        _one(SupplyIncident.objects.all(), incident_id)
    try:
        run(scope, incident_id, payload)
    except WorkflowError as exc:
        return _refused(exc)
    with use_scope(scope):
        return incident_row(_one(queries.incidents({}), incident_id))


@router.get("/interruptions", response=list[dict[str, Any]])
def interruptions(request: HttpRequest, as_of: dt.date) -> list[dict[str, Any]]:
    """The interruptions on record as the engine reads them (``queries.open_interruptions``)."""
    scope = _need(request, perms.SUPPLY_INCIDENT)
    return [{k: _value(v) for k, v in r.items()} for r in queries.open_interruptions(scope, as_of).to_pylist()]


@router.get("/affected-days", response=list[dict[str, Any]])
def affected_days(request: HttpRequest, as_of: dt.date) -> list[dict[str, Any]]:
    """Per agreement year, the interrupted day intervals (``queries.affected_days``)."""
    scope = _need(request, perms.SUPPLY_INCIDENT)
    if not scope.can("agreement", "read"):
        raise ScopeError(f"{scope.label} may not read agreements")
    return [{k: _value(v) for k, v in r.items()} for r in queries.affected_days(scope, as_of).to_pylist()]


# --------------------------------------------------------------------------------------------------
# Credit file


def event_row(o: CreditEvent) -> dict[str, Any]:
    return {
        "id": o.pk,
        **{k: _value(v) for k, v in SPECS["credit_events"].export_row(o).items()},
        "source": o.source,
        "period": o.period,
        "metrics": o.metrics,
        "incident": o.incident_id,
    }


class CreditIn(Schema):
    company: str
    kind: str
    occurred_on: dt.date
    severity: str = "minor"
    description: str = ""
    institution_code: str = ""
    product_code: str = ""
    region_code: str = ""


class DeriveIn(Schema):
    period: str
    as_of: dt.date | None = None


@router.get("/credit/events", response=PageOut)
def list_events(request: HttpRequest, page: int = 1, page_size: int = 100) -> dict[str, Any]:
    scope = _need(request, perms.CREDIT)
    with use_scope(scope):
        return _page(queries.credit_events(_filters(request)), page, page_size, event_row)


@router.get("/credit/events/export")
def export_events(request: HttpRequest) -> FileResponse:
    return _export(request, "credit_events", queries.credit_events, "credit-events.xlsx")


@router.post("/credit/events/import", response=ImportOut)
def import_events(request: HttpRequest, file: File[UploadedFile], dry_run: Form[bool] = False) -> Any:
    return _import(request, "credit_events", file, dry_run)


@router.get("/credit/events/{event_id}", response=dict[str, Any])
def get_event(request: HttpRequest, event_id: int) -> dict[str, Any]:
    scope = _need(request, perms.CREDIT)
    with use_scope(scope):
        return event_row(_one(queries.credit_events({}), event_id))


@router.post("/credit/events", response={201: dict[str, Any], 400: ErrorOut})
def create_event(request: HttpRequest, payload: CreditIn) -> Any:
    scope = _need(request, perms.CREDIT, "write")
    try:
        event = actions.do_record_credit_event(scope, actions.CreditInput(**payload.dict()))
    except WorkflowError as exc:
        return _refused(exc)
    with use_scope(scope):
        return Status(201, event_row(_one(queries.credit_events({}), event.pk)))


@router.post("/credit/derive", response={200: dict[str, Any], 400: ErrorOut})
def derive(request: HttpRequest, payload: DeriveIn) -> Any:
    scope = _need(request, perms.CREDIT, "manage")
    try:
        result = actions.do_derive_credit_events(scope, payload.period, as_of=payload.as_of)
    except WorkflowError as exc:
        return _refused(exc)
    return {
        "period": result.period,
        "months": list(result.months),
        "removed": result.removed,
        "late_delivery": result.late_events,
        "shortage": result.shortage_events,
        "unmatched_lines": result.unmatched_lines,
    }


@router.get("/credit/scores", response=list[dict[str, Any]])
def scores(request: HttpRequest, period: str) -> list[dict[str, Any]]:
    scope = _need(request, perms.CREDIT)
    try:
        parsed = parse_period(period)
    except ValueError as exc:
        raise HttpError(400, "期间格式应为 2026、2026Q1 或 2026-03") from exc
    with use_scope(scope):
        rows = queries.credit_scores(parsed)
    return [
        {
            "rank": r.rank,
            "company_id": r.company_id,
            "company": r.name,
            "score": str(r.score.score),
            "standing": r.score.standing,
            "events": r.score.events,
            "deductions": {k: str(v) for k, v in r.score.deductions.items()},
            "sanctions": r.sanctions,
        }
        for r in rows
    ]


def sanction_row(o: Sanction) -> dict[str, Any]:
    return {
        "id": o.pk,
        **{k: _value(v) for k, v in SPECS["sanctions"].export_row(o).items()},
        "decided_by": o.decided_by_id,
    }


class SanctionIn(Schema):
    company: str
    kind: str
    decided_on: dt.date
    note: str = ""
    batch_code: str = ""
    item_code: str = ""
    backup_company: str = ""
    amount: Decimal | None = None
    region_code: str = ""


@router.get("/sanctions", response=PageOut)
def list_sanctions(request: HttpRequest, page: int = 1, page_size: int = 100) -> dict[str, Any]:
    scope = _need(request, perms.SANCTION)
    with use_scope(scope):
        return _page(queries.sanctions(_filters(request)), page, page_size, sanction_row)


@router.get("/sanctions/export")
def export_sanctions(request: HttpRequest) -> FileResponse:
    return _export(request, "sanctions", queries.sanctions, "sanctions.xlsx")


@router.post("/sanctions/import", response=ImportOut)
def import_sanctions(request: HttpRequest, file: File[UploadedFile], dry_run: Form[bool] = False) -> Any:
    return _import(request, "sanctions", file, dry_run)


@router.get("/sanctions/{sanction_id}", response=dict[str, Any])
def get_sanction(request: HttpRequest, sanction_id: int) -> dict[str, Any]:
    scope = _need(request, perms.SANCTION)
    with use_scope(scope):
        return sanction_row(_one(queries.sanctions({}), sanction_id))


@router.post("/sanctions", response={201: dict[str, Any], 400: ErrorOut})
def create_sanction(request: HttpRequest, payload: SanctionIn) -> Any:
    scope = _need(request, perms.SANCTION, "write")
    try:
        sanction = actions.do_record_sanction(scope, actions.SanctionInput(**payload.dict()))
    except WorkflowError as exc:
        return _refused(exc)
    with use_scope(scope):
        return Status(201, sanction_row(_one(queries.sanctions({}), sanction.pk)))


@router.get("/distributors", response=dict[str, Any])
def distributors(
    request: HttpRequest, period: str, *, q: str = "", sort: str = "", page: int = 1, page_size: int = 100
) -> dict[str, Any]:
    scope = _need(request, perms.CREDIT)
    if not scope.can("purchase", "read"):
        raise ScopeError(f"{scope.label} may not read purchases")
    try:
        parsed = parse_period(period)
    except ValueError as exc:
        raise HttpError(400, "期间格式应为 2026、2026Q1 或 2026-03") from exc
    page_size = max(1, min(page_size, MAX_PAGE_SIZE))
    page = max(page, 1)
    rows, total = queries.distributor_scorecard(
        scope, parsed, search=q, sort=sort, offset=(page - 1) * page_size, limit=page_size
    )
    return {
        "count": total,
        "page": page,
        "page_size": page_size,
        "results": [{k: _value(v) for k, v in vars(r).items() if k != "month"} for r in rows],
    }


# --------------------------------------------------------------------------------------------------
# Supply reports


def report_row(o: SupplyReport) -> dict[str, Any]:
    return {
        "id": o.pk,
        **{k: _value(v) for k, v in SPECS["supply_reports"].export_row(o).items()},
        "monthly_demand": _value(o.monthly_demand),
        "monthly_demand_entered": _value(o.monthly_demand_entered),
        "demand_source": o.demand_source,
        "stock_cover": _value(o.stock_cover),
    }


class ReportIn(Schema):
    company: str
    batch_code: str
    item_code: str
    report_date: dt.date
    stock_on_hand: Decimal
    product_code: str = ""
    capacity_per_month: Decimal | None = None
    monthly_demand: Decimal | None = None
    production_stopped: bool = False
    stop_reason: str = ""
    expected_restart: dt.date | None = None
    note: str = ""
    region_code: str = ""


@router.get("/reports", response=PageOut)
def list_reports(request: HttpRequest, page: int = 1, page_size: int = 100) -> dict[str, Any]:
    scope = _need(request, perms.SUPPLY_REPORT)
    with use_scope(scope):
        return _page(queries.supply_reports(_filters(request)), page, page_size, report_row)


@router.get("/reports/alerts", response=PageOut)
def low_stock(
    request: HttpRequest, threshold: Decimal = STOCK_COVER_ALERT_MONTHS, page: int = 1, page_size: int = 100
) -> dict[str, Any]:
    scope = _need(request, perms.SUPPLY_REPORT)
    with use_scope(scope):
        return _page(queries.low_stock_reports(threshold), page, page_size, report_row)


@router.get("/reports/export")
def export_reports(request: HttpRequest) -> FileResponse:
    return _export(request, "supply_reports", queries.supply_reports, "supply-reports.xlsx")


@router.post("/reports/import", response=ImportOut)
def import_reports(request: HttpRequest, file: File[UploadedFile], dry_run: Form[bool] = False) -> Any:
    return _import(request, "supply_reports", file, dry_run)


@router.get("/reports/{report_id}", response=dict[str, Any])
def get_report(request: HttpRequest, report_id: int) -> dict[str, Any]:
    scope = _need(request, perms.SUPPLY_REPORT)
    with use_scope(scope):
        return report_row(_one(queries.supply_reports({}), report_id))


@router.post("/reports", response={201: dict[str, Any], 400: ErrorOut})
def create_report(request: HttpRequest, payload: ReportIn) -> Any:
    scope = _need(request, perms.SUPPLY_REPORT, "write")
    try:
        report = actions.do_record_supply_report(scope, actions.ReportInput(**payload.dict()))
    except WorkflowError as exc:
        return _refused(exc)
    with use_scope(scope):
        return Status(201, report_row(_one(queries.supply_reports({}), report.pk)))
