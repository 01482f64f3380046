"""Atomic imports and error reporting: a file with errors changes nothing and says exactly why."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from jicai.core.models import AuditEntry
from jicai.core.tenancy import use_scope
from jicai.imports.models import ImportRun
from jicai.imports.report import REPORT_HEADERS
from jicai.organizations.models import Company
from jicai.programme.models import Agreement, SelectedProduct
from tests.conftest import csv_bytes
from tests.importing.helpers import data_counts, do_import, has_chinese, operator, snapshot

HEADER = "批次编码,品种编码,医疗机构编码,协议年度,协议开始日期,协议结束日期,约定采购量"
VALID_ROW = "HN-N7,A01,H46020000002,1,2026-03-01,2027-02-28,5000"
# Line numbers as a spreadsheet shows them: the header is line 1, and the blank line 5 still counts.
BROKEN = csv_bytes(
    f"""
{HEADER}
{VALID_ROW}
HN-N7,A01,H46020000002,2,2026-13-01,2027-02-28,5000
HN-N7,A01,H46020000002,3,2026-03-01,2027-02-28,-100

HN-N7,A01,H46099999999,1,2026-03-01,2027-02-28,5000
"""
)
EXPECTED_ERRORS = [
    (3, "period_start", "2026-13-01", "date.nonexistent"),
    (4, "agreed_qty", "-100", "decimal.negative"),
    (6, "institution_code", "H46099999999", "reference.unknown"),
]


def _column(cell: object, name: str) -> bool:
    """A report's column cell names the column, bare or after its Chinese label: 协议开始日期（period_start）."""
    return cell == name or str(cell).endswith(f"（{name}）")


def _same_problems(rows: list[tuple[Any, ...]], expected: list[tuple[int, str, str, str]]) -> bool:
    return len(rows) == len(expected) and all(
        int(r[0]) == line and _column(r[1], column) and r[2] == value and r[6] == code
        for r, (line, column, value, code) in zip(rows, expected, strict=True)
    )


def _errors(result: Any) -> list[tuple[int, str, str, str]]:
    return [(i.line, i.column, i.value, i.code) for i in result.errors]


def _assert_explained(issue: Any) -> None:
    assert has_chinese(issue.message_zh), issue
    assert re.search(r"[A-Za-z]{3}", issue.message_en), issue


def _agreements(world: Any) -> dict[int, Agreement]:
    with use_scope(operator()):
        return {a.year: a for a in Agreement.objects.filter(institution=world.hn_inst2)}


# --- a broken file is rejected whole --------------------------------------------------------------


def test_broken_agreements_file_is_rejected_and_changes_nothing(world: Any) -> None:
    before_counts, before = data_counts(), snapshot()
    result = do_import("agreements", BROKEN, "agreements.csv")
    assert result.status == "rejected"
    assert result.changed_nothing
    assert (result.total_rows, result.rejected) == (4, 3)
    assert _errors(result) == EXPECTED_ERRORS
    for issue in result.errors:
        _assert_explained(issue)
    assert "H46099999999" in result.errors[2].message_zh
    assert data_counts() == before_counts
    assert snapshot() == before
    assert _agreements(world) == {}
    # The rejected run is logged, with its report.
    with use_scope(operator()):
        run = ImportRun.objects.get(pk=result.run_id)
    assert (run.status, run.rejected, run.total_rows, run.report) == (
        "rejected",
        3,
        4,
        Path(result.report_path).name,
    )


def test_rejected_run_is_logged_as_having_created_nothing(world: Any) -> None:
    result = do_import("agreements", BROKEN, "agreements.csv")
    with use_scope(operator()):
        run = ImportRun.objects.get(pk=result.run_id)
    assert (run.status, run.created, run.updated) == ("rejected", 0, 0)


def test_report_xlsx_lists_every_problem(world: Any) -> None:
    result = do_import("agreements", BROKEN, "agreements.csv")
    path = Path(result.report_path)
    assert path.is_file()
    assert path.suffix == ".xlsx"
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == REPORT_HEADERS
    body = [r for r in rows[1:] if any(c is not None for c in r)]
    assert _same_problems(body, EXPECTED_ERRORS), body
    for row in body:
        assert has_chinese(str(row[3]))  # severity, in Chinese
        assert has_chinese(str(row[4]))
        assert re.search(r"[A-Za-z]{3}", str(row[5]))


