"""What every quality action shares: permission checks, the institution acted for, audit rows, and the
territory rules of records owned by an institution or by a region.

Copied in spirit from ``jicai.hospital.common`` (the hospital and quality apps are independent
siblings in the import layers, so neither may import the other).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from jicai.core import audit
from jicai.core.tenancy import Action, Level, Scope, ScopeError, institution_q, region_rule_q
from jicai.organizations.models import Institution

# Resource names (accounts.permissions.Resource will carry them once merged; see permissions.GRANTS).
ADVERSE_REACTION = "adverse_reaction"
QUALITY_PROBLEM = "quality_problem"
EVALUATION = "evaluation"


class WorkflowError(ValidationError):
    """A step a workflow does not allow; the message is Chinese for users, English in ``message_en``."""

    def __init__(self, message_zh: str, message_en: str, code: str = "workflow", field: str = "") -> None:
        super().__init__(message_zh, code=code)
        self.message_zh = message_zh
        self.message_en = message_en
        self.field = field


def require(acting: Scope, resource: str, verb: str) -> None:
    """Fail unless ``acting`` may ``verb`` the ``resource`` (the system scope may do everything)."""
    if acting.is_system:
        return
    if not acting.can(resource, verb):
        raise ScopeError(f"{acting.label} may not {verb} {resource}")


def elevated(acting: Scope, resource: str) -> Scope:
    """``acting`` with ``write`` on ``resource`` added, for a step another verb authorises.

    Leadership approves and bureaus decide (``approve``) without holding ``write``; the row is still
    saved through the tenant guard of ``acting``'s own territory. Call only after ``require``.
    """
    if acting.is_system:
        return acting
    grant = f"{acting.level.value}:{resource}:write"
    return dataclasses.replace(acting, permissions=acting.permissions | {grant})


def acting_institution(acting: Scope, code: str | None = None) -> Institution:
    """The institution a hospital user acts for (their own), or the named one for the operator.

    Run inside ``use_scope(acting)``: the lookup is scoped, so a code outside the territory is unknown.
    """
    if acting.level in (Level.INSTITUTION, Level.DEPARTMENT):
        if code and code != acting.institution_code:
            raise ScopeError(f"{code} is not {acting.label}")
        code = acting.institution_code
    if not code:
        raise WorkflowError("请指定医疗机构", "an institution code is needed", field="institution_code")
    found: Institution | None = Institution.objects.for_scope(acting).filter(code=code).first()
    if found is None:
        raise WorkflowError(
            f"未知的医疗机构编码，或不在您的权限范围内：{code}",
            f"unknown institution {code} (or outside {acting.label})",
            code="reference.unknown",
            field="institution_code",
        )
    return found


def fields_of(obj: models.Model, names: Iterable[str]) -> dict[str, Any]:
    """The audited fields of ``obj`` (foreign keys by id)."""
    out: dict[str, Any] = {}
    for name in names:
        field = obj._meta.get_field(name)
        out[name] = getattr(obj, field.attname)  # type: ignore[union-attr]
    return out


def audited(
    acting: Scope,
    action: str,
    obj: models.Model,
    *,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
) -> None:
    """One audit row for a quality write; call inside the write's transaction."""
    audit.record(
        acting,
        [audit.Change(action, obj._meta.label, obj.pk, str(obj)[:255], old, new, context or {})],
    )


def institution_rows_q(scope: Scope, action: Action, *, department: str | None = None) -> Q | None:
    """Rows of institutions in ``scope``. A department head reads their institution's rows — only their
    department's when ``department`` (the lookup to it) is given — and writes those rows only when
    ``department`` is given; bureaus read and never write."""
    if scope.is_system:
        return None
    if scope.level is Level.DEPARTMENT:
        if scope.institution_id is None:
            return Q(pk__in=[])
        condition = Q(institution_id=scope.institution_id)
        if department is not None:
            return condition & Q(**{f"{department}_id": scope.department_id})
        return condition if action is Action.READ else Q(pk__in=[])
    if scope.level is Level.REGION and action is Action.WRITE:
        return Q(pk__in=[])
    return institution_q(scope, "institution")


def owned_q(scope: Scope, action: Action) -> Q | None:
    """Rows owned by an institution (``institution`` set) or by a region (``institution`` null, with
    ``region_code``): cluster signals, suspensions, evaluations and their schemes.

    An institution's rows: read by it (its department heads too) and by bureaus above it, written by
    it. A region's rows: read like rounds (its own region, the regions above and — for a bureau —
    inside it), written by bureaus whose region contains it.
    """
    if scope.is_system:
        return None
    if scope.level is Level.DEPARTMENT:
        mine = Q(institution_id=scope.institution_id) if scope.institution_id else Q(pk__in=[])
        if action is Action.WRITE:
            return Q(pk__in=[])
    elif scope.level is Level.INSTITUTION or action is Action.READ:
        mine = institution_q(scope, "institution") or Q(pk__in=[])
    else:
        mine = Q(pk__in=[])  # a bureau does not write an institution's records
    regional = region_rule_q(scope, action) or Q(pk__in=[])
    return (Q(institution__isnull=False) & mine) | (Q(institution__isnull=True) & regional)


def province_of(region_code: str) -> str:
    """The province (GB/T 2260 first two digits + 0000) a region code lies in."""
    return region_code[:2] + "0000"
