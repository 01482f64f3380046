"""The two real provincial listings in ../shared/data/real, imported end to end.

The Hainan listing (17,885 rows) takes several seconds per import, so it is imported once and
re-imported once for the whole module, inside a transaction that is rolled back afterwards; the
Guizhou tests come first so that they run outside that transaction.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings

from jicai.catalog.models import PriceList, PriceListEntry, Product
from jicai.core.models import AuditEntry
from jicai.core.tenancy import use_scope
from jicai.imports.engine import ImportResult
from tests.conftest import real_file
from tests.importing.helpers import do_import, has_chinese, operator

pytestmark = [pytest.mark.real_data, pytest.mark.django_db]

HAINAN_ROWS = 17_885
GUIZHOU_ROWS = 2_885
PFIZER_ATORVASTATIN = "XC10AAA067A001020101187"
CENT = Decimal("0.01")


def _file_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# --- Guizhou VBP winning prices --------------------------------------------------------------


def _price_key(row: dict[str, str]) -> tuple[str, ...]:
    fields = [row[k].strip() for k in ("产品名称", "剂型", "规格", "包装", "中选企业")]
    return (*fields, str(Decimal(row["中选价格"]).quantize(CENT)))


def _entries(**filters: Any) -> list[PriceListEntry]:
    with use_scope(operator()):
        return list(PriceListEntry.objects.filter(price_list__code="guizhou-vbp", **filters))


def test_guizhou_prices_import_through_cli_and_reimport_unchanged(db: Any, tmp_path: Path) -> None:
    path = real_file("guizhou_vbp_prices.csv")
    rows = _file_rows(path)
    assert len(rows) == GUIZHOU_ROWS
    keys = [_price_key(r) for r in rows]
    distinct = len(set(keys))
    audit_before = AuditEntry.objects.count()

    out = io.StringIO()
    call_command("import", "prices", str(path), "--list", "guizhou-vbp", stdout=out)  # exit 0: no SystemExit
    summary = out.getvalue()
    assert "guizhou-vbp-prices" in summary
    assert f"共 {GUIZHOU_ROWS} 行" in summary
    assert f"新建 {distinct}" in summary
    assert "拒绝 0" in summary
    assert "[status: applied]" in summary

    with use_scope(operator()):
        assert PriceList.objects.filter(code="guizhou-vbp").count() == 1
        assert PriceListEntry.objects.count() == distinct
    # One audit entry per entry, plus one for the price list the import created.
    assert AuditEntry.objects.count() - audit_before == distinct + 1
    assert AuditEntry.objects.filter(model="catalog.PriceList", action="create").count() == 1

    amlodipine = _entries(generic_name="苯磺酸氨氯地平片", strength="5mg", pack="5mg×14片/盒", price=Decimal("2.80"))
    assert len(amlodipine) == 1
    assert (amlodipine[0].pack_size, amlodipine[0].min_unit) == (14, "片")
    atorvastatin = _entries(generic_name="阿托伐他汀钙片", strength="20mg", pack="20mg×7片/盒", price=Decimal("2.38"))
    assert len(atorvastatin) == 1
    assert (atorvastatin[0].pack_size, atorvastatin[0].min_unit) == (7, "片")

    # Sanofi clopidogrel 75 mg x 7: the README quotes 17.81; store whatever this snapshot publishes, exactly.
    sanofi = [
        r
        for r in rows
        if "氯吡格雷" in r["产品名称"] and "赛诺菲" in r["中选企业"] and re.search(r"75\s*mg.*×7片", r["包装"])
    ]
    assert sanofi, "Sanofi clopidogrel 75mg x 7 is in the Guizhou file"
    stored = {e.price for e in _entries(generic_name__contains="氯吡格雷", company__contains="赛诺菲")}
    for row in sanofi:
        assert Decimal(row["中选价格"]) in stored
    if any(r["中选价格"] == "17.81" for r in sanofi):
        assert Decimal("17.81") in stored

    # Re-import: identical duplicate rows are warnings, never errors, and nothing changes.
    audit_mid = AuditEntry.objects.count()
    again = do_import("prices", path.read_bytes(), path.name, options={"list": "guizhou-vbp"})
    assert again.status == "applied"
    assert again.mapping == "guizhou-vbp-prices"
    assert (again.created, again.updated, again.unchanged, again.rejected) == (0, 0, distinct, 0)
    assert again.errors == []
    repeated = [i for i in again.issues if i.code == "row.repeated"]
    assert len(repeated) == GUIZHOU_ROWS - distinct > 0
    for issue in repeated:
        assert issue.severity == "warning"
        first_line = int(re.search(r"第 (\d+) 行", issue.message_zh).group(1))  # type: ignore[union-attr]
        assert first_line < issue.line
        assert keys[first_line - 2] == keys[issue.line - 2]
    assert AuditEntry.objects.count() == audit_mid

    # The canonical export (through `jicai export`) reads back as the same entries, in CSV and XLSX.
    for fmt in ("csv", "xlsx"):
        exported = tmp_path / f"prices.{fmt}"
        call_command("export", "prices", "--output", str(exported), "--quiet")
        back = do_import("prices", exported.read_bytes(), exported.name)
        assert back.mapping == ""
        assert back.errors == [], back.errors[:5]
        assert (back.created, back.updated, back.unchanged) == (0, 0, distinct), fmt
    assert AuditEntry.objects.count() == audit_mid


def test_guizhou_list_code_comes_from_the_mapping_when_not_given(db: Any) -> None:
    path = real_file("guizhou_vbp_prices.csv")
    result = do_import("prices", path.read_bytes(), path.name, dry_run=True)
    assert result.mapping == "guizhou-vbp-prices"
    assert result.status == "dry_run"
    assert result.errors == []
    assert result.created == len({_price_key(r) for r in _file_rows(path)})
    with use_scope(operator()):
        assert not PriceList.objects.exists()
        assert not PriceListEntry.objects.exists()


# --- Hainan provincial listing (one import and one re-import for the whole module) ----------------


@dataclass
class HainanRun:
    rows: list[dict[str, str]]
    first: ImportResult
    second: ImportResult
    audit_before: int
    audit_after_first: int
    audit_after_second: int
    products: dict[str, Product]
    products_after_second: dict[str, tuple[Any, ...]]


def _product_state(product: Product) -> tuple[Any, ...]:
    return (
        product.generic_name,
        product.dosage_form,
        product.strength,
        product.pack,
        product.pack_size,
        product.min_unit,
        product.manufacturer,
        product.approval_number,
        product.ce_passed,
        product.listed_price,
        product.extra,
    )


@pytest.fixture(scope="module")
def hainan(
    django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HainanRun]:
    path = real_file("hainan_listing.csv")
    data = path.read_bytes()
    home = tmp_path_factory.mktemp("jicai_home")
    with django_db_blocker.unblock(), override_settings(JICAI_HOME=home), transaction.atomic():
        audit_before = AuditEntry.objects.count()
        first = do_import("products", data, path.name)
        audit_after_first = AuditEntry.objects.count()
        with use_scope(operator()):
            products = {p.code: p for p in Product.objects.all()}
        second = do_import("products", data, path.name)
        audit_after_second = AuditEntry.objects.count()
        with use_scope(operator()):
            after = {p.code: _product_state(p) for p in Product.objects.all()}
        yield HainanRun(
            rows=_file_rows(path),
            first=first,
            second=second,
            audit_before=audit_before,
            audit_after_first=audit_after_first,
            audit_after_second=audit_after_second,
            products=products,
            products_after_second=after,
        )
        transaction.set_rollback(True)


def test_hainan_first_import_loads_every_row(hainan: HainanRun) -> None:
    result = hainan.first
    assert len(hainan.rows) == HAINAN_ROWS
    assert result.status == "applied"
    assert result.mapping == "hainan-listing"
    assert (result.total_rows, result.created, result.updated, result.unchanged, result.rejected) == (
        HAINAN_ROWS,
        HAINAN_ROWS,
        0,
        0,
        0,
    )
    assert result.errors == []
    # No row silently missing: every code of the file is stored, and nothing else.
    assert len(hainan.products) == HAINAN_ROWS
    assert set(hainan.products) == {r["药品统一编码"] for r in hainan.rows}
    # One audit entry per created product, all tied to this import run.
    assert hainan.audit_after_first - hainan.audit_before == HAINAN_ROWS
    entry = AuditEntry.objects.filter(model="catalog.Product", object_key=PFIZER_ATORVASTATIN).get()
    assert entry.action == "create"
    assert entry.scope == "system"
    assert entry.context["import_run"] == result.run_id
    assert entry.new["listed_price"] == "42.77"


def test_hainan_pfizer_atorvastatin(hainan: HainanRun) -> None:
    product = hainan.products[PFIZER_ATORVASTATIN]
    assert product.generic_name == "阿托伐他汀钙片"
    assert product.dosage_form == "片剂"
    assert product.pack == "20mg*7片/盒"
    assert product.strength == "20mg"
    assert product.pack_size == 7
    assert product.min_unit == "片"
    assert product.listed_price == Decimal("42.77")
    assert product.manufacturer == "辉瑞制药有限公司"
    assert product.approval_number == "国药准字H20051408"
    assert product.ce_passed is False
    # 是否中选 and 是否可议价 have no canonical column: kept verbatim as extra columns.
    assert product.extra["是否中选"] == "1"
    assert product.extra == {"是否中选": "1", "是否可议价": "2"}


def test_hainan_extra_columns_and_flags_match_the_file(hainan: HainanRun) -> None:
    flagged = [code for code, p in hainan.products.items() if p.extra.get("是否中选") == "1"]
    assert len(flagged) == sum(1 for r in hainan.rows if r["是否中选"] == "1") == 3_166
    for row in hainan.rows:
        product = hainan.products[row["药品统一编码"]]
        assert product.ce_passed is (row["是否过一次性评价"] == "是"), row
        # Many rows end early (no 是否可议价 cell at all): an absent cell is not stored.
        assert product.extra.get("是否可议价", "") == (row["是否可议价"] or "").strip(), row
    amoxicillin = hainan.products["XJ01CAA040E001020200600"]
    assert amoxicillin.ce_passed is True
    assert (amoxicillin.pack_size, amoxicillin.min_unit) == (24, "粒")


def test_hainan_prices_are_exact_and_float_noise_is_removed(hainan: HainanRun) -> None:
    noisy = [r for r in hainan.rows if r["挂网价格"] == "9.359999999999999"]
    assert noisy, "the file should contain the 9.359999999999999 float-noise price"
    for row in noisy:
        assert hainan.products[row["药品统一编码"]].listed_price == Decimal("9.36")
    assert hainan.products["XJ01CAA040E001020304129"].listed_price == Decimal("9.36")
    # Every price is the file's value to the cent, and differs from it by float noise at most.
    for row in hainan.rows:
        stored = hainan.products[row["药品统一编码"]].listed_price
        source = Decimal(row["挂网价格"])
        assert stored == source.quantize(CENT), row
        assert abs(stored - source) < Decimal("1e-9"), row


def test_hainan_unreadable_packs_are_warnings_and_leave_pack_size_empty(hainan: HainanRun) -> None:
    result = hainan.first
    by_line = {i + 2: row for i, row in enumerate(hainan.rows)}  # header is line 1
    assert result.warnings, "some packs in the file cannot be parsed"
    assert all(i.severity == "warning" for i in result.issues)
    warned: dict[str, Any] = {}
    for issue in result.warnings:
        assert issue.column == "pack"
        assert issue.code.startswith("pack.")
        assert has_chinese(issue.message_zh)
        assert issue.message_en
        row = by_line[issue.line]
        assert issue.value == row["包装"]
        warned[row["药品统一编码"]] = issue
    assert len(warned) == len(result.warnings)  # one warning per product, on the right line
    for code in warned:
        assert hainan.products[code].pack_size is None
        assert hainan.products[code].min_unit == ""
    # A bare container (包装 = "盒" or "瓶") has no count to read.
    for code, pack in (("XH01AAC060B014010100651", "盒"), ("XN03AXZ075X001010378930", "瓶")):
        assert warned[code].value == pack
        assert hainan.products[code].pack == pack
    assert warned["XC03DAL269A001010105777"].code == "pack.ambiguous"  # 20mg*100片/瓶*100片/瓶
    # An empty 包装 leaves the pack size unknown too, and says so.
    for code in ("XR05CBA198B002020104098", "XA10BJA085B002010106474"):
        assert hainan.products[code].pack == ""
        assert (warned[code].code, warned[code].value) == ("pack.empty", "")
    # Every product stored without a pack size was reported, and only those.
    without_size = {c for c, p in hainan.products.items() if p.pack_size is None}
    assert len(result.warnings) == len(without_size)
    assert without_size == set(warned)
    assert Counter(i.code for i in result.warnings)["pack.inverted"] == 36
    # The warnings are in the downloadable report.
    assert Path(result.report_path).is_file()


def test_hainan_reimport_changes_nothing(hainan: HainanRun) -> None:
    result = hainan.second
    assert result.status == "applied"
    assert (result.total_rows, result.created, result.updated, result.unchanged, result.rejected) == (
        HAINAN_ROWS,
        0,
        0,
        HAINAN_ROWS,
        0,
    )
    assert hainan.audit_after_second == hainan.audit_after_first
    assert hainan.products_after_second == {c: _product_state(p) for c, p in hainan.products.items()}
    assert len(result.warnings) == len(hainan.first.warnings)
