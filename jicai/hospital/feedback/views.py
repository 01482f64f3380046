"""Pages of the progress-feedback workflow (R-H4, R-H5): board, reminders, inbox, sheets, appraisal.

Thin: reads from ``queries``, writes through ``actions``. A user without ``feedback:read`` gets 404;
an action the role may not take raises ScopeError, which the middleware turns into 403; a step the
workflow refuses comes back on the page with its Chinese reason (HTTP 400).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from jicai.core.tenancy import Level, Scope, use_scope
from jicai.hospital import shell
from jicai.hospital.common import WorkflowError
from jicai.hospital.feedback import actions, queries
from jicai.hospital.feedback.display import COMPONENT_NAMES, pct_text
from jicai.hospital.feedback.forms import (
    BoardFilterForm,
    ComputeScoresForm,
    PublishScoresForm,
    PublishSheetForm,
    ReminderForm,
    SchemeForm,
)
from jicai.organizations.models import Institution
from jicai.policy.appraisal import COMPONENTS

RESOURCE = "feedback"
CSS = "hospital/feedback-control.css"


def scope_of(request: HttpRequest, resource: str = RESOURCE) -> Scope:
    """The request's scope; 404 when the user may not read the workflow at all."""
    return shell.scope_of(request, resource)


def picks_institution(scope: Scope) -> bool:
    """Whether the user (bureau, operator) names the institution to look at."""
    return scope.level in (Level.REGION, Level.SYSTEM)


def institutions_in(scope: Scope) -> list[Institution]:
    with use_scope(scope):
        return list(Institution.objects.order_by("code")[:500])


def _date(text: str | None, default: dt.date | None = None) -> dt.date:
    try:
        return dt.date.fromisoformat(text) if text else (default or timezone.localdate())
    except ValueError:
        return default or timezone.localdate()


def _can(scope: Scope, verb: str) -> bool:
    return scope.is_system or scope.can(RESOURCE, verb)


def _error(request: HttpRequest, exc: WorkflowError) -> None:
    messages.error(request, exc.message_zh)


# --------------------------------------------------------------------------------------------------
# Board


