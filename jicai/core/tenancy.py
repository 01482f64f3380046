"""Tenant scope: the one place that restricts ORM reads and writes to a user's territory.

A :class:`Scope` says who is acting and over what: the whole system, a region (by GB/T 2260
code prefix), one institution or one department. Every model that holds tenant data uses
:class:`ScopedManager`; its querysets are filtered by the scope that is active when they are
built (``with use_scope(scope):``, set per request by the middleware and per command by the
CLI). A queryset evaluated with no active scope raises :class:`ScopeError`: forgetting the
scope fails closed instead of leaking every tenant's rows.
"""

from __future__ import annotations

import contextvars
import enum
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, cast

from django.db import models, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.constants import LOOKUP_SEP


class ScopeError(PermissionError):
    """Raised when data is touched without a scope, or outside the active one."""


class Level(enum.StrEnum):
    SYSTEM = "system"
    REGION = "region"
    INSTITUTION = "institution"
    DEPARTMENT = "department"


class Action(enum.StrEnum):
    READ = "read"
    WRITE = "write"


REGION_CODE_LENGTH = 6


def region_prefix(code: str) -> str:
    """Prefix that every code inside a GB/T 2260 region starts with (460000 → 46, 460100 → 4601)."""
    code = code.strip()
    if len(code) != REGION_CODE_LENGTH or not code.isdigit():
        raise ValueError(f"not a 6-digit region code: {code!r}")
    if code.endswith("0000"):
        return code[:2]
    if code.endswith("00"):
        return code[:4]
    return code


def region_ancestors(code: str) -> list[str]:
    """The region itself and the regions that contain it (460105 → 460105, 460100, 460000)."""
    prefix = region_prefix(code)
    out = [code]
    if len(prefix) == REGION_CODE_LENGTH:
        out.append(code[:4] + "00")
    if len(prefix) >= 4:
        out.append(code[:2] + "0000")
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class Scope:
    """Who is acting, over which territory, with which permissions (``scope:resource:action``)."""

    level: Level
    actor_id: int | None = None
    actor_name: str = ""
    region_code: str = ""
    institution_id: int | None = None
    institution_code: str = ""
    institution_region_code: str = ""
    department_id: int | None = None
    department_code: str = ""
    permissions: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def system(cls, actor_name: str = "system") -> Self:
        """Unrestricted scope for installation, migrations and operator commands."""
        return cls(level=Level.SYSTEM, actor_name=actor_name)

    @property
    def is_system(self) -> bool:
        return self.level is Level.SYSTEM

    @property
    def region_prefix(self) -> str:
        return region_prefix(self.region_code) if self.region_code else ""

    @property
    def label(self) -> str:
        if self.level is Level.SYSTEM:
            return "system"
        if self.level is Level.REGION:
            return f"region:{self.region_code}"
        if self.level is Level.INSTITUTION:
            return f"institution:{self.institution_code}"
        return f"department:{self.institution_code}/{self.department_code}"

    def can(self, resource: str, action: str) -> bool:
        """True when this scope's permissions include ``<level>:<resource>:<action>``."""
        if self.is_system:
            return True
        return f"{self.level.value}:{resource}:{action}" in self.permissions

    def require(self, resource: str, action: str) -> None:
        if not self.can(resource, action):
            raise ScopeError(f"{self.label} may not {action} {resource}")

    def covering_regions(self) -> list[str]:
        """Region codes whose rules apply to this scope's territory (itself and its parents)."""
        code = self.region_code or self.institution_region_code
        return region_ancestors(code) if code else []


_current: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("jicai_scope", default=None)


def current_scope() -> Scope | None:
    return _current.get()


def require_scope() -> Scope:
    scope = _current.get()
    if scope is None:
        raise ScopeError("no tenant scope is active; data access refused")
    return scope


@contextmanager
def use_scope(scope: Scope | None) -> Iterator[Scope | None]:
    """Make ``scope`` the active one for ORM access inside the block."""
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)