def test_missing_key_column_rejects_the_file(world: Any) -> None:
    before_counts, before = data_counts(), snapshot()
    data = csv_bytes(
        """
批次编码,品种编码,医疗机构编码,协议开始日期,协议结束日期,约定采购量
HN-N7,A01,H46020000002,2026-03-01,2027-02-28,5000
"""
    )
    result = do_import("agreements", data, "no-year.csv")
    assert result.status == "rejected"
    assert result.file_error
    assert [(i.line, i.column, i.code) for i in result.errors] == [(1, "year", "header.missing")]
    assert "协议年度" in result.errors[0].message_zh
    _assert_explained(result.errors[0])
    assert Path(result.report_path).is_file()
    assert data_counts() == before_counts
    assert snapshot() == before


def test_load_valid_loads_the_good_rows_and_reports_the_bad(world: Any) -> None:
    audit_before = AuditEntry.objects.count()
    result = do_import("agreements", BROKEN, "agreements.csv", load_valid=True)
    assert result.status == "partial"
    assert (result.created, result.rejected) == (1, 3)
    assert _errors(result) == EXPECTED_ERRORS
    stored = _agreements(world)
    assert list(stored) == [1]
    assert stored[1].agreed_qty == Decimal(5000)
    assert stored[1].period_start == dt.date(2026, 3, 1)
    assert AuditEntry.objects.count() == audit_before + 1
    assert Path(result.report_path).is_file()


def test_dry_run_changes_nothing_but_reports_counts(world: Any) -> None:
    before_counts, before = data_counts(), snapshot()
    checked = do_import("agreements", BROKEN, "agreements.csv", dry_run=True)
    assert checked.status == "dry_run"
    assert checked.changed_nothing
    assert (checked.created, checked.rejected) == (1, 3)
    assert _errors(checked) == EXPECTED_ERRORS
    # A clean file: one new agreement and one change to the fixture's agreement.
    data = csv_bytes(
        f"""
{HEADER}
{VALID_ROW}
HN-N7,A01,H46010800001,1,2022-11-01,2023-10-31,12000
"""
    )
    clean = do_import("agreements", data, "agreements.csv", dry_run=True)
    assert clean.status == "dry_run"
    assert (clean.created, clean.updated, clean.unchanged, clean.rejected) == (1, 1, 0, 0)
    assert data_counts() == before_counts
    assert snapshot() == before


def test_duplicate_key_with_different_values_names_the_first_line(world: Any) -> None:
    data = csv_bytes(
        f"""
{HEADER}
{VALID_ROW}
HN-N7,A01,H46010800001,1,2022-11-01,2023-10-31,10000
HN-N7,A01,H46020000002,1,2026-03-01,2027-02-28,6000
"""
    )
    before = snapshot()
    result = do_import("agreements", data, "dupes.csv")
    assert result.status == "rejected"
    assert [(i.line, i.code) for i in result.errors] == [(4, "row.duplicate_key")]
    issue = result.errors[0]
    assert "第 2 行" in issue.message_zh
    assert "line 2" in issue.message_en
    assert issue.value == "HN-N7/A01/H46020000002/1"
    assert snapshot() == before


def test_identical_repeated_rows_are_merged_with_a_warning(world: Any) -> None:
    data = csv_bytes(f"{HEADER}\n{VALID_ROW}\n{VALID_ROW}\n")
    result = do_import("agreements", data, "repeated.csv")
    assert result.status == "applied"
    assert result.created == 1
    assert [(i.line, i.code, i.severity) for i in result.issues] == [(3, "row.repeated", "warning")]


# --- agreed volume and its checks -----------------------------------------------------------------

RATIO_HEADER = "batch_code,item_code,institution_code,year,period_start,period_end,base_qty,agreed_ratio"


