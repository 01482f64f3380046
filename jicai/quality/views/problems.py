"""Pages of the quality-problem register (R-J1): list, detail with routing steps, form, export, import."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from jicai.core.tenancy import Level
from jicai.policy import quality as rules
from jicai.quality import actions, queries
from jicai.quality.common import QUALITY_PROBLEM
from jicai.quality.datasets import PROBLEMS_SPEC
from jicai.quality.exports import spec_columns
from jicai.quality.forms import CloseProblemForm, ProblemForm, ResolveForm, RouteDistributorForm, RouteRegulatorForm
from jicai.quality.models import ProblemStatus
from jicai.quality.views.common import export_response, get_or_404, import_page, listed, may, need, run_action
from jicai.quality.views.reactions import product_choices

R = QUALITY_PROBLEM
STEPS: dict[str, tuple[type[Any], str]] = {
    "distributor": (RouteDistributorForm, ProblemStatus.WITH_DISTRIBUTOR),
    "regulator": (RouteRegulatorForm, ProblemStatus.WITH_REGULATOR),
    "resolve": (ResolveForm, ProblemStatus.RESOLVED),
    "close": (CloseProblemForm, ProblemStatus.CLOSED),
}


@login_required
def problem_list(request: HttpRequest) -> HttpResponse:
    scope = need(request, R)
    page, active, sort = listed(request, queries.PROBLEMS, queries.problems(scope))
    return render(
        request,
        "quality/problem_list.html",
        {
            "page": page,
            "filters": active,
            "sort": sort,
            "statuses": ProblemStatus.choices,
            "can_write": may(request, R, "write") and scope.level is Level.INSTITUTION,
            "can_import": may(request, R, "import"),
            "can_export": may(request, R, "export"),
            "show_institution": scope.level is not Level.INSTITUTION,
        },
    )


def _detail(request: HttpRequest, pk: int, bound: dict[str, Any] | None = None) -> HttpResponse:
    scope = need(request, R)
    problem = get_or_404(queries.problems(scope).select_related("institution", "product"), pk)
    can_write = may(request, R, "write") and (scope.level is Level.INSTITUTION or scope.is_system)
    steps = []
    if can_write:
        for name, (form_class, target) in STEPS.items():
            if rules.can_move(problem.status, target):
                initial = {"distributor": problem.distributor} if name == "distributor" else {}
                form = (bound or {}).get(name) or form_class(initial=initial, prefix=name)
                steps.append((name, ProblemStatus(target).label, form))
    return render(
        request,
        "quality/problem_detail.html",
        {
            "problem": problem,
            "steps": steps,
            "can_edit": can_write and not rules.is_final(problem.status),
        },
    )


@login_required
def problem_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail(request, pk)


@login_required
@require_POST
def problem_step(request: HttpRequest, pk: int, step: str) -> HttpResponse:
    scope = need(request, R)
    if step not in STEPS:
        raise Http404(step)
    form = STEPS[step][0](request.POST, prefix=step)
    if form.is_valid():
        d = form.cleaned_data
        run = {
            "distributor": lambda: actions.do_route_to_distributor(
                scope, pk, on=d["on"], distributor=d.get("distributor") or "", reply=d.get("reply") or ""
            ),
            "regulator": lambda: actions.do_route_to_regulator(scope, pk, on=d["on"], reference=d["reference"]),
            "resolve": lambda: actions.do_resolve_problem(
                scope, pk, on=d["on"], resolution=d["resolution"], reply=d.get("reply") or ""
            ),
            "close": lambda: actions.do_close_problem(scope, pk, on=d["on"], reason=d["reason"]),
        }[step]
        if run_action(form, run) is not None:
            messages.success(request, _("The problem's status is updated."))
            return redirect("quality:problem_detail", pk)
    return _detail(request, pk, {step: form})


def _form(request: HttpRequest, pk: int | None) -> HttpResponse:
    scope = need(request, R, "write")
    problem = get_or_404(queries.problems(scope).select_related("product"), pk) if pk is not None else None
    if request.method == "POST":
        form = ProblemForm(request.POST, scope=scope, editing=problem is not None)
        if form.is_valid():
            data = form.to_input()
            if problem is None:
                saved = run_action(form, lambda: actions.do_create_problem(scope, data))
            else:
                saved = run_action(form, lambda: actions.do_update_problem(scope, problem.pk, data))
            if saved is not None:
                messages.success(request, _("Problem %(no)s saved.") % {"no": saved.problem_no})
                return redirect("quality:problem_detail", saved.pk)
    else:
        initial: dict[str, Any] = {}
        if problem is not None:
            initial = {
                "problem_no": problem.problem_no,
                "product_code": problem.product.code,
                "lot_number": problem.lot_number,
                "description": problem.description,
                "found_on": problem.found_on,
                "reported_by": problem.reported_by,
                "distributor": problem.distributor,
                "needs_regulator": problem.needs_regulator,
            }
        form = ProblemForm(initial=initial, scope=scope, editing=problem is not None)
    return render(
        request,
        "quality/form.html",
        {
            "form": form,
            "title": _("Edit quality problem") if problem else _("New quality problem"),
            "products": product_choices(),
            "back": "quality:problem_list",
        },
    )


@login_required
def problem_create(request: HttpRequest) -> HttpResponse:
    return _form(request, None)


@login_required
def problem_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _form(request, pk)


@login_required
def problem_export(request: HttpRequest) -> HttpResponse:
    scope = need(request, R, "export")
    qs, _active, _sort = queries.PROBLEMS.apply(queries.problems(scope), request.GET)
    return export_response(request, PROBLEMS_SPEC.label, spec_columns(PROBLEMS_SPEC), qs, spec=PROBLEMS_SPEC)


@login_required
def problem_import(request: HttpRequest) -> HttpResponse:
    return import_page(
        request, spec=PROBLEMS_SPEC, resource=R, action=actions.do_import_problems, back="quality:problem_list"
    )
