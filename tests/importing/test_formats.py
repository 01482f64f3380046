"""File formats users bring: CSV in three encodings, XLSX, XLS; header spellings; dates; bad files."""

from __future__ import annotations

import datetime as dt
import io
import os
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import xlwt

from jicai.catalog.models import Product
from jicai.core.tenancy import use_scope
from jicai.organizations.models import Institution
from jicai.programme.models import Agreement, Batch
from tests.importing.helpers import (
    csv_from_rows,
    data_counts,
    do_import,
    export_bytes,
    has_chinese,
    operator,
    read_csv_bytes,
    snapshot,
)

Rows = Sequence[Sequence[object]]

INSTITUTION_HEADERS_ZH = ["医疗机构编码", "医疗机构名称", "行政区划代码", "机构类型", "机构等级", "是否参加集采"]
INSTITUTION_HEADERS_EN = ["code", "name", "region_code", "kind", "level", "participating"]
INSTITUTION_ROWS: list[list[object]] = [
    ["H46010800001", "海南省人民医院", 460108, "公立医院", 3, "是"],
    ["H46020000002", "三亚市人民医院", "460200", "public", "三级", "1"],
    ["h46010500003", "海口市中医医院（民营）", 460105, "民营", 2, "否"],
]
EXPECTED_INSTITUTIONS = [
    INSTITUTION_HEADERS_EN,
    ["H46010500003", "海口市中医医院（民营）", "460105", "private", "2", "否"],
    ["H46010800001", "海南省人民医院", "460108", "public", "3", "是"],
    ["H46020000002", "三亚市人民医院", "460200", "public", "3", "是"],
]

PRODUCT_HEADERS = ["药品编码", "通用名", "剂型", "规格", "包装", "生产企业", "挂网价格", "是否过评", "备注", "是否中选"]
PRODUCT_ROWS: list[list[object]] = [
    [
        "XC10AAA067A001020101187",
        "阿托伐他汀钙片",
        "片剂",
        "20mg",
        "20mg*7片/盒",
        "辉瑞制药有限公司",
        42.77,
        "否",
        "原研",
        "1",
    ],
    ["XC08CAA014A001010100001", "苯磺酸氨氯地平片", "片剂", "5mg", "5mg×14片/盒", "", 0.1 + 0.2, "是", None, "0"],
    [
        "XJ01CAA040E001020304129",
        "阿莫西林胶囊",
        "硬胶囊",
        "0.25g",
        "0.25g*24粒/盒",
        "山东鲁抗",
        9.359999999999999,
        "是",
        "",
        "",
    ],
]
EXPECTED_PRODUCTS = {
    "XC10AAA067A001020101187": (7, "片", Decimal("42.77"), False, {"备注": "原研", "是否中选": "1"}),
    "XC08CAA014A001010100001": (14, "片", Decimal("0.30"), True, {"是否中选": "0"}),
    "XJ01CAA040E001020304129": (24, "粒", Decimal("9.36"), True, {}),
}


# --- writers: one per format, all from the same typed rows -----------------------------------


def _csv_text(value: object) -> str:
    return "" if value is None else str(value)


def _as_csv(encoding: str) -> Callable[[Rows], bytes]:
    def write(rows: Rows) -> bytes:
        return csv_from_rows([[_csv_text(v) for v in row] for row in rows], encoding=encoding)

    return write


def as_xlsx(rows: Rows) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    for row in rows:
        ws.append(list(row))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


XLS_DATE = xlwt.easyxf(num_format_str="YYYY-MM-DD")


def as_xls(rows: Rows) -> bytes:
    wb = xlwt.Workbook(encoding="utf-8")
    ws = wb.add_sheet("Sheet1")
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, dt.date):
                ws.write(r, c, value, XLS_DATE)
            else:
                ws.write(r, c, value)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


WRITERS: dict[str, tuple[Callable[[Rows], bytes], str]] = {
    "utf-8": (_as_csv("utf-8"), "data.csv"),
    "utf-8-bom": (_as_csv("utf-8-sig"), "data.csv"),
    "gb18030": (_as_csv("gb18030"), "data.csv"),
    "xlsx": (as_xlsx, "data.xlsx"),
    "xls": (as_xls, "data.xls"),
}


