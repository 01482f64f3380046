"""The daily screens: bureau overview, rankings, progress list, institution, item, department, alerts.

Views only check who may see what, open one ``Dashboard`` session and add links; the figures come
from ``jicai.monitoring.screens`` (tested and benchmarked without the web). Pages outside a role's
reach answer 404, like the datasets: bureau pages for bureau roles, an institution for its own
hospital or a bureau whose region holds it, a department for its head (only its own), its
hospital or its bureau.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from jicai.core.tenancy import Level, Scope, ScopeError, use_scope
from jicai.monitoring import lines, screens
from jicai.monitoring.actions import do_resolve_alert
from jicai.monitoring.dashboard import Dashboard, Row
from jicai.monitoring.models import Alert, AlertKind, AlertStatus
from jicai.organizations.models import Department, Institution

TOP = 10
PAGE_SIZE = lines.PAGE_SIZE
STATUS_FILTERS = ("completed", "on_track", "behind", "at_risk")


# --------------------------------------------------------------------------------------------------
# Access


def scope_of(request: HttpRequest) -> Scope:
    scope = getattr(request, "scope", None)
    if scope is None:
        raise ScopeError("not signed in")
    return scope  # type: ignore[no-any-return]


def is_bureau(scope: Scope) -> bool:
    return scope.is_system or scope.level is Level.REGION


def reads_purchases(scope: Scope) -> bool:
    return all(scope.can(r, "read") for r in ("report", "agreement", "purchase"))


def reads_dispensing(scope: Scope) -> bool:
    return scope.can("report", "read") and scope.can("dispensing", "read")


def _date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def open_session(request: HttpRequest, *, facts: bool = False) -> Dashboard:
    """The page's session; ``?as_of=YYYY-MM-DD`` asks for figures computed live on another date."""
    return Dashboard(Path(settings.JICAI_HOME), scope_of(request), as_of=_date(request.GET.get("as_of")), facts=facts)


def institution_or_404(scope: Scope, code: str) -> Institution:
    """The institution ``code`` if the scope reaches it (a hospital: itself only; a department: none)."""
    if scope.level is Level.DEPARTMENT or not reads_purchases(scope):
        raise Http404(code)
    if scope.level is Level.INSTITUTION and code != scope.institution_code:
        raise Http404(code)
    with use_scope(scope):
        found: Institution | None = Institution.objects.filter(code=code).first()
    if found is None:
        raise Http404(code)
    return found


def department_or_404(scope: Scope, code: str, department: str) -> Department:
    """The department if the scope reaches it: a department head its own only."""
    if not reads_dispensing(scope):
        raise Http404(department)
    if scope.level is Level.DEPARTMENT and (code, department) != (scope.institution_code, scope.department_code):
        raise Http404(department)
    if scope.level is Level.INSTITUTION and code != scope.institution_code:
        raise Http404(department)
    with use_scope(scope):
        found = Department.objects.select_related("institution").filter(institution__code=code, code=department)
        dept: Department | None = found.first()
    if dept is None:
        raise Http404(department)
    return dept


# --------------------------------------------------------------------------------------------------
# Links


def url_with(name: str, args: Iterable[Any] = (), **query: Any) -> str:
    """``reverse(name, args)`` with the non-empty ``query`` values as a query string."""
    base = reverse(name, args=list(args))
    params = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in query.items() if v not in (None, "")}
    return f"{base}?{urlencode(params)}" if params else base


def purchase_lines_url(
    institution: str, batch: str, item: str, kind: str, *, date_from: dt.date | None, date_to: dt.date | None
) -> str:
    return url_with(
        "web:purchase_lines",
        institution=institution,
        batch=batch,
        item=item,
        kind=kind,
        date_from=date_from,
        date_to=date_to,
    )


def counted_url(row: Row, as_of: dt.date) -> str:
    """The accepted purchases of the item's selected products in the agreement year up to the as-of date."""
    upto = min(row["period_end"], as_of)
    return purchase_lines_url(
        row["institution_code"],
        row["batch_code"],
        row["item_code"],
        "selected",
        date_from=row["period_start"],
        date_to=upto,
    )


def year_months_url(row: Row, kind: str, as_of: dt.date) -> str:
    """Lines of ``kind`` in the calendar months of the agreement year so far (how the shares are taken)."""
    first = row["period_start"].replace(day=1)
    _f, last = screens.month_bounds(min(row["period_end"], as_of).strftime("%Y-%m"), as_of)
    return purchase_lines_url(
        row["institution_code"], row["batch_code"], row["item_code"], kind, date_from=first, date_to=last
    )