def system_scope(actor_name: str = "system") -> AbstractContextManager[Scope | None]:
    """Operator-level scope for commands, migrations and tests' set-up."""
    return use_scope(Scope.system(actor_name))


class ScopedQuerySet(models.QuerySet[Any]):
    """Queryset that refuses to run unless a tenant filter has been applied."""

    _jicai_scoped: bool = False

    def _clone(self) -> Self:
        clone = cast(Self, super()._clone())  # type: ignore[misc]
        clone._jicai_scoped = self._jicai_scoped
        if not clone._jicai_scoped and not clone.query.is_sliced:
            scope = current_scope()
            if scope is not None:
                clone._apply_scope(scope, Action.READ)
        return clone

    def _apply_scope(self, scope: Scope, action: Action) -> None:
        condition = self.model.scope_filter(scope, action)
        if condition is not None:
            self.query.add_q(condition)
        self._jicai_scoped = True

    # -- lookups across relations ------------------------------------------------------------
    # The scope filters the queried model's rows. A lookup that walks a reverse relation into
    # another tenant model (Batch → agreements) would join rows the scope does not filter, so
    # such lookups are refused outside the system scope instead of silently leaking.

    def _check_lookup(self, path: str) -> None:
        scope = current_scope()
        if scope is None or scope.is_system:
            return
        model = self.model
        for part in path.replace("-", "").split(LOOKUP_SEP):
            try:
                field = model._meta.get_field(part)
            except Exception:  # a transform or lookup name (icontains, year, …) ends the walk
                return
            related = getattr(field, "related_model", None)
            if related is None:
                return
            crosses = (field.one_to_many or field.many_to_many) and issubclass(related, ScopedModel)
            if crosses and related.scope_filter(scope, Action.READ) is not None:
                raise ScopeError(f"lookup {path!r} crosses into {related._meta.label} rows outside the scope's filter")
            model = related

    def _check_expression(self, value: Any) -> None:
        if isinstance(value, str):
            self._check_lookup(value)
        elif isinstance(value, Q):
            for child in value.children:
                if isinstance(child, tuple):
                    self._check_lookup(child[0])
                    self._check_expression(child[1])
                else:
                    self._check_expression(child)
        elif isinstance(value, F):
            self._check_lookup(value.name)
        elif hasattr(value, "get_source_expressions"):
            for source in value.get_source_expressions():
                self._check_expression(source)

    def _filter_or_exclude(self, negate: bool, args: Any, kwargs: Any) -> Self:
        for arg in args:
            self._check_expression(arg)
        for key, value in kwargs.items():
            self._check_lookup(key)
            self._check_expression(value)
        return super()._filter_or_exclude(negate, args, kwargs)  # type: ignore[misc,no-any-return]

    def annotate(self, *args: Any, **kwargs: Any) -> Self:
        for value in (*args, *kwargs.values()):
            self._check_expression(value)
        return super().annotate(*args, **kwargs)

    def order_by(self, *field_names: Any) -> Self:
        for name in field_names:
            self._check_expression(name)
        return super().order_by(*field_names)

    def values(self, *fields: Any, **expressions: Any) -> Any:
        for value in (*fields, *expressions.values()):
            self._check_expression(value)
        return super().values(*fields, **expressions)

    def values_list(self, *fields: Any, flat: bool = False, named: bool = False) -> Any:
        for value in fields:
            self._check_expression(value)
        return super().values_list(*fields, flat=flat, named=named)

    def for_scope(self, scope: Scope, action: Action = Action.READ) -> Self:
        """This queryset restricted to ``scope`` for ``action`` (write scopes can be narrower)."""
        clone = cast(Self, super()._clone())  # type: ignore[misc]
        clone._apply_scope(scope, action)
        return clone

    def _guard(self) -> Self:
        if self._jicai_scoped:
            return self
        scope = current_scope()
        if scope is None or self.query.is_sliced:
            raise ScopeError(f"unscoped query on {self.model._meta.label}; use use_scope() or for_scope()")
        return self.for_scope(scope)

    _jicai_cache_scope: Scope | None = None

    def _fetch_all(self) -> None:
        if not self._jicai_scoped:
            # A queryset built before any scope (a class attribute, say) is filtered by the scope
            # active when it is read, and its cache is only reused under that same scope.
            scope = current_scope()
            if self._result_cache is not None and scope == self._jicai_cache_scope:
                return
            guarded = self._guard()
            guarded._fetch_all()
            self._result_cache = guarded._result_cache
            self._prefetch_done = guarded._prefetch_done  # type: ignore[has-type]
            self._jicai_cache_scope = scope
            return
        super()._fetch_all()

    def count(self) -> int:
        guarded = self._guard()
        return super(ScopedQuerySet, guarded).count()

    def exists(self) -> bool:
        guarded = self._guard()
        return super(ScopedQuerySet, guarded).exists()

    def aggregate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        for value in (*args, *kwargs.values()):
            self._check_expression(value)
        guarded = self._guard()
        return super(ScopedQuerySet, guarded).aggregate(*args, **kwargs)

    def iterator(self, chunk_size: int | None = None) -> Iterator[Any]:
        guarded = self._guard()
        return super(ScopedQuerySet, guarded).iterator(chunk_size=chunk_size)

    def _write_guard(self) -> Self:
        """Bulk writes need the write permission and touch only rows of the write territory."""
        scope = require_scope()
        guarded = self._guard()
        if scope.is_system:
            return guarded
        scope.require(self.model.resource, Action.WRITE)
        condition = self.model.scope_filter(scope, Action.WRITE)
        if condition is None:
            return guarded
        if guarded.query.is_sliced:
            raise ScopeError("cannot write through a sliced queryset")
        return guarded.filter(condition)

    def update(self, **kwargs: Any) -> int:
        guarded = self._write_guard()
        return super(ScopedQuerySet, guarded).update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        guarded = self._write_guard()
        return super(ScopedQuerySet, guarded).delete()

    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> list[Any]:
        scope = require_scope()
        objs = list(objs)
        if not scope.is_system:
            scope.require(self.model.resource, Action.WRITE)
        with transaction.atomic():
            created = super().bulk_create(objs, *args, **kwargs)
            self._verify_written(scope, [o.pk for o in created])
        return created

    def bulk_update(self, objs: Any, fields: Any, batch_size: int | None = None) -> int:
        scope = require_scope()
        objs = list(objs)
        if not scope.is_system:
            scope.require(self.model.resource, Action.WRITE)
        pks = [o.pk for o in objs]
        self._verify_written(scope, pks)
        with transaction.atomic():
            changed = QuerySet(self.model, using=self.db).bulk_update(objs, fields, batch_size)
            self._verify_written(scope, pks)
        return changed

    def _verify_written(self, scope: Scope, pks: list[Any]) -> None:
        """Every row touched by a bulk write must lie inside the scope's write territory."""
        condition = None if scope.is_system else self.model.scope_filter(scope, Action.WRITE)
        if condition is None or not pks:
            return
        plain: QuerySet[Any] = QuerySet(self.model, using=self.db)
        chunk = 500
        for start in range(0, len(pks), chunk):
            part = pks[start : start + chunk]
            if plain.filter(pk__in=part).exclude(condition).exists():
                raise ScopeError(f"bulk write on {self.model._meta.label} outside {scope.label}")

    def explain(self, *, format: str | None = None, **options: Any) -> str:  # noqa: A002
        guarded = self._guard()
        return super(ScopedQuerySet, guarded).explain(format=format, **options)


