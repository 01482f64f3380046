"""The incremental cycle computes exactly what a full cycle computes (issue 4: "a new month of data
recomputes only what it touches; a rerun is idempotent; an interrupted run resumes").

A small generated province goes through month after month, a late correction of an old line, a
changed agreement and a new agreement year. After every incremental run, the stored results are
compared with a full recomputation (the state removed), and the full run's alert reconciliation
must find nothing to create, update or resolve — so the incremental alerts were right too.
"""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from benchmarks import generate as gen
from jicai.core.tenancy import Scope, system_scope
from jicai.facts import store
from jicai.facts.query import FactQuery
from jicai.facts.schemas import PURCHASES
from jicai.monitoring import alerts_rules, cycle
from jicai.monitoring.cycle import read_result, run_cycle
from jicai.monitoring.models import Alert
from jicai.monitoring.reference import Reference
from jicai.policy.profile import ProfileLibrary

pytestmark = pytest.mark.django_db

TINY = ["--rows", "6000", "--institutions", "12", "--items", "8", "--departments", "4", "--start", "2023-01"]


def _reference(home: Path) -> Reference:
    ref = home / "reference"
    return Reference(
        agreements=pq.read_table(ref / "agreements.parquet"),
        item_products=pq.read_table(ref / "item_products.parquet"),
        institutions=pq.read_table(ref / "institutions.parquet"),
    )


def _sorted(table: pa.Table | None, keys: list[str]) -> list[dict[str, Any]]:
    assert table is not None
    return table.sort_by([(k, "ascending") for k in keys]).to_pylist()


def _results(home: Path) -> dict[str, Any]:
    return {
        "progress": _sorted(read_result(home, "progress"), ["batch_code", "item_code", "institution_code", "year"]),
        "substitutes": _sorted(
            read_result(home, "substitutes"), ["institution_code", "batch_code", "item_code", "month"]
        ),
        "overdue": _sorted(read_result(home, "overdue"), ["institution_code"]),
    }


def _alerts() -> dict[str, tuple[Any, ...]]:
    with system_scope():
        return {a.key: (a.status, a.message_zh, a.severity, a.first_seen, a.resolved_on) for a in Alert.objects.all()}


def _check_against_full(home: Path, as_of: dt.date, profiles: ProfileLibrary) -> None:
    """A full run on a copy of the facts (same database) finds the incremental results and alerts."""
    incremental, alerts = _results(home), _alerts()
    copy = home.parent / f"{home.name}-full"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(home, copy, ignore=shutil.ignore_patterns("results", "rollups", "*.sqlite3*"))
    full = run_cycle(copy, as_of, profiles=profiles, reference=_reference(copy))
    assert full.full_rebuild
    assert _results(copy) == incremental
    assert (full.counts["alerts_created"], full.counts["alerts_updated"], full.counts["alerts_resolved"]) == (0, 0, 0)
    assert {k: v[:3] for k, v in _alerts().items()} == {k: v[:3] for k, v in alerts.items()}
    # and the cap episodes agree with the pure rule run over the whole stored history
    expected = {c.key for c in alerts_rules.cap_exceeded(read_result(home, "substitutes"))}
    assert expected == {k for k, v in alerts.items() if k.startswith("cap:") and v[0] == "open"}


