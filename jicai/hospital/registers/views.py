"""Register pages: prescription review (R-H10) and complaints (R-H11) — lists with filters, overdue
cases highlighted, pagination and Excel export; a case's page with its edit form and status steps."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from jicai.hospital.common import WorkflowError
from jicai.hospital.models import CaseStatus, Complaint, PrescriptionReview
from jicai.hospital.registers import actions, queries
from jicai.hospital.registers.forms import CloseForm, ComplaintForm, ReviewForm
from jicai.hospital.shell import error_text, scope_of, xlsx_response

PAGE_SIZE = 50
REVIEW = "prescription_review"
COMPLAINT = "complaint"


def _department_choices(scope: Any) -> list[tuple[str, str]]:
    return [
        (d.code, f"{d.name}（{d.code}）") for d in queries.departments() if d.institution_id == scope.institution_id
    ]


def _mark(rows: list[Any], today: dt.date) -> list[Any]:
    for row in rows:
        row.__dict__["overdue"] = queries.is_overdue(row, today)
    return rows


def _status_choices() -> list[tuple[str, Any]]:
    return list(CaseStatus.choices)


# --------------------------------------------------------------------------------------------------
# Prescription review (R-H10)


@login_required
@require_GET
def review_list(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request, REVIEW)
    today = timezone.localdate()
    filters = queries.Filters.from_query(request.GET)
    page = Paginator(queries.reviews(filters, today), PAGE_SIZE).get_page(request.GET.get("page"))
    can_write = scope.can(REVIEW, "write")
    departments = queries.departments()
    context = {
        "page": page,
        "rows": _mark(list(page.object_list), today),
        "filters": filters,
        "query": filters.as_query(),
        "statuses": _status_choices(),
        "departments": departments,
        "issues": list(queries.ISSUE_CATEGORIES.items()),
        "can_write": can_write,
        "can_export": scope.can(REVIEW, "export"),
        "form": ReviewForm(
            departments=[(d.code, f"{d.name}（{d.code}）") for d in departments],
            owners=queries.owner_choices(scope.institution_id),
        )
        if can_write
        else None,
        "show_institution": scope.institution_id is None,
    }
    return render(request, "hospital/registers/review_list.html", context)


def _review_kwargs(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "department": data["department"],
        "prescriber_code": data["prescriber_code"],
        "reviewed_on": data["reviewed_on"],
        "sample": data["sample"],
        "rational": data["rational"],
        "issue": data["issue"],
        "comment": data["comment"],
        "owner": data["owner"] or None,
        "due_on": data["due_on"],
    }


@login_required
@require_POST
def review_create(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request, REVIEW)
    form = ReviewForm(
        request.POST, departments=_department_choices(scope), owners=queries.owner_choices(scope.institution_id)
    )
    if not form.is_valid():
        messages.error(request, _("Please correct the form: %(errors)s") % {"errors": form.errors.as_text()})
        return redirect("hospital:review_list")
    try:
        review = actions.do_record_review(scope, **_review_kwargs(form.cleaned_data))
    except WorkflowError as exc:
        messages.error(request, error_text(exc))
        return redirect("hospital:review_list")
    messages.success(request, _("Prescription review recorded."))
    return redirect("hospital:review_detail", pk=review.pk)


def _review_or_404(pk: int) -> PrescriptionReview:
    found: PrescriptionReview | None = (
        PrescriptionReview.objects.select_related("department", "owner", "institution", "created_by")
        .filter(pk=pk)
        .first()
    )
    if found is None:
        raise Http404("no such prescription review")
    return found


@login_required
@require_GET
def review_detail(request: HttpRequest, pk: int) -> HttpResponse:
    scope = scope_of(request, REVIEW)
    review = _review_or_404(pk)
    can_write = scope.can(REVIEW, "write") and review.status != CaseStatus.CLOSED
    form = None
    if can_write:
        form = ReviewForm(
            departments=_department_choices(scope),
            owners=queries.owner_choices(review.institution_id),
            initial={
                "department": review.department.code,
                "prescriber_code": review.prescriber_code,
                "reviewed_on": review.reviewed_on,
                "sample": review.sample,
                "rational": "1" if review.rational else "0",
                "issue": review.issue,
                "comment": review.comment,
                "owner": str(review.owner_id or ""),
                "due_on": review.due_on,
            },
        )
    context = {
        "case": review,
        "overdue": queries.is_overdue(review, timezone.localdate()),
        "issue_label": queries.ISSUE_CATEGORIES.get(review.issue, review.issue),
        "form": form,
        "close_form": CloseForm() if can_write else None,
        "can_start": can_write and review.status == CaseStatus.OPEN,
    }
    return render(request, "hospital/registers/review_detail.html", context)


@login_required
@require_POST
def review_update(request: HttpRequest, pk: int) -> HttpResponse:
    scope = scope_of(request, REVIEW)
    review = _review_or_404(pk)
    form = ReviewForm(
        request.POST, departments=_department_choices(scope), owners=queries.owner_choices(review.institution_id)
    )
    if not form.is_valid():
        messages.error(request, _("Please correct the form: %(errors)s") % {"errors": form.errors.as_text()})
    else:
        try:
            actions.do_update_review(scope, review, **_review_kwargs(form.cleaned_data))
        except WorkflowError as exc:
            messages.error(request, error_text(exc))
        else:
            messages.success(request, _("Saved."))
    return redirect("hospital:review_detail", pk=review.pk)


@login_required
@require_POST
def review_status(request: HttpRequest, pk: int) -> HttpResponse:
    """``action=start`` (open → in progress) or ``action=close`` with an ``outcome``."""
    scope = scope_of(request, REVIEW)
    review = _review_or_404(pk)
    try:
        if request.POST.get("action") == "start":
            actions.do_start_review(scope, review)
        else:
            actions.do_close_review(scope, review, outcome=request.POST.get("outcome", ""))
    except WorkflowError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, _("Status changed."))
    return redirect("hospital:review_detail", pk=review.pk)


@login_required
@require_GET
def review_export(request: HttpRequest) -> HttpResponse:
    scope_of(request, REVIEW, "export")
    today = timezone.localdate()
    rows = list(queries.reviews(queries.Filters.from_query(request.GET), today))
    return xlsx_response(queries.reviews_workbook(rows, today), f"prescription-reviews-{today:%Y%m%d}.xlsx")


# --------------------------------------------------------------------------------------------------
# Complaints (R-H11)


@login_required
@require_GET
def complaint_list(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request, COMPLAINT)
    today = timezone.localdate()
    filters = queries.Filters.from_query(request.GET)
    page = Paginator(queries.complaints(filters, today), PAGE_SIZE).get_page(request.GET.get("page"))
    can_write = scope.can(COMPLAINT, "write")
    context = {
        "page": page,
        "rows": _mark(list(page.object_list), today),
        "filters": filters,
        "query": filters.as_query(),
        "statuses": _status_choices(),
        "channels": list(queries.CHANNELS.items()),
        "channel_labels": queries.CHANNELS,
        "can_write": can_write,
        "can_export": scope.can(COMPLAINT, "export"),
        "form": ComplaintForm(owners=queries.owner_choices(scope.institution_id)) if can_write else None,
        "show_institution": scope.institution_id is None,
    }
    return render(request, "hospital/registers/complaint_list.html", context)


def _complaint_kwargs(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "received_on": data["received_on"],
        "channel": data["channel"],
        "product": data["product_code"] or None,
        "subject": data["subject"],
        "content": data["content"],
        "owner": data["owner"] or None,
        "due_on": data["due_on"],
    }


@login_required
@require_POST
def complaint_create(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request, COMPLAINT)
    form = ComplaintForm(request.POST, owners=queries.owner_choices(scope.institution_id))
    if not form.is_valid():
        messages.error(request, _("Please correct the form: %(errors)s") % {"errors": form.errors.as_text()})
        return redirect("hospital:complaint_list")
    try:
        complaint = actions.do_record_complaint(scope, **_complaint_kwargs(form.cleaned_data))
    except WorkflowError as exc:
        messages.error(request, error_text(exc))
        return redirect("hospital:complaint_list")
    messages.success(request, _("Complaint recorded."))
    return redirect("hospital:complaint_detail", pk=complaint.pk)


def _complaint_or_404(pk: int) -> Complaint:
    found: Complaint | None = (
        Complaint.objects.select_related("product", "owner", "institution", "created_by").filter(pk=pk).first()
    )
    if found is None:
        raise Http404("no such complaint")
    return found


@login_required
@require_GET
def complaint_detail(request: HttpRequest, pk: int) -> HttpResponse:
    scope = scope_of(request, COMPLAINT)
    complaint = _complaint_or_404(pk)
    can_write = scope.can(COMPLAINT, "write") and complaint.status != CaseStatus.CLOSED
    form = None
    if can_write:
        form = ComplaintForm(
            owners=queries.owner_choices(complaint.institution_id),
            initial={
                "received_on": complaint.received_on,
                "channel": complaint.channel,
                "product_code": complaint.product.code if complaint.product else "",
                "subject": complaint.subject,
                "content": complaint.content,
                "owner": str(complaint.owner_id or ""),
                "due_on": complaint.due_on,
            },
        )
    context = {
        "case": complaint,
        "overdue": queries.is_overdue(complaint, timezone.localdate()),
        "channel_label": queries.CHANNELS.get(complaint.channel, complaint.channel),
        "form": form,
        "close_form": CloseForm() if can_write else None,
        "can_start": can_write and complaint.status == CaseStatus.OPEN,
    }
    return render(request, "hospital/registers/complaint_detail.html", context)


@login_required
@require_POST
def complaint_update(request: HttpRequest, pk: int) -> HttpResponse:
    scope = scope_of(request, COMPLAINT)
    complaint = _complaint_or_404(pk)
    form = ComplaintForm(request.POST, owners=queries.owner_choices(complaint.institution_id))
    if not form.is_valid():
        messages.error(request, _("Please correct the form: %(errors)s") % {"errors": form.errors.as_text()})
    else:
        try:
            actions.do_update_complaint(scope, complaint, **_complaint_kwargs(form.cleaned_data))
        except WorkflowError as exc:
            messages.error(request, error_text(exc))
        else:
            messages.success(request, _("Saved."))
    return redirect("hospital:complaint_detail", pk=complaint.pk)


@login_required
@require_POST
def complaint_status(request: HttpRequest, pk: int) -> HttpResponse:
    """``action=start`` (open → in progress) or ``action=close`` with an ``outcome``."""
    scope = scope_of(request, COMPLAINT)
    complaint = _complaint_or_404(pk)
    try:
        if request.POST.get("action") == "start":
            actions.do_start_complaint(scope, complaint)
        else:
            actions.do_close_complaint(scope, complaint, outcome=request.POST.get("outcome", ""))
    except WorkflowError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, _("Status changed."))
    return redirect("hospital:complaint_detail", pk=complaint.pk)


@login_required
@require_GET
def complaint_export(request: HttpRequest) -> HttpResponse:
    scope_of(request, COMPLAINT, "export")
    today = timezone.localdate()
    rows = list(queries.complaints(queries.Filters.from_query(request.GET), today))
    return xlsx_response(queries.complaints_workbook(rows, today), f"complaints-{today:%Y%m%d}.xlsx")