def institution_url(code: str) -> str:
    return reverse("web:institution", args=[code])


def item_url(row: Row) -> str:
    return reverse("web:institution_item", args=[row["institution_code"], row["batch_code"], row["item_code"]])


def _link_agreements(rows: list[Row], as_of: dt.date) -> list[Row]:
    for r in rows:
        r["links"] = {
            "institution": institution_url(r["institution_code"]),
            "item": item_url(r),
            "counted": counted_url(r, as_of),
        }
    return rows


def _percent(value: Decimal | None) -> float | None:
    return float(round(value * 100, 1)) if value is not None else None


def _chart_labels() -> dict[str, str]:
    return {
        "selected": _("Selected"),
        "non_selected": _("Non-selected (same generic)"),
        "substitute": _("Substitutes"),
        "completion": _("Completion"),
        "elapsed": _("Time elapsed"),
        "quantity": _("Quantity (minimum units)"),
        "completed": _("Completed"),
        "on_track": _("On track"),
        "behind": _("Behind"),
        "at_risk": _("At risk"),
        "none": _("No status"),
        "institution": _("Institution"),
        "item": _("Item"),
    }


# --------------------------------------------------------------------------------------------------
# Sorting and paging of small lists


def sort_rows(rows: list[Row], sort: str, allowed: Iterable[str]) -> tuple[list[Row], str]:
    """``rows`` sorted by ``sort`` ("key" or "-key", keys in ``allowed``); None values last."""
    key = sort.lstrip("-")
    if key not in set(allowed):
        return rows, ""
    present = [r for r in rows if r.get(key) is not None]
    missing = [r for r in rows if r.get(key) is None]
    present.sort(key=lambda r: r[key], reverse=sort.startswith("-"))
    return present + missing, sort


def page_of(items: Any, request: HttpRequest, size: int = PAGE_SIZE) -> Page[Any]:
    return Paginator(items, size).get_page(request.GET.get("page"))


def _search(rows: list[Row], query: str, fields: Iterable[str]) -> list[Row]:
    if not query:
        return rows
    q = query.lower()
    return [r for r in rows if any(q in str(r.get(f) or "").lower() for f in fields)]


# --------------------------------------------------------------------------------------------------
# Bureau


def _bureau_or_404(request: HttpRequest) -> Scope:
    scope = scope_of(request)
    if not is_bureau(scope) or not reads_purchases(scope):
        raise Http404("overview")
    return scope


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    """Region overview: rankings, heat map, behind schedule, overdue payables, tranches, caps, trends."""
    _bureau_or_404(request)
    with open_session(request) as d:
        caps = screens.cap_breaches(d)
        kpi = screens.kpis(d, caps=caps)
        institutions = screens.institution_ranking(d)
        items = screens.item_ranking(d)
        heat = screens.heatmap(d)
        behind = _link_agreements(screens.behind_schedule(d, limit=15), d.as_of)
        overdue = screens.overdue(d)
        tranches = screens.open_tranches(d)
        alerts = screens.alert_counts(d)
        mix = screens.monthly_mix(d)
        trend = screens.completion_trend(d)
        source = d.source
    for r in institutions:
        r["links"] = {"institution": institution_url(r["institution_code"])}
    for r in items:
        r["links"] = {"progress": url_with("web:progress", batch=r["batch_code"], item=r["item_code"])}
    for r in overdue:
        r["links"] = {
            "institution": institution_url(r["institution_code"]),
            "overdue": url_with("web:payable_lines", institution=r["institution_code"], overdue=1),
        }
    for r in caps:
        r["links"] = {
            "institution": institution_url(r["institution_code"]),
            "item": item_url(r),
            "non_selected": _cap_lines_url(r, source.as_of),
        }
    heat["url"] = reverse("web:institution_item", args=["__INST__", "__BATCH__", "__ITEM__"])
    heat["labels"] = _chart_labels()
    return render(
        request,
        "web/overview.html",
        {
            "source": source,
            "kpi": kpi,
            "institutions": institutions[:TOP],
            "institution_count": len(institutions),
            "items": items[:TOP],
            "item_count": len(items),
            "behind": behind,
            "overdue": overdue[:TOP],
            "overdue_count": len(overdue),
            "tranches": tranches,
            "caps": caps[:TOP],
            "cap_count": len(caps),
            "alerts": _alert_tiles(alerts),
            "chart_heat": heat,
            "chart_mix": mix | {"labels": _chart_labels()},
            "chart_trend": trend | {"labels": _chart_labels()},
        },
    )


