"""Demand reporting pages (R-H2): list, create, detail with adjust / shortage / comment forms, steps, export."""

from __future__ import annotations

import io
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from jicai.core.tenancy import Level, Scope, ScopeError, use_scope
from jicai.hospital.common import WorkflowError
from jicai.hospital.demand import actions, export, queries
from jicai.hospital.demand.forms import AdjustForm, CommentForm, PlanCreateForm, ShortageForm, StepForm
from jicai.hospital.models import DemandPlan, DemandStatus
from jicai.hospital.shell import scope_of
from jicai.programme.models import Batch

STEPS = {
    "submit": actions.do_submit,
    "lock": actions.do_lock,
}


def _scope(request: HttpRequest) -> Scope:
    return scope_of(request, "demand")


def _batch_choices(scope: Scope) -> list[tuple[str, str]]:
    """Rounds the hospital has no demand report for yet, newest first."""
    with use_scope(scope):
        taken = set(DemandPlan.objects.values_list("batch_id", flat=True))
        batches = list(Batch.objects.order_by("-start_date", "code"))
    return [(b.code, f"{b.name}（{b.code}，{b.start_date:%Y-%m-%d}）") for b in batches if b.pk not in taken]


@login_required
def plan_list(request: HttpRequest) -> HttpResponse:
    scope = _scope(request)
    batch = request.GET.get("batch") or None
    status = request.GET.get("status") or None
    rows = queries.plan_rows(scope, batch=batch, status=status)
    can_create = scope.level is not Level.REGION and scope.can("demand", "write")
    form = PlanCreateForm(batches=_batch_choices(scope)) if can_create else None
    return render(
        request,
        "hospital/demand/list.html",
        {
            "rows": rows,
            "form": form,
            "bureau": scope.level is Level.REGION,
            "statuses": DemandStatus.choices,
            "status": status or "",
            "batch": batch or "",
        },
    )


@login_required
@require_POST
def plan_create(request: HttpRequest) -> HttpResponse:
    scope = _scope(request)
    form = PlanCreateForm(request.POST, batches=_batch_choices(scope))
    if not form.is_valid():
        messages.error(request, _("Please correct the form."))
        return redirect("hospital:demand_list")
    data = form.cleaned_data
    try:
        plan = actions.do_create_plan(
            scope,
            batch_code=data["batch"],
            history_months=data["history_months"],
            source=data["source"],
            until=data["until"],
            note=data["note"],
        )
    except WorkflowError as exc:
        messages.error(request, exc.message_zh)
        return redirect("hospital:demand_list")
    except ObjectDoesNotExist:
        raise Http404("unknown round") from None
    messages.success(request, _("Demand report created with a suggestion for every item."))
    return redirect("hospital:demand_detail", plan_id=plan.pk)


def _plan_or_404(scope: Scope, plan_id: int) -> DemandPlan:
    try:
        return queries.get_plan(scope, plan_id)
    except DemandPlan.DoesNotExist:
        raise Http404("no such demand report") from None


@login_required
def plan_detail(request: HttpRequest, plan_id: int) -> HttpResponse:
    scope = _scope(request)
    plan = _plan_or_404(scope, plan_id)
    lines = queries.plan_lines(scope, plan)
    comments = queries.line_comments(scope, plan)
    steps = queries.allowed_steps(scope, plan)
    rows: list[dict[str, Any]] = [
        {
            "line": line,
            "spark": queries.sparkline(line.method),
            "months": queries.month_table(line.method),
            "comments": comments.get(line.pk, []),
            "adjust": AdjustForm(
                initial={"qty": line.adjusted_qty, "reason": line.reason, "note": line.reason_note},
                prefix=f"l{line.pk}",
            ),
        }
        for line in lines
    ]
    totals = {
        "suggested": sum((line.suggested_qty for line in lines), start=0),
        "reported": sum((line.reported_qty for line in lines), start=0),
        "history": sum((line.history_qty for line in lines), start=0),
    }
    return render(
        request,
        "hospital/demand/detail.html",
        {
            "plan": plan,
            "rows": rows,
            "steps": steps,
            "totals": totals,
            "statuses": DemandStatus.choices,
            "comment_form": CommentForm(),
            "shortage_form": ShortageForm(),
            "step_form": StepForm(),
        },
    )


