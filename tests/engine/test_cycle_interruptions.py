"""Supply interruptions reach the cycle through the engine hook (R-I2): exemptions and adjusted completion."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from jicai.monitoring import hooks
from jicai.monitoring.cycle import read_result, run_cycle
from jicai.policy.profile import ProfileLibrary
from tests.conftest import World
from tests.engine.test_cycle_and_reports import _import, _line, purchases_csv

HN = "H46010800001"


@pytest.fixture
def breaks(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """A registered interruption source whose rows a test edits (the supply app's role)."""
    rows: list[dict[str, Any]] = []
    monkeypatch.setattr(hooks, "_interruption_sources", [])
    hooks.register_interruption_source(lambda _as_of: pa.Table.from_pylist(rows, schema=hooks.INTERRUPTION_SCHEMA))
    return rows


def _row(home: Path) -> dict[str, Any]:
    table = read_result(home, "progress")
    assert table is not None
    return table.filter(pc.equal(table["institution_code"], HN)).to_pylist()[0]


def test_an_interruption_recorded_later_recomputes_the_adjusted_figures(
    world: World, settings: Any, breaks: list[dict[str, Any]]
) -> None:
    home = Path(settings.JICAI_HOME)
    # given 4,000 selected units by the end of April (agreement year 2022-11-01 … 2023-10-31)
    _import(purchases_csv(_line("L1", HN, "2023-01-05", 4000)))
    profiles = ProfileLibrary()
    run_cycle(home, dt.date(2023, 4, 30), profiles=profiles)
    before = _row(home)
    assert before["affected_days"] == 0
    assert before["completion_adjusted"] == before["completion"]
    # when the hospital records a 31-day interruption in March and the cycle runs again with no new data
    breaks.append(
        {
            "batch_code": "HN-N7",
            "item_code": "A01",
            "institution_code": HN,
            "start_on": dt.date(2023, 3, 1),
            "end_on": dt.date(2023, 3, 31),
        }
    )
    again = run_cycle(home, dt.date(2023, 4, 30), profiles=profiles)
    # then progress is recomputed with the days taken out, the plain figures unchanged
    after = _row(home)
    assert again.counts["agreements_recomputed"] >= 1
    assert after["affected_days"] == 31
    assert after["completion"] == before["completion"]
    assert after["completion_adjusted"] > after["completion"]
    assert after["elapsed_adjusted"] < after["elapsed"]
    # and closing the record (removing it) brings the plain figures back
    breaks.clear()
    run_cycle(home, dt.date(2023, 4, 30), profiles=profiles)
    assert _row(home)["affected_days"] == 0
