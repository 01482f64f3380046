"""Forms of the formulary pages (R-H6)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from jicai.hospital.models import FormularyTrigger


class ReviewForm(forms.Form):
    batch = forms.ChoiceField(label=_("Round"))
    trigger = forms.ChoiceField(label=_("Review trigger"), choices=FormularyTrigger.choices)
    as_of = forms.DateField(label=_("Review date"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    extra_products = forms.CharField(
        label=_("Add products by code"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "XC10AAA067B002020101999 A01"}),
        help_text=_("One product per line: product code, optionally followed by the item code."),
    )

    def __init__(self, *args: Any, batches: list[tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["batch"].choices = batches or []  # type: ignore[attr-defined]
        if not self.is_bound:
            self.initial.setdefault("as_of", timezone.localdate())


class AddProductForm(forms.Form):
    product_code = forms.CharField(label=_("Product code"), max_length=40)
    item_code = forms.CharField(label=_("Item code"), max_length=40, required=False)
