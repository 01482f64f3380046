"""Surplus retention (结余留用) and its split inside a hospital (R-G1, R-G3, R-G4).

Three steps, each a pure function over frozen parameter dataclasses:

1. **Surplus** (R-G1; rule-facts "Surplus retention (example: Shenzhen 2024 draft)"): per VBP drug,
   ``budget = agreed quantity × pre-VBP weighted-average generic unit price × fund payment ratio ×
   share of insured patients``, rounded half-up to the fen; ``surplus = budget − actual fund
   spending``. Purchases above the agreed volume are excluded: the budget is built on the *agreed*
   base only (never the actual quantity), and when the actual quantity is given and exceeds the agreed
   quantity, the spending counted against the budget is cut to the agreed share
   (``spending × agreed ÷ actual``), so buying more of the cheap selected drug never eats into the
   surplus. A negative surplus is an overspend; "合理超支分担" (R-G1) lets the institution bear a
   share of the institution's net overspend (``OverspendParams.institution_share``; ``None`` = not
   shared: the institution bears none of it).
2. **Retained share by appraisal grade** (R-G4 marks lagging institutions down; rule-facts Shenzhen
   2024 draft): a table of bands, highest first, each with a lower bound on points (inclusive or
   exclusive), a grade and a share. Default ``SHENZHEN_2024_GRADE_TABLE``: A if points > 80 (50%);
   B if 70 ≤ points ≤ 80 (40%); C if 60 ≤ points < 70 (30%); D if points < 60 (0%).
3. **Internal split** (R-G3; XJ 五(七)): 60% to the prescribers who used selected drugs, 30% to
   pharmacy staff, 10% to the institution, exact to the fen by largest remainder; then the
   prescribers' pool by each prescriber's selected-drug use and the pharmacy pool by weights (or
   equally), again exact to the fen. Ties go to the larger weight, then the order given (pools:
   prescribers, pharmacy, institution; people: sorted by code).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import pairwise

from jicai.policy.money import FEN, ONE, ZERO, largest_remainder, round_fen, to_decimal


def _check_share(value: Decimal, what: str) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or not ZERO <= value <= ONE:
        raise ValueError(f"{what} must be a Decimal in [0, 1], got {value!r}")


def _check_non_negative(value: Decimal, what: str) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise ValueError(f"{what} must be a finite non-negative Decimal, got {value!r}")


def _check_fen(value: Decimal, what: str) -> None:
    """``value`` (a finite Decimal, checked by the caller) is a whole number of fen."""
    in_fen = value.scaleb(2)
    if in_fen != in_fen.to_integral_value():
        raise ValueError(f"{what} must be a whole number of fen (0.01 yuan), got {value}")


# --------------------------------------------------------------------------------------------------
# 1. Surplus = budget − actual fund spending (R-G1)


@dataclass(frozen=True, slots=True)
class SurplusBudgetParams:
    """The Shenzhen-style budget components for one VBP drug (R-G1; rule-facts Shenzhen 2024 draft).

    ``agreed_qty`` in item units; ``pre_vbp_unit_price`` = weighted-average price per item unit of the
    generic before VBP (yuan); ``fund_payment_ratio`` = share of spending the fund pays;
    ``insured_share`` = share of the drug's patients who are insured.
    """

    agreed_qty: Decimal
    pre_vbp_unit_price: Decimal
    fund_payment_ratio: Decimal
    insured_share: Decimal

    def __post_init__(self) -> None:
        _check_non_negative(self.agreed_qty, "agreed_qty")
        _check_non_negative(self.pre_vbp_unit_price, "pre_vbp_unit_price")
        _check_share(self.fund_payment_ratio, "fund_payment_ratio")
        _check_share(self.insured_share, "insured_share")


@dataclass(frozen=True, slots=True)
class SurplusDrug:
    """One VBP drug's budget components and its actual insurance-fund spending (yuan, to the fen).

    ``actual_qty`` (item units) is optional: when given and above the agreed quantity, only the agreed
    share of the spending counts (purchases above the agreed volume are excluded).
    """

    item: str
    budget: SurplusBudgetParams
    actual_fund_spending: Decimal
    actual_qty: Decimal | None = None

    def __post_init__(self) -> None:
        if not self.item:
            raise ValueError("a surplus drug needs an item code")
        _check_non_negative(self.actual_fund_spending, "actual_fund_spending")
        _check_fen(self.actual_fund_spending, "actual_fund_spending")
        if self.actual_qty is not None:
            _check_non_negative(self.actual_qty, "actual_qty")


@dataclass(frozen=True, slots=True)
class OverspendParams:
    """合理超支分担 (R-G1): the institution's share of a net overspend; ``None`` = not shared."""

    institution_share: Decimal | None = None

    def __post_init__(self) -> None:
        if self.institution_share is not None:
            _check_share(self.institution_share, "institution_share")


