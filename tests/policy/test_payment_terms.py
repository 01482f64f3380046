"""Supplier payment deadline and overdue days (R-E1)."""

from __future__ import annotations

import calendar
import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jicai.policy.payment_terms import (
    DEFAULT_PAYMENT_RULE,
    HENAN_PAYMENT_RULE,
    SHANXI_PAYMENT_RULE,
    DaysAfterAcceptance,
    EndOfNextMonth,
    PaymentRule,
    due_date,
    line_status,
    overdue_days,
    parse_payment_rule,
)

D = Decimal


@pytest.mark.parametrize(
    ("accepted", "due"),
    [
        (dt.date(2026, 1, 15), dt.date(2026, 2, 28)),  # semantics.md vector
        (dt.date(2026, 12, 10), dt.date(2027, 1, 31)),  # semantics.md vector: across the year end
        (dt.date(2024, 1, 31), dt.date(2024, 2, 29)),  # leap year
        (dt.date(2023, 1, 31), dt.date(2023, 2, 28)),
        (dt.date(2026, 3, 1), dt.date(2026, 4, 30)),
        (dt.date(2026, 2, 28), dt.date(2026, 3, 31)),
    ],
)
def test_end_of_next_month(accepted: dt.date, due: dt.date) -> None:
    assert due_date(accepted, EndOfNextMonth()) == due
    assert due_date(accepted) == due  # the default is Shanxi's rule


def test_days_after_acceptance() -> None:
    assert due_date(dt.date(2026, 1, 15), HENAN_PAYMENT_RULE) == dt.date(2026, 2, 14)
    assert due_date(dt.date(2026, 12, 10), DaysAfterAcceptance(30)) == dt.date(2027, 1, 9)
    assert due_date(dt.date(2026, 12, 10), DaysAfterAcceptance(0)) == dt.date(2026, 12, 10)


def test_regional_rules() -> None:
    assert SHANXI_PAYMENT_RULE == DEFAULT_PAYMENT_RULE == EndOfNextMonth()
    assert HENAN_PAYMENT_RULE.days == 30
    assert str(HENAN_PAYMENT_RULE) == "days_after_acceptance(30)"


@pytest.mark.parametrize("days", [-1, True, 1.5])
def test_bad_day_counts_are_refused(days: object) -> None:
    with pytest.raises(ValueError, match="whole number >= 0"):
        DaysAfterAcceptance(days)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("end_of_next_month", EndOfNextMonth()),
        (" End_Of_Next_Month ", EndOfNextMonth()),
        ("days_after_acceptance(30)", DaysAfterAcceptance(30)),
        ("days_after_acceptance ( 0 ) ", DaysAfterAcceptance(0)),
    ],
)
def test_rule_text_parses_and_round_trips(text: str, rule: PaymentRule) -> None:
    assert parse_payment_rule(text) == rule
    assert parse_payment_rule(str(rule)) == rule


def test_rule_text_is_canonical() -> None:
    assert str(EndOfNextMonth()) == "end_of_next_month"
    assert str(DaysAfterAcceptance(30)) == "days_after_acceptance(30)"


@pytest.mark.parametrize("text", ["", "next_month", "days_after_acceptance(-3)", "days_after_acceptance(30.5)"])
def test_bad_rule_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="bad payment rule"):
        parse_payment_rule(text)


DUE = dt.date(2026, 2, 28)


@pytest.mark.parametrize(
    ("paid", "amount", "as_of", "days"),
    [
        (D(0), D("100.00"), dt.date(2026, 2, 28), 0),  # on the due date: not yet overdue
        (D(0), D("100.00"), dt.date(2026, 3, 1), 1),
        (D("99.99"), D("100.00"), dt.date(2026, 3, 31), 31),
        (D("100.00"), D("100.00"), dt.date(2026, 3, 31), 0),  # paid in full
        (D("120.00"), D("100.00"), dt.date(2026, 3, 31), 0),  # overpaid
        (D(0), D(0), dt.date(2026, 3, 31), 0),  # nothing to pay
    ],
)
def test_overdue_days(paid: Decimal, amount: Decimal, as_of: dt.date, days: int) -> None:
    assert overdue_days(DUE, paid, amount, as_of) == days


@pytest.mark.parametrize(
    ("paid", "amount", "message"),
    [
        (D(0), D("-1.00"), "line amount must not be negative"),
        (D(0), D("NaN"), "line amount must not be negative"),
        (D("-0.01"), D("1.00"), "paid amount must not be negative"),
        (D("Infinity"), D("1.00"), "paid amount must not be negative"),
    ],
)
def test_negative_amounts_are_refused(paid: Decimal, amount: Decimal, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        overdue_days(DUE, paid, amount, DUE)


def test_line_status() -> None:
    status = line_status(dt.date(2026, 1, 15), D("500.00"), D("200.00"), dt.date(2026, 3, 10))
    assert (status.due_on, status.outstanding, status.days_overdue, status.overdue) == (
        dt.date(2026, 2, 28),
        D("300.00"),
        10,
        True,
    )
    henan = line_status(dt.date(2026, 1, 15), D("500.00"), D("200.00"), dt.date(2026, 2, 20), HENAN_PAYMENT_RULE)
    assert (henan.due_on, henan.days_overdue) == (dt.date(2026, 2, 14), 6)
    overpaid = line_status(dt.date(2026, 1, 15), D("500.00"), D("600.00"), dt.date(2026, 3, 10))
    assert (overpaid.outstanding, overpaid.days_overdue, overpaid.overdue) == (D(0), 0, False)


accepted_dates = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(9998, 11, 30))


@given(accepted_dates)
def test_end_of_next_month_is_the_last_day_of_the_following_month(accepted: dt.date) -> None:
    due = due_date(accepted, EndOfNextMonth())
    assert due > accepted
    assert (due.year * 12 + due.month) - (accepted.year * 12 + accepted.month) == 1
    assert due.day == calendar.monthrange(due.year, due.month)[1]
    assert (due + dt.timedelta(days=1)).day == 1


@given(accepted_dates, st.integers(min_value=0, max_value=365))
def test_days_after_acceptance_adds_calendar_days(accepted: dt.date, days: int) -> None:
    assert (due_date(accepted, DaysAfterAcceptance(days)) - accepted).days == days


@given(
    st.dates(min_value=dt.date(2020, 1, 1), max_value=dt.date(2030, 12, 31)),
    st.decimals(min_value=0, max_value=10**6, places=2),
    st.decimals(min_value=0, max_value=10**6, places=2),
)
def test_overdue_only_while_unpaid_and_past_due(as_of: dt.date, paid: Decimal, amount: Decimal) -> None:
    status = line_status(dt.date(2025, 6, 15), amount, paid, as_of)
    assert status.outstanding >= 0
    assert status.outstanding + min(paid, amount) == amount
    assert status.overdue == (as_of > status.due_on and paid < amount)
    assert status.days_overdue == (max((as_of - status.due_on).days, 0) if paid < amount else 0)