class ScopedManager(models.Manager[Any]):
    """Default manager of tenant data: querysets are filtered by the active scope."""

    def get_queryset(self) -> ScopedQuerySet:
        qs = ScopedQuerySet(self.model, using=self._db)
        scope = current_scope()
        if scope is not None:
            qs._apply_scope(scope, Action.READ)
        return qs

    def for_scope(self, scope: Scope, action: Action = Action.READ) -> ScopedQuerySet:
        return ScopedQuerySet(self.model, using=self._db).for_scope(scope, action)

    def raw(self, *args: Any, **kwargs: Any) -> Any:
        """Raw SQL cannot be scoped; only the operator may use it."""
        scope = require_scope()
        if not scope.is_system:
            raise ScopeError(f"raw SQL on {self.model._meta.label} is not allowed in {scope.label}")
        return super().raw(*args, **kwargs)


class ScopedModel(models.Model):
    """Base for tenant data: declares how a scope filters rows and guards saves and deletes.

    ``objects`` is the guarded manager; ``unguarded`` is Django's plain manager, used only as
    the base manager for the framework's own internals (saving, cascades, related access from
    an object already read in scope).
    """

    resource: ClassVar[str] = ""
    objects = ScopedManager()
    unguarded = models.Manager()  # noqa: DJ012 - the guarded manager must be the default one

    class Meta:
        abstract = True
        base_manager_name = "unguarded"

    def save(self, *args: Any, **kwargs: Any) -> None:
        scope = require_scope()
        if not scope.is_system:
            scope.require(self.resource, Action.WRITE)
            if self.pk is not None and type(self).unguarded.filter(pk=self.pk).exists():
                self._check_in_scope(scope)  # the row as it was must be ours
        with transaction.atomic():
            super().save(*args, **kwargs)
            if not scope.is_system:
                self._check_in_scope(scope)  # and so must the row as it is now

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        scope = require_scope()
        if not scope.is_system:
            scope.require(self.resource, Action.WRITE)
            self._check_in_scope(scope)
        return super().delete(*args, **kwargs)

    @classmethod
    def scope_filter(cls, scope: Scope, action: Action) -> Q | None:
        """Rows of this model visible (READ) or changeable (WRITE) in ``scope``; None = all."""
        raise NotImplementedError

    def _check_in_scope(self, scope: Scope) -> None:
        condition = type(self).scope_filter(scope, Action.WRITE)
        if condition is None:
            return
        qs = type(self).unguarded.filter(pk=self.pk).filter(condition)
        if not qs.exists():
            raise ScopeError(f"{type(self)._meta.label} {self.pk} is outside {scope.label}")


