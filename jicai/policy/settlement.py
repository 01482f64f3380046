"""Settlement rhythm of an agreement year and the reserve (R-E3; CQ 二(八)).

Chongqing sets up a reserve (预留金) and runs each institution's purchasing progress on "monthly
monitoring, quarterly settlement, year-end clearing" (按月监测、季度结算、年终清算). This module cuts an
agreement year into those periods: calendar blocks of a configurable number of months clipped to the
year (so a year that starts mid-month begins and ends with a part block), plus one clearing period that
is the whole year. It also splits a settled amount into what is paid now and what is held in reserve.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from jicai.policy.money import ONE, ZERO, round_fen

#: Block lengths the calendar supports, in months, with the label each gives a block.
BLOCK_MONTHS = (1, 3, 6, 12)


def _check_year(period_start: dt.date, period_end: dt.date) -> None:
    if period_end < period_start:
        raise ValueError(f"period_end {period_end} is before period_start {period_start}")


def _check_share(share: Decimal) -> None:
    if not share.is_finite() or not ZERO <= share <= ONE:
        raise ValueError(f"reserve share must be in [0, 1], got {share}")


class PeriodKind(StrEnum):
    """What a period is for (R-E3)."""

    MONITORING = "monitoring"
    SETTLEMENT = "settlement"
    CLEARING = "clearing"


@dataclass(frozen=True, slots=True)
class SettlementParams:
    """A region's settlement rhythm and reserve (R-E3); every number a profile may change.

    ``monitoring_months`` and ``settlement_months`` are calendar block lengths (1 = month,
    3 = quarter, 6 = half-year, 12 = calendar year). ``reserve_share`` is the part of each settled
    amount held back until year-end clearing.
    """

    monitoring_months: int = 1
    settlement_months: int = 3
    reserve_share: Decimal = ZERO

    def __post_init__(self) -> None:
        for name in ("monitoring_months", "settlement_months"):
            if getattr(self, name) not in BLOCK_MONTHS:
                raise ValueError(f"{name} must be one of {BLOCK_MONTHS} (month, quarter, half-year, year)")
        _check_share(self.reserve_share)


#: Chongqing (CQ 二(八)): monthly monitoring, quarterly settlement, year-end clearing. The seed names a
#: reserve (预留金) but not its size, so the share is 0 until a profile sets one (unconfirmed).
CHONGQING_SETTLEMENT = SettlementParams(monitoring_months=1, settlement_months=3, reserve_share=ZERO)


@dataclass(frozen=True, slots=True)
class Period:
    """A stretch of days (both ends inclusive) with its kind and a label such as "2026-03" or "2026Q1"."""

    start: dt.date
    end: dt.date
    kind: PeriodKind
    label: str

    @property
    def days(self) -> int:
        """Number of days in the period, both ends counted."""
        return (self.end - self.start).days + 1

    def __contains__(self, day: object) -> bool:
        return isinstance(day, dt.date) and self.start <= day <= self.end


@dataclass(frozen=True, slots=True)
class SettlementCalendar:
    """The monitoring, settlement and clearing periods of one agreement year (R-E3)."""

    monitoring: tuple[Period, ...]
    settlement: tuple[Period, ...]
    clearing: Period


def _label(year: int, first_month: int, months: int) -> str:
    if months == 1:
        return f"{year}-{first_month:02d}"
    if months == 3:
        return f"{year}Q{(first_month + 2) // 3}"
    if months == 6:
        return f"{year}H{(first_month + 5) // 6}"
    return f"{year}"


def calendar_blocks(
    period_start: dt.date, period_end: dt.date, months: int, kind: PeriodKind = PeriodKind.SETTLEMENT
) -> tuple[Period, ...]:
    """Calendar blocks of ``months`` months (1, 3, 6 or 12) covering the year, clipped to it (R-E3, R-H3).

    Blocks are aligned to the calendar (quarters start in January, April, July, October), so a year
    starting 2022-11-15 opens with "2022Q4" = 2022-11-15..2022-12-31. The blocks tile the year with no
    gap or overlap.
    """
    _check_year(period_start, period_end)
    if months not in BLOCK_MONTHS:
        raise ValueError(f"block length must be one of {BLOCK_MONTHS} months, got {months}")
    year, first = period_start.year, (period_start.month - 1) // months * months + 1
    blocks: list[Period] = []
    while True:
        last = first + months - 1
        block_start = max(dt.date(year, first, 1), period_start)
        block_end = min(dt.date(year, last, calendar.monthrange(year, last)[1]), period_end)
        blocks.append(Period(block_start, block_end, kind, _label(year, first, months)))
        if block_end == period_end:
            return tuple(blocks)
        year, first = (year + 1, 1) if last == 12 else (year, last + 1)


def settlement_calendar(
    period_start: dt.date, period_end: dt.date, params: SettlementParams = CHONGQING_SETTLEMENT
) -> SettlementCalendar:
    """Monitoring and settlement periods and the year-end clearing period of an agreement year (R-E3).

    The clearing period is the whole agreement year, labelled with its ISO interval
    ("2022-11-15/2023-11-14").
    """
    return SettlementCalendar(
        monitoring=calendar_blocks(period_start, period_end, params.monitoring_months, PeriodKind.MONITORING),
        settlement=calendar_blocks(period_start, period_end, params.settlement_months, PeriodKind.SETTLEMENT),
        clearing=Period(period_start, period_end, PeriodKind.CLEARING, f"{period_start}/{period_end}"),
    )


@dataclass(frozen=True, slots=True)
class ReserveSplit:
    """A settled amount cut into what is paid now and what the reserve holds until clearing (R-E3)."""

    paid_now: Decimal
    reserved: Decimal


def split_reserve(amount: Decimal, reserve_share: Decimal) -> ReserveSplit:
    """Hold ``reserve_share`` of a settled amount in the reserve (预留金, R-E3; CQ 二(八)).

    The reserve is rounded half-up to the fen and the payment now takes the rest, so the two sum
    exactly to ``amount``, which must itself be a non-negative whole number of fen.
    """
    _check_share(reserve_share)
    if not amount.is_finite() or amount < ZERO:
        raise ValueError(f"amount to settle must not be negative, got {amount}")
    if amount != round_fen(amount):
        raise ValueError(f"amount to settle {amount} is not a whole number of fen")
    reserved = round_fen(amount * reserve_share)
    return ReserveSplit(paid_now=amount - reserved, reserved=reserved)
