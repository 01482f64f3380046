"""Set-based fired tranches (R-E2): ``fired_tranches`` gives exactly the rows of ``prepayments`` whose
tranche fired in (after, as_of], by hand on Jilin and Xi'an agreements and by property on random ones.

No database: agreements and item products are registered as Arrow tables, purchases written to the
fact store of a temporary home.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from jicai.core.tenancy import Scope
from jicai.facts.query import FactQuery
from jicai.facts.schemas import AGREEMENTS, ITEM_PRODUCTS, PURCHASES_DAILY
from jicai.facts.store import append
from jicai.monitoring.prepayments import PREPAYMENT_COLUMNS, prepayments
from jicai.monitoring.tranches import fired_tranches
from jicai.policy.profile import ProfileLibrary

from . import purchase, write_purchases

SYSTEM = Scope.system("test")
D = Decimal
A, B = "H46010800001", "H46020000002"
REGION = {A: "460108", B: "460200"}
Y2025 = (dt.date(2025, 1, 1), dt.date(2025, 12, 31))  # 365 days: half is the 183rd day, 2025-07-02


def _items(conversion: str = "1") -> list[dict[str, Any]]:
    """Batch BT: item I1 selects P1 and P2 (at ``conversion``), P9 is same-generic (never counts); I2
    selects P3 and P1 again (conversion 2)."""
    rows = [
        ("I1", "P1", "selected", "1"),
        ("I1", "P2", "selected", conversion),
        ("I1", "P9", "same_generic", "1"),
        ("I2", "P3", "selected", "1"),
        ("I2", "P1", "selected", "2"),  # P1 is selected in two items: counted in each, as daily_counted does
    ]
    return [
        {"batch_code": "BT", "item_code": i, "product_code": p, "kind": k, "conversion": D(c), "unit_price": None}
        for i, p, k, c in rows
    ]


def _agreement(
    agreement_id: int,
    institution: str,
    *,
    item: str = "I1",
    period: tuple[dt.date, dt.date] = Y2025,
    agreed: str = "2000",
    price: str | None = "1.7000",
    profile: str | None = "jilin",
) -> dict[str, Any]:
    return {
        "agreement_id": agreement_id,
        "batch_code": "BT",
        "item_code": item,
        "institution_code": institution,
        "region_code": REGION[institution],
        "year": period[0].year,
        "period_start": period[0],
        "period_end": period[1],
        "agreed_qty": D(agreed),
        "unit_price": None if price is None else D(price),
        "profile": profile,
    }


def _lines(home: Path, lots: list[tuple[str, str, dt.date, str]]) -> None:
    if lots:
        write_purchases(
            home,
            [
                purchase(f"L{i}", inst, REGION[inst], day, product=p, qty=qty)
                for i, (inst, p, day, qty) in enumerate(lots)
            ],
        )


def _query(home: Path, agreements: list[dict[str, Any]], conversion: str = "1") -> FactQuery:
    q = FactQuery(home, SYSTEM)
    q.register("agreements", pa.Table.from_pylist(agreements, schema=AGREEMENTS))
    q.register("item_products", pa.Table.from_pylist(_items(conversion), schema=ITEM_PRODUCTS))
    return q


def _key(row: dict[str, Any]) -> tuple[int, int]:
    return row["agreement_id"], row["tranche"]


def _expected(q: FactQuery, as_of: dt.date, after: dt.date, library: ProfileLibrary) -> list[dict[str, Any]]:
    rows = prepayments(q, as_of, profiles=library).to_pylist()
    fired = [r for r in rows if r["fired_on"] is not None and after < r["fired_on"] <= as_of]
    return sorted(({k: v for k, v in r.items() if k != "reason"} for r in fired), key=_key)


def _got(q: FactQuery, as_of: dt.date, after: dt.date, library: ProfileLibrary, **kw: Any) -> list[dict[str, Any]]:
    table = fired_tranches(q, as_of, profiles=library, after=after, **kw)
    assert tuple(table.column_names) == PREPAYMENT_COLUMNS
    rows = table.to_pylist()
    assert all(r["reason"].startswith(f"已触发 fired {r['fired_on']}: ") for r in rows)
    return sorted(({k: v for k, v in r.items() if k != "reason"} for r in rows), key=_key)


def _brief(rows: list[dict[str, Any]]) -> list[tuple[int, int, str, dt.date, Decimal]]:
    return [(r["agreement_id"], r["tranche"], r["trigger"], r["fired_on"], r["amount"]) for r in rows]


# --------------------------------------------------------------------------------------------------
# By hand


JILIN_ANY = "any_of(period_share(0.5), volume_share(0.5))"


def _jilin_world(home: Path) -> FactQuery:
    # Agreement 1 (hospital A): 2,000 units × 1.70 = 3,400.00 → 50% 1,700.00 / 45% 1,530.00 / 5% the
    # remainder 3,400.00 − 1,700.00 − 1,530.00 = 170.00 (the rule-facts vector).
    # Agreement 2 (hospital B): same numbers, buys slowly.
    _lines(
        home,
        [
            (A, "P1", dt.date(2025, 2, 10), "600"),
            (A, "P1", dt.date(2025, 3, 5), "500"),
            (A, "P2", dt.date(2025, 3, 5), "-200"),  # 3-05 nets 300: cumulative 900 < 1,000 (half)
            (A, "P1", dt.date(2025, 3, 6), "100"),  # 1,000 ≥ 1,000: the any_of tranche fires on 3-06
            (A, "P1", dt.date(2025, 4, 1), "50"),
            (A, "P2", dt.date(2025, 4, 1), "-300"),  # 4-01 nets −250: counts 0, cumulative stays 1,000
            (A, "P9", dt.date(2025, 5, 1), "5000"),  # a same-generic product: never counts
            (A, "P1", dt.date(2024, 12, 31), "5000"),  # before the year
            (A, "P1", dt.date(2025, 9, 20), "1000"),  # 2,000 ≥ 2,000 (completion), only because 4-01 counted 0
            (B, "P1", dt.date(2025, 2, 1), "300"),  # slow: half the period (2025-07-02) comes first
        ],
    )
    return _query(home, [_agreement(1, A), _agreement(2, B)])


def test_jilin_by_hand(tmp_path: Path) -> None:
    library = ProfileLibrary()
    with _jilin_world(tmp_path) as q:
        windows = {
            (dt.date(2024, 12, 31), dt.date(2025, 1, 31)): [
                (1, 1, "start", dt.date(2025, 1, 1), D("1700.00")),
                (2, 1, "start", dt.date(2025, 1, 1), D("1700.00")),
            ],
            (dt.date(2025, 2, 28), dt.date(2025, 3, 31)): [(1, 2, JILIN_ANY, dt.date(2025, 3, 6), D("1530.00"))],
            (dt.date(2025, 3, 31), dt.date(2025, 6, 30)): [],
            (dt.date(2025, 6, 30), dt.date(2025, 7, 31)): [(2, 2, JILIN_ANY, dt.date(2025, 7, 2), D("1530.00"))],
            (dt.date(2025, 8, 31), dt.date(2025, 9, 30)): [(1, 3, "completion", dt.date(2025, 9, 20), D("170.00"))],
            (dt.date(2025, 9, 30), dt.date(2026, 1, 31)): [],  # no clearing in the Jilin schedule
        }
        for (after, as_of), want in windows.items():
            got = _got(q, as_of, after, library)
            assert _brief(got) == want, (after, as_of)
            assert got == _expected(q, as_of, after, library), (after, as_of)
        # A whole year at once: every tranche that fired, with the same values as prepayments.
        year = _got(q, dt.date(2025, 12, 31), dt.date(2024, 12, 31), library)
        assert len(year) == 5
        assert year[0]["agreed_amount"] == D("3400.00")
        assert year[0]["agreed_qty"] == D("2000.0000")
        assert (year[0]["profile"], year[0]["share"], year[0]["year"]) == ("jilin", D("0.5000"), 2025)
        reasons = {
            _key(r): r["reason"]
            for r in fired_tranches(q, dt.date(2025, 12, 31), profiles=library, after=dt.date(2024, 12, 31)).to_pylist()
        }
        assert reasons[(1, 1)] == "已触发 fired 2025-01-01: start: period start 2025-01-01"
        assert reasons[(1, 2)] == (
            "已触发 fired 2025-03-06: first of any_of: volume_share(0.5): cumulative 1000 reached 1000 on 2025-03-06"
        )
        assert reasons[(2, 2)] == (
            "已触发 fired 2025-07-02: first of any_of: period_share(0.5): elapsed share reached 0.5 on 2025-07-02"
        )


def test_xian_clearing_and_national_by_hand(tmp_path: Path) -> None:
    # Agreement 3 (Xi'an, hospital A): 1,000 × 1.70 = 1,700.00 → start 850.00; volume_share(0.5) 680.00
    # once 500 are counted (400 + 200 on 5-10); shares sum to 0.9, so no remainder. Use 400 + 200 + 150
    # = 750 → clearing on 12-31: 750 × 1.70 = 1,275.00 − (850.00 + 680.00) = −255.00 (owed to the fund).
    # Agreement 4 (national, hospital B): 500 × 2.3456 = 1,172.80 → 30% = 351.84 at start; 480 counted
    # (P2 at conversion 2: 240 lines × 2) → 480 × 2.3456 = 1,125.888 → 1,125.89 − 351.84 = 774.05.
    # Agreement 5 has no unit price, 6 agreed 0, 7 an unknown profile: nothing fires for them.
    _lines(
        tmp_path,
        [
            (A, "P1", dt.date(2025, 3, 1), "400"),
            (A, "P1", dt.date(2025, 5, 10), "200"),
            (A, "P1", dt.date(2025, 11, 5), "150"),
            (B, "P2", dt.date(2025, 6, 1), "240"),
        ],
    )
    agreements = [
        _agreement(3, A, agreed="1000", profile="xian"),
        _agreement(4, B, agreed="500", price="2.3456", profile=None),  # no profile: national
        _agreement(5, A, item="I2", price=None, profile="xian"),
        _agreement(6, B, item="I2", agreed="0", profile="national"),
        _agreement(7, A, item="I2", profile="atlantis"),
    ]
    library = ProfileLibrary()
    with _query(tmp_path, agreements, conversion="2") as q:
        windows = {
            (dt.date(2024, 12, 31), dt.date(2025, 1, 31)): [
                (3, 1, "start", dt.date(2025, 1, 1), D("850.00")),
                (4, 1, "start", dt.date(2025, 1, 1), D("351.84")),
            ],
            (dt.date(2025, 4, 30), dt.date(2025, 5, 31)): [
                (3, 2, "volume_share(0.5)", dt.date(2025, 5, 10), D("680.00"))
            ],
            (dt.date(2025, 11, 30), dt.date(2025, 12, 31)): [
                (3, 3, "clearing", dt.date(2025, 12, 31), D("-255.00")),
                (4, 2, "clearing", dt.date(2025, 12, 31), D("774.05")),
            ],
            (dt.date(2025, 12, 31), dt.date(2026, 1, 31)): [],
        }
        for (after, as_of), want in windows.items():
            got = _got(q, as_of, after, library)
            assert _brief(got) == want, (after, as_of)
            assert got == _expected(q, as_of, after, library), (after, as_of)
        clearing = fired_tranches(q, dt.date(2026, 1, 31), profiles=library, after=dt.date(2025, 11, 30)).to_pylist()
        assert clearing[0]["reason"] == (
            "已触发 fired 2025-12-31: clearing: period end 2025-12-31; "
            "actual 750 × 1.7000 = 1275.00 minus prepaid 1530.00"
        )
        assert fired_tranches(q, dt.date(2025, 6, 1), profiles=library, after=dt.date(2025, 6, 1)).num_rows == 0


def test_amounts_of_billions_are_exact(tmp_path: Path) -> None:
    # 10,000,000 units × 9,999.9999 = 99,999,999,000.00 agreed; 30% = 29,999,999,700.00 at start; all
    # bought, so the clearing pays 99,999,999,000.00 − 29,999,999,700.00 = 69,999,999,300.00 (products
    # beyond 10¹⁰ yuan are redone in 128 bits).
    _lines(tmp_path, [(A, "P1", dt.date(2025, 6, 1), "10000000")])
    library = ProfileLibrary()
    with _query(tmp_path, [_agreement(1, A, agreed="10000000", price="9999.9999", profile="national")]) as q:
        as_of, after = dt.date(2025, 12, 31), dt.date(2024, 12, 31)
        got = _got(q, as_of, after, library)
        assert _brief(got) == [
            (1, 1, "start", dt.date(2025, 1, 1), D("29999999700.00")),
            (1, 2, "clearing", dt.date(2025, 12, 31), D("69999999300.00")),
        ]
        assert got == _expected(q, as_of, after, library)


def test_daily_rollup_gives_the_same_rows(tmp_path: Path) -> None:
    library = ProfileLibrary()
    with _jilin_world(tmp_path) as q:
        lines = q.rows("SELECT institution_code, region_code, product_code, accepted_on, qty, month FROM purchases")
    rollup: dict[tuple[Any, ...], Decimal] = {}
    for r in lines:
        key = (r["institution_code"], r["region_code"], r["product_code"], r["accepted_on"], r["month"])
        rollup[key] = rollup.get(key, D(0)) + r["qty"]
    rows = [
        {"institution_code": i, "region_code": g, "product_code": p, "accepted_on": d, "qty": n, "amount": D(0)}
        | {"lines": 1, "month": m}
        for (i, g, p, d, m), n in rollup.items()
    ]
    append(tmp_path, PURCHASES_DAILY, pa.Table.from_pylist(rows, schema=PURCHASES_DAILY.schema))
    with _query(tmp_path, [_agreement(1, A), _agreement(2, B)]) as q:
        as_of, after = dt.date(2025, 12, 31), dt.date(2024, 12, 31)
        assert _got(q, as_of, after, library, source="purchases_daily") == _got(q, as_of, after, library)
        with pytest.raises(ValueError, match="unknown purchase source"):
            fired_tranches(q, as_of, profiles=library, after=after, source="lines")


# --------------------------------------------------------------------------------------------------
# By property: the same rows as prepayments() filtered to the window, for random agreements and lines

# Two user profiles beyond the shipped ones: shares summing to 1 (remainder on completion), odd period
# shares and a nested choice; and a clearing schedule whose shares sum to 1 (remainder on tranche 3).
MIXED = """
name = "mixed"
label = "mixed"
level = "province"
parent = "national"
region_code = "990000"

