"""Pre-purchase demand suggested from the hospital's own history (R-H2; XJ 五(二)1); pure, no database.

Every expected number below is worked out by hand in the comment beside it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from jicai.policy.demand import (
    DEFAULT_DEMAND_PARAMS,
    DemandParams,
    Line,
    Method,
    MonthUse,
    add_months,
    detect_shortages,
    forecast_demand,
    history_window,
    horizon,
    least_squares,
    month_end,
    month_label,
    month_start,
    monthly_series,
    months_between,
)

D = Decimal
M = dt.date


def series(first: dt.date, used: list[int | str], purchased: list[int] | None = None) -> tuple[MonthUse, ...]:
    """Consecutive months from ``first`` with the given use (and purchases)."""
    return tuple(
        MonthUse(add_months(first, i), D(u), None if purchased is None else D(purchased[i])) for i, u in enumerate(used)
    )


# --- parameters and months ------------------------------------------------------------------------


def test_defaults_follow_r_h2() -> None:
    assert (
        DemandParams(
            history_months=24, shortage_ratio=D("0.5"), min_trend_months=6, seasonal_min_months=24, horizon_months=12
        )
        == DEFAULT_DEMAND_PARAMS
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"history_months": 0}, "history_months must be a positive int"),
        ({"horizon_months": True}, "horizon_months must be a positive int"),
        ({"min_trend_months": 1.5}, "min_trend_months must be a positive int"),
        ({"shortage_ratio": D("1.1")}, "shortage_ratio"),
        ({"shortage_ratio": D("-0.1")}, "shortage_ratio"),
        ({"shortage_ratio": 0.5}, "shortage_ratio"),
        ({"shortage_ratio": D("NaN")}, "shortage_ratio"),
    ],
)
def test_bad_parameters_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DemandParams(**kwargs)  # type: ignore[arg-type]


def test_month_arithmetic() -> None:
    assert month_start(M(2022, 2, 17)) == M(2022, 2, 1)
    assert add_months(M(2022, 11, 1), 3) == M(2023, 2, 1)
    assert add_months(M(2022, 1, 1), -1) == M(2021, 12, 1)
    assert months_between(M(2021, 11, 30), M(2023, 1, 1)) == 14
    assert months_between(M(2023, 1, 1), M(2022, 12, 1)) == -1
    assert month_label(M(2022, 3, 1)) == "2022-03"
    assert month_end(M(2024, 2, 1)) == M(2024, 2, 29)  # leap year


def test_history_window_is_whole_months_before_the_round() -> None:
    # given a round starting 2023-01-01 and a 24-month window: 2021-01 … 2022-12
    assert history_window(M(2023, 1, 1), 24) == (M(2021, 1, 1), M(2022, 12, 31))
    # a round starting mid-month: the window still ends with the month before (October)
    assert history_window(M(2022, 11, 15), 12) == (M(2021, 11, 1), M(2022, 10, 31))
    # a plan made on 2022-09-20 sees the months up to August only
    assert history_window(M(2022, 11, 1), 12, until=M(2022, 9, 20)) == (M(2021, 9, 1), M(2022, 8, 31))
    # a plan made after the round started: the round's start decides
    assert history_window(M(2022, 11, 1), 12, until=M(2023, 5, 1)) == (M(2021, 11, 1), M(2022, 10, 31))


@pytest.mark.parametrize("months", [0, -3, True])
def test_history_window_needs_months(months: int) -> None:
    with pytest.raises(ValueError, match="positive number of months"):
        history_window(M(2023, 1, 1), months)


def test_horizon_is_the_agreement_year_from_the_round_month() -> None:
    months = horizon(M(2022, 11, 15))
    assert (len(months), months[0], months[-1]) == (12, M(2022, 11, 1), M(2023, 10, 1))
    assert horizon(M(2023, 1, 1), 2) == (M(2023, 1, 1), M(2023, 2, 1))


# --- monthly series -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"month": M(2022, 1, 2), "used": D(1)}, "first day"),
        ({"month": M(2022, 1, 1), "used": 1}, "used must be a finite Decimal"),
        ({"month": M(2022, 1, 1), "used": D(1), "purchased": D("Infinity")}, "purchased must be a finite Decimal"),
    ],
)
def test_bad_month_use_is_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MonthUse(**kwargs)  # type: ignore[arg-type]


def test_monthly_series_fills_every_month_of_the_window() -> None:
    # given use on two days of January, a net return in February, nothing in March, and a day outside
    used = {M(2022, 1, 3): D(40), M(2022, 1, 20): D(60), M(2022, 2, 5): D(-5), M(2021, 12, 31): D(999)}
    got = monthly_series(M(2022, 1, 1), M(2022, 3, 31), used)
    # then January sums to 100, February's net return counts as 0, March is 0; no purchases known
    assert got == (
        MonthUse(M(2022, 1, 1), D(100)),
        MonthUse(M(2022, 2, 1), D(0)),
        MonthUse(M(2022, 3, 1), D(0)),
    )
    with_purchases = monthly_series(M(2022, 1, 1), M(2022, 2, 28), used, {M(2022, 2, 1): D(30), M(2022, 2, 9): D(20)})
    assert [(m.used, m.purchased) for m in with_purchases] == [(D(100), D(0)), (D(0), D(50))]


def test_monthly_series_window_must_be_in_order() -> None:
    with pytest.raises(ValueError, match="before window start"):
        monthly_series(M(2022, 3, 1), M(2022, 2, 28), {})


def test_months_must_be_consecutive() -> None:
    gap = (MonthUse(M(2022, 1, 1), D(1)), MonthUse(M(2022, 3, 1), D(1)))
    with pytest.raises(ValueError, match="consecutive"):
        detect_shortages(gap)
    with pytest.raises(ValueError, match="consecutive"):
        forecast_demand(gap, M(2022, 4, 1))


# --- shortage months ------------------------------------------------------------------------------

JAN = M(2022, 1, 1)
#            J    F    M    A    M    J   J    A    S    O    N  D
USE_2022 = [0, 100, 100, 100, 100, 10, 100, 100, 100, 100, 0, 0]
BOUGHT = [0, 300, 0, 0, 300, 0, 0, 0, 0, 300, 0, 0]  # purchases in February, May and October


def test_a_month_without_purchases_and_with_depressed_use_is_a_shortage() -> None:
    # given purchases in Feb, May and Oct (median use of those months = 100, so the floor is 50)
    got = detect_shortages(series(JAN, USE_2022, BOUGHT))
    # then June (no purchase, between purchases, use 10 < 50) is a shortage month;
    # March/April/July–September had no purchase but normal use (stock): not shortages;
    # January, November and December are outside the purchases (before the first / after the last)
    assert got == (M(2022, 6, 1),)


def test_median_of_an_even_number_of_purchase_months() -> None:
    # given purchases in Feb, May, Aug, Oct with use 100, 100, 60, 100: median (100 + 100) / 2 = 100, floor 50
    use = [100, 100, 100, 100, 100, 49, 50, 60, 100, 100, 100, 100]
    bought = [0, 1, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0]
    # then June (49 < 50) is a shortage; July (50, not below 50) is not
    assert detect_shortages(series(JAN, use, bought)) == (M(2022, 6, 1),)
    # with a floor of 0 nothing is ever below it
    assert detect_shortages(series(JAN, use, bought), params=DemandParams(shortage_ratio=D(0))) == ()


def test_no_purchase_series_detects_nothing() -> None:
    assert detect_shortages(series(JAN, USE_2022)) == ()
    assert detect_shortages(series(JAN, USE_2022, [0] * 12)) == ()


# --- least squares --------------------------------------------------------------------------------


def test_least_squares_line() -> None:
    # y = 100 + 10t exactly
    assert least_squares([(t, D(100 + 10 * t)) for t in range(12)]) == Line(D(100), D(10))
    # one point (or one t): flat at the mean
    assert least_squares([(4, D(7))]) == Line(D(7), D(0))
    assert least_squares([(4, D(7)), (4, D(9))]) == Line(D(8), D(0))
    assert Line(D(100), D(10)).at(3) == D(130)
    with pytest.raises(ValueError, match="at least one point"):
        least_squares([])


# --- forecast -------------------------------------------------------------------------------------


def test_trend_only_with_twelve_months() -> None:
    # given 2022-01 … 2022-12 with use 100, 110, …, 210 (a line: 100 + 10t)
    history = series(JAN, [100 + 10 * t for t in range(12)])
    # when the round starts on 2023-01-01 (t = 12 … 23)
    got = forecast_demand(history, M(2023, 1, 1))
    # then 12 × 100 + 10 × (12 + … + 23) = 1,200 + 2,100 = 3,300
    assert (got.method, got.suggested_qty) == (Method.TREND, D(3300))
    assert got.line == Line(D(100), D(10))
    assert got.seasonal is None
    assert got.projection[0] == (M(2023, 1, 1), D(220))
    assert got.projection[-1] == (M(2023, 12, 1), D(330))
    assert got.history_qty == D(1860)  # 12 × 100 + 10 × 66
    assert got.last_year_qty == D(1860)
    assert (len(got.months_used), got.excluded) == (12, ())


def test_a_gap_between_window_and_round_is_extrapolated_but_not_counted() -> None:
    history = series(JAN, [100 + 10 * t for t in range(12)])
    # the round starts 2023-03-01: t = 14 … 25 → 1,200 + 10 × (14 + … + 25) = 1,200 + 2,340
    assert forecast_demand(history, M(2023, 3, 1)).suggested_qty == D(3540)


def test_marked_months_are_left_out_of_the_fit() -> None:
    # given the same line, but June had a supply interruption (use 0), marked by the pharmacy
    use: list[int | str] = [100 + 10 * t for t in range(12)]
    use[5] = 0
    got = forecast_demand(series(JAN, use), M(2023, 1, 1), marked=[M(2022, 6, 15), M(2020, 1, 1)])
    # then the fit on the 11 other months is the same line, and the suggestion the same 3,300;
    # a marked month outside the window is ignored
    assert (got.suggested_qty, got.marked, got.detected, got.excluded) == (
        D(3300),
        (M(2022, 6, 1),),
        (),
        (M(2022, 6, 1),),
    )
    assert len(got.months_used) == 11
    assert got.history_qty == D(1860 - 150)


def test_detected_shortages_are_left_out_and_marked_ones_not_counted_twice() -> None:
    # given 100 a month except June (10, no purchase between the Feb/May/Oct purchases: detected)
    use: list[int | str] = [100] * 12
    use[5] = 10
    bought = BOUGHT
    got = forecast_demand(series(JAN, use, bought), M(2023, 1, 1))
    assert got.detected == (M(2022, 6, 1),)
    # 11 months of 100: flat line at 100 → 1,200
    assert (got.method, got.suggested_qty) == (Method.TREND, D(1200))
    # when the pharmacy also marks June, it is listed as marked, not as detected
    both = forecast_demand(series(JAN, use, bought), M(2023, 1, 1), marked=[M(2022, 6, 1)])
    assert (both.marked, both.detected, both.suggested_qty) == ((M(2022, 6, 1),), (), D(1200))


def test_a_falling_trend_never_projects_negative_use() -> None:
    # given 230, 220, …, 120 (230 − 10t) and a round from 2023-03 (t = 14 … 25)
    got = forecast_demand(series(JAN, [230 - 10 * t for t in range(12)]), M(2023, 3, 1))
    # then 90, 80, …, 0 for t = 14 … 23 and 0 (not −10, −20) for t = 24, 25: 450
    assert got.suggested_qty == D(450)
    assert got.projection[-1] == (M(2024, 2, 1), D(0))


def test_few_months_give_their_mean_rounded_half_up() -> None:
    # given only two months left (2 and 3 units) after marking the rest
    history = series(JAN, [2, 3, 50, 50])
    marked = [M(2022, 3, 1), M(2022, 4, 1)]
    got = forecast_demand(history, M(2022, 5, 1), marked=marked, params=DemandParams(horizon_months=1))
    # then a flat mean of 2.5 for one month, rounded half-up: 3 (half-even would give 2)
    assert (got.method, got.suggested_qty, got.line) == (Method.MEAN, D(3), Line(D("2.5"), D(0)))
    # over a year: 12 × 2.5 = 30
    assert forecast_demand(history, M(2022, 5, 1), marked=marked).suggested_qty == D(30)


def test_no_months_left_suggest_zero() -> None:
    history = series(JAN, [5, 5])
    got = forecast_demand(history, M(2022, 3, 1), marked=[JAN, M(2022, 2, 1)])
    assert (got.method, got.suggested_qty, got.line, got.months_used) == (Method.NO_HISTORY, D(0), None, ())
    assert [q for _, q in got.projection] == [D(0)] * 12
    assert got.as_json()["intercept"] is None


def test_the_round_must_start_after_the_window() -> None:
    history = series(JAN, [1, 1])
    with pytest.raises(ValueError, match="does not begin after the window"):
        forecast_demand(history, M(2022, 2, 10))
    with pytest.raises(ValueError, match="no months"):
        forecast_demand((), M(2022, 2, 10))


SEASON = [150, 100, 100, 100, 100, 50, 50, 100, 100, 100, 100, 150]
"""A flat level of 100 with a winter peak (×1.5) and a summer trough (×0.5); symmetric about mid-year,
so the least-squares slope over two whole years is 0: Σ (t − 11.5)·y = Σ_c y_c (2c − 11) = 0."""


def test_seasonal_index_with_twenty_four_months() -> None:
    # given two years (2021-01 … 2022-12) of the same seasonal pattern
    history = series(M(2021, 1, 1), SEASON + SEASON)
    got = forecast_demand(history, M(2023, 1, 1))
    # then ratio to the flat line at 100 gives the indices 1.5, 1, …, 0.5, 0.5, …, 1.5 (mean 1)
    assert got.method is Method.SEASONAL_TREND
    assert got.seasonal == tuple(D(v) / 100 for v in SEASON)
    assert got.line == Line(D(100), D(0))
    # projected 2023: the pattern again, 1,200 in all
    assert [q for _, q in got.projection] == [D(v) for v in SEASON]
    assert got.suggested_qty == D(1200)
    # a round starting in July projects the same months in another order, the same total
    july = forecast_demand(history, M(2023, 7, 1))
    assert july.projection[0] == (M(2023, 7, 1), D(50))
    assert july.suggested_qty == D(1200)
    assert got.last_year_qty == D(1200)
    assert got.history_qty == D(2400)


def test_seasonality_needs_every_calendar_month() -> None:
    # given the two years, but both Januaries marked: January has no month left → trend only
    history = series(M(2021, 1, 1), SEASON + SEASON)
    got = forecast_demand(history, M(2023, 1, 1), marked=[M(2021, 1, 1), M(2022, 1, 1)])
    assert (got.method, got.seasonal) == (Method.TREND, None)
    # fewer than 24 months: trend only
    short = forecast_demand(series(M(2021, 2, 1), (SEASON + SEASON)[1:]), M(2023, 1, 1))
    assert short.method is Method.TREND


def test_seasonality_falls_back_to_trend_when_a_month_has_no_ratio() -> None:
    # given 1 unit in January 2021, nothing until 100 in each of the last two months, and January 2022
    # marked: the first line (slope ≈ 1.9, intercept ≈ −13.5) is ≤ 0 at t = 0, January's only month left,
    # so January gets no ratio to trend
    use = [1] + [0] * 21 + [100, 100]
    history = series(M(2021, 1, 1), use)
    got = forecast_demand(history, M(2023, 1, 1), marked=[M(2022, 1, 1)])
    assert (got.method, got.seasonal) == (Method.TREND, None)
    assert got.line == least_squares((t, D(y)) for t, y in enumerate(use) if t != 12)


def test_months_with_a_zero_index_are_left_out_of_the_level() -> None:
    # given the same two years unmarked: January 2022 (line > 0, use 0) gives January a ratio of 0;
    # only November and December have use where the line is positive
    use = [1] + [0] * 21 + [100, 100]
    got = forecast_demand(series(M(2021, 1, 1), use), M(2023, 1, 1))
    assert got.method is Method.SEASONAL_TREND
    assert got.seasonal is not None
    assert [i for i, s in enumerate(got.seasonal) if s > 0] == [10, 11]  # November and December
    # the projection is 0 in every month whose index is 0
    assert all(q == 0 for m, q in got.projection if m.month < 11)
    assert sum(got.seasonal) == 12


def test_as_json_keeps_four_places_and_labels() -> None:
    history = series(JAN, [100 + 10 * t for t in range(12)])
    got = forecast_demand(history, M(2023, 1, 1), marked=[M(2022, 2, 1)]).as_json()
    assert got["method"] == "trend"
    assert got["suggested_qty"] == "3300"
    assert got["excluded"] == ["2022-02"]
    assert got["marked"] == ["2022-02"]
    assert got["detected"] == []
    assert got["intercept"] == "100.0000"
    assert got["slope"] == "10.0000"
    assert got["seasonal"] is None
    projection = got["projection"]
    assert isinstance(projection, dict)
    assert projection["2023-01"] == "220.0000"
    assert got["history_qty"] == "1860.0000"
    assert got["last_year_qty"] == "1860.0000"
    assert len(got["months_used"]) == 11  # type: ignore[arg-type]
    seasonal = forecast_demand(series(M(2021, 1, 1), SEASON + SEASON), M(2023, 1, 1)).as_json()
    assert seasonal["seasonal"] == ["1.5000"] + ["1.0000"] * 4 + ["0.5000"] * 2 + ["1.0000"] * 4 + ["1.5000"]


def test_months_before_the_first_use_are_not_history() -> None:
    # given a generic first used in April 2022: 0, 0, 0, then 130, 140, … (100 + 10t from t = 3)
    history = series(JAN, [0, 0, 0] + [100 + 10 * t for t in range(3, 12)])
    got = forecast_demand(history, M(2023, 1, 1))
    # then January–March are left out and the line through April–December is 100 + 10t: 3,300
    assert (got.first_use, len(got.months_used), got.suggested_qty) == (M(2022, 4, 1), 9, D(3300))
    assert got.as_json()["first_use"] == "2022-04"
    # no use at all: nothing to go on
    none = forecast_demand(series(JAN, [0] * 12), M(2023, 1, 1))
    assert (none.method, none.first_use, none.suggested_qty) == (Method.NO_HISTORY, None, D(0))
