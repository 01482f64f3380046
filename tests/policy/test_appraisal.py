"""Department appraisal scores (R-H5; XJ 四.5, 五(六)2): weights, components, rounding; pure, no database."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from jicai.policy.appraisal import (
    COMPLETION,
    COMPONENTS,
    EXAMPLE_WEIGHTS,
    SELECTED_SHARE,
    SUBSTITUTE_CONTROL,
    AppraisalError,
    DepartmentFigures,
    component_scores,
    parse_weights,
    round2,
    score_department,
)

D = Decimal


def figures(**kw: object) -> DepartmentFigures:
    base: dict[str, object] = {
        "target_qty": D(1000),
        "dispensed_qty": D(400),
        "expected": D("0.5"),
        "selected_qty": D(400),
        "non_selected_qty": D(100),
        "substitute_qty": D(500),
    }
    base.update(kw)
    return DepartmentFigures(**base)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------- weights


def test_weights_summing_to_100_are_kept_in_component_order() -> None:
    got = parse_weights({"substitute_control": "15", "completion": 60, "selected_share": D("25")})
    assert list(got) == list(COMPONENTS)
    assert got == {COMPLETION: D(60), SELECTED_SHARE: D(25), SUBSTITUTE_CONTROL: D(15)}


def test_a_missing_component_weighs_nothing() -> None:
    assert parse_weights({"completion": "100"}) == {COMPLETION: D(100), SELECTED_SHARE: D(0), SUBSTITUTE_CONTROL: D(0)}


def test_decimal_weights_must_sum_exactly() -> None:
    assert parse_weights({"completion": "33.34", "selected_share": "33.33", "substitute_control": "33.33"})
    with pytest.raises(AppraisalError) as err:
        parse_weights({"completion": "33.33", "selected_share": "33.33", "substitute_control": "33.33"})
    assert "99.99" in err.value.message_zh
    assert "sum to 99.99%" in err.value.message_en


@pytest.mark.parametrize(
    ("raw", "zh"),
    [
        ({"completion": 100, "attendance": 0}, "未知的考核指标：attendance"),
        ({"completion": 1.5}, "任务量完成率的权重不是数字"),
        ({"completion": True}, "任务量完成率的权重不是数字"),
        ({"completion": "六十"}, "任务量完成率的权重不是数字"),
        ({"completion": "-10", "selected_share": "110"}, "任务量完成率的权重不能为负数"),
        ({"completion": "Infinity"}, "任务量完成率的权重不能为负数"),
        ({"completion": "60", "selected_share": "30"}, "各项权重之和须为 100%（现为 90%）"),
    ],
)
def test_bad_weights_are_refused_with_a_chinese_reason(raw: dict[str, object], zh: str) -> None:
    with pytest.raises(AppraisalError) as err:
        parse_weights(raw)
    assert err.value.message_zh == zh
    assert str(err.value) == err.value.message_en


def test_the_example_weights_are_valid() -> None:
    assert sum(parse_weights(EXAMPLE_WEIGHTS).values()) == 100


# -------------------------------------------------------------------------------------- components


def test_components_by_hand() -> None:
    # given 400 of 1,000 dispensed at half-time; 400 selected, 100 non-selected, 500 substitutes
    parts = component_scores(figures())
    # then completion 0.4 ÷ 0.5 = 80 %; selected 400 / 500 = 80 %; substitutes 500 / 1,000 → 50
    assert parts == {COMPLETION: Fraction(80), SELECTED_SHARE: Fraction(80), SUBSTITUTE_CONTROL: Fraction(50)}


def test_completion_is_capped_at_100_when_ahead_of_time() -> None:
    assert component_scores(figures(dispensed_qty=D(900)))[COMPLETION] == 100


def test_completion_without_a_target_on_record_is_left_out() -> None:
    assert component_scores(figures(target_qty=None))[COMPLETION] is None


@pytest.mark.parametrize("kw", [{"target_qty": D(0)}, {"expected": D(0)}])
def test_a_zero_target_or_nothing_expected_yet_scores_full(kw: dict[str, object]) -> None:
    assert component_scores(figures(dispensed_qty=D(0), **kw))[COMPLETION] == 100


def test_returns_do_not_make_negative_figures() -> None:
    parts = component_scores(figures(dispensed_qty=D(-5), non_selected_qty=D(-100)))
    assert parts[COMPLETION] == 0
    assert parts[SELECTED_SHARE] == 100  # 400 / (400 + 0)


def test_no_use_at_all_scores_full_on_the_shares() -> None:
    parts = component_scores(figures(selected_qty=D(0), non_selected_qty=D(0), substitute_qty=D(0), dispensed_qty=D(0)))
    assert parts[SELECTED_SHARE] == 100
    assert parts[SUBSTITUTE_CONTROL] == 100


# ------------------------------------------------------------------------------------------- score


def test_score_by_hand_with_the_example_weights() -> None:
    # (60 × 80 + 25 × 80 + 15 × 50) ÷ 100 = 75.50
    got = score_department(figures(), EXAMPLE_WEIGHTS)
    assert got.total == D("75.50")
    assert got.components == {COMPLETION: D(80), SELECTED_SHARE: D(80), SUBSTITUTE_CONTROL: D(50)}


def test_without_targets_the_other_weights_are_scaled_up() -> None:
    # (25 × 80 + 15 × 50) ÷ 40 = 68.75
    got = score_department(figures(target_qty=None), EXAMPLE_WEIGHTS)
    assert got.total == D("68.75")
    assert got.components[COMPLETION] is None


def test_only_unavailable_components_weighted_is_refused() -> None:
    with pytest.raises(AppraisalError) as err:
        score_department(figures(target_qty=None), {"completion": D(100)})
    assert "没有任务量" in err.value.message_zh


def test_rounding_is_half_up_once_from_the_exact_value() -> None:
    # 123.45 of 1,000 at the year's end: 12.345 → 12.35 (half up, not to even)
    got = score_department(figures(dispensed_qty=D("123.45"), expected=D(1)), {"completion": D(100)})
    assert got.total == D("12.35")
    # a third: components and total rounded from the exact fraction
    third = score_department(
        figures(selected_qty=D(1), non_selected_qty=D(2), substitute_qty=D(0)), {"selected_share": D(100)}
    )
    assert third.total == D("33.33")
    assert third.components[SELECTED_SHARE] == D("33.33")


def test_round2_by_hand() -> None:
    assert round2(Fraction(1, 8)) == D("0.13")  # 0.125 → 0.13
    assert round2(Fraction(2, 3)) == D("0.67")
    assert str(round2(Fraction(0))) == "0.00"
    assert str(round2(Fraction(151, 2))) == "75.50"
