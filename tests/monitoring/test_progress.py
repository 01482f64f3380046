"""Agreement progress: counted volume, completion, elapsed, status, projection, over-volume (R-L1, R-C2)."""

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
from jicai.facts.schemas import PURCHASES
from jicai.monitoring.progress import PROGRESS_COLUMNS, PROGRESS_SCHEMA, progress, progress_thresholds
from jicai.monitoring.reference import AGREEMENTS, ITEM_PRODUCTS
from jicai.policy.profile import ProfileLibrary
from tests.monitoring import HN, HN2, NON_SELECTED, SELECTED, SX, D, add_purchases, by, open_query, purchase_table

pytestmark = pytest.mark.django_db

MID_YEAR = D(2023, 5, 1)  # day 182 of the 365-day year 2022-11-01 … 2023-10-31
THRESHOLDS = {"national": (Decimal("0.90"), Decimal("0.70")), "shanxi": (Decimal("0.90"), Decimal("0.70"))}


def _system_progress(home: Path, as_of: dt.date, **kw: Any) -> dict[Any, dict[str, Any]]:
    with open_query(home, Scope.system("test")) as q:
        return by(progress(q, as_of, thresholds=THRESHOLDS, **kw), "institution_code")


def test_mid_year_quarter_done_is_at_risk(world: Any, settings: Any) -> None:
    # given agreed 10,000 and 2,500 selected units accepted by mid-year, plus lines that must not count
    add_purchases(
        settings.JICAI_HOME,
        [
            ("p1", HN, SELECTED, D(2022, 12, 15), 1000),
            ("p2", HN, SELECTED, D(2023, 3, 10), 1500),
            ("p3", HN, NON_SELECTED, D(2023, 3, 10), 800),  # not a selected product
            ("p4", HN, SELECTED, D(2023, 5, 2), 700),  # accepted after as-of
            ("p5", HN, SELECTED, None, 400, D(2023, 4, 1)),  # ordered, never accepted
            ("p6", HN, SELECTED, D(2022, 10, 31), 300),  # before the agreement year
        ],
    )
    # when
    row = _system_progress(settings.JICAI_HOME, MID_YEAR)[HN]
    # then completion 0.25 < 0.7 × elapsed 0.4986 → at risk
    assert row["agreed_qty"] == Decimal("10000.0000")
    assert row["counted_qty"] == Decimal("2500.0000")
    assert row["completion"] == Decimal("0.2500")
    assert row["elapsed"] == Decimal("0.4986")  # 182 / 365
    assert row["status"] == "at_risk"
    # run rate: 1,500 in the 90 days up to 2023-05-01, 183 days left → 2,500 + 1,500 × 183 / 90
    assert row["projected_qty"] == Decimal("5550.0000")
    assert row["projected_completion"] == Decimal("0.5550")
    assert row["over_volume_qty"] == Decimal("0.0000")
    assert (row["batch_code"], row["item_code"], row["year"], row["profile"]) == ("HN-N7", "A01", 1, "national")
    assert (row["period_start"], row["period_end"], row["region_code"]) == (D(2022, 11, 1), D(2023, 10, 31), "460108")


@pytest.mark.parametrize(
    ("qty", "status"),
    [
        (3490, "at_risk"),  # 0.7 × 182/365 × 10,000 = 3,490.41
        (3491, "behind"),
        (4487, "behind"),  # 0.9 × 182/365 × 10,000 = 4,487.67
        (4488, "on_track"),
        (9999, "on_track"),
        (10000, "completed"),
    ],
)
def test_status_bands_use_the_profile_thresholds_exactly(world: Any, settings: Any, qty: int, status: str) -> None:
    # given qty selected units accepted before mid-year
    add_purchases(settings.JICAI_HOME, [("p1", HN, SELECTED, D(2023, 1, 5), qty)])
    # when / then
    assert _system_progress(settings.JICAI_HOME, MID_YEAR)[HN]["status"] == status


def test_completed_agreement_reports_over_volume(world: Any, settings: Any) -> None:
    # given 10,400 accepted in the year and 500 more in the next year
    add_purchases(
        settings.JICAI_HOME,
        [
            ("p1", HN, SELECTED, D(2023, 2, 1), 6000),
            ("p2", HN, SELECTED, D(2023, 9, 1), 4400),
            ("p3", HN, SELECTED, D(2023, 11, 10), 500),
        ],
    )
    # when the period is over
    row = _system_progress(settings.JICAI_HOME, D(2023, 11, 15))[HN]
    # then completed, 400 over (R-C2: still supplied at the winning price), nothing left to project
    assert row["counted_qty"] == Decimal("10400.0000")
    assert row["completion"] == Decimal("1.0400")
    assert row["elapsed"] == Decimal("1.0000")
    assert row["status"] == "completed"
    assert row["over_volume_qty"] == Decimal("400.0000")
    assert row["projected_qty"] == Decimal("10400.0000")
    assert row["projected_completion"] == Decimal("1.0400")


