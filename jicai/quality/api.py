"""The quality registers' API under /api/v1/quality/ (R-J1, R-J2, R-K1), in the caller's tenant scope.

Lists take the same filters as the pages (``q``, ``status``, ``product`` …, ``sort``) with
``page`` / ``page_size``; records outside the caller's territory, and registers the role may not
read, answer 404. A refused step answers 400 with ``code``, ``field``, ``message_zh`` and ``message_en``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from functools import wraps
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import File, Form, Router, Schema
from ninja.errors import HttpError
from ninja.files import UploadedFile
from ninja.responses import Status

from jicai.core.tenancy import Scope, use_scope
from jicai.imports.engine import ImportDenied, ImportResult
from jicai.policy import quality as rules
from jicai.programme.models import Item
from jicai.quality import actions, exports, queries
from jicai.quality.common import ADVERSE_REACTION, EVALUATION, QUALITY_PROBLEM, WorkflowError
from jicai.quality.datasets import EVALUATIONS_SPEC, PROBLEMS_SPEC, REACTIONS_SPEC
from jicai.quality.models import AdverseReaction, ClinicalEvaluation, ClusterSignal, QualityProblem, Suspension

router = Router(tags=["quality"])
MAX_PAGE_SIZE = 500


class ErrorOut(Schema):
    code: str
    field: str = ""
    message_zh: str
    message_en: str


def _scope(request: HttpRequest, resource: str, verb: str = "read") -> Scope:
    user = request.auth  # type: ignore[attr-defined]
    try:
        scope: Scope = user.scope()
    except Exception as exc:
        raise HttpError(403, "account has no valid territory") from exc
    if not scope.can(resource, verb):
        if verb != "read" and scope.can(resource, "read"):
            raise HttpError(403, f"{scope.label} may not {verb} {resource}")
        raise HttpError(404, "not found")
    return scope


def handled(view: Callable[..., Any]) -> Callable[..., Any]:
    """A refused step → 400 with the Chinese and English reasons; a record out of reach → 404."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except WorkflowError as exc:
            return Status(
                400,
                {
                    "code": exc.code or "workflow",
                    "field": exc.field,
                    "message_zh": exc.message_zh,
                    "message_en": exc.message_en,
                },
            )
        except ObjectDoesNotExist:
            return Status(
                404,
                {
                    "code": "record.not_found",
                    "field": "",
                    "message_zh": "记录不存在或不在您的权限范围内",
                    "message_en": "No such record in your scope",
                },
            )

    return wrapper


def _page(
    request: HttpRequest, listing: queries.Listing, qs: Any, out: Callable[[Any], dict[str, Any]]
) -> dict[str, Any]:
    try:
        page = max(int(request.GET.get("page", 1)), 1)
        size = max(1, min(int(request.GET.get("page_size", 100)), MAX_PAGE_SIZE))
    except ValueError as exc:
        raise HttpError(400, "page and page_size are whole numbers") from exc
    qs, active, sort = listing.apply(qs, request.GET)
    count = qs.count()
    rows = list(qs[(page - 1) * size : page * size])
    return {
        "count": count,
        "page": page,
        "page_size": size,
        "filters": active,
        "sort": sort,
        "results": [out(r) for r in rows],
    }


class ListOut(Schema):
    count: int
    page: int
    page_size: int
    filters: dict[str, str]
    sort: str
    results: list[dict[str, Any]]


