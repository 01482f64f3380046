"""Products and reference price lists (R-A2, R-A3)."""

from __future__ import annotations

from typing import ClassVar

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from jicai.core.tenancy import Action, Scope, ScopedModel


class AntimicrobialClass(models.TextChoices):
    NONE = "", _("Not an antimicrobial")
    UNRESTRICTED = "unrestricted", _("Unrestricted")
    RESTRICTED = "restricted", _("Restricted")
    SPECIAL = "special", _("Special use")


class Product(ScopedModel):
    """A drug at one strength and pack, keyed by its NHSA code (or a hospital's own code)."""

    resource: ClassVar[str] = "product"

    code = models.CharField(_("code"), max_length=40, unique=True)
    generic_name = models.CharField(_("generic name"), max_length=200, db_index=True)
    dosage_form = models.CharField(_("dosage form"), max_length=60, blank=True)
    strength = models.CharField(_("strength"), max_length=200, blank=True)
    pack = models.CharField(_("pack"), max_length=200, blank=True)
    pack_size = models.PositiveIntegerField(_("pack size"), null=True, blank=True)
    min_unit = models.CharField(_("minimum unit"), max_length=10, blank=True)
    manufacturer = models.CharField(_("manufacturer"), max_length=200, blank=True)
    approval_number = models.CharField(_("approval number"), max_length=100, blank=True)
    ce_passed = models.BooleanField(_("consistency evaluation passed"), default=False)
    is_originator = models.BooleanField(_("originator"), default=False)
    is_reference = models.BooleanField(_("reference listed drug"), default=False)
    is_essential = models.BooleanField(_("essential medicine"), default=False)
    antimicrobial_class = models.CharField(
        _("antimicrobial class"), max_length=16, choices=AntimicrobialClass.choices, blank=True, default=""
    )
    listed_price = models.DecimalField(
        _("listed price (per pack)"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    extra = models.JSONField(_("other columns"), default=dict, blank=True)

    class Meta(ScopedModel.Meta):
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.generic_name} {self.pack}（{self.code}）"

    @classmethod
    def scope_filter(cls, scope: Scope, action: Action) -> Q | None:
        return None


class PriceList(ScopedModel):
    """A published list of prices (e.g. a province's VBP winning prices) kept for reference."""

    resource: ClassVar[str] = "price_list"

    code = models.CharField(_("code"), max_length=60, unique=True)
    name = models.CharField(_("name"), max_length=200, blank=True)

    class Meta(ScopedModel.Meta):
        verbose_name = _("price list")
        verbose_name_plural = _("price lists")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name or self.code

    @classmethod
    def scope_filter(cls, scope: Scope, action: Action) -> Q | None:
        return None


class PriceListEntry(ScopedModel):
    resource: ClassVar[str] = "price_list"

    price_list = models.ForeignKey(
        PriceList, on_delete=models.CASCADE, related_name="entries", verbose_name=_("price list")
    )
    generic_name = models.CharField(_("generic name"), max_length=200, db_index=True)
    dosage_form = models.CharField(_("dosage form"), max_length=60, blank=True)
    strength = models.CharField(_("strength"), max_length=200, blank=True)
    pack = models.CharField(_("pack"), max_length=200, blank=True)
    pack_size = models.PositiveIntegerField(_("pack size"), null=True, blank=True)
    min_unit = models.CharField(_("minimum unit"), max_length=10, blank=True)
    company = models.CharField(_("company"), max_length=200, blank=True)
    price = models.DecimalField(_("price (per pack)"), max_digits=14, decimal_places=2)
    extra = models.JSONField(_("other columns"), default=dict, blank=True)

    class Meta(ScopedModel.Meta):
        verbose_name = _("price list entry")
        verbose_name_plural = _("price list entries")
        ordering = ["price_list__code", "generic_name", "dosage_form", "strength", "pack", "company", "price"]
        constraints = [
            models.UniqueConstraint(
                fields=["price_list", "generic_name", "dosage_form", "strength", "pack", "company", "price"],
                name="price_entry_natural_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.generic_name} {self.pack} {self.price}"

    @classmethod
    def scope_filter(cls, scope: Scope, action: Action) -> Q | None:
        return None