def test_agreed_qty_is_base_times_ratio_rounded_half_up(world: Any) -> None:
    cases = [  # year, base, ratio, agreed
        (1, "1000", "0.6", Decimal(600)),
        (2, "1001", "60%", Decimal(601)),  # 600.6
        (3, "333", "50%", Decimal(167)),  # 166.5: half up, not to even
        (4, "10", "0.25", Decimal(3)),  # 2.5
        (5, "7", "0.5", Decimal(4)),  # 3.5
        (7, "1000", "１００％", Decimal(1000)),  # full-width
    ]
    lines = [f"HN-N7,A01,H46020000002,{y},2026-03-01,2027-02-28,{base},{ratio}" for y, base, ratio, _ in cases]
    result = do_import("agreements", csv_bytes("\n".join([RATIO_HEADER, *lines])), "ratios.csv")
    assert result.errors == [], result.issues
    stored = _agreements(world)
    assert {y: stored[y].agreed_qty for y in stored} == {y: agreed for y, _, _, agreed in cases}
    assert stored[2].agreed_ratio == Decimal("0.6")
    assert stored[3].base_qty == Decimal(333)


@pytest.mark.parametrize("ratio", ["0", "0%", "150%", "101", "60", "1.5", "-0.5", "abc"])
def test_ratio_outside_zero_to_one_is_rejected(world: Any, ratio: str) -> None:
    line = f"HN-N7,A01,H46020000002,1,2026-03-01,2027-02-28,1000,{ratio}"
    before = snapshot()
    result = do_import("agreements", csv_bytes(f"{RATIO_HEADER}\n{line}"), "ratio.csv")
    assert result.status == "rejected"
    assert [(i.line, i.column, i.value) for i in result.errors] == [(2, "agreed_ratio", ratio)]
    _assert_explained(result.errors[0])
    assert snapshot() == before


def test_ratio_of_one_and_a_half_is_not_silently_read_as_one_and_a_half_percent(world: Any) -> None:
    line = "HN-N7,A01,H46020000002,1,2026-03-01,2027-02-28,1000,1.5"
    result = do_import("agreements", csv_bytes(f"{RATIO_HEADER}\n{line}"), "ratio.csv")
    assert result.issues, "a ratio of 1.5 must not be imported without a word"


def test_missing_agreed_qty_without_base_and_ratio_is_rejected(world: Any) -> None:
    data = csv_bytes(f"{RATIO_HEADER}\nHN-N7,A01,H46020000002,1,2026-03-01,2027-02-28,1000,")
    result = do_import("agreements", data, "no-ratio.csv")
    assert result.status == "rejected"
    assert [(i.line, i.column, i.code) for i in result.errors] == [(2, "agreed_qty", "agreed.missing")]
    _assert_explained(result.errors[0])


def test_period_end_before_start_is_rejected(world: Any) -> None:
    data = csv_bytes(f"{HEADER}\nHN-N7,A01,H46020000002,1,2026-03-01,2026/2/28,5000")
    before = snapshot()
    result = do_import("agreements", data, "period.csv")
    assert result.status == "rejected"
    assert [(i.line, i.column, i.code) for i in result.errors] == [(2, "period_end", "period.order")]
    assert "2026" in result.errors[0].value
    _assert_explained(result.errors[0])
    assert snapshot() == before


# --- referenced records created on the way ------------------------------------------------------

SELECTED = "batch_code,product_code,item_code,winning_price,company\n"
NEW_COMPANY_ROW = "HN-N7,XC08CAA014A001010100001,A01,0.19,海南新药业有限公司"


def test_selected_product_with_unknown_company_creates_it_with_warning_and_audit(world: Any) -> None:
    result = do_import("selected", csv_bytes(SELECTED + NEW_COMPANY_ROW), "selected.csv")
    assert result.status == "applied"
    assert result.created == 1
    assert [(i.line, i.column, i.value, i.code, i.severity) for i in result.issues] == [
        (2, "company", "海南新药业有限公司", "company.created", "warning")
    ]
    _assert_explained(result.issues[0])
    with use_scope(operator()):
        company = Company.objects.get(name="海南新药业有限公司")
        selected = SelectedProduct.objects.get(product=world.product2)
    assert selected.company_id == company.pk
    assert selected.winning_price == Decimal("0.19")
    entry = AuditEntry.objects.get(model="organizations.Company", action="create")
    assert entry.object_pk == str(company.pk)
    assert entry.new == {"name": "海南新药业有限公司", "role": "manufacturer"}
    assert entry.scope == "system"
    assert AuditEntry.objects.filter(model="programme.SelectedProduct", object_pk=str(selected.pk)).count() == 1