def _cap_lines_url(row: Row, as_of: dt.date) -> str:
    """Non-selected lines of the agreement year's months up to the cap row's month."""
    _first, last = screens.month_bounds(row["month"], as_of)
    start = row["period_start"].replace(day=1)
    return purchase_lines_url(
        row["institution_code"], row["batch_code"], row["item_code"], "same_generic", date_from=start, date_to=last
    )


def _alert_tiles(counts: dict[str, int]) -> list[dict[str, Any]]:
    return [
        {
            "kind": kind,
            "label": kind.label,
            "count": counts.get(kind.value, 0),
            "url": url_with("web:alerts", kind=kind),
        }
        for kind in AlertKind
    ]


INSTITUTION_SORTS = (
    "rank",
    "institution_code",
    "institution_name",
    "agreements",
    "completion",
    "worst_completion",
    "pace",
    "completed",
    "on_track",
    "behind",
    "at_risk",
)


@login_required
def institution_ranking(request: HttpRequest) -> HttpResponse:
    _bureau_or_404(request)
    with open_session(request) as d:
        rows = screens.institution_ranking(d)
        source = d.source
    query = request.GET.get("q", "").strip()
    rows = _search(rows, query, ("institution_code", "institution_name", "region_code"))
    if request.GET.get("status") in STATUS_FILTERS:
        rows = [r for r in rows if r[str(request.GET["status"])]]
    rows, sort = sort_rows(rows, request.GET.get("sort", ""), INSTITUTION_SORTS)
    page = page_of(rows, request)
    for r in page.object_list:
        r["links"] = {
            "institution": institution_url(r["institution_code"]),
            "behind": url_with("web:progress", institution=r["institution_code"], status="behind"),
            "at_risk": url_with("web:progress", institution=r["institution_code"], status="at_risk"),
        }
    return render(
        request,
        "web/institution_ranking.html",
        {"source": source, "page": page, "sort": sort, "query": query, "statuses": STATUS_FILTERS},
    )


ITEM_SORTS = (
    "rank",
    "batch_code",
    "item_code",
    "generic_name",
    "institutions",
    "agreed_qty",
    "counted_qty",
    "completion",
    "pace",
    "behind",
    "at_risk",
)


@login_required
def item_ranking(request: HttpRequest) -> HttpResponse:
    _bureau_or_404(request)
    with open_session(request) as d:
        rows = screens.item_ranking(d)
        source = d.source
    query = request.GET.get("q", "").strip()
    rows = _search(rows, query, ("batch_code", "item_code", "generic_name"))
    rows, sort = sort_rows(rows, request.GET.get("sort", ""), ITEM_SORTS)
    page = page_of(rows, request)
    for r in page.object_list:
        r["links"] = {"progress": url_with("web:progress", batch=r["batch_code"], item=r["item_code"])}
    return render(request, "web/item_ranking.html", {"source": source, "page": page, "sort": sort, "query": query})


@login_required
def progress_list(request: HttpRequest) -> HttpResponse:
    """Agreement years in scope: filter by institution, item, status; all years or the current ones."""
    scope = scope_of(request)
    if not reads_purchases(scope) or scope.level is Level.DEPARTMENT:
        raise Http404("progress")
    institution = request.GET.get("institution") or None
    if scope.level is Level.INSTITUTION:
        institution = scope.institution_code
    elif institution:
        institution_or_404(scope, institution)
    status = request.GET.get("status")
    f = lines.ProgressFilter(
        institution=institution,
        batch=request.GET.get("batch") or None,
        item=request.GET.get("item") or None,
        status=status if status in STATUS_FILTERS else None,
        all_years=request.GET.get("years") == "all",
        search=request.GET.get("q", "").strip() or None,
    )
    with open_session(request) as d:
        rows, sort = lines.progress_rows(d, f, request.GET.get("sort", ""))
        page = page_of(rows, request)
        page.object_list = _link_agreements(list(page.object_list), d.as_of)
        source = d.source
    return render(
        request,
        "web/progress_list.html",
        {"source": source, "page": page, "sort": sort, "filter": f, "statuses": STATUS_FILTERS},
    )


# --------------------------------------------------------------------------------------------------
# Institution, item, department


