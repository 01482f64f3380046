"""Export → import is an identity for every dataset, a changed cell is one audited update, and
importing the same rows in any order of overlapping files gives the state of one clean import."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jicai.catalog.models import PriceList, PriceListEntry, Product
from jicai.core import audit
from jicai.core.models import AuditEntry
from jicai.core.tenancy import system_scope, use_scope
from jicai.imports.datasets import DATASETS, parse_credit_code
from jicai.imports.values import ValueParseError
from jicai.organizations.models import Company, Department, Institution
from jicai.programme.models import Agreement, Batch, Item, NonSelectedProduct, SelectedProduct
from tests.importing.helpers import csv_from_rows, do_import, export_bytes, operator, read_csv_bytes


def _credit_code(prefix: str) -> str:
    """The valid unified social credit code starting with these 17 characters."""
    for check in "0123456789ABCDEFGHJKLMNPQRTUWXY":
        try:
            return parse_credit_code(prefix + check)
        except ValueParseError:
            continue
    raise AssertionError(prefix)


@pytest.fixture
def rich_world(world: Any) -> Any:
    """The shared world plus rows that use every column: extras, flags, optional values, price lists."""
    with system_scope("fixture"):
        inst = Institution.objects.create(
            code="H46010500003",
            name="海口市中医医院",
            region_code="460105",
            kind="private",
            level=2,
            participating=False,
            extra={"备注": "民营, 二级"},
        )
        Department.objects.create(institution=inst, code="ZY01", name="中医内科", extra={"负责人": "王医生"})
        Company.objects.create(
            name="国药控股海南有限公司", role="distributor", credit_code=_credit_code("91460000708861234")
        )
        Company.objects.create(
            name="赛诺菲(杭州)制药有限公司", role="mah", credit_code=_credit_code("91330100609120016")
        )
        product3 = Product.objects.create(
            code="XJ01CAA040E001020304129",
            generic_name="阿莫西林胶囊",
            dosage_form="硬胶囊",
            strength="0.25g",
            pack="0.25g*24粒/盒",
            pack_size=24,
            min_unit="粒",
            manufacturer="山东鲁抗医药股份有限公司",
            approval_number="国药准字H19993034",
            ce_passed=True,
            is_originator=False,
            is_reference=True,
            is_essential=True,
            antimicrobial_class="restricted",
            listed_price=Decimal("9.36"),
            extra={"是否中选": "0", "是否可议价": "2"},
        )
        Product.objects.create(code="HOSP-0001", generic_name="院内制剂", pack="盒")  # unreadable pack, no price
        price_list = PriceList.objects.create(code="guizhou-vbp", name="贵州省集采中选价格")
        PriceListEntry.objects.create(
            price_list=price_list,
            generic_name="苯磺酸氨氯地平片",
            dosage_form="片剂",
            strength="5mg",
            pack="5mg×14片/盒",
            pack_size=14,
            min_unit="片",
            price=Decimal("2.80"),
        )
        PriceListEntry.objects.create(
            price_list=price_list,
            generic_name="硫酸氢氯吡格雷片",
            dosage_form="片剂",
            strength="75mg",
            pack="75mg×7片/盒",
            pack_size=7,
            min_unit="片",
            company="赛诺菲(杭州)制药有限公司",
            price=Decimal("17.63"),
        )
        batch = Batch.objects.create(
            code="HN-ALL-3",
            name="省际联盟第三批",
            level="alliance",
            policy_profile="hainan.alliance-3",
            region_code="460000",
            start_date=dt.date(2024, 3, 1),
        )
        item = Item.objects.create(
            batch=batch,
            item_code="B07",
            generic_name="阿莫西林",
            dosage_form_group="口服常释",
            unit_label="粒",
            winners=2,
        )
        SelectedProduct.objects.create(
            batch=batch, product=product3, item=item, winning_price=Decimal("5.50"), company=world.company
        )
        NonSelectedProduct.objects.create(
            batch=world.hn_batch,
            product=world.product2,
            item=world.hn_item,
            kind="substitute",
            conversion=Decimal("0.5"),
        )
        Agreement.objects.create(
            batch=batch,
            item=item,
            institution=inst,
            year=2,
            period_start=dt.date(2025, 3, 1),
            period_end=dt.date(2026, 2, 28),
            agreed_qty=Decimal(167),
            base_qty=Decimal(333),
            agreed_ratio=Decimal("0.5"),
            product=product3,
        )
    return world


def _count(dataset: str) -> int:
    with use_scope(operator()):
        return DATASETS[dataset].model.objects.count()  # type: ignore[attr-defined,no-any-return]


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_export_then_import_is_an_identity(rich_world: Any, dataset: str) -> None:
    count = _count(dataset)
    assert count >= 1, "every dataset has data to round-trip"
    first_csv = export_bytes(dataset, "csv")
    assert len(read_csv_bytes(first_csv)) == count + 1
    audit_before = AuditEntry.objects.count()
    for fmt in ("csv", "xlsx"):
        data = export_bytes(dataset, fmt)
        result = do_import(dataset, data, f"{dataset}.{fmt}")
        assert result.errors == [], (fmt, result.issues)
        assert result.status == "applied"
        assert (result.total_rows, result.created, result.updated, result.unchanged) == (count, 0, 0, count), fmt
    assert AuditEntry.objects.count() == audit_before
    assert _count(dataset) == count
    assert export_bytes(dataset, "csv") == first_csv


def test_exports_use_canonical_columns_and_values(rich_world: Any) -> None:
    agreements = read_csv_bytes(export_bytes("agreements"))
    assert agreements[0] == [c.name for c in DATASETS["agreements"].columns]
    expected = ["HN-ALL-3", "B07", "H46010500003", "2", "2025-03-01", "2026-02-28", "167", "333", "0.5"]
    assert agreements[1][:9] == expected
    products = {r[0]: r for r in read_csv_bytes(export_bytes("products"))[1:]}
    assert products["XC10AAA067A001020101187"][14] == "42.77"
    assert products["XJ01CAA040E001020304129"][9:14] == ["是", "否", "是", "是", "restricted"]


# --- one changed cell --------------------------------------------------------------------------

CHANGES: dict[str, tuple[str, str, str, str, str, Any, Any]] = {
    # dataset: (key column, key value, column to edit, new cell, changed field, old, new)
    "institutions": ("code", "H46010800001", "name", "海南省人民医院（秀英院区）", "name", "海南省人民医院", None),
    "departments": ("code", "SJ01", "name", "神经内一科", "name", "神经内科", None),
    "companies": ("name", "辉瑞制药有限公司", "role", "mah", "role", "manufacturer", "mah"),
    "products": ("code", "XC10AAA067A001020101187", "listed_price", "43.10", "listed_price", "42.77", "43.10"),
    "batches": ("code", "HN-ALL-3", "start_date", "2024/3/15", "start_date", "2024-03-01", "2024-03-15"),
    "items": ("item_code", "B07", "winners", "3", "winners", 2, 3),
    "selected": ("product_code", "XC10AAA067A001020101187", "winning_price", "2.40", "winning_price", "2.38", "2.40"),
    "non_selected": (
        "product_code",
        "XC08CAA014A001010100001",
        "kind",
        "同通用名",
        "kind",
        "substitute",
        "same_generic",
    ),
    "agreements": ("institution_code", "H46010800001", "agreed_qty", "12000", "agreed_qty", "10000", "12000"),
}


def _edited(data: bytes, key_column: str, key_value: str, column: str, value: str) -> bytes:
    rows = read_csv_bytes(data)
    header = rows[0]
    key, pos = header.index(key_column), header.index(column)
    matches = [r for r in rows[1:] if r[key] == key_value]
    assert len(matches) == 1, (key_value, rows)
    matches[0][pos] = value
    return b"\xef\xbb\xbf" + csv_from_rows(rows)


def _same_value(stored: Any, expected: Any) -> bool:
    try:
        return Decimal(str(stored)) == Decimal(str(expected))
    except ArithmeticError:
        return bool(stored == expected)


@pytest.mark.parametrize("dataset", list(CHANGES))
def test_one_changed_cell_is_one_audited_update(rich_world: Any, dataset: str) -> None:
    key_column, key_value, column, cell, field, old, new = CHANGES[dataset]
    new = cell if new is None else new
    count = _count(dataset)
    data = _edited(export_bytes(dataset), key_column, key_value, column, cell)
    last_seq = AuditEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    result = do_import(dataset, data, f"{dataset}-edited.csv")
    assert result.errors == [], result.issues
    assert (result.created, result.updated, result.unchanged) == (0, 1, count - 1)
    entries = list(AuditEntry.objects.filter(seq__gt=last_seq))
    assert len(entries) == 1
    entry = entries[0]
    assert (entry.action, entry.model) == ("update", DATASETS[dataset].model._meta.label)
    assert key_value in entry.object_key
    assert set(entry.old) == set(entry.new) == {field}
    assert _same_value(entry.old[field], old), entry.old
    assert _same_value(entry.new[field], new), entry.new
    assert entry.context["import_run"] == result.run_id
    # Importing the edited file again changes nothing more.
    again = do_import(dataset, data, f"{dataset}-edited.csv")
    assert (again.created, again.updated, again.unchanged) == (0, 0, count)


def test_a_changed_price_in_a_price_list_is_a_new_entry(rich_world: Any) -> None:
    """The price is part of a price list entry's key: a new price is a new entry, the old one stays."""
    data = _edited(export_bytes("prices"), "price", "2.80", "price", "2.75")
    result = do_import("prices", data, "prices.csv")
    assert (result.created, result.updated, result.unchanged) == (1, 0, 1)
    with use_scope(operator()):
        prices = sorted(PriceListEntry.objects.filter(generic_name="苯磺酸氨氯地平片").values_list("price", flat=True))
    assert prices == [Decimal("2.75"), Decimal("2.80")]


