"""Forms of the register pages (R-H10, R-H11)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from jicai.hospital.registers.queries import CHANNELS, ISSUE_CATEGORIES

DATE = {"type": "date"}
DEFAULT_DUE_DAYS = 15
"""Default due date offered on the forms: received / reviewed + 15 days (a candidate for a profile value)."""


class _CaseForm(forms.Form):
    owner = forms.ChoiceField(label=_("Owner"), required=False)
    due_on = forms.DateField(label=_("Due on"), widget=forms.DateInput(attrs=DATE, format="%Y-%m-%d"))

    def __init__(self, *args: Any, owners: list[tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["owner"].choices = owners or [("", "—")]  # type: ignore[attr-defined]
        if not self.is_bound:
            self.initial.setdefault("due_on", timezone.localdate() + dt.timedelta(days=DEFAULT_DUE_DAYS))


class ReviewForm(_CaseForm):
    department = forms.ChoiceField(label=_("Department"))
    prescriber_code = forms.CharField(label=_("Prescriber"), max_length=40, required=False)
    reviewed_on = forms.DateField(label=_("Reviewed on"), widget=forms.DateInput(attrs=DATE, format="%Y-%m-%d"))
    sample = forms.CharField(label=_("Sample (prescription or order number)"), max_length=200)
    rational = forms.TypedChoiceField(
        label=_("Finding"),
        choices=[("0", _("Irrational")), ("1", _("Rational"))],
        coerce=lambda v: v == "1",
        initial="0",
    )
    issue = forms.ChoiceField(label=_("Issue category"), required=False, choices=[("", "—"), *ISSUE_CATEGORIES.items()])
    comment = forms.CharField(label=_("Commentary"), required=False, widget=forms.Textarea(attrs={"rows": 3}))

    field_order = [
        "department",
        "prescriber_code",
        "reviewed_on",
        "sample",
        "rational",
        "issue",
        "comment",
        "owner",
        "due_on",
    ]

    def __init__(self, *args: Any, departments: list[tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["department"].choices = departments or []  # type: ignore[attr-defined]
        if not self.is_bound:
            self.initial.setdefault("reviewed_on", timezone.localdate())


class ComplaintForm(_CaseForm):
    received_on = forms.DateField(label=_("Received on"), widget=forms.DateInput(attrs=DATE, format="%Y-%m-%d"))
    channel = forms.ChoiceField(label=_("Channel"), choices=list(CHANNELS.items()))
    product_code = forms.CharField(label=_("Product code"), max_length=40, required=False)
    subject = forms.CharField(label=_("Subject"), max_length=200)
    content = forms.CharField(
        label=_("Content"),
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Record no patient identity (name, ID-card or phone number)."),
    )

    field_order = ["received_on", "channel", "product_code", "subject", "content", "owner", "due_on"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("received_on", timezone.localdate())


class CloseForm(forms.Form):
    outcome = forms.CharField(label=_("Outcome"), widget=forms.Textarea(attrs={"rows": 3}))
