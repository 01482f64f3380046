"""Pre-purchase demand suggested from a hospital's own history (R-H2; XJ 五(二)1).

XJ 五(二)1 asks a hospital to report its demand for a new round (预采购量) after "调取既往同品种药品使用量"
— pulling its past use of the generic — and weighing clinicians' views, guideline and insurance
changes and public-health events. This module makes the first part, a suggestion per item, from the
monthly use the caller supplies (item units: each line's qty × conversion, as the engine counts). The
pharmacy then adjusts it with a reason; that is the workflow's business, not this module's.

The rule, every step exact ``Decimal`` arithmetic at ``PRECISION`` significant digits:

1. **Window.** ``history_window``: the ``months`` whole calendar months (12–24 by default) that end with
   the month before the round's first month, or before the month of ``until`` (the plan's date: the
   current month is not complete) when that is earlier. Months without use count as 0; a month whose
   net use is negative (more returns than dispensing) counts as 0.
2. **Shortage months are left out** (``detect_shortages``): the months the pharmacy marks, plus the months
   detected from purchases: a month *m* is a shortage month when
   (a) no accepted purchase of the generic's products (selected or not) was made in *m*,
   (b) purchases were made in some earlier *and* some later month of the window (the item was being
   bought around *m*), and
   (c) use in *m* is below ``shortage_ratio`` (default ½) × the median use of the months with purchases.
   Detection needs purchases *and* a separate use series: with purchases as the only source, a month
   without an order is not evidence of a shortage (a hospital may order every other month), so only
   the marked months are left out (pass ``purchased=None``).
3. **Trend and season** (``forecast_demand``), on the months left — and from the first month with any use
   on: the months before it are not history of the hospital's use but of its not having used the generic
   yet (*t* = months since the window's first):

   * none left: the suggestion is 0 (``no_history``);
   * fewer than ``min_trend_months`` left (default 6): their mean, flat (``mean``);
   * a window of at least ``seasonal_min_months`` (default 24) with every calendar month among the months
     left: a linear trend with a monthly seasonal index (``seasonal_trend``), by ratio to trend — fit a
     least-squares line to the use, average use ÷ line per calendar month, scale the twelve averages
     to a mean of 1 (the seasonal indices), fit the line again to use ÷ index (months whose index is 0
     carry no information on the level and are left out of that fit); projected use = line × index.
     A calendar month with no ratio (its line is ≤ 0 wherever it was used) falls back to the trend;
   * otherwise a least-squares line (``trend``).
4. **Projection.** Each month of the agreement year (``horizon_months``, default 12, from the round's first
   month) gets the projected use, floored at 0 (a falling trend never projects negative use). The
   suggestion is the sum of the exact monthly values rounded **half-up to a whole unit** — once, at the
   end; the monthly values in ``projection`` are kept exact (display them to 4 places).

A least-squares line through a single month (or through months that are all the same *t*) is flat at
their mean.
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from enum import StrEnum

from jicai.policy.money import ONE, ZERO

PRECISION = 28
"""Significant digits of every intermediate value (Decimal's default, pinned so results never depend on
the caller's context)."""

WHOLE = Decimal(1)
MONTHS_PER_YEAR = 12


class Method(StrEnum):
    """How a suggestion was made (stored with the line so the pharmacy can see why)."""

    NO_HISTORY = "no_history"
    MEAN = "mean"
    TREND = "trend"
    SEASONAL_TREND = "seasonal_trend"


@dataclass(frozen=True, slots=True)
class DemandParams:
    """Parameters of the forecast (module docstring); each a region may set in its policy profile."""

    history_months: int = 24
    shortage_ratio: Decimal = Decimal("0.5")
    min_trend_months: int = 6
    seasonal_min_months: int = 24
    horizon_months: int = 12

    def __post_init__(self) -> None:
        for name in ("history_months", "min_trend_months", "seasonal_min_months", "horizon_months"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        ratio = self.shortage_ratio
        if not isinstance(ratio, Decimal) or not ratio.is_finite() or not ZERO <= ratio <= ONE:
            raise ValueError(f"shortage_ratio must be a Decimal in [0, 1], got {ratio!r}")


DEFAULT_DEMAND_PARAMS = DemandParams()
"""R-H2 ("last 12–24 months"): a 24-month window, trend and season, ½ of the median for a shortage."""


# --------------------------------------------------------------------------------------------------
# Months


def month_start(day: dt.date) -> dt.date:
    """The first day of ``day``'s month."""
    return day.replace(day=1)


def add_months(month: dt.date, months: int) -> dt.date:
    """The first day of the month ``months`` after (or before, if negative) ``month``'s month."""
    index = month.year * MONTHS_PER_YEAR + month.month - 1 + months
    year, zero_based = divmod(index, MONTHS_PER_YEAR)
    return dt.date(year, zero_based + 1, 1)


def months_between(first: dt.date, later: dt.date) -> int:
    """Whole calendar months from ``first``'s month to ``later``'s month (negative when earlier)."""
    return (later.year - first.year) * MONTHS_PER_YEAR + later.month - first.month


def month_label(month: dt.date) -> str:
    """``YYYY-MM``."""
    return f"{month.year:04d}-{month.month:02d}"


def month_end(month: dt.date) -> dt.date:
    """The last day of ``month``'s month."""
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def history_window(round_start: dt.date, months: int, *, until: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The window of whole months before the round (step 1): (first day, last day), both inclusive.

    Ends with the month before ``round_start``'s month, or the month before ``until``'s month when that
    is earlier (a plan made before the round starts sees only the months that are over).
    """
    if isinstance(months, bool) or not isinstance(months, int) or months <= 0:
        raise ValueError(f"the history window needs a positive number of months, got {months!r}")
    last = add_months(month_start(round_start), -1)
    if until is not None:
        last = min(last, add_months(month_start(until), -1))
    return add_months(last, -(months - 1)), month_end(last)


def horizon(round_start: dt.date, months: int = DEFAULT_DEMAND_PARAMS.horizon_months) -> tuple[dt.date, ...]:
    """The agreement year's months (first days), from the round's first month (step 4)."""
    first = month_start(round_start)
    return tuple(add_months(first, i) for i in range(months))


# --------------------------------------------------------------------------------------------------
# Monthly series


@dataclass(frozen=True, slots=True)
class MonthUse:
    """One month of history: use in item units and, when known, accepted purchases in item units."""

    month: dt.date
    used: Decimal
    purchased: Decimal | None = None

    def __post_init__(self) -> None:
        if self.month.day != 1:
            raise ValueError(f"a month is given by its first day, got {self.month}")
        for name in ("used", "purchased"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, Decimal) or not value.is_finite()):
                raise ValueError(f"{name} must be a finite Decimal, got {value!r}")


def monthly_series(
    first: dt.date,
    last: dt.date,
    used: Mapping[dt.date, Decimal],
    purchased: Mapping[dt.date, Decimal] | None = None,
) -> tuple[MonthUse, ...]:
    """Every month from ``first``'s to ``last``'s, with use (missing = 0, negative = 0) and purchases.

    ``used`` and ``purchased`` are keyed by any day of the month they sum; ``purchased=None`` means no
    purchase series (no shortage detection). Keys outside the window are ignored.
    """
    start, stop = month_start(first), month_start(last)
    if stop < start:
        raise ValueError(f"window end {last} is before window start {first}")
    use_by: dict[dt.date, Decimal] = {}
    for day, qty in used.items():
        key = month_start(day)
        use_by[key] = use_by.get(key, ZERO) + qty
    bought_by: dict[dt.date, Decimal] | None = None
    if purchased is not None:
        bought_by = {}
        for day, qty in purchased.items():
            key = month_start(day)
            bought_by[key] = bought_by.get(key, ZERO) + qty
    out: list[MonthUse] = []
    for i in range(months_between(start, stop) + 1):
        month = add_months(start, i)
        bought = None if bought_by is None else bought_by.get(month, ZERO)
        out.append(MonthUse(month, max(use_by.get(month, ZERO), ZERO), bought))
    return tuple(out)


def _check_series(series: Sequence[MonthUse]) -> None:
    for before, after in itertools.pairwise(series):
        if months_between(before.month, after.month) != 1:
            raise ValueError(f"months must be consecutive: {before.month} then {after.month}")


def _median(values: Sequence[Decimal]) -> Decimal:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def detect_shortages(
    series: Sequence[MonthUse], *, params: DemandParams = DEFAULT_DEMAND_PARAMS
) -> tuple[dt.date, ...]:
    """Months detected as shortage months from purchases and use (step 2 (a)–(c)), in date order."""
    _check_series(series)
    bought = [m for m in series if m.purchased is not None and m.purchased > 0]
    if not bought:
        return ()
    with localcontext(Context(prec=PRECISION)):
        floor = params.shortage_ratio * _median([m.used for m in bought])
        first, last = bought[0].month, bought[-1].month
        return tuple(
            m.month
            for m in series
            if m.purchased is not None and m.purchased <= 0 and first < m.month < last and m.used < floor
        )


# --------------------------------------------------------------------------------------------------
# Forecast


@dataclass(frozen=True, slots=True)
class Line:
    """``intercept + slope × t`` (t = months since the window's first month)."""

    intercept: Decimal
    slope: Decimal

    def at(self, t: int) -> Decimal:
        return self.intercept + self.slope * t


def least_squares(points: Iterable[tuple[int, Decimal]]) -> Line:
    """Ordinary least-squares line through ``(t, y)``; flat at the mean when the t's do not vary.

    Needs at least one point.
    """
    pts = list(points)
    if not pts:
        raise ValueError("a line needs at least one point")
    with localcontext(Context(prec=PRECISION)):
        n = Decimal(len(pts))
        t_mean = sum((Decimal(t) for t, _ in pts), ZERO) / n
        y_mean = sum((y for _, y in pts), ZERO) / n
        sxx = sum(((t - t_mean) ** 2 for t, _ in pts), ZERO)
        if sxx == 0:
            return Line(y_mean, ZERO)
        sxy = sum(((t - t_mean) * (y - y_mean) for t, y in pts), ZERO)
        slope = sxy / sxx
        return Line(y_mean - slope * t_mean, slope)


@dataclass(frozen=True, slots=True)
class DemandForecast:
    """A suggestion and how it was made (stored as the line's ``method`` JSON, R-H2)."""

    suggested_qty: Decimal
    method: Method
    history_qty: Decimal
    last_year_qty: Decimal
    months_used: tuple[dt.date, ...]
    first_use: dt.date | None
    marked: tuple[dt.date, ...]
    detected: tuple[dt.date, ...]
    line: Line | None
    seasonal: tuple[Decimal, ...] | None
    projection: tuple[tuple[dt.date, Decimal], ...]

    @property
    def excluded(self) -> tuple[dt.date, ...]:
        """Marked and detected months, in date order."""
        return tuple(sorted(set(self.marked) | set(self.detected)))

    def as_json(self, places: int = 4) -> dict[str, object]:
        """The forecast as plain JSON values (quantities as strings, to ``places`` decimals)."""
        quantum = Decimal(1).scaleb(-places)

        def text(value: Decimal) -> str:
            return str(value.quantize(quantum, rounding=ROUND_HALF_UP))

        return {
            "method": str(self.method),
            "suggested_qty": str(self.suggested_qty),
            "history_qty": text(self.history_qty),
            "last_year_qty": text(self.last_year_qty),
            "months_used": [month_label(m) for m in self.months_used],
            "first_use": None if self.first_use is None else month_label(self.first_use),
            "marked": [month_label(m) for m in self.marked],
            "detected": [month_label(m) for m in self.detected],
            "excluded": [month_label(m) for m in self.excluded],
            "intercept": None if self.line is None else text(self.line.intercept),
            "slope": None if self.line is None else text(self.line.slope),
            "seasonal": None if self.seasonal is None else [text(s) for s in self.seasonal],
            "projection": {month_label(m): text(q) for m, q in self.projection},
            "rounding": "sum of the exact monthly projections, half-up to a whole unit",
        }


def _seasonal_indices(points: Sequence[tuple[int, dt.date, Decimal]]) -> tuple[Decimal, ...] | None:
    """Ratio-to-trend indices per calendar month scaled to mean 1, or None when one cannot be had."""
    first = least_squares((t, y) for t, _, y in points)
    ratios: dict[int, list[Decimal]] = {}
    for t, month, y in points:
        level = first.at(t)
        if level > 0:
            ratios.setdefault(month.month, []).append(y / level)
    means = [sum(ratios[c], ZERO) / len(ratios[c]) for c in range(1, 13) if c in ratios]
    total = sum(means, ZERO)
    if len(means) < MONTHS_PER_YEAR or total == 0:
        return None
    return tuple(mean * MONTHS_PER_YEAR / total for mean in means)


def forecast_demand(
    series: Sequence[MonthUse],
    round_start: dt.date,
    *,
    marked: Collection[dt.date] = (),
    params: DemandParams = DEFAULT_DEMAND_PARAMS,
) -> DemandForecast:
    """The suggested pre-purchase quantity for the agreement year from ``round_start`` (module docstring).

    ``series`` is the window's consecutive months (``monthly_series``); ``marked`` the months the
    pharmacy marks as shortage (any day of the month; months outside the window are ignored).
    """
    _check_series(series)
    if not series:
        raise ValueError("the history window has no months")
    window_start = series[0].month
    if months_between(series[-1].month, month_start(round_start)) < 1:
        raise ValueError(f"the round starting {round_start} does not begin after the window")
    in_window = {m.month for m in series}
    marked_months = tuple(sorted({month_start(d) for d in marked} & in_window))
    detected = tuple(m for m in detect_shortages(series, params=params) if m not in marked_months)
    excluded = set(marked_months) | set(detected)
    months = horizon(round_start, params.horizon_months)
    with localcontext(Context(prec=PRECISION)):
        history = sum((m.used for m in series), ZERO)
        last_year = sum((m.used for m in series[-MONTHS_PER_YEAR:]), ZERO)
        first_use = next((m.month for m in series if m.used > 0), None)
        used = [
            (months_between(window_start, m.month), m.month, m.used)
            for m in series
            if m.month not in excluded and first_use is not None and m.month >= first_use
        ]
        line: Line | None = None
        seasonal: tuple[Decimal, ...] | None = None
        if not used:
            method = Method.NO_HISTORY
            projection = tuple((month, ZERO) for month in months)
        else:
            if len(used) < params.min_trend_months:
                method = Method.MEAN
                line = Line(sum((y for _, _, y in used), ZERO) / len(used), ZERO)
            else:
                method = Method.TREND
                covered = {month.month for _, month, _ in used}
                if len(series) >= params.seasonal_min_months and len(covered) == MONTHS_PER_YEAR:
                    seasonal = _seasonal_indices(used)
                if seasonal is None:
                    line = least_squares((t, y) for t, _, y in used)
                else:
                    method = Method.SEASONAL_TREND
                    index = seasonal
                    line = least_squares((t, y / index[m.month - 1]) for t, m, y in used if index[m.month - 1] > 0)
            fitted = line
            factors = seasonal or (ONE,) * MONTHS_PER_YEAR
            projection = tuple(
                (month, max(fitted.at(months_between(window_start, month)) * factors[month.month - 1], ZERO))
                for month in months
            )
        total = sum((q for _, q in projection), ZERO)
        suggested = total.quantize(WHOLE, rounding=ROUND_HALF_UP)
    return DemandForecast(
        suggested_qty=suggested,
        method=method,
        history_qty=history,
        last_year_qty=last_year,
        months_used=tuple(month for _, month, _ in used),
        first_use=first_use,
        marked=marked_months,
        detected=detected,
        line=line,
        seasonal=seasonal,
        projection=projection,
    )