NOT_SHARED = OverspendParams()
"""Default: the seeds name "合理超支分担" (XA 三(四)2, JL 三(七), CQ 二(八)) but give no share."""


@dataclass(frozen=True, slots=True)
class SurplusLine:
    """One drug's budget, counted spending and surplus (negative = overspend), in yuan to the fen."""

    item: str
    budget: Decimal
    counted_spending: Decimal
    surplus: Decimal


@dataclass(frozen=True, slots=True)
class SurplusResult:
    """An institution's surplus over its VBP drugs (R-G1).

    ``surplus`` is the net of the lines; when it is negative, ``overspend`` = −surplus is split into
    ``institution_overspend`` (what the institution bears) and ``fund_overspend`` (the rest).
    """

    lines: tuple[SurplusLine, ...]
    budget: Decimal
    counted_spending: Decimal
    surplus: Decimal
    overspend: Decimal
    institution_overspend: Decimal
    fund_overspend: Decimal


def surplus_budget(params: SurplusBudgetParams) -> Decimal:
    """The insurance budget for one VBP drug, on the agreed base only, rounded to the fen (R-G1)."""
    return round_fen(params.agreed_qty * params.pre_vbp_unit_price * params.fund_payment_ratio * params.insured_share)


def counted_spending(drug: SurplusDrug) -> Decimal:
    """Actual fund spending counted against the budget: cut to the agreed share above the agreed volume (R-G1)."""
    actual_qty = drug.actual_qty
    agreed_qty = drug.budget.agreed_qty
    if actual_qty is None or actual_qty <= agreed_qty:
        return drug.actual_fund_spending
    return round_fen(drug.actual_fund_spending * agreed_qty / actual_qty)


def compute_surplus(drugs: Sequence[SurplusDrug], params: OverspendParams = NOT_SHARED) -> SurplusResult:
    """Budget − actual fund spending over an institution's VBP drugs, with shared overspend (R-G1).

    Budgets and counted spending are each rounded to the fen per drug, so the totals are the sums of
    the lines. A net overspend is shared per ``params`` (institution's part rounded half-up to the fen).
    """
    codes = [drug.item for drug in drugs]
    if len(set(codes)) != len(codes):
        raise ValueError("each drug may appear only once in a surplus computation")
    lines = []
    for drug in drugs:
        budget = surplus_budget(drug.budget)
        spending = counted_spending(drug)
        lines.append(SurplusLine(drug.item, budget, spending, budget - spending))
    budget_total = sum((line.budget for line in lines), ZERO)
    spending_total = sum((line.counted_spending for line in lines), ZERO)
    surplus = budget_total - spending_total
    overspend = max(-surplus, ZERO)
    share = params.institution_share if params.institution_share is not None else ZERO
    institution_overspend = round_fen(overspend * share)
    return SurplusResult(
        lines=tuple(lines),
        budget=budget_total,
        counted_spending=spending_total,
        surplus=surplus,
        overspend=overspend,
        institution_overspend=institution_overspend,
        fund_overspend=overspend - institution_overspend,
    )


# --------------------------------------------------------------------------------------------------
# 2. Retained share by appraisal grade (R-G1, R-G4)


