from django.contrib import admin

from jicai.core.admin_base import AuditedAdmin
from jicai.programme.models import Agreement, Batch, Item, NonSelectedProduct, SelectedProduct


@admin.register(Batch)
class BatchAdmin(AuditedAdmin):
    list_display = ("code", "name", "level", "policy_profile", "region_code", "start_date")
    list_filter = ("level",)
    search_fields = ("code", "name")
    exclude = ("extra",)


@admin.register(Item)
class ItemAdmin(AuditedAdmin):
    list_display = ("batch", "item_code", "generic_name", "unit_label", "winners")
    list_filter = ("batch",)
    search_fields = ("item_code", "generic_name")
    list_select_related = ("batch",)
    exclude = ("extra",)


@admin.register(SelectedProduct)
class SelectedProductAdmin(AuditedAdmin):
    list_display = ("batch", "item", "product", "winning_price", "company", "conversion")
    list_filter = ("batch",)
    search_fields = ("product__code", "product__generic_name", "company__name")
    list_select_related = ("batch", "item", "product", "company")
    raw_id_fields = ("product", "company")
    exclude = ("extra",)


@admin.register(NonSelectedProduct)
class NonSelectedProductAdmin(AuditedAdmin):
    list_display = ("batch", "item", "product", "kind", "conversion")
    list_filter = ("batch", "kind")
    list_select_related = ("batch", "item", "product")
    raw_id_fields = ("product",)
    exclude = ("extra",)


@admin.register(Agreement)
class AgreementAdmin(AuditedAdmin):
    list_display = ("batch", "item", "institution", "year", "period_start", "period_end", "agreed_qty")
    list_filter = ("batch", "year")
    search_fields = ("institution__code", "institution__name", "item__item_code")
    list_select_related = ("batch", "item", "institution")
    raw_id_fields = ("institution", "product")
    exclude = ("extra",)
