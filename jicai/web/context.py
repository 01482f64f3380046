"""Template context: the menu shows only what the user's role may use."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _


def navigation(request: HttpRequest) -> dict[str, Any]:
    scope = getattr(request, "scope", None)
    if scope is None:
        return {"nav": []}
    items = [(_("Home"), reverse("web:home"))]
    items.append((_("Data"), reverse("web:data")))
    if scope.can("import_run", "read"):
        items.append((_("Import history"), reverse("web:imports")))
    user = getattr(request, "user", None)
    if user is not None and user.is_staff:
        items.append((_("Administration"), reverse("admin:index")))
    return {"nav": items, "scope": scope}
