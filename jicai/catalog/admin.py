from django.contrib import admin

from jicai.catalog.models import PriceList, PriceListEntry, Product
from jicai.core.admin_base import AuditedAdmin


@admin.register(Product)
class ProductAdmin(AuditedAdmin):
    list_display = (
        "code",
        "generic_name",
        "dosage_form",
        "pack",
        "pack_size",
        "min_unit",
        "manufacturer",
        "listed_price",
        "ce_passed",
    )
    list_filter = ("ce_passed", "is_originator", "is_essential", "antimicrobial_class", "dosage_form")
    search_fields = ("code", "generic_name", "manufacturer", "approval_number")
    exclude = ("extra",)


@admin.register(PriceList)
class PriceListAdmin(AuditedAdmin):
    list_display = ("code", "name")


@admin.register(PriceListEntry)
class PriceListEntryAdmin(AuditedAdmin):
    list_display = ("price_list", "generic_name", "dosage_form", "pack", "company", "price")
    list_filter = ("price_list",)
    search_fields = ("generic_name", "company")
    list_select_related = ("price_list",)
    exclude = ("extra",)
