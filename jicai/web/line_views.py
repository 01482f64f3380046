"""The lines behind a number: purchase, dispensing and payable lines, paged and sorted on the server.

Every figure a user might question on the daily screens links here with the filters that rebuild
it (institution, batch + item and product kind, acceptance or dispensing dates), and the page's
totals repeat the figure. Lines are read through the scoped fact layer only; filters naming an
institution or a department outside the user's reach answer 404.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from jicai.core.tenancy import Level, Scope, use_scope
from jicai.monitoring import lines, screens
from jicai.organizations.models import Department, Institution
from jicai.web.dashboards import _date, institution_or_404, open_session, page_of, scope_of, url_with


def _institution_filter(scope: Scope, given: str | None) -> str | None:
    """The institution to list: a hospital's own always; a bureau's choice, if inside its region."""
    if scope.level in (Level.INSTITUTION, Level.DEPARTMENT):
        if given and given != scope.institution_code:
            raise Http404(given)
        return scope.institution_code
    if given:
        with use_scope(scope):
            if not Institution.objects.filter(code=given).exists():
                raise Http404(given)
    return given or None


def _line_filter(request: HttpRequest, scope: Scope) -> lines.LineFilter:
    get = request.GET
    date_from, date_to = _date(get.get("date_from")), _date(get.get("date_to"))
    month = get.get("month", "")
    if len(month) == 7 and month[4] == "-" and month.replace("-", "").isdigit():
        date_from, date_to = screens.month_bounds(month)
    kind = get.get("kind") or None
    return lines.LineFilter(
        institution=_institution_filter(scope, get.get("institution") or None),
        department=get.get("department") or None,
        batch=get.get("batch") or None,
        item=get.get("item") or None,
        kind=kind if kind in lines.KINDS else None,
        date_from=date_from,
        date_to=date_to,
        product=get.get("product") or None,
        search=get.get("q", "").strip() or None,
    )


def _context(d: Any, f: lines.LineFilter) -> dict[str, Any]:
    names = d.names()
    item_name = names.item_names.get((f.batch, f.item), (f.item, ""))[0] if f.by_item else ""
    unit = names.item_names.get((f.batch, f.item), ("", ""))[1] if f.by_item else ""
    return {
        "filter": f,
        "source": d.source,
        "institution_name": names.institution_names.get(f.institution or "", ""),
        "item_name": item_name,
        "unit_label": unit,
        "kinds": lines.KINDS,
    }


@login_required
def purchase_lines(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    if not scope.can("purchase", "read"):
        raise Http404("purchases")
    f = _line_filter(request, scope)
    with open_session(request, facts=True) as d:
        rows, sort = lines.purchase_lines(d, f, request.GET.get("sort", ""))
        page = page_of(rows, request)
        page.object_list = list(page.object_list)
        totals = rows.totals(
            {"lines": "count(*)", "qty": "sum(qty)", "item_qty": "sum(item_qty)", "amount": "sum(amount)"}
        )
        context = _context(d, f)
    back = None
    if f.institution and f.by_item and scope.level is not Level.DEPARTMENT:
        back = url_with("web:institution_item", [f.institution, f.batch, f.item])
    return render(
        request,
        "web/lines_purchases.html",
        context | {"page": page, "sort": sort, "totals": totals, "back": back},
    )


@login_required
def dispensing_lines(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    if not scope.can("dispensing", "read"):
        raise Http404("dispensing")
    f = _line_filter(request, scope)
    if scope.level is Level.DEPARTMENT:
        if f.department and f.department != scope.department_code:
            raise Http404(f.department)
        f = lines.LineFilter(**{**f.__dict__, "department": scope.department_code})
    elif f.department and f.institution:
        with use_scope(scope):
            if not Department.objects.filter(institution__code=f.institution, code=f.department).exists():
                raise Http404(f.department)
    with open_session(request, facts=True) as d:
        rows, sort = lines.dispensing_lines(d, f, request.GET.get("sort", ""))
        page = page_of(rows, request)
        page.object_list = list(page.object_list)
        totals = rows.totals(
            {"lines": "count(*)", "qty": "sum(qty)", "item_qty": "sum(item_qty)", "amount": "sum(amount)"}
        )
        context = _context(d, f)
    back = None
    if f.institution and f.department:
        back = url_with("web:department", [f.institution, f.department])
    return render(
        request,
        "web/lines_dispensing.html",
        context | {"page": page, "sort": sort, "totals": totals, "back": back},
    )


@login_required
def payable_lines(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    if not (scope.can("purchase", "read") and scope.can("payment", "read")):
        raise Http404("payables")
    code = _institution_filter(scope, request.GET.get("institution") or None)
    overdue_only = request.GET.get("overdue") == "1"
    if code is None:  # a bureau lists one institution's payables at a time
        with open_session(request) as d:
            choices = screens.overdue(d, only_overdue=False)
            source = d.source
        for r in choices:
            r["links"] = {
                "all": url_with("web:payable_lines", institution=r["institution_code"]),
                "overdue": url_with("web:payable_lines", institution=r["institution_code"], overdue=1),
            }
        return render(request, "web/lines_payables.html", {"choosing": True, "choices": choices, "source": source})
    institution_or_404(scope, code)
    with open_session(request, facts=True) as d:
        rows, sort = lines.payable_lines(d, code, overdue_only=overdue_only, sort=request.GET.get("sort", ""))
        page = page_of(rows, request)
        page.object_list = list(page.object_list)
        totals = rows.totals(
            {
                "lines": "count(*)",
                "amount": "sum(amount)",
                "paid_amount": "sum(paid_amount)",
                "outstanding": "sum(outstanding)",
                "max_days_overdue": "max(days_overdue)",
            }
        )
        source = d.source
        name = d.names().institution_names.get(code, code)
    return render(
        request,
        "web/lines_payables.html",
        {
            "page": page,
            "sort": sort,
            "totals": totals,
            "source": source,
            "institution_code": code,
            "institution_name": name,
            "overdue_only": overdue_only,
            "back": url_with("web:institution", [code]),
            "today": dt.date.today(),
        },
    )