def test_conversion_counts_item_units(world: Any, settings: Any) -> None:
    # given a second selected product sold by the box of 7 (conversion 7)
    from jicai.catalog.models import Product
    from jicai.programme.models import SelectedProduct

    with system_scope("test"):
        box = Product.objects.create(code="XC10AAA067A001020101188", generic_name="阿托伐他汀钙片", pack_size=1)
        SelectedProduct.objects.create(
            batch=world.hn_batch,
            product=box,
            item=world.hn_item,
            winning_price=Decimal("16.66"),
            company=world.company,
            conversion=Decimal(7),
        )
    add_purchases(
        settings.JICAI_HOME,
        [("p1", HN, "XC10AAA067A001020101188", D(2023, 1, 5), 10), ("p2", HN, SELECTED, D(2023, 1, 5), 30)],
    )
    # when / then 10 boxes × 7 + 30 tablets
    assert _system_progress(settings.JICAI_HOME, MID_YEAR)[HN]["counted_qty"] == Decimal("100.0000")


def test_before_the_period_starts_nothing_elapsed_and_on_track(world: Any, settings: Any) -> None:
    row = _system_progress(settings.JICAI_HOME, D(2022, 10, 15))[HN]
    assert (row["counted_qty"], row["elapsed"], row["completion"]) == (Decimal(0), Decimal(0), Decimal(0))
    assert row["status"] == "on_track"
    assert row["projected_qty"] == Decimal(0)


def test_run_rate_window_is_clipped_to_the_period(world: Any, settings: Any) -> None:
    # given 600 accepted in the first 30 days of the year
    add_purchases(settings.JICAI_HOME, [("p1", HN, SELECTED, D(2022, 11, 20), 600)])
    # when, 30 days in, with a 90-day run-rate window
    row = _system_progress(settings.JICAI_HOME, D(2022, 11, 30))[HN]
    # then the rate is 600 / 30 days (not / 90) over the 335 days left
    assert row["projected_qty"] == Decimal("7300.0000")
    assert row["projected_completion"] == Decimal("0.7300")


def test_shorter_run_rate_days(world: Any, settings: Any) -> None:
    add_purchases(
        settings.JICAI_HOME,
        [("p1", HN, SELECTED, D(2023, 1, 5), 1000), ("p2", HN, SELECTED, D(2023, 4, 20), 300)],
    )
    row = _system_progress(settings.JICAI_HOME, MID_YEAR, run_rate_days=30)[HN]
    # 300 in the last 30 days → 10/day × 183 days left
    assert row["projected_qty"] == Decimal("3130.0000")


def test_missing_thresholds_leave_status_empty(world: Any, settings: Any) -> None:
    add_purchases(settings.JICAI_HOME, [("p1", HN, SELECTED, D(2023, 1, 5), 100)])
    with open_query(settings.JICAI_HOME, Scope.system("test")) as q:
        rows = by(progress(q, MID_YEAR, thresholds={}), "institution_code")
    assert rows[HN]["status"] is None
    assert rows[HN]["completion"] == Decimal("0.0100")


def test_thresholds_come_from_the_profiles() -> None:
    found = progress_thresholds(ProfileLibrary(), ["national", "shanxi", "national", ""], MID_YEAR)
    assert set(found) == {"national", "shanxi"}
    assert found["national"] == (Decimal("0.90"), Decimal("0.70"))


def test_ratio_rounds_half_up(world: Any, settings: Any) -> None:
    with open_query(settings.JICAI_HOME, Scope.system("test")) as q:
        from jicai.monitoring.progress import ensure_macros

        ensure_macros(q)
        got = q.rows(
            "SELECT jicai_ratio4(1, 20000) a, jicai_ratio4(-1, 20000) b, jicai_ratio4(2, 3) c, "
            "jicai_ratio4(1, 0) d, jicai_ratio4(CAST(0.00014999 AS DECIMAL(18, 8)), 1) e"
        )[0]
    assert got == {
        "a": Decimal("0.0001"),
        "b": Decimal("-0.0001"),
        "c": Decimal("0.6667"),
        "d": None,
        "e": Decimal("0.0001"),
    }


