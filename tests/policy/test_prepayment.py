"""Insurance-fund prepayment tranches (R-E2): trigger algebra, regional schedules, amounts and firing dates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jicai.policy.prepayment import (
    CHONGQING_TRANCHES,
    JILIN_TRANCHES,
    NATIONAL_TRANCHES,
    SHANXI_TRANCHES,
    XIAN_TRANCHES,
    Acceptance,
    AnyOf,
    Clearing,
    Completion,
    PeriodShare,
    PrepaymentAgreement,
    Start,
    Tranche,
    TrancheResult,
    Trigger,
    VolumeShare,
    evaluate_prepayment,
    parse_trigger,
    tranche_amounts,
    validate_tranches,
)

D = Decimal
Y2026 = (dt.date(2026, 1, 1), dt.date(2026, 12, 31))
# Agreed 10,000 tablets at 0.3400 yuan: agreed amount 3,400.00 yuan.
AGREEMENT = PrepaymentAgreement(*Y2026, agreed_qty=D(10000), unit_price=D("0.3400"))
YEAR_END = dt.date(2026, 12, 31)


def amounts(results: tuple[TrancheResult, ...]) -> list[Decimal]:
    return [t.amount for t in results]


# --------------------------------------------------------------------------------------------------
# Trigger text


@pytest.mark.parametrize(
    ("text", "trigger"),
    [
        ("start", Start()),
        ("volume_share(0.5)", VolumeShare(D("0.5"))),
        ("period_share(0.5)", PeriodShare(D("0.5"))),
        ("any_of(period_share(0.5), volume_share(0.5))", AnyOf((PeriodShare(D("0.5")), VolumeShare(D("0.5"))))),
        ("completion", Completion()),
        ("clearing", Clearing()),
        ("any_of(start, any_of(completion))", AnyOf((Start(), AnyOf((Completion(),))))),
    ],
)
def test_profile_strings_parse_and_round_trip(text: str, trigger: Trigger) -> None:
    assert parse_trigger(text) == trigger
    assert str(trigger) == text


def test_parsing_is_lenient_on_case_and_spaces() -> None:
    parsed = parse_trigger("  ANY_OF ( Period_Share( .25 ) ,volume_share(1) )  ")
    assert parsed == AnyOf((PeriodShare(D("0.25")), VolumeShare(D(1))))
    assert str(parsed) == "any_of(period_share(0.25), volume_share(1))"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected a trigger name at position 0"),
        ("foo", "expected a known trigger name at position 0"),
        ("start start", "expected end of text at position 5"),
        ("volume_share", r"expected '\('"),
        ("volume_share()", "expected a decimal number"),
        ("volume_share(-0.5)", "expected a decimal number"),
        ("period_share(0.5", r"expected '\)'"),
        ("any_of()", "expected a trigger name"),
        ("any_of(start completion)", r"expected '\)'"),
        ("any_of(start,)", "expected a trigger name"),
        ("volume_share(0)", r"volume_share must be a Decimal in \(0, 1\]"),
        ("period_share(1.5)", r"period_share must be a Decimal in \(0, 1\]"),
        ("any_of(start, clearing)", "clearing cannot be part of any_of"),
    ],
)
def test_bad_trigger_text_is_refused_clearly(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_trigger(text)


def test_trigger_values_are_validated() -> None:
    with pytest.raises(ValueError, match="in \\(0, 1\\]"):
        VolumeShare(D("NaN"))
    with pytest.raises(ValueError, match="in \\(0, 1\\]"):
        PeriodShare(0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one trigger"):
        AnyOf(())


fractions = st.decimals(min_value=D("0.0001"), max_value=D(1), places=4)
leaf_triggers: st.SearchStrategy[Trigger] = st.one_of(
    st.just(Start()),
    st.just(Completion()),
    fractions.map(VolumeShare),
    fractions.map(PeriodShare),
)
triggers: st.SearchStrategy[Trigger] = st.recursive(
    leaf_triggers, lambda inner: st.lists(inner, min_size=1, max_size=3).map(lambda ts: AnyOf(tuple(ts))), max_leaves=6
)


@given(st.one_of(triggers, st.just(Clearing())))
def test_str_round_trips_through_the_parser(trigger: Trigger) -> None:
    assert parse_trigger(str(trigger)) == trigger
    assert str(parse_trigger(str(trigger))) == str(trigger)


# --------------------------------------------------------------------------------------------------
# Tranche lists and amounts


def test_regional_schedules_follow_the_seeds() -> None:
    assert [(t.share, str(t.trigger)) for t in XIAN_TRANCHES] == [
        (D("0.50"), "start"),
        (D("0.40"), "volume_share(0.5)"),
        (D(0), "clearing"),
    ]
    assert [(t.share, str(t.trigger)) for t in JILIN_TRANCHES] == [
        (D("0.50"), "start"),
        (D("0.45"), "any_of(period_share(0.5), volume_share(0.5))"),
        (D("0.05"), "completion"),
    ]
    assert [(t.share, str(t.trigger)) for t in CHONGQING_TRANCHES] == [(D("0.50"), "start"), (D(0), "clearing")]
    assert SHANXI_TRANCHES == NATIONAL_TRANCHES
    assert [(t.share, str(t.trigger)) for t in SHANXI_TRANCHES] == [(D("0.30"), "start"), (D(0), "clearing")]
    for schedule in (XIAN_TRANCHES, JILIN_TRANCHES, CHONGQING_TRANCHES, SHANXI_TRANCHES):
        validate_tranches(schedule)


def test_tranche_shares_are_validated() -> None:
    with pytest.raises(ValueError, match="clearing tranche pays actual use"):
        Tranche(D("0.1"), Clearing())
    with pytest.raises(ValueError, match="share of tranche start"):
        Tranche(D(0), Start())


@pytest.mark.parametrize(
    ("tranches", "message"),
    [
        ((), "at least one tranche"),
        ((Tranche(D(0), Clearing()), Tranche(D(0), Clearing())), "at most one clearing"),
        ((Tranche(D(0), Clearing()), Tranche(D("0.5"), Start())), "must be the last"),
        ((Tranche(D("0.6"), Start()), Tranche(D("0.5"), Completion())), "sum to 1.1, more than 100%"),
    ],
)
def test_impossible_schedules_are_refused(tranches: tuple[Tranche, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_tranches(tranches)


def test_jilin_amounts_are_exact() -> None:
    assert AGREEMENT.agreed_amount == D("3400.00")
    assert tranche_amounts(AGREEMENT.agreed_amount, JILIN_TRANCHES) == (D("1700.00"), D("1530.00"), D("170.00"))


def test_last_share_tranche_takes_the_rounding_remainder() -> None:
    thirds = (
        Tranche(D("0.3333"), Start()),
        Tranche(D("0.3333"), PeriodShare(D("0.5"))),
        Tranche(D("0.3334"), Completion()),
    )
    # 100.01 × 0.3334 = 33.343 would round to 33.34; the last tranche takes 100.01 − 66.66 = 33.35 instead.
    assert tranche_amounts(D("100.01"), thirds) == (D("33.33"), D("33.33"), D("33.35"))
    # The remainder goes to the last share tranche, not to a clearing tranche after it.
    with_clearing = (*thirds, Tranche(D(0), Clearing()))
    assert tranche_amounts(D("100.01"), with_clearing) == (D("33.33"), D("33.33"), D("33.35"), D(0))


def test_remainder_of_a_few_fen_can_go_below_zero() -> None:
    quarters = [Tranche(D("0.25"), Start())] * 4
    assert tranche_amounts(D("0.02"), quarters) == (D("0.01"), D("0.01"), D("0.01"), D("-0.01"))


def test_shares_below_one_are_each_rounded_without_remainder() -> None:
    assert tranche_amounts(D("3400.01"), XIAN_TRANCHES) == (D("1700.01"), D("1360.00"), D(0))


share_lists = st.lists(st.integers(min_value=1, max_value=9999), min_size=0, max_size=5).map(
    lambda cuts: [b - a for a, b in zip([0, *sorted(set(cuts))], [*sorted(set(cuts)), 10000], strict=True)]
)


@given(
    basis_points=share_lists,
    qty=st.integers(min_value=1, max_value=10**9),
    price=st.decimals(min_value=D("0.0001"), max_value=D("99999"), places=4),
    clearing=st.booleans(),
)
def test_shares_summing_to_one_pay_exactly_the_agreed_amount(
    basis_points: list[int], qty: int, price: Decimal, clearing: bool
) -> None:
    tranches = [Tranche(D(bp) / 10000, VolumeShare(D("0.5"))) for bp in basis_points]
    if clearing:
        tranches.append(Tranche(D(0), Clearing()))
    agreed = PrepaymentAgreement(*Y2026, agreed_qty=D(qty), unit_price=price).agreed_amount
    result = tranche_amounts(agreed, tranches)
    assert sum(result) == agreed
    assert all(a == a.quantize(D("0.01")) for a in result)


# --------------------------------------------------------------------------------------------------
# Agreement and purchase inputs


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"period_end": dt.date(2025, 12, 31)}, "is before period_start"),
        ({"agreed_qty": D(0)}, "agreed quantity must be positive"),
        ({"agreed_qty": D("NaN")}, "agreed quantity must be positive"),
        ({"unit_price": D("-0.34")}, "unit price must be positive"),
        ({"unit_price": D("Infinity")}, "unit price must be positive"),
        ({"unit_price": D("0.34001")}, "more than 4 decimal places"),
    ],
)
def test_impossible_agreements_are_refused(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "period_start": Y2026[0],
        "period_end": Y2026[1],
        "agreed_qty": D(10000),
        "unit_price": D("0.3400"),
    }
    with pytest.raises(ValueError, match=message):
        PrepaymentAgreement(**(fields | kwargs))  # type: ignore[arg-type]


def test_negative_purchases_are_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        evaluate_prepayment(AGREEMENT, JILIN_TRANCHES, [(dt.date(2026, 2, 1), -5)], YEAR_END)
    with pytest.raises(ValueError, match="must not be negative"):
        Acceptance(dt.date(2026, 2, 1), D("NaN"))


# --------------------------------------------------------------------------------------------------
# Jilin (JL 三(五)): 1,700.00 at start, 1,530.00 at half period or half volume, 170.00 on completion


def test_jilin_half_volume_before_half_period() -> None:
    purchases: list[tuple[dt.date, Decimal | int]] = [
        (dt.date(2026, 3, 31), 3000),
        (dt.date(2026, 2, 1), D(2000)),
        (dt.date(2026, 11, 1), 5000),
    ]
    status = evaluate_prepayment(AGREEMENT, JILIN_TRANCHES, purchases, dt.date(2026, 4, 1))
    start, middle, last = status.tranches
    assert (start.index, start.amount, start.fired_on) == (0, D("1700.00"), dt.date(2026, 1, 1))
    assert (middle.index, middle.amount, middle.fired_on) == (1, D("1530.00"), dt.date(2026, 3, 31))
    assert middle.trigger == "any_of(period_share(0.5), volume_share(0.5))"
    assert middle.reason == "first of any_of: volume_share(0.5): cumulative 5,000 reached 5,000 on 2026-03-31"
    assert (last.amount, last.fired_on, last.fired) == (D("170.00"), None, False)
    assert last.reason == "completion: cumulative 5,000 of 10,000 by 2026-04-01"
    assert status.counted_qty == D(5000)
    assert status.released == D("3230.00")

    done = evaluate_prepayment(AGREEMENT, JILIN_TRANCHES, purchases, YEAR_END)
    assert [t.fired_on for t in done.tranches] == [dt.date(2026, 1, 1), dt.date(2026, 3, 31), dt.date(2026, 11, 1)]
    assert done.released == D("3400.00")


def test_jilin_half_period_before_half_volume() -> None:
    purchases = [(dt.date(2026, 2, 1), 2000), (dt.date(2026, 9, 1), 4000)]
    # 2026 has 365 days: elapsed reaches 0.5 on day ceil(182.5) = 183, i.e. 2 July.
    on_first_july = evaluate_prepayment(AGREEMENT, JILIN_TRANCHES, purchases, dt.date(2026, 7, 1))
    assert on_first_july.tranches[1].fired_on is None
    assert on_first_july.tranches[1].reason == (
        "none of any_of yet: period_share(0.5): elapsed share reaches 0.5 on 2026-07-02, after 2026-07-01; "
        "volume_share(0.5): cumulative 2,000 of 5,000 by 2026-07-01"
    )
    assert on_first_july.released == D("1700.00")

    status = evaluate_prepayment(AGREEMENT, JILIN_TRANCHES, purchases, dt.date(2026, 7, 2))
    assert status.tranches[1].fired_on == dt.date(2026, 7, 2)
    assert status.tranches[1].amount == D("1530.00")
    assert status.tranches[1].reason == "first of any_of: period_share(0.5): elapsed share reached 0.5 on 2026-07-02"


def test_jilin_last_five_percent_does_not_fire_when_volume_is_never_completed() -> None:
    status = evaluate_prepayment(AGREEMENT, JILIN_TRANCHES, [(dt.date(2026, 5, 1), 9999)], dt.date(2027, 6, 30))
    assert status.tranches[2].fired_on is None
    assert status.released == D("3230.00")


def test_half_period_in_a_leap_year() -> None:
    leap = PrepaymentAgreement(dt.date(2024, 1, 1), dt.date(2024, 12, 31), D(100), D("1.0000"))
    status = evaluate_prepayment(leap, (Tranche(D("0.5"), PeriodShare(D("0.5"))),), [], dt.date(2024, 12, 31))
    assert status.tranches[0].fired_on == dt.date(2024, 7, 1)  # day 183 of 366


# --------------------------------------------------------------------------------------------------
# Xi'an (XA 三(三)1): 50% at start, 40% at half volume, clearing on actual use


def test_xian_over_use_is_paid_at_clearing() -> None:
    purchases = [(dt.date(2026, 6, 30), 7000), (dt.date(2026, 3, 1), 5000)]
    status = evaluate_prepayment(AGREEMENT, XIAN_TRANCHES, purchases, YEAR_END)
    assert amounts(status.tranches) == [D("1700.00"), D("1360.00"), D("1020.00")]
    assert [t.fired_on for t in status.tranches] == [dt.date(2026, 1, 1), dt.date(2026, 3, 1), YEAR_END]
    assert status.tranches[2].reason == (
        "clearing: period end 2026-12-31; actual 12,000 × 0.3400 = 4,080.00 minus prepaid 3,060.00"
    )
    assert status.released == D("4080.00")  # 12,000 tablets at 0.34


def test_xian_under_use_below_half_leaves_the_institution_owing() -> None:
    status = evaluate_prepayment(AGREEMENT, XIAN_TRANCHES, [(dt.date(2026, 5, 1), 4000)], YEAR_END)
    assert status.tranches[1].fired_on is None
    assert status.tranches[2].amount == D("-340.00")  # 1,360.00 used − 1,700.00 prepaid
    assert status.released == D("1360.00")


def test_xian_under_use_above_half() -> None:
    status = evaluate_prepayment(AGREEMENT, XIAN_TRANCHES, [(dt.date(2026, 5, 1), D(6000))], YEAR_END)
    assert amounts(status.tranches) == [D("1700.00"), D("1360.00"), D("-1020.00")]
    assert status.released == D("2040.00")


def test_clearing_before_period_end_is_provisional() -> None:
    status = evaluate_prepayment(AGREEMENT, XIAN_TRANCHES, [(dt.date(2026, 2, 1), 6000)], dt.date(2026, 6, 30))
    clearing = status.tranches[2]
    assert clearing.fired_on is None
    assert clearing.amount == D("-1020.00")
    assert clearing.reason == (
        "provisional, clearing: period end 2026-12-31 is after 2026-06-30; "
        "actual 6,000 × 0.3400 = 2,040.00 minus prepaid 3,060.00 so far"
    )
    assert status.released == D("3060.00")


def test_only_purchases_inside_the_year_and_by_as_of_count() -> None:
    purchases = [
        Acceptance(dt.date(2025, 12, 31), D(9000)),  # before the year
        Acceptance(dt.date(2027, 1, 1), D(9000)),  # after the year
        Acceptance(dt.date(2026, 4, 1), D(2500)),
        Acceptance(dt.date(2026, 4, 1), D(2500)),  # same day: counted together
        Acceptance(dt.date(2026, 8, 1), D(1000)),  # after as_of
    ]
    status = evaluate_prepayment(AGREEMENT, XIAN_TRANCHES, purchases, dt.date(2026, 7, 1))
    assert status.counted_qty == D(5000)
    assert status.tranches[1].fired_on == dt.date(2026, 4, 1)


def test_nothing_fires_before_the_year_starts() -> None:
    status = evaluate_prepayment(AGREEMENT, CHONGQING_TRANCHES, [], dt.date(2025, 12, 1))
    assert [t.fired_on for t in status.tranches] == [None, None]
    assert status.tranches[0].reason == "start: period start 2026-01-01 is after 2025-12-01"
    assert status.counted_qty == D(0)
    assert status.released == D(0)


def test_minimum_start_schedules_clear_on_actual_use() -> None:
    purchases = [(dt.date(2026, 3, 1), 8000)]
    chongqing = evaluate_prepayment(AGREEMENT, CHONGQING_TRANCHES, purchases, YEAR_END)
    assert amounts(chongqing.tranches) == [D("1700.00"), D("1020.00")]
    shanxi = evaluate_prepayment(AGREEMENT, SHANXI_TRANCHES, purchases, YEAR_END)
    assert amounts(shanxi.tranches) == [D("1020.00"), D("1700.00")]
    assert chongqing.released == shanxi.released == D("2720.00")


# --------------------------------------------------------------------------------------------------
# Properties

purchase_lists = st.lists(
    st.tuples(
        st.dates(min_value=dt.date(2025, 12, 1), max_value=dt.date(2027, 1, 31)),
        st.integers(min_value=0, max_value=3000),
    ),
    max_size=12,
)
as_of_dates = st.dates(min_value=dt.date(2025, 12, 1), max_value=dt.date(2027, 1, 31))
thresholds = st.decimals(min_value=D("0.01"), max_value=D(1), places=2)
LATER = dt.date.max


@given(purchases=purchase_lists, as_of=as_of_dates, a=thresholds, b=thresholds)
def test_fired_on_dates_are_monotone_with_thresholds(
    purchases: list[tuple[dt.date, int]], as_of: dt.date, a: Decimal, b: Decimal
) -> None:
    low, high = min(a, b), max(a, b)
    tranches = [
        Tranche(D("0.1"), VolumeShare(low)),
        Tranche(D("0.1"), VolumeShare(high)),
        Tranche(D("0.1"), Completion()),
        Tranche(D("0.1"), PeriodShare(low)),
        Tranche(D("0.1"), PeriodShare(high)),
    ]
    fired = [t.fired_on or LATER for t in evaluate_prepayment(AGREEMENT, tranches, purchases, as_of).tranches]
    assert fired[0] <= fired[1] <= fired[2]
    assert fired[3] <= fired[4]
    assert all(day == LATER or day <= as_of for day in fired)


@given(purchases=purchase_lists, as_of=as_of_dates, share=thresholds)
def test_volume_triggers_fire_exactly_when_purchases_reach_them(
    purchases: list[tuple[dt.date, int]], as_of: dt.date, share: Decimal
) -> None:
    status = evaluate_prepayment(AGREEMENT, (Tranche(D("0.5"), VolumeShare(share)),), purchases, as_of)
    fired_on = status.tranches[0].fired_on
    counted = [(day, D(q)) for day, q in purchases if Y2026[0] <= day <= min(Y2026[1], as_of)]
    threshold = share * AGREEMENT.agreed_qty

    def cumulative(through: dt.date) -> Decimal:
        return sum((q for day, q in counted if day <= through), D(0))

    if fired_on is None:
        assert cumulative(as_of) < threshold
    else:
        assert fired_on in {day for day, _ in counted}
        assert cumulative(fired_on) >= threshold
        assert cumulative(fired_on - dt.timedelta(days=1)) < threshold


@given(purchases=purchase_lists, schedule=st.sampled_from([XIAN_TRANCHES, CHONGQING_TRANCHES, SHANXI_TRANCHES]))
def test_after_clearing_the_fund_has_paid_exactly_actual_use(
    purchases: list[tuple[dt.date, int]], schedule: tuple[Tranche, ...]
) -> None:
    status = evaluate_prepayment(AGREEMENT, schedule, purchases, YEAR_END)
    assert status.released == (status.counted_qty * AGREEMENT.unit_price).quantize(D("0.01"))
