"""Department targets (largest remainder over historical use) and department progress (R-H3, R-L1)."""

from __future__ import annotations

import datetime as dt
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from jicai.core.tenancy import Scope, system_scope
from jicai.facts import store
from jicai.facts.query import FactQuery
from jicai.monitoring.departments import (
    DEPARTMENT_COLUMNS,
    DEPARTMENT_SCHEMA,
    TARGET_SCHEMA,
    department_progress,
    department_targets,
)
from tests.monitoring import (
    HN,
    HN2,
    NON_SELECTED,
    SELECTED,
    SUBSTITUTE,
    D,
    add_dispensing,
    add_products,
    by,
    open_query,
)

pytestmark = pytest.mark.django_db

AS_OF = D(2023, 5, 1)  # day 182 of 365
THRESHOLDS = {"national": (Decimal("0.90"), Decimal("0.70"))}
# History window for the year starting 2022-11-01: 2021-11-01 … 2022-10-31.
DISPENSING = [
    ("d1", HN, "NK01", SELECTED, D(2022, 3, 1), 100),
    ("d2", HN, "NK01", NON_SELECTED, D(2022, 6, 1), 100),  # non-selected counts for the share
    ("d3", HN, "SJ01", SUBSTITUTE, D(2022, 10, 31), 200),  # substitutes too; last day of the window
    ("d4", HN, "WK01", SELECTED, D(2021, 11, 1), 200),  # first day of the window
    ("d5", HN, "WK01", SELECTED, D(2021, 10, 31), 500),  # before the window: ignored
    ("d6", HN, "SJ01", SELECTED, D(2022, 11, 1), 2000),  # first day of the period: dispensed, not history
    ("d7", HN, "NK01", SELECTED, D(2023, 2, 1), 1000),
    ("d8", HN, "NK01", NON_SELECTED, D(2023, 2, 1), 400),  # not selected: not dispensed toward the target
    ("d9", HN, "NK01", SELECTED, D(2023, 5, 2), 50),  # after as-of
    ("d10", HN2, "NK01", SELECTED, D(2022, 5, 1), 70),  # another hospital
    ("d11", HN2, "NK01", SELECTED, D(2023, 1, 1), 30),
]


@pytest.fixture
def dept_world(world: Any, settings: Any) -> Any:
    from jicai.programme.models import Agreement

    with system_scope("test"):
        add_products(world)
        Agreement.objects.create(
            batch=world.hn_batch,
            item=world.hn_item,
            institution=world.hn_inst2,
            year=1,
            agreed_qty=Decimal(5000),
            period_start=D(2022, 11, 1),
            period_end=D(2023, 10, 31),
        )
    add_dispensing(settings.JICAI_HOME, DISPENSING)
    return world


def _progress(home: Path, scope: Scope | None = None, **kw: Any) -> dict[Any, dict[str, Any]]:
    with open_query(home, scope or Scope.system("test")) as q:
        table = department_progress(q, AS_OF, thresholds=THRESHOLDS, **kw)
    assert table.schema == DEPARTMENT_SCHEMA
    assert tuple(table.schema.names) == DEPARTMENT_COLUMNS
    return by(table, "institution_code", "department_code")


def _targets(rows: list[tuple[str, int]], institution: str = HN) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "batch_code": "HN-N7",
                "item_code": "A01",
                "institution_code": institution,
                "year": 1,
                "department_code": dept,
                "target_qty": Decimal(qty),
            }
            for dept, qty in rows
        ],
        schema=TARGET_SCHEMA,
    )


def test_derived_targets_sum_exactly_to_the_agreed_quantity(dept_world: Any, settings: Any) -> None:
    # given three departments with equal use (200 item units each) in the 12 months before the year
    with open_query(settings.JICAI_HOME, Scope.system("test")) as q:
        # when
        targets = department_targets(q, institution=HN)
    # then 10,000 / 3 by largest remainder: the spare unit goes to the first code on a tie
    got = {r["department_code"]: r["target_qty"] for r in targets.to_pylist()}
    assert got == {"NK01": Decimal(3334), "SJ01": Decimal(3333), "WK01": Decimal(3333)}
    assert sum(got.values()) == Decimal(10000)
    assert {(r["batch_code"], r["item_code"], r["year"]) for r in targets.to_pylist()} == {("HN-N7", "A01", 1)}


def test_derived_targets_follow_historical_use(dept_world: Any, settings: Any) -> None:
    with open_query(settings.JICAI_HOME, Scope.system("test")) as q:
        targets = by(department_targets(q), "institution_code", "department_code")
    # the other hospital's only department gets the whole 5,000
    assert targets[HN2, "NK01"]["target_qty"] == Decimal(5000)
    # a 6-month window (2022-05-01 …) drops NK01's March use and WK01 altogether
    with open_query(settings.JICAI_HOME, Scope.system("test")) as q:
        short = by(department_targets(q, institution=HN, reference_months=6), "department_code")
    assert {k: v["target_qty"] for k, v in short.items()} == {"NK01": Decimal(3333), "SJ01": Decimal(6667)}


