"""Non-selected and substitute use per institution × item × month, and the cap check (R-D2, R-H7, R-I2)."""

from __future__ import annotations

import datetime as dt
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from jicai.core.tenancy import Scope, system_scope
from jicai.facts import store
from jicai.facts.query import FactQuery
from jicai.facts.schemas import PURCHASES
from jicai.monitoring.progress import progress
from jicai.monitoring.substitutes import INTERRUPTION_SCHEMA, SUBSTITUTE_COLUMNS, SUBSTITUTE_SCHEMA, substitutes
from jicai.policy.caps import CapPurchase, PurchaseKind, check_non_selected_cap
from tests.monitoring import (
    HN,
    HN2,
    NON_SELECTED,
    SELECTED,
    SUBSTITUTE,
    D,
    add_products,
    add_purchases,
    by,
    open_query,
)

pytestmark = pytest.mark.django_db

AS_OF = D(2022, 12, 31)
CAP = {"national": Decimal(1)}
LINES = [
    ("s0", HN, SUBSTITUTE, D(2021, 11, 10), 20),  # a year before: for year-on-year growth
    ("s1", HN, SELECTED, D(2022, 11, 5), 100),
    ("s2", HN, NON_SELECTED, D(2022, 11, 15), 150),  # non-selected ahead of selected
    ("s3", HN, SUBSTITUTE, D(2022, 11, 20), 40),
    ("s4", HN, SELECTED, D(2022, 12, 3), 200),
    ("s5", HN, SUBSTITUTE, D(2022, 12, 3), 60),
    ("s6", HN, NON_SELECTED, D(2022, 12, 3), 30),
    ("s7", HN, NON_SELECTED, D(2023, 1, 3), 999),  # after as-of
]


@pytest.fixture
def subs_world(world: Any, settings: Any) -> Any:
    with system_scope("test"):
        add_products(world)
    add_purchases(settings.JICAI_HOME, LINES)
    return world


def _run(home: Path, scope: Scope | None = None, **kw: Any) -> dict[Any, dict[str, Any]]:
    kw.setdefault("cap_ratio", CAP)
    with open_query(home, scope or Scope.system("test")) as q:
        table = substitutes(q, AS_OF, **kw)
    assert table.schema == SUBSTITUTE_SCHEMA
    return by(table, "institution_code", "month")


def _interruptions(*rows: tuple[Any, ...]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {"batch_code": b, "item_code": i, "institution_code": inst, "start": s, "end": e}
            for b, i, inst, s, e in rows
        ],
        schema=INTERRUPTION_SCHEMA,
    )


def test_monthly_quantities_shares_and_growth(subs_world: Any, settings: Any) -> None:
    # when
    rows = _run(settings.JICAI_HOME)
    # then one row per month with purchases, none after as-of
    assert sorted(rows) == [(HN, "2021-11"), (HN, "2022-11"), (HN, "2022-12")]
    nov = rows[HN, "2022-11"]
    assert (nov["batch_code"], nov["item_code"]) == ("HN-N7", "A01")
    assert (nov["selected_qty"], nov["non_selected_qty"], nov["substitute_qty"], nov["total_qty"]) == (
        Decimal(100),
        Decimal(150),
        Decimal(40),
        Decimal(290),
    )
    assert (nov["selected_share"], nov["non_selected_share"], nov["substitute_share"]) == (
        Decimal("0.3448"),
        Decimal("0.5172"),
        Decimal("0.1379"),
    )
    # substitute growth: no October row → NULL; November 2021 had 20 → (40 − 20) / 20
    assert nov["mom_growth"] is None
    assert nov["yoy_growth"] == Decimal("1.0000")
    dec = rows[HN, "2022-12"]
    assert dec["mom_growth"] == Decimal("0.5000")  # (60 − 40) / 40
    assert dec["yoy_growth"] is None  # nothing in December 2021
    # a month outside every agreement year has no cumulative figures and no cap
    before = rows[HN, "2021-11"]
    assert before["substitute_share"] == Decimal("1.0000")
    assert (before["cum_selected_qty"], before["cum_non_selected_qty"], before["cap_limit"]) == (None, None, None)
    assert before["cap_exceeded"] is False


def test_non_selected_ahead_of_selected_exceeds_the_cap(subs_world: Any, settings: Any) -> None:
    rows = _run(settings.JICAI_HOME)
    nov, dec = rows[HN, "2022-11"], rows[HN, "2022-12"]
    # November: 150 non-selected against 100 selected
    assert (nov["cum_selected_qty"], nov["cum_non_selected_qty"], nov["cap_limit"]) == (
        Decimal(100),
        Decimal(150),
        Decimal(100),
    )
    assert nov["cap_exceeded"] is True
    assert nov["exempt_qty"] == Decimal(0)
    # December: cumulative 180 against 300 — back within the cap
    assert (dec["cum_selected_qty"], dec["cum_non_selected_qty"], dec["cap_limit"]) == (
        Decimal(300),
        Decimal(180),
        Decimal(300),
    )
    assert dec["cap_exceeded"] is False


