"""Accounts: one user, one role, one territory (region, institution or department)."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from jicai.accounts.permissions import ROLE_LABELS, ROLE_LEVEL, ROLE_PERMISSIONS, RoleName
from jicai.core.tenancy import Level, Scope, region_prefix


class User(AbstractUser):
    role = models.CharField(
        _("role"),
        max_length=32,
        choices=[(r.value, ROLE_LABELS[r]) for r in RoleName],
        default=RoleName.BUREAU_VIEWER,
    )
    region_code = models.CharField(_("region code"), max_length=6, blank=True)
    institution = models.ForeignKey(
        "organizations.Institution",
        verbose_name=_("institution"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="users",
    )
    department = models.ForeignKey(
        "organizations.Department",
        verbose_name=_("department"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="users",
    )

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    @property
    def level(self) -> Level:
        return ROLE_LEVEL[RoleName(self.role)]

    def clean(self) -> None:
        super().clean()
        level = self.level
        if level is Level.REGION:
            try:
                region_prefix(self.region_code)
            except ValueError as exc:
                raise ValidationError({"region_code": _("A bureau role needs a 6-digit region code.")}) from exc
        if level in (Level.INSTITUTION, Level.DEPARTMENT) and self.institution_id is None:
            raise ValidationError({"institution": _("A hospital role needs an institution.")})
        if level is Level.DEPARTMENT:
            if self.department_id is None:
                raise ValidationError({"department": _("A department head needs a department.")})
            if self.department is not None and self.department.institution_id != self.institution_id:
                raise ValidationError({"department": _("The department belongs to another institution.")})

    def scope(self) -> Scope:
        """The tenant scope this user acts in; raises when the account is misconfigured."""
        role = RoleName(self.role)
        level = ROLE_LEVEL[role]
        common: dict[str, Any] = {
            "actor_id": self.pk,
            "actor_name": self.get_username(),
            "permissions": ROLE_PERMISSIONS[role],
        }
        if level is Level.SYSTEM:
            return Scope(level=Level.SYSTEM, actor_id=self.pk, actor_name=self.get_username())
        if level is Level.REGION:
            region_prefix(self.region_code)
            return Scope(level=level, region_code=self.region_code, **common)
        inst = self.institution
        if inst is None:
            raise ValidationError("hospital role without institution")
        extra: dict[str, Any] = {
            "institution_id": inst.pk,
            "institution_code": inst.code,
            "institution_region_code": inst.region_code,
        }
        if level is Level.DEPARTMENT:
            dept = self.department
            if dept is None or dept.institution_id != inst.pk:
                raise ValidationError("department head without a department of the institution")
            extra |= {"department_id": dept.pk, "department_code": dept.code}
        return Scope(level=level, **extra, **common)


class ApiToken(models.Model):
    """Bearer token for scripts using the API; only a hash is stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens", verbose_name=_("user"))
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=12, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked = models.BooleanField(_("revoked"), default=False)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.user} / {self.name} ({self.prefix}…)"

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode("utf-8")).hexdigest()

    @classmethod
    def issue(cls, user: User, name: str) -> tuple[ApiToken, str]:
        key = "jc_" + secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, prefix=key[:10], key_hash=cls.hash_key(key))
        return token, key
