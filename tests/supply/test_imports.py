"""Importing the registers from CSV/XLSX: all-or-nothing, per-row Chinese errors with line and column,
re-imports change nothing, export → import is an identity (data-exchange.md)."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import pytest

from jicai.core.tenancy import system_scope, use_scope
from jicai.imports.engine import ImportDenied
from jicai.supply.actions import do_import
from jicai.supply.datasets import SPECS
from jicai.supply.export import export_xlsx
from jicai.supply.models import CreditEvent, Sanction, SupplyIncident, SupplyReport
from tests.conftest import World, csv_bytes

from .conftest import HN2, SELECTED, audit_actions

pytestmark = pytest.mark.django_db


def errors(result: Any) -> list[tuple[int, str, str]]:
    return [(i.line, i.column, i.code) for i in result.errors]


def _count(model: Any) -> int:
    with system_scope("test"):
        return int(model.objects.count())


def test_a_hospital_imports_incidents_with_chinese_headers(world: World) -> None:
    data = csv_bytes(
        "批次编码,品种编码,事件类型,开始日期,结束日期,中选产品编码,原因\n"
        f"HN-N7,A01,断供,2022/11/15,,{SELECTED},企业停产\n"
        "HN-N7,A01,短缺,20221201,2022-12-20,,到货不足"
    )
    result = do_import(world.scope("hn_vbp"), "supply_incidents", data, "断供.csv")
    assert (result.status, result.created, errors(result)) == ("applied", 2, [])
    with system_scope("test"):
        rows = list(
            SupplyIncident.objects.order_by("start_on").values_list("kind", "institution__code", "status", "company_id")
        )
    assert rows == [
        ("interruption", world.hn_inst.code, "reported", world.company.pk),
        ("shortage", world.hn_inst.code, "reported", None),
    ]
    assert audit_actions("supply.SupplyIncident") == ["create", "create"]
    # the same file again changes nothing
    again = do_import(world.scope("hn_vbp"), "supply_incidents", data, "断供.csv")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)


def test_a_file_with_a_bad_row_changes_nothing_and_names_line_and_column(world: World) -> None:
    data = csv_bytes(
        "batch_code,item_code,kind,start_on,end_on,institution_code,cause\n"
        "HN-N7,A01,interruption,2022-11-15,,,企业停产\n"  # line 2: fine
        "HN-N7,Z99,interruption,2022-11-15,,,无此品种\n"  # line 3: unknown item
        "HN-N7,A01,延迟,2022-11-15,,,类型不对\n"  # line 4: kind
        f"HN-N7,A01,shortage,2022-11-15,,{HN2},别的医院\n"  # line 5: another institution
        "HN-N7,A01,shortage,2022-13-01,,,日期\n"  # line 6: no such date
        "HN-N7,A01,shortage,2022-12-01,2022-11-01,,结束早于开始\n"  # line 7
        "HN-N7,A01,shortage,2022-12-02,,,"  # line 8: no cause
    )
    result = do_import(world.scope("hn_vbp"), "supply_incidents", data, "bad.csv")
    assert result.status == "rejected"
    assert errors(result) == [
        (3, "item_code", "reference.unknown"),
        (4, "kind", "value.choice"),
        (5, "institution_code", "scope.row"),
        (6, "start_on", "date.nonexistent"),
        (7, "end_on", "period.order"),
        (8, "cause", "value.required"),
    ]
    by_line = {i.line: i for i in result.errors}
    assert "Z99" in by_line[3].message_zh
    assert "可选" in by_line[4].message_zh
    assert result.column_label("item_code") == "品种编码（item_code）"
    assert result.report_path  # the downloadable Excel report
    assert _count(SupplyIncident) == 0


def test_a_closed_incident_is_not_changed_by_import(world: World) -> None:
    from jicai.supply.actions import IncidentInput, do_close_incident, do_confirm_incident, do_report_incident
    from tests.supply.conftest import D

    incident = do_report_incident(
        world.scope("hn_vbp"), IncidentInput("HN-N7", "A01", "shortage", D(2022, 11, 15), "短缺")
    )
    do_confirm_incident(world.scope("hn_admin"), incident.pk)
    do_close_incident(world.scope("hn_admin"), incident.pk, end_on=D(2022, 11, 30))
    data = csv_bytes("batch_code,item_code,kind,start_on,end_on,cause\nHN-N7,A01,shortage,2022-11-15,2022-12-31,短缺")
    result = do_import(world.scope("hn_vbp"), "supply_incidents", data, "x.csv")
    assert errors(result) == [(2, "start_on", "incident.status")]


def test_export_then_import_is_an_identity(world: World) -> None:
    from openpyxl import load_workbook

    data = csv_bytes(
        "batch_code,item_code,kind,start_on,product_code,cause\n"
        f"HN-N7,A01,interruption,2022-11-15,{SELECTED},企业停产\n"
        "HN-N7,A01,shortage,2022-12-01,,到货不足"
    )
    assert do_import(world.scope("hn_admin"), "supply_incidents", data, "x.csv").created == 2
    with use_scope(world.scope("hn_admin")):
        response = export_xlsx(
            SPECS["supply_incidents"], SupplyIncident.objects.order_by("pk"), "x.xlsx", [("状态", lambda o: o.status)]
        )
    blob = b"".join(response.streaming_content)  # type: ignore[arg-type]
    sheet = load_workbook(io.BytesIO(blob)).active
    header = [c.value for c in next(sheet.iter_rows(max_row=1))]
    assert header[:3] == ["批次编码", "品种编码", "医疗机构编码"]
    assert header[-1] == "状态"
    result = do_import(world.scope("hn_admin"), "supply_incidents", blob, "export.xlsx")
    assert (result.status, result.created, result.updated, result.unchanged) == ("applied", 0, 0, 2)


def test_credit_events_import_as_manual_events(world: World) -> None:
    data = csv_bytes(
        "企业名称,事件类型,发生日期,严重程度,药品编码,情况说明\n"
        f"{world.company.name},近效期,2022-11-20,较重,{SELECTED},有效期不足6个月\n"
        f"{world.company.name},包装规格不适宜,2022-11-21,一般,,包装过大"
    )
    result = do_import(world.scope("hn_admin"), "credit_events", data, "诚信.csv")
    assert (result.status, result.created) == ("applied", 2)
    with system_scope("test"):
        assert set(CreditEvent.objects.values_list("source", "region_code", "institution_id")) == {
            ("manual", "460000", None)
        }


def test_exported_generated_events_import_back_unchanged(supply_world: World) -> None:
    from jicai.supply.actions import CreditInput, do_derive_credit_events, do_record_credit_event

    from .conftest import HN, D, import_purchases, purchase_line

    import_purchases(
        [purchase_line("L1", HN, SELECTED, ordered=D(2022, 11, 1), delivered=D(2022, 11, 6), accepted=D(2022, 11, 6))]
    )
    admin = supply_world.scope("hn_admin")
    do_derive_credit_events(admin, "2022-11", as_of=D(2023, 1, 31))
    do_record_credit_event(admin, CreditInput(supply_world.company.name, "near_expiry", D(2022, 11, 20)))
    with use_scope(admin):
        response = export_xlsx(SPECS["credit_events"], CreditEvent.objects.order_by("pk"), "x.xlsx")
    blob = b"".join(response.streaming_content)  # type: ignore[arg-type]
    again = do_import(admin, "credit_events", blob, "x.xlsx")
    assert (again.status, again.created, again.updated, again.unchanged) == ("applied", 0, 0, 2)
    # a derived row that is not on record is refused, naming the column
    data = csv_bytes(
        f"企业名称,事件类型,发生日期,严重程度,来源\n{supply_world.company.name},短缺,2022-11-02,一般,derived"
    )
    refused = do_import(admin, "credit_events", data, "x.csv")
    assert errors(refused) == [(2, "source", "credit.not_manual")]
    assert _count(CreditEvent) == 2


def test_import_permission_is_checked(world: World) -> None:
    data = csv_bytes("企业名称,事件类型,发生日期,严重程度\n辉瑞制药有限公司,近效期,2022-11-20,一般")
    with pytest.raises(ImportDenied):
        do_import(world.scope("hn_pharmacy"), "credit_events", data, "x.csv")
    with pytest.raises(ImportDenied):
        do_import(world.scope("hn_vbp"), "supply_reports", data, "x.csv")
    with pytest.raises(ImportDenied):
        do_import(world.scope("hn_viewer"), "supply_incidents", data, "x.csv")


def test_sanctions_import(world: World) -> None:
    data = csv_bytes(
        "企业名称,措施类型,决定日期,批次编码,品种编码,赔偿金额（元）,说明\n"
        f"{world.company.name},赔偿,2023-01-05,HN-N7,A01,12000.5,断供期间差价赔偿\n"
        f"{world.company.name},警告,2023-01-06,,,,约谈"
    )
    result = do_import(world.scope("hn_admin"), "sanctions", data, "处理.csv")
    assert (result.status, result.created) == ("applied", 2)
    with system_scope("test"):
        assert Sanction.objects.get(kind="compensation").amount == Decimal("12000.50")
        assert set(Sanction.objects.values_list("decided_by_id", flat=True)) == {world.user("hn_admin").pk}


def test_supply_reports_import_with_stock_cover(world: World) -> None:
    data = csv_bytes(
        "生产企业,批次编码,品种编码,报告日期,库存量,月产能,是否停产,停产原因\n"
        f"{world.company.name},HN-N7,A01,2023-01-15,500,3000,否,\n"
        f"{world.company.name},HN-N7,A01,2023-01-31,0,,是,\n"  # stopped without a reason
        f"{world.company.name},HN-N7,A01,2023-02-15,-5,,否,"  # negative stock
    )
    result = do_import(world.scope("hn_admin"), "supply_reports", data, "供应.csv")
    assert errors(result) == [(3, "stop_reason", "value.required"), (4, "stock_on_hand", "decimal.negative")]
    assert _count(SupplyReport) == 0
    good = csv_bytes(
        f"生产企业,批次编码,品种编码,报告日期,库存量,月产能\n{world.company.name},HN-N7,A01,2023-01-15,500,3000"
    )
    ok = do_import(world.scope("hn_admin"), "supply_reports", good, "供应.csv")
    assert (ok.status, ok.created) == ("applied", 1)
    with system_scope("test"):
        report = SupplyReport.objects.get()
    # 10 000 agreed in the province ÷ 12 = 833.3333 a month; 500 cover 0.60 months
    assert (report.monthly_demand, report.stock_cover, report.capacity_per_month) == (
        Decimal("833.3333"),
        Decimal("0.60"),
        Decimal(3000),
    )
