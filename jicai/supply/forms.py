"""Forms of the supply pages: codes are typed (a province has thousands of institutions and items) and
resolved by the actions inside the user's scope; the forms only check shapes."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from jicai.supply.actions import CreditInput, IncidentInput, ReportInput, SanctionInput
from jicai.supply.models import CreditKind, IncidentKind, SanctionKind, Severity
from jicai.supply.uploads import MAX_PROOF_BYTES

DATE = forms.DateInput(attrs={"type": "date"})


def _remarks(rows: int) -> forms.CharField:
    return forms.CharField(
        label=_("Remarks"), widget=forms.Textarea(attrs={"rows": rows}), required=False, max_length=2000
    )


def _code(label: Any, *, required: bool = True, max_length: int = 40, help_text: Any = "") -> forms.CharField:
    return forms.CharField(label=label, max_length=max_length, required=required, help_text=help_text)


class IncidentForm(forms.Form):
    batch_code = _code(_("Batch code"))
    item_code = _code(_("Item code"))
    product_code = _code(_("Selected product code"), required=False, help_text=_("The product not supplied."))
    institution_code = _code(
        _("Institution code"), required=False, max_length=12, help_text=_("Empty for a region-wide incident.")
    )
    region_code = _code(_("Region code"), required=False, max_length=6, help_text=_("For a region-wide incident."))
    kind = forms.ChoiceField(label=_("Kind"), choices=IncidentKind.choices)
    start_on = forms.DateField(label=_("Start date"), widget=DATE)
    end_on = forms.DateField(label=_("End date"), widget=DATE, required=False, help_text=_("Empty while it lasts."))
    cause = forms.CharField(label=_("Cause"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)
    confirm = forms.BooleanField(label=_("Confirm at once"), required=False)

    def __init__(self, *args: Any, hospital: bool = False, can_approve: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if hospital:
            del self.fields["institution_code"]
            del self.fields["region_code"]
        if not can_approve:
            del self.fields["confirm"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("end_on") and data.get("start_on") and data["end_on"] < data["start_on"]:
            self.add_error("end_on", _("The end is before the start."))
        return data

    def to_input(self) -> IncidentInput:
        d = self.cleaned_data
        return IncidentInput(
            batch_code=d["batch_code"],
            item_code=d["item_code"],
            kind=d["kind"],
            start_on=d["start_on"],
            cause=d["cause"],
            product_code=d.get("product_code") or "",
            institution_code=d.get("institution_code") or "",
            region_code=d.get("region_code") or "",
            end_on=d.get("end_on"),
        )


class NoteForm(forms.Form):
    note = _remarks(2)


class CloseForm(NoteForm):
    end_on = forms.DateField(label=_("End date"), widget=DATE, required=False)


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)


class ProofForm(forms.Form):
    file = forms.FileField(
        label=_("Proof file"),
        help_text=_("PDF, JPEG or PNG, at most %(mb)s MB.") % {"mb": MAX_PROOF_BYTES // (1024 * 1024)},
    )


class UploadForm(forms.Form):
    file = forms.FileField(
        label=_("File"), help_text=_("CSV (UTF-8 or GB18030), XLSX or XLS; the first row is the header.")
    )
    dry_run = forms.BooleanField(label=_("Check only, change nothing"), required=False)


class CreditEventForm(forms.Form):
    company = forms.CharField(label=_("Company"), max_length=200)
    kind = forms.ChoiceField(label=_("Kind"), choices=CreditKind.choices)
    occurred_on = forms.DateField(label=_("Date"), widget=DATE)
    severity = forms.ChoiceField(label=_("Severity"), choices=Severity.choices)
    institution_code = _code(_("Institution code"), required=False, max_length=12)
    product_code = _code(_("Product code"), required=False)
    region_code = _code(_("Region code"), required=False, max_length=6)
    description = forms.CharField(
        label=_("Description"), widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=2000
    )

    def __init__(self, *args: Any, hospital: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if hospital:
            del self.fields["institution_code"]
            del self.fields["region_code"]

    def to_input(self) -> CreditInput:
        d = self.cleaned_data
        return CreditInput(
            company=d["company"],
            kind=d["kind"],
            occurred_on=d["occurred_on"],
            severity=d["severity"],
            description=d.get("description") or "",
            institution_code=d.get("institution_code") or "",
            product_code=d.get("product_code") or "",
            region_code=d.get("region_code") or "",
        )


class DeriveForm(forms.Form):
    period = forms.CharField(label=_("Reporting period"), max_length=7, help_text=_("2026, 2026Q1 or 2026-03"))


class SanctionForm(forms.Form):
    company = forms.CharField(label=_("Company"), max_length=200)
    kind = forms.ChoiceField(label=_("Measure"), choices=SanctionKind.choices)
    decided_on = forms.DateField(label=_("Decision date"), widget=DATE)
    region_code = _code(_("Region code"), required=False, max_length=6)
    batch_code = _code(_("Batch code"), required=False)
    item_code = _code(_("Item code"), required=False)
    backup_company = forms.CharField(label=_("Backup or emergency supplier"), max_length=200, required=False)
    amount = forms.DecimalField(label=_("Compensation (yuan)"), max_digits=14, decimal_places=2, required=False)
    note = _remarks(3)

    def to_input(self) -> SanctionInput:
        d = self.cleaned_data
        return SanctionInput(
            company=d["company"],
            kind=d["kind"],
            decided_on=d["decided_on"],
            note=d.get("note") or "",
            batch_code=d.get("batch_code") or "",
            item_code=d.get("item_code") or "",
            backup_company=d.get("backup_company") or "",
            amount=d.get("amount"),
            region_code=d.get("region_code") or "",
        )


class SupplyReportForm(forms.Form):
    company = forms.CharField(label=_("Manufacturer"), max_length=200)
    batch_code = _code(_("Batch code"))
    item_code = _code(_("Item code"))
    product_code = _code(_("Product code"), required=False)
    region_code = _code(_("Region code"), required=False, max_length=6)
    report_date = forms.DateField(label=_("Report date"), widget=DATE)
    stock_on_hand = forms.DecimalField(label=_("Stock on hand"), max_digits=16, decimal_places=4, min_value=0)
    capacity_per_month = forms.DecimalField(
        label=_("Capacity per month"), max_digits=16, decimal_places=4, min_value=0, required=False
    )
    monthly_demand = forms.DecimalField(
        label=_("Expected monthly demand"),
        max_digits=16,
        decimal_places=4,
        min_value=0,
        required=False,
        help_text=_("Empty: the agreed volumes of the item in the region ÷ 12."),
    )
    production_stopped = forms.BooleanField(label=_("Production stopped"), required=False)
    stop_reason = forms.CharField(
        label=_("Reason for the stop"), widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=2000
    )
    expected_restart = forms.DateField(label=_("Expected restart"), widget=DATE, required=False)
    note = _remarks(2)

    def to_input(self) -> ReportInput:
        d = self.cleaned_data
        return ReportInput(
            company=d["company"],
            batch_code=d["batch_code"],
            item_code=d["item_code"],
            report_date=d["report_date"],
            stock_on_hand=d["stock_on_hand"],
            product_code=d.get("product_code") or "",
            capacity_per_month=d.get("capacity_per_month"),
            monthly_demand=d.get("monthly_demand"),
            production_stopped=bool(d.get("production_stopped")),
            stop_reason=d.get("stop_reason") or "",
            expected_restart=d.get("expected_restart"),
            note=d.get("note") or "",
            region_code=d.get("region_code") or "",
        )