@login_required
def institution(request: HttpRequest, code: str) -> HttpResponse:
    scope = scope_of(request)
    inst = institution_or_404(scope, code)
    with open_session(request) as d:
        summary = screens.institution_summary(d, code)
        items = screens.institution_items(d, code)
        tranches = d.prepayments(code).to_pylist()
        mix = screens.monthly_mix(d, institution=code)
        trend = screens.completion_trend(d, institution=code)
        alert_counts = screens.alert_counts(d, institution=code)
        source = d.source
        names = d.names().item_names
    for r in items:
        r["links"] = {
            "item": item_url(r),
            "counted": counted_url(r, source.as_of),
            "non_selected": year_months_url(r, "same_generic", source.as_of),
            "substitute": year_months_url(r, "substitute", source.as_of),
        }
    for t in tranches:
        t["generic_name"] = names.get((t["batch_code"], t["item_code"]), (t["item_code"], ""))[0]
        t["fired"] = t["fired_on"] is not None
    payables = summary.get("payables")
    pay_links = {
        "outstanding": url_with("web:payable_lines", institution=code),
        "overdue": url_with("web:payable_lines", institution=code, overdue=1),
    }
    with use_scope(scope):
        alerts = list(Alert.objects.filter(institution_code=code).order_by("status", "-last_seen", "kind")[:TOP])
        departments = (
            list(Department.objects.filter(institution=inst).order_by("code")) if reads_dispensing(scope) else []
        )
    fired = sum((t["amount"] for t in tranches if t["fired"] and t["amount"] is not None), Decimal(0))
    pending = sum((t["amount"] for t in tranches if not t["fired"] and t["amount"] is not None), Decimal(0))
    return render(
        request,
        "web/institution.html",
        {
            "source": source,
            "institution": inst,
            "summary": summary,
            "items": items,
            "payables": payables,
            "pay_links": pay_links,
            "tranches": tranches,
            "tranche_totals": {"fired": fired, "pending": pending},
            "alerts": alerts,
            "alert_tiles": [
                t | {"url": url_with("web:alerts", kind=t["kind"], institution=code)}
                for t in _alert_tiles(alert_counts)
            ],
            "all_alerts": url_with("web:alerts", institution=code),
            "can_resolve": scope.can("alert", "write"),
            "departments": departments,
            "is_bureau": is_bureau(scope),
            "chart_mix": mix | {"labels": _chart_labels()},
            "chart_trend": trend | {"labels": _chart_labels()},
        },
    )


@login_required
def institution_item(request: HttpRequest, code: str, batch: str, item: str) -> HttpResponse:
    scope = scope_of(request)
    inst = institution_or_404(scope, code)
    with open_session(request) as d:
        years = screens.agreement_years(d, code, batch, item)
        if not years:
            raise Http404(item)
        months = screens.item_months(d, code, batch, item)
        mix = screens.monthly_mix(d, institution=code, batch=batch, item=item)
        trend = screens.completion_trend(d, institution=code, batch=batch, item=item)
        departments = d.department_progress(code, batch=batch, item=item).to_pylist() if reads_dispensing(scope) else []
        name, unit = d.names().item_names.get((batch, item), (item, ""))
        source = d.source
    for r in years:
        r["links"] = {"counted": counted_url(r, source.as_of)}
    for m in months:
        first, last = screens.month_bounds(m["month"], source.as_of)
        m["links"] = {
            kind: purchase_lines_url(code, batch, item, kind, date_from=first, date_to=last)
            for kind in ("selected", "same_generic", "substitute")
        }
    with use_scope(scope):
        dept_names = dict(Department.objects.filter(institution=inst).values_list("code", "name"))
    for r in departments:
        r["department_name"] = dept_names.get(r["department_code"], r["department_code"])
        upto = min(r["period_end"], source.as_of)
        r["links"] = {
            "department": reverse("web:department", args=[code, r["department_code"]]),
            "dispensed": url_with(
                "web:dispensing_lines",
                institution=code,
                department=r["department_code"],
                batch=batch,
                item=item,
                kind="selected",
                date_from=r["period_start"],
                date_to=upto,
            ),
        }
    return render(
        request,
        "web/institution_item.html",
        {
            "source": source,
            "institution": inst,
            "batch": batch,
            "item": item,
            "generic_name": name,
            "unit_label": unit,
            "years": years,
            "current": years[0],
            "months": months,
            "departments": departments,
            "chart_mix": mix | {"labels": _chart_labels()},
            "chart_trend": trend | {"labels": _chart_labels()},
        },
    )