def _month_end(label: str) -> dt.date:
    year, month = int(label[:4]), int(label[5:])
    return (dt.date(year, month, 28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)


def test_incremental_runs_equal_full_runs(tmp_path: Path, settings: Any) -> None:
    home = Path(settings.JICAI_HOME)
    gen.main(["--home", str(home), *TINY, "--months", "10"])
    profiles = ProfileLibrary()
    first = run_cycle(home, dt.date(2023, 10, 20), profiles=profiles, reference=_reference(home))
    assert first.full_rebuild
    # a mid-month as-of, then its month's end: only the open month is recomputed
    again = run_cycle(home, dt.date(2023, 10, 31), profiles=profiles, reference=_reference(home))
    assert not again.full_rebuild
    assert again.months_rebuilt == []
    _check_against_full(home, dt.date(2023, 10, 31), profiles)
    # rerun with nothing new: idempotent, nothing written
    same = run_cycle(home, dt.date(2023, 10, 31), profiles=profiles, reference=_reference(home))
    assert not same.full_rebuild
    assert (same.counts["alerts_created"], same.counts["alerts_updated"], same.counts["alerts_resolved"]) == (0, 0, 0)
    # three more months, one at a time; the third crosses into a new agreement year (new agreements)
    for _ in range(3):
        _, label = gen.append_month(home)
        result = run_cycle(home, _month_end(label), profiles=profiles, reference=_reference(home))
        assert not result.full_rebuild, result
        assert result.months_rebuilt == [label]
        _check_against_full(home, _month_end(label), profiles)
    # in January the ended 2023 years keep their stored rows: only the new year is computed
    assert label == "2024-01"
    assert 0 < result.counts["agreements_recomputed"] < result.counts["agreements"]


def test_corrections_and_changed_agreements(tmp_path: Path, settings: Any) -> None:
    home = Path(settings.JICAI_HOME)
    gen.main(["--home", str(home), *TINY, "--months", "8"])
    profiles = ProfileLibrary()
    as_of = dt.date(2023, 8, 31)
    run_cycle(home, as_of, profiles=profiles, reference=_reference(home))
    # a correction of an old line (March): its month is rebuilt, later months follow
    with FactQuery(home, Scope.system("test")) as q:
        line = q.arrow("SELECT * FROM purchases WHERE month = '2023-03' ORDER BY line_id LIMIT 1")
    fixed = line.set_column(
        line.schema.get_field_index("qty"), "qty", pa.array([Decimal("999.0000")], PURCHASES.schema.field("qty").type)
    )
    store.upsert(home, PURCHASES, fixed)
    result = run_cycle(home, as_of, profiles=profiles, reference=_reference(home))
    assert not result.full_rebuild
    assert result.months_rebuilt == ["2023-03"]
    _check_against_full(home, as_of, profiles)
    # an agreement's volume changes: its year is recomputed
    ref = home / "reference" / "agreements.parquet"
    agreements = pq.read_table(ref)
    qty = agreements.column("agreed_qty").to_pylist()
    qty[0] = qty[0] * 10
    pq.write_table(
        agreements.set_column(
            agreements.schema.get_field_index("agreed_qty"),
            "agreed_qty",
            pa.array(qty, agreements.schema.field("agreed_qty").type),
        ),
        ref,
    )
    result = run_cycle(home, as_of, profiles=profiles, reference=_reference(home))
    assert not result.full_rebuild
    assert result.counts["agreements_recomputed"] >= 1
    _check_against_full(home, as_of, profiles)


def test_an_interrupted_run_resumes(tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    home = Path(settings.JICAI_HOME)
    gen.main(["--home", str(home), *TINY, "--months", "15"])  # cap episodes longer than a year
    profiles = ProfileLibrary()
    run_cycle(home, dt.date(2024, 3, 31), profiles=profiles, reference=_reference(home))
    _, label = gen.append_month(home)

    def boom(*args: Any, **kw: Any) -> None:
        raise RuntimeError("power cut")

    # when the run dies after writing its results but before its state
    monkeypatch.setattr(cycle, "_save_state", boom)
    with pytest.raises(RuntimeError):
        run_cycle(home, _month_end(label), profiles=profiles, reference=_reference(home))
    monkeypatch.undo()
    # then the next run redoes the month and ends where a full run ends
    result = run_cycle(home, _month_end(label), profiles=profiles, reference=_reference(home))
    assert not result.full_rebuild
    assert result.months_rebuilt == [label]
    _check_against_full(home, _month_end(label), profiles)
    progress = read_result(home, "progress")
    assert progress is not None
    assert pc.sum(progress["counted_qty"]).as_py() > 0
