"""Insurance payment standard (医保支付标准) and the patient's excess on a claim line (R-F1–R-F5).

The national rule (医保发〔2019〕18号, as summarised in rule-facts.md "Payment standard") and the
seeds (XA 三(四)1, JL 三(六), CQ 二(四), SX 五(六)) read, per minimum unit:

* The winning unit price is the standard for the whole generic name; originator, reference and CE
  generics share it (R-F1).
* Above the standard the patient pays the excess; below it the fund pays the actual price (R-F2).
* Non-selected products priced far above the winning price (more than ``threshold_multiple`` ×, by
  default 2 ×) start at their own price cut by ``first_year_cut`` (30%) and move to the winning price
  over the transition years (XA, CQ: "3 年内调整到位"); within the threshold they get the winning price
  at once (R-F3).
* Non-CE generics: standard not above the winning price, at once, without any transition (R-F4).
* Chongqing's option: non-selected products of the generic take the alliance's negotiated price, or
  the national lowest price when no negotiated price exists (R-F5).

All prices are unit prices (per minimum unit) kept to four places; amounts on a claim line are rounded
half-up to the fen once, and the parts of a line always add up to its total exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from jicai.policy.money import ONE, UNIT_PRICE_PLACES, ZERO, round_fen, to_decimal

MAX_TRANSITION_YEARS = 3
"""Upper bound on the transition: XA 三(四)1 and CQ 二(四) "3 年内调整到位"; 18号 "2–3 年"."""


class StandardBasis(StrEnum):
    """Which rule produced a payment standard (before the own-price cap of R-F2)."""

    SELECTED = "selected"  # R-F1: the product won; the generic's winning unit price
    WINNING_PRICE = "winning_price"  # R-F1/R-F3: non-selected within the threshold, or transition over
    TRANSITION = "transition"  # R-F3: non-selected above the threshold, still phasing in
    NON_CE_CAP = "non_ce_cap"  # R-F4: non-CE generic, capped at the winning unit price at once
    NEGOTIATED_PRICE = "negotiated_price"  # R-F5: the alliance's negotiated price (CQ)
    NATIONAL_LOWEST = "national_lowest"  # R-F5: the national lowest price (CQ)


@dataclass(frozen=True, slots=True)
class PaymentStandardParams:
    """Numbers a region may vary for the payment standard (R-F3–R-F5).

    ``threshold_multiple``: a non-selected product priced above this multiple of the winning unit
    price gets the phased standard; ``threshold_inclusive`` makes exactly the multiple count as above
    (the Chinese "2 倍以上" conventionally includes 2 ×, while "2 倍以内" also does; the default follows
    semantics.md: strictly above). ``first_year_cut``: the year-1 standard is own price × (1 − cut).
    ``transition_years`` (1..3): in year ``transition_years`` and later the standard is the winning
    price. ``non_ce_cap_at_once`` applies R-F4. ``use_reference_price`` applies R-F5 when the product
    carries a negotiated or national lowest price.
    """

    threshold_multiple: Decimal = Decimal(2)
    first_year_cut: Decimal = Decimal("0.30")
    transition_years: int = MAX_TRANSITION_YEARS
    threshold_inclusive: bool = False
    non_ce_cap_at_once: bool = True
    use_reference_price: bool = False

    def __post_init__(self) -> None:
        if self.threshold_multiple < ONE:
            raise ValueError("threshold multiple must be at least 1")
        if not ZERO <= self.first_year_cut < ONE:
            raise ValueError("first-year cut must be in [0, 1)")
        if not 1 <= self.transition_years <= MAX_TRANSITION_YEARS:
            raise ValueError(f"transition years must be between 1 and {MAX_TRANSITION_YEARS}")


NATIONAL_PAYMENT_STANDARD = PaymentStandardParams()
"""医保发〔2019〕18号: > 2 × winning → own price − 30% in year 1, phased in (2–3 years; 3 taken); non-CE
capped at once. XA 三(四)1 and CQ 二(四) also say "within 3 years"."""

CHONGQING_PAYMENT_STANDARD = PaymentStandardParams(use_reference_price=True)
"""CQ 二(四): as the national rule, plus non-selected products at the alliance's negotiated price, or
the national lowest price outside the negotiation (R-F5)."""


@dataclass(frozen=True, slots=True)
class PricedProduct:
    """A product of the generic as the payment standard sees it (unit price per minimum unit).

    ``negotiated_price`` / ``national_lowest_price`` are unit prices used only under R-F5.
    """

    unit_price: Decimal
    is_selected: bool
    ce_passed: bool
    is_originator: bool = False
    is_reference: bool = False
    negotiated_price: Decimal | None = None
    national_lowest_price: Decimal | None = None

    @property
    def is_non_ce_generic(self) -> bool:
        """A generic (neither originator nor reference drug) that has not passed CE (R-F4)."""
        return not (self.ce_passed or self.is_originator or self.is_reference)


@dataclass(frozen=True, slots=True)
class PaymentStandard:
    """The standard per minimum unit, the rule that set it, and whether R-F2's own-price cap bit."""

    standard: Decimal
    basis: StandardBasis
    capped_at_own_price: bool


def _unit(value: Decimal) -> Decimal:
    return value.quantize(UNIT_PRICE_PLACES, rounding=ROUND_HALF_UP)


