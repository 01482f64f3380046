"""Non-selected cap check (R-D2, R-H7, R-I2), pure tests without a database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jicai.policy.caps import (
    DEFAULT_CAP,
    CapParams,
    CapPurchase,
    Interruption,
    PurchaseKind,
    check_non_selected_cap,
    monthly_cap_breakdown,
)

D = Decimal
START = dt.date(2026, 1, 1)
END = dt.date(2026, 12, 31)
SEL, NON, SUB = PurchaseKind.SELECTED, PurchaseKind.NON_SELECTED, PurchaseKind.SUBSTITUTE


def buy(day: dt.date, qty: int | str, kind: PurchaseKind, conversion: str = "1") -> CapPurchase:
    return CapPurchase(accepted_on=day, qty=D(qty), kind=kind, conversion=D(conversion))


def test_default_is_one_to_one_without_substitutes() -> None:
    assert CapParams(cap_ratio=D(1), cap_substitutes=False, exempt_interruptions=True) == DEFAULT_CAP


def test_converted_non_selected_above_selected_exceeds() -> None:
    # CQ 二(二): non-selected converted by the price-ratio relation must not exceed the selected quantity
    lines = [buy(dt.date(2026, 3, 1), 1000, SEL), buy(dt.date(2026, 4, 1), 600, NON, conversion="2")]
    check = check_non_selected_cap(lines, [], START, END)
    assert check.selected_qty == D(1000)
    assert check.non_selected_qty == D(1200)
    assert check.counted_qty == D(1200)
    assert check.limit == D(1000)
    assert check.exceeded is True
    assert check.excess_qty == D(200)
    assert check.headroom == D(0)
    assert check.reason == "non-selected quantity 1200 exceeds the limit 1000 (1 × selected 1000) by 200"


def test_within_the_cap_reports_headroom() -> None:
    lines = [buy(dt.date(2026, 3, 1), 1000, SEL), buy(dt.date(2026, 4, 1), "800.5", NON)]
    check = check_non_selected_cap(lines, [], START, END)
    assert check.exceeded is False
    assert check.headroom == D("199.5")
    assert check.excess_qty == D(0)
    assert check.reason == "non-selected quantity 800.5 is within the limit 1000 (1 × selected 1000); headroom 199.5"


def test_equal_to_the_limit_is_not_exceeded() -> None:
    lines = [buy(dt.date(2026, 3, 1), 500, SEL), buy(dt.date(2026, 4, 1), 500, NON)]
    check = check_non_selected_cap(lines, [], START, END)
    assert check.exceeded is False
    assert check.headroom == D(0)


def test_no_selected_purchases_means_any_non_selected_exceeds() -> None:
    check = check_non_selected_cap([buy(dt.date(2026, 2, 1), 1, NON)], [], START, END)
    assert check.exceeded is True
    assert check.limit == D(0)


def test_nothing_bought_is_within() -> None:
    check = check_non_selected_cap([], [], START, END)
    assert check.exceeded is False
    assert check.reason == "non-selected quantity 0 is within the limit 0 (1 × selected 0); headroom 0"


def test_cap_ratio_is_a_parameter() -> None:
    lines = [buy(dt.date(2026, 3, 1), 1000, SEL), buy(dt.date(2026, 4, 1), 600, NON)]
    check = check_non_selected_cap(lines, [], START, END, CapParams(cap_ratio=D("0.5")))
    assert check.limit == D("500.0")
    assert check.excess_qty == D("100.0")
    assert "(0.5 × selected 1000)" in check.reason


def test_purchases_during_an_interruption_are_exempt() -> None:
    breaks = [Interruption(dt.date(2026, 5, 1), dt.date(2026, 5, 31))]
    lines = [
        buy(dt.date(2026, 3, 1), 1000, SEL),
        buy(dt.date(2026, 5, 1), 700, NON),  # first day: inside
        buy(dt.date(2026, 5, 31), 100, NON),  # last day: inside
        buy(dt.date(2026, 6, 1), 900, NON),  # after: counted
    ]
    check = check_non_selected_cap(lines, breaks, START, END)
    assert check.exempt_qty == D(800)
    assert check.non_selected_qty == D(900)
    assert check.exceeded is False
    assert check.reason.endswith("; 800 exempt (bought during a supply interruption)")


def test_open_interruption_exempts_everything_after_its_start() -> None:
    breaks = [Interruption(dt.date(2026, 10, 1))]
    lines = [buy(dt.date(2026, 9, 30), 10, NON), buy(dt.date(2026, 12, 31), 5000, NON)]
    check = check_non_selected_cap(lines, breaks, START, END)
    assert check.non_selected_qty == D(10)
    assert check.exempt_qty == D(5000)


def test_exemption_can_be_switched_off() -> None:
    breaks = [Interruption(dt.date(2026, 1, 1))]
    check = check_non_selected_cap(
        [buy(dt.date(2026, 2, 1), 10, NON)], breaks, START, END, CapParams(exempt_interruptions=False)
    )
    assert check.exempt_qty == D(0)
    assert check.exceeded is True


def test_substitutes_are_watched_not_capped_by_default() -> None:
    lines = [buy(dt.date(2026, 3, 1), 100, SEL), buy(dt.date(2026, 3, 2), 5000, SUB)]
    check = check_non_selected_cap(lines, [Interruption(dt.date(2026, 3, 2), dt.date(2026, 3, 2))], START, END)
    assert check.substitute_qty == D(5000)
    assert check.counted_qty == D(0)
    assert check.exempt_qty == D(0)
    assert check.exceeded is False
    assert check.reason.endswith("; substitutes 5000 watched, not capped")


def test_substitutes_capped_when_the_profile_says_so() -> None:
    params = CapParams(cap_substitutes=True)
    breaks = [Interruption(dt.date(2026, 6, 1), dt.date(2026, 6, 30))]
    lines = [
        buy(dt.date(2026, 3, 1), 100, SEL),
        buy(dt.date(2026, 3, 2), 60, NON),
        buy(dt.date(2026, 3, 3), 60, SUB),
        buy(dt.date(2026, 6, 3), 40, SUB),  # exempt
    ]
    check = check_non_selected_cap(lines, breaks, START, END, params)
    assert check.non_selected_qty == D(60)
    assert check.substitute_qty == D(100)
    assert check.counted_qty == D(120)
    assert check.exempt_qty == D(40)
    assert check.exceeded is True
    assert check.reason.startswith("non-selected and substitute quantity 120 exceeds the limit 100")
    assert "watched" not in check.reason


def test_lines_outside_the_agreement_year_are_ignored() -> None:
    lines = [buy(dt.date(2025, 12, 31), 9999, NON), buy(dt.date(2027, 1, 1), 9999, NON), buy(START, 1, SEL)]
    check = check_non_selected_cap(lines, [], START, END)
    assert check.counted_qty == D(0)
    assert check.selected_qty == D(1)


def test_validation() -> None:
    with pytest.raises(ValueError, match="negative"):
        buy(START, -1, NON)
    with pytest.raises(ValueError, match="conversion"):
        buy(START, 1, NON, conversion="0")
    with pytest.raises(ValueError, match="ends before it starts"):
        Interruption(dt.date(2026, 2, 2), dt.date(2026, 2, 1))
    with pytest.raises(ValueError, match="cap ratio"):
        CapParams(cap_ratio=D("-0.1"))
    with pytest.raises(ValueError, match="agreement year"):
        check_non_selected_cap([], [], END, START)
    with pytest.raises(ValueError, match="agreement year"):
        monthly_cap_breakdown([], [], END, START)


def test_monthly_breakdown_clips_to_the_period_and_crosses_the_year() -> None:
    start, end = dt.date(2025, 11, 15), dt.date(2026, 1, 10)
    lines = [
        buy(dt.date(2025, 11, 20), 100, SEL),
        buy(dt.date(2025, 12, 5), 150, NON),  # December alone exceeds (0 selected), cumulative does not
        buy(dt.date(2026, 1, 10), 10, NON),
    ]
    months = monthly_cap_breakdown(lines, [], start, end)
    assert [(m.month, m.start, m.end) for m in months] == [
        ("2025-11", dt.date(2025, 11, 15), dt.date(2025, 11, 30)),
        ("2025-12", dt.date(2025, 12, 1), dt.date(2025, 12, 31)),
        ("2026-01", dt.date(2026, 1, 1), dt.date(2026, 1, 10)),
    ]
    assert [m.month_check.exceeded for m in months] == [False, True, True]
    assert [m.cumulative.exceeded for m in months] == [False, True, True]
    assert [m.cumulative.counted_qty for m in months] == [D(0), D(150), D(160)]
    assert months[-1].cumulative == check_non_selected_cap(lines, [], start, end)


# --- properties ----------------------------------------------------------------------------------------

days = st.integers(min_value=0, max_value=364).map(lambda n: START + dt.timedelta(days=n))
quantities = st.integers(min_value=0, max_value=10_000).map(Decimal)
conversions = st.sampled_from([D(1), D("0.5"), D(2), D(10)])
purchases = st.builds(
    CapPurchase, accepted_on=days, qty=quantities, kind=st.sampled_from(list(PurchaseKind)), conversion=conversions
)
intervals = st.builds(
    lambda a, length: Interruption(a, None if length is None else a + dt.timedelta(days=length)),
    days,
    st.none() | st.integers(min_value=0, max_value=60),
)
params_st = st.builds(
    CapParams,
    cap_ratio=st.sampled_from([D(0), D("0.5"), D(1), D("1.5")]),
    cap_substitutes=st.booleans(),
    exempt_interruptions=st.just(True),
)


@given(lines=st.lists(purchases, max_size=20), breaks=st.lists(intervals, max_size=3), params=params_st)
def test_property_exceeded_iff_counted_above_ratio_times_selected(
    lines: list[CapPurchase], breaks: list[Interruption], params: CapParams
) -> None:
    check = check_non_selected_cap(lines, breaks, START, END, params)
    assert check.exceeded == (check.counted_qty > params.cap_ratio * check.selected_qty)
    assert check.limit == params.cap_ratio * check.selected_qty
    assert check.headroom >= 0
    assert check.excess_qty >= 0
    assert check.counted_qty + check.headroom - check.excess_qty == check.limit
    selected = sum((p.item_qty for p in lines if p.kind is SEL), D(0))
    capped = sum((p.item_qty for p in lines if p.kind is NON or (params.cap_substitutes and p.kind is SUB)), D(0))
    assert check.selected_qty == selected
    assert check.counted_qty + check.exempt_qty == capped


@given(
    lines=st.lists(purchases, max_size=20),
    breaks=st.lists(intervals, min_size=1, max_size=3),
    params=params_st,
    pick=st.integers(min_value=0, max_value=2),
    qty=quantities,
    kind=st.sampled_from([NON, SUB]),
    offset=st.integers(min_value=0, max_value=60),
)
def test_property_exempt_purchase_never_changes_exceeded(
    lines: list[CapPurchase],
    breaks: list[Interruption],
    params: CapParams,
    pick: int,
    qty: Decimal,
    kind: PurchaseKind,
    offset: int,
) -> None:
    interruption = breaks[pick % len(breaks)]
    day = interruption.start + dt.timedelta(days=offset)
    if interruption.end is not None:
        day = min(day, interruption.end)
    day = min(day, END)
    before = check_non_selected_cap(lines, breaks, START, END, params)
    after = check_non_selected_cap([*lines, CapPurchase(day, qty, kind)], breaks, START, END, params)
    assert after.exceeded == before.exceeded
    assert after.counted_qty == before.counted_qty


@given(lines=st.lists(purchases, max_size=20), breaks=st.lists(intervals, max_size=3), params=params_st, data=st.data())
def test_property_order_does_not_matter(
    lines: list[CapPurchase], breaks: list[Interruption], params: CapParams, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(lines))
    assert check_non_selected_cap(shuffled, breaks, START, END, params) == check_non_selected_cap(
        lines, breaks, START, END, params
    )