@dataclass(frozen=True, slots=True)
class GradeBand:
    """Points at or above (``inclusive``) or strictly above ``min_points`` earn ``grade`` and ``share``.

    ``min_points=None`` is the catch-all lowest band.
    """

    grade: str
    min_points: Decimal | None
    share: Decimal
    inclusive: bool = True

    def __post_init__(self) -> None:
        if not self.grade:
            raise ValueError("a grade band needs a grade name")
        if self.min_points is not None and (
            not isinstance(self.min_points, Decimal) or not self.min_points.is_finite()
        ):
            raise ValueError(f"min_points must be a finite Decimal or None, got {self.min_points!r}")
        _check_share(self.share, f"share of grade {self.grade}")

    def admits(self, points: Decimal) -> bool:
        """Whether ``points`` reach this band."""
        if self.min_points is None:
            return True
        return points >= self.min_points if self.inclusive else points > self.min_points


@dataclass(frozen=True, slots=True)
class GradeTable:
    """Appraisal bands, highest first; the last band is the catch-all (``min_points=None``)."""

    bands: tuple[GradeBand, ...]

    def __post_init__(self) -> None:
        if not self.bands:
            raise ValueError("a grade table needs at least one band")
        if self.bands[-1].min_points is not None:
            raise ValueError("the last grade band must be the catch-all (min_points=None)")
        bounds: list[tuple[Decimal, bool]] = []
        for band in self.bands[:-1]:
            if band.min_points is None:
                raise ValueError("only the last grade band may be the catch-all")
            bounds.append((band.min_points, band.inclusive))
        for (high, high_inclusive), (low, low_inclusive) in pairwise(bounds):
            same_bound_ok = high == low and not high_inclusive and low_inclusive
            if not (high > low or same_bound_ok):
                raise ValueError("grade bands must run from the highest bound down without overlap")
        grades = [band.grade for band in self.bands]
        if len(set(grades)) != len(grades):
            raise ValueError("grade names must be distinct")


SHENZHEN_2024_GRADE_TABLE = GradeTable(
    (
        GradeBand("A", Decimal(80), Decimal("0.50"), inclusive=False),
        GradeBand("B", Decimal(70), Decimal("0.40")),
        GradeBand("C", Decimal(60), Decimal("0.30")),
        GradeBand("D", None, Decimal(0)),
    )
)
"""rule-facts "Surplus retention (example: Shenzhen 2024 draft)": A (>80) 50%, B (70–80) 40%, C (60–70) 30%,
D (<60) 0%. Boundaries chosen here: A if points > 80; B if 70 ≤ points ≤ 80; C if 60 ≤ points < 70; D if < 60."""


@dataclass(frozen=True, slots=True)
class RetainedSurplus:
    """The grade earned, its share, and the retained amount (yuan, to the fen)."""

    grade: str
    share: Decimal
    retained: Decimal


def retained_surplus(
    surplus: Decimal, points: Decimal | int, table: GradeTable = SHENZHEN_2024_GRADE_TABLE
) -> RetainedSurplus:
    """The part of a surplus the institution keeps, by its appraisal grade (R-G1, R-G4).

    ``retained = surplus × share`` rounded half-up to the fen; an overspend (negative surplus) retains
    nothing — sharing an overspend is ``compute_surplus``'s job.
    """
    if not isinstance(surplus, Decimal) or not surplus.is_finite():
        raise ValueError(f"surplus must be a finite Decimal, got {surplus!r}")
    points_d = to_decimal(points)
    if not points_d.is_finite() or points_d < 0:
        raise ValueError(f"appraisal points must be a finite non-negative number, got {points!r}")
    band = next(band for band in table.bands if band.admits(points_d))
    return RetainedSurplus(band.grade, band.share, round_fen(max(surplus, ZERO) * band.share))


# --------------------------------------------------------------------------------------------------
# 3. Internal split of the retained amount (R-G3; XJ 五(七))


@dataclass(frozen=True, slots=True)
class InternalSplitParams:
    """Shares of retained surplus for prescribers, pharmacy staff and the institution; they sum to 1."""

    prescribers: Decimal
    pharmacy: Decimal
    institution: Decimal

    def __post_init__(self) -> None:
        _check_share(self.prescribers, "prescribers share")
        _check_share(self.pharmacy, "pharmacy share")
        _check_share(self.institution, "institution share")
        if self.prescribers + self.pharmacy + self.institution != ONE:
            raise ValueError("internal split shares must sum to 1")


