"""Quality problems: register, route to the distributor and, when flagged, the regulator (R-J1, XJ 五(八)1).

Status moves follow ``policy.quality.TRANSITIONS`` (open → with distributor → with regulator →
resolved / closed). Registering a problem also tells the supplier credit file (``credit``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from jicai.core.tenancy import Level, Scope, ScopeError, use_scope
from jicai.imports.engine import ImportResult, run_import
from jicai.policy import quality as rules
from jicai.quality import credit, queries
from jicai.quality.actions.reactions import _product, next_number
from jicai.quality.common import QUALITY_PROBLEM, WorkflowError, acting_institution, audited, fields_of, require
from jicai.quality.models import ProblemStatus, QualityProblem

PROBLEM_FIELDS = (
    "institution",
    "problem_no",
    "product",
    "lot_number",
    "description",
    "found_on",
    "reported_by",
    "distributor",
    "needs_regulator",
    "status",
)
EDITABLE = ("product", "lot_number", "description", "found_on", "reported_by", "distributor", "needs_regulator")


@dataclass(frozen=True)
class ProblemInput:
    product_code: str
    description: str
    found_on: dt.date
    reported_by: str
    lot_number: str = ""
    distributor: str = ""
    needs_regulator: bool = False
    problem_no: str = ""
    institution_code: str = ""


def _check(data: ProblemInput) -> None:
    if not data.description.strip() or not data.reported_by.strip():
        raise WorkflowError("请填写问题描述和报告人", "description and reporter are required", field="description")
    if data.found_on > timezone.localdate():
        raise WorkflowError("发现日期不能晚于今天", "found in the future", field="found_on")


def _writer(acting: Scope) -> None:
    require(acting, QUALITY_PROBLEM, "write")
    if acting.level in (Level.REGION, Level.DEPARTMENT):
        raise ScopeError(f"{acting.label} may not register quality problems")


def do_create_problem(acting: Scope, data: ProblemInput) -> QualityProblem:
    """Register a quality problem; the distributor defaults to the one that last delivered the product
    to the institution (purchase facts)."""
    _writer(acting)
    _check(data)
    with use_scope(acting), transaction.atomic():
        institution = acting_institution(acting, data.institution_code or None)
        number = data.problem_no.strip() or next_number(QualityProblem, institution, "problem_no", "ZL", data.found_on)
        if QualityProblem.unguarded.filter(institution=institution, problem_no=number).exists():
            raise WorkflowError(f"问题编号 {number} 已存在", f"problem {number} exists", field="problem_no")
        product = _product(data.product_code)
        distributor = data.distributor.strip() or queries.distributor_for(acting, institution.code, product.code)
        problem = QualityProblem(
            institution=institution,
            problem_no=number,
            product=product,
            lot_number=data.lot_number.strip(),
            description=data.description.strip(),
            found_on=data.found_on,
            reported_by=data.reported_by.strip(),
            distributor=distributor,
            needs_regulator=data.needs_regulator,
            created_by_id=acting.actor_id,
        )
        problem.save()
        audited(acting, "create", problem, new=fields_of(problem, PROBLEM_FIELDS))
        _credit(acting, problem)
    return problem


def _credit(acting: Scope, problem: QualityProblem) -> None:
    reference = credit.quality_problem_credit_event(acting, problem)
    if reference:
        problem.credit_event = reference[:60]
        problem.save(update_fields=["credit_event", "updated_at"])
        audited(acting, "credit_event", problem, new={"credit_event": problem.credit_event})


def _get(acting: Scope, problem_id: int) -> QualityProblem:
    _writer(acting)
    problem: QualityProblem = (
        QualityProblem.objects.for_scope(acting).select_for_update().select_related("product").get(pk=problem_id)
    )
    return problem


def do_update_problem(acting: Scope, problem_id: int, data: ProblemInput) -> QualityProblem:
    """Correct a problem's details while it is not resolved or closed."""
    _check(data)
    with use_scope(acting), transaction.atomic():
        problem = _get(acting, problem_id)
        if rules.is_final(problem.status):
            raise WorkflowError("已解决或已关闭的问题不能修改", "a resolved or closed problem cannot be changed")
        old = fields_of(problem, EDITABLE)
        problem.product = _product(data.product_code)
        problem.lot_number = data.lot_number.strip()
        problem.description = data.description.strip()
        problem.found_on = data.found_on
        problem.reported_by = data.reported_by.strip()
        problem.distributor = data.distributor.strip() or problem.distributor
        problem.needs_regulator = data.needs_regulator or problem.status == ProblemStatus.WITH_REGULATOR
        new = fields_of(problem, EDITABLE)
        changed = {k: v for k, v in new.items() if old[k] != v}
        if changed:
            problem.save()
            audited(acting, "update", problem, old={k: old[k] for k in changed}, new=changed)
    return problem


