"""Price-ratio rules (差比价) and the unit comparable price (R-B1)."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from jicai.policy.money import UNIT_PRICE_PLACES
from jicai.policy.price_ratio import (
    DEFAULT_COEFFICIENTS,
    DEFAULT_DOSAGE_FORM_FACTORS,
    PriceRatioCoefficients,
    Representative,
    Specification,
    comparable_unit_price,
    pack_price_from_representative,
    price_factor,
    ratio_power,
)

D = Decimal
C = DEFAULT_COEFFICIENTS
TABLET_10MG = Specification(D("10"), "tablet")
REP_28 = Representative(TABLET_10MG, 28)
Q4 = UNIT_PRICE_PLACES


# ---------------------------------------------------------------------------------------------------
# ratio_power


def test_ratio_one_is_exactly_one() -> None:
    assert ratio_power(D("1.7"), D("10"), D("10")) == 1
    assert ratio_power(D("1.7"), D("0.25"), D("0.250")) == 1
    assert str(ratio_power(D("1.7"), D("3"), D("3"))) == "1"


def test_powers_of_two_are_exact() -> None:
    assert ratio_power(D("1.7"), D("20"), D("10")) == D("1.7")
    assert ratio_power(D("1.7"), D("40"), D("10")) == D("2.89")
    assert ratio_power(D("1.7"), D("5"), D("10")) * D("1.7") == pytest.approx(D(1), abs=D("1e-26"))
    assert ratio_power(D("1.95"), D("56"), D("14")) == D("3.8025")
    assert ratio_power(D("1.9"), D("1"), D("4")) == 1 / D("3.61")


def test_coefficient_two_is_linear() -> None:
    assert ratio_power(D("2.0"), D("30"), D("10")) == D(3)
    assert ratio_power(D("2"), D("10"), D("30")) == D(1) / D(3)


def test_general_ratio_matches_the_formula() -> None:
    # 1.7 ^ log2(3) = 3 ^ log2(1.7) = 2.318...; checked against an independent float computation
    value = ratio_power(D("1.7"), D("30"), D("10"))
    assert abs(float(value) - 1.7 ** math.log2(3)) < 1e-12
    assert value.quantize(Q4) == D("2.3187")


def test_ratio_power_validation() -> None:
    with pytest.raises(ValueError, match="coefficient"):
        ratio_power(D("0"), D("1"), D("2"))
    with pytest.raises(ValueError, match="value"):
        ratio_power(D("1.7"), D("-1"), D("2"))
    with pytest.raises(ValueError, match="reference"):
        ratio_power(D("1.7"), D("1"), D("Infinity"))


# ---------------------------------------------------------------------------------------------------
# price_factor and conversions


def test_representative_factor_is_exactly_one() -> None:
    assert price_factor(TABLET_10MG, 28, REP_28, C) == 1


def test_factor_combines_all_rules() -> None:
    spec = Specification(D("20"), "dispersible_tablet")
    # content x2 -> 1.7; packs 14 vs 7 -> 1.95; form 1.2 / 1.0
    assert price_factor(spec, 14, Representative(TABLET_10MG, 7), C) == D("1.7") * D("1.95") * D("1.2")


def test_fill_volume_and_non_oral_pack_rule() -> None:
    rep = Representative(Specification(D("0.5"), None, D("5"), oral_solid=False), 5)
    spec = Specification(D("0.5"), None, D("10"), oral_solid=False)
    # volume x2 -> 1.9; packs 10 vs 5 with coefficient 2.0 -> 2
    assert price_factor(spec, 10, rep, C) == D("3.8")


def test_worked_example_comparable_unit_price() -> None:
    # Representative: 10 mg plain tablet x 28. Product: 20 mg enteric tablet x 14 at 30.00 yuan per pack.
    spec = Specification(D("20"), "enteric_tablet")
    assert price_factor(spec, 14, REP_28, C) == D("1.7") * D("1.1") / D("1.95")  # 1.7 x 1.95^-1 x 1.1
    # 30 x 1.95 / (1.7 x 1.1) / 28 = 1.117265...
    assert comparable_unit_price(D("30.00"), 14, spec, REP_28, C) == D("1.1173")
    unrounded = comparable_unit_price("30.00", 14, spec, REP_28, C, places=None)
    assert abs(unrounded - D("30") * D("1.95") / (D("1.7") * D("1.1")) / 28) < D("1e-26")
    # back from the rounded unit comparable price: 1.1173 x 28 x 1.7 x 1.1 / 1.95 = 30.000937...
    assert pack_price_from_representative(D("1.1173"), 14, spec, REP_28, C) == D("30.0009")
    assert pack_price_from_representative(D("1.1173"), 14, spec, REP_28, C, places=D("0.01")) == D("30.00")


def test_representative_converts_to_its_own_unit_price() -> None:
    assert comparable_unit_price(D("12.34"), 28, TABLET_10MG, REP_28, C) == D("0.4407")
    assert pack_price_from_representative(D("0.4407"), 28, TABLET_10MG, REP_28, C) == D("12.3396")


def test_rational_results_round_on_the_right_side_of_a_half() -> None:
    # Not an oral solid, so the pack rule is linear: 0.0001 x 14 x (115 / 14) x 1.7 = 0.01955 exactly;
    # 115 / 14 has no finite decimal, and the working noise must not round the result down to 0.0195.
    rep_other = Representative(Specification(D("1"), oral_solid=False), 14)
    spec_other = Specification(D("2"), oral_solid=False)
    assert pack_price_from_representative(D("0.0001"), 115, spec_other, rep_other, C) == D("0.0196")


def test_custom_coefficients_are_used() -> None:
    flat = PriceRatioCoefficients(D("2"), D("2"), D("2"), D("2"), (("tablet", D("1")),))
    assert price_factor(Specification(D("30"), "tablet"), 28, REP_28, flat) == D(3)


def test_specification_validation() -> None:
    with pytest.raises(ValueError, match="content"):
        Specification(D("0"))
    with pytest.raises(ValueError, match="content"):
        Specification(10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="content"):
        Specification(D("NaN"))
    with pytest.raises(ValueError, match="fill volume"):
        Specification(D("1"), fill_volume=D("0"))
    with pytest.raises(ValueError, match="fill volume"):
        Specification(D("1"), fill_volume=D("Infinity"))
    with pytest.raises(ValueError, match="representative pack size"):
        Representative(TABLET_10MG, 0)


def test_coefficients_validation() -> None:
    with pytest.raises(ValueError, match="coefficient content"):
        PriceRatioCoefficients(D("0"), D("1.9"), D("1.95"), D("2"), ())
    with pytest.raises(ValueError, match="coefficient pack_other"):
        PriceRatioCoefficients(D("1.7"), D("1.9"), D("1.95"), 2, ())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="twice"):
        PriceRatioCoefficients(D("1.7"), D("1.9"), D("1.95"), D("2"), (("tablet", D("1")), ("tablet", D("1"))))
    with pytest.raises(ValueError, match="form factor of tablet"):
        PriceRatioCoefficients(D("1.7"), D("1.9"), D("1.95"), D("2"), (("tablet", D("-1")),))
    with pytest.raises(ValueError, match="form factor of tablet"):
        PriceRatioCoefficients(D("1.7"), D("1.9"), D("1.95"), D("2"), (("tablet", 1.0),))  # type: ignore[arg-type]


def test_form_factor_lookup() -> None:
    assert C.form_factor("soft_capsule") == D("1.2")
    assert dict(DEFAULT_DOSAGE_FORM_FACTORS)["effervescent_tablet"] == D("1.3")
    with pytest.raises(ValueError, match="'granule'"):
        C.form_factor("granule")
    with pytest.raises(ValueError, match="'granule'"):
        price_factor(Specification(D("10"), "granule"), 28, REP_28, C)


def test_price_factor_mismatches() -> None:
    with pytest.raises(ValueError, match="pack size"):
        price_factor(TABLET_10MG, 0, REP_28, C)
    with pytest.raises(ValueError, match="oral solids"):
        price_factor(Specification(D("10"), "tablet", oral_solid=False), 28, REP_28, C)
    with pytest.raises(ValueError, match="fill volume"):
        price_factor(Specification(D("10"), "tablet", D("1")), 28, REP_28, C)
    with pytest.raises(ValueError, match="dosage form"):
        price_factor(Specification(D("10")), 28, REP_28, C)


def test_price_validation() -> None:
    with pytest.raises(ValueError, match="pack price"):
        comparable_unit_price(D("-1"), 28, TABLET_10MG, REP_28, C)
    with pytest.raises(ValueError, match="pack price"):
        comparable_unit_price("NaN", 28, TABLET_10MG, REP_28, C)
    with pytest.raises(ValueError, match="representative unit price"):
        pack_price_from_representative(D("-0.1"), 28, TABLET_10MG, REP_28, C)
    assert comparable_unit_price(0, 28, TABLET_10MG, REP_28, C) == 0


# ---------------------------------------------------------------------------------------------------
# Properties

forms = st.sampled_from([form for form, _factor in DEFAULT_DOSAGE_FORM_FACTORS])
contents = st.decimals(min_value=D("0.01"), max_value=D("2000"), places=2)
packs = st.integers(min_value=1, max_value=500)
unit_prices = st.decimals(min_value=D("0.0001"), max_value=D("1000"), places=4)
pack_prices = st.decimals(min_value=D("0.01"), max_value=D("100000"), places=2)


@st.composite
def products(draw: st.DrawFn) -> tuple[Specification, int, Representative]:
    """A product (spec and pack size) and its representative, with matching optional fields."""
    oral = draw(st.booleans())
    with_volume = draw(st.booleans())
    with_form = draw(st.booleans())

    def one() -> Specification:
        return Specification(
            draw(contents),
            draw(forms) if with_form else None,
            draw(contents) if with_volume else None,
            oral_solid=oral,
        )

    return one(), draw(packs), Representative(one(), draw(packs))


Product = tuple[Specification, int, Representative]


@given(product=products(), price=pack_prices)
def test_round_trip_unrounded(product: Product, price: Decimal) -> None:
    spec, pack, rep = product
    unit = comparable_unit_price(price, pack, spec, rep, C, places=None)
    back = pack_price_from_representative(unit, pack, spec, rep, C, places=None)
    assert abs(back - price) <= D("0.0001")
    assert abs(back - price) <= price * D("1e-26")


@given(product=products(), unit=unit_prices)
def test_round_trip_from_representative_within_0_0001(product: Product, unit: Decimal) -> None:
    # rep unit price -> product pack price (4 dp) -> unit comparable price (4 dp): back within 0.0001
    # whenever the pack is worth at least one representative unit (factor x rep pack >= 1); below
    # that, the pack-price rounding is magnified by 1 / (factor x rep pack).
    spec, pack, rep = product
    assume(price_factor(spec, pack, rep, C) * rep.pack_size >= 1)
    product_price = pack_price_from_representative(unit, pack, spec, rep, C)
    back = comparable_unit_price(product_price, pack, spec, rep, C)
    assert abs(back - unit) <= D("0.0001")


@given(product=products(), price=pack_prices)
def test_round_trip_from_product_rounding_bound(product: Product, price: Decimal) -> None:
    # product pack price -> unit comparable price (4 dp) -> pack price (4 dp): the unit-price rounding
    # (half of 0.0001) is magnified by factor x rep pack on the way back.
    spec, pack, rep = product
    scale = price_factor(spec, pack, rep, C) * rep.pack_size
    unit = comparable_unit_price(price, pack, spec, rep, C)
    back = pack_price_from_representative(unit, pack, spec, rep, C)
    assert abs(back - price) <= D("0.00005") * scale + D("0.00005")


@given(content=contents, form=forms, pack=packs, oral=st.booleans())
def test_factor_for_representative_is_exactly_one(content: Decimal, form: str, pack: int, oral: bool) -> None:
    spec = Specification(content, form, content, oral_solid=oral)
    assert price_factor(spec, pack, Representative(spec, pack), C) == 1
    # the same spec written with other trailing zeros is the same spec
    same = Specification(content.quantize(D("0.0001")), form, content, oral_solid=oral)
    assert price_factor(same, pack, Representative(spec, pack), C) == 1


@given(product=products(), unit=unit_prices)
def test_doubling_content_multiplies_by_the_content_factor(product: Product, unit: Decimal) -> None:
    spec, pack, rep = product
    doubled = Specification(spec.content * 2, spec.dosage_form, spec.fill_volume, oral_solid=spec.oral_solid)
    base_factor = price_factor(spec, pack, rep, C)
    doubled_factor = price_factor(doubled, pack, rep, C)
    assert (doubled_factor / base_factor).quantize(Q4) == C.content
    base_price = pack_price_from_representative(unit, pack, spec, rep, C, places=None)
    doubled_price = pack_price_from_representative(unit, pack, doubled, rep, C)
    assert doubled_price == (base_price * C.content).quantize(Q4, rounding=ROUND_HALF_UP)


@given(content=contents, pack=packs, unit=unit_prices)
def test_doubling_the_representative_content_is_exact(content: Decimal, pack: int, unit: Decimal) -> None:
    rep = Representative(Specification(content, "tablet"), pack)
    doubled = Specification(content * 2, "tablet")
    assert price_factor(doubled, pack, rep, C) == D("1.7")
    expected = (unit * pack * D("1.7")).quantize(Q4, rounding=ROUND_HALF_UP)
    assert pack_price_from_representative(unit, pack, doubled, rep, C) == expected
