"""A record of every import: who loaded which file, what it changed, what it rejected."""

from __future__ import annotations

from typing import ClassVar

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from jicai.core.tenancy import Action, Level, Scope, ScopedModel


class ImportStatus(models.TextChoices):
    APPLIED = "applied", _("Applied")
    PARTIAL = "partial", _("Applied (valid rows only)")
    REJECTED = "rejected", _("Rejected, nothing changed")
    DRY_RUN = "dry_run", _("Checked only (dry run)")


class ImportRun(ScopedModel):
    resource: ClassVar[str] = "import_run"

    dataset = models.CharField(_("dataset"), max_length=40)
    filename = models.CharField(_("file name"), max_length=255)
    file_sha256 = models.CharField(_("file checksum"), max_length=64)
    actor_id = models.BigIntegerField(_("user id"), null=True, blank=True)
    actor_name = models.CharField(_("user"), max_length=150)
    scope_label = models.CharField(_("scope"), max_length=80)
    region_code = models.CharField(_("region code"), max_length=6, blank=True)
    institution_id = models.BigIntegerField(_("institution id"), null=True, blank=True)
    started_at = models.DateTimeField(_("started"), auto_now_add=True)
    status = models.CharField(_("status"), max_length=16, choices=ImportStatus.choices)
    mapping = models.CharField(_("header mapping"), max_length=60, blank=True)
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    created = models.PositiveIntegerField(_("created"), default=0)
    updated = models.PositiveIntegerField(_("updated"), default=0)
    unchanged = models.PositiveIntegerField(_("unchanged"), default=0)
    rejected = models.PositiveIntegerField(_("rejected"), default=0)
    warnings = models.PositiveIntegerField(_("warnings"), default=0)
    report = models.CharField(_("error report"), max_length=255, blank=True)

    class Meta(ScopedModel.Meta):
        verbose_name = _("import")
        verbose_name_plural = _("imports")
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.dataset} {self.filename} ({self.status})"

    @classmethod
    def scope_filter(cls, scope: Scope, action: Action) -> Q | None:
        if scope.is_system:
            return None
        if scope.level is Level.REGION:
            return Q(region_code__startswith=scope.region_prefix)
        return Q(institution_id=scope.institution_id)