def _move(acting: Scope, problem: QualityProblem, target: ProblemStatus, action: str, **fields: object) -> None:
    if not rules.can_move(problem.status, target):
        raise WorkflowError(
            f"当前状态“{problem.get_status_display()}”不能转为“{target.label}”",
            f"cannot go from {problem.status} to {target}",
        )
    old = {"status": problem.status, **{k: getattr(problem, k) for k in fields}}
    problem.status = target
    for k, v in fields.items():
        setattr(problem, k, v)
    problem.save()
    audited(acting, action, problem, old=old, new={"status": target, **fields})


def do_route_to_distributor(
    acting: Scope, problem_id: int, *, on: dt.date | None = None, distributor: str = "", reply: str = ""
) -> QualityProblem:
    """Send the problem back to the distributor (named here, on the record, or from the purchase facts)."""
    with use_scope(acting), transaction.atomic():
        problem = _get(acting, problem_id)
        name = (
            distributor.strip()
            or problem.distributor
            or queries.distributor_for(acting, problem.institution.code, problem.product.code)
        )
        if not name:
            raise WorkflowError("请填写配送企业名称", "the distributor is unknown", field="distributor")
        _move(
            acting,
            problem,
            ProblemStatus.WITH_DISTRIBUTOR,
            "route_distributor",
            distributor=name,
            distributor_notified_on=on or timezone.localdate(),
            distributor_reply=reply.strip() or problem.distributor_reply,
        )
    return problem


def do_route_to_regulator(
    acting: Scope, problem_id: int, *, reference: str, on: dt.date | None = None
) -> QualityProblem:
    """Report the problem to the drug regulator (药品监督管理部门), with its reference number."""
    if not reference.strip():
        raise WorkflowError("请填写药监部门受理编号", "the regulator's reference is needed", field="reference")
    with use_scope(acting), transaction.atomic():
        problem = _get(acting, problem_id)
        _move(
            acting,
            problem,
            ProblemStatus.WITH_REGULATOR,
            "route_regulator",
            needs_regulator=True,
            regulator_notified_on=on or timezone.localdate(),
            regulator_reference=reference.strip(),
        )
    return problem


def do_resolve_problem(
    acting: Scope, problem_id: int, *, resolution: str, on: dt.date | None = None, reply: str = ""
) -> QualityProblem:
    """Record how the problem was resolved (returned, replaced, recalled …)."""
    if not resolution.strip():
        raise WorkflowError("请填写处理结果", "a resolution is needed", field="resolution")
    with use_scope(acting), transaction.atomic():
        problem = _get(acting, problem_id)
        if problem.needs_regulator and problem.status != ProblemStatus.WITH_REGULATOR:
            raise WorkflowError(
                "该问题需报告药监部门，请先登记报告药监部门",
                "the problem is flagged for the regulator: route it there first",
            )
        _move(
            acting,
            problem,
            ProblemStatus.RESOLVED,
            "resolve",
            resolution=resolution.strip(),
            resolved_on=on or timezone.localdate(),
            distributor_reply=reply.strip() or problem.distributor_reply,
        )
    return problem


def do_close_problem(acting: Scope, problem_id: int, *, reason: str, on: dt.date | None = None) -> QualityProblem:
    """Close a problem without resolution (unfounded, duplicate …), with the reason."""
    if not reason.strip():
        raise WorkflowError("请填写关闭理由", "a reason is needed", field="reason")
    with use_scope(acting), transaction.atomic():
        problem = _get(acting, problem_id)
        _move(
            acting,
            problem,
            ProblemStatus.CLOSED,
            "close",
            resolution=reason.strip(),
            resolved_on=on or timezone.localdate(),
        )
    return problem


def do_import_problems(
    acting: Scope, data: bytes, filename: str, *, dry_run: bool = False, load_valid: bool = False
) -> ImportResult:
    """Import problems (all-or-nothing unless ``load_valid``); new ones go to the credit file too."""
    from jicai.quality.datasets import PROBLEMS_SPEC  # noqa: PLC0415 - the spec module imports this one

    created: list[tuple[int, str]] = []
    with transaction.atomic():
        result = run_import(
            PROBLEMS_SPEC, data, filename, acting, dry_run=dry_run, load_valid=load_valid, options={"created": created}
        )
        if result.status in ("applied", "partial") and created:
            with use_scope(acting):
                numbers = [n for _, n in created]
                for problem in QualityProblem.objects.for_scope(acting).filter(problem_no__in=numbers, credit_event=""):
                    if (problem.institution_id, problem.problem_no) in created:
                        _credit(acting, problem)
    return result
