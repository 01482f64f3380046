"""Pages of adverse-reaction reports, cluster signals and suspensions of use (R-J2)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from jicai.core.tenancy import Level
from jicai.programme.models import SelectedProduct
from jicai.quality import actions, queries
from jicai.quality.common import ADVERSE_REACTION
from jicai.quality.datasets import REACTIONS_SPEC
from jicai.quality.exports import SIGNAL_COLUMNS, SUSPENSION_COLUMNS, spec_columns
from jicai.quality.forms import ConclusionForm, LiftForm, NoteForm, ReactionForm, SuspensionForm
from jicai.quality.models import Outcome, SignalStatus, SuspensionLevel, SuspensionStatus
from jicai.quality.views.common import (
    PAGE_SIZE,
    export_response,
    get_or_404,
    import_page,
    listed,
    may,
    need,
    run_action,
)

R = ADVERSE_REACTION


def product_choices(limit: int = 500) -> list[tuple[str, str]]:
    """Codes offered while typing a product: the selected products of the rounds in scope."""
    rows = (
        SelectedProduct.objects.select_related("product")
        .order_by("product__generic_name", "product__code")
        .values_list("product__code", "product__generic_name", "product__pack")[:limit]
    )
    seen: dict[str, str] = {}
    for code, name, pack in rows:
        seen.setdefault(code, f"{name} {pack}".strip())
    return list(seen.items())


# ------------------------------------------------------------------------------------------------
# reports


@login_required
def reaction_list(request: HttpRequest) -> HttpResponse:
    scope = need(request, R)
    page, active, sort = listed(request, queries.REACTIONS, queries.reactions(scope))
    return render(
        request,
        "quality/reaction_list.html",
        {
            "page": page,
            "filters": active,
            "sort": sort,
            "outcomes": Outcome.choices,
            "can_write": may(request, R, "write"),
            "can_import": may(request, R, "import"),
            "can_export": may(request, R, "export"),
            "show_institution": scope.level not in (Level.INSTITUTION, Level.DEPARTMENT),
        },
    )


@login_required
def reaction_detail(request: HttpRequest, pk: int) -> HttpResponse:
    scope = need(request, R)
    report = get_or_404(queries.reactions(scope).select_related("institution", "department", "product", "item"), pk)
    related = [
        s
        for s in queries.signals(scope).filter(product=report.product).select_related("institution")
        if pk in s.report_ids
    ]
    return render(
        request,
        "quality/reaction_detail.html",
        {"report": report, "signals": related, "can_write": may(request, R, "write")},
    )


def _reaction_form(request: HttpRequest, pk: int | None) -> HttpResponse:
    scope = need(request, R, "write")
    report = None
    if pk is not None:
        report = get_or_404(queries.reactions(scope).select_related("department", "product"), pk)
    if request.method == "POST":
        form = ReactionForm(request.POST, scope=scope, editing=report is not None)
        if form.is_valid():
            data = form.to_input()
            if report is None:
                saved = run_action(form, lambda: actions.do_create_reaction(scope, data))
            else:
                saved = run_action(form, lambda: actions.do_update_reaction(scope, report.pk, data))
            if saved is not None:
                messages.success(request, _("Report %(no)s saved.") % {"no": saved.report_no})
                return redirect("quality:reaction_detail", saved.pk)
    else:
        initial: dict[str, Any] = {}
        if report is not None:
            initial = {
                "report_no": report.report_no,
                "department": report.department,
                "report_date": report.report_date,
                "onset_date": report.onset_date,
                "product_code": report.product.code,
                "lot_number": report.lot_number,
                "reaction": report.reaction,
                "is_new": report.is_new,
                "is_serious": report.is_serious,
                "outcome": report.outcome,
                "reporter": report.reporter,
            }
        form = ReactionForm(initial=initial, scope=scope, editing=report is not None)
    return render(
        request,
        "quality/form.html",
        {
            "form": form,
            "title": _("Edit report") if report else _("New adverse reaction report"),
            "products": product_choices(),
            "back": "quality:reaction_list",
        },
    )


@login_required
def reaction_create(request: HttpRequest) -> HttpResponse:
    return _reaction_form(request, None)


@login_required
def reaction_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _reaction_form(request, pk)


@login_required
def reaction_export(request: HttpRequest) -> HttpResponse:
    scope = need(request, R, "export")
    qs, _active, _sort = queries.REACTIONS.apply(queries.reactions(scope), request.GET)
    return export_response(request, REACTIONS_SPEC.label, spec_columns(REACTIONS_SPEC), qs, spec=REACTIONS_SPEC)


@login_required
def reaction_import(request: HttpRequest) -> HttpResponse:
    return import_page(
        request, spec=REACTIONS_SPEC, resource=R, action=actions.do_import_reactions, back="quality:reaction_list"
    )


# ------------------------------------------------------------------------------------------------
# cluster signals


@login_required
def signal_list(request: HttpRequest) -> HttpResponse:
    scope = need(request, R)
    params = request.GET.copy()
    if "status" not in params:
        params["status"] = SignalStatus.OPEN
    qs, active, sort = queries.SIGNALS.apply(queries.signals(scope), params)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "quality/signal_list.html",
        {
            "page": page,
            "filters": active,
            "sort": sort,
            "statuses": SignalStatus.choices,
            "can_detect": scope.level is not Level.DEPARTMENT
            and (may(request, R, "write") or may(request, R, "approve")),
            "can_export": may(request, R, "export"),
        },
    )


def _signal_page(request: HttpRequest, pk: int, **forms: Any) -> HttpResponse:
    scope = need(request, R)
    signal = get_or_404(queries.signals(scope).select_related("institution", "product", "merged_into"), pk)
    regional = signal.institution_id is None
    bureau = scope.level is Level.REGION and may(request, R, "approve")
    hospital = scope.level is Level.INSTITUTION and may(request, R, "write")
    # a bureau suspends use across its own region, a hospital in itself (from any signal they see)
    can_suspend = scope.is_system or bureau or hospital
    # a signal is closed by its owner: the hospital, or a bureau whose region holds it
    owner = (hospital and not regional) or (bureau and regional and signal.region_code.startswith(scope.region_prefix))
    can_close = scope.is_system or owner
    return render(
        request,
        "quality/signal_detail.html",
        {
            "signal": signal,
            "reports": queries.signal_reports(scope, signal).select_related("department"),
            "hidden": signal.report_count - queries.signal_reports(scope, signal).count(),
            "suspensions": signal.suspensions.select_related("institution").order_by("-id"),
            "can_decide": can_close and signal.status == SignalStatus.OPEN,
            "can_suspend": can_suspend,
            "suspend_regional": scope.level is Level.REGION or (scope.is_system and regional),
            "close_form": forms.get("close_form") or ConclusionForm(),
            "suspend_form": forms.get("suspend_form") or SuspensionForm(initial={"lot_number": signal.lot_number}),
            "regional": regional,
        },
    )


@login_required
def signal_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _signal_page(request, pk)


@login_required
@require_POST
def signal_close(request: HttpRequest, pk: int) -> HttpResponse:
    scope = need(request, R)
    form = ConclusionForm(request.POST)
    if form.is_valid() and run_action(
        form, lambda: actions.do_close_signal(scope, pk, form.cleaned_data["conclusion"])
    ):
        messages.success(request, _("The signal is closed."))
        return redirect("quality:signal_detail", pk)
    return _signal_page(request, pk, close_form=form)


@login_required
@require_POST
def signal_suspend(request: HttpRequest, pk: int) -> HttpResponse:
    scope = need(request, R)
    form = SuspensionForm(request.POST)
    if form.is_valid():
        d = form.cleaned_data
        done = run_action(
            form,
            lambda: actions.do_suspend_use(
                scope,
                signal_id=pk,
                lot_number=d.get("lot_number") or "",
                reason=d["reason"],
                effective_from=d["effective_from"],
                until=d.get("until"),
            ),
        )
        if done is not None:
            messages.success(request, _("The suspension of use is recorded."))
            return redirect("quality:signal_detail", pk)
    return _signal_page(request, pk, suspend_form=form)


@login_required
@require_POST
def signal_detect(request: HttpRequest) -> HttpResponse:
    scope = need(request, R)
    form = NoteForm(request.POST)
    outcome = run_action(form, lambda: actions.do_detect_clusters(scope))
    if outcome is not None:
        messages.success(
            request,
            _("Detection done: %(created)d new, %(updated)d updated, %(merged)d merged signals.")
            % {"created": outcome.created, "updated": outcome.updated, "merged": outcome.merged},
        )
    return redirect("quality:signal_list")


@login_required
def signal_export_view(request: HttpRequest) -> HttpResponse:
    scope = need(request, R, "export")
    qs, _active, _sort = queries.SIGNALS.apply(queries.signals(scope), request.GET)
    return export_response(request, "不良反应聚集信号", SIGNAL_COLUMNS, qs)


# ------------------------------------------------------------------------------------------------
# suspensions of use


@login_required
def suspension_list(request: HttpRequest) -> HttpResponse:
    scope = need(request, R)
    page, active, sort = listed(request, queries.SUSPENSIONS, queries.suspensions(scope))
    today = timezone.localdate()
    return render(
        request,
        "quality/suspension_list.html",
        {
            "page": page,
            "filters": active,
            "sort": sort,
            "today": today,
            "statuses": SuspensionStatus.choices,
            "levels": SuspensionLevel.choices,
            "can_approve": scope.level is not Level.DEPARTMENT and may(request, R, "approve"),
            "decidable": {s.pk for s in page.object_list if decides(scope, s)},
            "can_export": may(request, R, "export"),
            "decision_form": NoteForm(),
            "lift_form": LiftForm(),
        },
    )


def decides(scope: Any, suspension: Any) -> bool:
    """Whether ``scope`` decides on ``suspension``: a hospital on its own, a bureau on its region's."""
    if scope.is_system:
        return True
    if suspension.institution_id is not None:
        return bool(scope.level is Level.INSTITUTION and suspension.institution_id == scope.institution_id)
    return bool(scope.level is Level.REGION and suspension.region_code.startswith(scope.region_prefix))


@login_required
@require_POST
def suspension_decide(request: HttpRequest, pk: int, decision: str) -> HttpResponse:
    scope = need(request, R)
    form: NoteForm | LiftForm = LiftForm(request.POST) if decision == "lift" else NoteForm(request.POST)
    if form.is_valid():
        d = form.cleaned_data
        steps = {
            "approve": lambda: actions.do_approve_suspension(scope, pk, d.get("note") or ""),
            "reject": lambda: actions.do_reject_suspension(scope, pk, d.get("note") or ""),
            "lift": lambda: actions.do_lift_suspension(
                scope, pk, lifted_on=d.get("lifted_on"), note=d.get("note") or ""
            ),
        }
        if decision not in steps:
            raise Http404(decision)
        if run_action(form, steps[decision]) is not None:
            messages.success(request, _("The decision is recorded."))
            return redirect("quality:suspension_list")
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, str(error))
    return redirect("quality:suspension_list")


@login_required
def suspension_export_view(request: HttpRequest) -> HttpResponse:
    scope = need(request, R, "export")
    qs, _active, _sort = queries.SUSPENSIONS.apply(queries.suspensions(scope), request.GET)
    return export_response(request, "暂停使用", SUSPENSION_COLUMNS, qs)
