"""What the supply pages share: the acting scope and its checks, pagination, export and import."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from jicai.core.tenancy import Scope, ScopeError
from jicai.imports.engine import ImportDenied
from jicai.imports.spec import DatasetSpec
from jicai.supply.actions import do_import
from jicai.supply.export import export_xlsx
from jicai.supply.forms import UploadForm

PAGE_SIZE = 50


def acting(request: HttpRequest) -> Scope:
    scope = getattr(request, "scope", None)
    if scope is None:
        raise ScopeError("not signed in")
    return scope  # type: ignore[no-any-return]


def need(request: HttpRequest, resource: str, verb: str = "read") -> Scope:
    """The request's scope if it may ``verb`` the ``resource``; otherwise the page is refused (403)."""
    scope = acting(request)
    if not scope.can(resource, verb):
        raise PermissionDenied(f"{scope.label} may not {verb} {resource}")
    return scope


def one_or_404(qs: QuerySet[Any], pk: int) -> Any:
    """The record ``pk`` if it lies in the user's territory (the queryset is scoped), else 404."""
    found = qs.filter(pk=pk).first()
    if found is None:
        raise Http404("not in your territory")
    return found


def paginate(request: HttpRequest, rows: Sequence[Any] | QuerySet[Any]) -> Page[Any]:
    return Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))


def import_page(request: HttpRequest, spec: DatasetSpec, back: str) -> HttpResponse:
    """Upload a file into a register: all-or-nothing, the problems listed by line and column."""
    scope = need(request, spec.resource, "import")
    result = None
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                result = do_import(scope, spec.name, upload.read(), upload.name, dry_run=form.cleaned_data["dry_run"])
            except ImportDenied as exc:
                raise PermissionDenied(str(exc)) from exc
    else:
        form = UploadForm()
    issues = [(i, result.column_label(i.column)) for i in result.issues[:500]] if result else []
    return render(
        request, "supply/import.html", {"spec": spec, "form": form, "result": result, "issues": issues, "back": back}
    )


def params(request: HttpRequest) -> dict[str, str]:
    """The GET parameters as plain strings (the list filters)."""
    return {k: v for k, v in request.GET.items() if isinstance(v, str)}


__all__ = ["PAGE_SIZE", "acting", "export_xlsx", "import_page", "need", "one_or_404", "paginate", "params"]
