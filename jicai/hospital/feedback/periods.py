"""Appraisal periods (R-H5): a month ``2023-03``, a quarter ``2023-Q1``, a half-year ``2023-H1`` or a
calendar year ``2023``, each with its first and last day. Pure Python."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

_PATTERN = re.compile(r"^(\d{4})(?:-(?:(\d{2})|Q([1-4])|H([12])))?$")


@dataclass(frozen=True, slots=True)
class Period:
    label: str
    start: dt.date
    end: dt.date


def _last_day(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def parse_period(text: str) -> Period:
    """``2023-03`` / ``2023-Q1`` / ``2023-H2`` / ``2023`` → its days; ValueError for anything else."""
    label = (text or "").strip().upper()
    found = _PATTERN.match(label)
    if not found:
        raise ValueError(f"not a period: {text!r} (use 2023-03, 2023-Q1, 2023-H1 or 2023)")
    year = int(found.group(1))
    month, quarter, half = found.group(2), found.group(3), found.group(4)
    if year < 2000 or year > 2100:
        raise ValueError(f"year out of range: {year}")
    if month is not None:
        m = int(month)
        if not 1 <= m <= 12:
            raise ValueError(f"not a month: {text!r}")
        return Period(label, dt.date(year, m, 1), _last_day(year, m))
    if quarter is not None:
        first = (int(quarter) - 1) * 3 + 1
        return Period(label, dt.date(year, first, 1), _last_day(year, first + 2))
    if half is not None:
        first = 1 if half == "1" else 7
        return Period(label, dt.date(year, first, 1), _last_day(year, first + 5))
    return Period(label, dt.date(year, 1, 1), dt.date(year, 12, 31))
