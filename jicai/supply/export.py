"""Excel export of a register's (filtered) records, shared by the pages and the API."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db.models import Model
from django.http import FileResponse
from openpyxl import Workbook

from jicai.imports.datasets import cell_text
from jicai.imports.spec import DatasetSpec

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def export_xlsx(
    spec: DatasetSpec,
    objects: Iterable[Model],
    filename: str,
    extra: Sequence[tuple[str, Callable[[Any], Any]]] = (),
) -> FileResponse:
    """The records in ``spec``'s columns (Chinese labels as headers, so the file imports back), then
    ``extra`` read-only columns (status, who and when) that an import ignores."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(spec.label[:31])
    ws.append([c.label for c in spec.columns] + [str(label) for label, _ in extra])
    for obj in objects:
        row = spec.export_row(obj)
        ws.append([cell_text(row.get(c.name)) for c in spec.columns] + [cell_text(get(obj)) for _, get in extra])
    buffer = io.BytesIO()
    wb.save(buffer)
    buffer.seek(0)
    return FileResponse(buffer, content_type=XLSX, as_attachment=True, filename=filename)