def test_sql_cap_agrees_with_the_policy_rule(subs_world: Any, settings: Any) -> None:
    kinds = {SELECTED: PurchaseKind.SELECTED, NON_SELECTED: PurchaseKind.NON_SELECTED}
    kinds[SUBSTITUTE] = PurchaseKind.SUBSTITUTE
    lines = [CapPurchase(day, Decimal(qty), kinds[p]) for _, _, p, day, qty in LINES]
    rows = _run(settings.JICAI_HOME)
    for month, end in (("2022-11", D(2022, 11, 30)), ("2022-12", AS_OF)):
        rule = check_non_selected_cap(lines, (), D(2022, 11, 1), end)
        row = rows[HN, month]
        assert (row["cum_selected_qty"], row["cum_non_selected_qty"]) == (rule.selected_qty, rule.non_selected_qty)
        assert (row["cap_limit"], row["cap_exceeded"]) == (rule.limit, rule.exceeded)


@pytest.mark.parametrize(
    ("interruption", "exempt"),
    [
        (("HN-N7", "A01", HN, D(2022, 11, 10), D(2022, 11, 20)), True),
        (("HN-N7", "A01", None, D(2022, 11, 15), D(2022, 11, 15)), True),  # region-wide, one day
        (("HN-N7", "A01", HN, D(2022, 11, 1), None), True),  # still open
        (("HN-N7", "A01", HN2, D(2022, 11, 10), D(2022, 11, 20)), False),  # another hospital
        (("HN-N7", "B02", HN, D(2022, 11, 10), D(2022, 11, 20)), False),  # another item
        (("HN-N7", "A01", HN, D(2022, 11, 16), D(2022, 11, 30)), False),  # after the purchase
    ],
)
def test_purchases_during_an_interruption_are_exempt(
    subs_world: Any, settings: Any, interruption: tuple[Any, ...], exempt: bool
) -> None:
    # given the same purchases, with an interruption of the selected product on record
    rows = _run(settings.JICAI_HOME, interruptions=_interruptions(interruption))
    nov = rows[HN, "2022-11"]
    # then the 150 non-selected units bought during it are exempt and the cap is not exceeded
    assert nov["non_selected_qty"] == Decimal(150)  # still reported as bought
    if exempt:
        assert (nov["exempt_qty"], nov["cum_non_selected_qty"], nov["cap_exceeded"]) == (
            Decimal(150),
            Decimal(0),
            False,
        )
    else:
        assert (nov["exempt_qty"], nov["cum_non_selected_qty"], nov["cap_exceeded"]) == (
            Decimal(0),
            Decimal(150),
            True,
        )


def test_open_interruption_also_exempts_later_months(subs_world: Any, settings: Any) -> None:
    table = pa.table(
        {
            "batch_code": ["HN-N7"],
            "item_code": ["A01"],
            "institution_code": [HN],
            "start_date": [D(2022, 11, 1)],
        }
    )  # the alternative column name, no end column at all
    rows = _run(settings.JICAI_HOME, interruptions=table)
    assert rows[HN, "2022-12"]["exempt_qty"] == Decimal(30)
    assert rows[HN, "2022-12"]["cum_non_selected_qty"] == Decimal(0)


def test_no_cap_or_a_looser_cap(subs_world: Any, settings: Any) -> None:
    uncapped = _run(settings.JICAI_HOME, cap_ratio={"national": None})[HN, "2022-11"]
    assert (uncapped["cap_limit"], uncapped["cap_exceeded"]) == (None, False)
    unknown = _run(settings.JICAI_HOME, cap_ratio={})[HN, "2022-11"]
    assert (unknown["cap_limit"], unknown["cap_exceeded"]) == (None, False)
    loose = _run(settings.JICAI_HOME, cap_ratio={"national": Decimal(2)})[HN, "2022-11"]
    assert (loose["cap_limit"], loose["cap_exceeded"]) == (Decimal(200), False)


