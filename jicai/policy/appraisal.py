"""Department appraisal scores from task completion (R-H5; XJ 四.5 and 五(六)2).

XJ has the performance department appraise clinical departments "by the completion of the selected
drugs' task volumes" and the pharmacy fold the published progress into the appraisal. The seed names
no formula; this module is the reading the workspace uses, with the weights set per hospital in an
appraisal scheme (the percentages below are only the worked example of the workspace's issue).

Components, each a score from 0 to 100 computed exactly (``Fraction``):

* ``completion`` — completion of the department's targets against what is expected by now:
  ``100 × min(1, (dispensed ÷ target) ÷ expected)``, where ``expected`` is the elapsed share of the
  agreement year (1 once the year is over). A target of 0, or nothing expected yet, scores 100. No
  target on record (None) leaves the component out (see below). Dispensing is never negative here.
* ``selected_share`` — the selected products' share of the generic:
  ``100 × selected ÷ (selected + non-selected of the same generic)``; 100 when neither was used.
* ``substitute_control`` — how little the substitutes took:
  ``100 × (1 − substitutes ÷ (selected + non-selected + substitutes))``; 100 when nothing was used.

Score = Σ weightᵢ × componentᵢ ÷ Σ weightᵢ over the components that have figures, so a department
without targets is scored on the others with their weights scaled up. Rounding happens once: the
total (and each component as shown) is rounded half-up to 2 decimal places from the exact value, so
the total can differ by 0.01 from a sum of the rounded components.

Weights are percentages of the known components that must sum to exactly 100 (``parse_weights``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction

COMPLETION = "completion"
SELECTED_SHARE = "selected_share"
SUBSTITUTE_CONTROL = "substitute_control"
COMPONENTS: tuple[str, ...] = (COMPLETION, SELECTED_SHARE, SUBSTITUTE_CONTROL)

COMPONENT_LABELS: dict[str, tuple[str, str]] = {
    COMPLETION: ("任务量完成率", "completion of targets"),
    SELECTED_SHARE: ("中选药品使用占比", "selected-drug share"),
    SUBSTITUTE_CONTROL: ("同类药品占比控制", "substitute share control"),
}
"""Component → (Chinese, English) label."""

EXAMPLE_WEIGHTS: dict[str, Decimal] = {
    COMPLETION: Decimal(60),
    SELECTED_SHARE: Decimal(25),
    SUBSTITUTE_CONTROL: Decimal(15),
}
"""The worked example of the workspace's issue (completion 60 %, selected share 25 %, substitutes 15 %);
a hospital sets its own in a scheme."""

HUNDRED = Decimal(100)
_PLACES = 100  # two decimal places
_TWO_PLACES = Decimal("0.01")


class AppraisalError(ValueError):
    """Weights or figures the rule cannot use; ``message_zh`` is for users."""

    def __init__(self, message_zh: str, message_en: str) -> None:
        super().__init__(message_en)
        self.message_zh = message_zh
        self.message_en = message_en


def parse_weights(raw: Mapping[str, object]) -> dict[str, Decimal]:
    """Validated weights (percent per component, summing to exactly 100) in ``COMPONENTS`` order.

    Values may be Decimals, ints or decimal strings; a missing component weighs 0. Refused: unknown
    components, values that are not numbers, negative weights, and sums other than 100.
    """
    unknown = sorted(set(raw) - set(COMPONENTS))
    if unknown:
        raise AppraisalError(f"未知的考核指标：{'、'.join(unknown)}", f"unknown components: {', '.join(unknown)}")
    out: dict[str, Decimal] = {}
    for name in COMPONENTS:
        value = raw.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
            raise AppraisalError(f"{COMPONENT_LABELS[name][0]}的权重不是数字", f"weight of {name} is not a number")
        try:
            weight = Decimal(value)
        except InvalidOperation:
            raise AppraisalError(
                f"{COMPONENT_LABELS[name][0]}的权重不是数字", f"weight of {name} is not a number"
            ) from None
        if not weight.is_finite() or weight < 0:
            raise AppraisalError(
                f"{COMPONENT_LABELS[name][0]}的权重不能为负数", f"weight of {name} must be a non-negative number"
            )
        out[name] = weight
    total = sum(out.values(), Decimal(0))
    if total != HUNDRED:
        raise AppraisalError(
            f"各项权重之和须为 100%（现为 {total:f}%）", f"weights must sum to 100% (they sum to {total:f}%)"
        )
    return out


@dataclass(frozen=True, slots=True)
class DepartmentFigures:
    """What a department's score is computed from (quantities in item units).

    ``target_qty`` / ``dispensed_qty``: its targets and the selected dispensing toward them (summed
    over items); ``expected``: the elapsed share of the year, weighted like the targets (0 … 1);
    ``selected_qty`` / ``non_selected_qty`` / ``substitute_qty``: its use in the period by kind.
    """

    target_qty: Decimal | None
    dispensed_qty: Decimal
    expected: Decimal
    selected_qty: Decimal
    non_selected_qty: Decimal
    substitute_qty: Decimal


@dataclass(frozen=True, slots=True)
class Score:
    """A department's total and components (None: no figures for it), each rounded to 2 places."""

    total: Decimal
    components: dict[str, Decimal | None]


def _nonneg(value: Decimal) -> Fraction:
    return max(Fraction(value), Fraction(0))


def _completion(f: DepartmentFigures) -> Fraction | None:
    if f.target_qty is None:
        return None
    target, expected = _nonneg(f.target_qty), _nonneg(f.expected)
    if target == 0 or expected == 0:
        return Fraction(100)
    return 100 * min(Fraction(1), _nonneg(f.dispensed_qty) / target / expected)


def _selected_share(f: DepartmentFigures) -> Fraction:
    selected = _nonneg(f.selected_qty)
    base = selected + _nonneg(f.non_selected_qty)
    return Fraction(100) if base == 0 else 100 * selected / base


def _substitute_control(f: DepartmentFigures) -> Fraction:
    substitutes = _nonneg(f.substitute_qty)
    total = _nonneg(f.selected_qty) + _nonneg(f.non_selected_qty) + substitutes
    return Fraction(100) if total == 0 else 100 * (1 - substitutes / total)


def round2(value: Fraction) -> Decimal:
    """``value`` (≥ 0) rounded half-up to 2 decimal places, from the exact fraction."""
    scaled = value * _PLACES
    whole = (2 * scaled.numerator + scaled.denominator) // (2 * scaled.denominator)
    return (Decimal(whole) / _PLACES).quantize(_TWO_PLACES)


def component_scores(figures: DepartmentFigures) -> dict[str, Fraction | None]:
    """Each component's exact score (0 … 100); None when the department has no figures for it."""
    return {
        COMPLETION: _completion(figures),
        SELECTED_SHARE: _selected_share(figures),
        SUBSTITUTE_CONTROL: _substitute_control(figures),
    }


def score_department(figures: DepartmentFigures, weights: Mapping[str, Decimal]) -> Score:
    """The department's score under ``weights`` (validated with ``parse_weights``); module docstring."""
    checked = parse_weights(weights)
    parts = component_scores(figures)
    used = [(Fraction(checked[name]), value) for name, value in parts.items() if value is not None]
    weight_sum = sum((w for w, _ in used), Fraction(0))
    if weight_sum == 0:
        raise AppraisalError(
            "该科室没有有权重的考核指标数据（例如没有任务量）", "no weighted component has figures for this department"
        )
    total = sum((w * value for w, value in used), Fraction(0))
    return Score(
        total=round2(total / weight_sum),
        components={name: None if value is None else round2(value) for name, value in parts.items()},
    )