def test_writers_really_produce_different_bytes() -> None:
    rows = [INSTITUTION_HEADERS_ZH, *INSTITUTION_ROWS]
    produced = {name: write(rows) for name, (write, _) in WRITERS.items()}
    assert produced["utf-8-bom"].startswith(b"\xef\xbb\xbf")
    assert produced["gb18030"] != produced["utf-8"]
    with pytest.raises(UnicodeDecodeError):
        produced["gb18030"].decode("utf-8")
    assert produced["xlsx"].startswith(b"PK\x03\x04")
    assert produced["xls"].startswith(b"\xd0\xcf\x11\xe0")


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_institutions_import_identically_in_every_format(db: Any, fmt: str) -> None:
    write, filename = WRITERS[fmt]
    result = do_import("institutions", write([INSTITUTION_HEADERS_ZH, *INSTITUTION_ROWS]), filename)
    assert result.errors == [], result.issues
    assert (result.status, result.total_rows, result.created) == ("applied", 3, 3)
    assert read_csv_bytes(export_bytes("institutions")) == EXPECTED_INSTITUTIONS


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_products_import_identically_in_every_format(db: Any, fmt: str) -> None:
    write, filename = WRITERS[fmt]
    result = do_import("products", write([PRODUCT_HEADERS, *PRODUCT_ROWS]), filename)
    assert result.errors == [], result.issues
    assert (result.status, result.created) == ("applied", 3)
    with use_scope(operator()):
        stored = {
            p.code: (p.pack_size, p.min_unit, p.listed_price, p.ce_passed, p.extra) for p in Product.objects.all()
        }
        assert Product.objects.get(code="XC08CAA014A001010100001").manufacturer == ""
    assert stored == EXPECTED_PRODUCTS


def test_every_format_gives_byte_identical_exports(db: Any) -> None:
    exports = set()
    for write, filename in WRITERS.values():
        with use_scope(operator()):
            Product.objects.all().delete()
        result = do_import("products", write([PRODUCT_HEADERS, *PRODUCT_ROWS]), filename)
        assert result.created == 3, result.issues
        exports.add(export_bytes("products"))
    assert len(exports) == 1


def test_chinese_headers_in_any_order(db: Any) -> None:
    order = [4, 2, 0, 5, 1, 3]
    headers = [INSTITUTION_HEADERS_ZH[i] for i in order]
    rows = [[row[i] for i in order] for row in INSTITUTION_ROWS]
    result = do_import("institutions", WRITERS["utf-8"][0]([headers, *rows]), "shuffled.csv")
    assert result.errors == [], result.issues
    assert result.created == 3
    assert read_csv_bytes(export_bytes("institutions")) == EXPECTED_INSTITUTIONS


def test_english_headers_and_header_spelling_variants(db: Any) -> None:
    result = do_import("institutions", WRITERS["utf-8"][0]([INSTITUTION_HEADERS_EN, *INSTITUTION_ROWS]), "english.csv")
    assert result.errors == [], result.issues
    assert read_csv_bytes(export_bytes("institutions")) == EXPECTED_INSTITUTIONS
    # Case, spaces, underscores, full-width brackets and aliases do not matter.
    variants = ["Code", " NAME ", "Region Code", "类型", "（机构等级）", "PARTICIPATING"]
    rows = [[*row[:1], row[1] + "（新）", *row[2:]] for row in INSTITUTION_ROWS]
    again = do_import("institutions", WRITERS["utf-8"][0]([variants, *rows]), "variants.csv")
    assert again.errors == [], again.issues
    assert (again.created, again.updated) == (0, 3)


