"""Retained surplus pages (R-G3): the distributions, one distribution's pools and shares with its
approval, and the Excel export for finance."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from jicai.hospital.common import WorkflowError
from jicai.hospital.models import SurplusDistribution, SurplusStatus
from jicai.hospital.shell import error_text, scope_of, xlsx_response
from jicai.hospital.surplus import actions, queries
from jicai.hospital.surplus.export import distribution_workbook
from jicai.hospital.surplus.forms import DistributionForm

PAGE_SIZE = 50
RESOURCE = "surplus"


def _distribution_or_404(pk: int) -> SurplusDistribution:
    found: SurplusDistribution | None = queries.distributions().filter(pk=pk).first()
    if found is None:
        raise Http404("no such surplus distribution")
    return found


def _staff_text(dist: SurplusDistribution) -> str:
    lines = []
    for name, weight in dist.params.get("pharmacy_staff", []):
        lines.append(name if weight is None else f"{name},{weight}")
    return "\n".join(lines)


@login_required
@require_GET
def surplus_list(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request, RESOURCE)
    page = Paginator(queries.distributions(), PAGE_SIZE).get_page(request.GET.get("page"))
    can_write = scope.can(RESOURCE, "write")
    context: dict[str, Any] = {
        "page": page,
        "rows": list(page.object_list),
        "can_write": can_write,
        "form": DistributionForm() if can_write else None,
        "show_institution": scope.institution_id is None,
    }
    return render(request, "hospital/surplus/list.html", context)


def _form_kwargs(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "period": data["period"],
        "amount": data["amount"],
        "date_from": data["date_from"],
        "date_to": data["date_to"],
        "basis": data["basis"],
        "pharmacy_staff": queries.parse_staff(data["pharmacy_staff"]),
    }


@login_required
@require_POST
def surplus_create(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request, RESOURCE)
    form = DistributionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Please correct the form: %(errors)s") % {"errors": form.errors.as_text()})
        return redirect("hospital:surplus_list")
    try:
        dist = actions.do_create_distribution(
            scope, institution_code=request.POST.get("institution") or None, **_form_kwargs(form.cleaned_data)
        )
    except WorkflowError as exc:
        messages.error(request, error_text(exc))
        return redirect("hospital:surplus_list")
    messages.success(request, _("Distribution drafted."))
    return redirect("hospital:surplus_detail", pk=dist.pk)


@login_required
@require_GET
def surplus_detail(request: HttpRequest, pk: int) -> HttpResponse:
    scope = scope_of(request, RESOURCE)
    dist = _distribution_or_404(pk)
    rows = queries.shares(dist)
    totals = queries.pool_totals(rows)
    draft = dist.status == SurplusStatus.DRAFT
    can_write = scope.can(RESOURCE, "write") and draft
    p = dist.params or {}
    form = None
    if can_write:
        form = DistributionForm(
            initial={
                "period": dist.period,
                "amount": dist.amount,
                "date_from": p.get("from"),
                "date_to": p.get("to"),
                "basis": p.get("basis", "amount"),
                "pharmacy_staff": _staff_text(dist),
            }
        )
    pools = [
        {
            "pool": pool,
            "label": queries.POOL_LABELS[pool],
            "share": p.get("split", {}).get(pool, ""),
            "amount": totals[pool],
            "shares": [s for s in rows if s.pool == pool],
        }
        for pool in queries.POOLS
    ]
    context = {
        "dist": dist,
        "params": p,
        "pools": pools,
        "total": sum(totals.values(), Decimal(0)),
        "count": len(rows),
        "basis_label": queries.BASIS_LABELS.get(p.get("basis", ""), ""),
        "can_write": can_write,
        "can_approve": scope.can(RESOURCE, "approve") and draft,
        "can_export": scope.can(RESOURCE, "export"),
        "form": form,
    }
    return render(request, "hospital/surplus/detail.html", context)


@login_required
@require_POST
def surplus_update(request: HttpRequest, pk: int) -> HttpResponse:
    scope = scope_of(request, RESOURCE)
    dist = _distribution_or_404(pk)
    form = DistributionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Please correct the form: %(errors)s") % {"errors": form.errors.as_text()})
        return redirect("hospital:surplus_detail", pk=dist.pk)
    try:
        actions.do_update_distribution(scope, dist, **_form_kwargs(form.cleaned_data))
    except WorkflowError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, _("Distribution recalculated."))
    return redirect("hospital:surplus_detail", pk=dist.pk)


@login_required
@require_POST
def surplus_approve(request: HttpRequest, pk: int) -> HttpResponse:
    scope = scope_of(request, RESOURCE)
    dist = _distribution_or_404(pk)
    try:
        actions.do_approve_distribution(scope, dist)
    except WorkflowError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, _("Distribution approved."))
    return redirect("hospital:surplus_detail", pk=dist.pk)


@login_required
@require_POST
def surplus_delete(request: HttpRequest, pk: int) -> HttpResponse:
    scope = scope_of(request, RESOURCE)
    dist = _distribution_or_404(pk)
    try:
        actions.do_delete_distribution(scope, dist)
    except WorkflowError as exc:
        messages.error(request, error_text(exc))
        return redirect("hospital:surplus_detail", pk=dist.pk)
    messages.success(request, _("Draft deleted."))
    return redirect("hospital:surplus_list")


@login_required
@require_GET
def surplus_export(request: HttpRequest, pk: int) -> HttpResponse:
    scope_of(request, RESOURCE, "export")
    dist = _distribution_or_404(pk)
    return xlsx_response(distribution_workbook(dist, queries.shares(dist)), f"surplus-{dist.pk}.xlsx")
