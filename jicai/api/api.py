"""REST API at /api/v1 (Django Ninja, OpenAPI at /api/v1/docs): the same datasets and rules as the UI."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import FileResponse, HttpRequest
from django.utils import timezone
from ninja import File, Form, NinjaAPI, Schema
from ninja.errors import HttpError
from ninja.files import UploadedFile
from ninja.responses import Status
from ninja.security import APIKeyHeader, SessionAuth

from jicai.accounts.models import ApiToken
from jicai.core.tenancy import Scope, ScopeError, use_scope
from jicai.hospital.api import router as hospital_router
from jicai.imports.datasets import DATASETS, cell_text, get_spec
from jicai.imports.engine import ImportDenied, run_import
from jicai.imports.export import CONTENT_TYPES, FORMATS, write_export
from jicai.imports.mappings import MappingError, resolve_mapping
from jicai.imports.spec import DatasetSpec
from jicai.policy.profile import ProfileLibrary
from jicai.quality.api import router as quality_router
from jicai.supply.api import router as supply_router

MAX_PAGE_SIZE = 500


class BearerToken(APIKeyHeader):
    """``Authorization: Bearer jc_…`` tokens issued with ``jicai token create``."""

    param_name = "Authorization"

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        if not key or not key.startswith("Bearer "):
            return None
        token = (
            ApiToken.objects.select_related("user")
            .filter(key_hash=ApiToken.hash_key(key.removeprefix("Bearer ").strip()), revoked=False)
            .first()
        )
        if token is None or not token.user.is_active:
            return None
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
        request.user = token.user
        return token.user


class Session(SessionAuth):
    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = super().authenticate(request, key)
        return user if user is not None and user.is_active else None


api = NinjaAPI(
    title="Jicai API",
    version="1",
    description="集采 Jicai: master and programme data, imports and exports, under the caller's tenant scope.",
    auth=[BearerToken(), Session()],
    urls_namespace="api",
)
api.add_router("/hospital", hospital_router)
api.add_router("/supply", supply_router)
api.add_router("/quality", quality_router)


class ErrorOut(Schema):
    code: str
    field: str = ""
    message_zh: str
    message_en: str


def _scope(request: HttpRequest) -> Scope:
    user = request.auth  # type: ignore[attr-defined]
    try:
        return user.scope()  # type: ignore[no-any-return]
    except Exception as exc:
        raise HttpError(403, "account has no valid territory") from exc


def _spec(name: str, scope: Scope, verb: str) -> DatasetSpec:
    try:
        spec = get_spec(name)
    except KeyError:
        raise HttpError(404, f"unknown dataset {name}") from None
    if not scope.can(spec.resource, verb):
        raise HttpError(404, f"unknown dataset {name}")
    return spec


@api.exception_handler(ScopeError)
def _scope_error(request: HttpRequest, exc: ScopeError) -> Any:
    return api.create_response(
        request,
        {"code": "scope.denied", "field": "", "message_zh": "无权访问", "message_en": str(exc)},
        status=403,
    )


class ColumnOut(Schema):
    name: str
    label: str
    key: bool
    required: bool


class DatasetOut(Schema):
    name: str
    label: str
    label_en: str
    columns: list[ColumnOut]
    can_import: bool
    can_export: bool


@api.get("/datasets", response=list[DatasetOut], tags=["datasets"])
def list_datasets(request: HttpRequest) -> list[dict[str, Any]]:
    scope = _scope(request)
    return [
        {
            "name": s.name,
            "label": s.label,
            "label_en": s.label_en,
            "columns": [{"name": c.name, "label": c.label, "key": c.key, "required": c.required} for c in s.columns],
            "can_import": scope.can(s.resource, "import"),
            "can_export": scope.can(s.resource, "export"),
        }
        for s in DATASETS.values()
        if scope.can(s.resource, "read")
    ]


class RecordsOut(Schema):
    count: int
    page: int
    page_size: int
    results: list[dict[str, Any]]


def _record(spec: DatasetSpec, obj: Any) -> dict[str, Any]:
    row = {k: cell_text(v) if not isinstance(v, bool | int) else v for k, v in spec.export_row(obj).items()}
    return {"id": obj.pk, **row}


@api.get("/datasets/{name}/records", response=RecordsOut, tags=["datasets"])
def list_records(request: HttpRequest, name: str, page: int = 1, page_size: int = 100) -> dict[str, Any]:
    scope = _scope(request)
    spec = _spec(name, scope, "read")
    page_size = max(1, min(page_size, MAX_PAGE_SIZE))
    page = max(page, 1)
    with use_scope(scope):
        qs = spec.export_queryset(scope)
        count = qs.count()
        objects = list(qs[(page - 1) * page_size : page * page_size])
    return {"count": count, "page": page, "page_size": page_size, "results": [_record(spec, o) for o in objects]}


@api.get("/datasets/{name}/records/{record_id}", response={200: dict[str, Any], 404: ErrorOut}, tags=["datasets"])
def get_record(request: HttpRequest, name: str, record_id: int) -> Any:
    scope = _scope(request)
    spec = _spec(name, scope, "read")
    with use_scope(scope):
        obj = spec.export_queryset(scope).filter(pk=record_id).first()
    if obj is None:
        return Status(
            404,
            {
                "code": "record.not_found",
                "message_zh": "记录不存在或不在您的权限范围内",
                "message_en": "No such record in your scope",
            },
        )
    return Status(200, _record(spec, obj))


class IssueOut(Schema):
    line: int
    column: str
    value: str
    code: str
    severity: str
    message_zh: str
    message_en: str


class ImportOut(Schema):
    dataset: str
    status: str
    total_rows: int
    created: int
    updated: int
    unchanged: int
    rejected: int
    run_id: int | None
    issues: list[IssueOut]


@api.post("/datasets/{name}/import", response={200: ImportOut, 400: ErrorOut}, tags=["imports"])
def import_dataset(
    request: HttpRequest,
    name: str,
    file: File[UploadedFile],
    *,
    dry_run: Form[bool] = False,
    load_valid: Form[bool] = False,
    mapping: Form[str] = "",
    price_list: Form[str] = "",
) -> Any:
    scope = _scope(request)
    spec = _spec(name, scope, "import")
    header_mapping = None
    if mapping:
        try:
            header_mapping = resolve_mapping(mapping)
        except MappingError as exc:
            return Status(
                400,
                {
                    "code": "mapping.unknown",
                    "field": "mapping",
                    "message_zh": "未知的表头映射",
                    "message_en": str(exc),
                },
            )
    try:
        result = run_import(
            spec,
            file.read(),
            file.name or "upload",
            scope,
            dry_run=dry_run,
            load_valid=load_valid,
            mapping=header_mapping,
            options={"list": price_list} if price_list else {},
        )
    except ImportDenied as exc:
        raise HttpError(404, f"unknown dataset {name}") from exc
    return Status(
        200,
        {
            "dataset": result.dataset,
            "status": result.status,
            "total_rows": result.total_rows,
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "rejected": result.rejected,
            "run_id": result.run_id,
            "issues": [i.__dict__ for i in result.issues],
        },
    )


@api.get("/datasets/{name}/export", tags=["datasets"])
def export_dataset(request: HttpRequest, name: str, format: str = "csv") -> FileResponse:  # noqa: A002
    scope = _scope(request)
    spec = _spec(name, scope, "export")
    if format not in FORMATS:
        raise HttpError(400, f"format must be one of {', '.join(FORMATS)}")
    buffer = io.BytesIO()
    write_export(spec, scope, format, buffer)
    buffer.seek(0)
    return FileResponse(
        buffer, content_type=CONTENT_TYPES[format], as_attachment=True, filename=f"{spec.name}.{format}"
    )


class ReportOut(Schema):
    report: str
    as_of: str
    count: int
    rows: list[dict[str, Any]]


@api.get("/reports/{name}", response={200: ReportOut, 404: ErrorOut}, tags=["reports"])
def get_report(
    request: HttpRequest,
    name: str,
    *,
    as_of: str | None = None,
    batch: str | None = None,
    institution: str | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> Any:
    """A computed report (progress, substitutes, payables, prepayments, settlements, alerts) in the caller's scope."""
    from jicai.monitoring.reports import REPORT_NAMES, ReportRequest, run_report, table_rows  # noqa: PLC0415

    scope = _scope(request)
    if name not in REPORT_NAMES:
        return Status(
            404, {"code": "report.unknown", "message_zh": "未知的报表", "message_en": f"unknown report {name}"}
        )
    try:
        day = dt.date.fromisoformat(as_of) if as_of else dt.date.today()
    except ValueError as exc:
        raise HttpError(400, "as_of must be a date like 2026-01-31") from exc
    home = Path(settings.JICAI_HOME)
    table = run_report(
        name,
        scope,
        ReportRequest(as_of=day, batch=batch, institution=institution),
        home=home,
        profiles=ProfileLibrary([home / "profiles"]),
    )
    limit = max(1, min(limit, 10000))
    rows = table_rows(table.slice(max(offset, 0), limit))
    return Status(200, {"report": name, "as_of": day.isoformat(), "count": table.num_rows, "rows": rows})
