"""Forms of the quality pages; each turns its data into the input of one action."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from jicai.core.tenancy import Level, Scope
from jicai.organizations.models import Department
from jicai.policy import quality as rules
from jicai.quality.actions import EvaluationInput, ProblemInput, ReactionInput
from jicai.quality.models import EvaluationScheme, Outcome

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
TEXT = forms.Textarea(attrs={"rows": 3})
IMPORT_SUFFIXES = (".csv", ".txt", ".xlsx", ".xlsm", ".xls")


def _today() -> dt.date:
    return timezone.localdate()


class ReactionForm(forms.Form):
    report_no = forms.CharField(
        label=_("Report number"), max_length=40, required=False, help_text=_("Left empty: numbered automatically.")
    )
    institution_code = forms.CharField(label=_("Institution code"), max_length=12, required=False)
    department = forms.ModelChoiceField(label=_("Department"), queryset=Department.objects.none(), required=False)
    report_date = forms.DateField(label=_("Report date"), widget=DATE, initial=_today)
    onset_date = forms.DateField(label=_("Onset date"), widget=DATE, required=False)
    product_code = forms.CharField(
        label=_("Product code"), max_length=40, widget=forms.TextInput(attrs={"list": "product-codes"})
    )
    lot_number = forms.CharField(label=_("Lot number"), max_length=60, required=False)
    reaction = forms.CharField(label=_("Reaction"), widget=TEXT)
    is_new = forms.BooleanField(label=_("New reaction (not in the label)"), required=False)
    is_serious = forms.BooleanField(label=_("Serious reaction"), required=False)
    outcome = forms.ChoiceField(label=_("Outcome"), choices=Outcome.choices, initial=Outcome.UNKNOWN)
    reporter = forms.CharField(label=_("Reporter"), max_length=100)

    def __init__(self, *args: Any, scope: Scope, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if scope.level in (Level.INSTITUTION, Level.DEPARTMENT) or editing:
            del self.fields["institution_code"]
        if editing:
            self.fields["report_no"].disabled = True
        if scope.level is Level.DEPARTMENT:
            del self.fields["department"]
        else:
            departments = Department.objects.for_scope(scope)
            if scope.institution_id:
                departments = departments.filter(institution_id=scope.institution_id)
            self.fields["department"].queryset = departments  # type: ignore[attr-defined]

    def to_input(self) -> ReactionInput:
        d = self.cleaned_data
        department = d.get("department")
        return ReactionInput(
            report_no=d.get("report_no") or "",
            institution_code=d.get("institution_code") or "",
            department_code=department.code if department else "",
            report_date=d["report_date"],
            onset_date=d.get("onset_date"),
            product_code=d["product_code"].strip(),
            lot_number=d.get("lot_number") or "",
            reaction=d["reaction"],
            is_new=d["is_new"],
            is_serious=d["is_serious"],
            outcome=d["outcome"],
            reporter=d["reporter"],
        )


class ConclusionForm(forms.Form):
    conclusion = forms.CharField(label=_("Conclusion of the investigation"), widget=TEXT)


class SuspensionForm(forms.Form):
    lot_number = forms.CharField(
        label=_("Lot number"), max_length=60, required=False, help_text=_("Empty: every lot of the product.")
    )
    reason = forms.CharField(label=_("Reason"), widget=TEXT)
    effective_from = forms.DateField(label=_("Effective from"), widget=DATE, initial=_today)
    until = forms.DateField(label=_("Until"), widget=DATE, required=False, help_text=_("Empty: until lifted."))


class NoteForm(forms.Form):
    note = forms.CharField(label=_("Note"), widget=TEXT, required=False)


class LiftForm(forms.Form):
    lifted_on = forms.DateField(label=_("Use resumes on"), widget=DATE, initial=_today)
    note = forms.CharField(label=_("Note"), widget=TEXT, required=False)


class ProblemForm(forms.Form):
    problem_no = forms.CharField(
        label=_("Problem number"), max_length=40, required=False, help_text=_("Left empty: numbered automatically.")
    )
    institution_code = forms.CharField(label=_("Institution code"), max_length=12, required=False)
    product_code = forms.CharField(
        label=_("Product code"), max_length=40, widget=forms.TextInput(attrs={"list": "product-codes"})
    )
    lot_number = forms.CharField(label=_("Lot number"), max_length=60, required=False)
    description = forms.CharField(label=_("Problem"), widget=TEXT)
    found_on = forms.DateField(label=_("Found on"), widget=DATE, initial=_today)
    reported_by = forms.CharField(label=_("Reported by"), max_length=100)
    distributor = forms.CharField(
        label=_("Distributor"),
        max_length=200,
        required=False,
        help_text=_("Empty: the distributor of the latest delivery of this product."),
    )
    needs_regulator = forms.BooleanField(label=_("Report to the drug regulator"), required=False)

    def __init__(self, *args: Any, scope: Scope, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if scope.level is Level.INSTITUTION or editing:
            del self.fields["institution_code"]
        if editing:
            self.fields["problem_no"].disabled = True

    def to_input(self) -> ProblemInput:
        d = self.cleaned_data
        return ProblemInput(
            problem_no=d.get("problem_no") or "",
            institution_code=d.get("institution_code") or "",
            product_code=d["product_code"].strip(),
            lot_number=d.get("lot_number") or "",
            description=d["description"],
            found_on=d["found_on"],
            reported_by=d["reported_by"],
            distributor=d.get("distributor") or "",
            needs_regulator=d["needs_regulator"],
        )


class RouteDistributorForm(forms.Form):
    on = forms.DateField(label=_("Sent on"), widget=DATE, initial=_today)
    distributor = forms.CharField(label=_("Distributor"), max_length=200, required=False)
    reply = forms.CharField(label=_("Distributor's reply"), widget=TEXT, required=False)


class RouteRegulatorForm(forms.Form):
    on = forms.DateField(label=_("Sent on"), widget=DATE, initial=_today)
    reference = forms.CharField(label=_("Regulator reference"), max_length=100)


class ResolveForm(forms.Form):
    on = forms.DateField(label=_("Resolved on"), widget=DATE, initial=_today)
    resolution = forms.CharField(label=_("Resolution"), widget=TEXT)
    reply = forms.CharField(label=_("Distributor's reply"), widget=TEXT, required=False)


class CloseProblemForm(forms.Form):
    on = forms.DateField(label=_("Closed on"), widget=DATE, initial=_today)
    reason = forms.CharField(label=_("Reason"), widget=TEXT)


def _percent(label: Any, initial: Any) -> forms.DecimalField:
    return forms.DecimalField(label=label, min_value=0, max_value=100, decimal_places=2, max_digits=5, initial=initial)


DIMENSION_LABELS = {
    "safety": _("Safety"),
    "efficacy": _("Efficacy"),
    "economy": _("Economy"),
    "innovation": _("Innovation"),
    "suitability": _("Suitability"),
    "accessibility": _("Accessibility"),
}


class SchemeForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    active = forms.BooleanField(label=_("Active"), required=False, initial=True)
    region_code = forms.CharField(label=_("Region code"), max_length=6, required=False)

    def __init__(self, *args: Any, scope: Scope, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for dim in rules.DIMENSIONS:
            self.fields[dim.value] = _percent(DIMENSION_LABELS[dim.value], rules.DEFAULT_WEIGHTS.of(dim))
        if scope.level is not Level.REGION or editing:
            del self.fields["region_code"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        values = [data.get(d.value) for d in rules.DIMENSIONS]
        if all(v is not None for v in values) and sum(values) != 100:  # type: ignore[arg-type]
            raise forms.ValidationError(_("The six weights must add up to 100%."))
        return data

    def weights(self) -> dict[str, Any]:
        return {d.value: self.cleaned_data[d.value] for d in rules.DIMENSIONS}


class EvaluationForm(forms.Form):
    product_code = forms.CharField(
        label=_("Product code"), max_length=40, widget=forms.TextInput(attrs={"list": "product-codes"})
    )
    evaluated_on = forms.DateField(label=_("Evaluated on"), widget=DATE, initial=_today)
    scheme = forms.ModelChoiceField(
        label=_("Weighting scheme"),
        queryset=EvaluationScheme.objects.none(),
        required=False,
        empty_label=_("Default weights"),
    )
    evaluator = forms.CharField(label=_("Evaluator"), max_length=100)
    valid_until = forms.DateField(label=_("Valid until"), widget=DATE, required=False)
    evidence = forms.CharField(label=_("Evidence"), widget=TEXT, required=False)
    region_code = forms.CharField(label=_("Region code"), max_length=6, required=False)

    def __init__(self, *args: Any, scope: Scope, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for dim in rules.DIMENSIONS:
            self.fields[dim.value] = forms.DecimalField(
                label=DIMENSION_LABELS[dim.value], min_value=0, max_value=100, decimal_places=2, max_digits=5
            )
        self.fields["scheme"].queryset = EvaluationScheme.objects.for_scope(scope).filter(active=True)  # type: ignore[attr-defined]
        if scope.level is not Level.REGION or editing:
            del self.fields["region_code"]

    def to_input(self) -> EvaluationInput:
        d = self.cleaned_data
        scheme = d.get("scheme")
        return EvaluationInput(
            product_code=d["product_code"].strip(),
            evaluated_on=d["evaluated_on"],
            scores={dim.value: d[dim.value] for dim in rules.DIMENSIONS},
            evaluator=d["evaluator"],
            evidence=d.get("evidence") or "",
            valid_until=d.get("valid_until"),
            scheme_id=scheme.pk if scheme else None,
            region_code=d.get("region_code") or "",
        )


class ImportForm(forms.Form):
    file = forms.FileField(label=_("File (CSV, XLSX or XLS)"))
    dry_run = forms.BooleanField(label=_("Check only, do not save"), required=False)
    load_valid = forms.BooleanField(label=_("Load the valid rows even if some are rejected"), required=False)

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if not upload.name.lower().endswith(IMPORT_SUFFIXES):
            raise forms.ValidationError(_("Only CSV, XLSX and XLS files can be imported."))
        if upload.size > settings.JICAI_UPLOAD_MAX_BYTES:
            raise forms.ValidationError(_("The file is too large."))
        return upload
