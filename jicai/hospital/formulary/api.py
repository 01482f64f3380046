"""Formulary advice API (R-H6) at /api/v1/hospital/formulary: reviews, entries, decisions, export."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Router, Schema
from ninja.errors import HttpError
from ninja.responses import Status

from jicai.core.tenancy import use_scope
from jicai.hospital.common import WorkflowError
from jicai.hospital.formulary import actions, queries
from jicai.hospital.formulary.export import review_workbook
from jicai.hospital.models import FormularyEntry, FormularyReview
from jicai.hospital.shell import ErrorOut, api_scope, not_found, workflow_error, xlsx_response

router = Router(tags=["hospital"])
RESOURCE = "formulary"
MAX_PAGE_SIZE = 500


class ProductRef(Schema):
    product_code: str
    item_code: str = ""


class ReviewIn(Schema):
    batch: str
    trigger: str
    as_of: dt.date
    extra_products: list[ProductRef] = []
    institution: str | None = None


class ReviewOut(Schema):
    id: int
    institution: str
    batch: str
    trigger: str
    as_of: dt.date
    committee_meeting: str
    created_by: str | None
    created_at: dt.datetime
    entries: int
    decided: int
    keep: int
    suspend: int
    drop: int


class EntryOut(Schema):
    id: int
    item: str
    product: str
    product_name: str
    advice: str
    reason: str
    reason_zh: str
    reason_en: str
    detail: dict[str, Any]
    decision: str
    decision_note: str
    meeting: str
    decided_by: str | None
    decided_at: dt.datetime | None


class ReviewDetailOut(ReviewOut):
    entries_list: list[EntryOut]


class ReviewPage(Schema):
    count: int
    page: int
    page_size: int
    results: list[ReviewOut]


class ExpiringOut(Schema):
    batch: str
    batch_name: str
    expires_on: dt.date
    days_left: int
    reviewed: bool


class AddProductIn(Schema):
    product_code: str
    item_code: str = ""


class DecisionIn(Schema):
    decision: str
    meeting: str
    note: str = ""


class DecisionItem(Schema):
    entry: int
    decision: str
    note: str = ""


class DecisionsIn(Schema):
    meeting: str
    decisions: list[DecisionItem]


def _review_out(review: FormularyReview, counts: dict[str, int]) -> dict[str, Any]:
    return {
        "id": review.pk,
        "institution": review.institution.code,
        "batch": review.batch.code,
        "trigger": review.trigger,
        "as_of": review.as_of,
        "committee_meeting": review.committee_meeting,
        "created_by": review.created_by.get_username() if review.created_by else None,
        "created_at": review.created_at,
        "entries": counts["entries"],
        "decided": counts["decided"],
        "keep": counts["keep"],
        "suspend": counts["suspend"],
        "drop": counts["drop"],
    }


def _entry_out(e: FormularyEntry) -> dict[str, Any]:
    detail = e.detail or {}
    return {
        "id": e.pk,
        "item": e.item.item_code,
        "product": e.product.code,
        "product_name": e.product.generic_name,
        "advice": e.advice,
        "reason": e.reason,
        "reason_zh": detail.get("reason_zh", ""),
        "reason_en": detail.get("reason_en", ""),
        "detail": detail,
        "decision": e.decision,
        "decision_note": e.decision_note,
        "meeting": detail.get("decision_meeting", ""),
        "decided_by": e.decided_by.get_username() if e.decided_by else None,
        "decided_at": e.decided_at,
    }


def _detail(review_id: int) -> dict[str, Any]:
    review = queries.reviews(None).filter(pk=review_id).first()
    if review is None:
        raise HttpError(404, "no such formulary review in your scope")
    rows = queries.entries(review)
    return {
        **_review_out(review, queries.entry_counts([review.pk])[review.pk]),
        "entries_list": [_entry_out(e) for e in rows],
    }


@router.get("/reviews", response=ReviewPage, summary="Formulary reviews (R-H6)")
def list_reviews(request: HttpRequest, page: int = 1, page_size: int = 50) -> dict[str, Any]:
    scope = api_scope(request, RESOURCE)
    page_size = max(1, min(page_size, MAX_PAGE_SIZE))
    page = max(page, 1)
    with use_scope(scope):
        qs = queries.reviews(scope)
        count = qs.count()
        rows = list(qs[(page - 1) * page_size : page * page_size])
        counts = queries.entry_counts([r.pk for r in rows])
    return {
        "count": count,
        "page": page,
        "page_size": page_size,
        "results": [_review_out(r, counts[r.pk]) for r in rows],
    }


@router.get("/expiring", response=list[ExpiringOut], summary="Rounds whose agreements end soon (re-evaluate, R-H6)")
def expiring(request: HttpRequest, days: int = queries.EXPIRY_PROMPT_DAYS) -> list[dict[str, Any]]:
    scope = api_scope(request, RESOURCE)
    rows = queries.expiring_rounds(scope, timezone.localdate(), max(0, days))
    return [
        {
            "batch": r["batch"].code,
            "batch_name": r["batch"].name,
            "expires_on": r["expires_on"],
            "days_left": r["days_left"],
            "reviewed": r["reviewed"],
        }
        for r in rows
    ]


@router.post("/reviews", response={201: ReviewDetailOut, 400: ErrorOut}, summary="Apply the formulary rules to a round")
def create_review(request: HttpRequest, body: ReviewIn) -> Any:
    scope = api_scope(request, RESOURCE)
    try:
        review = actions.do_create_review(
            scope,
            batch_code=body.batch,
            trigger=body.trigger,
            as_of=body.as_of,
            extra_products=[(p.product_code, p.item_code) for p in body.extra_products],
            institution_code=body.institution,
        )
    except WorkflowError as exc:
        return workflow_error(exc)
    with use_scope(scope):
        return Status(201, _detail(review.pk))


@router.get("/reviews/{review_id}", response={200: ReviewDetailOut, 404: ErrorOut})
def get_review(request: HttpRequest, review_id: int) -> Any:
    scope = api_scope(request, RESOURCE)
    with use_scope(scope):
        if not FormularyReview.objects.filter(pk=review_id).exists():
            return not_found("formulary review")
        return Status(200, _detail(review_id))


@router.post("/reviews/{review_id}/products", response={201: EntryOut, 400: ErrorOut, 404: ErrorOut})
def add_product(request: HttpRequest, review_id: int, body: AddProductIn) -> Any:
    scope = api_scope(request, RESOURCE)
    with use_scope(scope):
        if not FormularyReview.objects.filter(pk=review_id).exists():
            return not_found("formulary review")
    try:
        entry = actions.do_add_product(scope, review_id, product_code=body.product_code, item_code=body.item_code)
    except WorkflowError as exc:
        return workflow_error(exc)
    with use_scope(scope):
        return Status(
            201, _entry_out(FormularyEntry.objects.select_related("item", "product", "decided_by").get(pk=entry.pk))
        )


@router.post("/entries/{entry_id}/decision", response={200: EntryOut, 400: ErrorOut, 404: ErrorOut})
def record_decision(request: HttpRequest, entry_id: int, body: DecisionIn) -> Any:
    """The pharmacy and therapeutics committee's decision on one product (formulary:approve)."""
    scope = api_scope(request, RESOURCE)
    with use_scope(scope):
        if not FormularyEntry.objects.filter(pk=entry_id).exists():
            return not_found("formulary entry")
    try:
        actions.do_record_decision(scope, entry_id, decision=body.decision, meeting=body.meeting, note=body.note)
    except WorkflowError as exc:
        return workflow_error(exc)
    with use_scope(scope):
        return Status(
            200, _entry_out(FormularyEntry.objects.select_related("item", "product", "decided_by").get(pk=entry_id))
        )