def institution_q(scope: Scope, path: str = "") -> Q | None:
    """Rows that belong to institutions inside ``scope``; ``path`` leads from the model to one.

    ``path`` is "" for the Institution model itself, else the lookup to it ("institution",
    "department__institution").
    """
    if scope.is_system:
        return None
    pk = f"{path}__pk" if path else "pk"
    region = f"{path}__region_code__startswith" if path else "region_code__startswith"
    if scope.level is Level.REGION:
        return Q(**{region: scope.region_prefix})
    if scope.institution_id is None:
        return Q(pk__in=[])
    return Q(**{pk: scope.institution_id})


def region_rule_q(scope: Scope, action: Action, path: str = "") -> Q | None:
    """Rows carrying a ``region_code`` whose rules reach ``scope`` (batches and what hangs off them).

    Reading: a bureau sees rounds of its own region, of regions inside it and of the regions
    above it (a national round as it applies in the province); a hospital sees rounds of its
    region and above. Writing: only rounds inside the bureau's own region.
    """
    if scope.is_system:
        return None
    field = f"{path}__region_code" if path else "region_code"
    if action is Action.WRITE:
        if scope.level is Level.REGION:
            return Q(**{f"{field}__startswith": scope.region_prefix})
        return Q(pk__in=[])
    regions = scope.covering_regions()
    condition = Q(**{f"{field}__in": regions})
    if scope.level is Level.REGION:
        condition |= Q(**{f"{field}__startswith": scope.region_prefix})
    return condition
