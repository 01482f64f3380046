"""Supply assurance rules (R-I1–I4): affected days of interruptions, delivery lateness and fill rate,
the supplier credit score, and stock cover.

Pure and parameterised like every rule module: the numbers a region may set differently are named
constants here (the defaults), passed in as frozen parameter objects, so a policy profile can override
them without touching code. None of the seeds gives a number for these; the defaults are documented
readings, each a profile candidate:

* ``LATE_DELIVERY_DAYS`` — a line is late when delivered more than this many days after it was ordered
  (SX 五(二): distributors "及时响应医疗机构采购订单并配送到位"; platforms commonly ask for delivery
  within 24–48 hours, so 2 days).
* ``FILL_RATE_TARGET`` — a company whose accepted share of ordered lines in a month falls below this is
  recorded as a shortage in its credit file (XJ 四.3 "供应短缺").
* ``CREDIT_KIND_WEIGHTS`` × ``SEVERITY_FACTORS`` — points deducted per event from ``SCORE_START`` (XJ 五(六)3
  企业诚信档案); ``STANDING_THRESHOLDS`` turn the score into standings A–D.
* ``STOCK_COVER_ALERT_MONTHS`` — a manufacturer's report whose stock covers less than this many months
  of demand is flagged (SX 五(二) 报告产能、库存; CQ 二(六) 应急储备、库存和停产报告).
* ``MONTHS_PER_YEAR`` — expected monthly demand = agreed volume of the year ÷ 12.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from types import MappingProxyType

from jicai.policy.money import ZERO, to_decimal

ONE_DAY = dt.timedelta(days=1)
RATE_PLACES = Decimal("0.0001")
RATIO_PLACES = Decimal("0.000001")
COVER_PLACES = Decimal("0.01")

# --------------------------------------------------------------------------------------------------
# Periods: a year "2026", a quarter "2026Q1" or a month "2026-03"

_YEAR = re.compile(r"^(\d{4})$")
_QUARTER = re.compile(r"^(\d{4})[Qq]([1-4])$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class Period:
    """A calendar period, ``start``..``end`` inclusive, with the label it was given."""

    label: str
    start: dt.date
    end: dt.date

    def months(self) -> tuple[str, ...]:
        """The calendar months (YYYY-MM) the period spans."""
        out = []
        year, month = self.start.year, self.start.month
        while (year, month) <= (self.end.year, self.end.month):
            out.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return tuple(out)


def month_end(year: int, month: int) -> dt.date:
    """The last day of a calendar month."""
    first_next = dt.date(year + month // 12, month % 12 + 1, 1)
    return first_next - ONE_DAY


def parse_period(label: str) -> Period:
    """A period from its label: ``2026`` (year), ``2026Q1`` (quarter) or ``2026-03`` (month)."""
    text = label.strip()
    if found := _YEAR.match(text):
        year = int(found.group(1))
        return Period(text, dt.date(year, 1, 1), dt.date(year, 12, 31))
    if found := _QUARTER.match(text):
        year, quarter = int(found.group(1)), int(found.group(2))
        first = 3 * quarter - 2
        return Period(f"{year}Q{quarter}", dt.date(year, first, 1), month_end(year, first + 2))
    if (found := _MONTH.match(text)) and 1 <= int(found.group(2)) <= 12:
        year, month = int(found.group(1)), int(found.group(2))
        return Period(text, dt.date(year, month, 1), month_end(year, month))
    raise ValueError(f"not a period (2026, 2026Q1 or 2026-03): {label!r}")


# --------------------------------------------------------------------------------------------------
# Affected days: interruptions clipped to an agreement year (R-I2, completion without affected days)


@dataclass(frozen=True, slots=True, order=True)
class DayInterval:
    """Days ``start``..``end`` inclusive."""

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("interval ends before it starts")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def clip_and_merge(
    spans: Iterable[tuple[dt.date, dt.date | None]], first: dt.date, last: dt.date
) -> tuple[DayInterval, ...]:
    """``spans`` (an end of None = still open) clipped to ``first``..``last`` and merged where they
    overlap or touch; sorted. Spans entirely outside are dropped."""
    if last < first:
        return ()
    clipped = []
    for start, end in spans:
        lo = max(start, first)
        hi = min(end if end is not None else last, last)
        if lo <= hi:
            clipped.append(DayInterval(lo, hi))
    merged: list[DayInterval] = []
    for span in sorted(clipped):
        if merged and span.start <= merged[-1].end + ONE_DAY:
            if span.end > merged[-1].end:
                merged[-1] = DayInterval(merged[-1].start, span.end)
            continue
        merged.append(span)
    return tuple(merged)


def affected_day_count(intervals: Iterable[DayInterval]) -> int:
    """Days covered by already merged intervals."""
    return sum(i.days for i in intervals)


@dataclass(frozen=True, slots=True)
class AdjustedCompletion:
    """Completion with and without the days a supply interruption affected (R-I2).

    ``completion`` = counted ÷ agreed (semantics.md). ``completion_unaffected`` compares the counted
    quantity with the agreed quantity prorated to the unaffected days: counted ÷ (agreed × unaffected
    days ÷ period days); None when every day was affected or nothing was agreed. ``elapsed`` and
    ``elapsed_unaffected`` are the elapsed-time shares on ``as_of`` with and without the affected days
    (so progress against time can be read either way).
    """

    period_days: int
    affected_days: int
    completion: Decimal | None
    completion_unaffected: Decimal | None
    elapsed: Decimal
    elapsed_unaffected: Decimal | None


def _ratio(num: Decimal, den: Decimal) -> Decimal | None:
    if den <= 0:
        return None
    return (num / den).quantize(RATIO_PLACES, rounding=ROUND_HALF_UP)


def adjusted_completion(
    counted_qty: Decimal,
    agreed_qty: Decimal,
    period_start: dt.date,
    period_end: dt.date,
    spans: Iterable[tuple[dt.date, dt.date | None]],
    *,
    as_of: dt.date,
) -> AdjustedCompletion:
    """Completion and elapsed share of one agreement year, with and without affected days.

    ``spans`` are the interruptions on record for the institution and item (open ones end None); they
    are clipped to the year and to ``as_of`` (days not yet lived are not affected yet). Ratios keep six
    places, half-up.
    """
    if period_end < period_start:
        raise ValueError("agreement year ends before it starts")
    counted, agreed = to_decimal(counted_qty), to_decimal(agreed_qty)
    period_days = (period_end - period_start).days + 1
    lived_end = min(as_of, period_end)
    intervals = clip_and_merge(spans, period_start, lived_end)
    affected = affected_day_count(intervals)
    lived = max((lived_end - period_start).days + 1, 0)
    unaffected_days = period_days - affected
    completion = _ratio(counted, agreed)
    completion_unaffected = (
        _ratio(counted, agreed * Decimal(unaffected_days) / Decimal(period_days)) if unaffected_days else None
    )
    elapsed = (Decimal(lived) / Decimal(period_days)).quantize(RATIO_PLACES, rounding=ROUND_HALF_UP)
    elapsed_unaffected = _ratio(Decimal(lived - affected), Decimal(unaffected_days))
    return AdjustedCompletion(
        period_days=period_days,
        affected_days=affected,
        completion=completion,
        completion_unaffected=completion_unaffected,
        elapsed=elapsed,
        elapsed_unaffected=elapsed_unaffected,
    )


# --------------------------------------------------------------------------------------------------
# Deliveries: lateness and fill rate (R-I3, distributor scorecard R-D4)

LATE_DELIVERY_DAYS = 2
"""A line delivered more than this many days after it was ordered is late (profile candidate)."""

FILL_RATE_TARGET = Decimal("0.95")
"""Below this accepted ÷ ordered share in a month, a company's credit file gets a shortage (candidate)."""


