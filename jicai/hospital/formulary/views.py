"""Formulary advice pages (R-H6): the reviews with the rounds due for re-evaluation, one review's
advice per product with the committee's decisions, and the Excel export."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from jicai.hospital.common import WorkflowError
from jicai.hospital.formulary import actions, queries
from jicai.hospital.formulary.export import review_workbook
from jicai.hospital.formulary.forms import AddProductForm, ReviewForm
from jicai.hospital.models import FormularyReview
from jicai.hospital.shell import error_text, scope_of, xlsx_response
from jicai.programme.models import Batch

PAGE_SIZE = 50
RESOURCE = "formulary"


def _batch_choices() -> list[tuple[str, str]]:
    return [(b.code, str(b)) for b in Batch.objects.order_by("-start_date", "code")]


def _review_or_404(pk: int) -> FormularyReview:
    review: FormularyReview | None = (
        FormularyReview.objects.select_related("batch", "institution", "created_by").filter(pk=pk).first()
    )
    if review is None:
        raise Http404("no such formulary review")
    return review


@login_required
@require_GET
def formulary_list(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request, RESOURCE)
    page = Paginator(queries.reviews(scope), PAGE_SIZE).get_page(request.GET.get("page"))
    counts = queries.entry_counts([r.pk for r in page.object_list])
    can_write = scope.can(RESOURCE, "write")
    context: dict[str, Any] = {
        "page": page,
        "rows": [(r, counts[r.pk]) for r in page.object_list],
        "expiring": queries.expiring_rounds(scope, timezone.localdate()),
        "expiry_days": queries.EXPIRY_PROMPT_DAYS,
        "can_write": can_write,
        "form": ReviewForm(batches=_batch_choices()) if can_write else None,
        "show_institution": scope.institution_id is None,
    }
    return render(request, "hospital/formulary/list.html", context)


@login_required
@require_POST
def formulary_create(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request, RESOURCE)
    form = ReviewForm(request.POST, batches=_batch_choices())
    if form.is_valid():
        data = form.cleaned_data
        try:
            review = actions.do_create_review(
                scope,
                batch_code=data["batch"],
                trigger=data["trigger"],
                as_of=data["as_of"],
                extra_products=queries.parse_extra_products(data["extra_products"]),
                institution_code=request.POST.get("institution") or None,
            )
        except WorkflowError as exc:
            messages.error(request, error_text(exc))
        else:
            messages.success(request, _("Formulary review created."))
            return redirect("hospital:formulary_detail", pk=review.pk)
    else:
        messages.error(request, _("Please correct the form."))
    return redirect("hospital:formulary_list")


@login_required
@require_GET
def formulary_detail(request: HttpRequest, pk: int) -> HttpResponse:
    scope = scope_of(request, RESOURCE)
    review = _review_or_404(pk)
    rows = queries.entries(review)
    english = (translation.get_language() or "").startswith("en")
    for e in rows:
        detail = e.detail or {}
        e.__dict__.update(  # labels for the template
            advice_label=queries.ACTION_LABELS.get(e.advice, "—"),
            decision_label=queries.ACTION_LABELS.get(e.decision, ""),
            reason_label=queries.REASON_LABELS.get(e.reason, e.reason),
            reason_text=detail.get("reason_en" if english else "reason_zh", ""),
            kind_label=queries.KIND_LABELS.get(detail.get("kind", ""), ""),
            price_source_label=queries.PRICE_SOURCE_LABELS.get(detail.get("price_source") or "", ""),
        )
    context = {
        "review": review,
        "entries": rows,
        "can_write": scope.can(RESOURCE, "write"),
        "can_approve": scope.can(RESOURCE, "approve"),
        "can_export": scope.can(RESOURCE, "export"),
        "add_form": AddProductForm(),
        "undecided": sum(1 for e in rows if not e.decision),
        "actions": list(queries.ACTION_LABELS.items()),
    }
    return render(request, "hospital/formulary/detail.html", context)


@login_required
@require_POST
def formulary_add_product(request: HttpRequest, pk: int) -> HttpResponse:
    scope = scope_of(request, RESOURCE)
    review = _review_or_404(pk)
    form = AddProductForm(request.POST)
    if form.is_valid():
        try:
            actions.do_add_product(
                scope, review, product_code=form.cleaned_data["product_code"], item_code=form.cleaned_data["item_code"]
            )
        except WorkflowError as exc:
            messages.error(request, error_text(exc))
        else:
            messages.success(request, _("Product added."))
    return redirect("hospital:formulary_detail", pk=review.pk)


@login_required
@require_POST
def formulary_decide(request: HttpRequest, pk: int) -> HttpResponse:
    """Record the committee's decisions posted as ``decision_<entry id>`` / ``note_<entry id>``."""
    scope = scope_of(request, RESOURCE)
    review = _review_or_404(pk)
    current = {e.pk: e for e in queries.entries(review)}
    decisions: dict[int, tuple[str, str]] = {}
    for pk_, entry in current.items():
        decision = request.POST.get(f"decision_{pk_}", "").strip()
        note = request.POST.get(f"note_{pk_}", "").strip()
        if decision and (decision != entry.decision or note != entry.decision_note):
            decisions[pk_] = (decision, note)
    if not decisions:
        messages.info(request, _("No decision changed."))
        return redirect("hospital:formulary_detail", pk=review.pk)
    try:
        actions.do_record_decisions(scope, review, meeting=request.POST.get("meeting", ""), decisions=decisions)
    except WorkflowError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, _("%(n)d decision(s) recorded.") % {"n": len(decisions)})
    return redirect("hospital:formulary_detail", pk=review.pk)


@login_required
@require_POST
def formulary_delete(request: HttpRequest, pk: int) -> HttpResponse:
    scope = scope_of(request, RESOURCE)
    review = _review_or_404(pk)
    try:
        actions.do_delete_review(scope, review)
    except WorkflowError as exc:
        messages.error(request, error_text(exc))
        return redirect("hospital:formulary_detail", pk=review.pk)
    messages.success(request, _("Formulary review deleted."))
    return redirect("hospital:formulary_list")


@login_required
@require_GET
def formulary_export(request: HttpRequest, pk: int) -> HttpResponse:
    scope_of(request, RESOURCE, "export")
    review = _review_or_404(pk)
    return xlsx_response(review_workbook(review, queries.entries(review)), f"formulary-review-{review.pk}.xlsx")
