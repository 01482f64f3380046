"""Profiles → rule parameters: the shipped profiles reproduce the seeds' numbers in the rules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from jicai.policy import params
from jicai.policy.award import BATCH7_QUALIFICATION, BATCH9_MAX_WINNERS, BATCH10_MAX_WINNERS, BATCH10_QUALIFICATION
from jicai.policy.formulary import XINJIANG_FORMULARY
from jicai.policy.payment_standard import NATIONAL_PAYMENT_STANDARD
from jicai.policy.payment_terms import HENAN_PAYMENT_RULE, SHANXI_PAYMENT_RULE, due_date
from jicai.policy.prepayment import (
    CHONGQING_TRANCHES,
    JILIN_TRANCHES,
    NATIONAL_TRANCHES,
    SHANXI_TRANCHES,
    XIAN_TRANCHES,
    Acceptance,
    PrepaymentAgreement,
    evaluate_prepayment,
)
from jicai.policy.price_ratio import DEFAULT_COEFFICIENTS
from jicai.policy.profile import ProfileLibrary
from jicai.policy.settlement import CHONGQING_SETTLEMENT
from jicai.policy.surplus import SHENZHEN_2024_GRADE_TABLE, XJ_INTERNAL_SPLIT, retained_surplus
from jicai.policy.volumes import (
    CHONGQING_RATIO_RANGE,
    NATIONAL_BATCH7,
    NATIONAL_SPECIAL_ANTIMICROBIAL,
    SHANXI_RATIO_RANGE,
    agreed_volume,
)

ON = dt.date(2025, 1, 1)
LIB = ProfileLibrary()


def resolve(name: str, on: dt.date = ON):
    return LIB.resolve(name, on)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("xian", XIAN_TRANCHES),
        ("jilin", JILIN_TRANCHES),
        ("chongqing", CHONGQING_TRANCHES),
        ("shanxi", SHANXI_TRANCHES),
        ("national", NATIONAL_TRANCHES),
    ],
)
def test_prepayment_tranches_match_the_seeds(name, expected) -> None:
    assert params.tranches(resolve(name)) == expected


def test_jilin_profile_drives_the_hand_checked_schedule() -> None:
    # 10,000 tablets at 0.3400 → 3,400.00; half the volume is done on 2026-03-31, before mid-year.
    agreement = PrepaymentAgreement(dt.date(2026, 1, 1), dt.date(2026, 12, 31), Decimal(10000), Decimal("0.3400"))
    purchases = [Acceptance(dt.date(2026, 3, 31), Decimal(5000)), Acceptance(dt.date(2026, 11, 2), Decimal(5000))]
    status = evaluate_prepayment(agreement, params.tranches(resolve("jilin")), purchases, dt.date(2026, 12, 31))
    assert [(t.amount, t.fired_on) for t in status.tranches] == [
        (Decimal("1700.00"), dt.date(2026, 1, 1)),
        (Decimal("1530.00"), dt.date(2026, 3, 31)),
        (Decimal("170.00"), dt.date(2026, 11, 2)),
    ]


def test_payment_rules() -> None:
    assert params.payment_rule(resolve("henan")) == HENAN_PAYMENT_RULE
    assert params.payment_rule(resolve("shanxi")) == SHANXI_PAYMENT_RULE
    assert due_date(dt.date(2026, 1, 15), params.payment_rule(resolve("shanxi"))) == dt.date(2026, 2, 28)
    assert due_date(dt.date(2026, 1, 15), params.payment_rule(resolve("henan"))) == dt.date(2026, 2, 14)


def test_agreement_tables_and_ranges() -> None:
    national = resolve("national")
    assert params.winner_table(national) == NATIONAL_BATCH7
    assert params.winner_table(national, special=True) == NATIONAL_SPECIAL_ANTIMICROBIAL
    assert params.ratio_range(resolve("shanxi")) == SHANXI_RATIO_RANGE
    assert params.ratio_range(resolve("chongqing")) == CHONGQING_RATIO_RANGE
    assert agreed_volume(Decimal(1000), Decimal("0.65"), params.ratio_range(resolve("chongqing"))) == Decimal(650)
    with pytest.raises(ValueError, match="60%"):
        agreed_volume(Decimal(1000), Decimal("0.75"), params.ratio_range(resolve("chongqing")))


def test_award_rules_follow_the_batch_in_force() -> None:
    assert params.qualification(resolve("national", dt.date(2023, 1, 1))) == BATCH7_QUALIFICATION
    assert params.qualification(resolve("national", dt.date(2025, 1, 1))) == BATCH10_QUALIFICATION
    assert params.max_winners_table(resolve("national", dt.date(2023, 1, 1))) == BATCH9_MAX_WINNERS
    assert params.max_winners_table(resolve("national", dt.date(2025, 1, 1))) == BATCH10_MAX_WINNERS


def test_other_rule_parameters() -> None:
    assert params.settlement_params(resolve("chongqing")) == CHONGQING_SETTLEMENT
    assert params.payment_standard_params(resolve("national")) == NATIONAL_PAYMENT_STANDARD
    assert params.formulary_params(resolve("xinjiang")) == XINJIANG_FORMULARY
    assert params.internal_split(resolve("xinjiang")) == XJ_INTERNAL_SPLIT
    assert params.grade_table(resolve("national")) == SHENZHEN_2024_GRADE_TABLE
    assert retained_surplus(Decimal("1000.00"), Decimal(80), params.grade_table(resolve("national"))).grade == "B"
    assert params.overspend_params(resolve("national")).institution_share == Decimal("0.5")
    coefficients = params.price_ratio_coefficients(resolve("national"))
    for form, factor in DEFAULT_COEFFICIENTS.dosage_form_factors:
        assert coefficients.form_factor(form) == factor
    assert (coefficients.content, coefficients.fill_volume) == (
        DEFAULT_COEFFICIENTS.content,
        DEFAULT_COEFFICIENTS.fill_volume,
    )
    cap = params.cap_params(resolve("national"))
    assert cap is not None
    assert cap.cap_ratio == Decimal(1)
    assert cap.cap_substitutes is False


def test_a_region_without_a_cap(tmp_path: Path) -> None:
    (tmp_path / "nocap.toml").write_text(
        'name = "nocap"\nlevel = "province"\nparent = "national"\nregion_code = "460000"\n'
        '[[versions]]\neffective_from = "2020-01-01"\n'
        '[versions.non_selected_cap.enabled]\nvalue = false\nsource = "example; R-D2"\nconfirmed = false\n',
        encoding="utf-8",
    )
    assert params.cap_params(ProfileLibrary([tmp_path]).resolve("nocap", ON)) is None


@pytest.mark.parametrize("name", ["national", "xian", "jilin", "chongqing", "shanxi", "xinjiang", "henan"])
@pytest.mark.parametrize("on", [dt.date(2019, 6, 1), dt.date(2022, 1, 1), dt.date(2025, 1, 1)])
def test_every_shipped_profile_builds_every_rule_parameter(name: str, on: dt.date) -> None:
    profile = resolve(name, on)
    for build in (
        params.winner_table,
        params.ratio_range,
        params.tranches,
        params.payment_rule,
        params.settlement_params,
        params.payment_standard_params,
        params.cap_params,
        params.formulary_params,
        params.price_ratio_coefficients,
        params.qualification,
        params.max_winners_table,
        params.grade_table,
        params.overspend_params,
        params.internal_split,
    ):
        build(profile)
