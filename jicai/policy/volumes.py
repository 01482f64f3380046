"""Agreed volume, agreed share and contract term (R-B3, R-C1; rule-facts "Agreed share and term by number of winners").

Three small rules:

* a **winner table** maps the number of winning companies of a variety to the agreed share (约定采购比例)
  and the contract term in years (采购协议周期);
* the **agreed volume** (约定采购量) is the volume base (采购量基数) times the agreed ratio, rounded half-up
  to whole units, with the ratio checked against the region's allowed range;
* the **contract term** is the table's term, optionally extended.

Regional numbers live only in the module constants below; the functions take them as parameters.

Note on published national figures: national agreed volumes are computed per province and then summed,
so a national figure is a *sum of per-province rounded values*. It can differ by a few units from the
national total × ratio rounded once; ``agreed_volume`` rounds once and is meant to be applied per
region (see ``tests/policy/test_volumes.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from jicai.policy.money import ONE, ZERO, to_decimal

__all__ = [
    "CHONGQING_RATIO_RANGE",
    "NATIONAL_BATCH7",
    "NATIONAL_SPECIAL_ANTIMICROBIAL",
    "SHANXI_MAX_EXTENSION_YEARS",
    "SHANXI_RATIO_RANGE",
    "SHANXI_TERMS",
    "RatioRange",
    "WinnerBand",
    "WinnerTable",
    "agreed_volume",
    "contract_term",
    "share_and_term",
]


def _percent(value: Decimal) -> str:
    return format((value * 100).normalize(), "f") + "%"


def _check_share(value: Decimal | None, what: str) -> None:
    if value is None:
        return
    if not isinstance(value, Decimal) or not value.is_finite() or not ZERO < value <= ONE:
        raise ValueError(f"{what} must be a Decimal in (0, 1], got {value!r}")


@dataclass(frozen=True, slots=True)
class WinnerBand:
    """One row of a winner table: ``min_winners``..``max_winners`` winners (``None`` = open-ended).

    ``share`` is the agreed share of the volume base (``None`` where the source sets only a term, as
    Shanxi does); ``term_years`` is the contract term in whole years.
    """

    min_winners: int
    max_winners: int | None
    share: Decimal | None
    term_years: int

    def __post_init__(self) -> None:
        if self.min_winners < 1:
            raise ValueError(f"min_winners must be at least 1, got {self.min_winners}")
        if self.max_winners is not None and self.max_winners < self.min_winners:
            raise ValueError(f"max_winners {self.max_winners} is below min_winners {self.min_winners}")
        _check_share(self.share, "share")
        if self.term_years < 1:
            raise ValueError(f"term_years must be at least 1, got {self.term_years}")

    def covers(self, winners: int) -> bool:
        """True when ``winners`` falls in this band."""
        return self.min_winners <= winners and (self.max_winners is None or winners <= self.max_winners)


@dataclass(frozen=True, slots=True)
class WinnerTable:
    """Agreed share and term by number of winners (R-C1, R-B3).

    Rows must start at 1 winner and be contiguous, without overlap; only the last row may be
    open-ended. A table may stop at a closed row: a winner count beyond it has no rule.
    """

    rows: tuple[WinnerBand, ...]

    def __post_init__(self) -> None:
        if not self.rows:
            raise ValueError("a winner table needs at least one row")
        expected = 1
        for index, row in enumerate(self.rows):
            if row.min_winners != expected:
                raise ValueError(
                    f"winner table rows must be contiguous from 1: row {index} starts at "
                    f"{row.min_winners}, expected {expected}"
                )
            if row.max_winners is None:
                if index != len(self.rows) - 1:
                    raise ValueError("only the last row of a winner table may be open-ended")
                break
            expected = row.max_winners + 1


@dataclass(frozen=True, slots=True)
class RatioRange:
    """Inclusive range ``low``..``high`` an agreed ratio must lie in (R-B3)."""

    low: Decimal
    high: Decimal

    def __post_init__(self) -> None:
        _check_share(self.low, "low")
        _check_share(self.high, "high")
        if self.low > self.high:
            raise ValueError(f"ratio range low {self.low} is above high {self.high}")

    def __contains__(self, ratio: object) -> bool:
        return isinstance(ratio, Decimal) and self.low <= ratio <= self.high

    def __str__(self) -> str:
        return f"{_percent(self.low)}–{_percent(self.high)}"


# --------------------------------------------------------------------------------------------------
# Defaults (sources in each docstring)

NATIONAL_BATCH7 = WinnerTable(
    (
        WinnerBand(1, 1, Decimal("0.5"), 1),
        WinnerBand(2, 2, Decimal("0.6"), 1),
        WinnerBand(3, 3, Decimal("0.7"), 2),
        WinnerBand(4, None, Decimal("0.8"), 3),
    )
)
"""National batch 7, most chemical drugs: 1 → 50%, 1 yr; 2 → 60%, 1 yr; 3 → 70%, 2 yrs; ≥4 → 80%, 3 yrs
(rule-facts "Agreed share and term by number of winners", public secondary sources)."""

NATIONAL_SPECIAL_ANTIMICROBIAL = WinnerTable(
    (
        WinnerBand(1, 1, Decimal("0.3"), 1),
        WinnerBand(2, 2, Decimal("0.4"), 1),
        WinnerBand(3, None, Decimal("0.5"), 2),
    )
)
"""National batch 7, special antibiotics/antifungals (meropenem, micafungin, tigecycline, cefepime
injections): 1 → 30%, 1 yr; 2 → 40%, 1 yr; ≥3 → 50%, 2 yrs (rule-facts)."""

SHANXI_TERMS = WinnerTable(
    (
        WinnerBand(1, 1, None, 1),
        WinnerBand(2, 3, None, 2),
    )
)
"""Shanxi (SX 五(一)): 1 winner → 1-year period; 2 or 3 winners → 2 years. The seed sets no share by
winners (the ratio is set per variety within SHANXI_RATIO_RANGE) and says nothing about 4 or more
winners, so the table stops at 3 and ``share_and_term`` refuses larger counts."""

SHANXI_MAX_EXTENSION_YEARS = 1
"""Shanxi (SX 五(一)): "采购周期视实际情况可延长1年" — the period may be extended by one year."""

SHANXI_RATIO_RANGE = RatioRange(Decimal("0.5"), Decimal("0.8"))
"""Shanxi (SX 三(一)): agreed volume 50%–80% of institutions' annual total use."""