def _file(request: HttpRequest, name: str, columns: Any, objects: Any, spec: Any = None) -> HttpResponse:
    fmt = request.GET.get("format", "xlsx")
    if fmt not in exports.FORMATS:
        raise HttpError(400, "format must be xlsx or csv")
    data = exports.write(fmt, name, tuple(columns), objects, spec=spec)
    response = HttpResponse(data, content_type=exports.FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="{name}-{timezone.localdate():%Y%m%d}.{fmt}"'
    return response


class ImportOut(Schema):
    dataset: str
    status: str
    total_rows: int
    created: int
    updated: int
    unchanged: int
    rejected: int
    run_id: int | None
    issues: list[dict[str, Any]]


def _import_out(result: ImportResult) -> dict[str, Any]:
    return {
        "dataset": result.dataset,
        "status": result.status,
        "total_rows": result.total_rows,
        "created": result.created,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "rejected": result.rejected,
        "run_id": result.run_id,
        "issues": [i.__dict__ for i in result.issues],
    }


def _run_import(
    action: Callable[..., ImportResult], scope: Scope, file: UploadedFile, dry_run: bool, load_valid: bool
) -> Any:
    try:
        result = action(scope, file.read(), file.name or "upload", dry_run=dry_run, load_valid=load_valid)
    except ImportDenied as exc:
        raise HttpError(404, "not found") from exc
    return Status(200, _import_out(result))


# ------------------------------------------------------------------------------------------------
# adverse reactions


def reaction_out(r: AdverseReaction) -> dict[str, Any]:
    return {
        "id": r.pk,
        "report_no": r.report_no,
        "institution_code": r.institution.code,
        "department_code": r.department.code if r.department else "",
        "report_date": r.report_date.isoformat(),
        "onset_date": r.onset_date.isoformat() if r.onset_date else None,
        "product_code": r.product.code,
        "generic_name": r.product.generic_name,
        "is_selected": r.is_selected,
        "lot_number": r.lot_number,
        "reaction": r.reaction,
        "is_new": r.is_new,
        "is_serious": r.is_serious,
        "outcome": r.outcome,
        "reporter": r.reporter,
    }


class ReactionIn(Schema):
    report_date: dt.date
    product_code: str
    reaction: str
    reporter: str
    onset_date: dt.date | None = None
    lot_number: str = ""
    is_new: bool = False
    is_serious: bool = False
    outcome: str = "unknown"
    department_code: str = ""
    report_no: str = ""
    institution_code: str = ""

    def to_input(self) -> actions.ReactionInput:
        return actions.ReactionInput(**self.dict())


@router.get("/adverse-reactions", response=ListOut)
def list_reactions(request: HttpRequest) -> dict[str, Any]:
    """Reports (selected products first, then newest); filters: q, institution, department, product, lot,
    outcome, serious, new, selected, date_from, date_to; sort: report_date, onset_date, product …"""
    scope = _scope(request, ADVERSE_REACTION)
    return _page(request, queries.REACTIONS, queries.reactions(scope), reaction_out)


@router.get("/adverse-reactions/export")
def export_reactions(request: HttpRequest) -> HttpResponse:
    scope = _scope(request, ADVERSE_REACTION, "export")
    qs, _a, _s = queries.REACTIONS.apply(queries.reactions(scope), request.GET)
    return _file(request, "adverse-reactions", exports.spec_columns(REACTIONS_SPEC), qs, REACTIONS_SPEC)


@router.post("/adverse-reactions/import", response={200: ImportOut})
def import_reactions(
    request: HttpRequest, file: File[UploadedFile], dry_run: Form[bool] = False, load_valid: Form[bool] = False
) -> Any:
    scope = _scope(request, ADVERSE_REACTION, "import")
    return _run_import(actions.do_import_reactions, scope, file, dry_run, load_valid)


@router.get("/adverse-reactions/{report_id}", response={200: dict[str, Any], 404: ErrorOut})
@handled
def get_reaction(request: HttpRequest, report_id: int) -> Any:
    scope = _scope(request, ADVERSE_REACTION)
    with use_scope(scope):
        report = queries.reactions(scope).select_related("institution", "department", "product").get(pk=report_id)
        signals = [s.pk for s in queries.signals(scope).filter(product=report.product) if report.pk in s.report_ids]
    return Status(200, {**reaction_out(report), "signals": signals})


@router.post("/adverse-reactions", response={201: dict[str, Any], 400: ErrorOut, 404: ErrorOut})
@handled
def create_reaction(request: HttpRequest, payload: ReactionIn) -> Any:
    scope = _scope(request, ADVERSE_REACTION, "write")
    report = actions.do_create_reaction(scope, payload.to_input())
    return Status(201, reaction_out(report))


@router.put("/adverse-reactions/{report_id}", response={200: dict[str, Any], 400: ErrorOut, 404: ErrorOut})
@handled
def update_reaction(request: HttpRequest, report_id: int, payload: ReactionIn) -> Any:
    scope = _scope(request, ADVERSE_REACTION, "write")
    report = actions.do_update_reaction(scope, report_id, payload.to_input())
    return Status(200, reaction_out(report))


# ------------------------------------------------------------------------------------------------
# cluster signals and suspensions


def signal_out(s: ClusterSignal) -> dict[str, Any]:
    return {
        "id": s.pk,
        "institution_code": s.institution.code if s.institution else "",
        "region_code": s.region_code,
        "regional": s.institution_id is None,
        "product_code": s.product.code,
        "generic_name": s.product.generic_name,
        "lot_number": s.lot_number,
        "first_date": s.first_date.isoformat(),
        "last_date": s.last_date.isoformat(),
        "report_count": s.report_count,
        "serious_count": s.serious_count,
        "new_count": s.new_count,
        "death_count": s.death_count,
        "institution_count": s.institution_count,
        "triggers": s.triggers,
        "params": s.params,
        "status": s.status,
        "merged_into": s.merged_into_id,
        "conclusion": s.conclusion,
    }


def suspension_out(s: Suspension) -> dict[str, Any]:
    return {
        "id": s.pk,
        "level": s.level,
        "institution_code": s.institution.code if s.institution else "",
        "region_code": s.region_code,
        "product_code": s.product.code,
        "lot_number": s.lot_number,
        "signal": s.signal_id,
        "reason": s.reason,
        "status": s.status,
        "effective_from": s.effective_from.isoformat(),
        "until": s.until.isoformat() if s.until else None,
        "lifted_on": s.lifted_on.isoformat() if s.lifted_on else None,
        "in_effect_today": s.in_effect(timezone.localdate()),
    }


@router.get("/signals", response=ListOut)
def list_signals(request: HttpRequest) -> dict[str, Any]:
    """Cluster signals; filters: status, level (institution / region), product, lot, institution, q."""
    scope = _scope(request, ADVERSE_REACTION)
    return _page(request, queries.SIGNALS, queries.signals(scope), signal_out)


@router.get("/signals/export")
def export_signals(request: HttpRequest) -> HttpResponse:
    scope = _scope(request, ADVERSE_REACTION, "export")
    qs, _a, _s = queries.SIGNALS.apply(queries.signals(scope), request.GET)
    return _file(request, "signals", exports.SIGNAL_COLUMNS, qs)


class DetectOut(Schema):
    created: int
    updated: int
    reopened: int
    merged: int
    unchanged: int


@router.post("/signals/detect", response={200: DetectOut, 400: ErrorOut, 404: ErrorOut})
@handled
def detect_signals(request: HttpRequest) -> Any:
    """Re-run cluster detection over the caller's territory (idempotent)."""
    scope = _scope(request, ADVERSE_REACTION)
    outcome = actions.do_detect_clusters(scope)
    return Status(200, {k: getattr(outcome, k) for k in ("created", "updated", "reopened", "merged", "unchanged")})


@router.get("/signals/{signal_id}", response={200: dict[str, Any], 404: ErrorOut})
@handled
def get_signal(request: HttpRequest, signal_id: int) -> Any:
    scope = _scope(request, ADVERSE_REACTION)
    with use_scope(scope):
        signal = queries.signals(scope).select_related("institution", "product").get(pk=signal_id)
        reports = [reaction_out(r) for r in queries.signal_reports(scope, signal).select_related("department")]
    return Status(200, {**signal_out(signal), "reports": reports})


class ConclusionIn(Schema):
    conclusion: str


@router.post("/signals/{signal_id}/close", response={200: dict[str, Any], 400: ErrorOut, 404: ErrorOut})
@handled
def close_signal(request: HttpRequest, signal_id: int, payload: ConclusionIn) -> Any:
    scope = _scope(request, ADVERSE_REACTION)
    return Status(200, signal_out(actions.do_close_signal(scope, signal_id, payload.conclusion)))


class SuspensionIn(Schema):
    reason: str
    effective_from: dt.date
    until: dt.date | None = None
    signal: int | None = None
    product_code: str = ""
    lot_number: str | None = None
    region_code: str = ""


@router.get("/suspensions", response=ListOut)
def list_suspensions(request: HttpRequest) -> dict[str, Any]:
    """Suspensions of use; filters: status, level, product, in_effect_on (date), q."""
    scope = _scope(request, ADVERSE_REACTION)
    return _page(request, queries.SUSPENSIONS, queries.suspensions(scope), suspension_out)


@router.get("/suspensions/export")
def export_suspensions(request: HttpRequest) -> HttpResponse:
    scope = _scope(request, ADVERSE_REACTION, "export")
    qs, _a, _s = queries.SUSPENSIONS.apply(queries.suspensions(scope), request.GET)
    return _file(request, "suspensions", exports.SUSPENSION_COLUMNS, qs)


@router.post("/suspensions", response={201: dict[str, Any], 400: ErrorOut, 404: ErrorOut})
@handled
def create_suspension(request: HttpRequest, payload: SuspensionIn) -> Any:
    """A hospital proposes (its leadership approves); a bureau suspends region-wide at once."""
    scope = _scope(request, ADVERSE_REACTION)
    suspension = actions.do_suspend_use(
        scope,
        reason=payload.reason,
        effective_from=payload.effective_from,
        until=payload.until,
        signal_id=payload.signal,
        product_code=payload.product_code,
        lot_number=payload.lot_number,
        region_code=payload.region_code,
    )
    return Status(201, suspension_out(suspension))


class DecisionIn(Schema):
    note: str = ""
    lifted_on: dt.date | None = None


@router.post("/suspensions/{suspension_id}/{decision}", response={200: dict[str, Any], 400: ErrorOut, 404: ErrorOut})
@handled
def decide_suspension(request: HttpRequest, suspension_id: int, decision: str, payload: DecisionIn) -> Any:
    """``approve``, ``reject`` (with a note) or ``lift`` (from ``lifted_on``, default today)."""
    scope = _scope(request, ADVERSE_REACTION)
    if decision == "approve":
        done = actions.do_approve_suspension(scope, suspension_id, payload.note)
    elif decision == "reject":
        done = actions.do_reject_suspension(scope, suspension_id, payload.note)
    elif decision == "lift":
        done = actions.do_lift_suspension(scope, suspension_id, lifted_on=payload.lifted_on, note=payload.note)
    else:
        raise HttpError(404, "unknown decision")
    return Status(200, suspension_out(done))


# ------------------------------------------------------------------------------------------------
# quality problems


def problem_out(p: QualityProblem) -> dict[str, Any]:
    return {
        "id": p.pk,
        "problem_no": p.problem_no,
        "institution_code": p.institution.code,
        "product_code": p.product.code,
        "generic_name": p.product.generic_name,
        "lot_number": p.lot_number,
        "description": p.description,
        "found_on": p.found_on.isoformat(),
        "reported_by": p.reported_by,
        "distributor": p.distributor,
        "distributor_notified_on": p.distributor_notified_on.isoformat() if p.distributor_notified_on else None,
        "distributor_reply": p.distributor_reply,
        "needs_regulator": p.needs_regulator,
        "regulator_notified_on": p.regulator_notified_on.isoformat() if p.regulator_notified_on else None,
        "regulator_reference": p.regulator_reference,
        "status": p.status,
        "resolution": p.resolution,
        "resolved_on": p.resolved_on.isoformat() if p.resolved_on else None,
        "credit_event": p.credit_event,
    }


class ProblemIn(Schema):
    product_code: str
    description: str
    found_on: dt.date
    reported_by: str
    lot_number: str = ""
    distributor: str = ""
    needs_regulator: bool = False
    problem_no: str = ""
    institution_code: str = ""

    def to_input(self) -> actions.ProblemInput:
        return actions.ProblemInput(**self.dict())


class StepIn(Schema):
    on: dt.date | None = None
    distributor: str = ""
    reply: str = ""
    reference: str = ""
    resolution: str = ""
    reason: str = ""


@router.get("/problems", response=ListOut)
def list_problems(request: HttpRequest) -> dict[str, Any]:
    """Quality problems; filters: status, institution, product, lot, regulator, date_from, date_to, q."""
    scope = _scope(request, QUALITY_PROBLEM)
    return _page(request, queries.PROBLEMS, queries.problems(scope), problem_out)


@router.get("/problems/export")
def export_problems(request: HttpRequest) -> HttpResponse:
    scope = _scope(request, QUALITY_PROBLEM, "export")
    qs, _a, _s = queries.PROBLEMS.apply(queries.problems(scope), request.GET)
    return _file(request, "quality-problems", exports.spec_columns(PROBLEMS_SPEC), qs, PROBLEMS_SPEC)


@router.post("/problems/import", response={200: ImportOut})
def import_problems(
    request: HttpRequest, file: File[UploadedFile], dry_run: Form[bool] = False, load_valid: Form[bool] = False
) -> Any:
    scope = _scope(request, QUALITY_PROBLEM, "import")
    return _run_import(actions.do_import_problems, scope, file, dry_run, load_valid)


@router.get("/problems/{problem_id}", response={200: dict[str, Any], 404: ErrorOut})
@handled
def get_problem(request: HttpRequest, problem_id: int) -> Any:
    scope = _scope(request, QUALITY_PROBLEM)
    with use_scope(scope):
        problem = queries.problems(scope).select_related("institution", "product").get(pk=problem_id)
    return Status(200, problem_out(problem))


@router.post("/problems", response={201: dict[str, Any], 400: ErrorOut, 404: ErrorOut})
@handled
def create_problem(request: HttpRequest, payload: ProblemIn) -> Any:
    scope = _scope(request, QUALITY_PROBLEM, "write")
    return Status(201, problem_out(actions.do_create_problem(scope, payload.to_input())))


@router.put("/problems/{problem_id}", response={200: dict[str, Any], 400: ErrorOut, 404: ErrorOut})
@handled
def update_problem(request: HttpRequest, problem_id: int, payload: ProblemIn) -> Any:
    scope = _scope(request, QUALITY_PROBLEM, "write")
    return Status(200, problem_out(actions.do_update_problem(scope, problem_id, payload.to_input())))


@router.post("/problems/{problem_id}/{step}", response={200: dict[str, Any], 400: ErrorOut, 404: ErrorOut})
@handled
def problem_step(request: HttpRequest, problem_id: int, step: str, payload: StepIn) -> Any:
    """``route-distributor``, ``route-regulator`` (with ``reference``), ``resolve`` (with ``resolution``)
    or ``close`` (with ``reason``)."""
    scope = _scope(request, QUALITY_PROBLEM, "write")
    p = payload
    if step == "route-distributor":
        done = actions.do_route_to_distributor(scope, problem_id, on=p.on, distributor=p.distributor, reply=p.reply)
    elif step == "route-regulator":
        done = actions.do_route_to_regulator(scope, problem_id, on=p.on, reference=p.reference)
    elif step == "resolve":
        done = actions.do_resolve_problem(scope, problem_id, on=p.on, resolution=p.resolution, reply=p.reply)
    elif step == "close":
        done = actions.do_close_problem(scope, problem_id, on=p.on, reason=p.reason)
    else:
        raise HttpError(404, "unknown step")
    return Status(200, problem_out(done))


# ------------------------------------------------------------------------------------------------
# clinical evaluations


def evaluation_out(e: ClinicalEvaluation) -> dict[str, Any]:
    return {
        "id": e.pk,
        "owner_code": e.owner_code,
        "regional": e.institution_id is None,
        "product_code": e.product.code,
        "generic_name": e.product.generic_name,
        "scheme": e.scheme.name if e.scheme else "",
        "weights": e.weights,
        "scores": {k: str(v) for k, v in e.scores().items()},
        "total": str(e.total),
        "grade": e.grade,
        "evaluator": e.evaluator,
        "evaluated_on": e.evaluated_on.isoformat(),
        "valid_until": e.valid_until.isoformat() if e.valid_until else None,
        "evidence": e.evidence,
    }


class EvaluationIn(Schema):
    product_code: str
    evaluated_on: dt.date
    scores: dict[str, Decimal]
    evaluator: str
    evidence: str = ""
    valid_until: dt.date | None = None
    scheme: int | None = None
    institution_code: str = ""
    region_code: str = ""

    def to_input(self) -> actions.EvaluationInput:
        missing = [d.value for d in rules.DIMENSIONS if d.value not in self.scores]
        if missing:
            raise WorkflowError(
                "缺少维度得分：" + "、".join(missing), f"scores missing for {', '.join(missing)}", field="scores"
            )
        return actions.EvaluationInput(
            product_code=self.product_code,
            evaluated_on=self.evaluated_on,
            scores=self.scores,
            evaluator=self.evaluator,
            evidence=self.evidence,
            valid_until=self.valid_until,
            scheme_id=self.scheme,
            institution_code=self.institution_code,
            region_code=self.region_code,
        )


@router.get("/evaluations", response=ListOut)
def list_evaluations(request: HttpRequest) -> dict[str, Any]:
    """Evaluations; filters: product, grade, level, item (id), generic, date_from, date_to, q;
    sort: evaluated_on, total, grade, product, owner."""
    scope = _scope(request, EVALUATION)
    return _page(request, queries.EVALUATIONS, queries.evaluations(scope), evaluation_out)


@router.get("/evaluations/export")
def export_evaluations(request: HttpRequest) -> HttpResponse:
    scope = _scope(request, EVALUATION, "export")
    qs, _a, _s = queries.EVALUATIONS.apply(queries.evaluations(scope), request.GET)
    return _file(request, "clinical-evaluations", exports.spec_columns(EVALUATIONS_SPEC), qs, EVALUATIONS_SPEC)


@router.post("/evaluations/import", response={200: ImportOut})
def import_evaluations(
    request: HttpRequest, file: File[UploadedFile], dry_run: Form[bool] = False, load_valid: Form[bool] = False
) -> Any:
    scope = _scope(request, EVALUATION, "import")
    return _run_import(actions.do_import_evaluations, scope, file, dry_run, load_valid)


class LookupOut(Schema):
    as_of: str
    results: dict[str, dict[str, Any]]


@router.get("/evaluations/lookup", response=LookupOut)
def lookup_evaluations(request: HttpRequest, products: str, as_of: dt.date | None = None, institution: str = "") -> Any:
    """The evaluation that counts for each product (comma-separated codes) on ``as_of`` (default today):
    the institution's own latest, else its regions' (what formulary advice and substitution use)."""
    scope = _scope(request, EVALUATION)
    day = as_of or timezone.localdate()
    found = queries.evaluation_for(
        [c.strip() for c in products.split(",") if c.strip()], day, scope=scope, institution=institution or None
    )
    return {
        "as_of": day.isoformat(),
        "results": {
            code: {
                "evaluation_id": r.evaluation_id,
                "total": str(r.total),
                "grade": r.grade,
                "evaluated_on": r.evaluated_on.isoformat(),
                "owner_code": r.owner_code,
                "regional": r.regional,
                "scores": {k: str(v) for k, v in r.scores.items()},
            }
            for code, r in found.items()
        },
    }


@router.get("/evaluations/{evaluation_id}", response={200: dict[str, Any], 404: ErrorOut})
@handled
def get_evaluation(request: HttpRequest, evaluation_id: int) -> Any:
    scope = _scope(request, EVALUATION)
    with use_scope(scope):
        evaluation = queries.evaluations(scope).select_related("product", "scheme").get(pk=evaluation_id)
    return Status(200, evaluation_out(evaluation))


@router.post("/evaluations", response={201: dict[str, Any], 400: ErrorOut, 404: ErrorOut})
@handled
def create_evaluation(request: HttpRequest, payload: EvaluationIn) -> Any:
    scope = _scope(request, EVALUATION, "write")
    return Status(201, evaluation_out(actions.do_create_evaluation(scope, payload.to_input())))


@router.put("/evaluations/{evaluation_id}", response={200: dict[str, Any], 400: ErrorOut, 404: ErrorOut})
@handled
def update_evaluation(request: HttpRequest, evaluation_id: int, payload: EvaluationIn) -> Any:
    scope = _scope(request, EVALUATION, "write")
    return Status(200, evaluation_out(actions.do_update_evaluation(scope, evaluation_id, payload.to_input())))


class SchemeIn(Schema):
    name: str
    weights: dict[str, Decimal]
    active: bool = True
    institution_code: str = ""
    region_code: str = ""


def scheme_out(s: Any) -> dict[str, Any]:
    return {
        "id": s.pk,
        "owner_code": s.owner_code,
        "name": s.name,
        "weights": {k: str(v) for k, v in s.weights.as_dict().items()},
        "active": s.active,
    }


@router.get("/evaluation-schemes", response=ListOut)
def list_schemes(request: HttpRequest) -> dict[str, Any]:
    scope = _scope(request, EVALUATION)
    return _page(request, queries.SCHEMES, queries.schemes(scope), scheme_out)


@router.post("/evaluation-schemes", response={201: dict[str, Any], 400: ErrorOut, 404: ErrorOut})
@handled
def create_scheme(request: HttpRequest, payload: SchemeIn) -> Any:
    scope = _scope(request, EVALUATION, "write")
    scheme = actions.do_save_scheme(
        scope,
        name=payload.name,
        weights=payload.weights,
        active=payload.active,
        institution_code=payload.institution_code,
        region_code=payload.region_code,
    )
    return Status(201, scheme_out(scheme))


@router.put("/evaluation-schemes/{scheme_id}", response={200: dict[str, Any], 400: ErrorOut, 404: ErrorOut})
@handled
def update_scheme(request: HttpRequest, scheme_id: int, payload: SchemeIn) -> Any:
    scope = _scope(request, EVALUATION, "write")
    scheme = actions.do_save_scheme(
        scope, name=payload.name, weights=payload.weights, active=payload.active, scheme_id=scheme_id
    )
    return Status(200, scheme_out(scheme))


# ------------------------------------------------------------------------------------------------
# shortage substitution choices


@router.get("/substitution/{item_id}", response={200: dict[str, Any], 404: ErrorOut})
@handled
def substitution(request: HttpRequest, item_id: int, as_of: dt.date | None = None, institution: str = "") -> Any:
    """The item's products ranked as substitutes on ``as_of`` (R-K1)."""
    scope = _scope(request, EVALUATION)
    day = as_of or timezone.localdate()
    with use_scope(scope):
        item = Item.objects.select_related("batch").get(pk=item_id)
    choices = queries.substitution_choices(scope, item, day, institution=institution or None)
    return Status(
        200,
        {
            "item": {
                "id": item.pk,
                "batch_code": item.batch.code,
                "item_code": item.item_code,
                "generic_name": item.generic_name,
            },
            "as_of": day.isoformat(),
            "affected": [r.product.code for r in choices.affected],
            "choices": [
                {
                    "rank": r.rank,
                    "product_code": r.product.code,
                    "generic_name": r.product.generic_name,
                    "kind": r.kind.value,
                    "total": str(r.evaluation.total) if r.evaluation else None,
                    "grade": r.evaluation.grade if r.evaluation else None,
                    "unavailable": r.unavailable,
                    "suspended_lots": list(r.lot_suspensions),
                }
                for r in choices.rows
            ],
        },
    )