def test_fractional_agreed_quantity_still_sums_exactly(dept_world: Any, settings: Any) -> None:
    from jicai.programme.models import Agreement

    with system_scope("test"):
        Agreement.objects.filter(pk=dept_world.hn_agreement.pk).update(agreed_qty=Decimal("10000.5"))
    with open_query(settings.JICAI_HOME, Scope.system("test")) as q:
        got = {r["department_code"]: r["target_qty"] for r in department_targets(q, institution=HN).to_pylist()}
    assert got == {"NK01": Decimal("3334.5"), "SJ01": Decimal(3333), "WK01": Decimal(3333)}


def test_department_progress_against_derived_targets(dept_world: Any, settings: Any) -> None:
    # when
    rows = _progress(settings.JICAI_HOME, institution=HN)
    # then selected dispensing in the year up to as-of, against each department's target
    assert set(rows) == {(HN, "NK01"), (HN, "SJ01"), (HN, "WK01")}
    nk, sj, wk = rows[HN, "NK01"], rows[HN, "SJ01"], rows[HN, "WK01"]
    assert (nk["target_qty"], nk["dispensed_qty"], nk["completion"]) == (
        Decimal(3334),
        Decimal(1000),
        Decimal("0.2999"),
    )
    assert nk["elapsed"] == Decimal("0.4986")
    assert nk["status"] == "at_risk"  # 0.2999 < 0.7 × 0.4986
    assert (sj["dispensed_qty"], sj["completion"], sj["status"]) == (Decimal(2000), Decimal("0.6001"), "on_track")
    assert (wk["dispensed_qty"], wk["completion"], wk["status"]) == (Decimal(0), Decimal(0), "at_risk")
    assert (nk["batch_code"], nk["item_code"], nk["year"], nk["period_start"], nk["period_end"]) == (
        "HN-N7",
        "A01",
        1,
        D(2022, 11, 1),
        D(2023, 10, 31),
    )


def test_department_progress_against_given_targets(dept_world: Any, settings: Any) -> None:
    # given targets from the hospital workspace (another hospital's row is ignored for HN)
    targets = _targets([("NK01", 6000), ("SJ01", 4000)])
    rows = _progress(settings.JICAI_HOME, targets=targets, institution=HN)
    # then WK01 (no target, nothing dispensed) is absent
    assert set(rows) == {(HN, "NK01"), (HN, "SJ01")}
    assert (rows[HN, "SJ01"]["target_qty"], rows[HN, "SJ01"]["completion"]) == (Decimal(4000), Decimal("0.5000"))
    assert rows[HN, "SJ01"]["status"] == "on_track"
    assert rows[HN, "NK01"]["status"] == "at_risk"  # 1,000 / 6,000


def test_department_without_a_target_is_listed_with_zero(dept_world: Any, settings: Any) -> None:
    rows = _progress(settings.JICAI_HOME, targets=_targets([("NK01", 10000)]), institution=HN)
    sj = rows[HN, "SJ01"]
    assert (sj["target_qty"], sj["dispensed_qty"], sj["completion"], sj["status"]) == (
        Decimal(0),
        Decimal(2000),
        None,
        "completed",
    )


def test_hospital_scope_sees_only_its_departments(dept_world: Any, settings: Any) -> None:
    assert {k[0] for k in _progress(settings.JICAI_HOME)} == {HN, HN2}
    mine = _progress(settings.JICAI_HOME, dept_world.scope("hn_vbp"))
    assert {k[0] for k in mine} == {HN}
    assert mine[HN, "NK01"]["target_qty"] == Decimal(3334)
    other = _progress(settings.JICAI_HOME, dept_world.scope("hn2_vbp"))
    assert {k: (v["target_qty"], v["dispensed_qty"]) for k, v in other.items()} == {
        (HN2, "NK01"): (Decimal(5000), Decimal(30))
    }


def test_department_scope_sees_only_its_department(dept_world: Any, settings: Any) -> None:
    head = dept_world.scope("hn_head")  # NK01
    # with the hospital's targets: only its own row
    rows = _progress(settings.JICAI_HOME, head, targets=_targets([("NK01", 6000), ("SJ01", 4000)]))
    assert set(rows) == {(HN, "NK01")}
    assert rows[HN, "NK01"]["target_qty"] == Decimal(6000)
    # without targets: it cannot derive them from one department's history, so the target is unknown
    rows = _progress(settings.JICAI_HOME, head)
    assert set(rows) == {(HN, "NK01")}
    assert (rows[HN, "NK01"]["target_qty"], rows[HN, "NK01"]["status"]) == (None, None)
    assert rows[HN, "NK01"]["dispensed_qty"] == Decimal(1000)
    other = _progress(settings.JICAI_HOME, dept_world.scope("hn_head2"), targets=_targets([("NK01", 1), ("SJ01", 2)]))
    assert set(other) == {(HN, "SJ01")}
    with open_query(settings.JICAI_HOME, head) as q, pytest.raises(ValueError, match="hospital level"):
        department_targets(q)


