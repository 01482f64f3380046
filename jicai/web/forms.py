from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from jicai.imports.mappings import available_mappings

ALLOWED_SUFFIXES = (".csv", ".txt", ".xlsx", ".xlsm", ".xls", ".json")


class UploadForm(forms.Form):
    file = forms.FileField(label=_("File (CSV, XLSX or XLS)"))
    mapping = forms.ChoiceField(label=_("Header mapping"), required=False)
    price_list = forms.SlugField(label=_("Price list code (prices only)"), required=False)
    dry_run = forms.BooleanField(label=_("Check only, do not save"), required=False)
    load_valid = forms.BooleanField(label=_("Load the valid rows even if some are rejected"), required=False)

    def __init__(self, *args: Any, dataset: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices: list[tuple[str, Any]] = [("", _("Detect automatically"))]
        choices += [(m.name, m.label) for m in available_mappings().values() if m.dataset == dataset]
        self.fields["mapping"].choices = choices  # type: ignore[attr-defined]

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        name = upload.name.lower()
        if not name.endswith(ALLOWED_SUFFIXES):
            raise forms.ValidationError(_("Only CSV, XLSX and XLS files can be imported."))
        if upload.size > settings.JICAI_UPLOAD_MAX_BYTES:
            raise forms.ValidationError(_("The file is too large."))
        return upload