def test_company_created_by_an_import_is_audited_with_the_import_run(world: Any) -> None:
    result = do_import("selected", csv_bytes(SELECTED + NEW_COMPANY_ROW), "selected.csv")
    entry = AuditEntry.objects.get(model="organizations.Company", action="create")
    assert entry.context.get("import_run") == result.run_id


def test_unknown_company_is_not_created_when_the_file_is_rejected_or_dry_run(world: Any) -> None:
    bad = "HN-N7,XC08CAA014A001010100001,Z99,0.19,另一家公司"
    before_counts = data_counts()
    rejected = do_import("selected", csv_bytes(SELECTED + NEW_COMPANY_ROW + "\n" + bad), "selected.csv")
    assert rejected.status == "rejected"
    assert [(i.line, i.column, i.code) for i in rejected.errors] == [(3, "item_code", "reference.unknown")]
    dry = do_import("selected", csv_bytes(SELECTED + NEW_COMPANY_ROW), "selected.csv", dry_run=True)
    assert dry.status == "dry_run"
    assert [i.code for i in dry.warnings] == ["company.created"]
    assert data_counts() == before_counts
    with use_scope(operator()):
        assert not Company.objects.filter(name="海南新药业有限公司").exists()


# --- the command line -----------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_cli_errors_option_writes_a_csv_report_and_exits_1(world: Any, tmp_path: Path) -> None:
    path = _write(tmp_path, "agreements.csv", BROKEN)
    report = tmp_path / "errors.csv"
    before = snapshot()
    out = io.StringIO()
    with pytest.raises(SystemExit) as exc:
        call_command("import", "agreements", str(path), "--errors", str(report), stdout=out, stderr=io.StringIO())
    assert exc.value.code == 1
    assert "[status: rejected]" in out.getvalue()
    assert snapshot() == before
    with report.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == REPORT_HEADERS
    assert _same_problems([tuple(r) for r in rows[1:]], EXPECTED_ERRORS), rows
    assert all(has_chinese(r[4]) and r[5] for r in rows[1:])


def test_cli_exit_0_on_success(world: Any, tmp_path: Path) -> None:
    path = _write(tmp_path, "agreements.csv", csv_bytes(f"{HEADER}\n{VALID_ROW}"))
    out = io.StringIO()
    call_command("import", "agreements", str(path), stdout=out)  # returns normally: exit status 0
    assert "新建 1" in out.getvalue()
    assert "[status: applied]" in out.getvalue()
    assert list(_agreements(world)) == [1]


def test_cli_load_valid_and_dry_run_still_exit_1_when_rows_are_rejected(world: Any, tmp_path: Path) -> None:
    path = _write(tmp_path, "agreements.csv", BROKEN)
    with pytest.raises(SystemExit) as dry:
        call_command("import", "agreements", str(path), "--dry-run", "--quiet")
    assert dry.value.code == 1
    assert _agreements(world) == {}
    with pytest.raises(SystemExit) as partial:
        call_command("import", "agreements", str(path), "--load-valid", "--quiet")
    assert partial.value.code == 1
    assert list(_agreements(world)) == [1]


@pytest.mark.parametrize(
    "args",
    [
        ("no-such-dataset", "{file}"),
        ("agreements", "{missing}"),
        ("agreements", "{file}", "--mapping", "no-such-mapping"),
        ("agreements", "{file}", "--as", "nobody"),
    ],
    ids=["unknown-dataset", "missing-file", "unknown-mapping", "unknown-user"],
)
def test_cli_usage_errors_exit_2(world: Any, tmp_path: Path, args: tuple[str, ...]) -> None:
    path = _write(tmp_path, "agreements.csv", csv_bytes(f"{HEADER}\n{VALID_ROW}"))
    argv = [a.format(file=path, missing=tmp_path / "missing.csv") for a in args]
    before = snapshot()
    with pytest.raises(CommandError) as exc:
        call_command("import", *argv, stdout=io.StringIO())
    assert exc.value.returncode == 2
    assert snapshot() == before
