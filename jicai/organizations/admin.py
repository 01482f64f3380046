from django.contrib import admin

from jicai.core.admin_base import AuditedAdmin
from jicai.organizations.models import Company, Department, Institution


@admin.register(Institution)
class InstitutionAdmin(AuditedAdmin):
    list_display = ("code", "name", "region_code", "kind", "level", "participating")
    list_filter = ("kind", "level", "participating")
    search_fields = ("code", "name", "region_code")
    exclude = ("extra",)


@admin.register(Department)
class DepartmentAdmin(AuditedAdmin):
    list_display = ("institution", "code", "name")
    search_fields = ("code", "name", "institution__code", "institution__name")
    list_select_related = ("institution",)
    exclude = ("extra",)


@admin.register(Company)
class CompanyAdmin(AuditedAdmin):
    list_display = ("name", "role", "credit_code")
    list_filter = ("role",)
    search_fields = ("name", "credit_code")
    exclude = ("extra",)
