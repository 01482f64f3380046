"""Shell helpers shared by the formulary, surplus and register pages and APIs: Excel sheets (a title
block, a bold header, rows, bold subtotal / total rows), an ``.xlsx`` response, the request's scope
with the 404-for-unreadable rule, and a workflow error's message in the user's language."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.utils import translation
from ninja import Schema
from ninja.errors import HttpError
from ninja.responses import Status
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from jicai.core.tenancy import Scope, ScopeError

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BOLD = Font(bold=True)
TITLE = Font(bold=True, size=13)


@dataclass
class Sheet:
    """One worksheet: ``info`` lines (label, value) above the table, ``bold_rows`` = indexes into ``rows``."""

    title: str
    headers: Sequence[str]
    rows: list[Sequence[Any]] = field(default_factory=list)
    info: Sequence[tuple[str, Any]] = ()
    heading: str = ""
    bold_rows: set[int] = field(default_factory=set)


def _cell(value: Any) -> Any:
    if isinstance(value, Decimal):
        return value  # openpyxl writes Decimal as a number
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, bool):
        return "是" if value else "否"
    if value is None:
        return ""
    return value


def workbook_bytes(sheets: Iterable[Sheet]) -> bytes:
    """The workbook as bytes (one worksheet per ``Sheet``)."""
    wb = Workbook()
    first = True
    for spec in sheets:
        ws = wb.active if first else wb.create_sheet()
        first = False
        assert ws is not None
        ws.title = spec.title[:31]
        row = 1
        if spec.heading:
            ws.cell(row=row, column=1, value=spec.heading).font = TITLE
            row += 1
        for label, value in spec.info:
            ws.cell(row=row, column=1, value=label).font = BOLD
            ws.cell(row=row, column=2, value=_cell(value))
            row += 1
        if spec.heading or spec.info:
            row += 1
        for col, header in enumerate(spec.headers, start=1):
            ws.cell(row=row, column=col, value=header).font = BOLD
        header_row = row
        for index, values in enumerate(spec.rows):
            row += 1
            for col, value in enumerate(values, start=1):
                cell = ws.cell(row=row, column=col, value=_cell(value))
                if index in spec.bold_rows:
                    cell.font = BOLD
        ws.freeze_panes = ws.cell(row=header_row + 1, column=1)
        for col, header in enumerate(spec.headers, start=1):
            width = max([len(str(header)) * 2, *(len(str(_cell(r[col - 1]))) for r in spec.rows if len(r) >= col)])
            ws.column_dimensions[get_column_letter(col)].width = min(max(width + 2, 8), 60)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def xlsx_response(data: bytes, filename: str) -> HttpResponse:
    """An attachment response for an ``.xlsx`` workbook (ASCII file name)."""
    response = HttpResponse(data, content_type=XLSX)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def error_text(exc: Any) -> str:
    """A workflow error's message in the active language (Chinese unless English was chosen)."""
    zh = getattr(exc, "message_zh", None)
    en = getattr(exc, "message_en", None)
    if zh is None:
        return str(getattr(exc, "message", exc))
    language = translation.get_language() or "zh-hans"
    return str(en) if language.startswith("en") and en else str(zh)


def yuan(value: Decimal | None) -> str:
    """Money as text with two places (for messages)."""
    return "" if value is None else f"{value:,.2f}"


def scope_of(request: HttpRequest, resource: str, verb: str = "read") -> Scope:
    """The request's scope; 404 when its role may not ``verb`` the ``resource`` at all (the page
    is not revealed), so a role without read never learns what a workflow holds."""
    scope = getattr(request, "scope", None)
    if scope is None:
        raise ScopeError("not signed in")
    if not scope.can(resource, verb):
        raise Http404(f"{resource} is not available to this role")
    return scope  # type: ignore[no-any-return]


def parse_date(text: str | None, default: dt.date | None = None) -> dt.date | None:
    if not text:
        return default
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        return default


# --------------------------------------------------------------------------------------------------
# API helpers (the same rules as jicai/api/api.py: session or bearer token, the user's scope)


class ErrorOut(Schema):
    code: str
    field: str = ""
    message_zh: str
    message_en: str


def api_scope(request: HttpRequest, resource: str, verb: str = "read") -> Scope:
    """The API caller's scope; 404 when the role may not ``verb`` the ``resource`` at all."""
    user = request.auth  # type: ignore[attr-defined]
    try:
        scope: Scope = user.scope()
    except Exception as exc:
        raise HttpError(403, "account has no valid territory") from exc
    if not scope.can(resource, verb):
        raise HttpError(404, f"{resource} is not available to this role")
    return scope


def not_found(what: str) -> Status[dict[str, str]]:
    return Status(
        404,
        {
            "code": "record.not_found",
            "field": "",
            "message_zh": "记录不存在或不在您的权限范围内",
            "message_en": f"no such {what} in your scope",
        },
    )


def workflow_error(exc: Any) -> Status[dict[str, str]]:
    """A ``WorkflowError`` (or Django ``ValidationError``) as a 400 ``ErrorOut``."""
    return Status(
        400,
        {
            "code": f"workflow.{getattr(exc, 'code', None) or 'invalid'}",
            "field": "",
            "message_zh": str(getattr(exc, "message_zh", None) or "; ".join(getattr(exc, "messages", [str(exc)]))),
            "message_en": str(getattr(exc, "message_en", None) or "; ".join(getattr(exc, "messages", [str(exc)]))),
        },
    )
