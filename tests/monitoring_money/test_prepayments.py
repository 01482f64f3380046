"""Prepayment tranches (R-E2) and settlement statements (R-E3), end to end through FactQuery.

The world's Hainan agreement: 10,000 tablets agreed for 2022-11-01..2023-10-31 at the winning price
2.38 per pack of 7 → 0.3400 per tablet, so the agreed amount is 3,400.00. Half the period (365 days,
the 183rd day) is 2023-05-02.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from jicai.core.tenancy import Scope, system_scope
from jicai.facts.query import FactQuery
from jicai.facts.schemas import PURCHASES_DAILY
from jicai.facts.store import append
from jicai.monitoring.alerts_rules import tranche_fired
from jicai.monitoring.prepayments import PREPAYMENT_COLUMNS, SETTLEMENT_COLUMNS, prepayments, settlements
from jicai.monitoring.reference import load_reference
from jicai.policy.profile import ProfileLibrary

from . import purchase, write_purchases

SYSTEM = Scope.system("test")
PRODUCT = "XC10AAA067A001020101187"
OTHER = "XC08CAA014A001010100001"  # not selected in the batch: never counts
HN = ("H46010800001", "460108")
HN2 = ("H46020000002", "460200")


def _profile(world: Any, name: str) -> None:
    with system_scope("test"):
        world.hn_batch.policy_profile = name
        world.hn_batch.save()


def _buy(home: Path, inst: tuple[str, str], *lots: tuple[dt.date, str], product: str = PRODUCT, tag: str = "") -> None:
    write_purchases(
        home,
        [
            purchase(f"{inst[0]}{tag}-{i}", *inst, day, "0", product=product, qty=qty, unit_price="0.34")
            for i, (day, qty) in enumerate(lots)
        ],
    )


def _run(fn: Any, home: Path, as_of: dt.date, library: ProfileLibrary | None = None, **kw: Any) -> pa.Table:
    reference = load_reference(SYSTEM)
    with FactQuery(home, SYSTEM) as q:
        q.register("agreements", reference.agreements)
        q.register("item_products", reference.item_products)
        return fn(q, as_of, profiles=library or ProfileLibrary(), **kw)  # type: ignore[no-any-return]


def _tranches(table: pa.Table, institution: str) -> list[tuple[int, str, Decimal, dt.date | None]]:
    return [
        (r["tranche"], r["trigger"], r["amount"], r["fired_on"])
        for r in table.to_pylist()
        if r["institution_code"] == institution and r["batch_code"] == "HN-N7"
    ]


def test_jilin_half_volume_half_period_and_completion(world: Any, settings: Any) -> None:
    from jicai.programme.models import Agreement

    _profile(world, "jilin")
    with system_scope("test"):
        Agreement.objects.create(
            batch=world.hn_batch,
            item=world.hn_item,
            institution=world.hn_inst2,
            year=1,
            agreed_qty=Decimal(10000),
            period_start=dt.date(2022, 11, 1),
            period_end=dt.date(2023, 10, 31),
        )
    home = Path(settings.JICAI_HOME)
    # Hospital 1 reaches half the volume (5,500 ≥ 5,000) on 2023-01-10, before half the period.
    _buy(home, HN, (dt.date(2022, 12, 1), "3000"), (dt.date(2023, 1, 10), "2500"))
    _buy(home, HN, (dt.date(2022, 12, 2), "9000"), product=OTHER, tag="x")  # a non-selected product
    _buy(home, HN, (dt.date(2022, 10, 30), "9000"), tag="early")  # before the period
    # Hospital 2 buys slowly: half the period (2023-05-02) comes first; completion on 2023-08-15.
    _buy(home, HN2, (dt.date(2022, 12, 1), "1000"), (dt.date(2023, 8, 15), "9000"))

    table = _run(prepayments, home, dt.date(2023, 6, 1))
    assert tuple(table.column_names) == PREPAYMENT_COLUMNS
    any_of = "any_of(period_share(0.5), volume_share(0.5))"
    assert _tranches(table, HN[0]) == [
        (1, "start", Decimal("1700.00"), dt.date(2022, 11, 1)),
        (2, any_of, Decimal("1530.00"), dt.date(2023, 1, 10)),
        (3, "completion", Decimal("170.00"), None),
    ]
    assert _tranches(table, HN2[0]) == [
        (1, "start", Decimal("1700.00"), dt.date(2022, 11, 1)),
        (2, any_of, Decimal("1530.00"), dt.date(2023, 5, 2)),
        (3, "completion", Decimal("170.00"), None),
    ]
    row = table.to_pylist()[0]
    assert row["agreed_amount"] == Decimal("3400.00")
    assert row["unit_price"] == Decimal("0.3400")
    assert row["profile"] == "jilin"
    assert row["agreed_qty"] == Decimal("10000.0000")

    later = _run(prepayments, home, dt.date(2023, 9, 1), institution=HN2[0])
    assert {r["institution_code"] for r in later.to_pylist()} == {HN2[0]}
    assert _tranches(later, HN2[0])[2] == (3, "completion", Decimal("170.00"), dt.date(2023, 8, 15))
    # The tranche alert: fired within the last 31 days, with a stable key and the amount.
    alerts = tranche_fired(later, dt.date(2023, 9, 1))
    assert [a.key for a in alerts] == [f"tranche:HN-N7:A01:{HN2[0]}:1:3"]
    assert "170.00 元" in alerts[0].message_zh
    assert "2023-08-15" in alerts[0].message_zh
    assert alerts[0].region_code == HN2[1]


def test_xian_clearing_negative_when_under_used(world: Any, settings: Any) -> None:
    _profile(world, "xian")
    home = Path(settings.JICAI_HOME)
    _buy(home, HN, (dt.date(2023, 2, 1), "4000"), (dt.date(2023, 3, 15), "2000"), (dt.date(2023, 11, 5), "999"))

    running = _tranches(_run(prepayments, home, dt.date(2023, 10, 30)), HN[0])
    assert running[:2] == [
        (1, "start", Decimal("1700.00"), dt.date(2022, 11, 1)),
        (2, "volume_share(0.5)", Decimal("1360.00"), dt.date(2023, 3, 15)),  # 6,000 ≥ 5,000
    ]
    # Before period end the clearing is provisional: 6,000 × 0.34 − 3,060.00, not fired.
    assert running[2] == (3, "clearing", Decimal("-1020.00"), None)

    table = _run(prepayments, home, dt.date(2023, 11, 30))
    assert _tranches(table, HN[0])[2] == (3, "clearing", Decimal("-1020.00"), dt.date(2023, 10, 31))
    clearing = next(r for r in table.to_pylist() if r["trigger"] == "clearing" and r["institution_code"] == HN[0])
    assert "已触发" in clearing["reason"]
    assert "minus prepaid" in clearing["reason"]
    alert = tranche_fired(table, dt.date(2023, 11, 30))[-1]
    assert alert.key == f"tranche:HN-N7:A01:{HN[0]}:1:3"
    assert "应退回医保基金 1,020.00 元" in alert.message_zh


def test_agreement_without_unit_price_is_reported_not_fatal(world: Any, settings: Any) -> None:
    # The Shaanxi batch has no selected product, so no winning unit price.
    home = Path(settings.JICAI_HOME)
    table = _run(prepayments, home, dt.date(2023, 6, 1), batch="SX-N7")
    rows = table.to_pylist()
    assert [r["trigger"] for r in rows] == ["start", "clearing"]  # shanxi tranches
    assert all(r["amount"] == 0 and r["agreed_amount"] == 0 and r["fired_on"] is None for r in rows)
    assert all("无中选单价" in r["reason"] and "no winning unit price" in r["reason"] for r in rows)
    assert _run(settlements, home, dt.date(2023, 6, 1), batch="SX-N7").num_rows == 0


def _lots() -> list[tuple[dt.date, str]]:
    return [
        (dt.date(2022, 11, 15), "2000"),
        (dt.date(2023, 2, 10), "3000"),
        (dt.date(2023, 5, 10), "3000"),
        (dt.date(2023, 8, 10), "2000"),
        (dt.date(2023, 10, 10), "1000"),
    ]


def _cq_purchases(home: Path) -> None:
    _buy(home, HN, *_lots())


def _statement(table: pa.Table) -> list[tuple[str, Decimal, Decimal, Decimal, Decimal, Decimal, str]]:
    return [
        (r["period"], r["counted_qty"], r["amount"], r["prepaid_to_date"], r["reserve"], r["payable"], r["kind"])
        for r in table.to_pylist()
        if r["institution_code"] == HN[0]
    ]


def test_chongqing_quarterly_settlement_and_clearing(world: Any, settings: Any) -> None:
    _profile(world, "chongqing")
    home = Path(settings.JICAI_HOME)
    _cq_purchases(home)
    d = Decimal
    table = _run(settlements, home, dt.date(2023, 11, 1), institution=HN[0])
    assert tuple(table.column_names) == SETTLEMENT_COLUMNS
    # 50% advance (1,700.00) covers use until the cumulative passes it in 2023Q2.
    assert _statement(table) == [
        ("2022Q4", d("2000"), d("680.00"), d("1700.00"), d("0.00"), d("0.00"), "settlement"),
        ("2023Q1", d("3000"), d("1020.00"), d("1700.00"), d("0.00"), d("0.00"), "settlement"),
        ("2023Q2", d("3000"), d("1020.00"), d("1700.00"), d("0.00"), d("1020.00"), "settlement"),
        ("2023Q3", d("2000"), d("680.00"), d("1700.00"), d("0.00"), d("680.00"), "settlement"),
        ("2023Q4", d("1000"), d("340.00"), d("1700.00"), d("0.00"), d("340.00"), "settlement"),
        ("2022-11-01/2023-10-31", d("11000"), d("3740.00"), d("1700.00"), d("0.00"), d("0.00"), "clearing"),
    ]
    rows = table.to_pylist()
    assert (rows[0]["period_start"], rows[0]["period_end"]) == (dt.date(2022, 11, 1), dt.date(2022, 12, 31))
    assert (rows[4]["period_start"], rows[4]["period_end"]) == (dt.date(2023, 10, 1), dt.date(2023, 10, 31))
    # The prepayment view's clearing tranche pays actual use minus the advance.
    tranches = _tranches(_run(prepayments, home, dt.date(2023, 11, 1)), HN[0])
    assert tranches[-1] == (2, "clearing", d("2040.00"), dt.date(2023, 10, 31))

    # The daily rollup gives the same statements as the lines.
    rollup = [
        {
            "institution_code": HN[0],
            "region_code": HN[1],
            "product_code": PRODUCT,
            "accepted_on": day,
            "qty": d(qty),
            "amount": d(0),
            "lines": 1,
            "month": day.strftime("%Y-%m"),
        }
        for day, qty in _lots()
    ]
    append(home, PURCHASES_DAILY, pa.Table.from_pylist(rollup, schema=PURCHASES_DAILY.schema))
    assert _run(settlements, home, dt.date(2023, 11, 1), institution=HN[0], source="purchases_daily").equals(table)

    # Mid-year: only periods that have started, the running one counted to as-of, no clearing yet.
    mid = _statement(_run(settlements, home, dt.date(2023, 4, 20), institution=HN[0]))
    assert [(p, q, k) for p, q, _, _, _, _, k in mid] == [
        ("2022Q4", d("2000"), "settlement"),
        ("2023Q1", d("3000"), "settlement"),
        ("2023Q2", d("0"), "settlement"),
    ]


def test_chongqing_reserve_is_released_at_clearing(world: Any, settings: Any, tmp_path: Path) -> None:
    users = tmp_path / "user-profiles"
    users.mkdir()
    (users / "cq-reserve.toml").write_text(
        """
