"""VBP rounds as they apply in a region: batches, items, selected products, agreements."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from jicai.core.tenancy import Action, Scope, ScopedModel, institution_q, region_rule_q
from jicai.organizations.models import REGION_CODE


class BatchLevel(models.TextChoices):
    NATIONAL = "national", _("National")
    ALLIANCE = "alliance", _("Inter-provincial alliance")
    PROVINCIAL = "provincial", _("Provincial")
    MUNICIPAL = "municipal", _("Municipal")


class Batch(ScopedModel):
    """A procurement round (R-A2) as it applies in one region."""

    resource: ClassVar[str] = "batch"

    code = models.CharField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=200)
    level = models.CharField(_("level"), max_length=16, choices=BatchLevel.choices)
    policy_profile = models.CharField(_("policy profile"), max_length=60)
    region_code = models.CharField(_("region code"), max_length=6, db_index=True, validators=[REGION_CODE])
    start_date = models.DateField(_("start date"))
    extra = models.JSONField(_("other columns"), default=dict, blank=True)

    class Meta(ScopedModel.Meta):
        verbose_name = _("batch")
        verbose_name_plural = _("batches")
        ordering = ["-start_date", "code"]

    def __str__(self) -> str:
        return f"{self.name}（{self.code}）"

    @classmethod
    def scope_filter(cls, scope: Scope, action: Action) -> Q | None:
        return region_rule_q(scope, action)


class BatchChild(ScopedModel):
    """Rows that belong to a batch share its visibility."""

    class Meta(ScopedModel.Meta):
        abstract = True

    @classmethod
    def scope_filter(cls, scope: Scope, action: Action) -> Q | None:
        return region_rule_q(scope, action, "batch")


class Item(BatchChild):
    """The unit volumes are agreed in (品种) within a batch."""

    resource: ClassVar[str] = "item"

    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="items", verbose_name=_("batch"))
    item_code = models.CharField(_("item code"), max_length=40)
    generic_name = models.CharField(_("generic name"), max_length=200)
    dosage_form_group = models.CharField(_("dosage form group"), max_length=60, blank=True)
    unit_label = models.CharField(_("unit"), max_length=10)
    winners = models.PositiveSmallIntegerField(_("number of winners"), validators=[MinValueValidator(1)])
    extra = models.JSONField(_("other columns"), default=dict, blank=True)

    class Meta(ScopedModel.Meta):
        verbose_name = _("item")
        verbose_name_plural = _("items")
        ordering = ["batch__code", "item_code"]
        constraints = [models.UniqueConstraint(fields=["batch", "item_code"], name="item_natural_key")]

    def __str__(self) -> str:
        return f"{self.generic_name}（{self.item_code}）"


class SelectedProduct(BatchChild):
    """A winning product of an item at its winning price (中选结果)."""

    resource: ClassVar[str] = "selected"

    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="selected", verbose_name=_("batch"))
    product = models.ForeignKey(
        "catalog.Product", on_delete=models.PROTECT, related_name="+", verbose_name=_("product")
    )
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="selected", verbose_name=_("item"))
    winning_price = models.DecimalField(_("winning price (per pack)"), max_digits=14, decimal_places=2)
    company = models.ForeignKey(
        "organizations.Company", on_delete=models.PROTECT, related_name="+", verbose_name=_("winning company")
    )
    conversion = models.DecimalField(_("conversion"), max_digits=12, decimal_places=4, default=Decimal("1"))
    extra = models.JSONField(_("other columns"), default=dict, blank=True)

    class Meta(ScopedModel.Meta):
        verbose_name = _("selected product")
        verbose_name_plural = _("selected products")
        ordering = ["batch__code", "item__item_code", "product__code"]
        constraints = [models.UniqueConstraint(fields=["batch", "product"], name="selected_natural_key")]

    def __str__(self) -> str:
        return f"{self.product_id} @ {self.winning_price}"


class NonSelectedKind(models.TextChoices):
    SAME_GENERIC = "same_generic", _("Same generic, not selected")
    SUBSTITUTE = "substitute", _("Substitutable drug")


class NonSelectedProduct(BatchChild):
    """Non-selected products of the generic and substitutes to watch (R-A4, R-D2)."""

    resource: ClassVar[str] = "non_selected"

    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="non_selected", verbose_name=_("batch"))
    product = models.ForeignKey(
        "catalog.Product", on_delete=models.PROTECT, related_name="+", verbose_name=_("product")
    )
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="non_selected", verbose_name=_("item"))
    kind = models.CharField(_("kind"), max_length=16, choices=NonSelectedKind.choices)
    conversion = models.DecimalField(_("conversion"), max_digits=12, decimal_places=4, default=Decimal("1"))
    extra = models.JSONField(_("other columns"), default=dict, blank=True)

    class Meta(ScopedModel.Meta):
        verbose_name = _("non-selected product")
        verbose_name_plural = _("non-selected products")
        ordering = ["batch__code", "item__item_code", "product__code"]
        constraints = [models.UniqueConstraint(fields=["batch", "product"], name="non_selected_natural_key")]

    def __str__(self) -> str:
        return f"{self.product_id} ({self.kind})"


class Agreement(ScopedModel):
    """Agreed volume of one item for one institution in one agreement year (约定采购量)."""

    resource: ClassVar[str] = "agreement"

    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="agreements", verbose_name=_("batch"))
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="agreements", verbose_name=_("item"))
    institution = models.ForeignKey(
        "organizations.Institution", on_delete=models.PROTECT, related_name="agreements", verbose_name=_("institution")
    )
    year = models.PositiveSmallIntegerField(_("agreement year"), validators=[MinValueValidator(1)])
    period_start = models.DateField(_("period start"))
    period_end = models.DateField(_("period end"))
    agreed_qty = models.DecimalField(_("agreed quantity"), max_digits=16, decimal_places=4)
    base_qty = models.DecimalField(_("volume base"), max_digits=16, decimal_places=4, null=True, blank=True)
    agreed_ratio = models.DecimalField(_("agreed ratio"), max_digits=6, decimal_places=4, null=True, blank=True)
    product = models.ForeignKey(
        "catalog.Product",
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("assigned product"),
    )
    extra = models.JSONField(_("other columns"), default=dict, blank=True)

    class Meta(ScopedModel.Meta):
        verbose_name = _("agreement")
        verbose_name_plural = _("agreements")
        ordering = ["batch__code", "item__item_code", "institution__code", "year"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "item", "institution", "year"], name="agreement_natural_key"),
            models.CheckConstraint(
                condition=Q(period_end__gte=models.F("period_start")), name="agreement_period_order"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.batch_id}/{self.item_id}/{self.institution_id}/{self.year}"

    @classmethod
    def scope_filter(cls, scope: Scope, action: Action) -> Q | None:
        # A city bureau splits a provincial or national round's volume across its own
        # institutions (R-C5), so writing depends on the institution, not the batch's region.
        return institution_q(scope, "institution")
