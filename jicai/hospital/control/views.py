"""Pages of the substitute-control workflow (R-H7–H9): the monitoring board, the antimicrobial
exceptions register and the measures register with leadership's decisions.

Thin: reads from ``queries``, writes through ``actions``. Without ``substitute_control:read`` (e.g. a
department head) the pages are 404; an action the role may not take is 403 (ScopeError through the
middleware); a refused step comes back with its Chinese reason (HTTP 400).
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from jicai.core.tenancy import Scope, use_scope
from jicai.hospital.common import WorkflowError
from jicai.hospital.control import actions, queries
from jicai.hospital.control.forms import (
    ControlFilterForm,
    DecideForm,
    EndExceptionForm,
    ExceptionForm,
    MeasureForm,
    RevokeForm,
)
from jicai.hospital.feedback.views import CSS, institutions_in, picks_institution, scope_of
from jicai.hospital.models import ControlStatus

RESOURCE = "substitute_control"


def _scope(request: HttpRequest) -> Scope:
    return scope_of(request, RESOURCE)


def _can(scope: Scope, verb: str) -> bool:
    return scope.is_system or scope.can(RESOURCE, verb)


def _institution(request: HttpRequest, scope: Scope) -> Any:
    code = request.GET.get("institution") or request.POST.get("institution") or None
    try:
        return queries.control_institution(scope, code)
    except WorkflowError as exc:
        raise Http404(exc.message_en) from exc


@login_required
def board(request: HttpRequest) -> HttpResponse:
    scope = _scope(request)
    if picks_institution(scope) and not request.GET.get("institution"):
        return render(
            request,
            "hospital/feedback/pick_institution.html",
            {"institutions": institutions_in(scope), "target": reverse("hospital:control_board"), "css": CSS},
        )
    inst = _institution(request, scope)
    departments = queries.department_choices(scope, inst)
    form = ControlFilterForm(request.GET or None, departments=departments)
    months = None
    department = None
    if form.is_bound and form.is_valid():
        first, last = form.cleaned_data["month_from"], form.cleaned_data["month_to"]
        department = form.cleaned_data["department"] or None
        if first or last:
            try:
                months = queries.MonthRange.of(first or last, last or first)
            except ValueError:
                messages.error(request, _("Months must be like 2023-04, the first not after the last, 36 at most."))
    data = queries.control_board(scope, months=months, department=department, institution=inst.code)
    if not form.is_bound:
        form = ControlFilterForm(
            initial={"month_from": data.months.first_label, "month_to": data.months.last_label},
            departments=departments,
        )
    return render(
        request,
        "hospital/control/board.html",
        {
            "board": data,
            "form": form,
            "kinds": [(k, queries.KIND_LABELS[k]) for k in queries.KINDS],
            "can_propose": _can(scope, "write"),
            "today": timezone.localdate(),
            "css": CSS,
        },
    )


# --------------------------------------------------------------------------------------------------
# Exceptions (R-H8)


@login_required
@require_http_methods(["GET", "POST"])
def exceptions(request: HttpRequest) -> HttpResponse:
    scope = _scope(request)
    can_write = _can(scope, "write")
    inst = _institution(request, scope) if can_write else None
    products = queries.watched_products(scope, inst, antimicrobial_only=True) if inst else []
    departments = queries.department_choices(scope, inst) if inst else []
    today = timezone.localdate()
    form = ExceptionForm(initial={"valid_from": today}, products=products, departments=departments)
    status = 200
    if request.method == "POST":
        if not can_write:
            raise PermissionDenied("substitute_control:write needed")
        form = ExceptionForm(request.POST, products=products, departments=departments)
        if form.is_valid():
            c = form.cleaned_data
            try:
                actions.do_record_exception(
                    scope,
                    product_code=c["product_code"],
                    department_code=c["department"],
                    patient_key=c["patient_key"],
                    prescriber_code=c["prescriber_code"],
                    reason=c["reason"],
                    note=c["note"],
                    valid_from=c["valid_from"],
                    valid_until=c["valid_until"],
                    institution=inst.code if inst else None,
                )
            except WorkflowError as exc:
                form.add_error(None, exc.message_zh)
                status = 400
            else:
                messages.success(request, _("Exception recorded."))
                return redirect(reverse("hospital:control_exceptions"))
        else:
            status = 400
    current_only = request.GET.get("current") == "1"
    with use_scope(scope):
        page = Paginator(queries.exceptions(scope, current_only=current_only), 50).get_page(request.GET.get("page"))
        rows = list(page.object_list)
    return render(
        request,
        "hospital/control/exceptions.html",
        {
            "rows": rows,
            "page": page,
            "form": form,
            "can_write": can_write,
            "current_only": current_only,
            "today": today,
            "css": CSS,
        },
        status=status,
    )


@login_required
@require_POST
def end_exception(request: HttpRequest, pk: int) -> HttpResponse:
    scope = _scope(request)
    form = EndExceptionForm(request.POST)
    form.is_valid()
    try:
        actions.do_end_exception(scope, pk, on=form.cleaned_data.get("on"), note=form.cleaned_data.get("note") or "")
    except ObjectDoesNotExist as exc:
        raise Http404("no such exception") from exc
    except WorkflowError as exc:
        messages.error(request, exc.message_zh)
    else:
        messages.success(request, _("Exception ended."))
    return redirect(reverse("hospital:control_exceptions"))


# --------------------------------------------------------------------------------------------------
# Measures (R-H7, R-H9)


@login_required
@require_http_methods(["GET", "POST"])
def measures(request: HttpRequest) -> HttpResponse:
    scope = _scope(request)
    can_write = _can(scope, "write")
    inst = _institution(request, scope) if can_write else None
    products = queries.watched_products(scope, inst) if inst else []
    departments = queries.department_choices(scope, inst) if inst else []
    today = timezone.localdate()
    status = 200
    anomaly: dict[str, Any] = {}
    if request.GET.get("anomaly"):
        try:
            anomaly = json.loads(request.GET["anomaly"])
        except ValueError:
            anomaly = {}
    initial = {
        "product_code": request.GET.get("product", ""),
        "department": request.GET.get("department", ""),
        "prescriber_code": request.GET.get("prescriber", ""),
        "effective_from": today,
        "anomaly": anomaly,
    }
    form = MeasureForm(initial=initial, products=products, departments=departments)
    if request.method == "POST":
        if not can_write:
            raise PermissionDenied("substitute_control:write needed")
        form = MeasureForm(request.POST, products=products, departments=departments)
        if form.is_valid():
            c = form.cleaned_data
            try:
                actions.do_propose_measure(
                    scope,
                    product_code=c["product_code"],
                    kind=c["kind"],
                    limit_qty=c["limit_qty"],
                    department_code=c["department"] or None,
                    prescriber_code=c["prescriber_code"],
                    reason=c["reason"],
                    effective_from=c["effective_from"],
                    expires_on=c["expires_on"],
                    anomaly=c["anomaly"] if isinstance(c["anomaly"], dict) else {},
                    institution=inst.code if inst else None,
                )
            except WorkflowError as exc:
                form.add_error(None, exc.message_zh)
                status = 400
            else:
                messages.success(request, _("Measure proposed for approval."))
                return redirect(reverse("hospital:control_measures"))
        else:
            status = 400
    state = request.GET.get("status") or None
    with use_scope(scope):
        page = Paginator(queries.measures(scope, status=state if state in ControlStatus.values else None), 50).get_page(
            request.GET.get("page")
        )
        rows = [(m, queries.measure_state(m, today)) for m in page.object_list]
    return render(
        request,
        "hospital/control/measures.html",
        {
            "rows": rows,
            "page": page,
            "form": form,
            "can_write": can_write,
            "can_approve": _can(scope, "approve"),
            "state_labels": queries.STATE_LABELS,
            "statuses": ControlStatus.choices,
            "status": state,
            "css": CSS,
        },
        status=status,
    )


@login_required
@require_POST
def decide_measure(request: HttpRequest, pk: int) -> HttpResponse:
    scope = _scope(request)
    form = DecideForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose approve or reject."))
        return redirect(reverse("hospital:control_measures"))
    try:
        actions.do_decide_measure(
            scope, pk, approve=form.cleaned_data["decision"] == "approve", note=form.cleaned_data["note"]
        )
    except ObjectDoesNotExist as exc:
        raise Http404("no such measure") from exc
    except WorkflowError as exc:
        messages.error(request, exc.message_zh)
    else:
        messages.success(request, _("Decision recorded."))
    return redirect(reverse("hospital:control_measures"))


@login_required
@require_POST
def revoke_measure(request: HttpRequest, pk: int) -> HttpResponse:
    scope = _scope(request)
    form = RevokeForm(request.POST)
    form.is_valid()
    try:
        actions.do_revoke_measure(scope, pk, note=form.cleaned_data.get("note") or "")
    except ObjectDoesNotExist as exc:
        raise Http404("no such measure") from exc
    except WorkflowError as exc:
        messages.error(request, exc.message_zh)
    else:
        messages.success(request, _("Measure revoked."))
    return redirect(reverse("hospital:control_measures"))
