from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from jicai.monitoring.models import Alert, CycleRun


class _ReadOnly(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(_ReadOnly):
    list_display = ("kind", "status", "institution_code", "batch_code", "item_code", "message_zh", "last_seen")
    list_filter = ("kind", "status", "severity")
    search_fields = ("institution_code", "item_code", "message_zh")

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        scope = getattr(request, "scope", None)
        return scope is not None and scope.can("alert", "read")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)


@admin.register(CycleRun)
class CycleRunAdmin(_ReadOnly):
    list_display = ("as_of", "status", "started_at", "finished_at")

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        scope = getattr(request, "scope", None)
        return scope is not None and scope.is_system

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)
