"""From a resolved profile to the parameters each rule takes.

The rule modules know nothing of profiles; this is the one place that reads a region's settings
and builds their parameter objects, so that a new region is a TOML file and never a code change.
"""

from __future__ import annotations

from decimal import Decimal

from jicai.policy.award import QualificationRules
from jicai.policy.caps import CapParams
from jicai.policy.formulary import FormularyAction, FormularyParams
from jicai.policy.payment_standard import PaymentStandardParams
from jicai.policy.payment_terms import DaysAfterAcceptance, EndOfNextMonth, PaymentRule
from jicai.policy.prepayment import Tranche
from jicai.policy.price_ratio import PriceRatioCoefficients
from jicai.policy.profile import DaysAfterAcceptance as DaysSetting
from jicai.policy.profile import ResolvedProfile, WinnersRow
from jicai.policy.settlement import SettlementParams
from jicai.policy.surplus import GradeBand, GradeTable, InternalSplitParams, OverspendParams
from jicai.policy.volumes import RatioRange, WinnerBand, WinnerTable


def _table(rows: list[WinnersRow]) -> WinnerTable:
    return WinnerTable(tuple(WinnerBand(r.min_winners, r.max_winners, r.share, r.term_years) for r in rows))


def winner_table(profile: ResolvedProfile, *, special: bool = False) -> WinnerTable:
    """Agreed share and term by winners (R-C1); ``special`` for the antimicrobial table."""
    key = "agreement.special_share_by_winners" if special else "agreement.share_by_winners"
    return _table(profile.get(key))


def ratio_range(profile: ResolvedProfile) -> RatioRange:
    value = profile.get("agreement.ratio_range")
    return RatioRange(value.min, value.max)


def tranches(profile: ResolvedProfile) -> tuple[Tranche, ...]:
    """Prepayment tranches and triggers (R-E2)."""
    return tuple(spec.to_tranche() for spec in profile.get("prepayment.tranches"))


def payment_rule(profile: ResolvedProfile) -> PaymentRule:
    """Supplier payment deadline rule (R-E1)."""
    value = profile.get("supplier_payment.rule")
    if isinstance(value, DaysSetting):
        return DaysAfterAcceptance(value.days)
    return EndOfNextMonth()


def settlement_params(profile: ResolvedProfile) -> SettlementParams:
    """Monitoring, settlement and reserve (R-E3)."""
    return SettlementParams(
        monitoring_months=profile.get("settlement.monitoring_months"),
        settlement_months=profile.get("settlement.settlement_months"),
        reserve_share=profile.get("settlement.reserve_share"),
    )


def payment_standard_params(profile: ResolvedProfile) -> PaymentStandardParams:
    """Payment standard transition and caps (R-F1–F5)."""
    return PaymentStandardParams(
        threshold_multiple=profile.get("payment_standard.threshold_multiple"),
        first_year_cut=profile.get("payment_standard.first_year_cut"),
        transition_years=profile.get("payment_standard.transition_years"),
        non_ce_cap_at_once=profile.get("payment_standard.non_ce_cap"),
    )


def cap_params(profile: ResolvedProfile) -> CapParams | None:
    """The non-selected cap (R-D2); None where the region does not cap."""
    if not profile.get("non_selected_cap.enabled"):
        return None
    return CapParams(
        cap_ratio=profile.get("non_selected_cap.ratio"),
        cap_substitutes=profile.get("non_selected_cap.substitutes_capped"),
    )


def formulary_params(profile: ResolvedProfile) -> FormularyParams:
    """Formulary advice actions (R-H6, R-H9)."""
    return FormularyParams(
        non_ce_action=FormularyAction(profile.get("formulary.non_ce_action")),
        pricier_action=FormularyAction(profile.get("formulary.pricier_action")),
        keep_essential_when_selected_not_essential=profile.get("formulary.keep_essential"),
    )


def price_ratio_coefficients(profile: ResolvedProfile) -> PriceRatioCoefficients:
    """Price-ratio coefficients (R-B1; unconfirmed by default)."""
    factors: dict[str, Decimal] = profile.get("price_ratio.dosage_form_factors")
    return PriceRatioCoefficients(
        content=profile.get("price_ratio.content_factor"),
        fill_volume=profile.get("price_ratio.fill_factor"),
        pack_oral_solid=profile.get("price_ratio.pack_factor_oral"),
        pack_other=profile.get("price_ratio.pack_factor_other"),
        dosage_form_factors=tuple(sorted(factors.items())),
    )


def qualification(profile: ResolvedProfile) -> QualificationRules:
    """Routes to qualify as a winner (R-B2)."""
    value = profile.get("award.qualification")
    return QualificationRules(
        ratio_to_lowest=value.ratio_to_lowest,
        absolute_max=value.absolute_max,
        cut_vs_max_valid=value.cut_vs_max_valid,
    )


def max_winners_table(profile: ResolvedProfile) -> tuple[int, ...]:
    """Maximum winners for 1…15 and ≥16 qualified bidders (R-B2)."""
    return tuple(profile.get("award.max_winners"))


def grade_table(profile: ResolvedProfile) -> GradeTable:
    """Retained share of the surplus by appraisal grade (R-G1)."""
    return GradeTable(
        tuple(GradeBand(r.grade, r.min_points, r.share, r.inclusive) for r in profile.get("surplus.grade_table"))
    )


def overspend_params(profile: ResolvedProfile) -> OverspendParams:
    """The institution's share of a reasonable overspend (R-G1)."""
    return OverspendParams(institution_share=profile.get("surplus.overspend_institution_share"))


def internal_split(profile: ResolvedProfile) -> InternalSplitParams:
    """The hospital's internal split of retained funds (R-G3)."""
    value = profile.get("surplus.internal_split")
    return InternalSplitParams(value.prescribers, value.pharmacy, value.institution)
