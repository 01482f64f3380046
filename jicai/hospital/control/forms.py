"""Forms of the substitute-control pages (R-H7–H9); the rules live in the actions."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from jicai.hospital.models import ControlKind, ExceptionReason

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
MONTH = forms.TextInput(attrs={"type": "month", "placeholder": "2023-04"})


class ControlFilterForm(forms.Form):
    month_from = forms.RegexField(label=_("From month"), regex=r"^\d{4}-\d{2}$", required=False, widget=MONTH)
    month_to = forms.RegexField(label=_("To month"), regex=r"^\d{4}-\d{2}$", required=False, widget=MONTH)
    department = forms.ChoiceField(label=_("Department"), required=False)
    institution = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, departments: list[tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["department"].choices = [("", _("All departments")), *(departments or [])]  # type: ignore[attr-defined]


class ExceptionForm(forms.Form):
    product_code = forms.ChoiceField(label=_("Antimicrobial product"))
    department = forms.ChoiceField(label=_("Department"))
    patient_key = forms.CharField(label=_("Patient (pseudonymised key)"), required=False, max_length=64)
    prescriber_code = forms.CharField(label=_("Prescriber"), required=False, max_length=40)
    reason = forms.ChoiceField(label=_("Reason"), choices=ExceptionReason.choices)
    note = forms.CharField(label=_("Remarks"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    valid_from = forms.DateField(label=_("Valid from"), widget=DATE)
    valid_until = forms.DateField(label=_("Valid until"), widget=DATE)

    def __init__(
        self,
        *args: Any,
        products: list[tuple[str, str]] | None = None,
        departments: list[tuple[str, str]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["product_code"].choices = products or []  # type: ignore[attr-defined]
        self.fields["department"].choices = departments or []  # type: ignore[attr-defined]


class EndExceptionForm(forms.Form):
    on = forms.DateField(label=_("Valid until"), required=False, widget=DATE)
    note = forms.CharField(label=_("Remarks"), required=False)


class MeasureForm(forms.Form):
    product_code = forms.ChoiceField(label=_("Product"))
    kind = forms.ChoiceField(label=_("Measure"), choices=ControlKind.choices)
    limit_qty = forms.DecimalField(
        label=_("Monthly quantity limit"),
        required=False,
        min_value=0,
        decimal_places=4,
        help_text=_("In the product's dispensing units; only for a limit."),
    )
    department = forms.ChoiceField(label=_("Department"), required=False)
    prescriber_code = forms.CharField(label=_("Prescriber"), required=False, max_length=40)
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 3}))
    effective_from = forms.DateField(label=_("Effective from"), widget=DATE)
    expires_on = forms.DateField(label=_("Expires on"), widget=DATE)
    anomaly = forms.JSONField(required=False, widget=forms.HiddenInput)

    def __init__(
        self,
        *args: Any,
        products: list[tuple[str, str]] | None = None,
        departments: list[tuple[str, str]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["product_code"].choices = products or []  # type: ignore[attr-defined]
        self.fields["department"].choices = [("", _("Whole hospital")), *(departments or [])]  # type: ignore[attr-defined]


class DecideForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", _("Approve")), ("reject", _("Reject"))])
    note = forms.CharField(label=_("Decision note"), required=False)


class RevokeForm(forms.Form):
    note = forms.CharField(label=_("Remarks"), required=False)
