"""Error reports users can download: line, column, value and a reason in Chinese and English."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill

from jicai.imports.spec import Issue, Severity

REPORT_HEADERS = ("行号 line", "列 column", "值 value", "级别 severity", "原因", "reason", "代码 code")
_SEVERITY_ZH = {Severity.ERROR: "错误（未导入）", Severity.WARNING: "提示（已导入）"}


def report_rows(issues: Iterable[Issue], labels: dict[str, str] | None = None) -> list[tuple[object, ...]]:
    labels = labels or {}
    return [
        (
            i.line,
            f"{labels[i.column]}（{i.column}）" if i.column in labels else i.column,
            i.value,
            _SEVERITY_ZH.get(i.severity, i.severity),
            i.message_zh,
            i.message_en,
            i.code,
        )
        for i in sorted(issues, key=lambda i: (i.line, i.severity != Severity.ERROR, i.column))
    ]


def write_report(issues: Iterable[Issue], path: Path, labels: dict[str, str] | None = None) -> Path:
    """Write the report as XLSX or CSV (UTF-8 with BOM, so Excel shows Chinese) by suffix."""
    rows = report_rows(issues, labels)
    if path.suffix.lower() == ".csv":
        with path.open("w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(REPORT_HEADERS)
            writer.writerows(rows)
        return path
    wb = Workbook(write_only=False)
    ws = wb.active
    assert ws is not None
    ws.title = "导入问题"
    ws.append(REPORT_HEADERS)
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="FFF2CC")
    for row in rows:
        ws.append(list(row))
    for col, width in zip("ABCDEFG", (8, 18, 28, 14, 60, 50, 22), strict=True):
        ws.column_dimensions[col].width = width
    ws.freeze_panes = "A2"
    wb.save(path)
    return path
