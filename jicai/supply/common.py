"""What every supply action shares: the permission check, the Chinese workflow error, the audit row.

Copied in spirit from ``jicai.hospital.common`` (the supply app sits below the hospital workspace and
may not import it).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from jicai.core import audit
from jicai.core.tenancy import Scope, ScopeError


class WorkflowError(ValidationError):
    """A step the register does not allow; the message is Chinese for users, English in ``message_en``."""

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
    """One audit row for a supply write; call inside the write's transaction."""
    audit.record(
        acting,
        [audit.Change(action, obj._meta.label, obj.pk, str(obj)[:255], old, new, context or {})],
    )


def changed(old: dict[str, Any], new: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the fields whose value differs, as (old, new)."""
    keys = [k for k in new if old.get(k) != new[k]]
    return {k: old.get(k) for k in keys}, {k: new[k] for k in keys}
