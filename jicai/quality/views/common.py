"""What the quality pages share: the scope, permission gates (404 when a role cannot see a register),
paging, filtered exports and the import page."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from jicai.core.tenancy import Scope, ScopeError
from jicai.imports.engine import ImportDenied, ImportResult
from jicai.imports.spec import DatasetSpec
from jicai.quality import exports
from jicai.quality.common import WorkflowError
from jicai.quality.forms import ImportForm
from jicai.quality.queries import Listing

PAGE_SIZE = 50


def scope_of(request: HttpRequest) -> Scope:
    scope = getattr(request, "scope", None)
    if scope is None:
        raise PermissionDenied("not signed in")
    return scope  # type: ignore[no-any-return]


def need(request: HttpRequest, resource: str, verb: str = "read") -> Scope:
    """The request's scope, or 404 when its role may not ``verb`` the register (do not reveal it)."""
    scope = scope_of(request)
    if not scope.can(resource, verb):
        raise Http404(resource)
    return scope


def may(request: HttpRequest, resource: str, verb: str) -> bool:
    scope = getattr(request, "scope", None)
    return scope is not None and scope.can(resource, verb)


def get_or_404(qs: QuerySet[Any], pk: int) -> Any:
    try:
        return qs.get(pk=pk)
    except ObjectDoesNotExist:
        raise Http404("not found") from None


def listed(request: HttpRequest, listing: Listing, qs: QuerySet[Any]) -> tuple[Page[Any], dict[str, str], str]:
    """One page of the filtered, sorted list; the filters that applied; the sort key."""
    qs, active, sort = listing.apply(qs, request.GET)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return page, active, sort


def export_response(
    request: HttpRequest,
    filename: str,
    columns: Iterable[exports.ExportColumn],
    objects: Iterable[Any],
    *,
    spec: DatasetSpec | None = None,
) -> HttpResponse:
    fmt = request.GET.get("format", "xlsx")
    if fmt not in exports.FORMATS:
        raise Http404(fmt)
    data = exports.write(fmt, filename, tuple(columns), objects, spec=spec)
    response = HttpResponse(data, content_type=exports.FORMATS[fmt])
    stamp = timezone.localdate().strftime("%Y%m%d")
    response["Content-Disposition"] = f"attachment; filename*=UTF-8''{_quote(filename)}-{stamp}.{fmt}"
    return response


def _quote(text: str) -> str:
    from urllib.parse import quote  # noqa: PLC0415

    return quote(text)


def workflow_errors(form: Form, exc: Exception) -> None:
    """Put an action's refusal on the form: on its field when the form has it, else at the top."""
    if isinstance(exc, WorkflowError):
        field = exc.field if exc.field in form.fields else None
        form.add_error(field, exc.message_zh)
    else:
        form.add_error(None, str(exc))


def run_action(form: Form, action: Callable[[], Any]) -> Any:
    """Run ``action``; a WorkflowError becomes a form error (returns None), a ScopeError a 403."""
    try:
        return action()
    except WorkflowError as exc:
        workflow_errors(form, exc)
        return None
    except ObjectDoesNotExist as exc:
        raise Http404("not found") from exc
    except ScopeError as exc:
        raise PermissionDenied(str(exc)) from exc


def import_page(
    request: HttpRequest,
    *,
    spec: DatasetSpec,
    resource: str,
    action: Callable[..., ImportResult],
    back: str,
) -> HttpResponse:
    """Upload → the shared engine: every row checked, nothing saved when a row is rejected."""
    scope = need(request, resource, "import")
    result = None
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                result = action(
                    scope,
                    upload.read(),
                    upload.name,
                    dry_run=form.cleaned_data["dry_run"],
                    load_valid=form.cleaned_data["load_valid"],
                )
            except ImportDenied as exc:
                raise Http404(spec.name) from exc
    else:
        form = ImportForm()
    return render(
        request,
        "quality/import.html",
        {
            "spec": spec,
            "form": form,
            "result": result,
            "back": back,
            "title": _("Import") + " · " + spec.label,
            "issues": [(i, result.column_label(i.column)) for i in result.issues[:500]] if result else [],
        },
    )
