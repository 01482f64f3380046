"""Pages of clinical comprehensive evaluation (R-K1): evaluations, weighting schemes and the shortage
substitution choices of an item."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from jicai.core.tenancy import Level
from jicai.imports.values import ValueParseError, parse_date
from jicai.policy import quality as rules
from jicai.programme.models import Item
from jicai.quality import actions, queries
from jicai.quality.common import ADVERSE_REACTION, EVALUATION
from jicai.quality.datasets import EVALUATIONS_SPEC
from jicai.quality.exports import spec_columns
from jicai.quality.forms import DIMENSION_LABELS, EvaluationForm, SchemeForm
from jicai.quality.views.common import (
    PAGE_SIZE,
    export_response,
    get_or_404,
    import_page,
    listed,
    may,
    need,
    run_action,
)
from jicai.quality.views.reactions import product_choices

R = EVALUATION


def owns(scope: Any, obj: Any) -> bool:
    """Whether ``scope`` may change ``obj`` (an evaluation or scheme): its own institution's, or a
    region's inside the bureau's territory."""
    if scope.is_system:
        return True
    if obj.institution_id is not None:
        return bool(scope.level is Level.INSTITUTION and obj.institution_id == scope.institution_id)
    return bool(scope.level is Level.REGION and obj.region_code.startswith(scope.region_prefix))


def _owner_may_write(request: HttpRequest) -> bool:
    scope = getattr(request, "scope", None)
    return may(request, R, "write") and scope is not None and scope.level is not Level.DEPARTMENT


@login_required
def evaluation_list(request: HttpRequest) -> HttpResponse:
    scope = need(request, R)
    page, active, sort = listed(request, queries.EVALUATIONS, queries.evaluations(scope))
    return render(
        request,
        "quality/evaluation_list.html",
        {
            "page": page,
            "filters": active,
            "sort": sort,
            "grades": rules.GRADES,
            "can_write": _owner_may_write(request),
            "can_import": may(request, R, "import"),
            "can_export": may(request, R, "export"),
        },
    )


@login_required
def evaluation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    scope = need(request, R)
    evaluation = get_or_404(queries.evaluations(scope).select_related("institution", "product", "scheme"), pk)
    weights = rules.Weights.from_mapping(evaluation.weights)
    outcome = rules.evaluate(evaluation.scores(), weights)
    rows = [
        (DIMENSION_LABELS[d.value], evaluation.scores()[d.value], weights.of(d), outcome.contributions[d.value])
        for d in rules.DIMENSIONS
    ]
    return render(
        request,
        "quality/evaluation_detail.html",
        {"evaluation": evaluation, "rows": rows, "can_edit": _owner_may_write(request) and owns(scope, evaluation)},
    )


def _form(request: HttpRequest, pk: int | None) -> HttpResponse:
    scope = need(request, R, "write")
    evaluation = get_or_404(queries.evaluations(scope).select_related("product"), pk) if pk is not None else None
    if request.method == "POST":
        form = EvaluationForm(request.POST, scope=scope, editing=evaluation is not None)
        if form.is_valid():
            data = form.to_input()
            if evaluation is None:
                saved = run_action(form, lambda: actions.do_create_evaluation(scope, data))
            else:
                saved = run_action(form, lambda: actions.do_update_evaluation(scope, evaluation.pk, data))
            if saved is not None:
                messages.success(
                    request,
                    _("Evaluation saved: total %(total)s, grade %(grade)s.")
                    % {"total": saved.total, "grade": saved.grade},
                )
                return redirect("quality:evaluation_detail", saved.pk)
    else:
        initial: dict[str, Any] = {"product_code": request.GET.get("product", "")}
        if evaluation is not None:
            initial = {
                "product_code": evaluation.product.code,
                "evaluated_on": evaluation.evaluated_on,
                "scheme": evaluation.scheme,
                "evaluator": evaluation.evaluator,
                "valid_until": evaluation.valid_until,
                "evidence": evaluation.evidence,
                **evaluation.scores(),
            }
        form = EvaluationForm(initial=initial, scope=scope, editing=evaluation is not None)
    return render(
        request,
        "quality/form.html",
        {
            "form": form,
            "title": _("Edit evaluation") if evaluation else _("New clinical evaluation"),
            "products": product_choices(),
            "back": "quality:evaluation_list",
            "note": _(
                "Weighted total = Σ score × weight ÷ 100, rounded half-up to two places; "
                "grade A ≥ 85, B ≥ 70, C ≥ 60, else D."
            ),
        },
    )


@login_required
def evaluation_create(request: HttpRequest) -> HttpResponse:
    return _form(request, None)


@login_required
def evaluation_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _form(request, pk)


@login_required
def evaluation_export(request: HttpRequest) -> HttpResponse:
    scope = need(request, R, "export")
    qs, _active, _sort = queries.EVALUATIONS.apply(queries.evaluations(scope), request.GET)
    return export_response(request, EVALUATIONS_SPEC.label, spec_columns(EVALUATIONS_SPEC), qs, spec=EVALUATIONS_SPEC)


@login_required
def evaluation_import(request: HttpRequest) -> HttpResponse:
    return import_page(
        request,
        spec=EVALUATIONS_SPEC,
        resource=R,
        action=actions.do_import_evaluations,
        back="quality:evaluation_list",
    )


# ------------------------------------------------------------------------------------------------
# weighting schemes


@login_required
def scheme_list(request: HttpRequest) -> HttpResponse:
    scope = need(request, R)
    page, active, sort = listed(request, queries.SCHEMES, queries.schemes(scope).select_related("institution"))
    return render(
        request,
        "quality/scheme_list.html",
        {
            "page": page,
            "filters": active,
            "sort": sort,
            "dimensions": [(d.value, DIMENSION_LABELS[d.value]) for d in rules.DIMENSIONS],
            "default": rules.DEFAULT_WEIGHTS.as_dict(),
            "can_write": _owner_may_write(request),
            "editable": {s.pk for s in page.object_list if owns(scope, s)},
        },
    )


def _scheme_form(request: HttpRequest, pk: int | None) -> HttpResponse:
    scope = need(request, R, "write")
    scheme = get_or_404(queries.schemes(scope), pk) if pk is not None else None
    if request.method == "POST":
        form = SchemeForm(request.POST, scope=scope, editing=scheme is not None)
        if form.is_valid():
            d = form.cleaned_data
            saved = run_action(
                form,
                lambda: actions.do_save_scheme(
                    scope,
                    name=d["name"],
                    weights=form.weights(),
                    active=d["active"],
                    scheme_id=scheme.pk if scheme else None,
                    region_code=d.get("region_code") or "",
                ),
            )
            if saved is not None:
                messages.success(request, _("Scheme %(name)s saved.") % {"name": saved.name})
                return redirect("quality:scheme_list")
    else:
        initial: dict[str, Any] = {}
        if scheme is not None:
            initial = {"name": scheme.name, "active": scheme.active, **scheme.weights.as_dict()}
        form = SchemeForm(initial=initial, scope=scope, editing=scheme is not None)
    return render(
        request,
        "quality/form.html",
        {
            "form": form,
            "title": _("Edit weighting scheme") if scheme else _("New weighting scheme"),
            "back": "quality:scheme_list",
            "note": _("Weights in percent; the six must add up to 100%."),
        },
    )


@login_required
def scheme_create(request: HttpRequest) -> HttpResponse:
    return _scheme_form(request, None)


@login_required
def scheme_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _scheme_form(request, pk)


# ------------------------------------------------------------------------------------------------
# shortage substitution choices


def _as_of(request: HttpRequest) -> dt.date:
    try:
        return parse_date(request.GET.get("as_of") or "")
    except ValueParseError:
        return timezone.localdate()


@login_required
def substitution_items(request: HttpRequest) -> HttpResponse:
    """The items in scope, to pick one whose substitution choices to see."""
    need(request, R)
    qs = Item.objects.select_related("batch").order_by("-batch__start_date", "batch__code", "item_code")
    text = request.GET.get("q", "").strip()
    if text:
        qs = qs.filter(Q(item_code__icontains=text) | Q(generic_name__icontains=text) | Q(batch__code__icontains=text))
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "quality/substitution_items.html", {"page": page, "filters": {"q": text}})


@login_required
def substitution_choices(request: HttpRequest, item_id: int) -> HttpResponse:
    """Which products to use when a selected product of the item is short or suspended (R-K1)."""
    scope = need(request, R)
    item = get_or_404(Item.objects.select_related("batch"), item_id)
    as_of = _as_of(request)
    choices = queries.substitution_choices(scope, item, as_of)
    return render(
        request,
        "quality/substitution_choices.html",
        {
            "item": item,
            "as_of": as_of,
            "choices": choices,
            "dimensions": [(d.value, DIMENSION_LABELS[d.value]) for d in rules.DIMENSIONS],
            "can_read_suspensions": may(request, ADVERSE_REACTION, "read"),
            "can_evaluate": _owner_may_write(request),
        },
    )
