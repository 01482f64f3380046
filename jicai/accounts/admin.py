from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from jicai.accounts.models import ApiToken, User
from jicai.core import audit
from jicai.core.tenancy import Level, require_scope


@admin.register(User)
class UserAdmin(BaseUserAdmin):  # type: ignore[type-arg]
    list_display = ("username", "first_name", "role", "region_code", "institution", "department", "is_active")
    list_filter = ("role", "is_active")
    fieldsets = (
        *BaseUserAdmin.fieldsets,  # type: ignore[misc]
        (_("Role and territory"), {"fields": ("role", "region_code", "institution", "department")}),
    )
    raw_id_fields = ("institution", "department")

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        qs = super().get_queryset(request)
        scope = getattr(request, "scope", None)
        if scope is None:
            return qs.none()
        if scope.is_system:
            return qs
        if scope.level is Level.REGION:
            prefix = scope.region_prefix
            return qs.filter(Q(region_code__startswith=prefix) | Q(institution__region_code__startswith=prefix))
        return qs.filter(institution_id=scope.institution_id)

    def has_module_permission(self, request: HttpRequest) -> bool:
        scope = getattr(request, "scope", None)
        return scope is not None and scope.can("user", "manage")

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        scope = getattr(request, "scope", None)
        return scope is not None and scope.is_system

    has_add_permission = has_change_permission
    has_delete_permission = has_change_permission

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        fields = ("username", "role", "region_code", "institution_id", "department_id", "is_active", "is_staff")
        before = User.objects.filter(pk=obj.pk).values(*fields).first() if change else None
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            after = {f: getattr(obj, f) for f in fields}
            old = {k: v for k, v in before.items() if after.get(k) != v} if before else None
            new = {k: after[k] for k in old} if old is not None else after
            if "password" in form.changed_data:
                new = {**new, "password": "(changed)"}
            if new:
                audit.record(
                    require_scope(),
                    [audit.Change("update" if change else "create", "accounts.User", obj.pk, obj.username, old, new)],
                )


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("user", "name", "prefix", "created_at", "last_used_at", "revoked")
    readonly_fields = ("prefix", "key_hash", "created_at", "last_used_at")

    def has_module_permission(self, request: HttpRequest) -> bool:
        scope = getattr(request, "scope", None)
        return scope is not None and scope.is_system

    has_view_permission = has_change_permission = has_module_permission  # type: ignore[assignment]
