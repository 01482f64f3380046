"""Clinical comprehensive evaluation: weighting schemes and product evaluations (R-K1, XJ 五(九)).

An evaluation belongs to an institution (its pharmacy and clinicians) or to a region (the region's
evaluation centre, XJ 五(九)3, kept by the bureau). Totals and grades come from
``policy.quality.evaluate``; the weights used are copied onto the evaluation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from jicai.core.tenancy import Level, Scope, ScopeError, region_prefix, use_scope
from jicai.imports.engine import ImportResult, run_import
from jicai.organizations.models import Institution
from jicai.policy import quality as rules
from jicai.quality.actions.reactions import _product
from jicai.quality.common import EVALUATION, WorkflowError, acting_institution, audited, fields_of, require
from jicai.quality.models import ClinicalEvaluation, EvaluationScheme

SCORE_FIELDS = tuple(d.value for d in rules.DIMENSIONS)
EVALUATION_FIELDS = (
    "owner_code",
    "product",
    "scheme",
    "weights",
    *SCORE_FIELDS,
    "total",
    "grade",
    "evaluator",
    "evaluated_on",
    "valid_until",
    "evidence",
)
SCHEME_FIELDS = ("owner_code", "name", *SCORE_FIELDS, "active")


@dataclass(frozen=True)
class Owner:
    institution: Institution | None
    region_code: str

    @property
    def code(self) -> str:
        return self.institution.code if self.institution else self.region_code


def resolve_owner(acting: Scope, institution_code: str = "", region_code: str = "") -> Owner:
    """Whose record it is: a hospital's own; a bureau's region (or one inside it); the operator's choice.

    Run inside ``use_scope(acting)``.
    """
    if acting.level is Level.DEPARTMENT:
        raise ScopeError(f"{acting.label} may not write evaluations")
    if acting.level is Level.INSTITUTION or (acting.is_system and institution_code):
        if region_code:
            raise WorkflowError(
                "医疗机构的评价不填地区代码", "an institution's record has no region code", field="region_code"
            )
        institution = acting_institution(acting, institution_code or None)
        return Owner(institution, institution.region_code)
    if institution_code:
        raise ScopeError(f"{acting.label} may not write an institution's evaluations")
    region = (region_code or acting.region_code).strip()
    try:
        region_prefix(region)
    except ValueError as exc:
        raise WorkflowError("地区代码应为 6 位数字", "a 6-digit region code is needed", field="region_code") from exc
    if not acting.is_system and not region.startswith(acting.region_prefix):
        raise ScopeError(f"{region} is outside {acting.label}")
    return Owner(None, region)


def _weights(values: Mapping[str, Any]) -> rules.Weights:
    try:
        return rules.Weights.from_mapping(values)
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise WorkflowError(
            "六个维度的权重须为 0 以上、最多两位小数，且合计 100%", str(exc), code="weights.invalid", field="weights"
        ) from exc


def do_save_scheme(
    acting: Scope,
    *,
    name: str,
    weights: Mapping[str, Any],
    active: bool = True,
    scheme_id: int | None = None,
    institution_code: str = "",
    region_code: str = "",
) -> EvaluationScheme:
    """Create or change a weighting scheme (weights in percent, summing to 100)."""
    require(acting, EVALUATION, "write")
    checked = _weights(weights)
    if not name.strip():
        raise WorkflowError("请填写方案名称", "a name is needed", field="name")
    with use_scope(acting), transaction.atomic():
        if scheme_id is None:
            owner = resolve_owner(acting, institution_code, region_code)
            scheme = EvaluationScheme(
                institution=owner.institution,
                region_code=owner.region_code,
                owner_code=owner.code,
                created_by_id=acting.actor_id,
            )
            old = None
        else:
            scheme = EvaluationScheme.objects.for_scope(acting).select_for_update().get(pk=scheme_id)
            old = fields_of(scheme, SCHEME_FIELDS)
        clash = EvaluationScheme.unguarded.filter(owner_code=scheme.owner_code, name=name.strip()).exclude(pk=scheme.pk)
        if clash.exists():
            raise WorkflowError(f"已有名为“{name}”的评价方案", f"a scheme {name} exists", field="name")
        scheme.name = name.strip()
        for dim, value in checked.as_dict().items():
            setattr(scheme, dim, value)
        scheme.active = active
        scheme.save()
        new = fields_of(scheme, SCHEME_FIELDS)
        audited(acting, "create" if old is None else "update", scheme, old=old, new=new)
    return scheme


@dataclass(frozen=True)
class EvaluationInput:
    product_code: str
    evaluated_on: dt.date
    scores: Mapping[str, Decimal]
    evaluator: str
    evidence: str = ""
    valid_until: dt.date | None = None
    scheme_id: int | None = None
    institution_code: str = ""
    region_code: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def weights_json(weights: rules.Weights) -> dict[str, str]:
    """Weights as stored on an evaluation: percent strings without trailing zeros ("40", "33.33")."""
    return {k: format(v.normalize(), "f") for k, v in weights.as_dict().items()}


def scheme_for(acting: Scope, scheme_id: int | None) -> EvaluationScheme | None:
    if scheme_id is None:
        return None
    scheme: EvaluationScheme | None = EvaluationScheme.objects.for_scope(acting).filter(pk=scheme_id).first()
    if scheme is None or not scheme.active:
        raise WorkflowError("评价方案不存在或已停用", f"no active scheme {scheme_id}", field="scheme")
    return scheme


def outcome_of(scores: Mapping[str, Decimal], weights: rules.Weights) -> rules.EvaluationOutcome:
    try:
        return rules.evaluate(scores, weights)
    except (ValueError, TypeError) as exc:
        raise WorkflowError(
            "各维度得分须在 0 到 100 之间，最多两位小数", str(exc), code="scores.invalid", field="scores"
        ) from exc


def _check(data: EvaluationInput) -> None:
    if not data.evaluator.strip():
        raise WorkflowError("请填写评价人", "the evaluator is needed", field="evaluator")
    if data.evaluated_on > timezone.localdate():
        raise WorkflowError("评价日期不能晚于今天", "evaluated in the future", field="evaluated_on")
    if data.valid_until is not None and data.valid_until < data.evaluated_on:
        raise WorkflowError("有效期不能早于评价日期", "valid until is before the evaluation", field="valid_until")


def _fill(evaluation: ClinicalEvaluation, data: EvaluationInput, acting: Scope) -> None:
    scheme = scheme_for(acting, data.scheme_id)
    weights = scheme.weights if scheme else rules.DEFAULT_WEIGHTS
    outcome = outcome_of(data.scores, weights)
    evaluation.product = _product(data.product_code)
    evaluation.scheme = scheme
    evaluation.weights = weights_json(weights)
    for dim in SCORE_FIELDS:
        setattr(evaluation, dim, data.scores[dim])
    evaluation.total = outcome.total
    evaluation.grade = outcome.grade
    evaluation.evaluator = data.evaluator.strip()
    evaluation.evaluated_on = data.evaluated_on
    evaluation.valid_until = data.valid_until
    evaluation.evidence = data.evidence.strip()


def _clash(evaluation: ClinicalEvaluation) -> None:
    same = ClinicalEvaluation.unguarded.filter(
        owner_code=evaluation.owner_code, product=evaluation.product, evaluated_on=evaluation.evaluated_on
    ).exclude(pk=evaluation.pk)
    if same.exists():
        raise WorkflowError(
            "同一药品同一天已有本单位的评价", "an evaluation of this product on that day exists", field="evaluated_on"
        )


def do_create_evaluation(acting: Scope, data: EvaluationInput) -> ClinicalEvaluation:
    """Record a product's evaluation: six scores, weighted total and grade (R-K1)."""
    require(acting, EVALUATION, "write")
    _check(data)
    with use_scope(acting), transaction.atomic():
        owner = resolve_owner(acting, data.institution_code, data.region_code)
        evaluation = ClinicalEvaluation(
            institution=owner.institution,
            region_code=owner.region_code,
            owner_code=owner.code,
            created_by_id=acting.actor_id,
        )
        _fill(evaluation, data, acting)
        _clash(evaluation)
        evaluation.save()
        audited(acting, "create", evaluation, new=fields_of(evaluation, EVALUATION_FIELDS))
    return evaluation


