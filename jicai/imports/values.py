# Chinese messages use full-width punctuation.
"""Cell value parsers shared by the spreadsheet and CSV importers.

Cells arrive as ``str`` (CSV) or as native values from Excel readers (``int``,
``float``, ``bool``, ``datetime.date``, ``datetime.datetime``, ``None``).
The data-exchange rule is "nothing silently coerced": a value is either read
exactly, or only binary float noise is removed (``9.359999999999999`` is
9.36), or the cell is rejected with a :class:`ValueParseError` whose Chinese
message a pharmacist can act on.

Error codes are stable: ``text.invalid``, ``text.too_long``,
``decimal.blank``, ``decimal.invalid``, ``decimal.negative``,
``decimal.too_precise``, ``decimal.out_of_range``, ``int.blank``,
``int.invalid``, ``int.too_small``, ``int.out_of_range``, ``bool.blank``,
``bool.invalid``, ``date.blank``, ``date.invalid``, ``date.nonexistent``,
``date.out_of_range``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Final

__all__ = [
    "MAX_YEAR",
    "MIN_YEAR",
    "MONEY_PLACES",
    "QUANTITY_PLACES",
    "UNIT_PRICE_PLACES",
    "ValueParseError",
    "is_blank",
    "parse_bool",
    "parse_date",
    "parse_decimal",
    "parse_int",
    "parse_money",
    "parse_quantity",
    "parse_text",
    "parse_unit_price",
]

MONEY_PLACES: Final = 2
UNIT_PRICE_PLACES: Final = 4
QUANTITY_PLACES: Final = 4
# Procurement data outside these years is a typo (or an Excel serial number).
MIN_YEAR: Final = 1990
MAX_YEAR: Final = 2100

# Extra digits closer than this to the rounded value are binary float noise
# (absolute for small values, relative for large ones, but never more than a
# thousandth of the last kept place, so 12.345 is never "noise").
_NOISE_ABSOLUTE: Final = Decimal("1e-9")
_NOISE_RELATIVE: Final = Decimal("1e-12")
_NOISE_MAX_SHARE: Final = Decimal("1e-3")
# Floats stop representing every integer beyond 2**53, so a long code typed
# as a number has already lost digits.
_FLOAT_EXACT_INT_LIMIT: Final = 2**53

_FULLWIDTH_FIRST: Final = 0xFF01
_FULLWIDTH_LAST: Final = 0xFF5E
_FULLWIDTH_OFFSET: Final = 0xFEE0
_TRANSLATION: Final[dict[int, str]] = {
    code: chr(code - _FULLWIDTH_OFFSET) for code in range(_FULLWIDTH_FIRST, _FULLWIDTH_LAST + 1)
} | {
    ord("\u3000"): " ",
    ord("\xa0"): " ",
    ord("\u2212"): "-",  # minus sign
    ord("\uffe5"): "¥",  # full-width yen
}

# ASCII digits only (full-width ones are translated first): Python's \d and
# Decimal() would also accept digits of other scripts.
_NUMBER_RE: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_GROUPED_RE: Final = re.compile(r"([+-]?)([0-9]{1,3}(?:,[0-9]{3})+)(\.[0-9]*)?")
_CURRENCY_PREFIX_RE: Final = re.compile(r"([+-]?)\s*¥\s*(.*)")
_YUAN: Final = "元"

_TIME: Final = r"(?:[T ]\s*(?P<time>[0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?))?"
_Y: Final = r"(?P<y>[0-9]{4})"
_M: Final = r"(?P<m>[0-9]{1,2})"
_D: Final = r"(?P<d>[0-9]{1,2})"
_DATE_PATTERNS: Final[tuple[re.Pattern[str], ...]] = (
    re.compile(rf"{_Y}(?P<sep>[-/.]){_M}(?P=sep){_D}{_TIME}"),
    re.compile(rf"{_Y}(?P<m>[0-9]{{2}})(?P<d>[0-9]{{2}}){_TIME}"),
    re.compile(rf"{_Y}\s*年\s*{_M}\s*月\s*{_D}\s*日"),
)
_DATE_FORMATS_ZH: Final = "支持 2026-03-01、2026/3/1、2026.3.1、20260301、2026年3月1日"
_DATE_FORMATS_EN: Final = "use 2026-03-01, 2026/3/1, 2026.3.1, 20260301 or 2026年3月1日"

_TRUE_WORDS: Final = frozenset({"是", "1", "y", "yes", "true", "√", "✓", "通过", "有"})
_FALSE_WORDS: Final = frozenset({"否", "0", "n", "no", "false", "×", "✗", "未通过", "无"})


@dataclass(frozen=True, slots=True)
class _Kind:
    """What is being parsed, for error codes and messages."""

    code: str
    zh: str
    en: str


_NUMBER: Final = _Kind("decimal", "数值", "number")
_MONEY: Final = _Kind("decimal", "金额", "amount")
_UNIT_PRICE: Final = _Kind("decimal", "单价", "unit price")
_QUANTITY: Final = _Kind("decimal", "数量", "quantity")
_INT: Final = _Kind("int", "整数", "whole number")


class ValueParseError(ValueError):
    """A cell that cannot be read exactly; carries bilingual messages."""

    code: str
    message_zh: str
    message_en: str

    def __init__(self, code: str, message_zh: str, message_en: str) -> None:
        super().__init__(f"{code}: {message_en}")
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en


def _shown(value: object) -> str:
    # How the offending cell is quoted back to the user.
    return repr(value) if isinstance(value, float) else str(value).strip()


def is_blank(value: object) -> bool:
    """Treat missing cells and whitespace as empty; "nan" or 0 is data."""
    return value is None or (isinstance(value, str) and not value.strip())


def parse_text(value: object, *, max_length: int | None = None) -> str:
    """Return the cell as the user sees it; a blank cell becomes ``""``.

    Excel stores numbers as floats, so ``123.0`` is shown as ``"123"``; an
    integral float too large to be exact (a long code typed as a number) is
    refused rather than returned with wrong digits.
    """
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "TRUE" if value else "FALSE"  # as Excel displays it
    elif isinstance(value, float):
        text = _float_text(value)
    elif isinstance(value, dt.datetime):
        text = value.isoformat(sep=" ")
    else:
        text = str(value)
    text = text.strip()
    if max_length is not None and len(text) > max_length:
        raise ValueParseError(
            "text.too_long",
            f"内容过长：最多 {max_length} 个字符，实际 {len(text)} 个",
            f"text too long: at most {max_length} characters, got {len(text)}",
        )
    return text


def _float_text(value: float) -> str:
    if not math.isfinite(value):
        raise ValueParseError(
            "text.invalid",
            f"单元格内容无效：{value!r}",
            f"invalid cell value: {value!r}",
        )
    if value.is_integer():
        if abs(value) >= _FLOAT_EXACT_INT_LIMIT:
            raise ValueParseError(
                "text.invalid",
                "数字位数过多，Excel 已丢失精度；请把该列设置为“文本”格式后重新填写",
                "number too long: Excel has lost digits; format the column as text and re-enter it",
            )
        return str(int(value))
    return repr(value)


def _to_decimal(value: object, kind: _Kind) -> Decimal:
    """Read a cell as an exact Decimal, before any rounding."""
    if is_blank(value):
        raise ValueParseError(f"{kind.code}.blank", f"{kind.zh}不能为空", f"{kind.en} is required")
    invalid = ValueParseError(
        f"{kind.code}.invalid",
        f"{kind.zh}不是有效的数字：“{_shown(value)}”",
        f"{kind.en} is not a valid number: {_shown(value)!r}",
    )
    if isinstance(value, bool):
        raise invalid
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # repr() is the shortest text that round-trips, never the binary expansion.
        number = Decimal(repr(value))
    elif isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        number = _decimal_from_text(value, invalid)
    else:
        raise invalid
    if not number.is_finite():
        raise invalid
    return number


def _decimal_from_text(value: str, invalid: ValueParseError) -> Decimal:
    text = value.translate(_TRANSLATION).strip()
    if text.endswith(_YUAN):
        text = text[: -len(_YUAN)].rstrip()
    if (currency := _CURRENCY_PREFIX_RE.fullmatch(text)) is not None:
        text = currency[1] + currency[2]
    if (grouped := _GROUPED_RE.fullmatch(text)) is not None:
        text = grouped[1] + grouped[2].replace(",", "") + (grouped[3] or "")
    if _NUMBER_RE.fullmatch(text) is None:
        raise invalid
    return Decimal(text)


def _round(number: Decimal, places: int, kind: _Kind, original: object) -> Decimal:
    """Quantize to ``places``; only float noise may be rounded away."""
    quantum = Decimal(1).scaleb(-places)
    try:
        rounded = number.quantize(quantum, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise ValueParseError(
            f"{kind.code}.out_of_range",
            f"{kind.zh}数值过大：“{_shown(original)}”",
            f"{kind.en} is too large: {_shown(original)!r}",
        ) from None
    tolerance = min(
        max(_NOISE_ABSOLUTE, abs(number) * _NOISE_RELATIVE),
        quantum * _NOISE_MAX_SHARE,
    )
    if abs(number - rounded) > tolerance:
        raise ValueParseError(
            f"{kind.code}.too_precise",
            f"{kind.zh}小数位过多：最多 {places} 位（“{_shown(original)}”）",
            f"{kind.en} has too many decimal places: at most {places} ({_shown(original)!r})",
        )
    return abs(rounded) if rounded.is_zero() else rounded  # no "-0.00"


def _parse_decimal(value: object, *, places: int, allow_negative: bool, kind: _Kind) -> Decimal:
    number = _to_decimal(value, kind)
    if number < 0 and not allow_negative:
        raise ValueParseError(
            f"{kind.code}.negative",
            f"{kind.zh}不能为负数：“{_shown(value)}”",
            f"{kind.en} cannot be negative: {_shown(value)!r}",
        )
    return _round(number, places, kind, value)


def parse_decimal(value: object, *, places: int, allow_negative: bool = False) -> Decimal:
    """Read an exact decimal quantized to exactly ``places`` places.

    Always returning ``places`` places (``Decimal("5.00")``) keeps exports and
    comparisons canonical. Extra decimals are accepted only when they are
    float noise within 1e-9 (relative 1e-12 for large values) of the rounded
    value, which is then rounded half-up; real extra precision is an error.
    Strings may carry thousands commas, a ¥/元 mark or full-width digits.
    """
    return _parse_decimal(value, places=places, allow_negative=allow_negative, kind=_NUMBER)


def parse_money(value: object, *, allow_negative: bool = False) -> Decimal:
    """Yuan amount with exactly two places, e.g. ``Decimal("5.00")``."""
    return _parse_decimal(
        value,
        places=MONEY_PLACES,
        allow_negative=allow_negative,
        kind=_MONEY,
    )


def parse_unit_price(value: object) -> Decimal:
    """Price per minimum unit with exactly four places (prices divide by pack size)."""
    return _parse_decimal(
        value,
        places=UNIT_PRICE_PLACES,
        allow_negative=False,
        kind=_UNIT_PRICE,
    )


def parse_quantity(value: object, *, allow_negative: bool = False) -> Decimal:
    """Quantity with at most four places and no trailing zeros.

    Unlike money, quantities are shown as counted (``Decimal("24")`` for
    "24", ``Decimal("0.5")`` for "0.5"), never in exponent form.
    """
    number = _parse_decimal(
        value,
        places=QUANTITY_PLACES,
        allow_negative=allow_negative,
        kind=_QUANTITY,
    )
    if number == number.to_integral_value():
        return number.quantize(Decimal(1))
    return number.normalize()


def parse_int(value: object, *, minimum: int | None = None) -> int:
    """Whole number; ``12.0`` from Excel is fine, ``12.5`` is not."""
    number = _to_decimal(value, _INT)
    try:
        whole = _round(number, 0, _INT, value)
    except ValueParseError as error:
        if error.code != "int.too_precise":
            raise
        raise ValueParseError(
            "int.invalid",
            f"应为整数：“{_shown(value)}”",
            f"expected a whole number: {_shown(value)!r}",
        ) from None
    result = int(whole)
    if minimum is not None and result < minimum:
        raise ValueParseError(
            "int.too_small",
            f"不能小于 {minimum}：“{_shown(value)}”",
            f"must be at least {minimum}: {_shown(value)!r}",
        )
    return result


def parse_bool(value: object) -> bool:
    """Yes/no cell: 是/否, 1/0, Y/N, yes/no, true/false, 通过/未通过, 有/无, marks."""
    if isinstance(value, bool):
        return value
    if is_blank(value):
        raise ValueParseError("bool.blank", "是/否不能为空", "yes/no value is required")
    if isinstance(value, int | float) and value in (0, 1):
        return value == 1
    if isinstance(value, str):
        word = value.translate(_TRANSLATION).strip().casefold()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise ValueParseError(
        "bool.invalid",
        f"不是有效的是/否值：“{_shown(value)}”（支持 是/否、1/0、Y/N、√/×）",
        f"not a valid yes/no value: {_shown(value)!r} (use 是/否, 1/0, Y/N or yes/no)",
    )


def parse_date(value: object) -> dt.date:
    """Calendar date from an Excel date cell or a common Chinese date string.

    A time of day in a datetime cell or string is dropped, but time zones are
    refused because converting them could move the date.
    """
    if is_blank(value):
        raise ValueParseError("date.blank", "日期不能为空", "date is required")
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            raise _date_invalid(value)
        return _check_year(value.date(), value)
    if isinstance(value, dt.date):
        return _check_year(value, value)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _date_invalid(value)
    try:
        text = parse_text(value).translate(_TRANSLATION)
    except ValueParseError:
        raise _date_invalid(value) from None
    for pattern in _DATE_PATTERNS:
        if (match := pattern.fullmatch(text)) is not None:
            return _date_from_match(match, value)
    raise _date_invalid(value)


def _date_from_match(match: re.Match[str], original: object) -> dt.date:
    time = match.groupdict().get("time")
    if time is not None:
        try:
            dt.time.fromisoformat(time.zfill(len(time) + 1) if time[1] == ":" else time)
        except ValueError:
            raise _date_invalid(original) from None
    try:
        date = dt.date(int(match["y"]), int(match["m"]), int(match["d"]))
    except ValueError:
        raise ValueParseError(
            "date.nonexistent",
            f"日期不存在：“{_shown(original)}”（请检查月份和日期）",
            f"no such date: {_shown(original)!r} (check the month and day)",
        ) from None
    return _check_year(date, original)


def _date_invalid(value: object) -> ValueParseError:
    return ValueParseError(
        "date.invalid",
        f"不是有效日期：“{_shown(value)}”（{_DATE_FORMATS_ZH}）",
        f"not a valid date: {_shown(value)!r} ({_DATE_FORMATS_EN})",
    )


def _check_year(date: dt.date, original: object) -> dt.date:
    if not MIN_YEAR <= date.year <= MAX_YEAR:
        raise ValueParseError(
            "date.out_of_range",
            f"日期年份应在 {MIN_YEAR} 到 {MAX_YEAR} 之间：“{_shown(original)}”",
            f"date year must be between {MIN_YEAR} and {MAX_YEAR}: {_shown(original)!r}",
        )
    return date
