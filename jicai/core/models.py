"""Audit trail (R-L5): append-only, hash-chained record of every write."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditEntry(models.Model):
    """One write: who, when, what, old and new values, chained to the entry before it.

    Rows are never updated or deleted (database triggers refuse it, and ``save`` refuses
    to overwrite); ``hash`` covers the row's content and ``prev_hash`` so that editing or
    removing any entry breaks the chain that ``jicai audit verify`` checks.
    """

    seq = models.BigIntegerField(_("sequence"), primary_key=True)
    at = models.DateTimeField(_("time"), db_index=True)
    actor_id = models.BigIntegerField(_("user id"), null=True, blank=True)
    actor_name = models.CharField(_("user"), max_length=150)
    scope = models.CharField(_("scope"), max_length=80)
    action = models.CharField(_("action"), max_length=40)
    model = models.CharField(_("object type"), max_length=100, db_index=True)
    object_pk = models.CharField(_("object id"), max_length=64, blank=True)
    object_key = models.CharField(_("natural key"), max_length=255, blank=True, db_index=True)
    old = models.JSONField(_("old values"), null=True, blank=True)
    new = models.JSONField(_("new values"), null=True, blank=True)
    context = models.JSONField(_("context"), default=dict, blank=True)
    prev_hash = models.CharField(_("previous hash"), max_length=64)
    hash = models.CharField(_("hash"), max_length=64, unique=True)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit trail")
        ordering = ["-seq"]

    def __str__(self) -> str:
        return f"#{self.seq} {self.actor_name} {self.action} {self.model} {self.object_key}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise PermissionError("audit entries are append-only")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError("audit entries are append-only")


class AuditHead(models.Model):
    """Singleton holding the chain's tip; locking it serialises appends across processes."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)

    class Meta:
        verbose_name = _("audit chain head")

    def __str__(self) -> str:
        return f"#{self.last_seq} {self.last_hash[:12]}"
