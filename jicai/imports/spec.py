"""Dataset specs: one description of each file users bring, shared by CLI, web upload and API."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from django.db import models

from jicai.imports.values import ValueParseError, is_blank

if TYPE_CHECKING:
    from jicai.core.tenancy import Scope

Parser = Callable[[object], Any]


class Severity:
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Issue:
    """A problem with one cell or row; errors reject the row, warnings only inform."""

    line: int
    column: str
    value: str
    code: str
    message_zh: str
    message_en: str
    severity: str = Severity.ERROR


class RowIssue(Exception):
    """Raised from a spec's ``prepare`` to reject the row with a reason."""

    def __init__(self, column: str, code: str, message_zh: str, message_en: str, value: object = "") -> None:
        super().__init__(message_en)
        self.column = column
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en
        self.value = value


@dataclass(frozen=True)
class Column:
    """A column of a dataset: canonical English name, Chinese label, parser, aliases."""

    name: str
    label: str
    parse: Parser
    required: bool = False
    key: bool = False
    aliases: tuple[str, ...] = ()
    help: str = ""


def normalise_header(text: str) -> str:
    """Header matching ignores width, case, spaces, underscores and bracket style."""
    text = unicodedata.normalize("NFKC", text).strip().lstrip("\ufeff").lower()
    return re.sub(r"[\s_\-（）()\[\]【】*：:]", "", text)


@dataclass
class RowContext:
    """Per-import state a spec's ``prepare`` may use: the scope, caches and warnings."""

    scope: Scope
    options: dict[str, Any] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)
    warnings: list[RowIssue] = field(default_factory=list)

    def warn(self, column: str, code: str, message_zh: str, message_en: str, value: object = "") -> None:
        self.warnings.append(RowIssue(column, code, message_zh, message_en, value))


class DatasetSpec:
    """Base class: subclasses list columns and turn parsed values into model fields.

    ``prepare`` returns the model's field values (foreign keys resolved) or raises
    :class:`RowIssue`; ``key_of`` gives the natural key from those fields; ``export_row``
    writes a record back in the canonical columns, so export → import is an identity.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    label_en: ClassVar[str]
    model: ClassVar[type[models.Model]]
    resource: ClassVar[str]
    columns: ClassVar[tuple[Column, ...]]
    key_fields: ClassVar[tuple[str, ...]]
    compare_fields: ClassVar[tuple[str, ...]]
    keeps_extra: ClassVar[bool] = True
    # Which file columns feed a model field, when not the column of the same name.
    sources: ClassVar[dict[str, tuple[str, ...]]] = {}

    def field_present(self, field_name: str, present: set[str]) -> bool:
        """Whether the file carries the data for ``field_name``; absent fields are left as they are."""
        columns = self.sources.get(field_name)
        if columns is None:
            if field_name not in {c.name for c in self.columns}:
                return True  # resolved references and derived fields always come from the row
            columns = (field_name,)
        return any(c in present for c in columns)

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    def header_index(self) -> dict[str, str]:
        index: dict[str, str] = {}
        for col in self.columns:
            for text in (col.name, col.label, *col.aliases):
                index.setdefault(normalise_header(text), col.name)
        return index

    def prepare(self, values: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        raise NotImplementedError

    def key_of(self, fields: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(fields[f] for f in self.key_fields)

    def key_of_object(self, obj: models.Model) -> tuple[Any, ...]:
        return tuple(getattr(obj, f) for f in self.key_fields)

    def key_text(self, values: dict[str, Any]) -> str:
        return "/".join(str(values.get(c.name, "")) for c in self.columns if c.key)

    def existing(self, scope: Scope, keys: Iterable[tuple[Any, ...]]) -> Iterator[models.Model]:
        """Records whose natural keys are among ``keys`` (whatever the scope: checked later)."""
        keys = list(keys)
        first = self.key_fields[0]
        firsts = sorted({k[0] for k in keys}, key=str)
        manager = self.model._base_manager  # scope is enforced by the engine, row by row
        for start in range(0, len(firsts), 500):
            yield from manager.filter(**{f"{first}__in": firsts[start : start + 500]})

    def export_queryset(self, scope: Scope) -> models.QuerySet[Any]:
        return self.model.objects.for_scope(scope)  # type: ignore[attr-defined,no-any-return]

    def export_row(self, obj: Any) -> dict[str, Any]:
        raise NotImplementedError

    @staticmethod
    def blank(value: object) -> bool:
        return is_blank(value)

    def parse_cell(self, col: Column, value: object) -> Any:
        """Blank → None (an error when the column is required), else the parser's value."""
        if is_blank(value):
            if col.required:
                raise ValueParseError("value.required", "必填项为空", "Required value is empty")
            return None
        return col.parse(value)