CHONGQING_RATIO_RANGE = RatioRange(Decimal("0.6"), Decimal("0.7"))
"""Chongqing (CQ 二(二)): 60%–70% of the prior year's total use. Jilin (JL 三(三)) uses the nationally set
ratio on its 2018 reported purchases: pass ``allowed=None`` and the ratio from a national table."""


# --------------------------------------------------------------------------------------------------
# Rules


def share_and_term(winners: int, table: WinnerTable) -> tuple[Decimal | None, int]:
    """Agreed share and contract term in years for ``winners`` winning companies (R-C1, R-B3).

    Why: the national and Shanxi rules tie both the share of the volume base a variety commits and
    the length of the agreement to how many companies won it. Raises ``ValueError`` when the table
    has no row for the count.
    """
    if winners < 1:
        raise ValueError(f"number of winners must be at least 1, got {winners}")
    for row in table.rows:
        if row.covers(winners):
            return row.share, row.term_years
    raise ValueError(f"the winner table has no row for {winners} winners")


def agreed_volume(base_qty: Decimal | int | str, ratio: Decimal, allowed: RatioRange | None) -> Decimal:
    """Agreed volume = volume base × agreed ratio, rounded half-up to whole units (R-B3).

    Why: the agreed volume is what an institution or region commits to buy; SX allows a ratio of
    50–80% of the annual total and CQ 60–70% of the prior-year total, so a ratio outside ``allowed``
    is refused with a ``ValueError`` naming the range (``None``: no regional range, as in JL, which
    applies the national ratio). Apply it per region and sum, as national figures are built.
    """
    base = to_decimal(base_qty)
    if not base.is_finite() or base < 0:
        raise ValueError(f"volume base must be a non-negative number, got {base_qty!r}")
    _check_share(ratio, "agreed ratio")
    if allowed is not None and ratio not in allowed:
        raise ValueError(f"agreed ratio {_percent(ratio)} lies outside the allowed range {allowed}")
    return (base * ratio).quantize(ONE, rounding=ROUND_HALF_UP)


def contract_term(winners: int, table: WinnerTable, extended: bool, max_extension_years: int) -> int:
    """Contract term in years for ``winners`` winners, plus the extension when ``extended`` (R-C1).

    Why: SX sets the period by number of winners (1 → 1 yr, 2–3 → 2 yrs) and lets it be extended by
    one year; ``max_extension_years`` carries the region's allowance, and asking for an extension
    where none is allowed is refused.
    """
    if max_extension_years < 0:
        raise ValueError(f"max_extension_years must not be negative, got {max_extension_years}")
    _share, years = share_and_term(winners, table)
    if not extended:
        return years
    if max_extension_years == 0:
        raise ValueError("an extension was requested but this region allows none")
    return years + max_extension_years