def _scoped_world(world: Any, settings: Any) -> None:
    from jicai.programme.models import Agreement

    with system_scope("test"):
        Agreement.objects.create(
            batch=world.hn_batch,
            item=world.hn_item,
            institution=world.hn_inst2,
            year=1,
            agreed_qty=Decimal(5000),
            period_start=D(2022, 11, 1),
            period_end=D(2023, 10, 31),
        )
    add_purchases(
        settings.JICAI_HOME,
        [
            ("p1", HN, SELECTED, D(2023, 1, 5), 1000),
            ("p2", HN2, SELECTED, D(2023, 1, 5), 2000),
            ("p3", SX, SELECTED, D(2023, 1, 5), 3000),
        ],
    )


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("hn_vbp", {HN: Decimal("1000.0000")}),
        ("hn2_vbp", {HN2: Decimal("2000.0000")}),
        ("sy_admin", {HN2: Decimal("2000.0000")}),
        ("hn_admin", {HN: Decimal("1000.0000"), HN2: Decimal("2000.0000")}),
    ],
)
def test_each_scope_sees_only_its_rows(world: Any, settings: Any, user: str, expected: dict[str, Decimal]) -> None:
    # given two Hainan hospitals and one Shaanxi hospital with purchases
    _scoped_world(world, settings)
    # when a user computes progress in their own scope
    with open_query(settings.JICAI_HOME, world.scope(user)) as q:
        rows = by(progress(q, MID_YEAR, thresholds=THRESHOLDS), "institution_code")
    # then only their institutions appear
    assert {k: v["counted_qty"] for k, v in rows.items()} == expected


def test_batch_and_institution_filters(world: Any, settings: Any) -> None:
    _scoped_world(world, settings)
    assert set(_system_progress(settings.JICAI_HOME, MID_YEAR, institution=HN2)) == {HN2}
    assert set(_system_progress(settings.JICAI_HOME, MID_YEAR, batch="SX-N7")) == {SX}


def test_daily_rollup_source_gives_identical_results(world: Any, settings: Any) -> None:
    # given several lines per day, product and institution
    _scoped_world(world, settings)
    add_purchases(
        settings.JICAI_HOME,
        [
            ("q1", HN, SELECTED, D(2023, 1, 5), "12.5"),
            ("q2", HN, SELECTED, D(2023, 4, 20), 300),
            ("q3", HN, SELECTED, D(2023, 4, 20), 77),
            ("q4", HN2, SELECTED, D(2023, 3, 1), 5),
            ("q5", HN, NON_SELECTED, D(2023, 4, 20), 9),
        ],
    )
    with open_query(settings.JICAI_HOME, Scope.system("test")) as q:
        q.sql(
            "CREATE TEMP TABLE purchases_daily AS SELECT institution_code, region_code, product_code, accepted_on, "
            "month, sum(qty) qty FROM purchases GROUP BY ALL"
        )
        for kw in ({}, {"institution": HN}, {"batch": "HN-N7"}):
            raw = progress(q, MID_YEAR, thresholds=THRESHOLDS, ordered=True, **kw)
            rolled = progress(q, MID_YEAR, thresholds=THRESHOLDS, source="purchases_daily", ordered=True, **kw)
            assert raw.num_rows > 0
            assert raw.equals(rolled)
    assert tuple(raw.schema.names) == PROGRESS_COLUMNS
    assert raw.schema == PROGRESS_SCHEMA


def test_unsafe_source_is_refused(world: Any, settings: Any) -> None:
    with open_query(settings.JICAI_HOME, Scope.system("test")) as q, pytest.raises(ValueError, match="relation"):
        progress(q, MID_YEAR, thresholds=THRESHOLDS, source="purchases; DROP TABLE x")


# --------------------------------------------------------------------------------------------------
# Property: re-importing / overlapping lines through ``store.upsert`` gives the clean import's totals.

