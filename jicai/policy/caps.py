"""Non-selected cap check (R-D2, R-H7, R-I2; semantics.md "Non-selected cap").

Per institution, item and agreement year, non-selected products of the same generic may be bought
only after the selected ones, and their quantity converted to item units must not exceed the selected
quantity counted in the same period (CQ 二(二): "按比例关系折算后不得超过中选品种"; JL 三(三): "原则上
数量不得超过中选药品使用量"). Substitutes (other generics, XJ 五(五)) are watched for share and growth,
not capped, unless a profile says so. Quantities bought while a supply interruption of the selected
product is on record are exempt (XJ 五(二)2: with an interruption proof the institution may buy
non-selected products to keep patients supplied).

The caller passes the purchase lines of one institution and one item; lines dated outside the
agreement year are ignored, so a whole purchase history may be passed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from jicai.policy.money import ONE, ZERO, to_decimal


class PurchaseKind(StrEnum):
    """How a purchase line relates to the item (glossary: selected / non_selected / substitute)."""

    SELECTED = "selected"
    NON_SELECTED = "non_selected"
    SUBSTITUTE = "substitute"


@dataclass(frozen=True, slots=True)
class CapPurchase:
    """One accepted purchase line: ``qty`` in the product's unit, ``conversion`` to item units."""

    accepted_on: dt.date
    qty: Decimal
    kind: PurchaseKind
    conversion: Decimal = ONE

    def __post_init__(self) -> None:
        if self.qty < 0:
            raise ValueError("purchase quantity must not be negative")
        if self.conversion <= 0:
            raise ValueError("conversion must be positive")

    @property
    def item_qty(self) -> Decimal:
        """Quantity in item units (semantics.md: qty × conversion)."""
        return to_decimal(self.qty) * to_decimal(self.conversion)


@dataclass(frozen=True, slots=True)
class Interruption:
    """A supply interruption of the selected product on record, ``start``..``end`` inclusive; an
    ``end`` of None means it is still open (R-I2)."""

    start: dt.date
    end: dt.date | None = None

    def __post_init__(self) -> None:
        if self.end is not None and self.end < self.start:
            raise ValueError("interruption ends before it starts")

    def covers(self, day: dt.date) -> bool:
        """Whether ``day`` falls inside the interruption."""
        return self.start <= day and (self.end is None or day <= self.end)


@dataclass(frozen=True, slots=True)
class CapParams:
    """Numbers a region may vary: ``cap_ratio`` × selected is the limit (CQ, JL: 1.0);
    ``cap_substitutes`` also counts substitutes against it; ``exempt_interruptions`` exempts
    purchases made during a supply interruption."""

    cap_ratio: Decimal = ONE
    cap_substitutes: bool = False
    exempt_interruptions: bool = True

    def __post_init__(self) -> None:
        if self.cap_ratio < 0:
            raise ValueError("cap ratio must not be negative")


DEFAULT_CAP = CapParams()
"""CQ 二(二) and JL 三(三): non-selected (converted) ≤ selected; substitutes watched only (XJ 五(五))."""


@dataclass(frozen=True, slots=True)
class CapCheck:
    """Outcome of the cap check, all quantities in item units.

    ``non_selected_qty`` is the counted (non-exempt) non-selected quantity; ``counted_qty`` is what is
    tested against ``limit`` (non-selected, plus counted substitutes when they are capped);
    ``exempt_qty`` is capped-kind quantity bought during an interruption; ``substitute_qty`` is every
    substitute purchase (watched). ``headroom`` and ``excess_qty`` are never negative.
    """

    selected_qty: Decimal
    non_selected_qty: Decimal
    exempt_qty: Decimal
    substitute_qty: Decimal
    counted_qty: Decimal
    limit: Decimal
    headroom: Decimal
    exceeded: bool
    excess_qty: Decimal
    reason: str


