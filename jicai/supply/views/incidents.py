"""Supply incident pages (R-I1, R-I2): list, flagged list, detail with its decisions and proof files,
report and edit forms, export and import."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from jicai.core.tenancy import Level, Scope
from jicai.supply import actions, queries
from jicai.supply import permissions as perms
from jicai.supply.common import WorkflowError
from jicai.supply.datasets import SPECS
from jicai.supply.forms import CloseForm, IncidentForm, NoteForm, ProofForm, ReasonForm
from jicai.supply.models import IncidentKind, IncidentProof, IncidentStatus, SupplyIncident
from jicai.supply.uploads import resolve
from jicai.supply.views.common import export_xlsx, import_page, need, one_or_404, paginate, params

SPEC = SPECS["supply_incidents"]
RELATED = ("batch", "item", "institution", "company", "selected__product")


def _detail_qs() -> Any:
    return SupplyIncident.objects.select_related(
        *RELATED, "reported_by", "confirmed_by", "closed_by", "rejected_by", "malicious_flagged_by"
    )


@login_required
def incident_list(request: HttpRequest) -> HttpResponse:
    scope = need(request, perms.SUPPLY_INCIDENT)
    query = params(request)
    page = paginate(request, queries.incidents(query))
    return render(
        request,
        "supply/incident_list.html",
        {
            "page": page,
            "query": query,
            "statuses": IncidentStatus.choices,
            "kinds": IncidentKind.choices,
            "can_write": scope.can(perms.SUPPLY_INCIDENT, "write"),
            "can_import": scope.can(perms.SUPPLY_INCIDENT, "import"),
            "can_export": scope.can(perms.SUPPLY_INCIDENT, "export"),
        },
    )


@login_required
def flagged_list(request: HttpRequest) -> HttpResponse:
    need(request, perms.SUPPLY_INCIDENT)
    page = paginate(request, queries.flagged_incidents())
    return render(request, "supply/flagged_list.html", {"page": page})


@login_required
def incident_export(request: HttpRequest) -> FileResponse:
    need(request, perms.SUPPLY_INCIDENT, "export")
    extra = [
        (_("Status"), lambda o: o.get_status_display()),
        (_("Malicious interruption"), lambda o: o.malicious),
        (_("Why it is malicious"), lambda o: o.malicious_reason),
        (_("Reported at"), lambda o: o.reported_at.date()),
        (_("Decision note"), lambda o: o.decision_note),
    ]
    return export_xlsx(SPEC, queries.incidents(params(request)), "supply-incidents.xlsx", extra)


@login_required
def incident_import(request: HttpRequest) -> HttpResponse:
    return import_page(request, SPEC, reverse("supply:incident_list"))


def _form_errors(form: Any, exc: WorkflowError) -> None:
    field = exc.field if exc.field in form.fields else None
    form.add_error(field, exc.message_zh)


@login_required
def incident_new(request: HttpRequest) -> HttpResponse:
    scope = need(request, perms.SUPPLY_INCIDENT, "write")
    options = {
        "hospital": scope.level in (Level.INSTITUTION, Level.DEPARTMENT),
        "can_approve": scope.can(perms.SUPPLY_INCIDENT, "approve"),
    }
    form = IncidentForm(request.POST or None, **options)
    if request.method == "POST" and form.is_valid():
        try:
            incident = actions.do_report_incident(
                scope, form.to_input(), confirm=form.cleaned_data.get("confirm", False)
            )
        except WorkflowError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, _("The incident is on record."))
            return redirect("supply:incident_detail", incident.pk)
    return render(
        request, "supply/form.html", {"form": form, "title": _("Report a supply incident"), "multipart": False}
    )


@login_required
def incident_edit(request: HttpRequest, pk: int) -> HttpResponse:
    scope = need(request, perms.SUPPLY_INCIDENT, "write")
    incident = one_or_404(_detail_qs(), pk)
    initial = {
        "batch_code": incident.batch.code,
        "item_code": incident.item.item_code,
        "product_code": incident.selected.product.code if incident.selected else "",
        "institution_code": incident.institution.code if incident.institution else "",
        "region_code": incident.region_code,
        "kind": incident.kind,
        "start_on": incident.start_on,
        "end_on": incident.end_on,
        "cause": incident.cause,
    }
    form = IncidentForm(
        request.POST or None, initial=initial, hospital=scope.level in (Level.INSTITUTION, Level.DEPARTMENT)
    )
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_update_incident(scope, incident.pk, form.to_input())
        except WorkflowError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, _("Saved."))
            return redirect("supply:incident_detail", incident.pk)
    title = _("Edit supply incident #%(pk)s") % {"pk": incident.pk}
    return render(request, "supply/form.html", {"form": form, "title": title})


@login_required
def incident_detail(request: HttpRequest, pk: int) -> HttpResponse:
    scope = need(request, perms.SUPPLY_INCIDENT)
    incident = one_or_404(_detail_qs(), pk)
    proofs = list(IncidentProof.objects.filter(incident=incident).select_related("uploaded_by"))
    can_write = scope.can(perms.SUPPLY_INCIDENT, "write")
    can_approve = scope.can(perms.SUPPLY_INCIDENT, "approve")
    status = incident.status
    return render(
        request,
        "supply/incident_detail.html",
        {
            "incident": incident,
            "proofs": proofs,
            "can_edit": can_write and status in (IncidentStatus.REPORTED, IncidentStatus.CONFIRMED),
            "can_upload": can_write and status != IncidentStatus.REJECTED,
            "can_flag": can_write
            and incident.kind == IncidentKind.INTERRUPTION
            and status != IncidentStatus.REJECTED
            and not incident.malicious,
            "can_confirm": can_approve and status == IncidentStatus.REPORTED,
            "can_close": can_approve and status == IncidentStatus.CONFIRMED,
            "can_clear": can_approve and incident.malicious,
            "note_form": NoteForm(),
            "close_form": CloseForm(),
            "reason_form": ReasonForm(),
            "proof_form": ProofForm(),
        },
    )


Step = Callable[[Scope, int, dict[str, Any]], Any]
ACTIONS: dict[str, tuple[type[forms.Form], Step]] = {
    "confirm": (NoteForm, lambda scope, pk, d: actions.do_confirm_incident(scope, pk, d["note"])),
    "reject": (NoteForm, lambda scope, pk, d: actions.do_reject_incident(scope, pk, d["note"])),
    "close": (CloseForm, lambda scope, pk, d: actions.do_close_incident(scope, pk, end_on=d["end_on"], note=d["note"])),
    "flag": (ReasonForm, lambda scope, pk, d: actions.do_flag_malicious(scope, pk, d["reason"])),
    "unflag": (NoteForm, lambda scope, pk, d: actions.do_clear_malicious(scope, pk, d["note"])),
}
DONE = {
    "confirm": gettext_lazy("The incident is confirmed."),
    "reject": gettext_lazy("The incident is rejected."),
    "close": gettext_lazy("The incident is closed."),
    "flag": gettext_lazy("The interruption is flagged as malicious to the bureau."),
    "unflag": gettext_lazy("The malicious flag is removed."),
}


@login_required
@require_POST
def incident_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in ACTIONS:
        raise Http404(action)
    verb = "write" if action == "flag" else "approve"
    scope = need(request, perms.SUPPLY_INCIDENT, verb)
    incident = one_or_404(SupplyIncident.objects.all(), pk)
    form_class, run = ACTIONS[action]
    form = form_class(request.POST)
    if not form.is_valid():
        messages.error(request, _("Please check the form."))
        return redirect("supply:incident_detail", incident.pk)
    try:
        run(scope, incident.pk, form.cleaned_data)
    except WorkflowError as exc:
        messages.error(request, exc.message_zh)
    else:
        messages.success(request, DONE[action])
    return redirect("supply:incident_detail", incident.pk)


@login_required
@require_POST
def proof_upload(request: HttpRequest, pk: int) -> HttpResponse:
    scope = need(request, perms.SUPPLY_INCIDENT, "write")
    incident = one_or_404(SupplyIncident.objects.all(), pk)
    form = ProofForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, _("Please choose a file."))
        return redirect("supply:incident_detail", incident.pk)
    upload = form.cleaned_data["file"]
    try:
        actions.do_attach_proof(scope, incident.pk, upload.chunks(), upload.name, declared_size=upload.size)
    except WorkflowError as exc:
        messages.error(request, exc.message_zh)
    else:
        messages.success(request, _("The proof file is kept with the incident."))
    return redirect("supply:incident_detail", incident.pk)


@login_required
def proof_download(request: HttpRequest, pk: int, proof: int) -> FileResponse:
    need(request, perms.SUPPLY_INCIDENT)
    found = one_or_404(IncidentProof.objects.filter(incident_id=pk), proof)
    try:
        path = resolve(found.path)
        handle = path.open("rb")
    except OSError:
        raise Http404("file missing") from None
    return FileResponse(handle, content_type=found.content_type, as_attachment=True, filename=found.original_name)
