"""The demand submission sheet (采购需求量申报表) as Excel, in the columns a bureau's 报量表 asks for (R-H2).

The sheet is a form the bureau prescribes, so its title, headers and signature lines are Chinese in
every UI language: a title row, the institution and round, the columns 序号 … 备注, a total row, then
lines for the preparer and the approving leader (审批人, 审批日期) and the institution's seal.
"""

from __future__ import annotations

from decimal import Decimal
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, Side
from openpyxl.utils import get_column_letter

from jicai.core.tenancy import Scope
from jicai.hospital.common import require
from jicai.hospital.demand import queries
from jicai.hospital.models import AdjustmentReason, DemandPlan, DemandStatus

CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

HEADERS = (
    "序号",
    "医疗机构编码",
    "医疗机构名称",
    "批次",
    "品种编码",
    "通用名",
    "剂型",
    "规格/计量单位",
    "上年度(历史)用量",
    "建议采购量",
    "申报采购量",
    "调整原因",
    "备注",
)
WIDTHS = (6, 16, 24, 26, 12, 22, 10, 18, 16, 12, 12, 16, 30)
REASON_ZH = {
    AdjustmentReason.GUIDELINE: "临床指南变化",
    AdjustmentReason.INSURANCE: "医保政策调整",
    AdjustmentReason.PUBLIC_HEALTH: "公共卫生事件",
    AdjustmentReason.CLINICAL: "临床意见",
    AdjustmentReason.OTHER: "其他",
}
STATUS_ZH = {
    DemandStatus.DRAFT: "草稿",
    DemandStatus.PENDING: "待审批",
    DemandStatus.APPROVED: "已审批",
    DemandStatus.LOCKED: "已锁定上报",
}
THIN = Side(style="thin", color="999999")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)


def _number(value: Decimal) -> int | float:
    """Whole units as int; other quantities as float for Excel (display only)."""
    return int(value) if value == value.to_integral_value() else float(value)


def filename(plan: DemandPlan) -> str:
    return f"demand-{plan.batch.code}-{plan.institution.code}.xlsx"


def write_submission(scope: Scope, plan: DemandPlan, out: IO[bytes]) -> int:
    """Write ``plan``'s submission sheet to ``out``; returns the number of item rows."""
    require(scope, "demand", "export")
    lines = queries.plan_lines(scope, plan)
    specs = queries.item_specs(scope, plan)
    wb = Workbook()
    ws = wb.active
    assert ws is not None  # a new workbook has its sheet
    ws.title = "采购需求量申报表"
    last_col = get_column_letter(len(HEADERS))
    title = f"{plan.batch.name}采购需求量申报表"
    ws.append([title])
    ws.merge_cells(f"A1:{last_col}1")
    ws["A1"].font = Font(bold=True, size=14)
    ws["A1"].alignment = Alignment(horizontal="center")
    ws.append(
        [
            f"医疗机构：{plan.institution.name}（{plan.institution.code}）    批次：{plan.batch.code}    "
            f"历史区间：{plan.history_from:%Y-%m}至{plan.history_to:%Y-%m}    "
            f"状态：{STATUS_ZH.get(DemandStatus(plan.status), plan.status)}"
        ]
    )
    ws.merge_cells(f"A2:{last_col}2")
    ws.append(list(HEADERS))
    header_row = ws.max_row
    for col in range(1, len(HEADERS) + 1):
        cell = ws.cell(header_row, col)
        cell.font = Font(bold=True)
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        cell.border = BOX
    total_suggested = Decimal(0)
    total_reported = Decimal(0)
    for number, line in enumerate(lines, start=1):
        form, strength = specs.get(line.item_id, ("", ""))
        form = form or line.item.dosage_form_group
        unit = f"{strength}/{line.item.unit_label}" if strength else line.item.unit_label
        last_year = Decimal(str(line.method.get("last_year_qty") or line.history_qty))
        reported = line.reported_qty
        total_suggested += line.suggested_qty
        total_reported += reported
        row: list[Any] = [
            number,
            plan.institution.code,
            plan.institution.name,
            plan.batch.name,
            line.item.item_code,
            line.item.generic_name,
            form,
            unit,
            _number(last_year),
            _number(line.suggested_qty),
            _number(reported),
            REASON_ZH.get(AdjustmentReason(line.reason), "") if line.reason else "",
            line.reason_note,
        ]
        ws.append(row)
        for col in range(1, len(HEADERS) + 1):
            ws.cell(ws.max_row, col).border = BOX
    ws.append(["合计", "", "", "", "", "", "", "", "", _number(total_suggested), _number(total_reported), "", ""])
    for col in range(1, len(HEADERS) + 1):
        ws.cell(ws.max_row, col).border = BOX
        ws.cell(ws.max_row, col).font = Font(bold=True)
    ws.append([])
    preparer = plan.created_by.get_username() if plan.created_by else ""
    approver = plan.approved_by.get_username() if plan.approved_by else ""
    approved_on = f"{plan.approved_at:%Y-%m-%d}" if plan.approved_at else ""
    ws.append([f"填报人：{preparer}", "", "", "", f"填报日期：{plan.created_at:%Y-%m-%d}"])
    ws.append([f"审批人：{approver}", "", "", "", f"审批日期：{approved_on}"])
    ws.append(["单位（盖章）：", "", "", "", "上报日期：" + (f"{plan.locked_at:%Y-%m-%d}" if plan.locked_at else "")])
    for col, width in enumerate(WIDTHS, start=1):
        ws.column_dimensions[get_column_letter(col)].width = width
    ws.freeze_panes = ws.cell(header_row + 1, 1)
    wb.save(out)
    return len(lines)
