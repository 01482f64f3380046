"""Credit file pages (R-I3): events, derivation, the ranking by score, a company's file, sanctions, and
the distributor scorecard."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from jicai.core.tenancy import Level
from jicai.organizations.models import Company
from jicai.policy.supply import DEFAULT_CREDIT, DEFAULT_DELIVERY, Period, credit_score, parse_period
from jicai.supply import actions, queries
from jicai.supply import permissions as perms
from jicai.supply.common import WorkflowError
from jicai.supply.datasets import SPECS
from jicai.supply.forms import CreditEventForm, DeriveForm, SanctionForm
from jicai.supply.models import CreditEvent, CreditKind, CreditSource, Sanction, SanctionKind, Severity
from jicai.supply.views.common import PAGE_SIZE, export_xlsx, import_page, need, one_or_404, paginate, params

EVENTS = SPECS["credit_events"]
SANCTIONS = SPECS["sanctions"]


def _period(request: HttpRequest) -> tuple[Period, str]:
    """The ``period`` parameter (default: this year) and an error message when it was not readable."""
    label = (request.GET.get("period") or "").strip()
    if label:
        try:
            return parse_period(label), ""
        except ValueError:
            pass
    this_year = parse_period(str(timezone.localdate().year))
    return this_year, (_("Unreadable period; showing %(year)s.") % {"year": this_year.label}) if label else ""


def _form_error(form: Any, exc: WorkflowError) -> None:
    form.add_error(exc.field if exc.field in form.fields else None, exc.message_zh)


def _hospital(scope: Any) -> bool:
    return scope.level in (Level.INSTITUTION, Level.DEPARTMENT)


# --------------------------------------------------------------------------------------------------
# Events


@login_required
def event_list(request: HttpRequest) -> HttpResponse:
    scope = need(request, perms.CREDIT)
    query = params(request)
    return render(
        request,
        "supply/credit_list.html",
        {
            "page": paginate(request, queries.credit_events(query)),
            "query": query,
            "kinds": CreditKind.choices,
            "severities": Severity.choices,
            "sources": CreditSource.choices,
            "can_write": scope.can(perms.CREDIT, "write"),
            "can_import": scope.can(perms.CREDIT, "import"),
            "can_export": scope.can(perms.CREDIT, "export"),
            "can_derive": scope.can(perms.CREDIT, "manage") and not _hospital(scope),
        },
    )


@login_required
def event_export(request: HttpRequest) -> FileResponse:
    need(request, perms.CREDIT, "export")
    extra = [(_("Derived for month"), lambda o: o.period), (_("Entered at"), lambda o: o.created_at.date())]
    # The list's filters apply. Derived and incident rows carry their source: imported back they match
    # their stored rows and change nothing (CreditEventsSpec).
    return export_xlsx(EVENTS, queries.credit_events(params(request)), "credit-events.xlsx", extra)


@login_required
def event_import(request: HttpRequest) -> HttpResponse:
    return import_page(request, EVENTS, reverse("supply:credit_list"))


@login_required
def event_new(request: HttpRequest) -> HttpResponse:
    scope = need(request, perms.CREDIT, "write")
    form = CreditEventForm(request.POST or None, hospital=_hospital(scope))
    if request.method == "POST" and form.is_valid():
        try:
            event = actions.do_record_credit_event(scope, form.to_input())
        except WorkflowError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, _("The event is in the credit file."))
            return redirect("supply:credit_detail", event.pk)
    return render(request, "supply/form.html", {"form": form, "title": _("Record a credit event")})


@login_required
def event_detail(request: HttpRequest, pk: int) -> HttpResponse:
    scope = need(request, perms.CREDIT)
    event = one_or_404(CreditEvent.objects.select_related("company", "institution", "product", "created_by"), pk)
    return render(
        request,
        "supply/credit_detail.html",
        {"event": event, "can_edit": scope.can(perms.CREDIT, "write") and event.source == CreditSource.MANUAL},
    )


@login_required
def event_edit(request: HttpRequest, pk: int) -> HttpResponse:
    scope = need(request, perms.CREDIT, "write")
    event = one_or_404(CreditEvent.objects.select_related("company", "institution", "product"), pk)
    initial = {
        "company": event.company.name,
        "kind": event.kind,
        "occurred_on": event.occurred_on,
        "severity": event.severity,
        "institution_code": event.institution.code if event.institution else "",
        "product_code": event.product.code if event.product else "",
        "region_code": event.region_code,
        "description": event.description,
    }
    form = CreditEventForm(request.POST or None, initial=initial, hospital=_hospital(scope))
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_update_credit_event(scope, event.pk, form.to_input())
        except WorkflowError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, _("Saved."))
            return redirect("supply:credit_detail", event.pk)
    return render(request, "supply/form.html", {"form": form, "title": _("Edit credit event")})


@login_required
def derive(request: HttpRequest) -> HttpResponse:
    scope = need(request, perms.CREDIT, "manage")
    form = DeriveForm(request.POST or None, initial={"period": str(timezone.localdate().year)})
    result = None
    if request.method == "POST" and form.is_valid():
        try:
            result = actions.do_derive_credit_events(scope, form.cleaned_data["period"])
        except WorkflowError as exc:
            _form_error(form, exc)
    return render(request, "supply/derive.html", {"form": form, "result": result, "params": DEFAULT_DELIVERY})


# --------------------------------------------------------------------------------------------------
# Scores


@login_required
def ranking(request: HttpRequest) -> HttpResponse:
    need(request, perms.CREDIT)
    period, problem = _period(request)
    rows = queries.credit_scores(period, search=request.GET.get("q", ""))
    standing = request.GET.get("standing", "")
    if standing:
        rows = [r for r in rows if r.score.standing == standing]
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "supply/ranking.html",
        {
            "page": page,
            "period": period,
            "problem": problem,
            "query": params(request),
            "standings": [name for name, _ in DEFAULT_CREDIT.standings] + [DEFAULT_CREDIT.lowest],
            "params": DEFAULT_CREDIT,
            "kinds": CreditKind.choices,
        },
    )


@login_required
def company_file(request: HttpRequest, pk: int) -> HttpResponse:
    scope = need(request, perms.CREDIT)
    company = one_or_404(Company.objects.all(), pk)
    period, problem = _period(request)
    events = CreditEvent.objects.select_related("institution", "product").filter(
        company=company, occurred_on__range=(period.start, period.end)
    )
    counts: dict[tuple[str, str], int] = {}
    for kind, severity in events.values_list("kind", "severity"):
        counts[kind, severity] = counts.get((kind, severity), 0) + 1
    sanctions = (
        list(Sanction.objects.select_related("batch", "item", "backup_company").filter(company=company))
        if scope.can(perms.SANCTION, "read")
        else []
    )
    return render(
        request,
        "supply/company.html",
        {
            "company": company,
            "period": period,
            "problem": problem,
            "score": credit_score(counts),
            "page": paginate(request, events),
            "sanctions": sanctions,
            "kinds": dict(CreditKind.choices),
        },
    )


# --------------------------------------------------------------------------------------------------
# Sanctions


@login_required
def sanction_list(request: HttpRequest) -> HttpResponse:
    scope = need(request, perms.SANCTION)
    query = params(request)
    return render(
        request,
        "supply/sanction_list.html",
        {
            "page": paginate(request, queries.sanctions(query)),
            "query": query,
            "kinds": SanctionKind.choices,
            "can_write": scope.can(perms.SANCTION, "write"),
            "can_import": scope.can(perms.SANCTION, "import"),
            "can_export": scope.can(perms.SANCTION, "export"),
        },
    )


@login_required
def sanction_export(request: HttpRequest) -> FileResponse:
    need(request, perms.SANCTION, "export")
    extra = [(_("Decided by"), lambda o: o.decided_by.username if o.decided_by else "")]
    return export_xlsx(SANCTIONS, queries.sanctions(params(request)), "sanctions.xlsx", extra)


@login_required
def sanction_import(request: HttpRequest) -> HttpResponse:
    return import_page(request, SANCTIONS, reverse("supply:sanction_list"))


@login_required
def sanction_new(request: HttpRequest) -> HttpResponse:
    scope = need(request, perms.SANCTION, "write")
    form = SanctionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            sanction = actions.do_record_sanction(scope, form.to_input())
        except WorkflowError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, _("The sanction is on record."))
            return redirect("supply:sanction_detail", sanction.pk)
    return render(request, "supply/form.html", {"form": form, "title": _("Record a sanction")})


@login_required
def sanction_detail(request: HttpRequest, pk: int) -> HttpResponse:
    scope = need(request, perms.SANCTION)
    sanction = one_or_404(
        Sanction.objects.select_related("company", "batch", "item", "backup_company", "decided_by"), pk
    )
    return render(
        request, "supply/sanction_detail.html", {"sanction": sanction, "can_edit": scope.can(perms.SANCTION, "write")}
    )


@login_required
def sanction_edit(request: HttpRequest, pk: int) -> HttpResponse:
    scope = need(request, perms.SANCTION, "write")
    sanction = one_or_404(Sanction.objects.select_related("company", "batch", "item", "backup_company"), pk)
    initial = {
        "company": sanction.company.name,
        "kind": sanction.kind,
        "decided_on": sanction.decided_on,
        "region_code": sanction.region_code,
        "batch_code": sanction.batch.code if sanction.batch else "",
        "item_code": sanction.item.item_code if sanction.item else "",
        "backup_company": sanction.backup_company.name if sanction.backup_company else "",
        "amount": sanction.amount,
        "note": sanction.note,
    }
    form = SanctionForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_update_sanction(scope, sanction.pk, form.to_input())
        except WorkflowError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, _("Saved."))
            return redirect("supply:sanction_detail", sanction.pk)
    return render(request, "supply/form.html", {"form": form, "title": _("Edit sanction")})


# --------------------------------------------------------------------------------------------------
# Distributor scorecard


@login_required
def scorecard(request: HttpRequest) -> HttpResponse:
    scope = need(request, perms.CREDIT)
    need(request, "purchase")
    period, problem = _period(request)
    number = max(int(request.GET["page"]) if request.GET.get("page", "").isdigit() else 1, 1)
    rows, total = queries.distributor_scorecard(
        scope,
        period,
        search=request.GET.get("q", ""),
        sort=request.GET.get("sort", ""),
        offset=(number - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    return render(
        request,
        "supply/scorecard.html",
        {
            "rows": rows,
            "total": total,
            "number": number,
            "pages": pages,
            "period": period,
            "problem": problem,
            "query": params(request),
            "params": DEFAULT_DELIVERY,
        },
    )


@login_required
def distributor_detail(request: HttpRequest) -> HttpResponse:
    scope = need(request, perms.CREDIT)
    need(request, "purchase")
    period, problem = _period(request)
    name = request.GET.get("name", "")
    rows = queries.distributor_months(scope, name, period)
    return render(
        request,
        "supply/distributor.html",
        {"name": name, "rows": rows, "period": period, "problem": problem, "params": DEFAULT_DELIVERY},
    )
