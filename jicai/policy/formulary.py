"""Hospital formulary advice for the products of a selected generic (R-H6, R-H9, R-C3).

XJ 五(一) recommends, for the hospital formulary (医院药品目录) once a generic has a selected product:
① keep the reference / originator drug; ② keep CE generics priced at or below the selected product;
③ suspend or drop non-CE generics; ④ suspend or drop generics priced above the selected product.
XJ 五(五) adds: when the selected product is not an essential medicine, keep the formulary's
essential-medicine products (R-H9). The text says "可考虑" (may consider): the result is advice for
the pharmacy and therapeutics committee, not a decision.

Prices are compared per minimum unit (``unit_price``, see ``money.unit_price``), never per pack. For
products of another strength the caller passes the comparable unit price (差比价) in ``unit_price``.

Precedence, first match wins: the selected product itself → KEEP; originator / reference → KEEP
(①); essential medicine while the selected product is not one → KEEP (R-H9, when enabled); then for a
generic the more severe of ③ (non-CE) and ④ (priced above), ③ on a tie; else KEEP (②).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from jicai.policy.money import to_decimal


class FormularyAction(StrEnum):
    """What to do with a product in the hospital formulary; ordered by severity."""

    KEEP = "keep"
    SUSPEND = "suspend"  # 暂停使用: off the formulary for now, may come back at re-evaluation
    DROP = "drop"  # 淘汰: removed from the formulary


_SEVERITY = {FormularyAction.KEEP: 0, FormularyAction.SUSPEND: 1, FormularyAction.DROP: 2}


class AdviceReason(StrEnum):
    """Why the advice was given; each maps to one clause of XJ 五(一) / 五(五)."""

    SELECTED = "selected"
    ORIGINATOR_OR_REFERENCE = "originator_or_reference"  # XJ 五(一)①
    CE_NOT_PRICIER = "ce_not_pricier"  # XJ 五(一)②
    NON_CE_GENERIC = "non_ce_generic"  # XJ 五(一)③
    PRICIER_GENERIC = "pricier_generic"  # XJ 五(一)④
    ESSENTIAL_MEDICINE = "essential_medicine"  # XJ 五(五), R-H9


@dataclass(frozen=True, slots=True)
class FormularyParams:
    """The hospital's choice between suspend and drop for clauses ③ and ④, and whether R-H9 applies.

    Defaults: a non-CE generic is dropped (its quality is not shown equivalent, ③); a CE generic
    priced above the selected product is suspended (its quality is equivalent; only the price is the
    problem, ④, and the price may fall by the next re-evaluation).
    """

    non_ce_action: FormularyAction = FormularyAction.DROP
    pricier_action: FormularyAction = FormularyAction.SUSPEND
    keep_essential_when_selected_not_essential: bool = True

    def __post_init__(self) -> None:
        for name, action in (("non-CE", self.non_ce_action), ("pricier", self.pricier_action)):
            if action is FormularyAction.KEEP:
                raise ValueError(f"the {name} action must be suspend or drop (XJ 五(一) ③④)")


XINJIANG_FORMULARY = FormularyParams()
"""XJ 五(一) and 五(五) with the defaults above: non-CE → DROP, pricier CE → SUSPEND, keep essential drugs."""


@dataclass(frozen=True, slots=True)
class SelectedDrug:
    """The selected product the formulary is measured against (unit price per minimum unit)."""

    generic_name: str
    unit_price: Decimal
    is_essential: bool


@dataclass(frozen=True, slots=True)
class FormularyProduct:
    """One product of the generic in the hospital formulary (unit price per minimum unit)."""

    code: str
    unit_price: Decimal
    ce_passed: bool
    is_originator: bool = False
    is_reference: bool = False
    is_essential: bool = False
    is_selected: bool = False


@dataclass(frozen=True, slots=True)
class Advice:
    """Advice for one product, with the reason in English and Chinese."""

    code: str
    action: FormularyAction
    reason: AdviceReason
    reason_en: str
    reason_zh: str


_ACTION_EN = {FormularyAction.KEEP: "Keep", FormularyAction.SUSPEND: "Suspend", FormularyAction.DROP: "Drop"}
_ACTION_ZH = {FormularyAction.KEEP: "保留", FormularyAction.SUSPEND: "暂停使用", FormularyAction.DROP: "淘汰"}
_WHY_EN = {
    AdviceReason.SELECTED: "the selected (winning) product",
    AdviceReason.ORIGINATOR_OR_REFERENCE: "originator or reference listed drug",
    AdviceReason.CE_NOT_PRICIER: "generic that passed consistency evaluation, priced at or below the selected product",
    AdviceReason.NON_CE_GENERIC: "generic that has not passed consistency evaluation",
    AdviceReason.PRICIER_GENERIC: "generic priced above the selected product",
    AdviceReason.ESSENTIAL_MEDICINE: "essential medicine, kept because the selected product is not one",
}
_WHY_ZH = {
    AdviceReason.SELECTED: "集采中选药品",
    AdviceReason.ORIGINATOR_OR_REFERENCE: "原研药/参比制剂",
    AdviceReason.CE_NOT_PRICIER: "通过一致性评价且价格低于或等于中选药品的仿制药",
    AdviceReason.NON_CE_GENERIC: "未通过一致性评价的仿制药",
    AdviceReason.PRICIER_GENERIC: "价格高于集采中选药品的仿制药",
    AdviceReason.ESSENTIAL_MEDICINE: "中选药品非国家基本药物，保留国家基本药物品规",
}


def _advice(product: FormularyProduct, selected: SelectedDrug, action: FormularyAction, reason: AdviceReason) -> Advice:
    own, ref = to_decimal(product.unit_price), to_decimal(selected.unit_price)
    return Advice(
        code=product.code,
        action=action,
        reason=reason,
        reason_en=(
            f"{_ACTION_EN[action]}: {_WHY_EN[reason]} "
            f"(unit price {own:f} vs selected {selected.generic_name} {ref:f} yuan)."
        ),
        reason_zh=f"{_ACTION_ZH[action]}：{_WHY_ZH[reason]}（单价{own:f}元，中选药品{selected.generic_name}单价{ref:f}元）。",
    )


def advise_product(
    selected: SelectedDrug, product: FormularyProduct, params: FormularyParams = XINJIANG_FORMULARY
) -> Advice:
    """Formulary advice for one product of the selected generic (R-H6, R-H9); see the module docstring.

    Depends only on the product and the selected drug, so a list's advice never depends on its order.
    """
    if product.unit_price <= 0:
        raise ValueError(f"product {product.code}: unit price must be positive")
    if product.is_selected:
        return _advice(product, selected, FormularyAction.KEEP, AdviceReason.SELECTED)
    if product.is_originator or product.is_reference:
        return _advice(product, selected, FormularyAction.KEEP, AdviceReason.ORIGINATOR_OR_REFERENCE)
    if params.keep_essential_when_selected_not_essential and product.is_essential and not selected.is_essential:
        return _advice(product, selected, FormularyAction.KEEP, AdviceReason.ESSENTIAL_MEDICINE)
    findings: list[tuple[FormularyAction, AdviceReason]] = []
    if not product.ce_passed:
        findings.append((params.non_ce_action, AdviceReason.NON_CE_GENERIC))
    if product.unit_price > selected.unit_price:
        findings.append((params.pricier_action, AdviceReason.PRICIER_GENERIC))
    if not findings:
        return _advice(product, selected, FormularyAction.KEEP, AdviceReason.CE_NOT_PRICIER)
    # most severe first; on a tie the earlier clause (③ before ④) wins because max() keeps the first
    action, reason = max(findings, key=lambda finding: _SEVERITY[finding[0]])
    return _advice(product, selected, action, reason)


def advise_formulary(
    selected: SelectedDrug, products: Iterable[FormularyProduct], params: FormularyParams = XINJIANG_FORMULARY
) -> tuple[Advice, ...]:
    """Advice for each of the hospital's products of the selected generic, in input order (R-H6, R-H9).

    ``selected`` is the product prices are measured against; with several winners pass the one the
    hospital buys (or the dearest, to be lenient). Product codes must be unique.
    """
    if selected.unit_price <= 0:
        raise ValueError("selected product unit price must be positive")
    items = tuple(products)
    codes = [p.code for p in items]
    if len(set(codes)) != len(codes):
        raise ValueError("product codes must be unique")
    return tuple(advise_product(selected, product, params) for product in items)


def reevaluate_at_expiry(
    new_selected: SelectedDrug, products: Iterable[FormularyProduct], params: FormularyParams = XINJIANG_FORMULARY
) -> tuple[Advice, ...]:
    """Re-evaluate the formulary when the agreement expires (R-C3, R-H6; XJ 五(一) "协议期满后…评价、遴选").

    This is ``advise_formulary`` with the new selected product: the caller must refresh each product's
    ``is_selected`` flag (last period's winner may have lost) and its current unit price first.
    """
    return advise_formulary(new_selected, products, params)