# --- property: repeated and overlapping imports converge ------------------------------------------

PRODUCT_HEADER = ["code", "generic_name", "pack", "listed_price"]

product_rows = st.lists(
    st.fixed_dictionaries(
        {
            "code": st.text(alphabet="AB12", min_size=1, max_size=3).map(lambda s: f"P{s}"),
            "name": st.text(alphabet="阿托伐他汀钙片氨氯地平 abcXYZ,\"'", min_size=1, max_size=12).filter(str.strip),
            "price": st.none()
            | st.decimals(min_value=0, max_value=99999, places=2, allow_nan=False, allow_infinity=False),
            "pack": st.none()
            | st.builds(
                lambda n, k, unit: f"{n}mg*{k}{unit}/盒",
                st.integers(1, 500),
                st.integers(1, 100),
                st.sampled_from("片粒支袋"),
            ),
        }
    ),
    max_size=10,
    unique_by=lambda r: r["code"],
)


def _product_file(rows: list[dict[str, Any]]) -> bytes:
    lines = [
        [r["code"], r["name"], r["pack"] or "", "" if r["price"] is None else format(r["price"], "f")] for r in rows
    ]
    return csv_from_rows([PRODUCT_HEADER, *lines])


def _clean_products() -> None:
    with use_scope(operator()):
        Product.objects.all().delete()  # audit rows stay: the chain is append-only


