"""What every workspace action shares: the acting scope's permission check, the institution it acts
for, and the audit row written in the same transaction as the change."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from jicai.core import audit
from jicai.core.tenancy import Level, Scope, ScopeError
from jicai.organizations.models import Institution


class WorkflowError(ValidationError):
    """A step a workflow does not allow (e.g. editing a locked report); the message is Chinese for users,
    with English in ``message_en``."""

    def __init__(self, message_zh: str, message_en: str, code: str = "workflow") -> None:
        super().__init__(message_zh, code=code)
        self.message_zh = message_zh
        self.message_en = message_en


def require(acting: Scope, resource: str, verb: str) -> None:
    """Fail unless ``acting`` may ``verb`` the ``resource`` (system scope may do everything)."""
    if acting.is_system:
        return
    if not acting.can(resource, verb):
        raise ScopeError(f"{acting.label} may not {verb} {resource}")


def acting_institution(acting: Scope, code: str | None = None) -> Institution:
    """The institution a hospital user acts for (their own), or the named one for the operator.

    Run inside ``use_scope(acting)``: the lookup is scoped, so a code outside the territory is unknown.
    """
    if acting.level in (Level.INSTITUTION, Level.DEPARTMENT):
        if code and code != acting.institution_code:
            raise ScopeError(f"{code} is not {acting.label}")
        code = acting.institution_code
    if not code:
        raise WorkflowError("请指定医疗机构", "an institution code is needed")
    found: Institution | None = Institution.objects.filter(code=code).first()
    if found is None:
        raise ScopeError(f"unknown institution {code} (or outside {acting.label})")
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
    """One audit row for a workspace write; call inside the write's transaction."""
    audit.record(
        acting,
        [audit.Change(action, obj._meta.label, obj.pk, str(obj)[:255], old, new, context or {})],
    )


def actor_id(acting: Scope) -> int | None:
    """The acting user's id for ``created_by``-style fields (None for the system)."""
    return acting.actor_id
