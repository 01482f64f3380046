from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from jicai.core.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only: the trail is append-only and only the operator sees it whole."""

    list_display = ("seq", "at", "actor_name", "scope", "action", "model", "object_key")
    list_filter = ("action", "model")
    search_fields = ("object_key", "actor_name")
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        scope = getattr(request, "scope", None)
        return scope is not None and scope.is_system

    has_module_permission = has_view_permission

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
