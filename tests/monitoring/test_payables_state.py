"""Incremental overdue payables (R-E1): after appended facts the state gives exactly ``overdue_totals``."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from jicai.core.tenancy import Level, Scope, ScopeError
from jicai.facts import store
from jicai.facts.query import FactQuery
from jicai.facts.schemas import PAYMENTS, PURCHASES
from jicai.monitoring import payables_state
from jicai.monitoring.payables import OVERDUE_SCHEMA, overdue_totals
from jicai.monitoring.payables_state import CURRENT, overdue_totals_incremental
from jicai.policy.payment_terms import DaysAfterAcceptance, EndOfNextMonth, PaymentRule

D = dt.date
HN, HN2, HENAN = "H46010800001", "H46020000002", "H41010500009"
REGION = {HN: "460108", HN2: "460200", HENAN: "410105"}
RULES: dict[str, PaymentRule] = {"": EndOfNextMonth(), "410000": DaysAfterAcceptance(30)}


def _line(
    line_id: str | None, inst: str, accepted: dt.date | None, amount: str | None, qty: str = "1", month: str = ""
) -> dict[str, Any]:
    """A purchase row; without ``amount`` the line is worth qty × 1.2345 rounded (the SQL's fallback)."""
    return {
        "line_id": line_id,
        "institution_code": inst,
        "region_code": REGION[inst],
        "product_code": "P1",
        "ordered_on": None,
        "delivered_on": None,
        "accepted_on": accepted,
        "qty": Decimal(qty),
        "unit_price": Decimal("1.2345"),
        "amount": None if amount is None else Decimal(amount),
        "distributor": "D1",
        "import_id": 1,
        "month": month or (accepted or D(2000, 1, 1)).strftime("%Y-%m"),
    }


def _pay(payment_id: str, line_id: str | None, inst: str, paid_on: dt.date, amount: str) -> dict[str, Any]:
    return {
        "payment_id": payment_id,
        "line_id": line_id,
        "institution_code": inst,
        "region_code": REGION[inst],
        "paid_on": paid_on,
        "amount": Decimal(amount),
        "import_id": 1,
        "month": paid_on.strftime("%Y-%m"),
    }


def _append(home: Path, lines: list[dict[str, Any]], pays: list[dict[str, Any]]) -> None:
    if lines:
        store.append(home, PURCHASES, pa.Table.from_pylist(lines, schema=PURCHASES.schema))
    if pays:
        store.append(home, PAYMENTS, pa.Table.from_pylist(pays, schema=PAYMENTS.schema))


def _both(
    home: Path, as_of: dt.date, rules: Mapping[str, PaymentRule] = RULES
) -> tuple[pa.Table, pa.Table, dict[str, Any]]:
    """(incremental table, ``overdue_totals`` table, info) on one snapshot."""
    with FactQuery(home, Scope.system("test")) as q:
        got, info = overdue_totals_incremental(q, as_of, rules=rules, state_dir=home / "state")
        want = overdue_totals(q, as_of, rules=rules)
    return got, want, info


def _rows(table: pa.Table) -> dict[str, tuple[Any, ...]]:
    return {r["institution_code"]: tuple(r.values())[1:] for r in table.to_pylist()}


def _exact(home: Path, as_of: dt.date, rules: Mapping[str, PaymentRule] = RULES) -> dict[str, Any]:
    got, want, info = _both(home, as_of, rules)
    assert got.schema == OVERDUE_SCHEMA
    assert got.equals(want), (info, got.to_pylist(), want.to_pylist())
    return info


def test_three_appended_batches_by_hand(settings: Any) -> None:
    home = Path(settings.JICAI_HOME)
    # Given January and February lines: A1 paid in full, A2 half-paid, B1 paid after as-of, and a
    # payment whose line (X9) is not imported yet
    _append(
        home,
        [
            _line("A1", HN, D(2026, 1, 10), "100.00"),
            _line("A2", HN, D(2026, 1, 20), "200.00"),
            _line("B1", HN2, D(2026, 2, 5), "50.00"),
        ],
        [
            _pay("P1", "A1", HN, D(2026, 1, 25), "100.00"),
            _pay("P2", "A2", HN, D(2026, 2, 10), "50.00"),
            _pay("P3", "X9", HN, D(2026, 2, 1), "30.00"),
            _pay("P4", "B1", HN2, D(2026, 3, 10), "50.00"),
        ],
    )
    # When computed on 2026-02-15 (nothing due before 2026-02-28)
    info = _exact(home, D(2026, 2, 15))
    got, _, _ = _both(home, D(2026, 2, 15))
    # Then it is a full build; A1 is closed, A2 (150), B1 (50) and the held payments are kept
    assert info["mode"] == "full"
    assert _rows(got) == {
        HN: ("460108", 2, 0, Decimal("150.00"), Decimal("0.00"), 0),
        HN2: ("460200", 1, 0, Decimal("50.00"), Decimal("0.00"), 0),
    }
    # Given X9 arrives (its earlier payment settles it), C1 is new, A1 gets a refund of 40, A2 100 more
    _append(
        home,
        [_line("X9", HN, D(2026, 2, 20), "30.00"), _line("C1", HN, D(2026, 3, 1), "80.00")],
        [_pay("P5", "A1", HN, D(2026, 3, 2), "-40.00"), _pay("P6", "A2", HN, D(2026, 3, 5), "100.00")],
    )
    # When computed on 2026-03-15
    info = _exact(home, D(2026, 3, 15))
    got, _, _ = _both(home, D(2026, 3, 15))
    # Then incrementally: A1 reopened (40 overdue), A2 50 overdue, 15 days after 2026-02-28; B1 paid
    assert info["mode"] == "incremental"
    assert _rows(got) == {
        HN: ("460108", 4, 2, Decimal("170.00"), Decimal("90.00"), 15),
        HN2: ("460200", 1, 0, Decimal("0.00"), Decimal("0.00"), 0),
    }
    # Given April: D1 never paid, C1 paid, A2 overpaid, and a payment for a line that never comes
    _append(
        home,
        [_line("D1", HN2, D(2026, 4, 1), "70.00")],
        [
            _pay("P7", "C1", HN, D(2026, 4, 10), "80.00"),
            _pay("P8", "A2", HN, D(2026, 4, 20), "60.00"),
            _pay("P9", "ZZ", HN, D(2026, 4, 1), "5.00"),
        ],
    )
    # When computed on 2026-04-30
    info = _exact(home, D(2026, 4, 30))
    got, _, _ = _both(home, D(2026, 4, 30))
    # Then only A1's refunded 40 is overdue, 61 days after 2026-02-28
    assert info["mode"] == "incremental"
    assert [r["institution_code"] for r in got.to_pylist()] == [HN, HN2]
    assert _rows(got) == {
        HN: ("460108", 4, 1, Decimal("40.00"), Decimal("40.00"), 61),
        HN2: ("460200", 2, 0, Decimal("70.00"), Decimal("0.00"), 0),
    }
    # And open rows are what can still change: A1 and D1 (the orphan payment is held)
    assert info["open_lines"] == 2
    assert info["held_payments"] == 1


def test_refund_on_a_closed_line_reopens_it(settings: Any) -> None:
    home = Path(settings.JICAI_HOME)
    # Given a line paid in full in two parts, so the state forgets its payments
    _append(
        home,
        [_line("A1", HENAN, D(2026, 1, 10), "100.00"), _line("A2", HENAN, D(2026, 1, 10), "10.00")],
        [_pay("P1", "A1", HENAN, D(2026, 1, 12), "60.00"), _pay("P2", "A1", HENAN, D(2026, 1, 15), "40.00")],
    )
    assert _exact(home, D(2026, 1, 31))["open_lines"] == 1
    # When a refund of 70 and a later top-up of 5 arrive, and a repeated line id for A1 is appended
    _append(
        home,
        [_line("A1", HENAN, D(2026, 2, 1), "20.00")],
        [_pay("P3", "A1", HENAN, D(2026, 2, 20), "-70.00"), _pay("P4", "A1", HENAN, D(2026, 4, 1), "5.00")],
    )
    info = _exact(home, D(2026, 3, 1))
    # Then the line is recomputed from all its rows and payments, incrementally; 30-day rule (Henan)
    assert info["mode"] == "incremental"
    assert info["recomputed_lines"] == 1
    assert _exact(home, D(2026, 4, 2))["mode"] == "incremental"


def test_payment_dropped_on_a_settled_line_counts_after_a_refund(settings: Any) -> None:
    home = Path(settings.JICAI_HOME)
    # Given a line settled in January
    _append(home, [_line("A1", HN, D(2026, 1, 10), "100.00")], [_pay("P1", "A1", HN, D(2026, 1, 20), "100.00")])
    assert _exact(home, D(2026, 1, 31))["open_lines"] == 0
    # When 30.00 more is paid (the state keeps no row for a settled line: the payment is not kept)
    _append(home, [], [_pay("P2", "A1", HN, D(2026, 2, 5), "30.00")])
    info = _exact(home, D(2026, 2, 28))
    assert (info["mode"], info["closed_lines_paid"], info["held_payments"]) == ("incremental", 1, 0)
    # And then 120.00 is refunded
    _append(home, [], [_pay("P3", "A1", HN, D(2026, 3, 3), "-120.00")])
    info = _exact(home, D(2026, 3, 31))
    got, _, _ = _both(home, D(2026, 3, 31))
    # Then the line is recomputed from all its payments: 100 + 30 - 120 = 10 paid, 90 overdue 31 days
    assert (info["mode"], info["recomputed_lines"]) == ("incremental", 1)
    assert _rows(got) == {HN: ("460108", 1, 1, Decimal("90.00"), Decimal("90.00"), 31)}


def test_imports_of_new_lines_stay_incremental(settings: Any) -> None:
    home = Path(settings.JICAI_HOME)
    # Given facts imported the way the import engine does it (a MERGE on the natural key)
    store.upsert(
        home, PURCHASES, pa.Table.from_pylist([_line("A1", HN, D(2026, 1, 10), "100.00")], schema=PURCHASES.schema)
    )
    store.upsert(
        home, PAYMENTS, pa.Table.from_pylist([_pay("P1", "A1", HN, D(2026, 1, 11), "40.00")], schema=PAYMENTS.schema)
    )
    assert _exact(home, D(2026, 1, 31))["mode"] == "full"
    # When a new line and a new payment are imported, and then the same line again
    store.upsert(
        home, PURCHASES, pa.Table.from_pylist([_line("A2", HN, D(2026, 2, 10), "70.00")], schema=PURCHASES.schema)
    )
    store.upsert(
        home, PAYMENTS, pa.Table.from_pylist([_pay("P2", "A1", HN, D(2026, 2, 11), "60.00")], schema=PAYMENTS.schema)
    )
    first = _exact(home, D(2026, 2, 28))
    store.upsert(
        home, PURCHASES, pa.Table.from_pylist([_line("A2", HN, D(2026, 2, 10), "70.00")], schema=PURCHASES.schema)
    )
    second = _exact(home, D(2026, 2, 28))
    # Then new keys only add files (incremental), and an unchanged re-import adds nothing
    assert first["mode"] == "incremental"
    assert (second["mode"], second["reason"]) == ("incremental", "no new facts, same as-of")


def test_interrupted_run_leaves_the_previous_state(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    home = Path(settings.JICAI_HOME)
    _append(home, [_line("A1", HN, D(2026, 1, 10), "100.00")], [_pay("P1", "A1", HN, D(2026, 3, 5), "100.00")])
    assert _exact(home, D(2026, 1, 31))["mode"] == "full"
    before = (home / "state" / CURRENT).read_text()
    # Given a run that computes a new state but fails before putting it in force
    _append(home, [_line("B1", HN2, D(2026, 2, 3), "40.00")], [_pay("P2", "B1", HN2, D(2026, 2, 4), "10.00")])

    def crash(*_args: Any) -> None:
        raise RuntimeError("killed")

    monkeypatch.setattr(payables_state, "_publish", crash)
    with FactQuery(home, Scope.system("test")) as q, pytest.raises(RuntimeError):
        overdue_totals_incremental(q, D(2026, 2, 28), rules=RULES, state_dir=home / "state")
    assert (home / "state" / CURRENT).read_text() == before
    monkeypatch.undo()
    # When more facts arrive and the next run starts from the state in force
    _append(home, [_line("C1", HN, D(2026, 3, 1), "30.00")], [_pay("P3", "B1", HN2, D(2026, 3, 2), "30.00")])
    info = _exact(home, D(2026, 3, 31))
    # Then it is incremental from that state and exact; the abandoned files are cleaned up
    assert info["mode"] == "incremental"
    state = payables_state.load_state(home / "state")
    assert state is not None
    assert {p.name for p in (home / "state" / payables_state.DATA).iterdir()} == state.referenced()


def test_unreadable_state_is_rebuilt(settings: Any) -> None:
    home = Path(settings.JICAI_HOME)
    _append(home, [_line("A1", HN, D(2026, 1, 10), "100.00")], [])
    _exact(home, D(2026, 1, 31))
    (home / "state" / CURRENT).write_text("{not json")
    assert _exact(home, D(2026, 3, 31))["mode"] == "full"
    assert _exact(home, D(2026, 3, 31))["reason"] == "no new facts, same as-of"


def test_rules_change_rebuilds(settings: Any) -> None:
    home = Path(settings.JICAI_HOME)
    _append(home, [_line("A1", HENAN, D(2026, 1, 10), "100.00")], [])
    _exact(home, D(2026, 3, 1))
    info = _exact(home, D(2026, 3, 1), {"": EndOfNextMonth()})
    assert (info["mode"], info["reason"]) == ("full", "payment rules changed")


def test_scoped_queries_are_refused_and_file_views_are_scoped(settings: Any) -> None:
    home = Path(settings.JICAI_HOME)
    _append(home, [_line("A1", HN, D(2026, 1, 10), "1.00"), _line("B1", HENAN, D(2026, 1, 10), "1.00")], [])
    region = Scope(level=Level.REGION, region_code="460000", actor_name="t")
    with FactQuery(home, region) as q:
        with pytest.raises(ScopeError):
            overdue_totals_incremental(q, D(2026, 1, 31), rules=RULES, state_dir=home / "state")
        files = store.snapshot_files(home, PURCHASES)[1]
        q.files_view("some_files", "purchases", files)
        assert q.rows("SELECT line_id FROM some_files") == [{"line_id": "A1"}]
        with pytest.raises(ValueError, match="bad view name"):
            q.files_view("purchases", "purchases", files)


# --- property: any batches, any as-of sequence, corrections ----------------------------------------

DAY0 = D(2026, 1, 1)
INSTS = (HN, HN2, HENAN)
_cents = st.integers(min_value=-8_000, max_value=60_000)


@st.composite
def _histories(draw: st.DrawFn) -> dict[str, Any]:
    batches = draw(st.integers(min_value=2, max_value=4))
    # line ids repeat on purpose (a line id appended twice is two rows for overdue_totals, too)
    lines = draw(
        st.lists(
            st.tuples(
                st.sampled_from([0, 1, 2, 3, 4, 5, 8]),  # line id (8: none)
                st.sampled_from(INSTS),
                st.one_of(st.none(), st.integers(0, 70)),  # acceptance day, or never accepted
                st.one_of(st.none(), st.integers(0, 50_000)),  # amount in cents, or qty × price
                st.integers(0, batches - 1),
                st.sampled_from(["", "", "", "2025-07"]),  # partition month: acceptance month, or another
            ),
            min_size=2,
            max_size=10,
        )
    )
    pays = draw(
        st.lists(
            st.tuples(
                st.sampled_from([0, 1, 2, 3, 4, 5, 8, 9]),  # line id: 9 never gets a purchase row, 8: none
                st.integers(0, 110),
                st.one_of(_cents, st.sampled_from([0, -5_000, 100_000, -100_000])),  # 1,000.00 settles any line
                st.integers(0, batches - 1),
            ),
            min_size=3,
            max_size=14,
        )
    )
    steps = draw(st.lists(st.integers(-25, 60), min_size=batches, max_size=batches))
    corrections = draw(st.lists(st.sampled_from(["", "", "", "line", "payment"]), min_size=batches, max_size=batches))
    return {"batches": batches, "lines": lines, "pays": pays, "steps": steps, "corrections": corrections}


def _line_id(n: int) -> str | None:
    return None if n == 8 else f"L{n}"


def _money(cents: int) -> str:
    return str(Decimal(cents).scaleb(-2))


def _run_history(home: Path, history: dict[str, Any]) -> None:
    inst_of: dict[str, str] = {}
    as_of = DAY0 + dt.timedelta(days=30)
    previous: dt.date | None = None
    written_lines: list[dict[str, Any]] = []
    written_pays: list[dict[str, Any]] = []
    for batch in range(history["batches"]):
        lines = []
        for n, (lid, drawn, day, cents, b, month) in enumerate(history["lines"]):
            if b == batch:
                inst = inst_of.setdefault(f"L{lid}", drawn)  # a line id keeps its institution
                accepted = None if day is None else DAY0 + dt.timedelta(days=day)
                amount = None if cents is None else _money(cents)
                lines.append(_line(_line_id(lid), inst, accepted, amount, qty=str(n + 1), month=month))
        pays = []
        for n, (lid, day, cents, b) in enumerate(history["pays"]):
            if b == batch:
                inst = inst_of.get(f"L{lid}", HN)
                pays.append(_pay(f"Y{n}", _line_id(lid), inst, DAY0 + dt.timedelta(days=day), _money(cents)))
        # payment ids are unique; a repeated line id within one batch goes in as separate rows
        _append(home, lines, pays)
        written_lines += lines
        written_pays += pays
        correction = history["corrections"][batch]
        corrected = False
        if correction == "line" and written_lines:
            row = dict(written_lines[0], amount=Decimal("12.34"))
            store.upsert(home, PURCHASES, pa.Table.from_pylist([row], schema=PURCHASES.schema))
            corrected = True
        elif correction == "payment" and written_pays:
            row = dict(written_pays[0], amount=Decimal("-1.00"))
            store.upsert(home, PAYMENTS, pa.Table.from_pylist([row], schema=PAYMENTS.schema))
            corrected = True
        as_of = as_of + dt.timedelta(days=history["steps"][batch])
        if not (lines or pays or corrected) and previous is None:
            continue
        info = _exact(home, as_of)
        if previous is None or as_of < previous:
            assert info["mode"] == "full"
        elif not corrected:
            assert info["mode"] == "incremental", info
        previous = as_of
        # a rerun on the same snapshot and as-of changes nothing
        if batch % 2:
            assert _exact(home, as_of)["reason"] == "no new facts, same as-of"


@hsettings(
    max_examples=int(os.environ.get("JICAI_PAYABLES_EXAMPLES", "30")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=_histories())
def test_incremental_equals_full_for_any_history(history: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _run_history(Path(tmp), history)


@hsettings(
    max_examples=int(os.environ.get("JICAI_PAYABLES_EXAMPLES", "30")) * 2 // 5,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=_histories())
def test_incremental_equals_full_when_each_month_range_is_checked(history: dict[str, Any]) -> None:
    few = payables_state._FEW_MONTHS
    payables_state._FEW_MONTHS = 0  # always check the months' line-id ranges one by one
    try:
        with tempfile.TemporaryDirectory() as tmp:
            _run_history(Path(tmp), history)
    finally:
        payables_state._FEW_MONTHS = few
