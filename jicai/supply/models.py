"""Supply assurance registers (R-I1–I4): incidents with their proof files, the supplier credit file
(events and sanctions) and manufacturers' supply reports.

Every row carries the ``region_code`` it belongs to (an institution's own region for its rows, the
bureau's region for region-wide ones), so the tenant filter needs no join:

* a bureau reads and writes rows inside its region, and reads the region-wide rows of the regions
  above it (a province-wide interruption concerns the city bureau too);
* a hospital reads and writes its own institution's incidents and credit events and reads the
  region-wide incidents, sanctions and supply reports of its region and the regions above.

Writes go through ``jicai.supply.actions`` (one transaction, one audit row each); the state machine of
an incident (reported → confirmed → closed, or rejected) lives there.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from jicai.core.tenancy import Action, Level, Scope, ScopedModel
from jicai.organizations.models import REGION_CODE
from jicai.supply import permissions as perms


def _institution_rows(scope: Scope, path: str) -> Q:
    prefix = f"{path}__" if path else ""
    if scope.institution_id is None:
        return Q(pk__in=[])
    return Q(**{f"{prefix}institution_id": scope.institution_id})


def territory_q(scope: Scope, action: Action, *, path: str = "", hospital_rows: bool = True) -> Q | None:
    """Rows of a supply register visible (READ) or changeable (WRITE) in ``scope``.

    ``path`` leads to the row that carries ``region_code`` and ``institution`` ("" for the model itself,
    "incident" for a proof file). ``hospital_rows``: the register has rows of single institutions that
    their hospital owns (incidents, credit events); otherwise hospitals only read their regions' rows.
    """
    if scope.is_system:
        return None
    prefix = f"{path}__" if path else ""
    region = f"{prefix}region_code"
    if scope.level is Level.REGION:
        own = Q(**{f"{region}__startswith": scope.region_prefix})
        if action is Action.WRITE:
            return own
        above = Q(**{f"{region}__in": scope.covering_regions()})
        if hospital_rows:
            above &= Q(**{f"{prefix}institution__isnull": True})
        return own | above
    if action is Action.WRITE:
        if scope.level is Level.INSTITUTION and hospital_rows:
            return _institution_rows(scope, path)
        return Q(pk__in=[])
    regional = Q(**{f"{region}__in": scope.covering_regions()})
    if not hospital_rows:
        return regional
    return _institution_rows(scope, path) | (regional & Q(**{f"{prefix}institution__isnull": True}))


def _user_fk(label: Any) -> Any:
    return models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=label
    )


def _qty(label: Any, **kw: Any) -> Any:
    return models.DecimalField(label, max_digits=16, decimal_places=4, **kw)


# --------------------------------------------------------------------------------------------------
# Supply incidents (R-I1, R-I2)


class IncidentKind(models.TextChoices):
    SHORTAGE = "shortage", _("Shortage")
    INTERRUPTION = "interruption", _("Supply interruption")


class IncidentStatus(models.TextChoices):
    REPORTED = "reported", pgettext_lazy("incident status", "Reported")
    CONFIRMED = "confirmed", pgettext_lazy("incident status", "Confirmed")
    CLOSED = "closed", pgettext_lazy("incident status", "Closed")
    REJECTED = "rejected", pgettext_lazy("incident status", "Rejected")


class SupplyIncident(ScopedModel):
    """A shortage or interruption of a selected product for one institution or a whole region."""

    resource: ClassVar[str] = perms.SUPPLY_INCIDENT

    batch = models.ForeignKey("programme.Batch", on_delete=models.PROTECT, related_name="+", verbose_name=_("batch"))
    item = models.ForeignKey("programme.Item", on_delete=models.PROTECT, related_name="+", verbose_name=_("item"))
    selected = models.ForeignKey(
        "programme.SelectedProduct",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("selected product"),
    )
    company = models.ForeignKey(
        "organizations.Company",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("supplier"),
    )
    institution = models.ForeignKey(
        "organizations.Institution",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("institution"),
        help_text=_("Empty for a region-wide incident."),
    )
    region_code = models.CharField(_("region code"), max_length=6, db_index=True, validators=[REGION_CODE])
    kind = models.CharField(_("kind"), max_length=16, choices=IncidentKind.choices)
    start_on = models.DateField(_("starting date"))
    end_on = models.DateField(_("ending date"), null=True, blank=True, help_text=_("Empty while it lasts."))
    cause = models.TextField(_("cause"))
    status = models.CharField(
        _("status"), max_length=16, choices=IncidentStatus.choices, default=IncidentStatus.REPORTED, db_index=True
    )
    decision_note = models.TextField(_("decision note"), blank=True)
    malicious = models.BooleanField(_("malicious interruption"), default=False, db_index=True)
    malicious_reason = models.TextField(_("why it is malicious"), blank=True)
    malicious_flagged_by = _user_fk(_("flagged by"))
    malicious_flagged_at = models.DateTimeField(_("flagged at"), null=True, blank=True)
    reported_by = _user_fk(_("reported by"))
    reported_at = models.DateTimeField(_("reported at"), auto_now_add=True)
    confirmed_by = _user_fk(_("confirmed by"))
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    closed_by = _user_fk(_("closed by"))
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    rejected_by = _user_fk(_("rejected by"))
    rejected_at = models.DateTimeField(_("rejected at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta(ScopedModel.Meta):
        verbose_name = _("supply incident")
        verbose_name_plural = _("supply incidents")
        ordering = ["-start_on", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_on__isnull=True) | Q(end_on__gte=models.F("start_on")), name="incident_period_order"
            ),
            models.UniqueConstraint(
                fields=["batch", "item", "institution", "kind", "start_on"],
                condition=Q(institution__isnull=False),
                name="incident_natural_key",
            ),
            models.UniqueConstraint(
                fields=["batch", "item", "region_code", "kind", "start_on"],
                condition=Q(institution__isnull=True),
                name="regional_incident_natural_key",
            ),
        ]

    def __str__(self) -> str:
        where = self.institution_id or self.region_code
        return f"{self.kind} {self.batch_id}/{self.item_id} @ {where} from {self.start_on}"

    @classmethod
    def scope_filter(cls, scope: Scope, action: Action) -> Q | None:
        return territory_q(scope, action)

    @property
    def is_open(self) -> bool:
        return self.status in (IncidentStatus.REPORTED, IncidentStatus.CONFIRMED) and self.end_on is None

    @property
    def region_wide(self) -> bool:
        return self.institution_id is None


class IncidentProof(ScopedModel):
    """A file the supplier gave as proof of the interruption (断供证明), stored under JICAI_HOME."""

    resource: ClassVar[str] = perms.SUPPLY_INCIDENT

    incident = models.ForeignKey(
        SupplyIncident, on_delete=models.PROTECT, related_name="proofs", verbose_name=_("incident")
    )
    path = models.CharField(_("stored file"), max_length=300)
    original_name = models.CharField(_("file name"), max_length=200)
    size = models.PositiveBigIntegerField(_("size (bytes)"))
    content_type = models.CharField(_("content type"), max_length=60)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    uploaded_by = _user_fk(_("uploaded by"))
    uploaded_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)

    class Meta(ScopedModel.Meta):
        verbose_name = _("interruption proof")
        verbose_name_plural = _("interruption proofs")
        ordering = ["incident", "uploaded_at", "pk"]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.incident_id})"

    @classmethod
    def scope_filter(cls, scope: Scope, action: Action) -> Q | None:
        return territory_q(scope, action, path="incident")


# --------------------------------------------------------------------------------------------------
# Supplier credit file (R-I3)


class CreditKind(models.TextChoices):
    LATE_DELIVERY = "late_delivery", _("Late delivery")
    SHORTAGE = "shortage", _("Shortage")
    NEAR_EXPIRY = "near_expiry", _("Near-expiry delivery")
    UNSUITABLE_PACK = "unsuitable_pack", _("Unsuitable pack")
    QUALITY_PROBLEM = "quality_problem", _("Quality problem")
    MALICIOUS_INTERRUPTION = "malicious_interruption", _("Malicious interruption")


class Severity(models.TextChoices):
    MINOR = "minor", _("Minor")
    MAJOR = "major", _("Major")
    SEVERE = "severe", _("Severe")


class CreditSource(models.TextChoices):
    MANUAL = "manual", _("Entered")
    DERIVED = "derived", _("Derived from purchases")
    INCIDENT = "incident", _("From a confirmed incident")


class CreditEvent(ScopedModel):
    """One entry of a company's credit file (企业诚信档案)."""

    resource: ClassVar[str] = perms.CREDIT

    company = models.ForeignKey(
        "organizations.Company", on_delete=models.PROTECT, related_name="+", verbose_name=_("company")
    )
    kind = models.CharField(_("kind"), max_length=24, choices=CreditKind.choices)
    occurred_on = models.DateField(_("date"), db_index=True)
    institution = models.ForeignKey(
        "organizations.Institution",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("institution"),
    )
    region_code = models.CharField(_("region code"), max_length=6, db_index=True, validators=[REGION_CODE])
    product = models.ForeignKey(
        "catalog.Product", on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("product")
    )
    description = models.TextField(_("description"), blank=True)
    severity = models.CharField(_("severity"), max_length=8, choices=Severity.choices, default=Severity.MINOR)
    source = models.CharField(
        _("source"), max_length=8, choices=CreditSource.choices, default=CreditSource.MANUAL, db_index=True
    )
    period = models.CharField(_("derived for month"), max_length=7, blank=True, help_text=_("YYYY-MM"))
    metrics = models.JSONField(_("figures"), default=dict, blank=True)
    incident = models.OneToOneField(
        SupplyIncident,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="credit_event",
        verbose_name=_("incident"),
    )
    created_by = _user_fk(_("entered by"))
    created_at = models.DateTimeField(_("entered at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta(ScopedModel.Meta):
        verbose_name = _("credit event")
        verbose_name_plural = _("credit events")
        ordering = ["-occurred_on", "-pk"]
        indexes = [models.Index(fields=["company", "occurred_on"], name="credit_company_date")]

    def __str__(self) -> str:
        return f"{self.company_id} {self.kind} {self.occurred_on}"

    @classmethod
    def scope_filter(cls, scope: Scope, action: Action) -> Q | None:
        # A bureau's rows are its region's; a hospital's its own institution's (read and write alike).
        if scope.is_system:
            return None
        if scope.level is Level.REGION:
            return Q(region_code__startswith=scope.region_prefix)
        if scope.level is Level.INSTITUTION:
            return _institution_rows(scope, "")
        return Q(pk__in=[])


class SanctionKind(models.TextChoices):
    WARNING = "warning", _("Warning")
    COMPENSATION = "compensation", _("Compensation")
    DISCIPLINE = "discipline", _("Discipline")
    EXIT = "exit", _("Exit")
    BACKUP_SUPPLIER = "backup_supplier", _("Backup supplier")
    EMERGENCY_SUPPLY = "emergency_supply", _("Emergency supply")


class Sanction(ScopedModel):
    """A measure a bureau took against a supplier (JL 三(八), CQ 二(六): 赔偿、惩戒、退出、备选、应急保障)."""

    resource: ClassVar[str] = perms.SANCTION

    company = models.ForeignKey(
        "organizations.Company", on_delete=models.PROTECT, related_name="+", verbose_name=_("company")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=SanctionKind.choices)
    decided_on = models.DateField(_("decision date"))
    decided_by = _user_fk(_("decided by"))
    region_code = models.CharField(_("region code"), max_length=6, db_index=True, validators=[REGION_CODE])
    batch = models.ForeignKey(
        "programme.Batch", on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("batch")
    )
    item = models.ForeignKey(
        "programme.Item", on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("item")
    )
    backup_company = models.ForeignKey(
        "organizations.Company",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("backup or emergency supplier"),
    )
    amount = models.DecimalField(_("compensation (yuan)"), max_digits=14, decimal_places=2, null=True, blank=True)
    note = models.TextField(_("remarks"), blank=True)
    created_at = models.DateTimeField(_("entered at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta(ScopedModel.Meta):
        verbose_name = _("sanction")
        verbose_name_plural = _("sanctions")
        ordering = ["-decided_on", "-pk"]

    def __str__(self) -> str:
        return f"{self.company_id} {self.kind} {self.decided_on}"

    @classmethod
    def scope_filter(cls, scope: Scope, action: Action) -> Q | None:
        return territory_q(scope, action, hospital_rows=False)


# --------------------------------------------------------------------------------------------------
# Manufacturers' supply reports (R-I4)


class DemandSource(models.TextChoices):
    ENTERED = "entered", _("Entered")
    AGREEMENTS = "agreements", _("Agreed volumes ÷ 12")
    UNKNOWN = "unknown", _("Unknown")


class SupplyReport(ScopedModel):
    """A manufacturer's capacity, stock and production status for one item (or product) on a date."""

    resource: ClassVar[str] = perms.SUPPLY_REPORT

    company = models.ForeignKey(
        "organizations.Company", on_delete=models.PROTECT, related_name="+", verbose_name=_("manufacturer")
    )
    batch = models.ForeignKey("programme.Batch", on_delete=models.PROTECT, related_name="+", verbose_name=_("batch"))
    item = models.ForeignKey("programme.Item", on_delete=models.PROTECT, related_name="+", verbose_name=_("item"))
    product = models.ForeignKey(
        "catalog.Product", on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("product")
    )
    region_code = models.CharField(_("region code"), max_length=6, db_index=True, validators=[REGION_CODE])
    report_date = models.DateField(_("report date"), db_index=True)
    capacity_per_month = _qty(_("capacity per month"), null=True, blank=True)
    stock_on_hand = _qty(_("stock on hand"))
    monthly_demand_entered = _qty(_("expected monthly demand (entered)"), null=True, blank=True)
    monthly_demand = _qty(_("expected monthly demand"), null=True, blank=True)
    demand_source = models.CharField(
        _("demand from"), max_length=12, choices=DemandSource.choices, default=DemandSource.UNKNOWN
    )
    stock_cover = models.DecimalField(
        _("stock cover (months)"), max_digits=10, decimal_places=2, null=True, blank=True, db_index=True
    )
    production_stopped = models.BooleanField(_("production stopped"), default=False)
    stop_reason = models.TextField(_("reason for the stop"), blank=True)
    expected_restart = models.DateField(_("expected restart"), null=True, blank=True)
    note = models.TextField(_("remarks"), blank=True)
    created_by = _user_fk(_("entered by"))
    created_at = models.DateTimeField(_("entered at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta(ScopedModel.Meta):
        verbose_name = _("supply report")
        verbose_name_plural = _("supply reports")
        ordering = ["-report_date", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "item", "product", "region_code", "report_date"],
                condition=Q(product__isnull=False),
                name="supply_report_product_key",
            ),
            models.UniqueConstraint(
                fields=["company", "item", "region_code", "report_date"],
                condition=Q(product__isnull=True),
                name="supply_report_item_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.company_id} {self.item_id} {self.report_date}"

    @classmethod
    def scope_filter(cls, scope: Scope, action: Action) -> Q | None:
        return territory_q(scope, action, hospital_rows=False)
