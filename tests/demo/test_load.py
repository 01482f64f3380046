"""The demo loaded through the real importers and cycle: clean imports, visible scenarios, harmless reloads."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from jicai.accounts.models import User
from jicai.core.tenancy import Scope, system_scope
from jicai.demo import hainan
from jicai.demo.loader import DEMO_HOSPITAL, DEMO_USERS, load_province, run_demo_cycle, summarise
from jicai.demo.province import DEMO_AS_OF, Province, generate, scenarios
from jicai.imports.models import ImportRun
from jicai.monitoring.models import Alert, AlertStatus
from jicai.monitoring.reports import ReportRequest, run_report
from jicai.policy.profile import ProfileLibrary

SMALL = 8
BEHIND = {"behind", "at_risk"}


def report(name: str, home: Path, scope: Scope | None = None) -> list[dict[str, Any]]:
    table = run_report(
        name, scope or Scope.system("test"), ReportRequest(as_of=DEMO_AS_OF), home=home, profiles=ProfileLibrary()
    )
    return table.to_pylist()


def current(row: dict[str, Any]) -> bool:
    return bool(row["period_start"] <= DEMO_AS_OF <= row["period_end"])


def behind_share(progress: list[dict[str, Any]], institution: str) -> float:
    rows = [r for r in progress if r["institution_code"] == institution and current(r)]
    return sum(r["status"] in BEHIND for r in rows) / len(rows)


def runs() -> list[ImportRun]:
    with system_scope("test"):
        return list(ImportRun.objects.order_by("pk"))


def test_demo_command_loads_a_clean_province_whose_scenarios_the_engine_finds(db: Any, settings: Any) -> None:
    home = Path(settings.JICAI_HOME)
    out = StringIO()
    call_command("demo", "--institutions", str(SMALL), stdout=out)
    text = out.getvalue()
    assert "cardiology" in text
    assert "jicai-demo-2026" in text
    assert "汇总 / summary" in text
    assert f"页面预热 warm：{SMALL} 家医疗机构" in text  # the screens' on-demand reports are on disk
    assert list((home / "results" / "ondemand").glob("*/*.parquet"))
    first = runs()
    assert len(first) == 21
    assert all(r.status == "applied" and r.rejected == 0 and r.warnings == 0 for r in first)
    scen = scenarios(institutions=SMALL)

    progress = report("progress", home)
    for laggard in scen.lagging:
        assert behind_share(progress, laggard) >= 0.5
    normal = [c for c, s in zip(hainan.INSTITUTION_CODES, hainan.ROSTER[:SMALL], strict=False) if s.role == "normal"]
    assert all(behind_share(progress, c) <= 0.1 for c in normal)
    demo_items = {
        r["item_code"]: r["status"] for r in progress if r["institution_code"] == DEMO_HOSPITAL and current(r)
    }
    assert all(demo_items[i] in BEHIND for i in scen.demo_lag_items)

    substitutes = report("substitutes", home)
    latest = [r for r in substitutes if r["month"] == "2026-11"]
    over = Counter(r["institution_code"] for r in latest if r["cap_exceeded"])
    breaker_items = sum(r["institution_code"] == scen.cap_breaker for r in latest)
    assert over[scen.cap_breaker] >= breaker_items * 0.8
    assert over.most_common(1)[0][0] == scen.cap_breaker
    it = scen.interruption
    for inst in it.institution_codes:
        window = [
            r
            for r in substitutes
            if r["institution_code"] == inst and r["item_code"] == it.item_code and r["month"] in {"2026-07", "2026-08"}
        ]
        assert window
        assert all(r["selected_qty"] == 0 and r["non_selected_share"] > r["substitute_share"] for r in window)

    payables = report("payables", home)
    overdue = Counter(r["institution_code"] for r in payables if r["overdue"])
    assert set(overdue) == {scen.late_heavy, scen.late_light}
    assert overdue[scen.late_heavy] > overdue[scen.late_light]

    with system_scope("test"):
        alerts = {(a.kind, a.institution_code) for a in Alert.objects.filter(status=AlertStatus.OPEN)}
        alert_count = Alert.objects.count()
    assert ("cap_exceeded", scen.cap_breaker) in alerts
    assert ("overdue_payment", scen.late_heavy) in alerts
    assert all(("behind_schedule", c) in alerts for c in scen.lagging)

    # A hospital login sees its own hospital only, the cardiology head its department's dispensing
    vbp = User.objects.get(username="vbp")
    own = report("progress", home, vbp.scope())
    assert own
    assert {r["institution_code"] for r in own} == {DEMO_HOSPITAL}
    head = User.objects.get(username="cardiology")
    assert head.department is not None
    assert head.department.name == "心血管内科"
    assert {login.username for login in DEMO_USERS} <= set(User.objects.values_list("username", flat=True))

    # Loading again changes nothing: master rows unchanged, fact lines merged, no new alert
    call_command("demo", "--institutions", str(SMALL), stdout=StringIO())
    second = runs()[len(first) :]
    assert len(second) == 21
    assert all(r.created == 0 and r.updated == 0 and r.unchanged == r.total_rows for r in second)
    with system_scope("test"):
        assert Alert.objects.count() == alert_count

    # Another seed over it would mix two provinces: refused with a usage error
    with pytest.raises(CommandError) as refused:
        call_command("demo", "--seed", "1", "--institutions", str(SMALL), stdout=StringIO())
    assert refused.value.returncode == 2


def test_the_default_province_loads_clean(db: Any, settings: Any) -> None:
    # (its time is printed by `jicai demo`, not asserted here: timings depend on the machine's load)
    province: Province = generate()
    results = load_province(province)
    cycle = run_demo_cycle()
    assert all(r.status == "applied" and not r.issues for r in results)
    counts = summarise()
    assert (counts.institutions, counts.items) == (60, 39)
    assert counts.lines == {name: province.rows(name) for name in ("purchases", "payments", "dispensing")}
    assert 150_000 < sum(counts.lines.values()) < 600_000
    assert cycle.full_rebuild
    assert cycle.as_of == dt.date(2026, 11, 30)
    assert {"behind_schedule", "cap_exceeded", "overdue_payment", "tranche_fired"} <= set(counts.alerts)