name = "cq-reserve"
label = "重庆（含预留金示例）"
level = "city"
parent = "chongqing"
region_code = "500100"

[[versions]]
effective_from = "2020-01-01"

[versions.settlement.reserve_share]
value = "0.10"
source = "test"
confirmed = false
""",
        encoding="utf-8",
    )
    _profile(world, "cq-reserve")
    home = Path(settings.JICAI_HOME)
    _cq_purchases(home)
    d = Decimal
    table = _run(settlements, home, dt.date(2023, 12, 31), ProfileLibrary([users]), institution=HN[0])
    got = [(p, a, r, pay) for p, _, a, _, r, pay, _ in _statement(table)]
    assert got == [
        ("2022Q4", d("680.00"), d("68.00"), d("0.00")),
        ("2023Q1", d("1020.00"), d("102.00"), d("0.00")),  # net 612 + 918 = 1,530 < 1,700 advanced
        ("2023Q2", d("1020.00"), d("102.00"), d("748.00")),
        ("2023Q3", d("680.00"), d("68.00"), d("612.00")),
        ("2023Q4", d("340.00"), d("34.00"), d("306.00")),
        ("2022-11-01/2023-10-31", d("3740.00"), d("0.00"), d("374.00")),  # the reserve held, released
    ]
    assert 1700 + sum(pay for *_, pay in got) == d("3740.00")