def phased_standard(first_year: Decimal, winning: Decimal, year_index: int, transition_years: int) -> Decimal:
    """Standard in ``year_index`` moving linearly from ``first_year`` to ``winning`` (R-F3).

    Year 1 is ``first_year``; year ``transition_years`` and later is ``winning``; in between the step
    is (first_year − winning) ÷ (transition_years − 1) a year, rounded half-up to four places. With
    ``transition_years`` = 1 there is no phase: year 1 already pays the winning price. For 3 years:
    year 1 = first, year 2 = midpoint, year 3 = winning.
    """
    if year_index < 1:
        raise ValueError("year index starts at 1 (the first VBP year)")
    if year_index >= transition_years:
        return winning
    step = (first_year - winning) * Decimal(year_index - 1) / Decimal(transition_years - 1)
    return _unit(first_year - step)


def payment_standard(
    winning_unit_price: Decimal,
    product: PricedProduct,
    year_index: int,
    params: PaymentStandardParams = NATIONAL_PAYMENT_STANDARD,
) -> PaymentStandard:
    """Insurance payment standard per minimum unit for one product of the generic (R-F1–R-F5).

    Order: selected → winning price (R-F1). Non-selected: the R-F5 reference price when enabled and
    given (negotiated first, then national lowest); otherwise above the threshold the phased standard
    starting at max(own × (1 − cut), winning) (see ``phased_standard``), else the winning price (R-F3).
    Non-CE generics take min(that result, winning) at once, with no transition (R-F4). Finally the
    standard never exceeds the product's own unit price, so the fund pays the actual price of a
    cheaper product (R-F2). ``year_index`` counts VBP years from 1.
    """
    winning = to_decimal(winning_unit_price)
    own = to_decimal(product.unit_price)
    if winning <= 0:
        raise ValueError("winning unit price must be positive")
    if own <= 0:
        raise ValueError("product unit price must be positive")
    if year_index < 1:
        raise ValueError("year index starts at 1 (the first VBP year)")
    for name, ref in (("negotiated", product.negotiated_price), ("national lowest", product.national_lowest_price)):
        if ref is not None and ref <= 0:
            raise ValueError(f"{name} price must be positive")

    if product.is_selected:
        basis, standard = StandardBasis.SELECTED, winning
    else:
        basis, standard = _non_selected_rule(winning, own, product, year_index, params)
    capped = standard > own
    return PaymentStandard(standard=min(standard, own), basis=basis, capped_at_own_price=capped)


def _non_selected_rule(
    winning: Decimal, own: Decimal, product: PricedProduct, year_index: int, params: PaymentStandardParams
) -> tuple[StandardBasis, Decimal]:
    """R-F3–R-F5 for a non-selected product, before the own-price cap."""
    non_ce_cap = params.non_ce_cap_at_once and product.is_non_ce_generic
    reference: tuple[StandardBasis, Decimal] | None = None
    if params.use_reference_price and product.negotiated_price is not None:
        reference = (StandardBasis.NEGOTIATED_PRICE, to_decimal(product.negotiated_price))
    elif params.use_reference_price and product.national_lowest_price is not None:
        reference = (StandardBasis.NATIONAL_LOWEST, to_decimal(product.national_lowest_price))
    if reference is not None:
        # R-F4 still caps a non-CE generic whose reference price is above the winning price
        return (StandardBasis.NON_CE_CAP, winning) if non_ce_cap and reference[1] > winning else reference
    if non_ce_cap:
        # R-F4: min(rule result, winning); the rule result is never below the winning price, and no transition
        return StandardBasis.NON_CE_CAP, winning
    threshold = winning * params.threshold_multiple
    above = own >= threshold if params.threshold_inclusive else own > threshold
    if above and year_index < params.transition_years:
        first_year = max(_unit(own * (ONE - params.first_year_cut)), winning)
        return StandardBasis.TRANSITION, phased_standard(first_year, winning, year_index, params.transition_years)
    return StandardBasis.WINNING_PRICE, winning


@dataclass(frozen=True, slots=True)
class ClaimLine:
    """One claim line split in yuan: ``allowed`` is what the insurance rules price (split into
    ``fund`` and ``copay`` when a reimbursement ratio is given), ``excess`` the patient's self-pay
    above the standard. ``fund + copay + excess == total`` exactly."""

    total: Decimal
    allowed: Decimal
    excess: Decimal
    fund: Decimal | None
    copay: Decimal | None


def claim_line(
    unit_price: Decimal,
    qty: Decimal | int,
    standard: Decimal,
    reimbursement_ratio: Decimal | None = None,
) -> ClaimLine:
    """Split a claim line at the payment standard (R-F2): the patient pays the excess above it.

    total = round_fen(price × qty); allowed = round_fen(min(price, standard) × qty); excess = total −
    allowed, which is within one fen of round_fen((price − standard) × qty) and makes the parts add up
    exactly. With a reimbursement ratio r the fund pays round_fen(allowed × r) and the patient's co-pay
    is the rest of ``allowed``.
    """
    price = to_decimal(unit_price)
    quantity = to_decimal(qty)
    std = to_decimal(standard)
    if price < 0:
        raise ValueError("unit price must not be negative")
    if quantity < 0:
        raise ValueError("quantity must not be negative")
    if std < 0:
        raise ValueError("payment standard must not be negative")
    total = round_fen(price * quantity)
    allowed = round_fen(min(price, std) * quantity)
    excess = total - allowed
    if reimbursement_ratio is None:
        return ClaimLine(total=total, allowed=allowed, excess=excess, fund=None, copay=None)
    ratio = to_decimal(reimbursement_ratio)
    if not ZERO <= ratio <= ONE:
        raise ValueError("reimbursement ratio must be between 0 and 1")
    fund = round_fen(allowed * ratio)
    return ClaimLine(total=total, allowed=allowed, excess=excess, fund=fund, copay=allowed - fund)