def do_update_evaluation(acting: Scope, evaluation_id: int, data: EvaluationInput) -> ClinicalEvaluation:
    """Correct an evaluation; its total and grade are recomputed with the (possibly new) scheme."""
    require(acting, EVALUATION, "write")
    _check(data)
    with use_scope(acting), transaction.atomic():
        evaluation: ClinicalEvaluation = (
            ClinicalEvaluation.objects.for_scope(acting).select_for_update().get(pk=evaluation_id)
        )
        old = fields_of(evaluation, EVALUATION_FIELDS)
        _fill(evaluation, data, acting)
        _clash(evaluation)
        new = fields_of(evaluation, EVALUATION_FIELDS)
        changed = {k: v for k, v in new.items() if old[k] != v}
        if changed:
            evaluation.save()
            audited(acting, "update", evaluation, old={k: old[k] for k in changed}, new=changed)
    return evaluation


def do_import_evaluations(
    acting: Scope, data: bytes, filename: str, *, dry_run: bool = False, load_valid: bool = False
) -> ImportResult:
    """Import evaluations (all-or-nothing unless ``load_valid``); totals and grades are computed."""
    from jicai.quality.datasets import EVALUATIONS_SPEC  # noqa: PLC0415 - the spec module imports this one

    return run_import(EVALUATIONS_SPEC, data, filename, acting, dry_run=dry_run, load_valid=load_valid)
