"""Excel (and CSV) exports of the quality lists, with the list's own filters applied.

Registers with an import spec export its columns, headed by their Chinese labels — which the
importer recognises, so export → import is an identity; signals and suspensions export the columns
below. A second sheet lists each column's label and canonical English name.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from openpyxl import Workbook

from jicai.imports.datasets import cell_text
from jicai.imports.spec import DatasetSpec
from jicai.quality.models import ClusterSignal, SignalStatus, Suspension, SuspensionLevel, SuspensionStatus

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV = "text/csv; charset=utf-8"
FORMATS = {"xlsx": XLSX, "csv": CSV}


@dataclass(frozen=True)
class ExportColumn:
    name: str
    label: str
    value: Callable[[Any], Any]


SIGNAL_STATUS_ZH = {SignalStatus.OPEN: "开放", SignalStatus.CLOSED: "已关闭", SignalStatus.MERGED: "已合并"}
SUSPENSION_STATUS_ZH = {
    SuspensionStatus.PROPOSED: "待审批",
    SuspensionStatus.APPROVED: "生效中",
    SuspensionStatus.REJECTED: "已驳回",
    SuspensionStatus.LIFTED: "已解除",
}
LEVEL_ZH = {SuspensionLevel.INSTITUTION: "本机构", SuspensionLevel.REGION: "全地区"}
TRIGGER_ZH = {"reports": "报告数达到阈值", "serious": "严重报告数达到阈值"}


def _owner(obj: Any) -> str:
    return str(obj.institution.code if obj.institution_id else obj.region_code)


SIGNAL_COLUMNS: tuple[ExportColumn, ...] = (
    ExportColumn("signal_id", "信号编号", lambda s: s.pk),
    ExportColumn("owner", "机构/地区", _owner),
    ExportColumn("product_code", "药品编码", lambda s: s.product.code),
    ExportColumn("generic_name", "通用名", lambda s: s.product.generic_name),
    ExportColumn("lot_number", "批号（空=全部批号）", lambda s: s.lot_number),
    ExportColumn("first_date", "首例日期", lambda s: s.first_date),
    ExportColumn("last_date", "末例日期", lambda s: s.last_date),
    ExportColumn("report_count", "报告数", lambda s: s.report_count),
    ExportColumn("serious_count", "严重报告数", lambda s: s.serious_count),
    ExportColumn("new_count", "新的不良反应数", lambda s: s.new_count),
    ExportColumn("death_count", "死亡数", lambda s: s.death_count),
    ExportColumn("institution_count", "涉及机构数", lambda s: s.institution_count),
    ExportColumn("triggers", "触发条件", lambda s: "、".join(TRIGGER_ZH.get(t, t) for t in s.triggers)),
    ExportColumn("status", "状态", lambda s: SIGNAL_STATUS_ZH[SignalStatus(s.status)]),
    ExportColumn("conclusion", "调查结论", lambda s: s.conclusion),
)

SUSPENSION_COLUMNS: tuple[ExportColumn, ...] = (
    ExportColumn("suspension_id", "编号", lambda s: s.pk),
    ExportColumn("level", "范围", lambda s: LEVEL_ZH[SuspensionLevel(s.level)]),
    ExportColumn("owner", "机构/地区", _owner),
    ExportColumn("product_code", "药品编码", lambda s: s.product.code),
    ExportColumn("generic_name", "通用名", lambda s: s.product.generic_name),
    ExportColumn("lot_number", "批号（空=全部批号）", lambda s: s.lot_number),
    ExportColumn("signal_id", "信号编号", lambda s: s.signal_id or ""),
    ExportColumn("status", "状态", lambda s: SUSPENSION_STATUS_ZH[SuspensionStatus(s.status)]),
    ExportColumn("effective_from", "生效日期", lambda s: s.effective_from),
    ExportColumn("until", "截止日期", lambda s: s.until),
    ExportColumn("lifted_on", "解除日期", lambda s: s.lifted_on),
    ExportColumn("reason", "理由", lambda s: s.reason),
)


def spec_columns(spec: DatasetSpec) -> tuple[ExportColumn, ...]:
    return tuple(ExportColumn(c.name, c.label, _spec_value(spec, c.name)) for c in spec.columns)


def _spec_value(spec: DatasetSpec, name: str) -> Callable[[Any], Any]:
    return lambda obj: spec.export_row(obj).get(name)


def _rows(columns: Sequence[ExportColumn], objects: Iterable[Any], spec: DatasetSpec | None) -> Iterable[list[Any]]:
    for obj in objects:
        if spec is not None:
            row = spec.export_row(obj)
            yield [cell_text(row.get(c.name)) for c in columns]
        else:
            yield [cell_text(c.value(obj)) for c in columns]


def write(
    fmt: str,
    title: str,
    columns: Sequence[ExportColumn],
    objects: Iterable[Any],
    *,
    spec: DatasetSpec | None = None,
) -> bytes:
    """The file's bytes: Chinese column labels in the first row (the importer reads them), one row per record."""
    out = io.BytesIO()
    if fmt == "csv":
        text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")
        writer = csv.writer(text)
        writer.writerow([c.label for c in columns])
        writer.writerows(_rows(columns, objects, spec))
        text.flush()
        text.detach()
        return out.getvalue()
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title[:31])
    sheet.append([c.label for c in columns])
    for row in _rows(columns, objects, spec):
        sheet.append(row)
    labels = book.create_sheet("列说明")
    labels.append(["列标题", "英文列名"])
    for c in columns:
        labels.append([c.label, c.name])
    book.save(out)
    return out.getvalue()


def signal_export(objects: Iterable[ClusterSignal], fmt: str) -> bytes:
    return write(fmt, "不良反应聚集信号", SIGNAL_COLUMNS, objects)


def suspension_export(objects: Iterable[Suspension], fmt: str) -> bytes:
    return write(fmt, "暂停使用", SUSPENSION_COLUMNS, objects)