def _fmt(value: Decimal) -> str:
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def check_non_selected_cap(
    purchases: Iterable[CapPurchase],
    interruptions: Iterable[Interruption],
    period_start: dt.date,
    period_end: dt.date,
    params: CapParams = DEFAULT_CAP,
) -> CapCheck:
    """Check non-selected purchases against ``cap_ratio`` × selected in one agreement year (R-D2).

    Selected quantity always counts. Non-selected lines (and substitutes when ``cap_substitutes``)
    dated inside an interruption are exempt (R-I2); substitutes are otherwise only reported (R-H7).
    Exceeded iff counted quantity > limit; with no selected purchases any counted quantity exceeds.
    """
    if period_end < period_start:
        raise ValueError("agreement year ends before it starts")
    breaks = tuple(interruptions)
    capped_kinds = {PurchaseKind.NON_SELECTED}
    if params.cap_substitutes:
        capped_kinds.add(PurchaseKind.SUBSTITUTE)
    selected = non_selected = exempt = substitute = counted = ZERO
    for line in purchases:
        if not period_start <= line.accepted_on <= period_end:
            continue
        qty = line.item_qty
        if line.kind is PurchaseKind.SELECTED:
            selected += qty
            continue
        if line.kind is PurchaseKind.SUBSTITUTE:
            substitute += qty
        if line.kind not in capped_kinds:
            continue
        if params.exempt_interruptions and any(b.covers(line.accepted_on) for b in breaks):
            exempt += qty
            continue
        counted += qty
        if line.kind is PurchaseKind.NON_SELECTED:
            non_selected += qty
    limit = params.cap_ratio * selected
    exceeded = counted > limit
    excess = counted - limit if exceeded else ZERO
    headroom = ZERO if exceeded else limit - counted
    what = "non-selected and substitute" if params.cap_substitutes else "non-selected"
    basis = f"the limit {_fmt(limit)} ({_fmt(params.cap_ratio)} × selected {_fmt(selected)})"
    if exceeded:
        reason = f"{what} quantity {_fmt(counted)} exceeds {basis} by {_fmt(excess)}"
    else:
        reason = f"{what} quantity {_fmt(counted)} is within {basis}; headroom {_fmt(headroom)}"
    if exempt:
        reason += f"; {_fmt(exempt)} exempt (bought during a supply interruption)"
    if substitute and not params.cap_substitutes:
        reason += f"; substitutes {_fmt(substitute)} watched, not capped"
    return CapCheck(
        selected_qty=selected,
        non_selected_qty=non_selected,
        exempt_qty=exempt,
        substitute_qty=substitute,
        counted_qty=counted,
        limit=limit,
        headroom=headroom,
        exceeded=exceeded,
        excess_qty=excess,
        reason=reason,
    )


@dataclass(frozen=True, slots=True)
class MonthlyCap:
    """One calendar month of the agreement year (clipped to it): the month alone and cumulative to its end."""

    month: str  # "YYYY-MM"
    start: dt.date
    end: dt.date
    month_check: CapCheck
    cumulative: CapCheck


def month_end(day: dt.date) -> dt.date:
    """The last day of ``day``'s calendar month."""
    first_next = dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return first_next - dt.timedelta(days=1)


def monthly_cap_breakdown(
    purchases: Iterable[CapPurchase],
    interruptions: Iterable[Interruption],
    period_start: dt.date,
    period_end: dt.date,
    params: CapParams = DEFAULT_CAP,
) -> tuple[MonthlyCap, ...]:
    """Cap check per calendar month and cumulative to each month's end, for monitoring (R-D2, R-H7).

    The year's verdict is the last month's ``cumulative``; a month alone may exceed while the year does
    not (or the reverse), which is why both are given.
    """
    if period_end < period_start:
        raise ValueError("agreement year ends before it starts")
    lines: Sequence[CapPurchase] = tuple(purchases)
    breaks = tuple(interruptions)
    months: list[MonthlyCap] = []
    start = period_start
    while start <= period_end:
        end = min(month_end(start), period_end)
        months.append(
            MonthlyCap(
                month=f"{start.year:04d}-{start.month:02d}",
                start=start,
                end=end,
                month_check=check_non_selected_cap(lines, breaks, start, end, params),
                cumulative=check_non_selected_cap(lines, breaks, period_start, end, params),
            )
        )
        start = end + dt.timedelta(days=1)
    return tuple(months)
