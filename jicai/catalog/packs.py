# Chinese messages and pack samples use full-width punctuation.
"""Parse Chinese drug pack strings such as ``0.25g*24粒/盒``.

Procurement prices are quoted per sale pack while awards and consumption are
counted in minimum units (片, 粒, 支, ...), so the pack size must be exact.
The parser is deliberately strict: anything it cannot read unambiguously is
rejected with a :class:`PackParseError` so that a pharmacist can fix the
source row, instead of a guessed pack size silently skewing unit prices.

Grammar, after normalising full-width characters::

    pack      = [strength sep] group {link group} ["/" container]
    group     = count unit ["/" inner-container]
    sep, link = "*" | multiplication sign | "x" | "X" | "," | ";" | "、"

A count glued to other text (``3g/100丸``, ``每袋10支``) belongs to the
strength, not to the pack. Nested groups multiply (``10片*2板/盒`` is 20 片
per 盒) only when the outer unit is a packaging level such as 板, or repeats
the container the inner group declared (``120丸/瓶*2瓶/盒``).

Error codes are stable: ``pack.empty``, ``pack.no_count`` (no count-and-unit),
``pack.no_unit`` (``5mg*14/瓶``), ``pack.bad_count`` (zero or decimal),
``pack.no_min_unit`` (``2板/盒``), ``pack.ambiguous`` (levels do not nest or
contradict) and ``pack.inverted`` (``30盒/片``, unit and container swapped).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Final

__all__ = [
    "CONTAINER_UNITS",
    "DOSE_UNITS",
    "INTERMEDIATE_UNITS",
    "MIN_UNITS",
    "PackParseError",
    "ParsedPack",
    "parse_pack",
]

# Units a pack can be counted in: the smallest item dispensed or consumed.
MIN_UNITS: Final[frozenset[str]] = frozenset(
    {
        *("片", "粒", "丸", "支", "瓶", "袋", "包", "贴", "枚", "张", "套", "管"),
        *("喷", "揿", "吸", "泡", "罐", "听", "个", "颗", "块", "条", "桶", "杯", "份"),
    }
)
# Packaging levels that may wrap a group of minimum units without the inner
# group naming them, as in ``10片*2板/盒``.
INTERMEDIATE_UNITS: Final[frozenset[str]] = frozenset({"板", "盒", "小盒", "中盒", "排", "提"})
# Units accepted after the final "/" (the sale pack).
CONTAINER_UNITS: Final[frozenset[str]] = MIN_UNITS | INTERMEDIATE_UNITS | {"大盒", "箱", "小袋", "中袋", "大袋"}
# Single doses cannot hold anything else, so ``30盒/片`` is a swapped pack.
DOSE_UNITS: Final[frozenset[str]] = frozenset({"片", "粒", "丸", "枚", "贴", "张", "喷", "揿", "吸", "泡", "颗", "块"})

# "盒" counts as a minimum unit only for packs like ``1盒/盒``.
_BOX: Final = "盒"
# Excel's XML escape for a carriage return, left behind by some exporters.
_EXCEL_CR: Final = "_x000D_"

_FULLWIDTH_FIRST: Final = 0xFF01
_FULLWIDTH_LAST: Final = 0xFF5E
_FULLWIDTH_OFFSET: Final = 0xFEE0
_TRANSLATION: Final[dict[int, str]] = {
    code: chr(code - _FULLWIDTH_OFFSET) for code in range(_FULLWIDTH_FIRST, _FULLWIDTH_LAST + 1)
} | {
    ord("∶"): ":",  # ratio sign, common in injection strengths
    ord("︰"): ":",
    ord("\u3000"): " ",
    ord("\xa0"): " ",
    ord("\t"): " ",
    ord("\n"): " ",
    ord("\r"): " ",
}


def _alternation(words: frozenset[str]) -> str:
    # Longest first so that "小盒" wins over "盒".
    ordered = sorted(words, key=lambda word: (-len(word), word))
    return "|".join(re.escape(word) for word in ordered)


_SEP: Final = r"[*×xX,;、]"
_CONTAINER: Final = _alternation(CONTAINER_UNITS)
_CONTAINER_RE: Final = re.compile(rf"/\s*(?P<container>{_CONTAINER})\s*(?:\([^()]*\))?\s*$")
_COUNT_UNIT: Final = _alternation(MIN_UNITS | INTERMEDIATE_UNITS)
_GROUP_RE: Final = re.compile(
    rf"(?P<count>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>{_COUNT_UNIT})"
    rf"\s*(?:/\s*(?P<inner>{_CONTAINER})\s*)?$"
)
_SEP_TAIL_RE: Final = re.compile(rf"\s*{_SEP}\s*$")
_BARE_NUMBER_TAIL_RE: Final = re.compile(r"[0-9]\s*$")
# A unitless whole number right before the count may be a multiplier
# ("2*10片/盒" could mean 20 片), so such strengths are refused.
_DANGLING_INT_RE: Final = re.compile(rf"(?:^|{_SEP})\s*[0-9]+\s*$")


class PackParseError(ValueError):
    """A pack string that cannot be read without guessing."""

    code: str
    message_zh: str
    message_en: str

    def __init__(self, code: str, message_zh: str, message_en: str) -> None:
        super().__init__(f"{code}: {message_en}")
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en


@dataclass(frozen=True, slots=True)
class ParsedPack:
    """Pack size in minimum units, plus the parts needed to display it."""

    pack_size: int
    min_unit: str
    container: str | None
    strength: str | None


@dataclass(frozen=True, slots=True)
class _Group:
    count: str
    unit: str
    inner_container: str | None


def _error(code: str, zh: str, en: str, text: str) -> PackParseError:
    # Quote the original text so the pharmacist can find the row.
    return PackParseError(code, f"{zh}：“{text}”", f"{en}: {text!r}")


def _ambiguous(text: str) -> PackParseError:
    return _error(
        "pack.ambiguous",
        "包装层级不清楚，无法确定每个包装含多少最小单位",
        "pack levels are unclear; cannot tell how many minimum units one pack holds",
        text,
    )


def _split_chain(body: str) -> tuple[str | None, list[_Group]]:
    """Peel count groups off the right end; whatever remains is the strength."""
    groups: list[_Group] = []
    rest = body
    while (match := _GROUP_RE.search(rest)) is not None:
        before = rest[: match.start()]
        sep = _SEP_TAIL_RE.search(before)
        if sep is None and before.strip():
            break
        groups.append(_Group(match["count"], match["unit"], match["inner"]))
        rest = "" if sep is None else before[: sep.start()]
    groups.reverse()
    return rest.strip() or None, groups


def _count(group: _Group, text: str) -> int:
    if "." in group.count:
        raise _error(
            "pack.bad_count",
            "包装数量必须是整数",
            "pack count must be a whole number",
            text,
        )
    value = int(group.count)
    if value <= 0:
        raise _error(
            "pack.bad_count",
            "包装数量必须大于 0",
            "pack count must be greater than zero",
            text,
        )
    return value


def _check_nesting(groups: list[_Group], text: str) -> None:
    first = groups[0]
    sole_box = first.unit == _BOX and len(groups) == 1
    if first.unit in INTERMEDIATE_UNITS and not sole_box:
        raise _error(
            "pack.no_min_unit",
            f"“{first.unit}”是包装层级，不是最小单位，无法确定每个包装含多少片/粒/支",
            f"'{first.unit}' is a packaging level, not a minimum unit",
            text,
        )
    for inner, outer in itertools.pairwise(groups):
        declared = inner.inner_container
        nests = outer.unit in INTERMEDIATE_UNITS if declared is None else outer.unit == declared
        if not nests or outer.unit == first.unit:
            raise _ambiguous(text)
    if groups[-1].inner_container is not None:
        # "8贴/袋/盒": the number of 袋 per 盒 is missing.
        raise _ambiguous(text)


def _check_container(min_unit: str, container: str | None, pack_size: int, text: str) -> None:
    if container is None:
        return
    if container == min_unit:
        if pack_size != 1:
            raise _error(
                "pack.ambiguous",
                f"包装数量与单位矛盾（每{container}含 {pack_size} {min_unit}）",
                f"pack contradicts itself ({pack_size} {min_unit} per {container})",
                text,
            )
        return
    if container in DOSE_UNITS or min_unit == _BOX:
        raise _error(
            "pack.inverted",
            f"单位与包装可能写反了（每{container}含 {pack_size} {min_unit}）",
            f"unit and container look swapped ({pack_size} {min_unit} per {container})",
            text,
        )


def parse_pack(text: str) -> ParsedPack:
    """Parse a pack string or raise :class:`PackParseError`; never guesses."""
    normalised = text.replace(_EXCEL_CR, " ").translate(_TRANSLATION).strip()
    if not normalised:
        raise PackParseError("pack.empty", "包装为空", "pack is empty")

    container: str | None = None
    body = normalised
    if (container_match := _CONTAINER_RE.search(normalised)) is not None:
        container = container_match["container"]
        body = normalised[: container_match.start()]

    strength, groups = _split_chain(body)
    if not groups:
        if _BARE_NUMBER_TAIL_RE.search(body):
            raise _error(
                "pack.no_unit",
                "包装数量缺少单位（应写成“14片/盒”这样的形式）",
                "pack count has no unit (expected a form like 14片/盒)",
                text,
            )
        raise _error(
            "pack.no_count",
            "包装中找不到数量和单位（应写成“24粒/盒”这样的形式）",
            "no count and unit found in pack (expected a form like 24粒/盒)",
            text,
        )

    if strength is not None and _DANGLING_INT_RE.search(strength):
        raise _ambiguous(text)
    _check_nesting(groups, text)
    pack_size = 1
    for group in groups:
        pack_size *= _count(group, text)
    min_unit = groups[0].unit
    _check_container(min_unit, container, pack_size, text)
    return ParsedPack(
        pack_size=pack_size,
        min_unit=min_unit,
        container=container,
        strength=strength,
    )
