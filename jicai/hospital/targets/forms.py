"""Forms of the department-target pages (R-H3); they only parse input — the actions decide."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from jicai.hospital.targets.actions import MAX_REFERENCE_MONTHS, MIN_REFERENCE_MONTHS

GRANULARITY_CHOICES = (
    ("month", _("Month")),
    ("quarter", _("Quarter")),
    ("half_year", _("Half-year")),
)


class GenerateForm(forms.Form):
    batch = forms.ChoiceField(label=_("Round"))
    year = forms.IntegerField(label=_("Agreement year"), min_value=1, initial=1)
    granularity = forms.ChoiceField(label=_("Time slices"), choices=GRANULARITY_CHOICES, initial="month")
    reference_months = forms.IntegerField(
        label=_("History window (months before the year)"),
        min_value=MIN_REFERENCE_MONTHS,
        max_value=MAX_REFERENCE_MONTHS,
        initial=12,
    )

    def __init__(self, *args: Any, batches: list[tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["batch"].choices = batches or []  # type: ignore[attr-defined]


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=1000)