XJ_INTERNAL_SPLIT = InternalSplitParams(Decimal("0.60"), Decimal("0.30"), Decimal("0.10"))
"""XJ 五(七): 60% 集采药品使用人员, 30% 药学工作人员, 10% 医疗机构推进奖励 (R-G3)."""


@dataclass(frozen=True, slots=True)
class InternalSplit:
    """The three pools of a retained amount (yuan, to the fen); they sum exactly to the amount."""

    prescribers: Decimal
    pharmacy: Decimal
    institution: Decimal


@dataclass(frozen=True, slots=True)
class RetainedDistribution:
    """A retained amount split into pools and then to people (yuan, to the fen), exact at every level."""

    pools: InternalSplit
    prescribers: Mapping[str, Decimal]
    pharmacy: Mapping[str, Decimal]


def _amount(amount: Decimal, what: str) -> Decimal:
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount < 0:
        raise ValueError(f"{what} must be a finite non-negative Decimal, got {amount!r}")
    _check_fen(amount, what)
    return amount


def split_retained(amount: Decimal, params: InternalSplitParams = XJ_INTERNAL_SPLIT) -> InternalSplit:
    """Split a retained amount into prescribers' / pharmacy / institution pools, exact to the fen (R-G3).

    Largest remainder on fen units; ties to the larger share, then prescribers, pharmacy, institution.
    """
    total = _amount(amount, "retained amount")
    weights = {"prescribers": params.prescribers, "pharmacy": params.pharmacy, "institution": params.institution}
    parts = largest_remainder(total, weights, quantum=FEN, tie_break=list(weights))
    return InternalSplit(parts["prescribers"], parts["pharmacy"], parts["institution"])


def split_pool(pool: Decimal, weights: Mapping[str, Decimal | int]) -> dict[str, Decimal]:
    """Split a pool among people by weight, exact to the fen (R-G3).

    Largest remainder on fen units; ties to the larger weight, then the person's code. All-zero
    weights split equally. Returned sorted by code.
    """
    total = _amount(pool, "pool")
    checked: dict[str, Decimal] = {}
    for person in sorted(weights):
        if not isinstance(person, str) or not person:
            raise ValueError(f"person codes must be non-empty strings, got {person!r}")
        weight = to_decimal(weights[person])
        if not weight.is_finite() or weight < 0:
            raise ValueError(f"weight of {person} must be a finite non-negative number, got {weights[person]!r}")
        checked[person] = weight
    if not checked and total > 0:
        raise ValueError("cannot split a positive pool among no one")
    parts = largest_remainder(total, checked, quantum=FEN, tie_break=list(checked))
    return {person: parts[person] for person in checked}


def equal_weights(people: Iterable[str]) -> dict[str, Decimal]:
    """Weight 1 for each person: an equal split of a pool (R-G3 pharmacy staff by default)."""
    return dict.fromkeys(people, ONE)


def distribute_retained(
    amount: Decimal,
    prescriber_use: Mapping[str, Decimal | int],
    pharmacy_weights: Mapping[str, Decimal | int],
    params: InternalSplitParams = XJ_INTERNAL_SPLIT,
) -> RetainedDistribution:
    """Split a retained amount into pools, then to prescribers by selected-drug use and to pharmacy staff (R-G3).

    The prescribers' pool goes only to prescribers who used selected drugs (zero use gets zero); a
    positive pool with no use at all is an error. ``pharmacy_weights`` may be ``equal_weights(staff)``.
    """
    pools = split_retained(amount, params)
    if pools.prescribers > 0 and not any(to_decimal(use) > 0 for use in prescriber_use.values()):
        raise ValueError("no prescriber used the selected drugs, so the prescribers' pool has no one to go to")
    return RetainedDistribution(
        pools=pools,
        prescribers=split_pool(pools.prescribers, prescriber_use),
        pharmacy=split_pool(pools.pharmacy, pharmacy_weights),
    )