def test_unknown_columns_are_kept_in_extra_and_never_fatal(db: Any) -> None:
    headers = ["备注", *INSTITUTION_HEADERS_ZH, "Unknown Column", "联系电话"]
    rows = [
        ["重点医院", *INSTITUTION_ROWS[0], "x,y", "0898-66222222"],
        ["", *INSTITUTION_ROWS[1], "", None],
        [None, *INSTITUTION_ROWS[2], "  z  ", ""],
    ]
    for write, filename in (WRITERS["utf-8"], WRITERS["xlsx"]):
        result = do_import("institutions", write([headers, *rows]), filename)
        assert result.errors == [], result.issues
        assert result.status == "applied"
    with use_scope(operator()):
        extras = {i.code: i.extra for i in Institution.objects.all()}
    assert extras == {
        "H46010800001": {"备注": "重点医院", "Unknown Column": "x,y", "联系电话": "0898-66222222"},
        "H46020000002": {},
        "H46010500003": {"Unknown Column": "z"},
    }
    # The extra columns come back out in the export, after the canonical ones.
    exported = read_csv_bytes(export_bytes("institutions"))
    assert exported[0][:6] == INSTITUTION_HEADERS_EN
    assert sorted(exported[0][6:]) == sorted(["备注", "Unknown Column", "联系电话"])


def test_numeric_extra_cells_read_the_same_from_xlsx_as_from_csv(db: Any) -> None:
    headers = [*INSTITUTION_HEADERS_ZH, "床位数", "联系电话"]
    rows = [[*INSTITUTION_ROWS[0], 1200, 89866222222]]
    do_import("institutions", as_xlsx([headers, *rows]), "with-numbers.xlsx")
    with use_scope(operator()):
        extra = Institution.objects.get(code="H46010800001").extra
    assert extra == {"床位数": "1200", "联系电话": "89866222222"}


def test_values_under_a_blank_header_are_not_silently_dropped(db: Any) -> None:
    headers = [*INSTITUTION_HEADERS_ZH[:2], "", *INSTITUTION_HEADERS_ZH[2:]]
    rows = [[*INSTITUTION_ROWS[0][:2], "重要备注", *INSTITUTION_ROWS[0][2:]]]
    result = do_import("institutions", WRITERS["utf-8"][0]([headers, *rows]), "blank-header.csv")
    with use_scope(operator()):
        kept = "重要备注" in Institution.objects.get(code="H46010800001").extra.values()
    assert kept or result.issues, "the value under the blank header vanished without a word"


# --- dates ------------------------------------------------------------------------------------

BATCH_HEADERS = ["批次编码", "批次名称", "批次级别", "政策配置", "行政区划代码", "执行日期"]
DATE_SPELLINGS: list[object] = ["2026-03-01", "2026/3/1", "20260301", "2026年3月1日", "2026.3.1", 20260301]


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_batch_start_dates_in_every_spelling(db: Any, fmt: str) -> None:
    write, filename = WRITERS[fmt]
    spellings = list(DATE_SPELLINGS)
    if fmt in ("xlsx", "xls"):
        spellings += [dt.date(2026, 3, 1), dt.datetime(2026, 3, 1, 0, 0)]  # Excel date cells
    rows = [[f"B{i}", f"批次{i}", "省级", "national", "460000", value] for i, value in enumerate(spellings)]
    result = do_import("batches", write([BATCH_HEADERS, *rows]), filename)
    assert result.errors == [], result.issues
    assert result.created == len(spellings)
    with use_scope(operator()):
        assert set(Batch.objects.values_list("start_date", flat=True)) == {dt.date(2026, 3, 1)}


AGREEMENT_HEADERS = ["批次编码", "品种编码", "医疗机构编码", "协议年度", "协议开始日期", "协议结束日期", "约定采购量"]


@pytest.mark.parametrize("fmt", ["utf-8", "xlsx", "xls"])
def test_agreement_period_dates_in_every_spelling(world: Any, fmt: str) -> None:
    write, filename = WRITERS[fmt]
    starts: list[object] = ["2026-03-01", "2026/3/1", "20260301"]
    ends: list[object] = ["2027-02-28", "2027/2/28", "20270228"]
    if fmt != "utf-8":
        starts.append(dt.date(2026, 3, 1))
        ends.append(dt.datetime(2027, 2, 28, 0, 0))
    rows = [
        ["HN-N7", "A01", "H46020000002", year, start, end, 1000]
        for year, (start, end) in enumerate(zip(starts, ends, strict=True), start=1)
    ]
    result = do_import("agreements", write([AGREEMENT_HEADERS, *rows]), filename)
    assert result.errors == [], result.issues
    assert result.created == len(rows)
    with use_scope(operator()):
        periods = set(Agreement.objects.filter(institution=world.hn_inst2).values_list("period_start", "period_end"))
    assert periods == {(dt.date(2026, 3, 1), dt.date(2027, 2, 28))}


