"""Completion with and without the days of a supply interruption (R-I2, issue 7)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from jicai.core.tenancy import Scope
from jicai.monitoring.hooks import INTERRUPTION_SCHEMA
from jicai.monitoring.progress import progress
from tests.monitoring import HN, HN2, SELECTED, D, add_purchases, by, open_query

pytestmark = pytest.mark.django_db

MID_YEAR = D(2023, 5, 1)  # day 182 of the 365-day year 2022-11-01 … 2023-10-31
THRESHOLDS = {"national": (Decimal("0.90"), Decimal("0.70")), "shanxi": (Decimal("0.90"), Decimal("0.70"))}


def _breaks(*rows: tuple[str | None, Any, Any]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {"batch_code": "HN-N7", "item_code": "A01", "institution_code": inst, "start_on": s, "end_on": e}
            for inst, s, e in rows
        ],
        schema=INTERRUPTION_SCHEMA,
    )


def _rows(home: Any, **kw: Any) -> dict[Any, dict[str, Any]]:
    with open_query(home, Scope.system("test")) as q:
        return by(progress(q, MID_YEAR, thresholds=THRESHOLDS, **kw), "institution_code")


def test_an_interruption_is_taken_out_of_the_period(world: Any, settings: Any) -> None:
    # given 4,000 of 10,000 counted at mid-year (behind: 0.40 < 0.9 × 0.4986) and a 61-day interruption
    # (2023-01-01 … 2023-03-02) plus an overlapping one (2023-03-01 … 2023-03-10) at this hospital only
    add_purchases(settings.JICAI_HOME, [("p1", HN, SELECTED, D(2023, 1, 5), 4000)])
    breaks = _breaks((HN, D(2023, 1, 1), D(2023, 3, 2)), (HN, D(2023, 3, 1), D(2023, 3, 10)))
    # when
    row = _rows(settings.JICAI_HOME, interruptions=breaks)[HN]
    # then the plain figures are unchanged
    assert (row["completion"], row["elapsed"], row["status"]) == (Decimal("0.4000"), Decimal("0.4986"), "behind")
    # and 69 distinct days are taken out: agreed pro rata 10,000 × 296/365 = 8,109.59, elapsed 113/296
    assert row["affected_days"] == 69
    assert row["completion_adjusted"] == Decimal("0.4932")  # 4,000 × 365 / (10,000 × 296)
    assert row["elapsed_adjusted"] == Decimal("0.3818")  # (182 − 69) / (365 − 69)
    assert row["status_adjusted"] == "on_track"  # 0.4932 ≥ 0.9 × 0.3818


def test_open_and_region_wide_interruptions_count_up_to_the_as_of_date(world: Any, settings: Any) -> None:
    # given an open region-wide interruption since 2023-04-22 (10 days to 2023-05-01) and a future one
    add_purchases(settings.JICAI_HOME, [("p1", HN, SELECTED, D(2023, 1, 5), 4000)])
    breaks = _breaks((None, D(2023, 4, 22), None), (None, D(2023, 6, 1), D(2023, 6, 30)))
    # when
    rows = _rows(settings.JICAI_HOME, interruptions=breaks)
    # then every institution of the batch has the 10 days known so far, none of the future ones
    assert rows[HN]["affected_days"] == 10
    assert rows[HN]["elapsed_adjusted"] == Decimal("0.4845")  # 172 / 355
    assert rows[HN]["completion_adjusted"] == Decimal("0.4113")  # 4,000 × 365 / (10,000 × 355)


def test_without_interruptions_the_adjusted_figures_are_the_plain_ones(world: Any, settings: Any) -> None:
    add_purchases(settings.JICAI_HOME, [("p1", HN, SELECTED, D(2023, 1, 5), 4000)])
    for kw in ({}, {"interruptions": _breaks()}, {"interruptions": _breaks((HN2, D(2023, 1, 1), D(2023, 2, 1)))}):
        row = _rows(settings.JICAI_HOME, **kw)[HN]
        assert row["affected_days"] == 0
        assert (row["completion_adjusted"], row["elapsed_adjusted"], row["status_adjusted"]) == (
            row["completion"],
            row["elapsed"],
            row["status"],
        )
