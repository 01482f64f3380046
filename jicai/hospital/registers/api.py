"""Register API (R-H10, R-H11) at /api/v1/hospital/registers: prescription reviews and complaints —
lists with the page's filters, record, edit, start, close, export."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Router, Schema
from ninja.responses import Status

from jicai.core.tenancy import use_scope
from jicai.hospital.common import WorkflowError
from jicai.hospital.models import Complaint, PrescriptionReview
from jicai.hospital.registers import actions, queries
from jicai.hospital.shell import ErrorOut, api_scope, not_found, workflow_error, xlsx_response

router = Router(tags=["hospital"])
REVIEW = "prescription_review"
COMPLAINT = "complaint"
MAX_PAGE_SIZE = 500


class ReviewIn(Schema):
    department: str
    reviewed_on: dt.date
    sample: str
    rational: bool
    due_on: dt.date
    issue: str = ""
    comment: str = ""
    prescriber_code: str = ""
    owner: str | None = None  # username
    institution: str | None = None


class ReviewPatch(Schema):
    department: str | None = None
    reviewed_on: dt.date | None = None
    sample: str | None = None
    rational: bool | None = None
    due_on: dt.date | None = None
    issue: str | None = None
    comment: str | None = None
    prescriber_code: str | None = None
    owner: str | None = None


class ReviewOut(Schema):
    id: int
    institution: str
    department: str
    department_name: str
    prescriber_code: str
    reviewed_on: dt.date
    sample: str
    rational: bool
    issue: str
    issue_zh: str
    comment: str
    owner: str | None
    due_on: dt.date
    status: str
    overdue: bool
    outcome: str
    closed_at: dt.datetime | None


class ComplaintIn(Schema):
    received_on: dt.date
    channel: str
    subject: str
    content: str
    due_on: dt.date
    product: str | None = None  # product code
    owner: str | None = None
    institution: str | None = None


class ComplaintPatch(Schema):
    received_on: dt.date | None = None
    channel: str | None = None
    subject: str | None = None
    content: str | None = None
    due_on: dt.date | None = None
    product: str | None = None
    owner: str | None = None


class ComplaintOut(Schema):
    id: int
    institution: str
    received_on: dt.date
    channel: str
    channel_zh: str
    product: str | None
    subject: str
    content: str
    owner: str | None
    due_on: dt.date
    status: str
    overdue: bool
    outcome: str
    closed_at: dt.datetime | None


class ReviewPage(Schema):
    count: int
    page: int
    page_size: int
    results: list[ReviewOut]


class ComplaintPage(Schema):
    count: int
    page: int
    page_size: int
    results: list[ComplaintOut]


class CloseIn(Schema):
    outcome: str


def _review_out(r: PrescriptionReview, today: dt.date) -> dict[str, Any]:
    return {
        "id": r.pk,
        "institution": r.institution.code,
        "department": r.department.code,
        "department_name": r.department.name,
        "prescriber_code": r.prescriber_code,
        "reviewed_on": r.reviewed_on,
        "sample": r.sample,
        "rational": r.rational,
        "issue": r.issue,
        "issue_zh": queries.ISSUE_ZH.get(r.issue, ""),
        "comment": r.comment,
        "owner": r.owner.get_username() if r.owner else None,
        "due_on": r.due_on,
        "status": r.status,
        "overdue": queries.is_overdue(r, today),
        "outcome": r.outcome,
        "closed_at": r.closed_at,
    }


def _complaint_out(c: Complaint, today: dt.date) -> dict[str, Any]:
    return {
        "id": c.pk,
        "institution": c.institution.code,
        "received_on": c.received_on,
        "channel": c.channel,
        "channel_zh": queries.CHANNEL_ZH.get(c.channel, ""),
        "product": c.product.code if c.product else None,
        "subject": c.subject,
        "content": c.content,
        "owner": c.owner.get_username() if c.owner else None,
        "due_on": c.due_on,
        "status": c.status,
        "overdue": queries.is_overdue(c, today),
        "outcome": c.outcome,
        "closed_at": c.closed_at,
    }


def _filters(
    *, status: str = "", department: str = "", overdue: bool = False, issue: str = "", channel: str = "", q: str = ""
) -> queries.Filters:
    return queries.Filters.from_query(
        {
            "status": status,
            "department": department,
            "overdue": "1" if overdue else "",
            "issue": issue,
            "channel": channel,
            "q": q,
        }
    )


def _page(qs: Any, page: int, page_size: int) -> tuple[int, int, int, list[Any]]:
    page_size = max(1, min(page_size, MAX_PAGE_SIZE))
    page = max(page, 1)
    return qs.count(), page, page_size, list(qs[(page - 1) * page_size : page * page_size])


def _one_review(pk: int) -> dict[str, Any]:
    r = PrescriptionReview.objects.select_related("department", "owner", "institution").get(pk=pk)
    return _review_out(r, timezone.localdate())


def _one_complaint(pk: int) -> dict[str, Any]:
    c = Complaint.objects.select_related("product", "owner", "institution").get(pk=pk)
    return _complaint_out(c, timezone.localdate())


# --------------------------------------------------------------------------------------------------
# Prescription review (R-H10)


@router.get("/reviews", response=ReviewPage, summary="Prescription reviews (R-H10)")
def list_reviews(
    request: HttpRequest,
    *,
    status: str = "",
    department: str = "",
    overdue: bool = False,
    issue: str = "",
    q: str = "",
    page: int = 1,
    page_size: int = 50,
) -> dict[str, Any]:
    scope = api_scope(request, REVIEW)
    today = timezone.localdate()
    with use_scope(scope):
        count, page, page_size, rows = _page(
            queries.reviews(_filters(status=status, department=department, overdue=overdue, issue=issue, q=q), today),
            page,
            page_size,
        )
        results = [_review_out(r, today) for r in rows]
    return {"count": count, "page": page, "page_size": page_size, "results": results}


@router.post("/reviews", response={201: ReviewOut, 400: ErrorOut})
def create_review(request: HttpRequest, body: ReviewIn) -> Any:
    scope = api_scope(request, REVIEW)
    data = body.dict()
    institution = data.pop("institution")
    try:
        review = actions.do_record_review(scope, institution_code=institution, **data)
    except WorkflowError as exc:
        return workflow_error(exc)
    with use_scope(scope):
        return Status(201, _one_review(review.pk))


@router.get("/reviews/{case_id}", response={200: ReviewOut, 404: ErrorOut})
def get_review(request: HttpRequest, case_id: int) -> Any:
    scope = api_scope(request, REVIEW)
    with use_scope(scope):
        if not PrescriptionReview.objects.filter(pk=case_id).exists():
            return not_found("prescription review")
        return Status(200, _one_review(case_id))


@router.patch("/reviews/{case_id}", response={200: ReviewOut, 400: ErrorOut, 404: ErrorOut})
def update_review(request: HttpRequest, case_id: int, body: ReviewPatch) -> Any:
    """Change details, owner (username) or due date of a case that is not closed."""
    scope = api_scope(request, REVIEW)
    with use_scope(scope):
        if not PrescriptionReview.objects.filter(pk=case_id).exists():
            return not_found("prescription review")
    try:
        actions.do_update_review(scope, case_id, **body.dict(exclude_unset=True))
    except WorkflowError as exc:
        return workflow_error(exc)
    with use_scope(scope):
        return Status(200, _one_review(case_id))


@router.post("/reviews/{case_id}/start", response={200: ReviewOut, 400: ErrorOut, 404: ErrorOut})
def start_review(request: HttpRequest, case_id: int) -> Any:
    scope = api_scope(request, REVIEW)
    with use_scope(scope):
        if not PrescriptionReview.objects.filter(pk=case_id).exists():
            return not_found("prescription review")
    try:
        actions.do_start_review(scope, case_id)
    except WorkflowError as exc:
        return workflow_error(exc)
    with use_scope(scope):
        return Status(200, _one_review(case_id))


@router.post("/reviews/{case_id}/close", response={200: ReviewOut, 400: ErrorOut, 404: ErrorOut})
def close_review(request: HttpRequest, case_id: int, body: CloseIn) -> Any:
    scope = api_scope(request, REVIEW)
    with use_scope(scope):
        if not PrescriptionReview.objects.filter(pk=case_id).exists():
            return not_found("prescription review")
    try:
        actions.do_close_review(scope, case_id, outcome=body.outcome)
    except WorkflowError as exc:
        return workflow_error(exc)
    with use_scope(scope):
        return Status(200, _one_review(case_id))


@router.get("/reviews-export", summary="Prescription reviews as Excel (the list's filters)")
def export_reviews(
    request: HttpRequest, *, status: str = "", department: str = "", overdue: bool = False, issue: str = "", q: str = ""
) -> HttpResponse:
    scope = api_scope(request, REVIEW, "export")
    today = timezone.localdate()
    with use_scope(scope):
        rows = list(
            queries.reviews(_filters(status=status, department=department, overdue=overdue, issue=issue, q=q), today)
        )
        data = queries.reviews_workbook(rows, today)
    return xlsx_response(data, f"prescription-reviews-{today:%Y%m%d}.xlsx")


# --------------------------------------------------------------------------------------------------
# Complaints (R-H11)


@router.get("/complaints", response=ComplaintPage, summary="Patients' objections and complaints (R-H11)")
def list_complaints(
    request: HttpRequest,
    *,
    status: str = "",
    channel: str = "",
    overdue: bool = False,
    q: str = "",
    page: int = 1,
    page_size: int = 50,
) -> dict[str, Any]:
    scope = api_scope(request, COMPLAINT)
    today = timezone.localdate()
    with use_scope(scope):
        count, page, page_size, rows = _page(
            queries.complaints(_filters(status=status, overdue=overdue, channel=channel, q=q), today), page, page_size
        )
        results = [_complaint_out(c, today) for c in rows]
    return {"count": count, "page": page, "page_size": page_size, "results": results}


@router.post("/complaints", response={201: ComplaintOut, 400: ErrorOut})
def create_complaint(request: HttpRequest, body: ComplaintIn) -> Any:
    scope = api_scope(request, COMPLAINT)
    data = body.dict()
    institution = data.pop("institution")
    try:
        complaint = actions.do_record_complaint(scope, institution_code=institution, **data)
    except WorkflowError as exc:
        return workflow_error(exc)
    with use_scope(scope):
        return Status(201, _one_complaint(complaint.pk))


@router.get("/complaints/{case_id}", response={200: ComplaintOut, 404: ErrorOut})
def get_complaint(request: HttpRequest, case_id: int) -> Any:
    scope = api_scope(request, COMPLAINT)
    with use_scope(scope):
        if not Complaint.objects.filter(pk=case_id).exists():
            return not_found("complaint")
        return Status(200, _one_complaint(case_id))


@router.patch("/complaints/{case_id}", response={200: ComplaintOut, 400: ErrorOut, 404: ErrorOut})
def update_complaint(request: HttpRequest, case_id: int, body: ComplaintPatch) -> Any:
    scope = api_scope(request, COMPLAINT)
    with use_scope(scope):
        if not Complaint.objects.filter(pk=case_id).exists():
            return not_found("complaint")
    try:
        actions.do_update_complaint(scope, case_id, **body.dict(exclude_unset=True))
    except WorkflowError as exc:
        return workflow_error(exc)
    with use_scope(scope):
        return Status(200, _one_complaint(case_id))


@router.post("/complaints/{case_id}/start", response={200: ComplaintOut, 400: ErrorOut, 404: ErrorOut})
def start_complaint(request: HttpRequest, case_id: int) -> Any:
    scope = api_scope(request, COMPLAINT)
    with use_scope(scope):
        if not Complaint.objects.filter(pk=case_id).exists():
            return not_found("complaint")
    try:
        actions.do_start_complaint(scope, case_id)
    except WorkflowError as exc:
        return workflow_error(exc)
    with use_scope(scope):
        return Status(200, _one_complaint(case_id))


@router.post("/complaints/{case_id}/close", response={200: ComplaintOut, 400: ErrorOut, 404: ErrorOut})
def close_complaint(request: HttpRequest, case_id: int, body: CloseIn) -> Any:
    scope = api_scope(request, COMPLAINT)
    with use_scope(scope):
        if not Complaint.objects.filter(pk=case_id).exists():
            return not_found("complaint")
    try:
        actions.do_close_complaint(scope, case_id, outcome=body.outcome)
    except WorkflowError as exc:
        return workflow_error(exc)
    with use_scope(scope):
        return Status(200, _one_complaint(case_id))


@router.get("/complaints-export", summary="Complaints as Excel (the list's filters)")
def export_complaints(
    request: HttpRequest, *, status: str = "", channel: str = "", overdue: bool = False, q: str = ""
) -> HttpResponse:
    scope = api_scope(request, COMPLAINT, "export")
    today = timezone.localdate()
    with use_scope(scope):
        rows = list(queries.complaints(_filters(status=status, overdue=overdue, channel=channel, q=q), today))
        data = queries.complaints_workbook(rows, today)
    return xlsx_response(data, f"complaints-{today:%Y%m%d}.xlsx")
