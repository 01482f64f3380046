"""Department and time-slice targets for an agreed volume (R-H3; XJ 五(四); semantics.md "Department targets").

XJ 五(四) asks each hospital to split every selected product's agreed volume across its clinical
departments "in proportion to their historical use", and to break the task down by half-year, quarter
or month. This module does both, in whole item units, with the largest-remainder method so that the
parts always add up exactly:

* ``department_shares`` / ``allocate_targets``: a department's weight is its use of the item over a
  reference window (default: the 12 months before the agreement year), counting selected,
  non-selected and substitute products in item units (semantics.md). Targets are whole units summing
  to the agreed quantity; ties go to the larger historical use, then the department code. Departments
  with zero use get zero, unless *every* department has zero use: then the quantity is split equally
  (ties by department code), because there is no history to follow and the task must still be
  assigned.
* ``slice_targets``: a target split over calendar slices (自然月 / 季度 / 半年) clipped to the
  agreement period, in proportion to each slice's days, or to a seasonal profile (one weight per
  calendar month; a partly covered month counts its weight × covered days ÷ days in the month).
  Ties go to the larger weight, then the earlier slice.
* ``targets_by_department_and_slice``: the department × slice table. Both margins are fixed first —
  department totals by ``allocate_targets``, slice totals by ``slice_targets`` on the agreed
  quantity — and the cells are then rounded *two ways* (controlled rounding): every cell is the floor
  or the ceiling of its exact value ``department total × slice total ÷ agreed quantity``, and every
  row and column adds up exactly. Such a rounding always exists (the fractional parts form a
  feasible flow in a transportation network with integer margins, which has an integral solution);
  it is found as a min-cost flow that rounds up the cells with the largest fractional parts (the
  rounding closest to the exact table in total absolute error), ties going to the department with
  the larger historical use, then the department code, then the earlier slice.
"""

from __future__ import annotations

import calendar
import datetime as dt
import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from math import lcm

from jicai.policy.money import ONE, ZERO, largest_remainder, to_decimal

# --------------------------------------------------------------------------------------------------
# Historical use


class UseKind(StrEnum):
    """Kind of product a historical use line is for (semantics.md "Department targets")."""

    SELECTED = "selected"
    NON_SELECTED = "non_selected"
    SUBSTITUTE = "substitute"


@dataclass(frozen=True, slots=True)
class UsageBasis:
    """Which historical use counts toward a department's share, and over how long a window (R-H3).

    Defaults follow semantics.md "Department targets": selected + non-selected + substitutes, over
    the 12 months before the agreement year. A region may narrow the basis (e.g. selected only).
    """

    selected: bool = True
    non_selected: bool = True
    substitutes: bool = True
    reference_months: int = 12

    def __post_init__(self) -> None:
        if not (self.selected or self.non_selected or self.substitutes):
            raise ValueError("the usage basis must count at least one kind of product")
        if isinstance(self.reference_months, bool) or not isinstance(self.reference_months, int):
            raise ValueError(f"reference_months must be an int, got {self.reference_months!r}")
        if self.reference_months <= 0:
            raise ValueError(f"reference_months must be positive, got {self.reference_months}")


DEFAULT_USAGE_BASIS = UsageBasis()
"""semantics.md "Department targets" (XJ 五(四) "既往科室对相关药品的历史使用量"): all three kinds, 12 months."""