@router.post("/reviews/{review_id}/decisions", response={200: ReviewDetailOut, 400: ErrorOut, 404: ErrorOut})
def record_decisions(request: HttpRequest, review_id: int, body: DecisionsIn) -> Any:
    """Several decisions of one committee meeting, all or none (formulary:approve)."""
    scope = api_scope(request, RESOURCE)
    with use_scope(scope):
        if not FormularyReview.objects.filter(pk=review_id).exists():
            return not_found("formulary review")
    try:
        actions.do_record_decisions(
            scope, review_id, meeting=body.meeting, decisions={d.entry: (d.decision, d.note) for d in body.decisions}
        )
    except WorkflowError as exc:
        return workflow_error(exc)
    with use_scope(scope):
        return Status(200, _detail(review_id))


@router.delete("/reviews/{review_id}", response={204: None, 400: ErrorOut, 404: ErrorOut})
def delete_review(request: HttpRequest, review_id: int) -> Any:
    scope = api_scope(request, RESOURCE)
    with use_scope(scope):
        if not FormularyReview.objects.filter(pk=review_id).exists():
            return not_found("formulary review")
    try:
        actions.do_delete_review(scope, review_id)
    except WorkflowError as exc:
        return workflow_error(exc)
    return Status(204, None)


@router.get("/reviews/{review_id}/export", summary="The review as Excel (formulary:export)")
def export_review(request: HttpRequest, review_id: int) -> HttpResponse:
    scope = api_scope(request, RESOURCE, "export")
    with use_scope(scope):
        review = queries.reviews(scope).filter(pk=review_id).first()
        if review is None:
            raise HttpError(404, "no such formulary review in your scope")
        data = review_workbook(review, queries.entries(review))
    return xlsx_response(data, f"formulary-review-{review.pk}.xlsx")
