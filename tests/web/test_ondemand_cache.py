"""Institutions' on-demand reports (tranche schedule, department progress) kept on disk per cycle run.

The first page after a restart or after ``jicai cycle --warm`` reads them instead of computing them;
the stored rows are the institution's alone, a department head's view has its own entry, and a new
cycle run drops the old entries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jicai.monitoring import dashboard
from jicai.monitoring.dashboard import CACHE, RESULTS, STORED, cycle_state, ondemand_dir, prune_ondemand, warm_ondemand

from .conftest import HK, client_for

pytestmark = pytest.mark.django_db


def _entries(home: Path) -> set[str]:
    run = (cycle_state(home) or {}).get("run")
    return {p.name for p in ondemand_dir(home, run).glob("*.parquet")}


def _restart() -> None:
    CACHE.clear()
    RESULTS.clear()
    STORED.clear()


def test_warmed_reports_serve_the_first_page_without_computing(site: Any, settings: Any, monkeypatch: Any) -> None:
    home = Path(settings.JICAI_HOME)
    count, _seconds = warm_ondemand(home)
    assert count >= 2  # the Hainan and Shaanxi hospitals with agreements
    warmed = _entries(home)
    assert warmed
    _restart()

    def refuse(*_args: Any, **_kw: Any) -> Any:
        raise AssertionError("computed although warmed")

    monkeypatch.setattr(dashboard.Dashboard, "report", refuse)
    for user in ("hn_vbp", "hn_admin"):  # the hospital's office and the bureau read the same entries
        r = client_for(site, user).get(f"/institutions/{HK}/")
        assert r.status_code == 200
        assert r.context["tranches"]
        assert {t["institution_code"] for t in r.context["tranches"]} == {HK}
        _restart()
    assert _entries(home) == warmed


def test_a_department_head_gets_its_own_entry(site: Any, settings: Any) -> None:
    home = Path(settings.JICAI_HOME)
    warm_ondemand(home, [HK])
    before = _entries(home)
    r = client_for(site, "hn_head").get(f"/institutions/{HK}/departments/NK01/")
    assert r.status_code == 200
    assert {row["department_code"] for row in r.context["rows"]} <= {"NK01"}
    assert len(_entries(home) - before) == 1


def test_a_new_cycle_run_drops_the_old_entries(site: Any, settings: Any) -> None:
    home = Path(settings.JICAI_HOME)
    warm_ondemand(home, [HK])
    run = (cycle_state(home) or {}).get("run")
    assert _entries(home)
    prune_ondemand(home, (run or 0) + 1)
    assert not ondemand_dir(home, run).exists()
