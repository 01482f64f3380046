"""Supplier payables and overdue totals (R-E1), computed in SQL and checked against the policy rule."""

from __future__ import annotations

import datetime as dt
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jicai.core.tenancy import Level, Scope
from jicai.facts.query import FactQuery
from jicai.monitoring.alerts_rules import overdue_payments
from jicai.monitoring.payables import OVERDUE_COLUMNS, PAYABLE_COLUMNS, overdue_totals, payables, payment_rules_for
from jicai.policy.payment_terms import DaysAfterAcceptance, EndOfNextMonth, PaymentRule, due_date
from jicai.policy.profile import ProfileLibrary

from . import payment, purchase, write_payments, write_purchases

HN = ("H46010800001", "460108")
HN2 = ("H46020000002", "460200")
HENAN = ("H41010500009", "410105")
EOM: dict[str, PaymentRule] = {"": EndOfNextMonth()}


def _home(settings: Any) -> Path:
    return Path(settings.JICAI_HOME)


def _by_line(table: Any) -> dict[str, dict[str, Any]]:
    return {r["line_id"]: r for r in table.to_pylist()}


def test_end_of_next_month_due_dates(settings: Any) -> None:
    home = _home(settings)
    write_purchases(
        home,
        [
            purchase("L1", *HN, dt.date(2026, 1, 15), "100.00"),
            purchase("L2", *HN, dt.date(2026, 12, 10), "200.00"),
            purchase("L3", *HN, dt.date(2024, 1, 31), "300.00"),  # leap year: end of February is the 29th
        ],
    )
    with FactQuery(home, Scope.system("test")) as q:
        table = payables(q, dt.date(2027, 3, 1), rules=EOM)
    assert tuple(table.column_names) == PAYABLE_COLUMNS
    rows = _by_line(table)
    assert rows["L1"]["due_on"] == dt.date(2026, 2, 28)
    assert rows["L2"]["due_on"] == dt.date(2027, 1, 31)
    assert rows["L3"]["due_on"] == dt.date(2024, 2, 29)
    assert rows["L1"]["days_overdue"] == (dt.date(2027, 3, 1) - dt.date(2026, 2, 28)).days
    assert rows["L2"]["days_overdue"] == 29
    assert rows["L2"]["overdue"] is True


def test_partial_payments_outstanding_and_overdue(settings: Any) -> None:
    home = _home(settings)
    write_purchases(
        home,
        [
            purchase("PART", *HN, dt.date(2026, 1, 15), "1000.00"),
            purchase("FULL", *HN, dt.date(2026, 1, 20), "500.00"),
            purchase("OVER", *HN, dt.date(2026, 1, 20), "80.00"),
            purchase("NOTDUE", *HN, dt.date(2026, 2, 10), "60.00"),
            purchase("LATER", *HN, dt.date(2026, 3, 20), "70.00"),  # accepted after as-of: not a payable
            purchase("OPEN", *HN, None, "90.00"),  # never accepted: not a payable
        ],
    )
    write_payments(
        home,
        [
            payment("P1", "PART", *HN, dt.date(2026, 2, 10), "300.00"),
            payment("P2", "PART", *HN, dt.date(2026, 3, 5), "200.00"),  # after as-of: not yet paid
            payment("P3", "FULL", *HN, dt.date(2026, 3, 1), "500.00"),  # paid late but in full
            payment("P4", "OVER", *HN, dt.date(2026, 2, 1), "100.00"),  # overpaid
        ],
    )
    as_of = dt.date(2026, 3, 3)
    with FactQuery(home, Scope.system("test")) as q:
        rows = _by_line(payables(q, as_of, rules=EOM))
        open_rows = _by_line(payables(q, as_of, rules=EOM, only_open=True))
    assert set(rows) == {"PART", "FULL", "OVER", "NOTDUE"}
    part = rows["PART"]
    assert part["due_on"] == dt.date(2026, 2, 28)
    assert part["paid_amount"] == Decimal("300.00")
    assert part["outstanding"] == Decimal("700.00")
    assert part["days_overdue"] == 3
    assert part["overdue"] is True
    assert rows["FULL"]["outstanding"] == Decimal("0.00")
    assert rows["FULL"]["overdue"] is False
    assert rows["FULL"]["days_overdue"] == 0
    assert rows["OVER"]["outstanding"] == Decimal("0.00")
    assert rows["OVER"]["paid_amount"] == Decimal("100.00")
    notdue = rows["NOTDUE"]
    assert notdue["due_on"] == dt.date(2026, 3, 31)
    assert notdue["overdue"] is False
    assert notdue["outstanding"] == Decimal("60.00")
    assert set(open_rows) == {"PART", "NOTDUE"}


