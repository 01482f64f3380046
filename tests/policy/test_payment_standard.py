"""Payment standard and claim-line split (R-F1–R-F5), pure tests without a database."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jicai.policy.money import round_fen
from jicai.policy.payment_standard import (
    CHONGQING_PAYMENT_STANDARD,
    MAX_TRANSITION_YEARS,
    NATIONAL_PAYMENT_STANDARD,
    ClaimLine,
    PaymentStandardParams,
    PricedProduct,
    StandardBasis,
    claim_line,
    payment_standard,
    phased_standard,
)

D = Decimal
W = D("0.5000")  # winning unit price used by the vectors


def originator(price: str, **kw: object) -> PricedProduct:
    return PricedProduct(unit_price=D(price), is_selected=False, ce_passed=False, is_originator=True, **kw)  # type: ignore[arg-type]


def ce_generic(price: str) -> PricedProduct:
    return PricedProduct(unit_price=D(price), is_selected=False, ce_passed=True)


def non_ce_generic(price: str, **kw: object) -> PricedProduct:
    return PricedProduct(unit_price=D(price), is_selected=False, ce_passed=False, **kw)  # type: ignore[arg-type]


# --- defaults and params -------------------------------------------------------------------------------


def test_national_defaults_follow_18hao() -> None:
    p = NATIONAL_PAYMENT_STANDARD
    assert p.threshold_multiple == D(2)
    assert p.first_year_cut == D("0.30")
    assert p.transition_years == MAX_TRANSITION_YEARS == 3
    assert p.non_ce_cap_at_once is True
    assert p.use_reference_price is False
    assert p.threshold_inclusive is False
    assert CHONGQING_PAYMENT_STANDARD.use_reference_price is True


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold_multiple": D("0.9")}, "threshold multiple"),
        ({"first_year_cut": D("-0.1")}, "first-year cut"),
        ({"first_year_cut": D(1)}, "first-year cut"),
        ({"transition_years": 0}, "transition years"),
        ({"transition_years": 4}, "transition years"),
    ],
)
def test_params_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PaymentStandardParams(**kwargs)  # type: ignore[arg-type]


# --- R-F1 selected products ----------------------------------------------------------------------------


def test_selected_product_pays_the_winning_price() -> None:
    result = payment_standard(W, PricedProduct(unit_price=W, is_selected=True, ce_passed=True), 1)
    assert result.standard == D("0.5000")
    assert result.basis is StandardBasis.SELECTED
    assert result.capped_at_own_price is False


def test_second_winner_dearer_than_the_generic_standard_pays_the_excess() -> None:
    # R-F1: one standard for the generic; a dearer winner's patients pay the excess (R-F2)
    result = payment_standard(W, PricedProduct(unit_price=D("0.6000"), is_selected=True, ce_passed=True), 1)
    assert result.standard == W
    assert result.basis is StandardBasis.SELECTED
    assert result.capped_at_own_price is False


def test_selected_product_cheaper_than_the_standard_is_paid_its_own_price() -> None:
    result = payment_standard(W, PricedProduct(unit_price=D("0.4500"), is_selected=True, ce_passed=True), 1)
    assert result.standard == D("0.4500")
    assert result.capped_at_own_price is True


# --- R-F3 transition ----------------------------------------------------------------------------------


def test_originator_above_twice_winning_phases_in_over_three_years() -> None:
    # 18号: > 2 × winning → own × 0.7 in year 1, then to the winning price within 3 years (XA, CQ)
    product = originator("2.0000")
    years = [payment_standard(W, product, year) for year in (1, 2, 3, 4)]
    assert [r.standard for r in years] == [D("1.4000"), D("0.9500"), D("0.5000"), D("0.5000")]
    assert [r.basis for r in years] == [
        StandardBasis.TRANSITION,
        StandardBasis.TRANSITION,
        StandardBasis.WINNING_PRICE,
        StandardBasis.WINNING_PRICE,
    ]


def test_two_year_transition() -> None:
    params = PaymentStandardParams(transition_years=2)
    product = ce_generic("3.0000")
    assert payment_standard(W, product, 1, params).standard == D("2.1000")
    assert payment_standard(W, product, 2, params).standard == W


def test_one_year_transition_means_winning_price_at_once() -> None:
    params = PaymentStandardParams(transition_years=1)
    result = payment_standard(W, originator("3.0000"), 1, params)
    assert result.standard == W
    assert result.basis is StandardBasis.WINNING_PRICE


def test_within_twice_winning_pays_the_winning_price() -> None:
    result = payment_standard(W, ce_generic("0.9000"), 1)
    assert result.standard == W
    assert result.basis is StandardBasis.WINNING_PRICE


def test_exactly_twice_is_within_by_default_and_above_when_inclusive() -> None:
    product = originator("1.0000")
    assert payment_standard(W, product, 1).standard == W
    inclusive = PaymentStandardParams(threshold_inclusive=True)
    result = payment_standard(W, product, 1, inclusive)
    assert result.standard == D("0.7000")
    assert result.basis is StandardBasis.TRANSITION


def test_year_one_cut_is_rounded_half_up_to_four_places() -> None:
    # 1.2347 × 0.7 = 0.86429 → 0.8643; year 2: 0.8643 − (0.8643 − 0.1000) / 2 = 0.48215 → 0.4822
    winning = D("0.1000")
    product = originator("1.2347")
    assert payment_standard(winning, product, 1).standard == D("0.8643")
    assert payment_standard(winning, product, 2).standard == D("0.4822")


def test_first_year_never_below_winning_with_a_deep_cut() -> None:
    # threshold 1.2 ×, cut 50%: 0.7000 × 0.5 = 0.35 < 0.50 → the standard stays at the winning price
    params = PaymentStandardParams(threshold_multiple=D("1.2"), first_year_cut=D("0.5"))
    result = payment_standard(W, originator("0.7000"), 1, params)
    assert result.standard == W
    assert result.basis is StandardBasis.TRANSITION


def test_phased_standard_interpolates_linearly() -> None:
    assert phased_standard(D("1.0000"), D("0.1000"), 1, 3) == D("1.0000")
    assert phased_standard(D("1.0000"), D("0.1000"), 2, 3) == D("0.5500")
    assert phased_standard(D("1.0000"), D("0.1000"), 3, 3) == D("0.1000")
    assert phased_standard(D("1.0000"), D("0.1000"), 9, 3) == D("0.1000")
    with pytest.raises(ValueError, match="year index"):
        phased_standard(D(1), D(1), 0, 3)


# --- R-F4 non-CE generics ------------------------------------------------------------------------------


def test_non_ce_generic_is_capped_at_the_winning_price_at_once() -> None:
    result = payment_standard(W, non_ce_generic("3.0000"), 1)
    assert result.standard == W
    assert result.basis is StandardBasis.NON_CE_CAP


def test_non_ce_generic_cheaper_than_winning_pays_its_own_price() -> None:
    result = payment_standard(W, non_ce_generic("0.3000"), 1)
    assert result.standard == D("0.3000")
    assert result.capped_at_own_price is True


def test_non_ce_cap_switched_off_follows_the_transition() -> None:
    params = PaymentStandardParams(non_ce_cap_at_once=False)
    result = payment_standard(W, non_ce_generic("3.0000"), 1, params)
    assert result.standard == D("2.1000")
    assert result.basis is StandardBasis.TRANSITION


def test_reference_drug_is_not_a_non_ce_generic() -> None:
    product = PricedProduct(unit_price=D("3.0000"), is_selected=False, ce_passed=False, is_reference=True)
    assert not product.is_non_ce_generic
    assert payment_standard(W, product, 1).standard == D("2.1000")


# --- R-F5 Chongqing reference prices -------------------------------------------------------------------


def test_negotiated_price_sets_the_standard_in_chongqing() -> None:
    product = originator("3.0000", negotiated_price=D("1.8000"), national_lowest_price=D("1.5000"))
    result = payment_standard(W, product, 1, CHONGQING_PAYMENT_STANDARD)
    assert result.standard == D("1.8000")
    assert result.basis is StandardBasis.NEGOTIATED_PRICE
    # ignored under the national rule
    assert payment_standard(W, product, 1).basis is StandardBasis.TRANSITION


def test_national_lowest_price_when_no_negotiated_price() -> None:
    product = PricedProduct(
        unit_price=D("3.0000"), is_selected=False, ce_passed=True, national_lowest_price=D("0.4000")
    )
    result = payment_standard(W, product, 1, CHONGQING_PAYMENT_STANDARD)
    assert result.standard == D("0.4000")
    assert result.basis is StandardBasis.NATIONAL_LOWEST


def test_reference_price_above_winning_is_still_capped_for_non_ce() -> None:
    capped = payment_standard(W, non_ce_generic("3.0000", negotiated_price=D("1.0000")), 1, CHONGQING_PAYMENT_STANDARD)
    assert capped.standard == W
    assert capped.basis is StandardBasis.NON_CE_CAP
    below = payment_standard(W, non_ce_generic("3.0000", negotiated_price=D("0.4000")), 1, CHONGQING_PAYMENT_STANDARD)
    assert below.standard == D("0.4000")
    assert below.basis is StandardBasis.NEGOTIATED_PRICE


def test_reference_price_above_own_price_is_capped_at_own() -> None:
    product = originator("1.0000", negotiated_price=D("1.2000"))
    result = payment_standard(W, product, 1, CHONGQING_PAYMENT_STANDARD)
    assert result.standard == D("1.0000")
    assert result.capped_at_own_price is True


def test_selected_product_ignores_reference_prices() -> None:
    product = PricedProduct(unit_price=W, is_selected=True, ce_passed=True, negotiated_price=D("0.1000"))
    assert payment_standard(W, product, 1, CHONGQING_PAYMENT_STANDARD).standard == W


# --- validation ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("winning", "product", "year", "message"),
    [
        (D(0), ce_generic("1.0000"), 1, "winning unit price"),
        (W, ce_generic("0"), 1, "product unit price"),
        (W, ce_generic("1.0000"), 0, "year index"),
        (W, non_ce_generic("1.0000", negotiated_price=D(0)), 1, "negotiated price"),
        (W, non_ce_generic("1.0000", national_lowest_price=D("-1")), 1, "national lowest price"),
    ],
)
def test_payment_standard_validation(winning: Decimal, product: PricedProduct, year: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        payment_standard(winning, product, year)


# --- claim line (R-F2) ---------------------------------------------------------------------------------


def test_claim_line_above_the_standard() -> None:
    line = claim_line(D("1.4000"), 30, W, D("0.7"))
    assert line == ClaimLine(total=D("42.00"), allowed=D("15.00"), excess=D("27.00"), fund=D("10.50"), copay=D("4.50"))


def test_claim_line_below_the_standard_pays_the_actual_price() -> None:
    line = claim_line(D("0.4500"), 28, W)
    assert line == ClaimLine(total=D("12.60"), allowed=D("12.60"), excess=D("0.00"), fund=None, copay=None)


def test_claim_line_rounding_keeps_the_parts_summing() -> None:
    # 0.0125 × 1 = 0.0125 → 0.01; allowed 0.0050 → 0.01; excess is the remainder 0.00 (not 0.0075 → 0.01)
    line = claim_line(D("0.0125"), 1, D("0.0050"), D("0.5"))
    assert (line.total, line.allowed, line.excess) == (D("0.01"), D("0.01"), D("0.00"))
    assert line.fund == D("0.01")
    assert line.copay == D("0.00")


def test_claim_line_zero_quantity_and_full_ratio() -> None:
    assert claim_line(D("1.0000"), 0, W, D(1)) == ClaimLine(D("0.00"), D("0.00"), D("0.00"), D("0.00"), D("0.00"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((D("-1"), 1, W, None), "unit price"),
        ((D(1), -1, W, None), "quantity"),
        ((D(1), 1, D("-0.1"), None), "payment standard"),
        ((D(1), 1, W, D("1.1")), "reimbursement ratio"),
        ((D(1), 1, W, D("-0.1")), "reimbursement ratio"),
    ],
)
def test_claim_line_validation(args: tuple[Decimal, int, Decimal, Decimal | None], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        claim_line(*args)


# --- properties ----------------------------------------------------------------------------------------

unit_prices = st.integers(min_value=1, max_value=5_000_000).map(lambda n: Decimal(n).scaleb(-4))
years = st.integers(min_value=1, max_value=6)
param_sets = st.builds(
    PaymentStandardParams,
    threshold_multiple=st.sampled_from([D(1), D("1.5"), D(2), D(3)]),
    first_year_cut=st.sampled_from([D(0), D("0.3"), D("0.5"), D("0.9")]),
    transition_years=st.integers(min_value=1, max_value=3),
    threshold_inclusive=st.booleans(),
    non_ce_cap_at_once=st.booleans(),
    use_reference_price=st.just(False),
)
products = st.builds(
    PricedProduct,
    unit_price=unit_prices,
    is_selected=st.booleans(),
    ce_passed=st.booleans(),
    is_originator=st.booleans(),
    is_reference=st.booleans(),
    negotiated_price=st.none() | unit_prices,
    national_lowest_price=st.none() | unit_prices,
)


@given(winning=unit_prices, product=products, year=years, params=param_sets)
def test_property_standard_between_min_of_own_and_winning_and_own(
    winning: Decimal, product: PricedProduct, year: int, params: PaymentStandardParams
) -> None:
    # without R-F5: min(own, winning) ≤ standard ≤ own, so standard ≥ winning exactly when own ≥ winning
    standard = payment_standard(winning, product, year, params).standard
    own = product.unit_price
    assert min(own, winning) <= standard <= own
    assert (standard >= winning) == (own >= winning)
    first_year = (own * (1 - params.first_year_cut)).quantize(D("0.0001"), rounding=ROUND_HALF_UP)
    assert standard <= max(winning, first_year, min(own, winning))


@given(winning=unit_prices, product=products, year=years, params=param_sets)
def test_property_winning_price_once_settled(
    winning: Decimal, product: PricedProduct, year: int, params: PaymentStandardParams
) -> None:
    # after the transition, for selected products and (under R-F4) non-CE generics: min(own, winning)
    standard = payment_standard(winning, product, year, params).standard
    settled = year >= params.transition_years or product.is_selected
    settled = settled or (params.non_ce_cap_at_once and product.is_non_ce_generic)
    if settled:
        assert standard == min(product.unit_price, winning)


@given(winning=unit_prices, product=products, params=param_sets)
def test_property_standard_never_rises_year_on_year(
    winning: Decimal, product: PricedProduct, params: PaymentStandardParams
) -> None:
    standards = [payment_standard(winning, product, year, params).standard for year in range(1, 6)]
    assert standards == sorted(standards, reverse=True)


@given(winning=unit_prices, product=products, year=years)
def test_property_reference_prices_respect_own_price_and_non_ce_cap(
    winning: Decimal, product: PricedProduct, year: int
) -> None:
    standard = payment_standard(winning, product, year, CHONGQING_PAYMENT_STANDARD).standard
    assert 0 < standard <= product.unit_price
    if product.is_non_ce_generic:
        assert standard <= winning


@given(
    price=unit_prices,
    standard=unit_prices,
    qty=st.integers(min_value=0, max_value=100_000) | st.decimals(min_value=0, max_value=1000, places=2),
    ratio=st.none() | st.decimals(min_value=0, max_value=1, places=3),
)
def test_property_claim_parts_sum_exactly(
    price: Decimal, standard: Decimal, qty: Decimal | int, ratio: Decimal | None
) -> None:
    line = claim_line(price, qty, standard, ratio)
    assert line.total == round_fen(price * Decimal(qty))
    assert line.allowed + line.excess == line.total
    assert min(line.allowed, line.excess) >= 0
    if price <= standard:
        assert line.excess == 0
    else:
        assert abs(line.excess - round_fen((price - standard) * Decimal(qty))) <= D("0.01")
    if ratio is None:
        assert line.fund is None
        assert line.copay is None
    else:
        assert line.fund is not None
        assert line.copay is not None
        assert line.fund + line.copay + line.excess == line.total
        assert min(line.fund, line.copay) >= 0