[[versions]]
effective_from = "2020-01-01"

[versions.prepayment.tranches]
value = [
  {share = "0.25", trigger = "start"},
  {share = "0.25", trigger = "period_share(0.3333)"},
  {share = "0.25", trigger = "any_of(volume_share(0.75), any_of(period_share(0.9), completion))"},
  {share = "0.25", trigger = "completion"},
]
source = "test"
confirmed = false
"""
MIXED_CLEARING = """
name = "mixed-clearing"
label = "mixed-clearing"
level = "province"
parent = "national"
region_code = "990001"

[[versions]]
effective_from = "2020-01-01"

[versions.prepayment.tranches]
value = [
  {share = "0.3333", trigger = "start"},
  {share = "0.3333", trigger = "volume_share(0.2)"},
  {share = "0.3334", trigger = "period_share(0.6)"},
  {share = "0", trigger = "clearing"},
]
source = "test"
confirmed = false
"""

PERIODS = [
    (dt.date(2024, 1, 1), dt.date(2024, 12, 31)),
    Y2025,
    (dt.date(2024, 11, 1), dt.date(2025, 10, 31)),
    (dt.date(2025, 3, 15), dt.date(2025, 9, 14)),
]
PROFILES = ["national", "xian", "jilin", "chongqing", "shanxi", "mixed", "mixed-clearing", None, "", "atlantis"]
FIRST, LAST = dt.date(2023, 12, 20), dt.date(2026, 1, 31)

quantities = st.one_of(
    st.integers(min_value=-80, max_value=400).map(str),
    st.decimals(min_value=-5, max_value=50, places=4, allow_nan=False, allow_infinity=False).map(str),
)
agreement_specs = st.tuples(
    st.sampled_from([A, B]),
    st.sampled_from(["I1", "I2"]),
    st.sampled_from(range(len(PERIODS))),
    st.one_of(st.integers(min_value=0, max_value=300).map(str), st.sampled_from(["0.0300", "2.5", "133.3333"])),
    st.sampled_from([None, "0.0001", "0.0100", "1.7000", "2.3456", "99.9999"]),
    st.sampled_from(PROFILES),
)
line_specs = st.tuples(
    st.sampled_from([A, B]),
    st.sampled_from(["P1", "P1", "P2", "P3", "P9"]),
    st.integers(min_value=0, max_value=(LAST - FIRST).days).map(lambda n: FIRST + dt.timedelta(days=n)),
    quantities,
)
windows = st.tuples(
    st.integers(min_value=0, max_value=(LAST - FIRST).days).map(lambda n: FIRST + dt.timedelta(days=n)),
    st.one_of(st.sampled_from([1, 30, 31, 92, 800]), st.integers(min_value=1, max_value=400)),
)


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> ProfileLibrary:
    users = tmp_path_factory.mktemp("user-profiles")
    (users / "mixed.toml").write_text(MIXED, encoding="utf-8")
    (users / "mixed-clearing.toml").write_text(MIXED_CLEARING, encoding="utf-8")
    lib = ProfileLibrary([users])
    assert {"mixed", "mixed-clearing"} <= set(lib.profiles())
    assert not lib.errors
    return lib


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    agreements=st.lists(agreement_specs, min_size=1, max_size=7),
    lots=st.lists(line_specs, min_size=10, max_size=100),
    checks=st.lists(windows, min_size=1, max_size=3),
    conversion=st.sampled_from(["1", "2", "0.5", "1.3333"]),
)
def test_same_rows_as_prepayments(
    library: ProfileLibrary,
    agreements: list[tuple[str, str, int, str, str | None, str | None]],
    lots: list[tuple[str, str, dt.date, str]],
    checks: list[tuple[dt.date, int]],
    conversion: str,
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        _lines(home, lots)
        rows = [
            _agreement(i, inst, item=item, period=PERIODS[p], agreed=qty, price=price, profile=profile)
            for i, (inst, item, p, qty, price, profile) in enumerate(agreements, start=1)
        ]
        with _query(home, rows, conversion) as q:
            for as_of, days in checks:
                after = as_of - dt.timedelta(days=days)
                got = _got(q, as_of, after, library)
                assert got == _expected(q, as_of, after, library)
                for kind in sorted({r["trigger"].split("(")[0] for r in got}):
                    event(f"fired {kind}")
                if any(r["amount"] < 0 for r in got):
                    event("negative clearing")
