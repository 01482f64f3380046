# cells use full-width digits and Chinese punctuation.
"""Tests for importer cell parsers; no Django needed."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jicai.imports.values import (
    MAX_YEAR,
    MIN_YEAR,
    MONEY_PLACES,
    ValueParseError,
    is_blank,
    parse_bool,
    parse_date,
    parse_decimal,
    parse_int,
    parse_money,
    parse_quantity,
    parse_text,
    parse_unit_price,
)

HAINAN = Path("/work/shared/data/real/hainan_listing.csv")
MAX_MONEY = Decimal("999999999999.99")


def _code(func: object, *args: object, **kwargs: object) -> str:
    assert callable(func)
    with pytest.raises(ValueParseError) as caught:
        func(*args, **kwargs)
    error = caught.value
    assert error.message_zh
    assert error.message_en
    assert str(error).startswith(error.code)
    return error.code


# --- is_blank / parse_text ------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", " ", "\t\n", "\u3000"])
def test_blank_values(value: object) -> None:
    assert is_blank(value)


@pytest.mark.parametrize("value", ["nan", "0", 0, 0.0, False, "-", dt.date(2026, 3, 1)])
def test_values_that_are_data_not_blank(value: object) -> None:
    assert not is_blank(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        ("  阿托伐他汀钙片 ", "阿托伐他汀钙片"),
        (123, "123"),
        (123.0, "123"),
        (-7.0, "-7"),
        (12.5, "12.5"),
        (True, "TRUE"),
        (False, "FALSE"),
        (dt.date(2026, 3, 1), "2026-03-01"),
        (dt.datetime(2026, 3, 1, 8, 30), "2026-03-01 08:30:00"),
        (Decimal("9.36"), "9.36"),
    ],
)
def test_parse_text(value: object, expected: str) -> None:
    assert parse_text(value) == expected


def test_parse_text_max_length_counts_characters() -> None:
    assert parse_text("辉瑞制药", max_length=4) == "辉瑞制药"
    assert _code(parse_text, "辉瑞制药有限公司", max_length=4) == "text.too_long"


def test_parse_text_refuses_numbers_excel_already_corrupted() -> None:
    # A 20-digit code typed into a number cell arrives with lost digits.
    assert _code(parse_text, 1.2345678901234567e19) == "text.invalid"
    assert _code(parse_text, float("nan")) == "text.invalid"
    assert _code(parse_text, float("inf")) == "text.invalid"


# --- decimals and money ---------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("9.36", Decimal("9.36")),
        ("5", Decimal("5.00")),
        (5, Decimal("5.00")),
        ("0", Decimal("0.00")),
        ("-0", Decimal("0.00")),
        (" 42.77 ", Decimal("42.77")),
        ("1,234.50", Decimal("1234.50")),
        ("1,234,567", Decimal("1234567.00")),
        ("１，２３４.５", Decimal("1234.50")),
        ("¥12.3", Decimal("12.30")),
        ("￥12.3", Decimal("12.30")),
        ("12.3元", Decimal("12.30")),
        ("¥ 1,234.5 元", Decimal("1234.50")),
        ("１２．３", Decimal("12.30")),
        (".5", Decimal("0.50")),
        ("1.2E+3", Decimal("1200.00")),
        (Decimal("2.8"), Decimal("2.80")),
    ],
)
def test_parse_money_formats(value: object, expected: Decimal) -> None:
    result = parse_money(value)
    assert result == expected
    assert str(result) == str(expected)  # exactly two places


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (9.359999999999999, Decimal("9.36")),
        ("9.359999999999999", Decimal("9.36")),
        (42.77, Decimal("42.77")),
        (0.1 + 0.2, Decimal("0.30")),
        ("8631.389999999999", Decimal("8631.39")),
        (17.81, Decimal("17.81")),
        (2.38, Decimal("2.38")),
    ],
)
def test_parse_money_removes_float_noise(value: object, expected: Decimal) -> None:
    assert parse_money(value) == expected


@pytest.mark.parametrize("value", ["12.345", 12.345, 1.005, "0.001", "9.3651", "1000000.005"])
def test_parse_money_rejects_genuine_extra_precision(value: object) -> None:
    assert _code(parse_money, value) == "decimal.too_precise"


def test_too_precise_message_states_the_limit() -> None:
    with pytest.raises(ValueParseError) as caught:
        parse_money("12.345")
    assert "最多 2 位" in caught.value.message_zh
    assert "12.345" in caught.value.message_zh
    assert "at most 2" in caught.value.message_en
    with pytest.raises(ValueParseError) as caught:
        parse_unit_price("0.123456")
    assert "最多 4 位" in caught.value.message_zh


@pytest.mark.parametrize(
    "value",
    [
        "abc",
        "12.3.4",
        "1,2",
        "12,34.5",
        "1 234",
        "5%",
        "--5",
        "nan",
        "NaN",
        "inf",
        "Infinity",
        "٣",  # Arabic-Indic digit: only ASCII and full-width digits are accepted
        float("nan"),
        float("inf"),
        Decimal("NaN"),
        True,
        dt.date(2026, 3, 1),
        [],
    ],
)
def test_parse_money_rejects_non_numbers(value: object) -> None:
    assert _code(parse_money, value) == "decimal.invalid"


@pytest.mark.parametrize("value", [None, "", "  "])
def test_parse_money_rejects_blank(value: object) -> None:
    assert _code(parse_money, value) == "decimal.blank"


def test_negative_values_need_permission() -> None:
    assert _code(parse_money, "-1.50") == "decimal.negative"
    assert _code(parse_money, -1.5) == "decimal.negative"
    assert _code(parse_money, "−1.5") == "decimal.negative"  # U+2212 minus
    assert parse_money("-1.5", allow_negative=True) == Decimal("-1.50")
    assert parse_money("-¥1.5", allow_negative=True) == Decimal("-1.50")
    with pytest.raises(ValueParseError) as caught:
        parse_quantity("-3")
    assert caught.value.message_zh.startswith("数量不能为负数")


def test_absurdly_large_values_are_rejected_not_crashing() -> None:
    assert _code(parse_money, "1e40") == "decimal.out_of_range"


def test_parse_unit_price_keeps_four_places() -> None:
    assert str(parse_unit_price("0.4286")) == "0.4286"
    assert str(parse_unit_price(2.8)) == "2.8000"
    assert _code(parse_unit_price, "-0.1") == "decimal.negative"


def test_unit_price_of_a_real_division_is_too_precise() -> None:
    # 17.81 / 7 = 2.5442857...: a computed price must be rounded by the caller.
    assert _code(parse_unit_price, 17.81 / 7) == "decimal.too_precise"


def test_parse_decimal_honours_places() -> None:
    assert str(parse_decimal("3", places=0)) == "3"
    assert str(parse_decimal("3.14159", places=5)) == "3.14159"
    assert str(parse_decimal("3.1", places=3)) == "3.100"
    assert _code(parse_decimal, "3.14159", places=4) == "decimal.too_precise"


# --- quantities and integers ----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("24", "24"),
        (24, "24"),
        (24.0, "24"),
        ("24.0000", "24"),
        ("2400", "2400"),
        ("0.5", "0.5"),
        (0.5, "0.5"),
        ("1,200.25", "1200.25"),
        ("0.1234", "0.1234"),
        (0.1 + 0.2, "0.3"),
        ("0", "0"),
    ],
)
def test_parse_quantity(value: object, expected: str) -> None:
    assert str(parse_quantity(value)) == expected


def test_parse_quantity_limits() -> None:
    assert _code(parse_quantity, "0.12345") == "decimal.too_precise"
    assert parse_quantity("-2.5", allow_negative=True) == Decimal("-2.5")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("12", 12), (12, 12), (12.0, 12), ("1,200", 1200), ("-3", -3), ("１２", 12)],
)
def test_parse_int(value: object, expected: int) -> None:
    assert parse_int(value) == expected


@pytest.mark.parametrize("value", ["12.5", 12.5, "abc", True, "1e400"])
def test_parse_int_rejects(value: object) -> None:
    assert _code(parse_int, value) in {"int.invalid", "int.out_of_range"}


def test_parse_int_minimum() -> None:
    assert parse_int("1", minimum=1) == 1
    assert _code(parse_int, "0", minimum=1) == "int.too_small"
    assert _code(parse_int, None) == "int.blank"


# --- booleans -------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "是",
        "1",
        1,
        1.0,
        "Y",
        "y",
        "yes",
        "YES",
        "true",
        "TRUE",
        "√",
        "通过",
        "有",
        True,
    ],
)
def test_parse_bool_true(value: object) -> None:
    assert parse_bool(value) is True


@pytest.mark.parametrize(
    "value",
    ["否", "0", 0, 0.0, "N", "n", "no", "false", "FALSE", "×", "未通过", "无", False],
)
def test_parse_bool_false(value: object) -> None:
    assert parse_bool(value) is False


@pytest.mark.parametrize("value", ["2", 2, "maybe", "是的", "-", 0.5])
def test_parse_bool_rejects(value: object) -> None:
    assert _code(parse_bool, value) == "bool.invalid"


def test_parse_bool_blank() -> None:
    assert _code(parse_bool, None) == "bool.blank"


# --- dates ----------------------------------------------------------------------

MARCH_1 = dt.date(2026, 3, 1)


@pytest.mark.parametrize(
    "value",
    [
        "2026-03-01",
        "2026/3/1",
        "2026/03/01",
        "2026.3.1",
        "20260301",
        "2026年3月1日",
        "2026年03月01日",
        " 2026-03-01 ",
        "2026-03-01 00:00:00",
        "2026-03-01T08:30:00",
        "2026-03-01 8:30",
        "2026/3/1 0:00:00",
        "２０２６－０３－０１",
        MARCH_1,
        dt.datetime(2026, 3, 1, 23, 59),
        20260301,
        20260301.0,
    ],
)
def test_parse_date_formats(value: object) -> None:
    assert parse_date(value) == MARCH_1


@pytest.mark.parametrize("value", ["2026-02-30", "2026/2/29", "20261301", "2026年4月31日", "2026-00-10"])
def test_parse_date_rejects_impossible_dates(value: object) -> None:
    assert _code(parse_date, value) == "date.nonexistent"


@pytest.mark.parametrize(
    "value",
    [
        "1989-12-31",
        "2101-01-01",
        "18991230",
        dt.date(1900, 1, 1),
        dt.datetime(2200, 1, 1),
    ],
)
def test_parse_date_rejects_years_out_of_range(value: object) -> None:
    assert _code(parse_date, value) == "date.out_of_range"


@pytest.mark.parametrize(
    "value",
    [
        "abc",
        "2026-3/1",
        "26-03-01",
        "03/01/2026",
        "2026-03-01 25:00",
        "2026-03-01T08:30:00+08:00",
        46082,  # Excel serial number: ambiguous, never guessed
        True,
        dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
        dt.time(8, 30),
    ],
)
def test_parse_date_rejects_other_text(value: object) -> None:
    assert _code(parse_date, value) == "date.invalid"


def test_parse_date_message_lists_the_formats() -> None:
    with pytest.raises(ValueParseError) as caught:
        parse_date("下周一")
    assert "不是有效日期" in caught.value.message_zh
    assert "2026-03-01" in caught.value.message_zh
    assert "20260301" in caught.value.message_zh
    assert _code(parse_date, "") == "date.blank"


# --- properties -----------------------------------------------------------------

MONEY = st.decimals(min_value=0, max_value=MAX_MONEY, places=2)
DATES = st.dates(min_value=dt.date(MIN_YEAR, 1, 1), max_value=dt.date(MAX_YEAR, 12, 31))


@given(MONEY)
def test_property_money_round_trips_via_str(amount: Decimal) -> None:
    assert parse_money(str(amount)) == amount
    assert str(parse_money(str(amount))) == str(amount.quantize(Decimal("0.01")))


@given(MONEY)
def test_property_money_round_trips_via_float(amount: Decimal) -> None:
    assert parse_money(float(amount)) == amount


@given(st.decimals(min_value=-MAX_MONEY, max_value=MAX_MONEY, places=2))
def test_property_signed_money_round_trips(amount: Decimal) -> None:
    assert parse_money(str(amount), allow_negative=True) == amount
    assert parse_money(float(amount), allow_negative=True) == amount


@given(MONEY)
def test_property_money_with_thousands_separators(amount: Decimal) -> None:
    assert parse_money(f"{amount:,}") == amount
    assert parse_money(f"¥{amount}") == amount


@given(st.decimals(min_value=0, max_value=10**9, places=4))
def test_property_quantity_round_trips_without_trailing_zeros(qty: Decimal) -> None:
    parsed = parse_quantity(str(qty))
    assert parsed == qty
    text = str(parsed)
    assert "E" not in text
    if "." in text:
        assert not text.endswith("0")


@given(DATES)
def test_property_date_round_trips(date: dt.date) -> None:
    assert parse_date(date.isoformat()) == date
    assert parse_date(date.strftime("%Y%m%d")) == date
    assert parse_date(f"{date.year}年{date.month}月{date.day}日") == date
    assert parse_date(f"{date.year}/{date.month}/{date.day}") == date
    assert parse_date(dt.datetime.combine(date, dt.time(12))) == date


@given(st.one_of(st.text(max_size=30), st.integers(), st.floats(), st.booleans()))
def test_property_parsers_raise_only_value_parse_error(value: object) -> None:
    for parser in (parse_money, parse_quantity, parse_int, parse_bool, parse_date):
        try:
            parser(value)
        except ValueParseError as error:
            assert "." in error.code


# --- real data ------------------------------------------------------------------


def test_hainan_listed_prices_all_parse_as_money() -> None:
    if not HAINAN.exists():
        pytest.skip(f"shared data absent: {HAINAN} (real listings live outside the repo)")
    with HAINAN.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    failures = []
    by_code: dict[str, Decimal] = {}
    for row in rows:
        try:
            by_code[row["药品统一编码"]] = parse_money(row["挂网价格"])
        except ValueParseError as error:
            failures.append((row["药品统一编码"], row["挂网价格"], error.code))
    assert not failures, f"{len(failures)} prices did not parse: {failures[:50]}"
    assert by_code["XC10AAA067A001020101187"] == Decimal("42.77")
    noisy = [row["挂网价格"] for row in rows if len(row["挂网价格"].partition(".")[2]) > MONEY_PLACES]
    assert noisy, "expected float noise such as 9.359999999999999 in the listing"
    for flag in ("是否中选", "是否过一次性评价"):
        assert {type(parse_bool(row[flag])) for row in rows} == {bool}
