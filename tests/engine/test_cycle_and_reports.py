"""The engine end to end: fact imports, the incremental cycle, reports through CLI and API, in scope."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from jicai.core.tenancy import Scope, system_scope, use_scope
from jicai.facts.query import FactQuery
from jicai.imports.datasets import get_spec
from jicai.imports.engine import run_import
from jicai.monitoring.cycle import run_cycle
from jicai.monitoring.models import Alert, AlertStatus, CycleRun
from jicai.policy.profile import ProfileLibrary
from tests.conftest import World, csv_bytes

HEADER = "line_id,institution_code,product_code,ordered_on,accepted_on,qty,unit_price,amount"


def purchases_csv(*lines: str) -> bytes:
    return csv_bytes("\n".join([HEADER, *lines]))


def _line(line_id: str, inst: str, accepted: str, qty: int, price: str = "0.34") -> str:
    amount = (Decimal(qty) * Decimal(price)).quantize(Decimal("0.01"))
    return f"{line_id},{inst},XC10AAA067A001020101187,{accepted},{accepted},{qty},{price},{amount}"


def _import(data: bytes, scope: Scope | None = None, **kw: Any) -> Any:
    return run_import(get_spec("purchases"), data, "purchases.csv", scope or Scope.system("test"), **kw)


def _count(home: Path) -> int:
    with FactQuery(home, Scope.system("test")) as q:
        return int(q.rows("SELECT count(*) AS n FROM purchases")[0]["n"])


def test_fact_import_is_atomic_and_idempotent(world: World, settings: Any) -> None:
    home = Path(settings.JICAI_HOME)
    # Given a file with a negative quantity and an unknown institution
    broken = purchases_csv(
        _line("L1", "H46010800001", "2022-11-05", 100),
        "L2,H46010800001,XC10AAA067A001020101187,2022-11-05,2022-11-05,-5,0.34,",
        _line("L3", "H99999999999", "2022-11-05", 100),
    )
    result = _import(broken)
    # Then nothing is written and both rows are reported with line and column
    assert result.status == "rejected"
    assert {(i.line, i.column) for i in result.errors} == {(3, "qty"), (4, "institution_code")}
    assert _count(home) == 0
    # When a clean file is imported twice, then once corrected
    good = purchases_csv(_line("L1", "H46010800001", "2022-11-05", 100), _line("L2", "H46010800001", "2022-12-05", 50))
    first, second = _import(good), _import(good)
    assert (first.created, second.created, second.unchanged) == (2, 0, 2)
    fixed = _import(
        purchases_csv(_line("L1", "H46010800001", "2022-11-05", 120), _line("L2", "H46010800001", "2022-12-05", 50))
    )
    assert (fixed.created, fixed.updated, fixed.unchanged) == (0, 1, 1)
    with FactQuery(home, Scope.system("test")) as q:
        assert q.rows("SELECT sum(qty) AS s FROM purchases")[0]["s"] == Decimal(170)


def test_hospital_can_load_only_its_own_lines(world: World) -> None:
    data = purchases_csv(_line("L9", "H61011200123", "2022-11-05", 10))
    result = _import(data, world.scope("hn_vbp"))
    assert result.status == "rejected"
    assert result.errors[0].code == "reference.unknown"


def _seed_lines(home: Path) -> None:
    lines = [_line(f"A{m:02d}", "H46010800001", f"2022-{m:02d}-15", 1000) for m in (11, 12)]
    lines += [_line(f"B{m:02d}", "H46010800001", f"2023-{m:02d}-15", 400) for m in range(1, 5)]
    _import(purchases_csv(*lines))


def test_cycle_is_incremental_and_idempotent(world: World, settings: Any) -> None:
    home = Path(settings.JICAI_HOME)
    _seed_lines(home)
    profiles = ProfileLibrary()
    first = run_cycle(home, dt.date(2023, 4, 30), profiles=profiles)
    assert first.full_rebuild
    with system_scope():
        alerts = {a.key: a for a in Alert.objects.all()}
    # the Hainan agreement (10,000 agreed) has 3,600 by the end of April: 36% at 50% of the year
    behind = [a for a in alerts.values() if a.kind == "behind_schedule" and a.institution_code == "H46010800001"]
    assert behind
    assert "%" in behind[0].message_zh
    assert "阿托伐他汀钙片 完成率" in behind[0].message_zh  # the item's generic name, not its code
    # A rerun with no new data rebuilds nothing and creates no alert twice
    again = run_cycle(home, dt.date(2023, 4, 30), profiles=profiles)
    assert not again.full_rebuild
    assert again.months_rebuilt == []
    assert again.counts["alerts_created"] == 0
    # One more month touches only that month
    _import(purchases_csv(_line("C05", "H46010800001", "2023-05-15", 5000)))
    third = run_cycle(home, dt.date(2023, 5, 31), profiles=profiles)
    assert third.months_rebuilt == ["2023-05"]
    with FactQuery(home, Scope.system("test")) as q:
        rolled = q.rows("SELECT sum(sel_qty + ns_qty + sub_qty) AS s FROM pair_monthly")[0]["s"]
        raw = q.rows("SELECT sum(qty) AS s FROM purchases WHERE accepted_on IS NOT NULL")[0]["s"]
    assert rolled == raw
    with system_scope():
        assert CycleRun.objects.filter(status="done").count() == 3
        # 8,600 of 10,000 by the end of May (58% of the year) is no longer behind
        still = Alert.objects.filter(kind="behind_schedule", institution_code="H46010800001").first()
        assert still is not None
        assert still.status == AlertStatus.RESOLVED


def _report(*args: str) -> Any:
    out = StringIO()
    call_command("report", *args, stdout=out)
    return out.getvalue()


def test_report_command_respects_scope(world: World, settings: Any, capsys: Any, tmp_path: Path) -> None:
    home = Path(settings.JICAI_HOME)
    _seed_lines(home)
    target = tmp_path / "progress.json"
    call_command("report", "progress", "--as-of", "2023-04-30", "--format", "json", "-o", str(target))
    rows = json.loads(target.read_text(encoding="utf-8"))
    mine = [r for r in rows if r["institution_code"] == "H46010800001"]
    assert mine
    assert mine[0]["counted_qty"] in {"3600", "3600.0000", 3600}
    # the other province's hospital sees only its own agreement
    target_sx = tmp_path / "sx.json"
    call_command(
        "report", "progress", "--as-of", "2023-04-30", "--format", "json", "-o", str(target_sx), as_user="sx_vbp"
    )
    assert {r["institution_code"] for r in json.loads(target_sx.read_text(encoding="utf-8"))} <= {"H61011200123"}
    xlsx = tmp_path / "payables.xlsx"
    call_command("report", "payables", "--as-of", "2023-04-30", "-o", str(xlsx))
    assert xlsx.stat().st_size > 0


@pytest.mark.parametrize("name", ["progress", "substitutes", "payables", "prepayments", "settlements", "alerts"])
def test_api_reports_in_scope(world: World, settings: Any, client: Any, name: str) -> None:
    _seed_lines(Path(settings.JICAI_HOME))
    assert client.get(f"/api/v1/reports/{name}?as_of=2023-04-30").status_code == 401
    client.force_login(world.user("sx_vbp"))
    response = client.get(f"/api/v1/reports/{name}?as_of=2023-04-30")
    assert response.status_code == 200
    assert all(r.get("institution_code") in {None, "H61011200123"} for r in response.json()["rows"])
    client.force_login(world.user("hn_admin"))
    data = client.get(f"/api/v1/reports/{name}?as_of=2023-04-30").json()
    assert all(str(r.get("institution_code", "H46")).startswith("H46") for r in data["rows"])


def test_unknown_report_is_404(world: World, client: Any) -> None:
    client.force_login(world.user("hn_admin"))
    assert client.get("/api/v1/reports/nonsense").status_code == 404


def test_fact_queries_need_a_scope(settings: Any) -> None:
    from jicai.core.tenancy import ScopeError

    with use_scope(None), pytest.raises(ScopeError):
        FactQuery(Path(settings.JICAI_HOME), None)
