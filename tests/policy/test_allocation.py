"""Tests for department and time-slice targets (R-H3; XJ 五(四)); pure, no database."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jicai.policy.allocation import (
    DEFAULT_USAGE_BASIS,
    XJ_GRANULARITIES,
    DepartmentUsage,
    Granularity,
    SeasonalProfile,
    TimeSlice,
    UsageBasis,
    UsageLine,
    UseKind,
    allocate_targets,
    department_shares,
    reference_window,
    slice_targets,
    targets_by_department_and_slice,
    time_slices,
    usage_by_department,
)
from jicai.policy.money import ONE, ZERO

D = Decimal
DAY = dt.date

# --- usage basis, reference window, usage lines ---------------------------------------------------


def test_default_basis_counts_everything_over_twelve_months() -> None:
    assert UsageBasis(selected=True, non_selected=True, substitutes=True, reference_months=12) == DEFAULT_USAGE_BASIS
    assert XJ_GRANULARITIES == (Granularity.HALF_YEAR, Granularity.QUARTER, Granularity.MONTH)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"selected": False, "non_selected": False, "substitutes": False}, "at least one kind"),
        ({"reference_months": 0}, "must be positive"),
        ({"reference_months": True}, "must be an int"),
        ({"reference_months": D(12)}, "must be an int"),
    ],
)
def test_usage_basis_refusals(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        UsageBasis(**kwargs)  # type: ignore[arg-type]


def test_reference_window_is_the_twelve_months_before_the_period() -> None:
    assert reference_window(DAY(2025, 1, 1)) == (DAY(2024, 1, 1), DAY(2024, 12, 31))
    assert reference_window(DAY(2024, 7, 15)) == (DAY(2023, 7, 15), DAY(2024, 7, 14))
    # a day that does not exist in the earlier month is clipped to that month's last day
    assert reference_window(DAY(2024, 2, 29)) == (DAY(2023, 2, 28), DAY(2024, 2, 28))
    assert reference_window(DAY(2025, 3, 31), UsageBasis(reference_months=1)) == (DAY(2025, 2, 28), DAY(2025, 3, 30))
    assert reference_window(DAY(2025, 5, 1), UsageBasis(reference_months=6)) == (DAY(2024, 11, 1), DAY(2025, 4, 30))


def test_department_usage_counts_per_basis() -> None:
    use = DepartmentUsage(selected=D(10), non_selected=D(5), substitutes=D("2.5"))
    assert use.counted() == D("17.5")
    assert use.counted(UsageBasis(non_selected=False, substitutes=False)) == D(10)
    assert use.counted(UsageBasis(selected=False)) == D("7.5")
    assert use.counted(UsageBasis(selected=False, non_selected=False)) == D("2.5")
    assert DepartmentUsage().counted() == ZERO


@pytest.mark.parametrize("bad", [D(-1), D("NaN"), D("Infinity"), 3])
def test_department_usage_refuses_bad_values(bad: object) -> None:
    with pytest.raises(ValueError, match="finite non-negative Decimal"):
        DepartmentUsage(non_selected=bad)  # type: ignore[arg-type]


def test_usage_line_refusals() -> None:
    with pytest.raises(ValueError, match="department code"):
        UsageLine("", DAY(2024, 1, 1), D(1))
    with pytest.raises(ValueError, match="finite Decimal"):
        UsageLine("ICU", DAY(2024, 1, 1), 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite Decimal"):
        UsageLine("ICU", DAY(2024, 1, 1), D("Infinity"))
    with pytest.raises(ValueError, match="positive Decimal"):
        UsageLine("ICU", DAY(2024, 1, 1), D(1), conversion=ZERO)
    with pytest.raises(ValueError, match="positive Decimal"):
        UsageLine("ICU", DAY(2024, 1, 1), D(1), conversion=2)  # type: ignore[arg-type]


def test_usage_by_department_sums_inside_the_window_in_item_units() -> None:
    lines = [
        UsageLine("NEURO", DAY(2024, 1, 1), D(100)),
        UsageLine("NEURO", DAY(2024, 12, 31), D(10), UseKind.NON_SELECTED, conversion=D(2)),
        UsageLine("NEURO", DAY(2023, 12, 31), D(999)),  # before the window
        UsageLine("NEURO", DAY(2025, 1, 1), D(999)),  # after the window
        UsageLine("CARD", DAY(2024, 6, 1), D(30), UseKind.SUBSTITUTE, conversion=D("0.5")),
        UsageLine("CARD", DAY(2024, 6, 2), D(5)),
        UsageLine("CARD", DAY(2024, 6, 3), D(-8)),  # a return larger than the use: net floored at zero
        UsageLine("ENDO", DAY(2024, 3, 3), D(7)),
        UsageLine("ENDO", DAY(2024, 3, 4), D(-2)),  # a return
    ]
    usage = usage_by_department(lines, DAY(2024, 1, 1), DAY(2024, 12, 31))
    assert list(usage) == ["CARD", "ENDO", "NEURO"]
    assert usage["NEURO"] == DepartmentUsage(selected=D(100), non_selected=D(20))
    assert usage["CARD"] == DepartmentUsage(selected=ZERO, substitutes=D(15))
    assert usage["ENDO"] == DepartmentUsage(selected=D(5))
    assert usage_by_department([], DAY(2024, 1, 1), DAY(2024, 1, 1)) == {}
    with pytest.raises(ValueError, match="before window start"):
        usage_by_department(lines, DAY(2024, 1, 2), DAY(2024, 1, 1))


# --- department shares and targets ---------------------------------------------------------------


def test_department_shares() -> None:
    usage: dict[str, DepartmentUsage | Decimal | int] = {
        "NEURO": DepartmentUsage(selected=D(300), substitutes=D(100)),
        "CARD": D(400),
        "ENDO": 200,
    }
    assert department_shares(usage) == {"CARD": D("0.4"), "ENDO": D("0.2"), "NEURO": D("0.4")}
    # the basis applies to use given by kind; plain numbers are already counted use
    selected_only = UsageBasis(non_selected=False, substitutes=False)
    assert department_shares(usage, basis=selected_only) == {"CARD": D(4) / 9, "ENDO": D(2) / 9, "NEURO": D(1) / 3}
    assert department_shares({}) == {}
    assert department_shares({"b": 0, "a": ZERO}) == {"a": D("0.5"), "b": D("0.5")}
    assert list(department_shares({"z": 1, "a": 1})) == ["a", "z"]


def test_allocate_targets_worked_example() -> None:
    # agreed 1,000 tablets; use 500 / 300 / 150 / 50 over the reference window
    usage = {"NEURO": 500, "CARD": 300, "ENDO": 150, "GER": 50}
    assert allocate_targets(1000, usage) == {"CARD": D(300), "ENDO": D(150), "GER": D(50), "NEURO": D(500)}
    # 997: exact 498.5, 299.1, 149.55, 49.85 -> floors 498+299+149+49 = 995; 2 left: .85 (GER), .55 (ENDO)
    assert allocate_targets(997, usage) == {"CARD": D(299), "ENDO": D(150), "GER": D(50), "NEURO": D(498)}


def test_allocate_targets_ties_go_to_larger_use_then_department_code() -> None:
    # exact 0.5 / 1.5: equal remainders, the larger historical use wins although "A" sorts first
    assert allocate_targets(2, {"A": 1, "B": 3}) == {"A": D(0), "B": D(2)}
    # equal use: department code decides
    assert allocate_targets(1, {"B": 5, "A": 5}) == {"A": D(1), "B": D(0)}
    assert allocate_targets(5, {"C2": 1, "C1": 1, "C3": 1}) == {"C1": D(2), "C2": D(2), "C3": D(1)}


def test_allocate_targets_zero_use_gets_zero_unless_all_zero() -> None:
    assert allocate_targets(10, {"A": 0, "B": 3, "C": 0}) == {"A": D(0), "B": D(10), "C": D(0)}
    # no history anywhere: equal split, ties by department code
    assert allocate_targets(10, {"C": 0, "A": 0, "B": 0}) == {"A": D(4), "B": D(3), "C": D(3)}


def test_allocate_targets_uses_the_basis() -> None:
    usage = {"A": DepartmentUsage(selected=D(1), substitutes=D(3)), "B": DepartmentUsage(selected=D(3))}
    assert allocate_targets(7, usage) == {"A": D(4), "B": D(3)}
    assert allocate_targets(8, usage) == {"A": D(5), "B": D(3)}  # 4.57 / 3.43
    assert allocate_targets(8, usage, basis=UsageBasis(substitutes=False)) == {"A": D(2), "B": D(6)}


def test_allocate_targets_edges_and_refusals() -> None:
    assert allocate_targets(0, {}) == {}
    assert allocate_targets(D("0"), {"A": 1}) == {"A": D(0)}
    assert allocate_targets(D("12.000"), {"A": 1}) == {"A": D(12)}
    with pytest.raises(ValueError, match="no departments"):
        allocate_targets(1, {})
    for bad_qty in (D("10.5"), -1, D("NaN")):
        with pytest.raises(ValueError, match="whole non-negative number of units"):
            allocate_targets(bad_qty, {"A": 1})
    with pytest.raises(ValueError, match="finite non-negative number"):
        allocate_targets(1, {"A": -1})
    with pytest.raises(ValueError, match="finite non-negative number"):
        allocate_targets(1, {"A": D("Infinity")})
    with pytest.raises(ValueError, match="non-empty strings"):
        allocate_targets(1, {"": 1})
    with pytest.raises(ValueError, match="non-empty strings"):
        allocate_targets(1, {7: 1})  # type: ignore[dict-item]


_codes = st.text(alphabet="ABCDEFGH", min_size=1, max_size=3)
_use = st.one_of(
    st.integers(min_value=0, max_value=10**6),
    st.decimals(min_value=0, max_value=10**5, places=3, allow_nan=False, allow_infinity=False),
)
_usage = st.dictionaries(_codes, _use, min_size=1, max_size=10)


@given(agreed=st.integers(min_value=0, max_value=10**8), usage=_usage, data=st.data())
def test_allocate_targets_properties(agreed: int, usage: dict[str, Decimal | int], data: st.DataObject) -> None:
    targets = allocate_targets(agreed, usage)
    assert list(targets) == sorted(usage)
    assert sum(targets.values(), ZERO) == agreed
    total_use = sum((D(v) for v in usage.values()), ZERO)
    for dept, target in targets.items():
        assert target >= 0
        assert target == target.to_integral_value()
        exact = (
            Fraction(agreed) * Fraction(D(usage[dept])) / Fraction(total_use)
            if total_use
            else Fraction(agreed, len(usage))
        )
        assert abs(Fraction(target) - exact) < 1
        if total_use and usage[dept] == 0:
            assert target == 0
    shuffled = dict(data.draw(st.permutations(list(usage.items()))))
    assert allocate_targets(agreed, shuffled) == targets


# --- time slices ---------------------------------------------------------------------------------


def test_time_slices_months_with_a_mid_month_start() -> None:
    slices = time_slices(DAY(2024, 3, 15), DAY(2025, 3, 14), Granularity.MONTH)
    assert len(slices) == 13
    assert slices[0] == TimeSlice(DAY(2024, 3, 15), DAY(2024, 3, 31), "2024-03")
    assert slices[0].days == 17
    assert slices[1] == TimeSlice(DAY(2024, 4, 1), DAY(2024, 4, 30), "2024-04")
    assert slices[-1] == TimeSlice(DAY(2025, 3, 1), DAY(2025, 3, 14), "2025-03")
    assert sum(piece.days for piece in slices) == 365
    assert [piece.label for piece in slices][9:12] == ["2024-12", "2025-01", "2025-02"]


def test_time_slices_quarters_and_half_years_are_calendar_aligned() -> None:
    quarters = time_slices(DAY(2024, 5, 1), DAY(2025, 4, 30), Granularity.QUARTER)
    assert [(q.start, q.end, q.label) for q in quarters] == [
        (DAY(2024, 5, 1), DAY(2024, 6, 30), "2024-Q2"),
        (DAY(2024, 7, 1), DAY(2024, 9, 30), "2024-Q3"),
        (DAY(2024, 10, 1), DAY(2024, 12, 31), "2024-Q4"),
        (DAY(2025, 1, 1), DAY(2025, 3, 31), "2025-Q1"),
        (DAY(2025, 4, 1), DAY(2025, 4, 30), "2025-Q2"),
    ]
    halves = time_slices(DAY(2024, 1, 1), DAY(2024, 12, 31), "half_year")  # type: ignore[arg-type]
    assert [(h.start, h.end, h.label) for h in halves] == [
        (DAY(2024, 1, 1), DAY(2024, 6, 30), "2024-H1"),
        (DAY(2024, 7, 1), DAY(2024, 12, 31), "2024-H2"),
    ]
    assert time_slices(DAY(2024, 2, 29), DAY(2024, 2, 29), Granularity.HALF_YEAR) == (
        TimeSlice(DAY(2024, 2, 29), DAY(2024, 2, 29), "2024-H1"),
    )
    with pytest.raises(ValueError, match="before period start"):
        time_slices(DAY(2024, 2, 1), DAY(2024, 1, 31), Granularity.MONTH)
    with pytest.raises(ValueError, match="not a valid Granularity"):
        time_slices(DAY(2024, 1, 1), DAY(2024, 1, 31), "week")  # type: ignore[arg-type]


def test_slice_targets_by_days() -> None:
    # calendar 2025: quarters of 90, 91, 92, 92 days; 1,000 units -> 246.58, 249.32, 252.05, 252.05
    targets = slice_targets(1000, DAY(2025, 1, 1), DAY(2025, 12, 31), Granularity.QUARTER)
    assert [(piece.label, qty) for piece, qty in targets.items()] == [
        ("2025-Q1", D(247)),
        ("2025-Q2", D(249)),
        ("2025-Q3", D(252)),
        ("2025-Q4", D(252)),
    ]
    halves = slice_targets(365, DAY(2025, 1, 1), DAY(2025, 12, 31), Granularity.HALF_YEAR)
    assert list(halves.values()) == [D(181), D(184)]


def test_slice_targets_ties_go_to_larger_weight_then_earlier_slice() -> None:
    # 2025-04 (30 days) and 2025-05 (31 days): 61 days; 1 unit -> the 31-day month (larger weight)
    assert list(slice_targets(1, DAY(2025, 4, 1), DAY(2025, 5, 31), Granularity.MONTH).values()) == [D(0), D(1)]
    # equal weights: the earlier slice
    profile = SeasonalProfile((ONE,) * 12)
    assert list(
        slice_targets(1, DAY(2025, 1, 1), DAY(2025, 3, 31), Granularity.MONTH, seasonal_profile=profile).values()
    ) == [D(1), D(0), D(0)]


def test_slice_targets_with_a_seasonal_profile() -> None:
    # winter-heavy profile: Jan-Mar and Oct-Dec weigh 2, Apr-Sep weigh 1 -> H1 and H2 weigh 9 each
    profile = SeasonalProfile(tuple(D(w) for w in (2, 2, 2, 1, 1, 1, 1, 1, 1, 2, 2, 2)))
    by_quarter = slice_targets(900, DAY(2025, 1, 1), DAY(2025, 12, 31), Granularity.QUARTER, seasonal_profile=profile)
    assert list(by_quarter.values()) == [D(300), D(150), D(150), D(300)]
    # a period starting mid-January: January counts 2 × 17/31; the rest of Q1 counts 4
    partial = slice_targets(1000, DAY(2025, 1, 15), DAY(2025, 6, 30), Granularity.QUARTER, seasonal_profile=profile)
    q1 = Fraction(2) * 17 / 31 + 4
    exact_q1 = 1000 * q1 / (q1 + 3)
    assert list(partial.values()) == [D(round(exact_q1)), D(1000 - round(exact_q1))]
    assert list(partial.values()) == [D(629), D(371)]  # 629.48 / 370.52


def test_slice_targets_seasonal_profile_with_no_weight_in_the_period() -> None:
    summer_only = SeasonalProfile(tuple(D(w) for w in (0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0)))
    with pytest.raises(ValueError, match="no weight to any month"):
        slice_targets(10, DAY(2025, 1, 1), DAY(2025, 3, 31), Granularity.MONTH, seasonal_profile=summer_only)
    months = slice_targets(10, DAY(2025, 5, 1), DAY(2025, 9, 30), Granularity.MONTH, seasonal_profile=summer_only)
    assert list(months.values()) == [D(0), D(4), D(3), D(3), D(0)]


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ((ONE,) * 11, "needs 12 month weights"),
        ((ONE,) * 11 + (D(-1),), "finite non-negative"),
        ((ONE,) * 11 + (D("NaN"),), "finite non-negative"),
        ((ONE,) * 11 + (1,), "finite non-negative"),
        ((ZERO,) * 12, "at least one positive"),
    ],
)
def test_seasonal_profile_refusals(weights: tuple[Decimal, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SeasonalProfile(weights)


def test_slice_targets_refusals() -> None:
    with pytest.raises(ValueError, match="whole non-negative"):
        slice_targets(D("1.5"), DAY(2025, 1, 1), DAY(2025, 1, 31), Granularity.MONTH)


_start = st.dates(min_value=DAY(2020, 1, 1), max_value=DAY(2030, 12, 31))
_granularity = st.sampled_from(list(Granularity))
_profile = st.one_of(
    st.none(),
    st.lists(st.decimals(min_value=0, max_value=100, places=2), min_size=12, max_size=12)
    .filter(any)
    .map(lambda ws: SeasonalProfile(tuple(ws))),
)


def _slice_exact(piece: TimeSlice, profile: SeasonalProfile | None) -> Fraction:
    if profile is None:
        return Fraction(piece.days)
    weight = Fraction(0)
    day = piece.start
    while day <= piece.end:
        month_days = (DAY(day.year + day.month // 12, day.month % 12 + 1, 1) - DAY(day.year, day.month, 1)).days
        weight += Fraction(profile.month_weights[day.month - 1]) / month_days
        day += dt.timedelta(days=1)
    return weight


@given(
    target=st.integers(min_value=0, max_value=10**7),
    start=_start,
    length=st.integers(min_value=1, max_value=800),
    granularity=_granularity,
    profile=_profile,
)
def test_slice_targets_properties(
    target: int, start: dt.date, length: int, granularity: Granularity, profile: SeasonalProfile | None
) -> None:
    end = start + dt.timedelta(days=length - 1)
    weights = {piece: _slice_exact(piece, profile) for piece in time_slices(start, end, granularity)}
    total_weight = sum(weights.values(), Fraction(0))
    if total_weight == 0:
        with pytest.raises(ValueError, match="no weight"):
            slice_targets(target, start, end, granularity, seasonal_profile=profile)
        return
    targets = slice_targets(target, start, end, granularity, seasonal_profile=profile)
    assert list(targets) == list(weights)
    assert sum(targets.values(), ZERO) == target
    slices = list(targets)
    assert slices[0].start == start
    assert slices[-1].end == end
    assert all(a.end + dt.timedelta(days=1) == b.start for a, b in itertools.pairwise(slices))
    for piece, qty in targets.items():
        assert qty >= 0
        assert abs(Fraction(qty) - target * weights[piece] / total_weight) < 1


# --- department × slice table --------------------------------------------------------------------


def test_table_margins_exact_where_naive_rounding_breaks_columns() -> None:
    # three equal departments, three equal months: naive per-row rounding gives every department
    # (1, 0, 0) and the first month 3 units instead of 1
    usage = {"A": 1, "B": 1, "C": 1}
    table = targets_by_department_and_slice(3, usage, DAY(2025, 1, 1), DAY(2025, 3, 31), Granularity.MONTH)
    assert table.total == D(3)
    assert table.department_totals == {"A": D(1), "B": D(1), "C": D(1)}
    assert list(table.slice_totals.values()) == [D(1), D(1), D(1)]  # 31, 28, 31 days -> 1.03, 0.92, 1.03
    for dept in usage:
        assert sum(table.row(dept).values(), ZERO) == 1
    for piece in table.slices:
        assert sum(table.column(piece).values(), ZERO) == 1
    # each department gets exactly one month, earlier departments taking earlier months on ties
    jan, feb, mar = table.slices
    assert table.row("A") == {jan: D(1), feb: D(0), mar: D(0)}
    assert table.column(feb) == {"A": D(0), "B": D(1), "C": D(0)}
    assert table.row("C") == {jan: D(0), feb: D(0), mar: D(1)}


def test_table_worked_example() -> None:
    usage = {"NEURO": 500, "CARD": 300, "ENDO": 150, "GER": 50}
    table = targets_by_department_and_slice(997, usage, DAY(2025, 1, 1), DAY(2025, 12, 31), Granularity.QUARTER)
    assert table.department_totals == allocate_targets(997, usage)
    assert table.slice_totals == slice_targets(997, DAY(2025, 1, 1), DAY(2025, 12, 31), Granularity.QUARTER)
    assert [p.label for p in table.slices] == ["2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4"]
    assert [table.slice_totals[p] for p in table.slices] == [D(246), D(249), D(251), D(251)]
    # exact cells (row × column ÷ 997), e.g. NEURO 122.87, 124.37, 125.37, 125.37; GER 12.34, 12.49, 12.59, 12.59
    rows = {dept: [int(q) for q in table.row(dept).values()] for dept in table.department_totals}
    assert rows == {
        "CARD": [74, 75, 75, 75],
        "ENDO": [37, 37, 38, 38],
        "GER": [12, 12, 13, 13],
        "NEURO": [123, 125, 125, 125],
    }


def test_table_when_every_cell_is_exact() -> None:
    table = targets_by_department_and_slice(
        400, {"A": 1, "B": 3}, DAY(2025, 1, 1), DAY(2025, 12, 31), Granularity.HALF_YEAR,
        seasonal_profile=SeasonalProfile((ONE,) * 12),
    )  # fmt: skip
    assert [list(table.row(d).values()) for d in ("A", "B")] == [[D(50), D(50)], [D(150), D(150)]]


def test_table_zero_agreed_and_zero_use() -> None:
    table = targets_by_department_and_slice(0, {"A": 1, "B": 0}, DAY(2025, 1, 1), DAY(2025, 2, 28), Granularity.MONTH)
    assert set(table.cells.values()) == {D(0)}
    assert len(table.cells) == 4
    equal = targets_by_department_and_slice(
        5, {"B": 0, "A": 0}, DAY(2025, 1, 1), DAY(2025, 2, 28), Granularity.MONTH, basis=UsageBasis()
    )
    assert equal.department_totals == {"A": D(3), "B": D(2)}
    assert [equal.slice_totals[p] for p in equal.slices] == [D(3), D(2)]


def test_table_refusals() -> None:
    with pytest.raises(ValueError, match="whole non-negative"):
        targets_by_department_and_slice(D("2.5"), {"A": 1}, DAY(2025, 1, 1), DAY(2025, 1, 31), Granularity.MONTH)
    with pytest.raises(ValueError, match="no departments"):
        targets_by_department_and_slice(3, {}, DAY(2025, 1, 1), DAY(2025, 1, 31), Granularity.MONTH)


def _check_table(table_total: int, usage: dict[str, int], start: dt.date, end: dt.date, gran: Granularity) -> None:
    table = targets_by_department_and_slice(table_total, usage, start, end, gran)
    assert table.department_totals == allocate_targets(table_total, usage)
    assert table.slice_totals == slice_targets(table_total, start, end, gran)
    assert sum(table.department_totals.values(), ZERO) == table_total
    for dept, dept_total in table.department_totals.items():
        assert sum(table.row(dept).values(), ZERO) == dept_total
    for piece, piece_total in table.slice_totals.items():
        assert sum(table.column(piece).values(), ZERO) == piece_total
    for (dept, piece), qty in table.cells.items():
        assert qty >= 0
        exact = Fraction(int(table.department_totals[dept]) * int(table.slice_totals[piece]), max(table_total, 1))
        assert int(qty) in (exact.__floor__(), exact.__ceil__())


_small_usage = st.dictionaries(_codes, st.integers(min_value=0, max_value=10**5), min_size=1, max_size=8)


@settings(max_examples=150)
@given(
    agreed=st.integers(min_value=0, max_value=10**6),
    usage=_small_usage,
    start=_start,
    length=st.integers(min_value=1, max_value=730),
    granularity=_granularity,
    data=st.data(),
)
def test_table_properties(
    agreed: int, usage: dict[str, int], start: dt.date, length: int, granularity: Granularity, data: st.DataObject
) -> None:
    end = start + dt.timedelta(days=length - 1)
    _check_table(agreed, usage, start, end, granularity)
    table = targets_by_department_and_slice(agreed, usage, start, end, granularity)
    shuffled = dict(data.draw(st.permutations(list(usage.items()))))
    again = targets_by_department_and_slice(agreed, shuffled, start, end, granularity)
    assert again == table
    assert list(again.department_totals) == list(table.department_totals)


def _l1_error(grid: dict[tuple[int, int], int], exact: dict[tuple[int, int], Fraction]) -> Fraction:
    return sum((abs(grid[cell] - exact[cell]) for cell in grid), Fraction(0))


@settings(max_examples=80, deadline=None)
@given(
    agreed=st.integers(min_value=1, max_value=60),
    usage=st.lists(st.integers(min_value=0, max_value=9), min_size=2, max_size=3),
    months=st.integers(min_value=2, max_value=4),
)
def test_table_is_the_closest_controlled_rounding(agreed: int, usage: list[int], months: int) -> None:
    """Brute force on small tables: no floor/ceiling rounding with the same margins is closer in total error."""
    codes = {f"D{i}": use for i, use in enumerate(usage)}
    start = DAY(2025, 1, 1)
    end = DAY(2025, 1 + months, 1) - dt.timedelta(days=1)
    table = targets_by_department_and_slice(agreed, codes, start, end, Granularity.MONTH)
    rows = [int(table.department_totals[d]) for d in codes]
    cols = [int(table.slice_totals[p]) for p in table.slices]
    exact = {(i, j): Fraction(r * c, agreed) for i, r in enumerate(rows) for j, c in enumerate(cols)}
    ours = {(i, j): int(table.cells[(d, p)]) for i, d in enumerate(codes) for j, p in enumerate(table.slices)}
    fractional = [cell for cell, value in exact.items() if value.denominator != 1]
    best = None
    for ups in itertools.product((0, 1), repeat=len(fractional)):
        grid = {cell: value.__floor__() for cell, value in exact.items()}
        for cell, up in zip(fractional, ups, strict=True):
            grid[cell] += up
        if any(sum(grid[(i, j)] for j in range(len(cols))) != r for i, r in enumerate(rows)):
            continue
        if any(sum(grid[(i, j)] for i in range(len(rows))) != c for j, c in enumerate(cols)):
            continue
        error = _l1_error(grid, exact)
        best = error if best is None else min(best, error)
    assert best is not None
    assert _l1_error(ours, exact) == best
