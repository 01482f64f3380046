"""Stored results of the monthly cycle: alerts users act on, and the cycle's own runs and watermarks."""

from __future__ import annotations

from typing import ClassVar

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from jicai.core.tenancy import Action, Level, Scope, ScopedModel


class AlertKind(models.TextChoices):
    BEHIND = "behind_schedule", _("Behind schedule")
    CAP = "cap_exceeded", _("Non-selected cap exceeded")
    GROWTH = "substitute_growth", _("Substitute growth anomaly")
    OVERDUE = "overdue_payment", _("Overdue supplier payment")
    TRANCHE = "tranche_fired", _("Prepayment tranche due")


class AlertStatus(models.TextChoices):
    OPEN = "open", _("Open")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")  # a user acted on it; open again if it changes
    RESOLVED = "resolved", _("Resolved")


class Alert(ScopedModel):
    """One situation needing action; ``key`` identifies it across cycle runs (deduplication)."""

    resource: ClassVar[str] = "alert"

    key = models.CharField(_("key"), max_length=200, unique=True)
    kind = models.CharField(_("kind"), max_length=32, choices=AlertKind.choices, db_index=True)
    severity = models.CharField(_("severity"), max_length=16, default="warning")
    status = models.CharField(_("status"), max_length=16, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    institution_code = models.CharField(_("institution code"), max_length=12, db_index=True)
    region_code = models.CharField(_("region code"), max_length=6, db_index=True)
    batch_code = models.CharField(_("batch code"), max_length=40, blank=True)
    item_code = models.CharField(_("item code"), max_length=40, blank=True)
    message_zh = models.TextField(_("message (Chinese)"))
    message_en = models.TextField(_("message (English)"))
    data = models.JSONField(_("data"), default=dict, blank=True)
    digest = models.CharField(_("content digest"), max_length=32, blank=True, editable=False)
    first_seen = models.DateField(_("first seen"))
    last_seen = models.DateField(_("last seen"))
    resolved_on = models.DateField(_("resolved on"), null=True, blank=True)

    class Meta(ScopedModel.Meta):
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["status", "-last_seen", "kind", "institution_code"]

    def __str__(self) -> str:
        return f"{self.kind} {self.institution_code} {self.item_code}"

    @classmethod
    def scope_filter(cls, scope: Scope, action: Action) -> Q | None:
        if scope.is_system:
            return None
        if scope.level is Level.REGION:
            return Q(region_code__startswith=scope.region_prefix)
        return Q(institution_code=scope.institution_code)


class CycleRun(models.Model):
    """One run of ``jicai cycle``; the last finished run's watermarks say what is already rolled up."""

    as_of = models.DateField(_("as of"))
    started_at = models.DateTimeField(_("started"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=16, default="running")
    watermarks = models.JSONField(_("fact versions processed"), default=dict)
    stats = models.JSONField(_("statistics"), default=dict)

    class Meta:
        verbose_name = _("cycle run")
        verbose_name_plural = _("cycle runs")
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"cycle {self.as_of} {self.status}"
