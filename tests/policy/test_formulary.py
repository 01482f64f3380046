"""Formulary advice (R-H6, R-H9, R-C3; XJ 五(一), 五(五)), pure tests without a database."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jicai.policy.formulary import (
    XINJIANG_FORMULARY,
    Advice,
    AdviceReason,
    FormularyAction,
    FormularyParams,
    FormularyProduct,
    SelectedDrug,
    advise_formulary,
    advise_product,
    reevaluate_at_expiry,
)
from jicai.policy.money import unit_price

D = Decimal
KEEP, SUSPEND, DROP = FormularyAction.KEEP, FormularyAction.SUSPEND, FormularyAction.DROP
SELECTED = SelectedDrug(generic_name="阿托伐他汀钙片", unit_price=D("0.1200"), is_essential=True)


def product(code: str, price: str, **flags: bool) -> FormularyProduct:
    flags.setdefault("ce_passed", False)
    return FormularyProduct(code=code, unit_price=D(price), **flags)  # type: ignore[arg-type]


def test_defaults() -> None:
    assert (
        FormularyParams(non_ce_action=DROP, pricier_action=SUSPEND, keep_essential_when_selected_not_essential=True)
        == XINJIANG_FORMULARY
    )


@pytest.mark.parametrize(
    ("item", "action", "reason"),
    [
        (product("WIN", "0.1200", ce_passed=True, is_selected=True), KEEP, AdviceReason.SELECTED),
        # a selected product that is dearer than the reference winner is still kept
        (product("WIN2", "0.3000", ce_passed=True, is_selected=True), KEEP, AdviceReason.SELECTED),
        # ① originator / reference kept, whatever the price
        (product("ORIG", "3.9000", is_originator=True), KEEP, AdviceReason.ORIGINATOR_OR_REFERENCE),
        (product("REF", "2.0000", is_reference=True), KEEP, AdviceReason.ORIGINATOR_OR_REFERENCE),
        # ② CE generic priced at or below the selected product
        (product("CE-EQ", "0.1200", ce_passed=True), KEEP, AdviceReason.CE_NOT_PRICIER),
        (product("CE-LOW", "0.1000", ce_passed=True), KEEP, AdviceReason.CE_NOT_PRICIER),
        # ③ non-CE generic, even when cheap
        (product("NCE", "0.0500"), DROP, AdviceReason.NON_CE_GENERIC),
        # ④ CE generic priced above
        (product("CE-HI", "0.1201", ce_passed=True), SUSPEND, AdviceReason.PRICIER_GENERIC),
        # ③ and ④ together: the more severe action (DROP, from ③)
        (product("NCE-HI", "0.5000"), DROP, AdviceReason.NON_CE_GENERIC),
        # R-H9 does not apply: the selected product is an essential medicine
        (product("ESS", "0.5000", is_essential=True), DROP, AdviceReason.NON_CE_GENERIC),
    ],
)
def test_xinjiang_clauses(item: FormularyProduct, action: FormularyAction, reason: AdviceReason) -> None:
    advice = advise_product(SELECTED, item)
    assert (advice.code, advice.action, advice.reason) == (item.code, action, reason)


def test_reason_texts_in_english_and_chinese() -> None:
    advice = advise_product(SELECTED, product("CE-HI", "0.1500", ce_passed=True))
    assert advice == Advice(
        code="CE-HI",
        action=SUSPEND,
        reason=AdviceReason.PRICIER_GENERIC,
        reason_en=(
            "Suspend: generic priced above the selected product"
            " (unit price 0.1500 vs selected 阿托伐他汀钙片 0.1200 yuan)."
        ),
        reason_zh="暂停使用：价格高于集采中选药品的仿制药（单价0.1500元，中选药品阿托伐他汀钙片单价0.1200元）。",
    )
    assert advise_product(SELECTED, product("N", "0.1")).reason_zh.startswith("淘汰：未通过一致性评价的仿制药")
    assert advise_product(SELECTED, product("K", "0.1", is_originator=True)).reason_en.startswith(
        "Keep: originator or reference listed drug"
    )


def test_essential_medicine_kept_when_the_selected_product_is_not_one() -> None:
    # XJ 五(五), R-H9: keep essential-medicine products even if non-CE or dearer
    selected = SelectedDrug(generic_name="X", unit_price=D("0.1200"), is_essential=False)
    advice = advise_product(selected, product("ESS", "0.5000", is_essential=True))
    assert (advice.action, advice.reason) == (KEEP, AdviceReason.ESSENTIAL_MEDICINE)
    assert advice.reason_zh.startswith("保留：中选药品非国家基本药物")
    off = FormularyParams(keep_essential_when_selected_not_essential=False)
    assert advise_product(selected, product("ESS", "0.5000", is_essential=True), off).action is DROP
    # non-essential products are not affected
    assert advise_product(selected, product("NE", "0.5000")).action is DROP


def test_suspend_or_drop_is_a_parameter() -> None:
    params = FormularyParams(non_ce_action=SUSPEND, pricier_action=DROP)
    assert advise_product(SELECTED, product("NCE", "0.0500"), params).action is SUSPEND
    assert advise_product(SELECTED, product("CE-HI", "0.5000", ce_passed=True), params).action is DROP
    # both apply: the more severe one (④ DROP) wins over ③ SUSPEND
    both = advise_product(SELECTED, product("NCE-HI", "0.5000"), params)
    assert (both.action, both.reason) == (DROP, AdviceReason.PRICIER_GENERIC)
    # a tie goes to ③
    tie = advise_product(SELECTED, product("NCE-HI", "0.5000"), FormularyParams(pricier_action=DROP))
    assert (tie.action, tie.reason) == (DROP, AdviceReason.NON_CE_GENERIC)


def test_prices_are_compared_per_unit_not_per_pack() -> None:
    # selected: 28 tablets for 3.36 yuan = 0.1200 a tablet; CE generic: 7 tablets for 0.84 yuan = 0.1200.
    # Its pack price is lower but its unit price equals the winner's, so it is kept (②).
    item = FormularyProduct(code="CE7", unit_price=unit_price(D("0.84"), 7), ce_passed=True)
    assert advise_product(SELECTED, item).action is KEEP
    dearer = FormularyProduct(code="CE7b", unit_price=unit_price(D("0.85"), 7), ce_passed=True)
    assert advise_product(SELECTED, dearer).action is SUSPEND


def test_whole_formulary_in_input_order() -> None:
    items = [
        product("ORIG", "3.9000", is_originator=True),
        product("WIN", "0.1200", ce_passed=True, is_selected=True),
        product("NCE", "0.2000"),
    ]
    result = advise_formulary(SELECTED, items)
    assert [(a.code, a.action) for a in result] == [("ORIG", KEEP), ("WIN", KEEP), ("NCE", DROP)]
    assert advise_formulary(SELECTED, []) == ()


def test_reevaluation_at_expiry_uses_the_new_selected_product() -> None:
    # R-C3: at expiry the caller refreshes is_selected and prices and calls the same rules
    items = [product("OLD", "0.1200", ce_passed=True), product("NEW", "0.0800", ce_passed=True, is_selected=True)]
    new = SelectedDrug(generic_name="阿托伐他汀钙片", unit_price=D("0.0800"), is_essential=True)
    result = reevaluate_at_expiry(new, items)
    assert [(a.code, a.action, a.reason) for a in result] == [
        ("OLD", SUSPEND, AdviceReason.PRICIER_GENERIC),
        ("NEW", KEEP, AdviceReason.SELECTED),
    ]
    assert result == advise_formulary(new, items)


def test_validation() -> None:
    with pytest.raises(ValueError, match="non-CE action"):
        FormularyParams(non_ce_action=KEEP)
    with pytest.raises(ValueError, match="pricier action"):
        FormularyParams(pricier_action=KEEP)
    with pytest.raises(ValueError, match="unique"):
        advise_formulary(SELECTED, [product("A", "1"), product("A", "2")])
    with pytest.raises(ValueError, match="selected product unit price"):
        advise_formulary(SelectedDrug("X", D(0), is_essential=False), [])
    with pytest.raises(ValueError, match="product B: unit price"):
        advise_product(SELECTED, product("B", "0"))


# --- properties ----------------------------------------------------------------------------------------

prices = st.integers(min_value=1, max_value=100_000).map(lambda n: Decimal(n).scaleb(-4))
selected_drugs = st.builds(SelectedDrug, generic_name=st.just("G"), unit_price=prices, is_essential=st.booleans())
param_sets = st.builds(
    FormularyParams,
    non_ce_action=st.sampled_from([SUSPEND, DROP]),
    pricier_action=st.sampled_from([SUSPEND, DROP]),
    keep_essential_when_selected_not_essential=st.booleans(),
)


@st.composite
def formularies(draw: st.DrawFn) -> list[FormularyProduct]:
    size = draw(st.integers(min_value=0, max_value=8))
    return [
        FormularyProduct(
            code=f"P{i}",
            unit_price=draw(prices),
            ce_passed=draw(st.booleans()),
            is_originator=draw(st.booleans()),
            is_reference=draw(st.booleans()),
            is_essential=draw(st.booleans()),
            is_selected=draw(st.booleans()),
        )
        for i in range(size)
    ]


@given(selected=selected_drugs, items=formularies(), params=param_sets)
def test_property_selected_kept_and_originator_never_dropped(
    selected: SelectedDrug, items: list[FormularyProduct], params: FormularyParams
) -> None:
    for item, advice in zip(items, advise_formulary(selected, items, params), strict=True):
        assert advice.code == item.code
        if item.is_selected:
            assert advice.action is KEEP
        if item.is_originator or item.is_reference:
            assert advice.action is not DROP
        if advice.action is not KEEP:
            assert not (item.ce_passed and item.unit_price <= selected.unit_price)


@given(selected=selected_drugs, items=formularies(), params=param_sets, data=st.data())
def test_property_advice_does_not_depend_on_input_order(
    selected: SelectedDrug, items: list[FormularyProduct], params: FormularyParams, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(items))
    by_code = {a.code: a for a in advise_formulary(selected, items, params)}
    assert {a.code: a for a in advise_formulary(selected, shuffled, params)} == by_code
