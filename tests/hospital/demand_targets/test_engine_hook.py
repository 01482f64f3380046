"""Department progress uses the targets the hospital published (R-H3, R-L1; issue 4's hook).

Until a plan is published the engine derives targets from history (NK01 300, SJ01 100, WK01 50 before
the year: 6,667 / 2,222 / 1,111 of 10,000) and a department head's target is unknown; once published,
the plan's targets (NK01 7,500, SJ01 2,500, summed over slices) are the ones progress is measured on.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from jicai.core.tenancy import Scope
from jicai.hospital.targets import actions
from jicai.hospital.targets.queries import published_target_table
from jicai.monitoring.departments import TARGET_SCHEMA, department_progress
from jicai.monitoring.reports import TARGET_SOURCES, ReportRequest, published_targets, run_report
from jicai.policy.profile import ProfileLibrary
from tests.hospital.demand_targets.conftest import HN, WS
from tests.monitoring import open_query

pytestmark = pytest.mark.django_db
AS_OF = dt.date(2023, 5, 1)


def progress(ws: WS, who: str, home: Path) -> dict[str, Any]:
    table = run_report(
        "department-progress",
        ws.scope(who),
        ReportRequest(as_of=AS_OF),
        home=home,
        profiles=ProfileLibrary([home / "profiles"]),
    )
    return {r["department_code"]: r for r in table.to_pylist() if r["institution_code"] == HN}


def targets(rows: dict[str, Any]) -> dict[str, Decimal | None]:
    return {dept: row["target_qty"] for dept, row in rows.items()}


def test_the_hospital_registers_its_source() -> None:
    assert published_target_table in TARGET_SOURCES


def test_published_targets_replace_the_derived_ones(ws: WS, target_facts: None, settings: Any) -> None:
    home = Path(settings.JICAI_HOME)
    # given no published plan: derived targets for the office, unknown for a department head
    assert targets(progress(ws, "hn_vbp", home)) == {
        "NK01": Decimal(6667),
        "SJ01": Decimal(2222),
        "WK01": Decimal(1111),
    }
    assert targets(progress(ws, "hn_head", home)) == {"NK01": None}
    plan = actions.do_generate_targets(ws.scope("hn_vbp"), batch_code="HN-N7", year=1, granularity="quarter").plan
    # a draft changes nothing
    assert targets(progress(ws, "hn_head", home)) == {"NK01": None}
    actions.do_adjust_targets(
        ws.scope("hn_vbp"),
        plan.pk,
        item_code="A01",
        values={("NK01", "2023-Q1"): 1749, ("SJ01", "2023-Q1"): 717},
        reason="调剂",
    )
    actions.do_publish(ws.scope("hn_vbp"), plan.pk)
    # when published: the plan's targets (7,500 − 100 and 2,500 + 100); WK01 has none and used none
    rows = progress(ws, "hn_vbp", home)
    assert targets(rows) == {"NK01": Decimal(7400), "SJ01": Decimal(2600)}
    assert (rows["NK01"]["dispensed_qty"], rows["NK01"]["completion"]) == (Decimal(1000), Decimal("0.1351"))
    # the department head now has a target too: its own
    head = progress(ws, "hn_head", home)
    assert targets(head) == {"NK01": Decimal(7400)}
    assert head["NK01"]["status"] == "at_risk"  # 1,000 / 7,400 = 13.5% at 49.9% of the year
    assert targets(progress(ws, "hn_head2", home)) == {"SJ01": Decimal(2600)}
    # the bureau sees the hospital's published targets
    assert targets(progress(ws, "hn_admin", home)) == {"NK01": Decimal(7400), "SJ01": Decimal(2600)}
    # withdrawn: back to the derivation
    actions.do_unpublish(ws.scope("hn_vbp"), plan.pk, reason="重排")
    assert targets(progress(ws, "hn_head", home)) == {"NK01": None}


def test_the_source_is_scoped(ws: WS, target_facts: None) -> None:
    plan = actions.do_generate_targets(ws.scope("hn_vbp"), batch_code="HN-N7", year=1).plan
    request = ReportRequest(as_of=AS_OF)
    assert published_target_table(ws.scope("hn_vbp"), request) is None  # a draft is not published
    actions.do_publish(ws.scope("hn_vbp"), plan.pk)
    mine = published_target_table(ws.scope("hn_head"), request)
    assert mine is not None
    # the department's summed target, and a marker that the agreement is covered
    assert sorted((r["department_code"] or "", r["target_qty"]) for r in mine.to_pylist()) == [
        ("", Decimal(0)),
        ("NK01", Decimal(7500)),
    ]
    assert published_target_table(ws.scope("hn2_vbp"), request) is None
    assert published_target_table(ws.scope("sx_admin"), request) is None
    assert published_target_table(ws.scope("hn_vbp"), ReportRequest(as_of=AS_OF, batch="OTHER")) is None
    assert published_targets(ws.scope("hn2_vbp"), request) is None
    combined = published_targets(ws.scope("hn_vbp"), ReportRequest(as_of=AS_OF, institution=HN))
    assert combined is not None
    assert combined.schema == TARGET_SCHEMA


def test_a_covering_marker_alone_gives_zero_targets(ws: WS, target_facts: None, settings: Any) -> None:
    # given only a NULL-department row for the agreement: every department's target is 0, none unknown
    marker = pa.Table.from_pylist(
        [
            {
                "batch_code": "HN-N7",
                "item_code": "A01",
                "institution_code": HN,
                "year": 1,
                "department_code": None,
                "target_qty": Decimal(0),
            }
        ],
        schema=TARGET_SCHEMA,
    )
    head = ws.scope("hn_head")
    with open_query(Path(settings.JICAI_HOME), head) as q:
        table = department_progress(
            q, AS_OF, thresholds={"national": (Decimal("0.9"), Decimal("0.7"))}, published_targets=marker
        )
    (row,) = table.to_pylist()
    assert (row["department_code"], row["target_qty"], row["status"]) == ("NK01", Decimal(0), "completed")
    with open_query(Path(settings.JICAI_HOME), Scope.system("test")) as q:
        empty = department_progress(
            q,
            AS_OF,
            thresholds={"national": (Decimal("0.9"), Decimal("0.7"))},
            published_targets=TARGET_SCHEMA.empty_table(),
            institution=HN,
        )
    assert {r["department_code"]: r["target_qty"] for r in empty.to_pylist()}["NK01"] == Decimal(6667)


def test_the_report_api_uses_published_targets(ws: WS, target_facts: None) -> None:
    plan = actions.do_generate_targets(ws.scope("hn_vbp"), batch_code="HN-N7", year=1).plan
    actions.do_publish(ws.scope("hn_vbp"), plan.pk)
    response = ws.client("hn_head").get("/api/v1/reports/department-progress", {"as_of": "2023-05-01"})
    assert response.status_code == 200
    assert [(r["department_code"], r["target_qty"]) for r in response.json()["rows"]] == [("NK01", "7500.0000")]
