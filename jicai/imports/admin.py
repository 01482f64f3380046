from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from jicai.imports.models import ImportRun


@admin.register(ImportRun)
class ImportRunAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "started_at",
        "dataset",
        "filename",
        "actor_name",
        "status",
        "total_rows",
        "created",
        "updated",
        "rejected",
        "warnings",
    )
    list_filter = ("dataset", "status")
    readonly_fields = [f.name for f in ImportRun._meta.fields]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        scope = getattr(request, "scope", None)
        return scope is not None and scope.can("import_run", "read")

    has_module_permission = has_view_permission

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
