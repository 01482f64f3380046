"""Export a dataset in its canonical columns (CSV, XLSX, JSON) so that export → import is an identity."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import IO, Any

from openpyxl import Workbook

from jicai.core.audit import json_default
from jicai.core.tenancy import Scope, ScopeError, use_scope
from jicai.imports.datasets import cell_text
from jicai.imports.spec import DatasetSpec

FORMATS = ("csv", "xlsx", "json")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}


def export_records(spec: DatasetSpec, scope: Scope) -> tuple[list[str], Iterator[dict[str, Any]]]:
    """Headers (canonical columns, then kept extra columns) and one dict per record."""
    if hasattr(spec, "fact_table"):
        raise ValueError(f"{spec.name} lines are read back through reports (jicai report), not exported")
    if not scope.can(spec.resource, "export"):
        raise ScopeError(f"{scope.label} may not export {spec.name}")
    with use_scope(scope):
        objects = list(spec.export_queryset(scope))
    headers = [c.name for c in spec.columns]
    extra_headers: list[str] = []
    for obj in objects:
        for key in getattr(obj, "extra", None) or {}:
            if key not in headers and key not in extra_headers:
                extra_headers.append(key)

    def rows() -> Iterator[dict[str, Any]]:
        for obj in objects:
            row = spec.export_row(obj)
            extra = getattr(obj, "extra", None) or {}
            for key in extra_headers:
                row[key] = extra.get(key, "")
            yield row

    return headers + extra_headers, rows()


def write_export(spec: DatasetSpec, scope: Scope, fmt: str, out: IO[bytes]) -> int:
    """Write the export to a binary stream; returns the number of records."""
    headers, rows = export_records(spec, scope)
    count = 0
    if fmt == "csv":
        text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")
        writer = csv.writer(text)
        writer.writerow(headers)
        for row in rows:
            writer.writerow([cell_text(row.get(h)) for h in headers])
            count += 1
        text.flush()
        text.detach()
    elif fmt == "xlsx":
        wb = Workbook(write_only=True)
        ws = wb.create_sheet(spec.label)
        ws.append(headers)
        for row in rows:
            ws.append([cell_text(row.get(h)) for h in headers])
            count += 1
        wb.save(out)
    elif fmt == "json":
        records = list(rows)
        count = len(records)
        out.write(json.dumps(records, ensure_ascii=False, indent=1, default=json_default).encode("utf-8"))
    else:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return count