@dataclass(frozen=True, slots=True)
class DepartmentUsage:
    """One department's historical use of an item, in item units, by kind of product (R-H3)."""

    selected: Decimal = ZERO
    non_selected: Decimal = ZERO
    substitutes: Decimal = ZERO

    def __post_init__(self) -> None:
        for name in ("selected", "non_selected", "substitutes"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
                raise ValueError(f"department usage {name} must be a finite non-negative Decimal, got {value!r}")

    def counted(self, basis: UsageBasis = DEFAULT_USAGE_BASIS) -> Decimal:
        """Use that counts toward the department's share under ``basis``."""
        total = ZERO
        if basis.selected:
            total += self.selected
        if basis.non_selected:
            total += self.non_selected
        if basis.substitutes:
            total += self.substitutes
        return total


@dataclass(frozen=True, slots=True)
class UsageLine:
    """A dispensing (or purchase) line of historical use: ``qty × conversion`` item units on ``used_on``.

    ``qty`` may be negative for a return (退药); a department's net use of each kind is floored at zero.
    """

    department: str
    used_on: dt.date
    qty: Decimal
    kind: UseKind = UseKind.SELECTED
    conversion: Decimal = ONE

    def __post_init__(self) -> None:
        if not self.department:
            raise ValueError("a usage line needs a department code")
        if not isinstance(self.qty, Decimal) or not self.qty.is_finite():
            raise ValueError(f"usage qty must be a finite Decimal, got {self.qty!r}")
        if not isinstance(self.conversion, Decimal) or not self.conversion.is_finite() or self.conversion <= 0:
            raise ValueError(f"conversion must be a positive Decimal, got {self.conversion!r}")


Usage = DepartmentUsage | Decimal | int
"""A department's historical use: by kind (``DepartmentUsage``) or already summed in item units."""


def _add_months(day: dt.date, months: int) -> dt.date:
    month_index = day.year * 12 + day.month - 1 + months
    year, month = divmod(month_index, 12)
    month += 1
    last = calendar.monthrange(year, month)[1]
    return dt.date(year, month, min(day.day, last))


def reference_window(period_start: dt.date, basis: UsageBasis = DEFAULT_USAGE_BASIS) -> tuple[dt.date, dt.date]:
    """The window whose use sets department shares: the ``reference_months`` before the period (R-H3).

    Runs from the same day ``reference_months`` earlier (clipped to that month's last day) to the day
    before ``period_start``, both inclusive.
    """
    return _add_months(period_start, -basis.reference_months), period_start - dt.timedelta(days=1)


def usage_by_department(
    lines: Iterable[UsageLine], window_start: dt.date, window_end: dt.date
) -> dict[str, DepartmentUsage]:
    """Sum use lines inside the window (both ends inclusive) per department and kind, in item units (R-H3).

    Returns departments sorted by code; a department's net use of a kind below zero (more returns than
    dispensing inside the window) counts as zero.
    """
    if window_end < window_start:
        raise ValueError(f"window end {window_end} is before window start {window_start}")
    sums: dict[str, dict[UseKind, Decimal]] = {}
    for line in lines:
        if window_start <= line.used_on <= window_end:
            per_kind = sums.setdefault(line.department, dict.fromkeys(UseKind, ZERO))
            per_kind[line.kind] += line.qty * line.conversion
    return {
        dept: DepartmentUsage(
            selected=max(per_kind[UseKind.SELECTED], ZERO),
            non_selected=max(per_kind[UseKind.NON_SELECTED], ZERO),
            substitutes=max(per_kind[UseKind.SUBSTITUTE], ZERO),
        )
        for dept, per_kind in sorted(sums.items())
    }


def _use_weights(usage_by_department: Mapping[str, Usage], basis: UsageBasis) -> dict[str, Decimal]:
    weights: dict[str, Decimal] = {}
    for dept in sorted(usage_by_department):
        if not isinstance(dept, str) or not dept:
            raise ValueError(f"department codes must be non-empty strings, got {dept!r}")
        value = usage_by_department[dept]
        if isinstance(value, DepartmentUsage):
            weight = value.counted(basis)
        else:
            weight = to_decimal(value)
            if not weight.is_finite() or weight < 0:
                raise ValueError(f"use of department {dept} must be a finite non-negative number, got {value!r}")
        weights[dept] = weight
    return weights


def department_shares(
    usage_by_department: Mapping[str, Usage], *, basis: UsageBasis = DEFAULT_USAGE_BASIS
) -> dict[str, Decimal]:
    """Each department's share of the institution's historical use of the item (R-H3).

    Shares are quotients at Decimal context precision, for display; ``allocate_targets`` works from
    the use itself so no rounded share enters a target. With no use anywhere the shares are equal.
    Returned sorted by department code.
    """
    weights = _use_weights(usage_by_department, basis)
    if not weights:
        return {}
    total = sum(weights.values(), ZERO)
    if total == 0:
        return {dept: ONE / Decimal(len(weights)) for dept in weights}
    return {dept: weight / total for dept, weight in weights.items()}


def _whole(qty: Decimal | int, what: str) -> Decimal:
    value = to_decimal(qty)
    if not value.is_finite() or value < 0 or value != value.to_integral_value():
        raise ValueError(f"{what} must be a whole non-negative number of units, got {qty!r}")
    return value


def _ranked_departments(weights: Mapping[str, Decimal]) -> list[str]:
    """Departments by larger historical use first, then by code: the tie-break order of R-H3."""
    return sorted(weights, key=lambda dept: (-weights[dept], dept))


def allocate_targets(
    agreed_qty: Decimal | int,
    usage_by_department: Mapping[str, Usage],
    *,
    basis: UsageBasis = DEFAULT_USAGE_BASIS,
) -> dict[str, Decimal]:
    """Whole-unit department targets summing exactly to ``agreed_qty`` (R-H3; XJ 五(四)).

    Largest remainder over historical use; ties go to the larger use, then the department code.
    Zero use gets zero unless all use is zero (then an equal split). Returned sorted by department code.
    """
    total = _whole(agreed_qty, "agreed quantity")
    weights = _use_weights(usage_by_department, basis)
    if not weights and total > 0:
        raise ValueError("cannot allocate a positive agreed quantity to no departments")
    targets = largest_remainder(total, weights, tie_break=sorted(weights))
    return {dept: targets[dept] for dept in sorted(targets)}


# --------------------------------------------------------------------------------------------------
# Time slices


class Granularity(StrEnum):
    """Calendar slice length for target decomposition (XJ 五(四): 每半年、每季度或每月)."""

    MONTH = "month"
    QUARTER = "quarter"
    HALF_YEAR = "half_year"


XJ_GRANULARITIES = (Granularity.HALF_YEAR, Granularity.QUARTER, Granularity.MONTH)
"""XJ 五(四): targets "可以分解到每半年、每季度或每月"."""

_MONTHS_PER_SLICE = {Granularity.MONTH: 1, Granularity.QUARTER: 3, Granularity.HALF_YEAR: 6}


@dataclass(frozen=True, slots=True, order=True)
class TimeSlice:
    """A calendar slice clipped to the agreement period, both ends inclusive."""

    start: dt.date
    end: dt.date
    label: str = field(compare=False)

    @property
    def days(self) -> int:
        """Number of days in the slice."""
        return (self.end - self.start).days + 1


@dataclass(frozen=True, slots=True)
class SeasonalProfile:
    """Relative weight of each calendar month, January first (R-H3 "or a seasonal profile").

    Weights are relative (they need not sum to 1); a partly covered month counts its weight × covered
    days ÷ days in the month.
    """

    month_weights: tuple[Decimal, ...]

    def __post_init__(self) -> None:
        if len(self.month_weights) != 12:
            raise ValueError(f"a seasonal profile needs 12 month weights, got {len(self.month_weights)}")
        for weight in self.month_weights:
            if not isinstance(weight, Decimal) or not weight.is_finite() or weight < 0:
                raise ValueError(f"seasonal month weights must be finite non-negative Decimals, got {weight!r}")
        if not any(self.month_weights):
            raise ValueError("a seasonal profile needs at least one positive month weight")


def _slice_label(start: dt.date, granularity: Granularity) -> str:
    if granularity is Granularity.MONTH:
        return f"{start.year}-{start.month:02d}"
    if granularity is Granularity.QUARTER:
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    return f"{start.year}-H{(start.month - 1) // 6 + 1}"


def time_slices(period_start: dt.date, period_end: dt.date, granularity: Granularity) -> tuple[TimeSlice, ...]:
    """Calendar months, quarters or half-years covering the period, clipped to it (R-H3; XJ 五(四)).

    Slices are calendar-aligned (quarters start in January, April, July, October; half-years in
    January and July), so a period starting mid-month has a partial first slice.
    """
    if period_end < period_start:
        raise ValueError(f"period end {period_end} is before period start {period_start}")
    span = _MONTHS_PER_SLICE[Granularity(granularity)]
    slices: list[TimeSlice] = []
    cursor = period_start
    while cursor <= period_end:
        last_month = (cursor.month - 1) // span * span + span
        unit_end = dt.date(cursor.year, last_month, calendar.monthrange(cursor.year, last_month)[1])
        end = min(unit_end, period_end)
        slices.append(TimeSlice(cursor, end, _slice_label(cursor, Granularity(granularity))))
        cursor = end + dt.timedelta(days=1)
    return tuple(slices)


def _seasonal_weight(piece: TimeSlice, profile: SeasonalProfile) -> Fraction:
    weight = Fraction(0)
    cursor = piece.start
    while cursor <= piece.end:
        month_days = calendar.monthrange(cursor.year, cursor.month)[1]
        month_end = dt.date(cursor.year, cursor.month, month_days)
        covered = (min(month_end, piece.end) - cursor).days + 1
        weight += Fraction(profile.month_weights[cursor.month - 1]) * covered / month_days
        cursor = month_end + dt.timedelta(days=1)
    return weight


def _slice_weights(slices: Sequence[TimeSlice], profile: SeasonalProfile | None) -> dict[TimeSlice, int]:
    """Integer weights per slice (exact: seasonal fractions brought to a common denominator)."""
    if profile is None:
        return {piece: piece.days for piece in slices}
    fractions = {piece: _seasonal_weight(piece, profile) for piece in slices}
    if not any(fractions.values()):
        raise ValueError("the seasonal profile gives no weight to any month of the period")
    denominator = lcm(*(value.denominator for value in fractions.values()))
    return {piece: int(value * denominator) for piece, value in fractions.items()}


def slice_targets(
    target: Decimal | int,
    period_start: dt.date,
    period_end: dt.date,
    granularity: Granularity,
    *,
    seasonal_profile: SeasonalProfile | None = None,
) -> dict[TimeSlice, Decimal]:
    """Whole-unit targets per calendar slice of the period, summing exactly to ``target`` (R-H3; XJ 五(四)).

    Weights are each slice's days, or its seasonal-profile weight when a profile is given; largest
    remainder, ties to the larger weight, then the earlier slice. Returned in date order.
    """
    total = _whole(target, "target")
    slices = time_slices(period_start, period_end, granularity)
    weights = _slice_weights(slices, seasonal_profile)
    return largest_remainder(total, weights, tie_break=slices)


# --------------------------------------------------------------------------------------------------
# Department × slice table


@dataclass(frozen=True, slots=True)
class TargetTable:
    """Department × slice targets with exact margins (R-H3).

    ``cells[(department, slice)]`` are whole units; each row sums to ``department_totals`` and each
    column to ``slice_totals``; both sum to ``total``.
    """

    total: Decimal
    slices: tuple[TimeSlice, ...]
    department_totals: Mapping[str, Decimal]
    slice_totals: Mapping[TimeSlice, Decimal]
    cells: Mapping[tuple[str, TimeSlice], Decimal]

    def row(self, department: str) -> dict[TimeSlice, Decimal]:
        """One department's targets by slice, in date order."""
        return {piece: self.cells[(department, piece)] for piece in self.slices}

    def column(self, piece: TimeSlice) -> dict[str, Decimal]:
        """One slice's targets by department, sorted by department code."""
        return {dept: self.cells[(dept, piece)] for dept in self.department_totals}


class _MinCostFlow:
    """Successive shortest paths with Dijkstra on reduced costs (integer capacities and costs).

    Work grows with (departments × slices)²: about 0.2 s for 100 departments × 13 months, 1 s for × 37.
    """

    def __init__(self, nodes: int) -> None:
        self.graph: list[list[int]] = [[] for _ in range(nodes)]
        self.to: list[int] = []
        self.cap: list[int] = []
        self.cost: list[int] = []

    def add_edge(self, u: int, v: int, cap: int, cost: int) -> int:
        self.graph[u].append(len(self.to))
        self.to.append(v)
        self.cap.append(cap)
        self.cost.append(cost)
        self.graph[v].append(len(self.to))
        self.to.append(u)
        self.cap.append(0)
        self.cost.append(-cost)
        return len(self.to) - 2

    def _bellman_ford(self, source: int) -> list[int | None]:
        dist: list[int | None] = [None] * len(self.graph)
        dist[source] = 0
        changed = True
        while changed:  # no negative cycle: the residual network starts as a DAG
            changed = False
            for u, edges in enumerate(self.graph):
                du = dist[u]
                if du is None:
                    continue
                for e in edges:
                    v = self.to[e]
                    dv = dist[v]
                    if self.cap[e] > 0 and (dv is None or du + self.cost[e] < dv):
                        dist[v] = du + self.cost[e]
                        changed = True
        return dist

    def run(self, source: int, sink: int) -> int:
        """Push the maximum flow from source to sink at minimum cost; return the flow."""
        potential = [d if d is not None else 0 for d in self._bellman_ford(source)]
        flow = 0
        while True:
            dist: list[int | None] = [None] * len(self.graph)
            via: list[int] = [-1] * len(self.graph)
            dist[source] = 0
            heap = [(0, source)]
            while heap:
                d, u = heapq.heappop(heap)
                if d != dist[u]:
                    continue
                if u == sink:
                    break
                for e in self.graph[u]:
                    if self.cap[e] <= 0:
                        continue
                    v = self.to[e]
                    nd = d + self.cost[e] + potential[u] - potential[v]
                    dv = dist[v]
                    if dv is None or nd < dv:
                        dist[v] = nd
                        via[v] = e
                        heapq.heappush(heap, (nd, v))
            reach = dist[sink]
            if reach is None:
                return flow
            # early exit: nodes not settled before the sink are at least ``reach`` away (keeps reduced costs >= 0)
            for node, d_node in enumerate(dist):
                potential[node] += reach if d_node is None else min(d_node, reach)
            path: list[int] = []
            node = sink
            while node != source:
                path.append(via[node])
                node = self.to[via[node] ^ 1]
            push = min(self.cap[e] for e in path)
            for e in path:
                self.cap[e] -= push
                self.cap[e ^ 1] += push
            flow += push


def _controlled_rounding(row_totals: Sequence[int], column_totals: Sequence[int], total: int) -> list[list[int]]:
    """Round ``row × column ÷ total`` cell by cell to floor or ceiling keeping both margins exact.

    Rows and columns arrive in tie-break order (earlier wins a tie). Rounds up the cells with the
    largest fractional parts (minimum total absolute error); among equal choices, earlier cells.
    """
    rows, cols = len(row_totals), len(column_totals)
    cells = [[row_totals[i] * column_totals[j] // total for j in range(cols)] for i in range(rows)]
    remainders = [[row_totals[i] * column_totals[j] % total for j in range(cols)] for i in range(rows)]
    row_need = [row_totals[i] - sum(cells[i]) for i in range(rows)]
    col_need = [column_totals[j] - sum(cells[i][j] for i in range(rows)) for j in range(cols)]
    if not any(row_need):
        return cells
    count = rows * cols
    scale = count * count + 1  # a remainder step outweighs any sum of position bonuses
    source, sink = 0, rows + cols + 1
    network = _MinCostFlow(rows + cols + 2)
    for i in range(rows):
        network.add_edge(source, 1 + i, row_need[i], 0)
    edges: dict[tuple[int, int], int] = {}
    for i in range(rows):
        for j in range(cols):
            if remainders[i][j] > 0:
                bonus = count - (i * cols + j)
                edges[(i, j)] = network.add_edge(1 + i, 1 + rows + j, 1, -(remainders[i][j] * scale + bonus))
    for j in range(cols):
        network.add_edge(1 + rows + j, sink, col_need[j], 0)
    pushed = network.run(source, sink)
    if pushed != sum(row_need):  # pragma: no cover - integral margins always admit a controlled rounding
        raise ArithmeticError("controlled rounding failed to balance the margins")
    for (i, j), e in edges.items():
        if network.cap[e] == 0:
            cells[i][j] += 1
    return cells


def targets_by_department_and_slice(
    agreed_qty: Decimal | int,
    usage_by_department: Mapping[str, Usage],
    period_start: dt.date,
    period_end: dt.date,
    granularity: Granularity,
    *,
    seasonal_profile: SeasonalProfile | None = None,
    basis: UsageBasis = DEFAULT_USAGE_BASIS,
) -> TargetTable:
    """Department × time-slice targets whose grand total, row totals and column totals are all exact (R-H3).

    Rows are ``allocate_targets(agreed_qty, …)``; columns are ``slice_targets(agreed_qty, …)``; cells
    are a controlled (two-way) rounding of ``row × column ÷ agreed_qty`` — each cell the floor or
    ceiling of that value — so a department's slice targets add up to its target and the departments'
    targets in a slice add up to the slice's share of the agreed quantity.
    """
    total = _whole(agreed_qty, "agreed quantity")
    department_totals = allocate_targets(total, usage_by_department, basis=basis)
    slice_totals = slice_targets(total, period_start, period_end, granularity, seasonal_profile=seasonal_profile)
    slices = tuple(slice_totals)
    weights = _use_weights(usage_by_department, basis)
    ranked = _ranked_departments(weights)
    if total == 0:
        grid = [[0] * len(slices) for _ in ranked]
    else:
        grid = _controlled_rounding(
            [int(department_totals[dept]) for dept in ranked],
            [int(slice_totals[piece]) for piece in slices],
            int(total),
        )
    row_of = {dept: i for i, dept in enumerate(ranked)}
    cells = {
        (dept, piece): Decimal(grid[row_of[dept]][j]) for dept in department_totals for j, piece in enumerate(slices)
    }
    return TargetTable(
        total=total,
        slices=slices,
        department_totals=department_totals,
        slice_totals=slice_totals,
        cells=cells,
    )