_AGREEMENT_ROWS = [
    {
        "agreement_id": i,
        "batch_code": "B1",
        "item_code": "A01",
        "institution_code": inst,
        "region_code": "460108",
        "year": 1,
        "period_start": D(2023, 1, 1),
        "period_end": D(2023, 12, 31),
        "agreed_qty": Decimal(1000),
        "unit_price": Decimal("0.3400"),
        "profile": "national",
    }
    for i, inst in enumerate((HN, "H46010800009"), start=1)
]
_PRODUCT_ROWS = [
    {
        "batch_code": "B1",
        "item_code": "A01",
        "product_code": SELECTED,
        "kind": "selected",
        "conversion": Decimal(1),
        "unit_price": Decimal("0.3400"),
    },
    {
        "batch_code": "B1",
        "item_code": "A01",
        "product_code": "BOX7",
        "kind": "selected",
        "conversion": Decimal(7),
        "unit_price": None,
    },
    {
        "batch_code": "B1",
        "item_code": "A01",
        "product_code": NON_SELECTED,
        "kind": "same_generic",
        "conversion": Decimal(1),
        "unit_price": None,
    },
]

_line = st.tuples(
    st.sampled_from([HN, "H46010800009"]),
    st.sampled_from([SELECTED, "BOX7", NON_SELECTED]),
    st.integers(min_value=-30, max_value=420),  # days after 2023-01-01: some outside the year
    st.integers(min_value=1, max_value=500),
)


def _progress_of(home: Path) -> pa.Table:
    with FactQuery(home, Scope.system("test")) as q:
        q.register("agreements", pa.Table.from_pylist(_AGREEMENT_ROWS, schema=AGREEMENTS))
        q.register("item_products", pa.Table.from_pylist(_PRODUCT_ROWS, schema=ITEM_PRODUCTS))
        return progress(q, D(2023, 8, 1), thresholds=THRESHOLDS, ordered=True)


@hsettings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(_line, min_size=1, max_size=12),
    cut=st.floats(min_value=0, max_value=1),
    overlap=st.floats(min_value=0, max_value=1),
)
def test_reimport_and_overlap_give_clean_totals(lines: list[tuple[Any, ...]], cut: float, overlap: float) -> None:
    rows = [
        (f"L{i}", inst, product, D(2023, 1, 1) + dt.timedelta(days=day), qty)
        for i, (inst, product, day, qty) in enumerate(lines)
    ]
    k = int(len(rows) * cut)
    j = int(k * overlap)
    with tempfile.TemporaryDirectory() as clean_dir, tempfile.TemporaryDirectory() as messy_dir:
        clean, messy = Path(clean_dir), Path(messy_dir)
        # given a clean import of all lines at once
        store.upsert(clean, PURCHASES, purchase_table(rows))
        # and the same lines imported as overlapping chunks, the first with wrong quantities, then all again
        wrong = [(*r[:4], r[4] + 1) for r in rows[:k]]
        if wrong:
            store.upsert(messy, PURCHASES, purchase_table(wrong))
        store.upsert(messy, PURCHASES, purchase_table(rows[j:]))
        store.upsert(messy, PURCHASES, purchase_table(rows))
        store.upsert(messy, PURCHASES, purchase_table(rows[: k or 1]))
        # then progress is the same
        assert _progress_of(messy).equals(_progress_of(clean))


def test_ratio_matches_decimal_half_up_on_ties_and_random_values(world: Any, settings: Any) -> None:
    import random
    from decimal import ROUND_HALF_UP

    from jicai.monitoring.progress import ensure_macros

    rng = random.Random(7)
    pairs = [
        (
            Decimal(rng.randint(-(10**9), 10**9)) / Decimal(10 ** rng.randint(0, 6)),
            Decimal(rng.randint(1, 10**7)) / Decimal(10 ** rng.randint(0, 4)),
        )
        for _ in range(300)
    ]
    pairs += [(Decimal(k) * Decimal("0.00005") * d, d) for k in range(1, 60, 2) for d in (Decimal(1), Decimal("7.5"))]
    pairs += [(Decimal(10) ** 13 * 3, Decimal(1)), (Decimal(10**9), Decimal("0.0001"))]  # beyond ±10¹³ → NULL
    table = pa.table(
        {
            "n": pa.array([p[0] for p in pairs], pa.decimal128(38, 8)),
            "d": pa.array([p[1] for p in pairs], pa.decimal128(38, 8)),
        }
    )
    with open_query(settings.JICAI_HOME, Scope.system("test")) as q:
        ensure_macros(q)
        q.register("ratio_cases", table)
        got = [r["r"] for r in q.rows("SELECT jicai_ratio4(n, d) AS r FROM ratio_cases")]
    for (n, d), value in zip(pairs, got, strict=True):
        want = (n / d).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
        assert value == (want if abs(n / d) < Decimal(10) ** 13 else None), (n, d)