def test_impossible_and_serial_dates_are_rejected_not_guessed(db: Any) -> None:
    rows = [
        ["B1", "批次", "省级", "national", "460000", "2026-02-30"],
        ["B2", "批次", "省级", "national", "460000", "46082"],  # an Excel serial number shown as text
        ["B3", "批次", "省级", "national", "460000", "03/01/2026"],
    ]
    result = do_import("batches", WRITERS["utf-8"][0]([BATCH_HEADERS, *rows]), "dates.csv")
    assert result.status == "rejected"
    assert [(i.line, i.column, i.code) for i in result.errors] == [
        (2, "start_date", "date.nonexistent"),
        (3, "start_date", "date.invalid"),
        (4, "start_date", "date.invalid"),
    ]
    with use_scope(operator()):
        assert not Batch.objects.exists()


# --- files that are not tables ------------------------------------------------------------------


def _damaged_xlsx() -> bytes:
    good = as_xlsx([INSTITUTION_HEADERS_ZH, *INSTITUTION_ROWS])
    return good[: len(good) // 2]


NOT_A_TABLE: dict[str, tuple[bytes, str, str]] = {
    "pdf": (b"%PDF-1.4\n" + os.urandom(512), "report.pdf", "file.type"),
    "random-bytes-as-pdf": (os.urandom(512), "scan.pdf", "file.type"),
    "damaged-xlsx": (_damaged_xlsx(), "institutions.xlsx", "file.excel"),
    "garbage-xlsx": (b"this is not a spreadsheet", "institutions.xlsx", "file.excel"),
    "zip-magic-csv": (b"PK\x03\x04" + os.urandom(256), "institutions.csv", "file.excel"),
    "binary-csv": (bytes(range(256)) * 4, "institutions.csv", "file.encoding"),
    "empty": (b"", "institutions.csv", "file.no_header"),
    "blank-lines": (b"\r\n\r\n  \r\n", "institutions.csv", "file.no_header"),
}


@pytest.mark.parametrize("case", list(NOT_A_TABLE))
def test_files_that_are_not_tables_give_one_file_level_issue_and_change_nothing(world: Any, case: str) -> None:
    data, filename, code = NOT_A_TABLE[case]
    before_counts, before = data_counts(), snapshot()
    result = do_import("institutions", data, filename)
    assert result.status == "rejected"
    assert result.file_error
    assert result.changed_nothing
    assert len(result.issues) == 1
    issue = result.issues[0]
    assert (issue.line, issue.severity, issue.code) == (1, "error", code)
    assert has_chinese(issue.message_zh)
    assert issue.message_en
    assert (result.created, result.updated, result.unchanged) == (0, 0, 0)
    assert Path(result.report_path).is_file()
    assert data_counts() == before_counts
    assert snapshot() == before


def test_header_only_file_imports_nothing(world: Any) -> None:
    before_counts, before = data_counts(), snapshot()
    for write, filename in WRITERS.values():
        result = do_import("institutions", write([INSTITUTION_HEADERS_ZH]), filename)
        assert result.errors == [], (filename, result.issues)
        assert (result.total_rows, result.created, result.updated, result.unchanged) == (0, 0, 0, 0)
        assert result.status == "applied"
    assert data_counts() == before_counts
    assert snapshot() == before


def test_a_file_with_the_wrong_headers_is_a_header_error(world: Any) -> None:
    before = snapshot()
    result = do_import("institutions", WRITERS["utf-8"][0]([PRODUCT_HEADERS, *PRODUCT_ROWS]), "products.csv")
    assert result.status == "rejected"
    missing = {i.column for i in result.errors if i.code == "header.missing"}
    assert missing == {"code", "name", "region_code", "kind", "level"}
    assert all(i.line == 1 and has_chinese(i.message_zh) for i in result.errors)
    assert snapshot() == before
