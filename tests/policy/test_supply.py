"""Supply assurance rules (R-I2 affected days, R-I3 lateness, fill rate and credit score, R-I4 stock
cover), pure tests without a database."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jicai.policy.supply import (
    CREDIT_KIND_WEIGHTS,
    DEFAULT_CREDIT,
    DEFAULT_DELIVERY,
    FILL_RATE_TARGET,
    LATE_DELIVERY_DAYS,
    SEVERITY_FACTORS,
    STOCK_COVER_ALERT_MONTHS,
    CreditKind,
    CreditParams,
    DayInterval,
    DeliveryParams,
    Severity,
    adjusted_completion,
    affected_day_count,
    clip_and_merge,
    credit_score,
    delivery_days,
    fill_rate_severity,
    is_late,
    late_delivery_severity,
    month_end,
    monthly_demand,
    parse_period,
    rate,
    standing_of,
    stock_cover,
    stock_is_low,
)

D = dt.date
Q = Decimal


# --------------------------------------------------------------------------- periods


@pytest.mark.parametrize(
    ("label", "start", "end", "months"),
    [
        ("2026", D(2026, 1, 1), D(2026, 12, 31), 12),
        ("2026Q1", D(2026, 1, 1), D(2026, 3, 31), 3),
        ("2026q4", D(2026, 10, 1), D(2026, 12, 31), 3),
        ("2024-02", D(2024, 2, 1), D(2024, 2, 29), 1),
        (" 2026-12 ", D(2026, 12, 1), D(2026, 12, 31), 1),
    ],
)
def test_periods_are_calendar_year_quarter_or_month(label: str, start: dt.date, end: dt.date, months: int) -> None:
    period = parse_period(label)
    assert (period.start, period.end, len(period.months())) == (start, end, months)


def test_a_quarter_spans_its_three_months_across_no_year_end() -> None:
    assert parse_period("2026Q4").months() == ("2026-10", "2026-11", "2026-12")
    assert parse_period("2026Q4").label == "2026Q4"


@pytest.mark.parametrize("label", ["26", "2026Q5", "2026-13", "2026-00", "2026/03", ""])
def test_unreadable_periods_are_refused(label: str) -> None:
    with pytest.raises(ValueError, match="not a period"):
        parse_period(label)


def test_month_end_handles_december_and_leap_years() -> None:
    assert month_end(2026, 12) == D(2026, 12, 31)
    assert month_end(2024, 2) == D(2024, 2, 29)


# --------------------------------------------------------------------------- affected days (R-I2)


def test_interval_counts_both_ends_and_refuses_a_reversed_one() -> None:
    assert DayInterval(D(2026, 3, 1), D(2026, 3, 1)).days == 1
    with pytest.raises(ValueError, match="ends before"):
        DayInterval(D(2026, 3, 2), D(2026, 3, 1))


def test_spans_are_clipped_to_the_year_and_merged_when_they_overlap_or_touch() -> None:
    first, last = D(2026, 1, 1), D(2026, 12, 31)
    spans = [
        (D(2025, 12, 20), D(2026, 1, 10)),  # starts before the year: clipped to 1 Jan
        (D(2026, 1, 11), D(2026, 1, 15)),  # touches the previous one: merged
        (D(2026, 3, 1), D(2026, 3, 31)),
        (D(2026, 3, 10), D(2026, 3, 20)),  # inside the previous one: swallowed
        (D(2026, 12, 20), None),  # still open: runs to the end of the window
        (D(2027, 1, 5), None),  # after the window: dropped
    ]
    merged = clip_and_merge(spans, first, last)
    assert merged == (
        DayInterval(D(2026, 1, 1), D(2026, 1, 15)),
        DayInterval(D(2026, 3, 1), D(2026, 3, 31)),
        DayInterval(D(2026, 12, 20), D(2026, 12, 31)),
    )
    assert affected_day_count(merged) == 15 + 31 + 12


def test_an_empty_window_has_no_affected_days() -> None:
    assert clip_and_merge([(D(2026, 1, 1), None)], D(2026, 2, 1), D(2026, 1, 31)) == ()


def test_completion_with_and_without_the_affected_days() -> None:
    # Given a 365-day year, 730 of 1000 agreed counted by 30 June, and a 31-day interruption in March
    result = adjusted_completion(
        Q(730), Q(1000), D(2026, 1, 1), D(2026, 12, 31), [(D(2026, 3, 1), D(2026, 3, 31))], as_of=D(2026, 6, 30)
    )
    # Then completion is 0.73 either way of counting the days of agreement, prorated without March:
    # 730 ÷ (1000 × 334 / 365) = 0.797754…
    assert (result.period_days, result.affected_days) == (365, 31)
    assert result.completion == Q("0.730000")
    assert result.completion_unaffected == Q("0.797754")
    # elapsed 181 of 365 days; without March 150 of 334
    assert result.elapsed == Q("0.495890")
    assert result.elapsed_unaffected == Q("0.449102")


def test_days_after_as_of_are_not_affected_yet() -> None:
    result = adjusted_completion(
        Q(0), Q(100), D(2026, 1, 1), D(2026, 1, 10), [(D(2026, 1, 5), None)], as_of=D(2026, 1, 6)
    )
    assert result.affected_days == 2  # 5 and 6 January
    assert result.elapsed == Q("0.600000")
    assert result.elapsed_unaffected == Q("0.500000")  # (6 − 2) ÷ (10 − 2)


def test_every_day_affected_or_nothing_agreed_leaves_no_ratio() -> None:
    whole = adjusted_completion(
        Q(5), Q(100), D(2026, 1, 1), D(2026, 1, 10), [(D(2026, 1, 1), None)], as_of=D(2026, 2, 1)
    )
    assert (whole.completion, whole.completion_unaffected, whole.elapsed_unaffected) == (Q("0.050000"), None, None)
    nothing = adjusted_completion(Q(5), Q(0), D(2026, 1, 1), D(2026, 1, 10), [], as_of=D(2026, 1, 5))
    assert (nothing.completion, nothing.completion_unaffected) == (None, None)


def test_before_the_year_starts_nothing_has_elapsed() -> None:
    result = adjusted_completion(Q(0), Q(100), D(2026, 1, 1), D(2026, 12, 31), [], as_of=D(2025, 12, 1))
    assert (result.elapsed, result.affected_days, result.elapsed_unaffected) == (Q(0), 0, Q(0))


def test_a_reversed_year_is_refused() -> None:
    with pytest.raises(ValueError, match="ends before"):
        adjusted_completion(Q(0), Q(1), D(2026, 2, 1), D(2026, 1, 1), [], as_of=D(2026, 1, 1))


@given(
    st.lists(st.tuples(st.integers(0, 400), st.one_of(st.none(), st.integers(0, 60))), max_size=8),
    st.integers(0, 400),
)
def test_merged_intervals_never_overlap_and_count_each_affected_day_once(
    raw: list[tuple[int, int | None]], as_of_day: int
) -> None:
    first = D(2026, 1, 1)
    last = min(D(2026, 12, 31), first + dt.timedelta(days=as_of_day))
    spans = [(first + dt.timedelta(days=s), None if n is None else first + dt.timedelta(days=s + n)) for s, n in raw]
    merged = clip_and_merge(spans, first, last)
    for a, b in itertools.pairwise(merged):
        assert a.end + dt.timedelta(days=1) < b.start
    days = {
        first + dt.timedelta(days=i)
        for i in range((last - first).days + 1)
        if any(s <= first + dt.timedelta(days=i) and (e is None or first + dt.timedelta(days=i) <= e) for s, e in spans)
    }
    assert affected_day_count(merged) == len(days)


# --------------------------------------------------------------------------- deliveries (R-I3, R-D4)


def test_default_threshold_is_two_days() -> None:
    assert LATE_DELIVERY_DAYS == 2 == DEFAULT_DELIVERY.late_days
    assert FILL_RATE_TARGET == Q("0.95") == DEFAULT_DELIVERY.fill_rate_target


def test_lateness_counts_days_after_the_order() -> None:
    assert delivery_days(D(2026, 3, 1), D(2026, 3, 4)) == 3
    assert delivery_days(None, D(2026, 3, 4)) is None
    assert delivery_days(D(2026, 3, 1), None) is None
    assert not is_late(D(2026, 3, 1), D(2026, 3, 3))  # 2 days: on time
    assert is_late(D(2026, 3, 1), D(2026, 3, 4))  # 3 days: late
    assert not is_late(D(2026, 3, 1), None)  # not delivered: the fill rate says so, not lateness
    assert is_late(D(2026, 3, 1), D(2026, 3, 2), DeliveryParams(late_days=0))


@pytest.mark.parametrize(
    ("days", "severity"),
    [(3, Severity.MINOR), (4, Severity.MINOR), (5, Severity.MAJOR), (8, Severity.MAJOR), (9, Severity.SEVERE)],
)
def test_the_worst_delay_sets_the_severity(days: int, severity: Severity) -> None:
    assert late_delivery_severity(days) is severity


def test_rate_is_four_places_half_up_and_unknown_without_orders() -> None:
    assert rate(2, 3) == Q("0.6667")
    assert rate(Q("1"), Q("8")) == Q("0.1250")
    assert rate(0, 0) is None


@pytest.mark.parametrize(
    ("fill", "severity"),
    [
        ("0.95", None),
        ("1", None),
        ("0.9499", Severity.MINOR),
        ("0.80", Severity.MINOR),
        ("0.7999", Severity.MAJOR),
        ("0.60", Severity.MAJOR),
        ("0.5999", Severity.SEVERE),
    ],
)
def test_a_fill_rate_below_target_is_a_shortage(fill: str, severity: Severity | None) -> None:
    assert fill_rate_severity(Q(fill)) is severity


@pytest.mark.parametrize(
    "kw",
    [
        {"late_days": -1},
        {"fill_rate_target": Q("1.1")},
        {"major_fill_rate": Q("0.5"), "severe_fill_rate": Q("0.6")},
        {"major_factor": 0},
        {"major_factor": 5, "severe_factor": 4},
    ],
)
def test_inconsistent_delivery_parameters_are_refused(kw: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must"):
        DeliveryParams(**kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- credit score (R-I3)


def test_a_clean_record_scores_100_and_stands_a() -> None:
    score = credit_score({})
    assert (score.score, score.standing, score.events, dict(score.deductions)) == (Q(100), "A", 0, {})


def test_each_event_deducts_its_kind_weight_times_its_severity() -> None:
    # 3 minor late deliveries (3 × 2 × 1), 1 major shortage (5 × 2), 1 severe quality problem (8 × 3)
    counts = {
        (CreditKind.LATE_DELIVERY, Severity.MINOR): 3,
        (CreditKind.SHORTAGE, Severity.MAJOR): 1,
        (CreditKind.QUALITY_PROBLEM, Severity.SEVERE): 1,
    }
    score = credit_score(counts)
    assert score.score == Q(100 - 6 - 10 - 24) == Q(60)
    assert score.standing == "C"
    assert score.events == 5
    assert dict(score.deductions) == {"late_delivery": Q(6), "quality_problem": Q(24), "shortage": Q(10)}


def test_the_score_never_falls_below_zero() -> None:
    score = credit_score({(CreditKind.MALICIOUS_INTERRUPTION, Severity.SEVERE): 3})  # 3 × 20 × 3 = 180
    assert (score.score, score.standing) == (Q(0), "D")


@pytest.mark.parametrize(
    ("score", "standing"),
    [("100", "A"), ("90", "A"), ("89.99", "B"), ("75", "B"), ("74", "C"), ("60", "C"), ("59", "D"), ("0", "D")],
)
def test_standings_by_threshold(score: str, standing: str) -> None:
    assert standing_of(Q(score)) == standing


def test_weights_and_thresholds_are_parameters() -> None:
    params = CreditParams(
        start=Q(10),
        kind_weights={**CREDIT_KIND_WEIGHTS, CreditKind.LATE_DELIVERY: Q(1)},
        severity_factors=SEVERITY_FACTORS,
        standings=(("good", Q(9)),),
        lowest="poor",
    )
    assert credit_score({(CreditKind.LATE_DELIVERY, Severity.MINOR): 1}, params).standing == "good"
    assert credit_score({(CreditKind.LATE_DELIVERY, Severity.MINOR): 2}, params).standing == "poor"
    assert DEFAULT_CREDIT.kind_weights[CreditKind.MALICIOUS_INTERRUPTION] == Q(20)


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ({("typo", "minor"): 1}, "unknown credit event kind"),
        ({("shortage", "awful"): 1}, "unknown severity"),
        ({("shortage", "minor"): -1}, "must not be negative"),
    ],
)
def test_unknown_kinds_severities_and_negative_counts_are_refused(
    counts: dict[tuple[str, str], int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        credit_score(counts)


@pytest.mark.parametrize(
    "kw",
    [
        {"kind_weights": {"shortage": Q(-1)}},
        {"severity_factors": {"minor": Q(-1)}},
        {"standings": (("A", Q(60)), ("B", Q(90)))},
    ],
)
def test_inconsistent_credit_parameters_are_refused(kw: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must"):
        CreditParams(**kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- stock cover (R-I4)


def test_monthly_demand_is_the_agreed_year_over_twelve() -> None:
    assert monthly_demand(Q(12000)) == Q("1000.0000")
    assert monthly_demand(10000) == Q("833.3333")
    assert monthly_demand(Q(600), months=6) == Q("100.0000")
    with pytest.raises(ValueError, match="positive"):
        monthly_demand(Q(1), months=0)


def test_stock_cover_is_stock_over_monthly_demand() -> None:
    assert stock_cover(Q(1500), Q(1000)) == Q("1.50")
    assert stock_cover(Q(1000), Q("833.3333")) == Q("1.20")
    assert stock_cover(0, Q(10)) == Q("0.00")
    assert stock_cover(Q(10), None) is None
    assert stock_cover(Q(10), 0) is None
    with pytest.raises(ValueError, match="negative"):
        stock_cover(Q(-1), Q(10))


def test_stock_below_the_threshold_is_low() -> None:
    assert Q("1.0") == STOCK_COVER_ALERT_MONTHS
    assert stock_is_low(Q("0.99"))
    assert not stock_is_low(Q("1.00"))
    assert not stock_is_low(None)
    assert stock_is_low(Q("1.5"), threshold=Q(2))
