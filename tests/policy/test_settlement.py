"""Settlement rhythm and reserve (R-E3; CQ 二(八) 按月监测、季度结算、年终清算, 预留金)."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jicai.policy.settlement import (
    BLOCK_MONTHS,
    CHONGQING_SETTLEMENT,
    Period,
    PeriodKind,
    ReserveSplit,
    SettlementParams,
    calendar_blocks,
    settlement_calendar,
    split_reserve,
)

D = Decimal


def spans(periods: tuple[Period, ...]) -> list[tuple[str, str, str]]:
    return [(p.label, p.start.isoformat(), p.end.isoformat()) for p in periods]


def test_chongqing_calendar_year() -> None:
    cal = settlement_calendar(dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    assert [p.label for p in cal.monitoring] == [f"2026-{m:02d}" for m in range(1, 13)]
    assert cal.monitoring[1].end == dt.date(2026, 2, 28)
    assert {p.kind for p in cal.monitoring} == {PeriodKind.MONITORING}
    assert spans(cal.settlement) == [
        ("2026Q1", "2026-01-01", "2026-03-31"),
        ("2026Q2", "2026-04-01", "2026-06-30"),
        ("2026Q3", "2026-07-01", "2026-09-30"),
        ("2026Q4", "2026-10-01", "2026-12-31"),
    ]
    assert {p.kind for p in cal.settlement} == {PeriodKind.SETTLEMENT}
    assert cal.clearing == Period(
        dt.date(2026, 1, 1), dt.date(2026, 12, 31), PeriodKind.CLEARING, "2026-01-01/2026-12-31"
    )
    assert cal.clearing.days == 365


def test_year_starting_mid_month_is_clipped() -> None:
    cal = settlement_calendar(dt.date(2022, 11, 15), dt.date(2023, 11, 14))
    assert spans(cal.settlement) == [
        ("2022Q4", "2022-11-15", "2022-12-31"),
        ("2023Q1", "2023-01-01", "2023-03-31"),
        ("2023Q2", "2023-04-01", "2023-06-30"),
        ("2023Q3", "2023-07-01", "2023-09-30"),
        ("2023Q4", "2023-10-01", "2023-11-14"),
    ]
    assert spans(cal.monitoring)[0] == ("2022-11", "2022-11-15", "2022-11-30")
    assert spans(cal.monitoring)[-1] == ("2023-11", "2023-11-01", "2023-11-14")
    assert len(cal.monitoring) == 13
    assert cal.clearing.label == "2022-11-15/2023-11-14"


def test_other_rhythms() -> None:
    half_years = SettlementParams(monitoring_months=3, settlement_months=6)
    cal = settlement_calendar(dt.date(2022, 11, 15), dt.date(2023, 11, 14), half_years)
    assert spans(cal.settlement) == [
        ("2022H2", "2022-11-15", "2022-12-31"),
        ("2023H1", "2023-01-01", "2023-06-30"),
        ("2023H2", "2023-07-01", "2023-11-14"),
    ]
    assert [p.label for p in cal.monitoring] == ["2022Q4", "2023Q1", "2023Q2", "2023Q3", "2023Q4"]
    monthly = settlement_calendar(dt.date(2026, 3, 5), dt.date(2026, 5, 4), SettlementParams(settlement_months=1))
    assert [p.label for p in monthly.settlement] == ["2026-03", "2026-04", "2026-05"]
    assert spans(calendar_blocks(dt.date(2025, 7, 1), dt.date(2026, 6, 30), 12)) == [
        ("2025", "2025-07-01", "2025-12-31"),
        ("2026", "2026-01-01", "2026-06-30"),
    ]


def test_one_day_year() -> None:
    day = dt.date(2026, 5, 31)
    assert spans(calendar_blocks(day, day, 3, PeriodKind.MONITORING)) == [("2026Q2", "2026-05-31", "2026-05-31")]


def test_period_membership() -> None:
    q1 = calendar_blocks(dt.date(2026, 1, 1), dt.date(2026, 12, 31), 3)[0]
    assert dt.date(2026, 3, 31) in q1
    assert dt.date(2026, 4, 1) not in q1
    assert "2026-02-01" not in q1


def test_chongqing_defaults() -> None:
    assert (CHONGQING_SETTLEMENT.monitoring_months, CHONGQING_SETTLEMENT.settlement_months) == (1, 3)
    assert CHONGQING_SETTLEMENT.reserve_share == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"monitoring_months": 2}, "monitoring_months must be one of"),
        ({"settlement_months": 4}, "settlement_months must be one of"),
        ({"reserve_share": D("1.01")}, r"reserve share must be in \[0, 1\]"),
        ({"reserve_share": D("-0.1")}, r"reserve share must be in \[0, 1\]"),
        ({"reserve_share": D("NaN")}, r"reserve share must be in \[0, 1\]"),
    ],
)
def test_bad_params_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SettlementParams(**kwargs)  # type: ignore[arg-type]


def test_bad_years_and_blocks_are_refused() -> None:
    with pytest.raises(ValueError, match="is before period_start"):
        settlement_calendar(dt.date(2026, 1, 1), dt.date(2025, 12, 31))
    with pytest.raises(ValueError, match="block length must be one of"):
        calendar_blocks(dt.date(2026, 1, 1), dt.date(2026, 12, 31), 5)


@given(
    start=st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2090, 12, 31)),
    length=st.integers(min_value=0, max_value=800),
    months=st.sampled_from(BLOCK_MONTHS),
)
def test_blocks_tile_the_year_exactly(start: dt.date, length: int, months: int) -> None:
    end = start + dt.timedelta(days=length)
    blocks = calendar_blocks(start, end, months)
    assert blocks[0].start == start
    assert blocks[-1].end == end
    for before, after in itertools.pairwise(blocks):
        assert after.start == before.end + dt.timedelta(days=1)
    assert all(b.start <= b.end for b in blocks)
    assert sum(b.days for b in blocks) == length + 1
    assert len({b.label for b in blocks}) == len(blocks)
    # every block but the clipped first and last is a whole calendar block
    for block in blocks[1:-1]:
        assert block.start.day == 1
        assert (block.start.month - 1) % months == 0
        assert (block.end + dt.timedelta(days=1)).day == 1


@given(
    start=st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2090, 12, 31)),
    length=st.integers(min_value=0, max_value=800),
)
def test_months_nest_in_settlement_periods(start: dt.date, length: int) -> None:
    cal = settlement_calendar(start, start + dt.timedelta(days=length))
    for month in cal.monitoring:
        assert sum(1 for q in cal.settlement if month.start in q and month.end in q) == 1
    assert cal.clearing.days == length + 1


@pytest.mark.parametrize(
    ("amount", "share", "paid_now", "reserved"),
    [
        (D("1000.00"), D("0.1"), D("900.00"), D("100.00")),
        (D("0.05"), D("0.1"), D("0.04"), D("0.01")),  # 0.005 reserved rounds half up
        (D("333.33"), D("0.3333"), D("222.23"), D("111.10")),
        (D("100"), D(0), D("100"), D("0.00")),
        (D("100.00"), D(1), D("0.00"), D("100.00")),
    ],
)
def test_split_reserve(amount: Decimal, share: Decimal, paid_now: Decimal, reserved: Decimal) -> None:
    assert split_reserve(amount, share) == ReserveSplit(paid_now=paid_now, reserved=reserved)


@pytest.mark.parametrize(
    ("amount", "share", "message"),
    [
        (D("-1.00"), D("0.1"), "must not be negative"),
        (D("NaN"), D("0.1"), "must not be negative"),
        (D("1.005"), D("0.1"), "not a whole number of fen"),
        (D("1.00"), D("1.5"), r"reserve share must be in \[0, 1\]"),
    ],
)
def test_bad_reserve_inputs_are_refused(amount: Decimal, share: Decimal, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_reserve(amount, share)


@given(
    st.decimals(min_value=0, max_value=10**9, places=2),
    st.decimals(min_value=0, max_value=1, places=4),
)
def test_reserve_split_sums_to_the_amount(amount: Decimal, share: Decimal) -> None:
    split = split_reserve(amount, share)
    assert split.paid_now + split.reserved == amount
    assert split.paid_now >= 0
    assert split.reserved >= 0
    assert split.reserved == split.reserved.quantize(D("0.01"))
