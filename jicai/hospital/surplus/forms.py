"""Forms of the retained surplus pages (R-G3)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from jicai.hospital.surplus.queries import BASIS_LABELS


class DistributionForm(forms.Form):
    period = forms.CharField(label=_("Distribution period"), max_length=20, help_text=_("e.g. 2023年度 or 2023Q1"))
    amount = forms.DecimalField(label=_("Retained amount (yuan)"), max_digits=14, decimal_places=2, min_value=0)
    date_from = forms.DateField(
        label=_("Use counted from"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    date_to = forms.DateField(
        label=_("Use counted to"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    basis = forms.ChoiceField(label=_("Prescribers' share by"), choices=list(BASIS_LABELS.items()), initial="amount")
    pharmacy_staff = forms.CharField(
        label=_("Pharmacy staff"),
        widget=forms.Textarea(attrs={"rows": 5, "placeholder": "Y001,1\nY002,1.5"}),
        help_text=_("One per line: staff id or name, optionally a comma and a weight (no weights: equal shares)."),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The period ends before it starts."))
        return data