class Severity(StrEnum):
    MINOR = "minor"
    MAJOR = "major"
    SEVERE = "severe"


@dataclass(frozen=True, slots=True)
class DeliveryParams:
    """``late_days``: threshold of lateness; ``fill_rate_target``: the shortage line; a late delivery is
    major beyond ``major_factor`` × the threshold and severe beyond ``severe_factor`` ×; a fill rate is
    major below ``major_fill_rate`` and severe below ``severe_fill_rate``."""

    late_days: int = LATE_DELIVERY_DAYS
    fill_rate_target: Decimal = FILL_RATE_TARGET
    major_factor: int = 2
    severe_factor: int = 4
    major_fill_rate: Decimal = Decimal("0.80")
    severe_fill_rate: Decimal = Decimal("0.60")

    def __post_init__(self) -> None:
        if self.late_days < 0:
            raise ValueError("late-delivery threshold must not be negative")
        if not ZERO <= self.severe_fill_rate <= self.major_fill_rate <= self.fill_rate_target <= 1:
            raise ValueError("fill-rate lines must satisfy 0 ≤ severe ≤ major ≤ target ≤ 1")
        if not 1 <= self.major_factor <= self.severe_factor:
            raise ValueError("severity factors must satisfy 1 ≤ major ≤ severe")


