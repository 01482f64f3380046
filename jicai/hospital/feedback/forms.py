"""Forms of the progress-feedback pages (R-H4, R-H5); the rules live in the actions."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from jicai.hospital.feedback.display import COMPONENT_NAMES
from jicai.policy.appraisal import COMPONENTS

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class BoardFilterForm(forms.Form):
    as_of = forms.DateField(label=_("As of"), required=False, widget=DATE)
    batch = forms.ChoiceField(label=_("Batch"), required=False)
    institution = forms.CharField(label=_("Institution"), required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, batches: list[tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["batch"].choices = [("", _("All batches")), *(batches or [])]  # type: ignore[attr-defined]

    def as_of_or_today(self) -> Any:
        value = self.cleaned_data.get("as_of") if self.is_valid() else None
        return value or timezone.localdate()


class ReminderForm(forms.Form):
    as_of = forms.DateField(label=_("As of"), widget=DATE)
    batch = forms.CharField(label=_("Batch"), required=False, widget=forms.HiddenInput)
    departments = forms.MultipleChoiceField(
        label=_("Departments behind target"), required=False, widget=forms.CheckboxSelectMultiple
    )
    email = forms.BooleanField(label=_("Also e-mail the department heads"), required=False)
    note = forms.CharField(label=_("Note to add"), required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: Any, departments: list[tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["departments"].choices = departments or []  # type: ignore[attr-defined]


class PublishSheetForm(forms.Form):
    as_of = forms.DateField(label=_("As of"), widget=DATE)
    batch = forms.CharField(label=_("Batch"), required=False)
    title = forms.CharField(label=_("Title"), required=False, max_length=200)


class SchemeForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    active = forms.BooleanField(label=_("Active"), required=False, initial=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in COMPONENTS:
            self.fields[name] = forms.DecimalField(
                label=COMPONENT_NAMES[name], min_value=0, max_value=100, decimal_places=2, initial=0
            )

    def weights(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in COMPONENTS}


class ComputeScoresForm(forms.Form):
    period = forms.CharField(label=_("Period"), max_length=12, help_text=_("2023-03 (month), 2023-Q1, 2023-H1 or 2023"))
    batch = forms.CharField(label=_("Batch"), required=False)


class PublishScoresForm(forms.Form):
    period = forms.CharField(label=_("Period"), max_length=12)