def test_rules_follow_the_region(settings: Any) -> None:
    library = ProfileLibrary()
    rules = payment_rules_for(library, [HENAN[1], HN[1], "610112", "220102"], dt.date(2026, 1, 1))
    assert rules[HENAN[1]] == DaysAfterAcceptance(30)  # henan.toml
    assert rules[HN[1]] == EndOfNextMonth()  # no Hainan profile: national
    assert rules["610112"] == EndOfNextMonth()
    assert rules["220102"] == EndOfNextMonth()

    home = _home(settings)
    write_purchases(
        home,
        [purchase("HEN", *HENAN, dt.date(2026, 1, 15), "10.00"), purchase("HAI", *HN, dt.date(2026, 1, 15), "10.00")],
    )
    with FactQuery(home, Scope.system("test")) as q:
        rows = _by_line(payables(q, dt.date(2026, 2, 20), rules=rules))
        # A province key ("410000") and a prefix key ("46") read as the regions they name.
        by_prefix = _by_line(
            payables(q, dt.date(2026, 2, 20), rules={"410000": DaysAfterAcceptance(10), "46": EOM[""]})
        )
    assert rows["HEN"]["due_on"] == dt.date(2026, 2, 14)
    assert rows["HEN"]["days_overdue"] == 6
    assert rows["HAI"]["due_on"] == dt.date(2026, 2, 28)
    assert rows["HAI"]["overdue"] is False
    assert by_prefix["HEN"]["due_on"] == dt.date(2026, 1, 25)


def test_overdue_totals_per_institution_and_alerts(settings: Any) -> None:
    home = _home(settings)
    write_purchases(
        home,
        [
            purchase("A1", *HN, dt.date(2026, 1, 5), "100.00"),
            purchase("A2", *HN, dt.date(2025, 12, 5), "250.50"),
            purchase("A3", *HN, dt.date(2026, 3, 1), "40.00"),
            purchase("B1", *HN2, dt.date(2026, 1, 5), "70.00"),
        ],
    )
    write_payments(
        home,
        [
            payment("PA1", "A1", *HN, dt.date(2026, 2, 1), "60.00"),
            payment("PB1", "B1", *HN2, dt.date(2026, 2, 1), "70.00"),
        ],
    )
    as_of = dt.date(2026, 3, 10)
    with FactQuery(home, Scope.system("test")) as q:
        totals = overdue_totals(q, as_of, rules=EOM)
        only_hn = payables(q, as_of, rules=EOM, institution=HN[0])
    assert tuple(totals.column_names) == OVERDUE_COLUMNS
    rows = totals.to_pylist()
    assert [r["institution_code"] for r in rows] == [HN[0], HN2[0]]  # largest overdue amount first
    hn, hn2 = rows
    # A1 due 2026-02-28, 40.00 open, 10 days late; A2 due 2026-01-31, 250.50 open, 38 days late; A3 not due.
    assert hn["lines"] == 3
    assert hn["overdue_lines"] == 2
    assert hn["outstanding"] == Decimal("330.50")
    assert hn["overdue_amount"] == Decimal("290.50")
    assert hn["max_days_overdue"] == 38
    assert hn["region_code"] == HN[1]
    assert hn2 == {
        "institution_code": HN2[0],
        "region_code": HN2[1],
        "lines": 1,
        "overdue_lines": 0,
        "outstanding": Decimal("0.00"),
        "overdue_amount": Decimal("0.00"),
        "max_days_overdue": 0,
    }
    assert {r["line_id"] for r in only_hn.to_pylist()} == {"A1", "A2", "A3"}

    alerts = overdue_payments(totals)
    assert [a.key for a in alerts] == [f"overdue:{HN[0]}"]
    alert = alerts[0]
    assert alert.severity == "critical"
    assert alert.region_code == HN[1]
    assert "2 笔" in alert.message_zh
    assert "290.50 元" in alert.message_zh
    assert "38 天" in alert.message_zh


def test_region_scope_sees_only_its_lines(settings: Any) -> None:
    home = _home(settings)
    write_purchases(
        home,
        [purchase("X", *HN, dt.date(2026, 1, 5), "1.00"), purchase("Y", *HENAN, dt.date(2026, 1, 5), "1.00")],
    )
    scope = Scope(level=Level.REGION, region_code="460000", actor_name="t")
    with FactQuery(home, scope) as q:
        assert set(_by_line(payables(q, dt.date(2026, 6, 1), rules=EOM))) == {"X"}


_RULES = st.one_of(st.just(EndOfNextMonth()), st.integers(0, 120).map(DaysAfterAcceptance))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    days=st.lists(st.dates(dt.date(2019, 1, 1), dt.date(2030, 12, 31)), min_size=1, max_size=40, unique=True),
    rule=_RULES,
)
def test_sql_due_dates_equal_the_policy_rule(days: list[dt.date], rule: PaymentRule) -> None:
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        write_purchases(home, [purchase(f"L{i}", *HN, day, "5.00") for i, day in enumerate(days)])
        with FactQuery(home, Scope.system("test")) as q:
            table = payables(q, dt.date(2031, 6, 30), rules={HN[1]: rule})
    got = {r["accepted_on"]: r["due_on"] for r in table.to_pylist()}
    assert got == {day: due_date(day, rule) for day in days}


@pytest.mark.parametrize("key", ["", "*"])
def test_default_key(settings: Any, key: str) -> None:
    home = _home(settings)
    write_purchases(home, [purchase("Z", *HN, dt.date(2026, 1, 15), "1.00")])
    with FactQuery(home, Scope.system("test")) as q:
        rows = _by_line(payables(q, dt.date(2026, 2, 1), rules={key: DaysAfterAcceptance(7)}))
    assert rows["Z"]["due_on"] == dt.date(2026, 1, 22)
    assert rows["Z"]["days_overdue"] == 10
