"""Regions, institutions, departments and companies (R-A1)."""

from __future__ import annotations

from typing import ClassVar

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from jicai.core.tenancy import Action, Level, Scope, ScopedModel, institution_q

INSTITUTION_CODE = RegexValidator(r"^H\d{11}$", _("Institution code is H followed by 11 digits."))
REGION_CODE = RegexValidator(r"^\d{6}$", _("Region code is 6 digits (GB/T 2260)."))


class InstitutionKind(models.TextChoices):
    PUBLIC = "public", _("Public")
    MILITARY = "military", _("Military")
    PRIVATE = "private", _("Private (designated)")
    PRIMARY = "primary", _("Primary care")


class InstitutionLevel(models.IntegerChoices):
    TERTIARY = 3, _("Tertiary (level 3)")
    SECONDARY = 2, _("Secondary (level 2)")
    PRIMARY = 1, _("Primary (level 1)")


class Institution(ScopedModel):
    resource: ClassVar[str] = "institution"

    code = models.CharField(_("code"), max_length=12, unique=True, validators=[INSTITUTION_CODE])
    name = models.CharField(_("name"), max_length=200)
    region_code = models.CharField(_("region code"), max_length=6, db_index=True, validators=[REGION_CODE])
    kind = models.CharField(_("kind"), max_length=16, choices=InstitutionKind.choices)
    level = models.PositiveSmallIntegerField(_("level"), choices=InstitutionLevel.choices)
    participating = models.BooleanField(_("participating"), default=True)
    extra = models.JSONField(_("other columns"), default=dict, blank=True)

    class Meta(ScopedModel.Meta):
        verbose_name = _("institution")
        verbose_name_plural = _("institutions")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name}（{self.code}）"

    @classmethod
    def scope_filter(cls, scope: Scope, action: Action) -> Q | None:
        if action is Action.WRITE and scope.level in (Level.INSTITUTION, Level.DEPARTMENT):
            return Q(pk__in=[])
        return institution_q(scope)


class Department(ScopedModel):
    resource: ClassVar[str] = "department"

    institution = models.ForeignKey(
        Institution, on_delete=models.PROTECT, related_name="departments", verbose_name=_("institution")
    )
    code = models.CharField(_("code"), max_length=32)
    name = models.CharField(_("name"), max_length=100)
    extra = models.JSONField(_("other columns"), default=dict, blank=True)

    class Meta(ScopedModel.Meta):
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        ordering = ["institution__code", "code"]
        constraints = [models.UniqueConstraint(fields=["institution", "code"], name="department_natural_key")]

    def __str__(self) -> str:
        return f"{self.name}（{self.code}）"

    @classmethod
    def scope_filter(cls, scope: Scope, action: Action) -> Q | None:
        if scope.level is Level.DEPARTMENT:
            return Q(pk=scope.department_id) if action is Action.READ else Q(pk__in=[])
        return institution_q(scope, "institution")


class CompanyRole(models.TextChoices):
    MANUFACTURER = "manufacturer", _("Manufacturer")
    MAH = "mah", _("Marketing-authorisation holder")
    DISTRIBUTOR = "distributor", _("Distributor")


class Company(ScopedModel):
    """Manufacturers, MAHs and distributors: reference data shared by every tenant."""

    resource: ClassVar[str] = "company"

    name = models.CharField(_("name"), max_length=200, unique=True)
    role = models.CharField(_("role"), max_length=16, choices=CompanyRole.choices, default=CompanyRole.MANUFACTURER)
    credit_code = models.CharField(_("unified social credit code"), max_length=18, blank=True)
    extra = models.JSONField(_("other columns"), default=dict, blank=True)

    class Meta(ScopedModel.Meta):
        verbose_name = _("company")
        verbose_name_plural = _("companies")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def scope_filter(cls, scope: Scope, action: Action) -> Q | None:
        return None