def _load(*files: bytes) -> bytes:
    _clean_products()
    for data in files:
        result = do_import("products", data, "products.csv")
        assert result.errors == [], result.issues
    return export_bytes("products")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=product_rows)
def test_repeated_and_overlapping_imports_equal_one_clean_import(db: Any, rows: list[dict[str, Any]]) -> None:
    whole = _product_file(rows)
    third = max(1, len(rows) // 3)
    first_part, second_part = _product_file(rows[: 2 * third]), _product_file(rows[third:])

    clean = _load(whole)
    assert len(read_csv_bytes(clean)) == len(rows) + 1
    assert _load(whole, whole) == clean
    assert _load(first_part, second_part, whole) == clean
    assert _load(second_part, first_part) == clean

    _clean_products()
    do_import("products", whole, "products.csv")
    again = do_import("products", whole, "products.csv")
    assert (again.created, again.updated, again.unchanged) == (0, 0, len(rows))
    assert list(audit.verify()) == []


def test_csv_export_quotes_awkward_text(db: Any) -> None:
    rows = [{"code": "P1", "name": 'a,"b"\nc', "price": Decimal("1.5"), "pack": None}]
    with system_scope("test"):
        result = do_import("products", _product_file(rows), "products.csv")
    assert result.created == 1
    exported = export_bytes("products")
    assert next(csv.reader(io.StringIO(exported.decode("utf-8-sig"))))[0] == "code"
    again = do_import("products", exported, "products.csv")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