def _back(plan_id: int, anchor: str = "") -> HttpResponse:
    return redirect(reverse("hospital:demand_detail", kwargs={"plan_id": plan_id}) + anchor)


def _line_plan(scope: Scope, plan_id: int, line_id: int) -> None:
    """404 unless the line belongs to a plan the scope may open."""
    plan = _plan_or_404(scope, plan_id)
    if not queries.line_in_plan(scope, plan, line_id):
        raise Http404("no such line")


@login_required
@require_POST
def line_adjust(request: HttpRequest, plan_id: int, line_id: int) -> HttpResponse:
    scope = _scope(request)
    _line_plan(scope, plan_id, line_id)
    form = AdjustForm(request.POST, prefix=f"l{line_id}")
    if not form.is_valid():
        messages.error(request, _("The quantity must be a whole number of units, 0 or more."))
        return _back(plan_id, f"#line-{line_id}")
    data = form.cleaned_data
    try:
        actions.do_adjust_line(scope, line_id, qty=data["qty"], reason=data["reason"], note=data["note"])
    except WorkflowError as exc:
        messages.error(request, exc.message_zh)
    else:
        messages.success(request, _("Line saved."))
    return _back(plan_id, f"#line-{line_id}")


@login_required
@require_POST
def line_shortage(request: HttpRequest, plan_id: int, line_id: int) -> HttpResponse:
    scope = _scope(request)
    _line_plan(scope, plan_id, line_id)
    form = ShortageForm(request.POST)
    form.is_valid()
    try:
        actions.do_mark_shortage(scope, line_id, months=form.month_list(), note=form.cleaned_data.get("note", ""))
    except WorkflowError as exc:
        messages.error(request, exc.message_zh)
    else:
        messages.success(request, _("Shortage months saved; the suggestion was recomputed."))
    return _back(plan_id, f"#line-{line_id}")


@login_required
@require_POST
def line_comment(request: HttpRequest, plan_id: int, line_id: int) -> HttpResponse:
    scope = _scope(request)
    _line_plan(scope, plan_id, line_id)
    form = CommentForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Please write a comment."))
        return _back(plan_id, f"#line-{line_id}")
    try:
        actions.do_comment(scope, line_id, text=form.cleaned_data["text"])
    except WorkflowError as exc:
        messages.error(request, exc.message_zh)
    else:
        messages.success(request, _("Comment added."))
    return _back(plan_id, f"#line-{line_id}")


@login_required
@require_POST
def plan_step(request: HttpRequest, plan_id: int, step: str) -> HttpResponse:
    scope = _scope(request)
    _plan_or_404(scope, plan_id)
    form = StepForm(request.POST)
    form.is_valid()
    note = form.cleaned_data.get("note", "")
    try:
        if step == "approve":
            actions.do_approve(scope, plan_id, note=note)
        elif step == "return":
            actions.do_return(scope, plan_id, note=note)
        elif step in STEPS:
            STEPS[step](scope, plan_id)
        else:
            raise Http404("unknown step")
    except WorkflowError as exc:
        messages.error(request, exc.message_zh)
    except ScopeError as exc:
        raise PermissionDenied(str(exc)) from exc
    else:
        messages.success(request, _("Done."))
    return _back(plan_id)


@login_required
def plan_export(request: HttpRequest, plan_id: int) -> FileResponse:
    scope = _scope(request)
    plan = _plan_or_404(scope, plan_id)
    if not queries.allowed_steps(scope, plan)["export"]:
        raise PermissionDenied("may not export demand reports")
    buffer = io.BytesIO()
    export.write_submission(scope, plan, buffer)
    buffer.seek(0)
    return FileResponse(buffer, content_type=export.CONTENT_TYPE, as_attachment=True, filename=export.filename(plan))