@login_required
def department(request: HttpRequest, code: str, dept: str) -> HttpResponse:
    scope = scope_of(request)
    department_ = department_or_404(scope, code, dept)
    with open_session(request) as d:
        rows = screens.department_rows(d, code, dept)
        monthly = screens.department_months(d, code, dept)
        source = d.source
    for r in rows:
        upto = min(r["period_end"], source.as_of)
        r["months"] = monthly.get((r["batch_code"], r["item_code"]), [])
        r["links"] = {
            "dispensed": url_with(
                "web:dispensing_lines",
                institution=code,
                department=dept,
                batch=r["batch_code"],
                item=r["item_code"],
                kind="selected",
                date_from=r["period_start"],
                date_to=upto,
            )
        }
        if scope.level is not Level.DEPARTMENT and reads_purchases(scope):
            r["links"]["item"] = item_url(r)
        for m in r["months"]:
            m["link"] = url_with(
                "web:dispensing_lines",
                institution=code,
                department=dept,
                batch=r["batch_code"],
                item=r["item_code"],
                kind="selected",
                date_from=m["from"],
                date_to=m["to"],
            )
    targets_known = any(r["target_qty"] is not None for r in rows)
    months = sorted({m["month"] for r in rows for m in r["months"]})
    for r in rows:
        by_month = {m["month"]: m for m in r["months"]}
        r["cells"] = [by_month.get(month) for month in months]
    chart = {
        "mode": "completion" if targets_known else "quantity",
        "items": [r["generic_name"] for r in rows],
        "units": [r["unit_label"] for r in rows],
        "completion": [_percent(r["completion"]) for r in rows],
        "elapsed": [_percent(r["elapsed"]) for r in rows],
        "dispensed": [float(r["dispensed_qty"] or 0) for r in rows],
        "labels": _chart_labels() | {"dispensed": _("Dispensed this agreement year")},
    }
    with use_scope(scope):
        siblings = (
            list(Department.objects.filter(institution=department_.institution).order_by("code"))
            if scope.level is not Level.DEPARTMENT
            else []
        )
    return render(
        request,
        "web/department.html",
        {
            "source": source,
            "department": department_,
            "institution": department_.institution,
            "rows": rows,
            "months": months,
            "targets_known": targets_known,
            "siblings": siblings,
            "show_institution": scope.level is not Level.DEPARTMENT and reads_purchases(scope),
            "chart_department": chart,
        },
    )


# --------------------------------------------------------------------------------------------------
# Alerts


ALERT_SORTS = {
    "kind": "kind",
    "severity": "severity",
    "institution_code": "institution_code",
    "first_seen": "first_seen",
    "last_seen": "last_seen",
    "status": "status",
}


def _reads_alerts(scope: Scope) -> bool:
    return scope.can("report", "read") and scope.can("agreement", "read")


@login_required
def alerts(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    if not _reads_alerts(scope):
        raise Http404("alerts")
    status = request.GET.get("status", "open")
    kind = request.GET.get("kind", "")
    institution = request.GET.get("institution", "")
    query = request.GET.get("q", "").strip()
    with use_scope(scope):
        qs = Alert.objects.all()
        if status in AlertStatus.values:
            qs = qs.filter(status=status)
        if kind in AlertKind.values:
            qs = qs.filter(kind=kind)
        if institution:
            qs = qs.filter(institution_code=institution)
        if query:
            qs = qs.filter(
                Q(message_zh__icontains=query)
                | Q(message_en__icontains=query)
                | Q(institution_code__icontains=query)
                | Q(item_code__icontains=query)
            )
        sort = request.GET.get("sort", "")
        if sort.lstrip("-") in ALERT_SORTS:
            qs = qs.order_by(sort, "-last_seen", "pk")
        else:
            sort = ""
            qs = qs.order_by("status", "-last_seen", "kind", "institution_code", "pk")
        page = page_of(qs, request)
        page.object_list = list(page.object_list)
    return render(
        request,
        "web/alerts.html",
        {
            "page": page,
            "sort": sort,
            "query": query,
            "status": status,
            "kind": kind,
            "institution": institution,
            "kinds": AlertKind.choices,
            "statuses": AlertStatus.choices,
            "can_resolve": scope.can("alert", "write"),
        },
    )


@login_required
@require_POST
def alert_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    scope = scope_of(request)
    if not _reads_alerts(scope):
        raise Http404("alert")
    with use_scope(scope):
        if not Alert.objects.filter(pk=pk).exists():
            raise Http404("alert")
    if not scope.can("alert", "write"):
        raise PermissionDenied("acknowledging alerts needs alert:write")
    do_resolve_alert(acting=scope, alert_id=pk, note=request.POST.get("note", ""))
    messages.success(request, _("The alert is marked handled; it opens again if its situation changes."))
    target = request.POST.get("next") or ""
    return redirect(target if target.startswith("/") and not target.startswith("//") else reverse("web:alerts"))
