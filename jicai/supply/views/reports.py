"""Manufacturers' supply report pages (R-I4): list, low-stock alerts, detail, forms, export and import."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from jicai.policy.supply import STOCK_COVER_ALERT_MONTHS
from jicai.supply import actions, queries
from jicai.supply import permissions as perms
from jicai.supply.common import WorkflowError
from jicai.supply.datasets import SPECS
from jicai.supply.forms import SupplyReportForm
from jicai.supply.models import SupplyReport
from jicai.supply.views.common import export_xlsx, import_page, need, one_or_404, paginate, params

SPEC = SPECS["supply_reports"]
RELATED = ("company", "batch", "item", "product", "created_by")


@login_required
def report_list(request: HttpRequest) -> HttpResponse:
    scope = need(request, perms.SUPPLY_REPORT)
    query = params(request)
    return render(
        request,
        "supply/report_list.html",
        {
            "page": paginate(request, queries.supply_reports(query)),
            "query": query,
            "threshold": STOCK_COVER_ALERT_MONTHS,
            "can_write": scope.can(perms.SUPPLY_REPORT, "write"),
            "can_import": scope.can(perms.SUPPLY_REPORT, "import"),
            "can_export": scope.can(perms.SUPPLY_REPORT, "export"),
        },
    )


def _threshold(request: HttpRequest) -> Decimal:
    text = request.GET.get("threshold", "")
    try:
        value = Decimal(text) if text else STOCK_COVER_ALERT_MONTHS
    except InvalidOperation:
        return STOCK_COVER_ALERT_MONTHS
    return value if value.is_finite() and value >= 0 else STOCK_COVER_ALERT_MONTHS


@login_required
def low_stock(request: HttpRequest) -> HttpResponse:
    need(request, perms.SUPPLY_REPORT)
    threshold = _threshold(request)
    page = paginate(request, queries.low_stock_reports(threshold))
    return render(request, "supply/low_stock.html", {"page": page, "threshold": threshold})


@login_required
def report_export(request: HttpRequest) -> FileResponse:
    need(request, perms.SUPPLY_REPORT, "export")
    extra = [
        (_("Expected monthly demand"), lambda o: o.monthly_demand),
        (_("Demand from"), lambda o: o.get_demand_source_display()),
        (_("Stock cover (months)"), lambda o: o.stock_cover),
    ]
    return export_xlsx(SPEC, queries.supply_reports(params(request)), "supply-reports.xlsx", extra)


@login_required
def report_import(request: HttpRequest) -> HttpResponse:
    return import_page(request, SPEC, reverse("supply:report_list"))


def _save(request: HttpRequest, form: SupplyReportForm, pk: int | None) -> HttpResponse | None:
    scope = need(request, perms.SUPPLY_REPORT, "write")
    try:
        if pk is None:
            report = actions.do_record_supply_report(scope, form.to_input())
        else:
            report = actions.do_update_supply_report(scope, pk, form.to_input())
    except WorkflowError as exc:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message_zh)
        return None
    messages.success(request, _("Saved."))
    return redirect("supply:report_detail", report.pk)


@login_required
def report_new(request: HttpRequest) -> HttpResponse:
    need(request, perms.SUPPLY_REPORT, "write")
    form = SupplyReportForm(request.POST or None)
    if request.method == "POST" and form.is_valid() and (done := _save(request, form, None)) is not None:
        return done
    return render(request, "supply/form.html", {"form": form, "title": _("Enter a supply report")})


@login_required
def report_detail(request: HttpRequest, pk: int) -> HttpResponse:
    scope = need(request, perms.SUPPLY_REPORT)
    report = one_or_404(SupplyReport.objects.select_related(*RELATED), pk)
    return render(
        request,
        "supply/report_detail.html",
        {
            "report": report,
            "low": report.stock_cover is not None and report.stock_cover < STOCK_COVER_ALERT_MONTHS,
            "threshold": STOCK_COVER_ALERT_MONTHS,
            "can_edit": scope.can(perms.SUPPLY_REPORT, "write"),
        },
    )


@login_required
def report_edit(request: HttpRequest, pk: int) -> HttpResponse:
    need(request, perms.SUPPLY_REPORT, "write")
    report = one_or_404(SupplyReport.objects.select_related(*RELATED), pk)
    initial = {
        "company": report.company.name,
        "batch_code": report.batch.code,
        "item_code": report.item.item_code,
        "product_code": report.product.code if report.product else "",
        "region_code": report.region_code,
        "report_date": report.report_date,
        "stock_on_hand": report.stock_on_hand,
        "capacity_per_month": report.capacity_per_month,
        "monthly_demand": report.monthly_demand_entered,
        "production_stopped": report.production_stopped,
        "stop_reason": report.stop_reason,
        "expected_restart": report.expected_restart,
        "note": report.note,
    }
    form = SupplyReportForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid() and (done := _save(request, form, report.pk)) is not None:
        return done
    return render(request, "supply/form.html", {"form": form, "title": _("Edit supply report")})