DEFAULT_DELIVERY = DeliveryParams()


def delivery_days(ordered_on: dt.date | None, delivered_on: dt.date | None) -> int | None:
    """Days from order to delivery; None when either date is missing."""
    if ordered_on is None or delivered_on is None:
        return None
    return (delivered_on - ordered_on).days


def is_late(
    ordered_on: dt.date | None, delivered_on: dt.date | None, params: DeliveryParams = DEFAULT_DELIVERY
) -> bool:
    """Late iff delivered more than ``late_days`` after the order (unknown dates are not late)."""
    days = delivery_days(ordered_on, delivered_on)
    return days is not None and days > params.late_days


def late_delivery_severity(max_days: int, params: DeliveryParams = DEFAULT_DELIVERY) -> Severity:
    """How serious the worst delay of a month is: beyond 4 × the threshold severe, beyond 2 × major."""
    if max_days > params.severe_factor * params.late_days:
        return Severity.SEVERE
    if max_days > params.major_factor * params.late_days:
        return Severity.MAJOR
    return Severity.MINOR


def rate(part: Decimal | int, whole: Decimal | int) -> Decimal | None:
    """part ÷ whole to four places half-up; None when whole is 0 (no orders: no rate)."""
    whole_d = to_decimal(whole)
    if whole_d <= 0:
        return None
    return (to_decimal(part) / whole_d).quantize(RATE_PLACES, rounding=ROUND_HALF_UP)


def fill_rate_severity(fill: Decimal, params: DeliveryParams = DEFAULT_DELIVERY) -> Severity | None:
    """A shortage's severity from the fill rate; None when the rate meets the target."""
    if fill >= params.fill_rate_target:
        return None
    if fill < params.severe_fill_rate:
        return Severity.SEVERE
    if fill < params.major_fill_rate:
        return Severity.MAJOR
    return Severity.MINOR


# --------------------------------------------------------------------------------------------------
# Credit score (R-I3: 企业诚信档案)


class CreditKind(StrEnum):
    LATE_DELIVERY = "late_delivery"
    SHORTAGE = "shortage"
    NEAR_EXPIRY = "near_expiry"
    UNSUITABLE_PACK = "unsuitable_pack"
    QUALITY_PROBLEM = "quality_problem"
    MALICIOUS_INTERRUPTION = "malicious_interruption"


SCORE_START = Decimal(100)
CREDIT_KIND_WEIGHTS: Mapping[str, Decimal] = MappingProxyType(
    {
        CreditKind.LATE_DELIVERY: Decimal(2),
        CreditKind.SHORTAGE: Decimal(5),
        CreditKind.NEAR_EXPIRY: Decimal(3),
        CreditKind.UNSUITABLE_PACK: Decimal(2),
        CreditKind.QUALITY_PROBLEM: Decimal(8),
        CreditKind.MALICIOUS_INTERRUPTION: Decimal(20),
    }
)
"""Points per event of each kind at severity ``minor`` (profile candidate)."""
SEVERITY_FACTORS: Mapping[str, Decimal] = MappingProxyType(
    {Severity.MINOR: Decimal(1), Severity.MAJOR: Decimal(2), Severity.SEVERE: Decimal(3)}
)
"""Multiplier of an event's points by severity (profile candidate)."""
STANDING_THRESHOLDS: tuple[tuple[str, Decimal], ...] = (("A", Decimal(90)), ("B", Decimal(75)), ("C", Decimal(60)))
"""Lowest score of each standing, best first; below the last one the standing is D (profile candidate)."""
LOWEST_STANDING = "D"


@dataclass(frozen=True, slots=True)
class CreditParams:
    start: Decimal = SCORE_START
    kind_weights: Mapping[str, Decimal] = field(default_factory=lambda: CREDIT_KIND_WEIGHTS)
    severity_factors: Mapping[str, Decimal] = field(default_factory=lambda: SEVERITY_FACTORS)
    standings: tuple[tuple[str, Decimal], ...] = STANDING_THRESHOLDS
    lowest: str = LOWEST_STANDING

    def __post_init__(self) -> None:
        if any(w < 0 for w in self.kind_weights.values()) or any(f < 0 for f in self.severity_factors.values()):
            raise ValueError("weights must not be negative")
        floors = [t for _, t in self.standings]
        if floors != sorted(floors, reverse=True):
            raise ValueError("standings must be listed best first with falling thresholds")