def test_history_window_is_the_policy_reference_window(dept_world: Any, settings: Any) -> None:
    from jicai.policy.allocation import UsageBasis, reference_window
    from jicai.programme.models import Agreement

    # given a year starting on the 31st and a one-month window (clipped to February's last day)
    with system_scope("test"):
        Agreement.objects.filter(pk=dept_world.hn_agreement.pk).update(
            period_start=D(2023, 3, 31), period_end=D(2024, 3, 30)
        )
    start, end = reference_window(D(2023, 3, 31), UsageBasis(reference_months=1))
    assert (start, end) == (D(2023, 2, 28), D(2023, 3, 30))
    add_dispensing(
        settings.JICAI_HOME,
        [
            ("w1", HN, "AA01", SELECTED, start - dt.timedelta(days=1), 100),  # one day early
            ("w2", HN, "BB01", SELECTED, start, 1),
            ("w3", HN, "CC01", SELECTED, end, 3),
            ("w4", HN, "DD01", SELECTED, end + dt.timedelta(days=1), 100),  # the period's first day
        ],
    )
    with open_query(settings.JICAI_HOME, Scope.system("test")) as q:
        got = {
            r["department_code"]: r["target_qty"]
            for r in department_targets(q, institution=HN, reference_months=1).to_pylist()
        }
    # then only the window's two departments share the 10,000 (1 : 3)
    assert got == {"BB01": Decimal(2500), "CC01": Decimal(7500)}


# --------------------------------------------------------------------------------------------------
# Property: the set-based largest remainder equals ``allocate_targets`` agreement by agreement.

_DEPTS = ("NK01", "WK02", "EK03", "FK04")


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    uses=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=2),  # agreement
            st.sampled_from(_DEPTS),
            st.sampled_from(["SEL", "NS", "SUB"]),
            st.integers(min_value=-5, max_value=60),  # qty (returns too)
            st.integers(min_value=0, max_value=360),  # day of the window year
        ),
        max_size=30,
    ),
    agreed=st.lists(
        st.decimals(min_value=0, max_value=5000, places=4, allow_nan=False, allow_infinity=False),
        min_size=3,
        max_size=3,
    ),
    selected_only=st.booleans(),
)
def test_set_based_targets_equal_the_policy_rule(
    uses: list[tuple[Any, ...]], agreed: list[Decimal], selected_only: bool
) -> None:
    from jicai.facts.schemas import DISPENSING
    from jicai.monitoring.departments import department_targets_reference
    from jicai.monitoring.reference import AGREEMENTS, ITEM_PRODUCTS
    from jicai.policy.allocation import UsageBasis

    inst = "H46010800001"
    agreements = pa.Table.from_pylist(
        [
            {
                "agreement_id": i + 1,
                "batch_code": "B1",
                "item_code": f"A0{i}",
                "institution_code": inst,
                "region_code": "460108",
                "year": 1,
                "period_start": D(2024, 1, 1),
                "period_end": D(2024, 12, 31),
                "agreed_qty": agreed[i],
                "unit_price": Decimal("0.5000"),
                "profile": "national",
            }
            for i in range(3)
        ],
        schema=AGREEMENTS,
    )
    products = [
        {
            "batch_code": "B1",
            "item_code": f"A0{i}",
            "product_code": f"{kind}{i}",
            "kind": k,
            "conversion": c,
            "unit_price": None,
        }
        for i in range(3)
        for kind, k, c in (
            ("SEL", "selected", Decimal(1)),
            ("NS", "same_generic", Decimal("0.5")),
            ("SUB", "substitute", Decimal(2)),
        )
    ]
    lines = [
        {
            "record_id": f"r{n}",
            "institution_code": inst,
            "region_code": "460108",
            "department_code": dept,
            "dispensed_on": D(2023, 1, 1) + dt.timedelta(days=day),
            "product_code": f"{kind}{a}",
            "qty": Decimal(qty),
            "amount": Decimal(0),
            "diagnosis_code": None,
            "prescriber_code": None,
            "patient_key": None,
            "import_id": 1,
            "month": (D(2023, 1, 1) + dt.timedelta(days=day)).strftime("%Y-%m"),
        }
        for n, (a, dept, kind, qty, day) in enumerate(uses)
    ]
    basis = UsageBasis(non_selected=not selected_only, substitutes=not selected_only)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        if lines:
            store.append(home, DISPENSING, pa.Table.from_pylist(lines, schema=DISPENSING.schema))
        with FactQuery(home, Scope.system("test")) as q:
            q.register("agreements", agreements)
            q.register("item_products", pa.Table.from_pylist(products, schema=ITEM_PRODUCTS))
            fast = department_targets(q, basis=basis)
            slow = department_targets_reference(q, basis=basis)
    key = [(c, "ascending") for c in ("item_code", "department_code")]
    assert fast.sort_by(key).equals(slow.sort_by(key))
    for item in {r["item_code"] for r in fast.to_pylist()}:
        total = sum(r["target_qty"] for r in fast.to_pylist() if r["item_code"] == item)
        assert total == agreed[int(item[-1])].quantize(Decimal("0.0001"))
