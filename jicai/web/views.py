"""Web pages: login, home, master-data lists, upload with error report, export."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy

from jicai.core import audit
from jicai.core.tenancy import Scope, ScopeError, use_scope
from jicai.imports.datasets import DATASETS, cell_text, get_spec
from jicai.imports.engine import ImportDenied, run_import
from jicai.imports.export import CONTENT_TYPES, FORMATS, write_export
from jicai.imports.mappings import MappingError, resolve_mapping
from jicai.imports.models import ImportRun
from jicai.imports.spec import DatasetSpec
from jicai.web.context import screen_links
from jicai.web.forms import UploadForm

PAGE_SIZE = 50
SEARCH_FIELDS: dict[str, tuple[str, ...]] = {
    "institutions": ("code", "name", "region_code"),
    "departments": ("code", "name", "institution__code", "institution__name"),
    "companies": ("name", "credit_code"),
    "products": ("code", "generic_name", "manufacturer", "approval_number"),
    "prices": ("generic_name", "company", "price_list__code"),
    "batches": ("code", "name"),
    "items": ("item_code", "generic_name", "batch__code"),
    "selected": ("product__code", "product__generic_name", "company__name", "item__item_code"),
    "non_selected": ("product__code", "product__generic_name", "item__item_code"),
    "agreements": ("institution__code", "institution__name", "item__item_code", "batch__code"),
}


def _scope(request: HttpRequest) -> Scope:
    scope = getattr(request, "scope", None)
    if scope is None:
        raise ScopeError("not signed in")
    return scope  # type: ignore[no-any-return]


def _spec_or_404(name: str, scope: Scope, verb: str = "read") -> DatasetSpec:
    try:
        spec = get_spec(name)
    except KeyError:
        raise Http404(name) from None
    if not scope.can(spec.resource, verb):
        raise Http404(name)  # do not reveal datasets a role cannot use
    return spec


@login_required
def home(request: HttpRequest) -> HttpResponse:
    scope = _scope(request)
    counts = []
    for spec in DATASETS.values():
        if scope.can(spec.resource, "read"):
            counts.append((spec, spec.export_queryset(scope).count()))
    recent = ImportRun.objects.all()[:5] if scope.can("import_run", "read") else []
    return render(request, "web/home.html", {"counts": counts, "recent": recent, "screens": screen_links(scope)})


@login_required
def data(request: HttpRequest) -> HttpResponse:
    scope = _scope(request)
    specs = [s for s in DATASETS.values() if scope.can(s.resource, "read")]
    rows = [(s, scope.can(s.resource, "import"), scope.can(s.resource, "export")) for s in specs]
    return render(request, "web/data.html", {"rows": rows})


@login_required
def dataset_list(request: HttpRequest, name: str) -> HttpResponse:
    scope = _scope(request)
    spec = _spec_or_404(name, scope)
    qs = spec.export_queryset(scope)
    query = request.GET.get("q", "").strip()
    if query:
        condition = Q()
        for field in SEARCH_FIELDS.get(spec.name, ()):
            condition |= Q(**{f"{field}__icontains": query})
        qs = qs.filter(condition)
    sort = request.GET.get("sort", "")
    columns = [c.name for c in spec.columns]
    sortable = {c: c for c in columns if c in {f.name for f in spec.model._meta.fields}}
    if sort.lstrip("-") in sortable:
        qs = qs.order_by(sort)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [[cell_text(v) for v in spec.export_row(obj).values()] for obj in page.object_list]
    return render(
        request,
        "web/dataset_list.html",
        {
            "spec": spec,
            "columns": spec.columns,
            "rows": rows,
            "page": page,
            "query": query,
            "sort": sort,
            "sortable": sortable,
            "can_import": scope.can(spec.resource, "import"),
            "can_export": scope.can(spec.resource, "export"),
            "formats": FORMATS,
        },
    )


@login_required
def dataset_import(request: HttpRequest, name: str) -> HttpResponse:
    scope = _scope(request)
    spec = _spec_or_404(name, scope, "import")
    result = None
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES, dataset=spec.name)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            mapping = None
            if form.cleaned_data.get("mapping"):
                try:
                    mapping = resolve_mapping(form.cleaned_data["mapping"])
                except MappingError as exc:
                    form.add_error("mapping", str(exc))
            if not form.errors:
                options = {"list": form.cleaned_data["price_list"]} if form.cleaned_data.get("price_list") else {}
                try:
                    result = run_import(
                        spec,
                        upload.read(),
                        upload.name,
                        scope,
                        dry_run=form.cleaned_data["dry_run"],
                        load_valid=form.cleaned_data["load_valid"],
                        mapping=mapping,
                        options=options,
                    )
                except ImportDenied as exc:
                    raise Http404(name) from exc
    else:
        form = UploadForm(dataset=spec.name)
    return render(
        request,
        "web/dataset_import.html",
        {
            "spec": spec,
            "form": form,
            "result": result,
            "issues": [(i, result.column_label(i.column)) for i in result.issues[:500]] if result else [],
        },
    )


@login_required
def dataset_export(request: HttpRequest, name: str) -> FileResponse:
    scope = _scope(request)
    spec = _spec_or_404(name, scope, "export")
    fmt = request.GET.get("format", "xlsx")
    if fmt not in FORMATS:
        raise Http404(fmt)
    buffer = io.BytesIO()
    write_export(spec, scope, fmt, buffer)
    buffer.seek(0)
    response = FileResponse(buffer, content_type=CONTENT_TYPES[fmt], as_attachment=True, filename=f"{spec.name}.{fmt}")
    return response


@login_required
def imports(request: HttpRequest) -> HttpResponse:
    scope = _scope(request)
    if not scope.can("import_run", "read"):
        raise Http404("imports")
    page = Paginator(ImportRun.objects.all(), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "web/imports.html", {"page": page})


@login_required
def import_report(request: HttpRequest, run_id: int) -> FileResponse:
    scope = _scope(request)
    with use_scope(scope):
        run = ImportRun.objects.filter(pk=run_id).first()
    own = run is not None and run.actor_id == scope.actor_id
    if run is None or not run.report or not (own or scope.can("import_run", "read")):
        raise Http404("report")
    path = Path(settings.JICAI_HOME) / "reports" / Path(run.report).name
    if not path.is_file():
        raise Http404("report")
    return FileResponse(path.open("rb"), as_attachment=True, filename=f"导入问题-{run.dataset}-{run.pk}.xlsx")


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change, recorded in the audit trail."""

    success_url = reverse_lazy("web:password_change_done")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        scope = _scope(self.request)
        audit.record(scope, [audit.Change("password", "accounts.User", scope.actor_id, scope.actor_name, None, None)])
        return response


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


def root(request: HttpRequest) -> HttpResponse:
    return redirect("web:home")
