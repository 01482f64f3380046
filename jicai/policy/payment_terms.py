"""Supplier payment deadline and overdue days (R-E1; semantics.md "Supplier payment deadline").

Institutions pay suppliers for each accepted delivery line by a due date that a regional rule sets:
by default (SX 五(四)) the end of the month after the acceptance month; some regions give a number of
days after acceptance instead (Henan: 30, rule-facts.md). A line is overdue on a date after its due
date while less than its amount has been paid; the days overdue feed the late-payer monitoring of
XA 三(三)2 and JL 三(五).

Rules have a text form for profiles, given back by ``str()``: ``end_of_next_month`` and
``days_after_acceptance(30)``.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal

from jicai.policy.money import ZERO


@dataclass(frozen=True, slots=True)
class EndOfNextMonth:
    """Due on the last day of the calendar month after the acceptance month (SX 五(四) 次月底)."""

    def __str__(self) -> str:
        return "end_of_next_month"


@dataclass(frozen=True, slots=True)
class DaysAfterAcceptance:
    """Due a fixed number of calendar days after the acceptance date (Henan: 30)."""

    days: int

    def __post_init__(self) -> None:
        if isinstance(self.days, bool) or not isinstance(self.days, int) or self.days < 0:
            raise ValueError(f"days after acceptance must be a whole number >= 0, got {self.days!r}")

    def __str__(self) -> str:
        return f"days_after_acceptance({self.days})"


PaymentRule = EndOfNextMonth | DaysAfterAcceptance

#: Shanxi (SX 五(四)): paid no later than the end of the month after acceptance. The default rule.
SHANXI_PAYMENT_RULE = EndOfNextMonth()
#: Henan (rule-facts.md, national prepayment notes): within 30 days of acceptance.
HENAN_PAYMENT_RULE = DaysAfterAcceptance(30)
#: The default when a profile names no rule (semantics.md): Shanxi's.
DEFAULT_PAYMENT_RULE: PaymentRule = SHANXI_PAYMENT_RULE

_DAYS_RULE = re.compile(r"\s*days_after_acceptance\s*\(\s*([0-9]+)\s*\)\s*", re.IGNORECASE)


def parse_payment_rule(text: str) -> PaymentRule:
    """Parse a profile's payment rule text (R-E1); ``str(rule)`` gives the text back."""
    if text.strip().lower() == "end_of_next_month":
        return EndOfNextMonth()
    match = _DAYS_RULE.fullmatch(text)
    if match is None:
        raise ValueError(
            f"bad payment rule {text!r}: expected 'end_of_next_month' or 'days_after_acceptance(N)' with N >= 0"
        )
    return DaysAfterAcceptance(int(match.group(1)))


def due_date(accepted_on: dt.date, rule: PaymentRule = DEFAULT_PAYMENT_RULE) -> dt.date:
    """Date by which the institution must pay for a line accepted on ``accepted_on`` (R-E1)."""
    if isinstance(rule, DaysAfterAcceptance):
        return accepted_on + dt.timedelta(days=rule.days)
    year, month = (accepted_on.year + 1, 1) if accepted_on.month == 12 else (accepted_on.year, accepted_on.month + 1)
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _check_amounts(paid_amount: Decimal, line_amount: Decimal) -> None:
    if not line_amount.is_finite() or line_amount < ZERO:
        raise ValueError(f"line amount must not be negative, got {line_amount}")
    if not paid_amount.is_finite() or paid_amount < ZERO:
        raise ValueError(f"paid amount must not be negative, got {paid_amount}")


def overdue_days(due: dt.date, paid_amount: Decimal, line_amount: Decimal, as_of: dt.date) -> int:
    """Days a line is overdue on ``as_of`` (R-E1): 0 unless as_of > due and paid < amount, else as_of − due.

    ``paid_amount`` is what has been paid for the line by ``as_of``.
    """
    _check_amounts(paid_amount, line_amount)
    if as_of > due and paid_amount < line_amount:
        return (as_of - due).days
    return 0


@dataclass(frozen=True, slots=True)
class LineStatus:
    """Payment state of one accepted line on a date (R-E1)."""

    due_on: dt.date
    outstanding: Decimal  # line amount − paid, never negative (an overpayment shows as 0)
    days_overdue: int

    @property
    def overdue(self) -> bool:
        """True when the line is past due and not fully paid."""
        return self.days_overdue > 0


def line_status(
    accepted_on: dt.date,
    line_amount: Decimal,
    paid_amount: Decimal,
    as_of: dt.date,
    rule: PaymentRule = DEFAULT_PAYMENT_RULE,
) -> LineStatus:
    """Due date, amount still to pay and days overdue of one accepted line on ``as_of`` (R-E1)."""
    due = due_date(accepted_on, rule)
    days = overdue_days(due, paid_amount, line_amount, as_of)
    return LineStatus(due, max(line_amount - paid_amount, ZERO), days)
