"""Forms of the demand pages (R-H2); they only parse input — the actions decide."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from jicai.hospital.demand.actions import MAX_COMMENT, MAX_HISTORY_MONTHS, MIN_HISTORY_MONTHS
from jicai.hospital.models import AdjustmentReason
from jicai.policy.demand import DEFAULT_DEMAND_PARAMS

SOURCE_CHOICES = (
    ("dispensing", _("Dispensing (shortage months also detected from purchases)")),
    ("purchases", _("Accepted purchases")),
)


class PlanCreateForm(forms.Form):
    batch = forms.ChoiceField(label=_("Round"))
    history_months = forms.IntegerField(
        label=_("History window (months)"),
        min_value=MIN_HISTORY_MONTHS,
        max_value=MAX_HISTORY_MONTHS,
        initial=DEFAULT_DEMAND_PARAMS.history_months,
    )
    source = forms.ChoiceField(label=_("Use from"), choices=SOURCE_CHOICES, initial="dispensing")
    until = forms.DateField(
        label=_("Data complete until"),
        required=False,
        help_text=_("Months from this date's month on are not used (default: today)."),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    note = forms.CharField(label=_("Note"), required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, batches: list[tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["batch"].choices = batches or []  # type: ignore[attr-defined]


class AdjustForm(forms.Form):
    qty = forms.DecimalField(label=_("Reported quantity"), required=False, min_value=0, decimal_places=0)
    reason = forms.ChoiceField(label=_("Reason"), required=False, choices=[("", "—"), *AdjustmentReason.choices])
    note = forms.CharField(label=_("Note"), required=False, max_length=1000)


class ShortageForm(forms.Form):
    months = forms.CharField(
        label=_("Shortage months"),
        required=False,
        help_text=_("YYYY-MM, separated by commas or spaces."),
    )
    note = forms.CharField(label=_("Note"), required=False, max_length=1000)

    def month_list(self) -> list[str]:
        raw = self.cleaned_data.get("months") or ""
        return [m for m in raw.replace("，", ",").replace(" ", ",").split(",") if m.strip()]


class CommentForm(forms.Form):
    text = forms.CharField(label=_("Comment"), max_length=MAX_COMMENT, widget=forms.Textarea(attrs={"rows": 2}))


class StepForm(forms.Form):
    note = forms.CharField(label=_("Note"), required=False, max_length=2000)
