"""The pair-month rollup path gives exactly the line-level results (progress and substitutes, R-L1, R-D2).

The monthly cycle reads whole months from the rollup and only partial months from the lines; these
properties compare both paths on random agreements (years starting on any day), lines (all kinds,
conversions, returns), as-of dates and run-rate windows, and the ``since_month`` increment against
the full table's tail.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from jicai.core.tenancy import Scope
from jicai.facts import store
from jicai.facts.query import FactQuery
from jicai.facts.schemas import PAIR_MONTHLY, PURCHASES
from jicai.monitoring.monthly import build_pair_monthly, register_pair_monthly
from jicai.monitoring.progress import progress
from jicai.monitoring.reference import AGREEMENTS, ITEM_PRODUCTS
from jicai.monitoring.substitutes import substitutes
from tests.monitoring import D, purchase_table

THRESHOLDS = {"national": (Decimal("0.90"), Decimal("0.70"))}
CAPS = {"national": Decimal(1)}
INSTITUTIONS = ("H46010800001", "H46010800002")
PRODUCTS = [
    ("A01", "SEL1", "selected", Decimal(1)),
    ("A01", "SEL7", "selected", Decimal(7)),
    ("A01", "NS1", "same_generic", Decimal("0.5")),
    ("A01", "SUB1", "substitute", Decimal(2)),
    ("A02", "SEL2", "selected", Decimal(1)),
    ("A02", "SUB1", "substitute", Decimal(1)),  # one product listed under two items
]


def _item_products() -> pa.Table:
    rows = [
        {
            "batch_code": "B1",
            "item_code": item,
            "product_code": product,
            "kind": kind,
            "conversion": conversion,
            "unit_price": Decimal("0.5000") if kind == "selected" else None,
        }
        for item, product, kind, conversion in PRODUCTS
    ]
    return pa.Table.from_pylist(rows, schema=ITEM_PRODUCTS)


def _agreements(first_start: dt.date, years: int) -> pa.Table:
    rows = []
    n = 0
    for inst in INSTITUTIONS:
        for item in ("A01", "A02"):
            start = first_start
            for year in range(1, years + 1):
                end = start.replace(year=start.year + 1) - dt.timedelta(days=1)
                n += 1
                rows.append(
                    {
                        "agreement_id": n,
                        "batch_code": "B1",
                        "item_code": item,
                        "institution_code": inst,
                        "region_code": "460108",
                        "year": year,
                        "period_start": start,
                        "period_end": end,
                        "agreed_qty": Decimal(900 + 10 * n),
                        "unit_price": Decimal("0.5000"),
                        "profile": "national",
                    }
                )
                start = end + dt.timedelta(days=1)
    return pa.Table.from_pylist(rows, schema=AGREEMENTS)


_line = st.tuples(
    st.sampled_from(INSTITUTIONS),
    st.sampled_from(sorted({p for _, p, _, _ in PRODUCTS})),
    st.integers(min_value=-40, max_value=800),  # days after 2023-01-01
    st.integers(min_value=-20, max_value=400),  # returns are negative lines
)


_break = st.tuples(
    st.sampled_from([None, *INSTITUTIONS]),  # None: region-wide
    st.integers(min_value=-40, max_value=800),  # first day, after 2023-01-01
    st.integers(min_value=0, max_value=120),  # length in days
)


def _breaks(base: dt.date, breaks: list[tuple[Any, ...]]) -> pa.Table:
    """Supply interruptions of item A01 (whose non-selected purchases they exempt from the cap)."""
    rows = [
        {
            "batch_code": "B1",
            "item_code": "A01",
            "institution_code": inst,
            "start_on": base + dt.timedelta(days=first),
            "end_on": base + dt.timedelta(days=first + length),
        }
        for inst, first, length in breaks
    ]
    return pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [
                ("batch_code", pa.string()),
                ("item_code", pa.string()),
                ("institution_code", pa.string()),
                ("start_on", pa.date32()),
                ("end_on", pa.date32()),
            ]
        ),
    )


def _query(home: Path, agreements: pa.Table) -> FactQuery:
    q = FactQuery(home, Scope.system("test"))
    q.register("agreements", agreements)
    q.register("item_products", _item_products())
    return q


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(_line, min_size=1, max_size=40),
    start_shift=st.integers(min_value=0, max_value=200),
    as_of_day=st.integers(min_value=-10, max_value=820),
    rate_days=st.integers(min_value=1, max_value=120),
    since=st.integers(min_value=0, max_value=27),
    breaks=st.lists(_break, max_size=2),
)
@example(lines=[("H46010800001", "SEL1", 30, 5)], start_shift=0, as_of_day=364, rate_days=90, since=12, breaks=[])
@example(lines=[("H46010800001", "SEL7", 45, 5)], start_shift=14, as_of_day=400, rate_days=31, since=13, breaks=[])
@example(
    lines=[("H46010800001", "NS1", 40, 8), ("H46010800001", "NS1", 100, 6), ("H46010800001", "SEL1", 100, 5)],
    start_shift=0,
    as_of_day=120,
    rate_days=90,
    since=3,  # 2023-03: the exempt February purchase is in the agreement year's months before it
    breaks=[(None, 30, 20)],
)
def test_rollup_path_equals_line_level(
    lines: list[tuple[Any, ...]],
    start_shift: int,
    as_of_day: int,
    rate_days: int,
    since: int,
    breaks: list[tuple[Any, ...]],
) -> None:
    base = D(2023, 1, 1)
    rows = [(f"L{i}", inst, prod, base + dt.timedelta(days=day), qty) for i, (inst, prod, day, qty) in enumerate(lines)]
    agreements = _agreements(base + dt.timedelta(days=start_shift), years=3)
    as_of = base + dt.timedelta(days=as_of_day)
    since_month = f"{2022 + (since + 11) // 12:04d}-{(since + 11) % 12 + 1:02d}"
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        store.append(home, PURCHASES, purchase_table(rows))
        with _query(home, agreements) as q:
            rollup = register_pair_monthly(q)
            raw = progress(q, as_of, thresholds=THRESHOLDS, run_rate_days=rate_days, ordered=True)
            rolled = progress(q, as_of, thresholds=THRESHOLDS, run_rate_days=rate_days, ordered=True, monthly=rollup)
            assert raw.equals(rolled)
            cut = {"interruptions": _breaks(base, breaks)} if breaks else {}
            raw_subs = substitutes(q, as_of, cap_ratio=CAPS, ordered=True, **cut)
            rolled_subs = substitutes(q, as_of, cap_ratio=CAPS, ordered=True, monthly=rollup, **cut)
            assert raw_subs.equals(rolled_subs)
            tail = substitutes(q, as_of, cap_ratio=CAPS, ordered=True, monthly=rollup, since_month=since_month, **cut)
            assert raw_subs.filter(pc.greater_equal(raw_subs["month"], since_month)).equals(tail)


def test_stored_rollup_rebuilds_only_the_months_given() -> None:
    # given lines in three months and the rollup built from them
    base = [
        ("a", INSTITUTIONS[0], "SEL1", D(2023, 1, 5), 10),
        ("b", INSTITUTIONS[0], "SEL7", D(2023, 2, 5), 1),
        ("c", INSTITUTIONS[1], "NS1", D(2023, 3, 5), 4),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        store.append(home, PURCHASES, purchase_table(base))
        with _query(home, _agreements(D(2023, 1, 1), 1)) as q:
            assert build_pair_monthly(q, home, None) == 3
        # when February gains a line and only February is rebuilt
        store.append(home, PURCHASES, purchase_table([("d", INSTITUTIONS[0], "SEL1", D(2023, 2, 9), 3)]))
        with _query(home, _agreements(D(2023, 1, 1), 1)) as q:
            assert build_pair_monthly(q, home, {"2023-02"}) == 1
            assert build_pair_monthly(q, home, set()) == 0
        with _query(home, _agreements(D(2023, 1, 1), 1)) as q:  # a query sees the snapshot it was opened on
            got = q.rows(f"SELECT month, sel_qty, ns_qty, lines FROM {PAIR_MONTHLY.name} ORDER BY month, sel_qty")
    # then February holds both lines (7 + 3 item units), the other months are untouched
    assert [(r["month"], r["sel_qty"], r["ns_qty"], r["lines"]) for r in got] == [
        ("2023-01", Decimal("10.0000"), Decimal("0.0000"), 1),
        ("2023-02", Decimal("10.0000"), Decimal("0.0000"), 2),
        ("2023-03", Decimal("0.0000"), Decimal("2.0000"), 1),
    ]