@login_required
def board(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    code = request.GET.get("institution") or None
    if picks_institution(scope) and not code:
        return render(
            request,
            "hospital/feedback/pick_institution.html",
            {"institutions": institutions_in(scope), "target": reverse("hospital:feedback_board"), "css": CSS},
        )
    as_of = _date(request.GET.get("as_of"))
    batch = request.GET.get("batch") or None
    try:
        data = queries.board(scope, as_of=as_of, batch=batch, institution=code)
    except WorkflowError as exc:
        raise Http404(exc.message_en) from exc
    form = BoardFilterForm(
        initial={"as_of": as_of, "batch": batch or "", "institution": code or ""}, batches=data.batches
    )
    return render(
        request,
        "hospital/feedback/board.html",
        {
            "board": data,
            "form": form,
            "can_remind": _can(scope, "write"),
            "can_publish": _can(scope, "publish"),
            "is_department": scope.level is Level.DEPARTMENT,
            "query": request.GET.urlencode(),
            "css": CSS,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def remind(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    if not _can(scope, "write"):
        raise Http404("no reminders for this role")
    data_in = request.POST if request.method == "POST" else request.GET
    as_of = _date(data_in.get("as_of"))
    batch = data_in.get("batch") or None
    code = data_in.get("institution") or None
    try:
        data = queries.board(scope, as_of=as_of, batch=batch, institution=code)
    except WorkflowError as exc:
        raise Http404(exc.message_en) from exc
    choices = [
        (d.code, f"{d.name}（{d.code}）：完成率 {pct_text(d.completion)}，时间进度 {pct_text(d.expected)}")
        for d in data.behind
    ]
    status = 200
    if request.method == "POST":
        form = ReminderForm(request.POST, departments=choices)
        if form.is_valid():
            try:
                sent = actions.do_send_reminders(
                    scope,
                    as_of=form.cleaned_data["as_of"],
                    batch=form.cleaned_data["batch"] or None,
                    departments=form.cleaned_data["departments"] or None,
                    email=form.cleaned_data["email"],
                    note=form.cleaned_data["note"],
                    institution=code,
                )
            except WorkflowError as exc:
                _error(request, exc)
                status = 400
            else:
                mailed = sum(1 for n in sent if n.emailed_to)
                failed = sum(1 for n in sent if n.data.get("email_error"))
                text = _("Reminders sent to %(n)d departments.") % {"n": len(sent)}
                if form.cleaned_data["email"]:
                    text += " " + _("E-mailed: %(m)d; e-mail failed: %(f)d.") % {"m": mailed, "f": failed}
                messages.success(request, text)
                return redirect(reverse("hospital:feedback_inbox"))
        else:
            status = 400
    else:
        form = ReminderForm(
            initial={"as_of": as_of, "batch": batch or "", "departments": [c for c, _ in choices]},
            departments=choices,
        )
    return render(request, "hospital/feedback/remind.html", {"form": form, "board": data, "css": CSS}, status=status)


# --------------------------------------------------------------------------------------------------
# Inbox


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    unread_only = request.GET.get("unread") == "1"
    qs = queries.notifications(scope, unread_only=unread_only)
    with use_scope(scope):
        page = Paginator(qs, 50).get_page(request.GET.get("page"))
        rows = list(page.object_list)
    return render(
        request,
        "hospital/feedback/inbox.html",
        {
            "page": page,
            "rows": rows,
            "unread_only": unread_only,
            "is_department": scope.level is Level.DEPARTMENT,
            "unread": queries.unread_count(scope),
            "css": CSS,
        },
    )


@login_required
@require_POST
def mark_read(request: HttpRequest, pk: int) -> HttpResponse:
    scope = scope_of(request)
    try:
        actions.do_mark_read(scope, pk)
    except ObjectDoesNotExist as exc:
        raise Http404("no such notification") from exc
    except WorkflowError as exc:
        _error(request, exc)
    return redirect(request.POST.get("next") or reverse("hospital:feedback_inbox"))


# --------------------------------------------------------------------------------------------------
# Published sheets


@login_required
@require_http_methods(["GET", "POST"])
def sheets(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    status = 200
    form = PublishSheetForm(initial={"as_of": timezone.localdate()})
    if request.method == "POST":
        form = PublishSheetForm(request.POST)
        if form.is_valid():
            try:
                made = actions.do_publish_sheet(
                    scope,
                    as_of=form.cleaned_data["as_of"],
                    batch=form.cleaned_data["batch"] or None,
                    title=form.cleaned_data["title"],
                    institution=request.POST.get("institution") or None,
                )
            except WorkflowError as exc:
                _error(request, exc)
                status = 400
            else:
                messages.success(request, _("Progress sheet published."))
                return redirect(reverse("hospital:feedback_sheet", args=[made.pk]))
        else:
            status = 400
    qs = queries.sheets(scope)
    with use_scope(scope):
        page = Paginator(qs, 50).get_page(request.GET.get("page"))
        rows = list(page.object_list)
    return render(
        request,
        "hospital/feedback/sheets.html",
        {"page": page, "rows": rows, "form": form, "can_publish": _can(scope, "publish"), "css": CSS},
        status=status,
    )


@login_required
def sheet(request: HttpRequest, pk: int) -> HttpResponse:
    scope = scope_of(request)
    obj = queries.sheet(scope, pk)
    if obj is None:
        raise Http404("no such sheet")
    return render(
        request,
        "hospital/feedback/sheet.html",
        {
            "sheet": obj,
            "rows": queries.sheet_display_rows(obj),
            "can_export": _can(scope, "export"),
            "css": CSS,
        },
    )


@login_required
def sheet_export(request: HttpRequest, pk: int) -> HttpResponse:
    scope = scope_of(request)
    obj = queries.sheet(scope, pk)
    if obj is None:
        raise Http404("no such sheet")
    data = queries.sheet_workbook(scope, obj)
    response = HttpResponse(data, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    response["Content-Disposition"] = f'attachment; filename="progress-sheet-{obj.as_of.isoformat()}-{obj.pk}.xlsx"'
    return response


# --------------------------------------------------------------------------------------------------
# Appraisal


def _scheme_rows(schemes: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "obj": s,
            "weights": [(COMPONENT_NAMES[k], s.weights.get(k, "0")) for k in COMPONENTS],
        }
        for s in schemes
    ]


@login_required
@require_http_methods(["GET", "POST"])
def schemes(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    status = 200
    form = SchemeForm(initial={"completion": 60, "selected_share": 25, "substitute_control": 15, "active": True})
    if request.method == "POST":
        form = SchemeForm(request.POST)
        if form.is_valid():
            try:
                made = actions.do_create_scheme(
                    scope,
                    name=form.cleaned_data["name"],
                    weights=form.weights(),
                    active=form.cleaned_data["active"],
                    institution=request.POST.get("institution") or None,
                )
            except WorkflowError as exc:
                form.add_error(None, exc.message_zh)
                status = 400
            else:
                messages.success(request, _("Appraisal scheme saved."))
                return redirect(reverse("hospital:appraisal_scheme", args=[made.pk]))
        else:
            status = 400
    with use_scope(scope):
        rows = _scheme_rows(list(queries.schemes(scope)))
    return render(
        request,
        "hospital/feedback/schemes.html",
        {
            "rows": rows,
            "form": form,
            "can_write": _can(scope, "write"),
            "is_department": scope.level is Level.DEPARTMENT,
            "css": CSS,
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def scheme(request: HttpRequest, pk: int) -> HttpResponse:
    scope = scope_of(request)
    obj = queries.scheme(scope, pk)
    if obj is None:
        raise Http404("no such scheme")
    status = 200
    edit = SchemeForm(initial={"name": obj.name, "active": obj.active, **obj.weights})
    compute = ComputeScoresForm()
    publish = PublishScoresForm()
    if request.method == "POST":
        step = request.POST.get("step")
        try:
            if step == "update":
                edit = SchemeForm(request.POST)
                if not edit.is_valid():
                    raise WorkflowError("请检查表单", "invalid form")
                actions.do_update_scheme(
                    scope,
                    pk,
                    name=edit.cleaned_data["name"],
                    weights=edit.weights(),
                    active=edit.cleaned_data["active"],
                )
                messages.success(request, _("Appraisal scheme saved."))
            elif step == "compute":
                compute = ComputeScoresForm(request.POST)
                if not compute.is_valid():
                    raise WorkflowError("请检查表单", "invalid form")
                done, skipped = actions.do_compute_scores(
                    scope, pk, period=compute.cleaned_data["period"], batch=compute.cleaned_data["batch"] or None
                )
                text = _("%(n)d departments scored.") % {"n": len(done)}
                if skipped:
                    text += " " + _("Not scored (no figures): %(codes)s.") % {"codes": "、".join(skipped)}
                messages.success(request, text)
            elif step == "publish":
                publish = PublishScoresForm(request.POST)
                if not publish.is_valid():
                    raise WorkflowError("请检查表单", "invalid form")
                count = actions.do_publish_scores(scope, pk, period=publish.cleaned_data["period"])
                messages.success(request, _("%(n)d scores published.") % {"n": count})
            else:
                raise Http404("unknown step")
        except WorkflowError as exc:
            _error(request, exc)
            status = 400
        else:
            return redirect(reverse("hospital:appraisal_scheme", args=[pk]))
    period = request.GET.get("period") or None
    with use_scope(scope):
        score_rows = list(queries.scores(scope, scheme_id=pk, period=period))
    periods = queries.periods_of(scope, pk)
    return render(
        request,
        "hospital/feedback/scheme.html",
        {
            "scheme": obj,
            "weights": [(COMPONENT_NAMES[k], obj.weights.get(k, "0")) for k in COMPONENTS],
            "scores": score_rows,
            "components": [(k, COMPONENT_NAMES[k]) for k in COMPONENTS],
            "periods": periods,
            "period": period,
            "edit": edit,
            "compute": compute,
            "publish": publish,
            "can_write": _can(scope, "write"),
            "can_publish": _can(scope, "publish"),
            "css": CSS,
        },
        status=status,
    )


@login_required
def scores(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    period = request.GET.get("period") or None
    with use_scope(scope):
        rows = list(queries.scores(scope, period=period)[:500])
    return render(
        request,
        "hospital/feedback/scores.html",
        {
            "rows": rows,
            "components": [(k, COMPONENT_NAMES[k]) for k in COMPONENTS],
            "period": period,
            "is_department": scope.level is Level.DEPARTMENT,
            "css": CSS,
        },
    )