DEFAULT_CREDIT = CreditParams()


@dataclass(frozen=True, slots=True)
class CreditScore:
    """``score`` = start − Σ deductions, floored at 0; ``deductions`` per event kind; ``events`` counted."""

    score: Decimal
    standing: str
    deductions: Mapping[str, Decimal]
    events: int


def standing_of(score: Decimal, params: CreditParams = DEFAULT_CREDIT) -> str:
    """The best standing whose threshold the score reaches."""
    for name, threshold in params.standings:
        if score >= threshold:
            return name
    return params.lowest


def credit_score(counts: Mapping[tuple[str, str], int], params: CreditParams = DEFAULT_CREDIT) -> CreditScore:
    """Score of one company in one period from its event counts by (kind, severity).

    Each event deducts ``kind_weights[kind] × severity_factors[severity]``; unknown kinds or severities
    are refused (a typo must not score as a clean record). The score never falls below 0.
    """
    deductions: dict[str, Decimal] = {}
    total = ZERO
    events = 0
    for (kind, severity), n in sorted(counts.items()):
        if kind not in params.kind_weights:
            raise ValueError(f"unknown credit event kind {kind!r}")
        if severity not in params.severity_factors:
            raise ValueError(f"unknown severity {severity!r}")
        if n < 0:
            raise ValueError("event counts must not be negative")
        points = params.kind_weights[kind] * params.severity_factors[severity] * n
        deductions[kind] = deductions.get(kind, ZERO) + points
        total += points
        events += n
    score = max(params.start - total, ZERO)
    return CreditScore(score=score, standing=standing_of(score, params), deductions=deductions, events=events)


# --------------------------------------------------------------------------------------------------
# Stock cover (R-I4)

STOCK_COVER_ALERT_MONTHS = Decimal("1.0")
"""A report whose stock covers fewer months of demand than this is flagged (profile candidate)."""
MONTHS_PER_YEAR = 12


def monthly_demand(agreed_qty_year: Decimal | int, months: int = MONTHS_PER_YEAR) -> Decimal:
    """Expected monthly demand from a year's agreed volume: agreed ÷ 12, four places half-up."""
    if months <= 0:
        raise ValueError("months must be positive")
    return (to_decimal(agreed_qty_year) / Decimal(months)).quantize(RATE_PLACES, rounding=ROUND_HALF_UP)


def stock_cover(stock: Decimal | int, demand_per_month: Decimal | int | None) -> Decimal | None:
    """Months of demand the stock covers (stock ÷ monthly demand, two places half-up); None when the
    demand is unknown or zero."""
    if demand_per_month is None:
        return None
    demand = to_decimal(demand_per_month)
    if demand <= 0:
        return None
    stock_d = to_decimal(stock)
    if stock_d < 0:
        raise ValueError("stock must not be negative")
    return (stock_d / demand).quantize(COVER_PLACES, rounding=ROUND_HALF_UP)


def stock_is_low(cover: Decimal | None, threshold: Decimal = STOCK_COVER_ALERT_MONTHS) -> bool:
    """Low iff the cover is known and strictly below the threshold."""
    return cover is not None and cover < threshold


__all__ = [
    "CREDIT_KIND_WEIGHTS",
    "DEFAULT_CREDIT",
    "DEFAULT_DELIVERY",
    "FILL_RATE_TARGET",
    "LATE_DELIVERY_DAYS",
    "MONTHS_PER_YEAR",
    "SCORE_START",
    "SEVERITY_FACTORS",
    "STANDING_THRESHOLDS",
    "STOCK_COVER_ALERT_MONTHS",
    "AdjustedCompletion",
    "CreditKind",
    "CreditParams",
    "CreditScore",
    "DayInterval",
    "DeliveryParams",
    "Period",
    "Severity",
    "adjusted_completion",
    "affected_day_count",
    "clip_and_merge",
    "credit_score",
    "delivery_days",
    "fill_rate_severity",
    "is_late",
    "late_delivery_severity",
    "monthly_demand",
    "parse_period",
    "rate",
    "standing_of",
    "stock_cover",
    "stock_is_low",
]
