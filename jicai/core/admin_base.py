"""Admin base: querysets follow the user's scope, every save and delete is audited."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import transaction
from django.forms.models import model_to_dict
from django.http import HttpRequest

from jicai.core import audit
from jicai.core.tenancy import Scope, require_scope


class AuditedAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Admin writes go through the same audit trail as every other write (R-L5)."""

    list_per_page = 50

    def _scope(self, request: HttpRequest) -> Scope:
        return require_scope()

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        scope = getattr(request, "scope", None)
        return scope is not None and scope.can(getattr(self.model, "resource", ""), "read")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        scope = getattr(request, "scope", None)
        return scope is not None and scope.can(getattr(self.model, "resource", ""), "write")

    has_add_permission = has_change_permission
    has_delete_permission = has_change_permission

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        scope = self._scope(request)
        label = obj._meta.label
        with transaction.atomic():
            if change:
                before = type(obj)._base_manager.get(pk=obj.pk)
                old = model_to_dict(before)
                obj.save()
                new = model_to_dict(obj)
                diff_old = {k: v for k, v in old.items() if new.get(k) != v}
                diff_new = {k: new[k] for k in diff_old}
                if diff_new:
                    audit.record(
                        scope, [audit.Change("update", label, obj.pk, str(obj), diff_old, diff_new, {"via": "admin"})]
                    )
            else:
                obj.save()
                audit.record(
                    scope, [audit.Change("create", label, obj.pk, str(obj), None, model_to_dict(obj), {"via": "admin"})]
                )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        scope = self._scope(request)
        with transaction.atomic():
            old = model_to_dict(obj)
            pk, text, label = obj.pk, str(obj), obj._meta.label
            obj.delete()
            audit.record(scope, [audit.Change("delete", label, pk, text, old, None, {"via": "admin"})])

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            self.delete_model(request, obj)