def test_cumulative_restarts_each_agreement_year(subs_world: Any, settings: Any) -> None:
    from jicai.programme.models import Agreement

    with system_scope("test"):
        Agreement.objects.create(
            batch=subs_world.hn_batch,
            item=subs_world.hn_item,
            institution=subs_world.hn_inst,
            year=2,
            agreed_qty=Decimal(10000),
            period_start=D(2023, 11, 1),
            period_end=D(2024, 10, 31),
        )
    add_purchases(settings.JICAI_HOME, [("y1", HN, NON_SELECTED, D(2023, 11, 2), 5)])
    with open_query(settings.JICAI_HOME, Scope.system("test")) as q:
        rows = by(substitutes(q, D(2023, 11, 15), cap_ratio=CAP), "institution_code", "month")
    jan, nov = rows[HN, "2023-01"], rows[HN, "2023-11"]
    assert (jan["cum_selected_qty"], jan["cum_non_selected_qty"]) == (Decimal(300), Decimal(1179))
    # year 2 starts from zero: 5 non-selected against no selected exceeds
    assert (nov["cum_selected_qty"], nov["cum_non_selected_qty"], nov["cap_exceeded"]) == (
        Decimal(0),
        Decimal(5),
        True,
    )


def test_conversion_and_scope(subs_world: Any, settings: Any) -> None:
    from jicai.programme.models import Agreement, NonSelectedProduct

    # given the non-selected product counted at 2 item units, and a second hospital's purchases
    with system_scope("test"):
        NonSelectedProduct.objects.filter(product_id__isnull=False, kind="same_generic").update(conversion=Decimal(2))
        Agreement.objects.create(
            batch=subs_world.hn_batch,
            item=subs_world.hn_item,
            institution=subs_world.hn_inst2,
            year=1,
            agreed_qty=Decimal(5000),
            period_start=D(2022, 11, 1),
            period_end=D(2023, 10, 31),
        )
    add_purchases(settings.JICAI_HOME, [("o1", HN2, SELECTED, D(2022, 11, 5), 7)])
    system = _run(settings.JICAI_HOME)
    assert system[HN, "2022-11"]["non_selected_qty"] == Decimal(300)
    assert system[HN2, "2022-11"]["selected_qty"] == Decimal(7)
    # then a hospital user sees only their hospital
    assert {k[0] for k in _run(settings.JICAI_HOME, subs_world.scope("hn_vbp"))} == {HN}
    assert {k[0] for k in _run(settings.JICAI_HOME, subs_world.scope("hn2_vbp"))} == {HN2}
    assert {k[0] for k in _run(settings.JICAI_HOME, institution=HN2)} == {HN2}
    assert _run(settings.JICAI_HOME, batch="SX-N7") == {}


def test_daily_rollup_source_gives_identical_results(subs_world: Any, settings: Any) -> None:
    add_purchases(
        settings.JICAI_HOME,
        [("r1", HN, SUBSTITUTE, D(2022, 12, 3), "2.5"), ("r2", HN, NON_SELECTED, D(2022, 11, 15), 1)],
    )
    interruptions = _interruptions(("HN-N7", "A01", None, D(2022, 12, 1), D(2022, 12, 10)))
    with open_query(settings.JICAI_HOME, Scope.system("test")) as q:
        q.sql(
            "CREATE TEMP TABLE purchases_daily AS SELECT institution_code, region_code, product_code, accepted_on, "
            "month, sum(qty) qty FROM purchases GROUP BY ALL"
        )
        for kw in ({}, {"institution": HN}, {"interruptions": interruptions}):
            raw = substitutes(q, AS_OF, cap_ratio=CAP, ordered=True, **kw)
            rolled = substitutes(q, AS_OF, cap_ratio=CAP, source="purchases_daily", ordered=True, **kw)
            assert raw.num_rows == 3
            assert raw.equals(rolled)
    assert tuple(raw.schema.names) == SUBSTITUTE_COLUMNS


def test_ordered_rows_are_by_institution_item_and_month(subs_world: Any, settings: Any) -> None:
    add_purchases(settings.JICAI_HOME, [("o1", HN, SUBSTITUTE, D(2022, 10, 3), 1)])
    with open_query(settings.JICAI_HOME, Scope.system("test")) as q:
        months = substitutes(q, D(2022, 11, 30), cap_ratio=CAP, ordered=True).column("month").to_pylist()
    assert months == ["2021-11", "2022-10", "2022-11"]
    assert dt.date.fromisoformat(months[-1] + "-01") == D(2022, 11, 1)


# --------------------------------------------------------------------------------------------------
# Property: the SQL cumulative figures and cap verdicts are the policy rule's, for any agreement-year
# boundaries (including years starting mid-month) and any interruptions.

_PRODUCTS = {
    SELECTED: ("selected", Decimal(1)),
    NON_SELECTED: ("same_generic", Decimal(2)),
    SUBSTITUTE: ("substitute", Decimal(1)),
}
_KIND = {
    "selected": PurchaseKind.SELECTED,
    "same_generic": PurchaseKind.NON_SELECTED,
    "substitute": PurchaseKind.SUBSTITUTE,
}
_START = D(2023, 1, 1)


