"""The engine's inputs from the incident register (R-I2): an open interruption exempts non-selected
purchases from the cap (``substitutes(..., interruptions=open_interruptions(...))``), and the affected
days per agreement year let progress show completion with and without them."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from jicai.core.tenancy import Scope, system_scope
from jicai.facts.query import FactQuery
from jicai.monitoring.reference import load_reference
from jicai.monitoring.substitutes import INTERRUPTION_SCHEMA, _interruptions, substitutes
from jicai.policy.supply import adjusted_completion
from jicai.supply.actions import (
    IncidentInput,
    do_close_incident,
    do_confirm_incident,
    do_reject_incident,
    do_report_incident,
)
from jicai.supply.queries import AFFECTED_DAYS_SCHEMA, affected_days, affected_intervals, open_interruptions
from tests.conftest import World

from .conftest import HN, HN2, NON_SELECTED, SELECTED, D, import_purchases, purchase_line

pytestmark = pytest.mark.django_db

AS_OF = D(2022, 12, 31)
CAP = {"national": Decimal(1)}


def report(world: World, user: str = "hn_vbp", **kw: Any) -> int:
    values: dict[str, Any] = {
        "batch_code": "HN-N7",
        "item_code": "A01",
        "kind": "interruption",
        "start_on": D(2022, 11, 15),
        "cause": "配送中断",
        "product_code": SELECTED,
    }
    return do_report_incident(world.scope(user), IncidentInput(**(values | kw))).pk


def confirmed(world: World, *, end: Any = None, **kw: Any) -> int:
    pk = report(world, **kw)
    do_confirm_incident(world.scope("hn_admin"), pk)
    if end is not None:
        do_close_incident(world.scope("hn_admin"), pk, end_on=end)
    return pk


def monthly(home: Path, interruptions: pa.Table | None) -> dict[str, dict[str, Any]]:
    ref = load_reference(Scope.system("test"))
    with FactQuery(home, Scope.system("test")) as q:
        q.register("agreements", ref.agreements)
        q.register("item_products", ref.item_products)
        table = substitutes(q, AS_OF, cap_ratio=CAP, interruptions=interruptions, institution=HN, ordered=True)
    return {row["month"]: row for row in table.to_pylist()}


def test_an_open_interruptions_table_is_what_the_engine_reads(supply_world: World) -> None:
    # Given one confirmed interruption still open, one closed, one only reported, one rejected
    open_pk = confirmed(supply_world)
    confirmed(supply_world, end=D(2022, 10, 20), start_on=D(2022, 10, 1), kind="shortage")
    report(supply_world, start_on=D(2022, 12, 1))
    rejected = report(supply_world, start_on=D(2022, 12, 5))
    do_reject_incident(supply_world.scope("hn_admin"), rejected, "无断供证明")
    report(supply_world, user="hn_admin", start_on=D(2023, 2, 1), kind="shortage")  # starts after as_of
    # When the engine's input is built for the cycle (no scope: the system's)
    table = open_interruptions(None, AS_OF)
    # Then it has exactly the engine's columns and types, and the engine reads it unchanged
    assert table.schema == INTERRUPTION_SCHEMA
    assert _interruptions(table).to_pylist() == [
        {
            "batch_code": "HN-N7",
            "item_code": "A01",
            "institution_code": HN,
            "start_on": D(2022, 10, 1),
            "end_on": D(2022, 10, 20),
        },
        {
            "batch_code": "HN-N7",
            "item_code": "A01",
            "institution_code": HN,
            "start_on": D(2022, 11, 15),
            "end_on": None,
        },
    ]
    assert open_pk
    # the unconfirmed report counts only when asked for
    assert open_interruptions(None, AS_OF, include_reported=True).num_rows == 3
    # and only interruptions when shortages are not exempting
    assert open_interruptions(None, AS_OF, kinds=("interruption",)).num_rows == 1


def test_non_selected_purchases_inside_the_incident_window_are_exempt_from_the_cap(
    supply_world: World, settings: Any
) -> None:
    # Given 50 selected tablets in November and non-selected purchases before, during and after an
    # interruption from 15 to 30 November 2022 (confirmed by the bureau, then closed)
    import_purchases(
        [
            purchase_line(
                "S1", HN, SELECTED, ordered=D(2022, 11, 1), delivered=D(2022, 11, 2), accepted=D(2022, 11, 3), qty=50
            ),
            purchase_line(
                "N1",
                HN,
                NON_SELECTED,
                ordered=D(2022, 11, 8),
                delivered=D(2022, 11, 9),
                accepted=D(2022, 11, 10),
                qty=30,
            ),
            purchase_line(
                "N2",
                HN,
                NON_SELECTED,
                ordered=D(2022, 11, 18),
                delivered=D(2022, 11, 19),
                accepted=D(2022, 11, 20),
                qty=60,
            ),
            purchase_line(
                "N3",
                HN,
                NON_SELECTED,
                ordered=D(2022, 11, 28),
                delivered=D(2022, 11, 29),
                accepted=D(2022, 11, 30),
                qty=15,
            ),
            purchase_line(
                "N4",
                HN,
                NON_SELECTED,
                ordered=D(2022, 12, 8),
                delivered=D(2022, 12, 9),
                accepted=D(2022, 12, 10),
                qty=40,
            ),
        ]
    )
    confirmed(supply_world, end=D(2022, 11, 30))
    home = Path(settings.JICAI_HOME)
    # When the cap is computed without and with the register's interruptions
    without = monthly(home, None)
    with_breaks = monthly(home, open_interruptions(None, AS_OF))
    # Then without them November's 105 non-selected exceed the 50 selected
    assert (without["2022-11"]["exempt_qty"], without["2022-11"]["cum_non_selected_qty"]) == (Decimal(0), Decimal(105))
    assert without["2022-11"]["cap_exceeded"] is True
    # With them the 75 accepted on 20 and 30 November are exempt (still reported as bought), the 30 of
    # 10 November count: within the cap of 50
    nov = with_breaks["2022-11"]
    assert (nov["non_selected_qty"], nov["exempt_qty"], nov["cum_non_selected_qty"], nov["cap_limit"]) == (
        Decimal(105),
        Decimal(75),
        Decimal(30),
        Decimal(50),
    )
    assert nov["cap_exceeded"] is False
    # December is outside the window: its 40 count, 30 + 40 = 70 > 50
    dec = with_breaks["2022-12"]
    assert (dec["exempt_qty"], dec["cum_non_selected_qty"], dec["cap_exceeded"]) == (Decimal(0), Decimal(70), True)


def test_an_incident_still_open_exempts_everything_since_its_start(supply_world: World, settings: Any) -> None:
    import_purchases(
        [
            purchase_line("S1", HN, SELECTED, accepted=D(2022, 11, 3), qty=50),
            purchase_line("N2", HN, NON_SELECTED, accepted=D(2022, 11, 20), qty=60),
            purchase_line("N4", HN, NON_SELECTED, accepted=D(2022, 12, 10), qty=40),
        ]
    )
    confirmed(supply_world)  # from 15 November, no end
    rows = monthly(Path(settings.JICAI_HOME), open_interruptions(None, AS_OF))
    assert (rows["2022-11"]["exempt_qty"], rows["2022-12"]["exempt_qty"]) == (Decimal(60), Decimal(40))
    assert rows["2022-12"]["cum_non_selected_qty"] == Decimal(0)
    assert rows["2022-12"]["cap_exceeded"] is False


def test_a_province_wide_incident_reaches_every_institution_a_city_wide_one_only_its_own(world: World) -> None:
    # A province-wide incident on a provincial round: one row, institution NULL (the engine: everyone)
    pk = do_report_incident(
        world.scope("hn_admin"),
        IncidentInput("HN-N7", "A01", "shortage", D(2022, 11, 1), "全省短缺", product_code=SELECTED),
        confirm=True,
    ).pk
    # A city bureau's incident in 三亚 (460200): one row per 三亚 institution, not NULL
    city = do_report_incident(
        world.scope("sy_admin"), IncidentInput("HN-N7", "A01", "interruption", D(2022, 12, 1), "三亚配送中断")
    )
    do_confirm_incident(world.scope("hn_admin"), city.pk)
    rows = open_interruptions(None, AS_OF).to_pylist()
    assert [(r["institution_code"], r["start"]) for r in rows] == [(None, D(2022, 11, 1)), (HN2, D(2022, 12, 1))]
    assert pk
    # The 三亚 bureau sees the province's incident and its own; a 海口 hospital the province's only
    assert open_interruptions(world.scope("sy_admin"), AS_OF).num_rows == 2
    assert [r["institution_code"] for r in open_interruptions(world.scope("hn_vbp"), AS_OF).to_pylist()] == [None]
    assert open_interruptions(world.scope("sx_admin"), AS_OF).num_rows == 0


def test_affected_days_per_agreement_year_are_clipped_and_merged(world: World) -> None:
    # Given an interruption 15–30 Nov (closed), an overlapping shortage 25 Nov – 5 Dec, and an open
    # region-wide one from 20 Dec; the agreement year runs 2022-11-01 … 2023-10-31
    confirmed(world, end=D(2022, 11, 30))
    confirmed(world, end=D(2022, 12, 5), start_on=D(2022, 11, 25), kind="shortage")
    do_report_incident(
        world.scope("hn_admin"),
        IncidentInput("HN-N7", "A01", "interruption", D(2022, 12, 20), "全省断供"),
        confirm=True,
    )
    table = affected_days(None, AS_OF)
    assert table.schema == AFFECTED_DAYS_SCHEMA
    rows = [(r["institution_code"], r["start_on"], r["end_on"], r["days"]) for r in table.to_pylist()]
    # Then 海口 has 15 Nov – 5 Dec (21 days) and 20–31 Dec (12, clipped to as_of); 三亚 has no agreement
    assert rows == [(HN, D(2022, 11, 15), D(2022, 12, 5), 21), (HN, D(2022, 12, 20), D(2022, 12, 31), 12)]
    intervals = affected_intervals(None, AS_OF)
    assert list(intervals) == [world.hn_agreement.pk]
    # and the pure rule turns them into completion without the affected days
    spans = [(i.start, i.end) for i in intervals[world.hn_agreement.pk]]
    result = adjusted_completion(Decimal(2000), Decimal(10000), D(2022, 11, 1), D(2023, 10, 31), spans, as_of=AS_OF)
    assert result.affected_days == 33
    assert result.completion == Decimal("0.200000")
    assert result.completion_unaffected == Decimal("0.219880")  # 2000 ÷ (10000 × 332/365)


def test_no_incidents_no_rows(world: World) -> None:
    assert affected_days(None, AS_OF).num_rows == 0
    with system_scope("test"):
        assert open_interruptions(Scope.system("test"), AS_OF).num_rows == 0
