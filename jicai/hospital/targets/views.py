"""Department-target pages (R-H3): plans, generate, the item × department × slice matrix with the
exact-total check and the adjust form, publish / unpublish, and a department head's own targets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from jicai.core.tenancy import Level, Scope, use_scope
from jicai.hospital.common import WorkflowError
from jicai.hospital.models import TargetPlan, TargetStatus
from jicai.hospital.shell import scope_of
from jicai.hospital.targets import actions, queries
from jicai.hospital.targets.forms import GenerateForm, ReasonForm
from jicai.programme.models import Batch

CELL = "cell"
SEP = "|"


def _scope(request: HttpRequest) -> Scope:
    return scope_of(request, "target")


def _batches(scope: Scope) -> list[Batch]:
    with use_scope(scope):
        return list(Batch.objects.order_by("-start_date", "code"))


@login_required
def plan_list(request: HttpRequest) -> HttpResponse:
    scope = _scope(request)
    rows = queries.plan_rows(scope)
    form = None
    if scope.level is Level.INSTITUTION and scope.can("target", "write"):
        batches = _batches(scope)
        initial: dict[str, Any] = {}
        if batches:
            initial = queries.target_defaults(
                batches[0].policy_profile, batches[0].start_date, Path(settings.JICAI_HOME)
            )
        form = GenerateForm(initial=initial, batches=[(b.code, f"{b.name}（{b.code}）") for b in batches])
    return render(
        request,
        "hospital/targets/list.html",
        {"rows": rows, "form": form, "department": scope.level is Level.DEPARTMENT},
    )


@login_required
@require_POST
def plan_generate(request: HttpRequest) -> HttpResponse:
    scope = _scope(request)
    form = GenerateForm(request.POST, batches=[(b.code, b.code) for b in _batches(scope)])
    if not form.is_valid():
        messages.error(request, _("Please correct the form."))
        return redirect("hospital:target_list")
    data = form.cleaned_data
    try:
        result = actions.do_generate_targets(
            scope,
            batch_code=data["batch"],
            year=data["year"],
            granularity=data["granularity"],
            reference_months=data["reference_months"],
        )
    except WorkflowError as exc:
        messages.error(request, exc.message_zh)
        return redirect("hospital:target_list")
    except ObjectDoesNotExist:
        raise Http404("unknown round") from None
    messages.success(request, _("Targets generated from the departments' history."))
    for item, codes in result.unknown_departments.items():
        messages.warning(
            request,
            _("%(item)s: dispensing under department codes not on the list was not counted: %(codes)s")
            % {"item": item, "codes": ", ".join(codes)},
        )
    if result.without_history:
        messages.warning(
            request,
            _("No department used these items in the window; they were split equally, please adjust: %(items)s")
            % {"items": ", ".join(result.without_history)},
        )
    return redirect("hospital:target_detail", plan_id=result.plan.pk)


def _plan_or_404(scope: Scope, plan_id: int) -> TargetPlan:
    try:
        return queries.get_plan(scope, plan_id)
    except TargetPlan.DoesNotExist:
        raise Http404("no such target plan") from None


@login_required
def plan_detail(request: HttpRequest, plan_id: int) -> HttpResponse:
    scope = _scope(request)
    plan = _plan_or_404(scope, plan_id)
    hospital = scope.level is not Level.DEPARTMENT  # a department sees its own rows only: no total check
    agreed = queries.agreed_quantities(scope, plan) if hospital else {}
    blocks = queries.plan_matrix(scope, plan, agreed=agreed)
    draft = plan.status == TargetStatus.DRAFT
    return render(
        request,
        "hospital/targets/detail.html",
        {
            "plan": plan,
            "blocks": blocks,
            "can_adjust": hospital and draft and scope.can("target", "write"),
            "can_publish": hospital and draft and scope.can("target", "publish"),
            "can_unpublish": hospital and not draft and scope.can("target", "publish"),
            "hospital": hospital,
            "cell": CELL,
            "sep": SEP,
        },
    )


@login_required
@require_POST
def plan_adjust(request: HttpRequest, plan_id: int) -> HttpResponse:
    scope = _scope(request)
    _plan_or_404(scope, plan_id)
    item = request.POST.get("item", "")
    values: dict[tuple[str, str], int] = {}
    bad: list[str] = []
    for key in request.POST:
        parts = key.split(SEP)
        if len(parts) != 3 or parts[0] != CELL:  # cell|department|slice
            continue
        raw = request.POST.get(key, "")
        try:
            values[(parts[1], parts[2])] = int(raw.strip())
        except ValueError:
            bad.append(raw)
    anchor = f"#item-{item}"
    if bad:
        messages.error(request, _("Targets are whole numbers of units: %(values)s") % {"values": ", ".join(bad)})
        return redirect(reverse("hospital:target_detail", kwargs={"plan_id": plan_id}) + anchor)
    try:
        changed = actions.do_adjust_targets(
            scope, plan_id, item_code=item, values=values, reason=request.POST.get("reason", "")
        )
    except WorkflowError as exc:
        messages.error(request, exc.message_zh)
    else:
        messages.success(request, _("%(n)s targets changed; the item's total is unchanged.") % {"n": changed})
    return redirect(reverse("hospital:target_detail", kwargs={"plan_id": plan_id}) + anchor)


@login_required
@require_POST
def plan_publish(request: HttpRequest, plan_id: int) -> HttpResponse:
    scope = _scope(request)
    _plan_or_404(scope, plan_id)
    try:
        actions.do_publish(scope, plan_id)
    except WorkflowError as exc:
        messages.error(request, exc.message_zh)
    else:
        messages.success(request, _("Published: department heads now see their targets."))
    return redirect("hospital:target_detail", plan_id=plan_id)


@login_required
@require_POST
def plan_unpublish(request: HttpRequest, plan_id: int) -> HttpResponse:
    scope = _scope(request)
    _plan_or_404(scope, plan_id)
    form = ReasonForm(request.POST)
    form.is_valid()
    try:
        actions.do_unpublish(scope, plan_id, reason=form.cleaned_data.get("reason", ""))
    except WorkflowError as exc:
        messages.error(request, exc.message_zh)
    else:
        messages.success(request, _("Withdrawn: the targets can be adjusted again."))
    return redirect("hospital:target_detail", plan_id=plan_id)


@login_required
def my_targets(request: HttpRequest) -> HttpResponse:
    scope = _scope(request)
    if scope.level is not Level.DEPARTMENT:
        raise Http404("only a department has its own targets")
    return render(request, "hospital/targets/mine.html", {"groups": queries.my_targets(scope)})