def _month_end(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shift=st.integers(min_value=0, max_value=40),
    lines=st.lists(
        st.tuples(st.sampled_from(sorted(_PRODUCTS)), st.integers(-40, 800), st.integers(1, 50)),
        min_size=1,
        max_size=25,
    ),
    breaks=st.lists(
        st.tuples(st.booleans(), st.integers(-40, 800), st.one_of(st.none(), st.integers(0, 90))), max_size=2
    ),
    as_of_day=st.integers(0, 800),
)
# a year starting mid-month, with exempt non-selected purchases in the days before its start
@example(
    shift=14,
    lines=[(NON_SELECTED, 5, 10), (SELECTED, 20, 3), (NON_SELECTED, 25, 1)],
    breaks=[(True, 0, 10)],
    as_of_day=100,
)
@example(shift=0, lines=[(NON_SELECTED, 400, 10), (SELECTED, 370, 3)], breaks=[(False, 395, None)], as_of_day=420)
def test_cumulative_and_cap_match_the_policy_rule(
    shift: int, lines: list[tuple[str, int, int]], breaks: list[tuple[bool, int, int | None]], as_of_day: int
) -> None:
    from jicai.monitoring.reference import AGREEMENTS, ITEM_PRODUCTS
    from jicai.policy.caps import Interruption
    from tests.monitoring import purchase_table

    start1 = _START + dt.timedelta(days=shift)
    years = [
        (1, start1, start1 + dt.timedelta(days=364)),
        (2, start1 + dt.timedelta(days=365), start1 + dt.timedelta(days=729)),
    ]
    agreements = pa.Table.from_pylist(
        [
            {
                "agreement_id": y,
                "batch_code": "B1",
                "item_code": "A01",
                "institution_code": HN,
                "region_code": "460108",
                "year": y,
                "period_start": s,
                "period_end": e,
                "agreed_qty": Decimal(1000),
                "unit_price": None,
                "profile": "national",
            }
            for y, s, e in years
        ],
        schema=AGREEMENTS,
    )
    products = pa.Table.from_pylist(
        [
            {"batch_code": "B1", "item_code": "A01", "product_code": p, "kind": k, "conversion": c, "unit_price": None}
            for p, (k, c) in _PRODUCTS.items()
        ],
        schema=ITEM_PRODUCTS,
    )
    rows = [(f"L{i}", HN, p, _START + dt.timedelta(days=d), qty) for i, (p, d, qty) in enumerate(lines)]
    spans = [
        (HN if own else None, _START + dt.timedelta(days=b), None if n is None else _START + dt.timedelta(days=b + n))
        for own, b, n in breaks
    ]
    as_of = _START + dt.timedelta(days=as_of_day)
    with tempfile.TemporaryDirectory() as home_dir:
        home = Path(home_dir)
        store.append(home, PURCHASES, purchase_table(rows))
        with FactQuery(home, Scope.system("test")) as q:
            q.register("agreements", agreements)
            q.register("item_products", products)
            interruptions = pa.Table.from_pylist(
                [
                    {"batch_code": "B1", "item_code": "A01", "institution_code": i, "start": s, "end": e}
                    for i, s, e in spans
                ],
                schema=INTERRUPTION_SCHEMA,
            )
            got = substitutes(q, as_of, cap_ratio=CAP, interruptions=interruptions, ordered=True).to_pylist()
            counted = {r["year"]: r["counted_qty"] for r in progress(q, as_of, thresholds={}).to_pylist()}
    purchases = [
        CapPurchase(day, Decimal(qty), _KIND[_PRODUCTS[p][0]], _PRODUCTS[p][1])
        for _, _, p, day, qty in rows
        if day <= as_of
    ]
    rule_breaks = [Interruption(s, e) for _, s, e in spans]
    assert [r["month"] for r in got] == sorted({f"{p.accepted_on:%Y-%m}" for p in purchases})
    for row in got:
        first = dt.date.fromisoformat(row["month"] + "-01")
        ref_day = min(_month_end(first), as_of)
        in_month = [p for p in purchases if p.accepted_on.strftime("%Y-%m") == row["month"]]
        exempt = sum(
            (
                p.item_qty
                for p in in_month
                if p.kind is PurchaseKind.NON_SELECTED and any(b.covers(p.accepted_on) for b in rule_breaks)
            ),
            Decimal(0),
        )
        assert row["exempt_qty"] == exempt
        year = next(((y, s) for y, s, e in years if s <= ref_day <= e), None)
        if year is None:
            assert (row["cum_selected_qty"], row["cap_exceeded"]) == (None, False)
            continue
        rule = check_non_selected_cap(purchases, rule_breaks, year[1], ref_day)
        assert (row["cum_selected_qty"], row["cum_non_selected_qty"]) == (rule.selected_qty, rule.non_selected_qty)
        assert (row["cap_limit"], row["cap_exceeded"]) == (rule.limit, rule.exceeded)
        if ref_day == as_of:
            assert counted[year[0]] == rule.selected_qty  # the year's counted quantity so far
