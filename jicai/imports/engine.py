"""The import action: validate every row, then apply all of it atomically (or nothing).

One engine serves the CLI, the web upload and the API. A file with any rejected row changes
nothing unless the caller asks to load the valid rows; every write is audited with the
import's id; re-importing the same rows changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from jicai.core import audit
from jicai.core.tenancy import Action, Scope, ScopeError, use_scope
from jicai.imports.mappings import HeaderMapping, detect_mapping
from jicai.imports.models import ImportRun, ImportStatus
from jicai.imports.readers import FileReadError, Table, read_table
from jicai.imports.report import write_report
from jicai.imports.spec import DatasetSpec, Issue, RowContext, RowIssue, Severity, normalise_header
from jicai.imports.values import ValueParseError, is_blank, parse_text

Progress = Callable[[int, int], None]


class ImportDenied(ScopeError):
    """The user may not import this dataset at all."""


@dataclass
class ImportResult:
    dataset: str
    filename: str
    total_rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    issues: list[Issue] = field(default_factory=list)
    status: str = ImportStatus.REJECTED
    mapping: str = ""
    run_id: int | None = None
    report_path: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    def column_label(self, column: str) -> str:
        """The column as users know it: Chinese label and canonical name."""
        label = self.labels.get(column)
        return f"{label}（{column}）" if label else column

    @property
    def status_label(self) -> str:
        return str(ImportStatus(self.status).label)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == Severity.ERROR]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == Severity.WARNING]

    @property
    def file_error(self) -> bool:
        return any(i.line <= 1 and i.severity == Severity.ERROR for i in self.issues)

    @property
    def changed_nothing(self) -> bool:
        return self.status in (ImportStatus.REJECTED, ImportStatus.DRY_RUN)


@dataclass
class _Row:
    line: int
    values: dict[str, Any]
    fields: dict[str, Any]
    extra: dict[str, Any]
    key: tuple[Any, ...]
    key_text: str


def _cell_repr(value: object) -> str:
    if value is None:
        return ""
    text = str(value)
    return text if len(text) <= 200 else text[:200] + "…"


def _extra_text(cell: object) -> str:
    """Kept columns as the user sees them: Excel's 1200.0 is 1200, dates are ISO dates."""
    try:
        return parse_text(cell)
    except ValueParseError:
        return _cell_repr(cell)


def _map_headers(
    spec: DatasetSpec, headers: list[str], mapping: HeaderMapping | None
) -> tuple[dict[int, str], dict[int, str], list[Issue]]:
    """Column positions → dataset columns, positions kept as extra columns, and header errors."""
    index = spec.header_index()
    preset = mapping.normalised() if mapping else {}
    columns: dict[int, str] = {}
    extras: dict[int, str] = {}
    issues: list[Issue] = []
    seen: dict[str, int] = {}
    for pos, header in enumerate(headers):
        if not header:
            # Cells under a blank header are kept, named by their column, never dropped.
            extras[pos] = f"第{pos + 1}列"
            continue
        norm = normalise_header(header)
        name = preset.get(norm) or index.get(norm)
        if name is None:
            extras[pos] = header
            continue
        if name in seen:
            issues.append(
                Issue(
                    1,
                    header,
                    header,
                    "header.duplicate",
                    f"表头“{header}”与第 {seen[name] + 1} 列“{headers[seen[name]]}”"
                    f"都对应“{spec.column(name).label}”，请删除其中一列",
                    f"Header '{header}' and column {seen[name] + 1} both map to '{name}'",
                )
            )
            continue
        seen[name] = pos
        columns[pos] = name
    missing = [c for c in spec.columns if (c.key or c.required) and c.name not in seen]
    # The price list code may come from the command line instead of a column.
    missing = [c for c in missing if not (spec.name == "prices" and c.name == "list")]
    for col in missing:
        issues.append(
            Issue(
                1,
                col.name,
                "",
                "header.missing",
                f"缺少必需的列“{col.label}”（{col.name}）；当前表头：{'、'.join(h for h in headers if h)}",
                f"Missing required column '{col.name}' ({col.label})",
            )
        )
    return columns, extras, issues


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        if a is None or b is None:
            return a is b
        return Decimal(a) == Decimal(b)
    return bool(a == b)


def run_import(
    spec: DatasetSpec,
    data: bytes,
    filename: str,
    scope: Scope,
    *,
    dry_run: bool = False,
    load_valid: bool = False,
    mapping: HeaderMapping | None = None,
    options: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Import ``data`` (the file's bytes) into ``spec``'s dataset as ``scope``."""
    if not scope.can(spec.resource, "import"):
        raise ImportDenied(f"{scope.label} may not import {spec.name}")
    result = ImportResult(dataset=spec.name, filename=filename, labels={c.name: c.label for c in spec.columns})
    options = dict(options or {})
    try:
        table = read_table(data, filename)
    except FileReadError as exc:
        result.issues.append(Issue(1, "", filename, exc.code, exc.message_zh, exc.message_en))
        return _finish(spec, result, scope, data)
    if mapping is None:
        mapping = detect_mapping(spec.name, table.headers)
    if mapping is not None:
        if mapping.dataset != spec.name:
            result.issues.append(
                Issue(
                    1,
                    "",
                    mapping.name,
                    "mapping.dataset",
                    f"表头映射“{mapping.label}”用于 {mapping.dataset} 数据集，不能用于 {spec.name}",
                    f"Mapping {mapping.name} is for {mapping.dataset}",
                )
            )
            return _finish(spec, result, scope, data)
        result.mapping = mapping.name
        for key, value in mapping.options.items():
            options.setdefault(key, value)
    columns, extra_columns, header_issues = _map_headers(spec, table.headers, mapping)
    result.issues.extend(header_issues)
    if header_issues:
        result.total_rows = len(table.rows)
        return _finish(spec, result, scope, data)
    options["dry_run"] = dry_run
    options["present_columns"] = set(columns.values())
    result.total_rows = len(table.rows)
    with use_scope(scope), transaction.atomic():
        rows = _validate(
            spec,
            table,
            columns=columns,
            extra_columns=extra_columns,
            scope=scope,
            options=options,
            result=result,
            progress=progress,
        )
        if hasattr(spec, "fact_table"):
            _import_facts(spec, rows, scope, result, data, dry_run=dry_run, load_valid=load_valid)
        else:
            _import_records(
                spec,
                rows,
                scope=scope,
                result=result,
                data=data,
                options=options,
                dry_run=dry_run,
                load_valid=load_valid,
            )
    return _finish(spec, result, scope, data)


def _import_records(
    spec: DatasetSpec,
    rows: list[_Row],
    *,
    scope: Scope,
    result: ImportResult,
    data: bytes,
    options: dict[str, Any],
    dry_run: bool,
    load_valid: bool,
) -> None:
    """Master and programme data: plan against stored records by natural key, then write."""
    plan = _plan(spec, rows, scope, result, present=set(options["present_columns"]))
    plan.side_changes = ctx_changes(options)
    result.rejected = len({i.line for i in result.errors})
    result.created, result.updated = len(plan.creates), len(plan.updates)
    if dry_run:
        result.status = ImportStatus.DRY_RUN
        transaction.set_rollback(True)
    elif result.rejected and not load_valid:
        result.status = ImportStatus.REJECTED
        result.created = result.updated = 0  # nothing was written
        transaction.set_rollback(True)
    else:
        result.status = ImportStatus.PARTIAL if result.rejected else ImportStatus.APPLIED
        run = _record_run(spec, result, scope, data)
        _write(spec, plan, scope, run)


def ctx_changes(options: dict[str, Any]) -> list[audit.Change]:
    """Audit entries for reference records a spec created on the way (companies, price lists)."""
    return list(options.get("side_changes", []))


def _validate(
    spec: DatasetSpec,
    table: Table,
    *,
    columns: dict[int, str],
    extra_columns: dict[int, str],
    scope: Scope,
    options: dict[str, Any],
    result: ImportResult,
    progress: Progress | None,
) -> list[_Row]:
    ctx = RowContext(scope=scope, options=options)
    rows: list[_Row] = []
    first_line: dict[tuple[Any, ...], int] = {}
    first_seen: dict[tuple[Any, ...], tuple[dict[str, Any], dict[str, Any]]] = {}
    total = len(table.rows)
    by_name = {c.name: c for c in spec.columns}
    for done, (line, cells) in enumerate(table.rows, start=1):
        values: dict[str, Any] = {}
        raw: dict[str, object] = {}
        row_errors: list[Issue] = []
        for pos, name in columns.items():
            cell = cells[pos] if pos < len(cells) else None
            raw[name] = cell
            try:
                values[name] = spec.parse_cell(by_name[name], cell)
            except ValueParseError as exc:
                row_errors.append(Issue(line, name, _cell_repr(cell), exc.code, exc.message_zh, exc.message_en))
        extra = {}
        for pos, header in extra_columns.items():
            cell = cells[pos] if pos < len(cells) else None
            if not is_blank(cell):
                extra[header] = _extra_text(cell)
        if len(cells) > len(table.headers) and any(
            str(c).strip() for c in cells[len(table.headers) :] if c is not None
        ):
            row_errors.append(
                Issue(
                    line,
                    "",
                    _cell_repr(cells[len(table.headers)]),
                    "row.extra_cells",
                    "此行的单元格比表头多，可能有未加引号的逗号",
                    "The row has more cells than the header (an unquoted comma?)",
                )
            )
        if not row_errors:
            ctx.warnings.clear()
            try:
                fields = spec.prepare(values, ctx)
            except RowIssue as exc:
                shown = exc.value if exc.value != "" else raw.get(exc.column, "")
                row_errors.append(Issue(line, exc.column, _cell_repr(shown), exc.code, exc.message_zh, exc.message_en))
            except ScopeError as exc:
                row_errors.append(Issue(line, "", "", "scope.denied", "您无权执行此写入", str(exc)))
            else:
                for w in ctx.warnings:
                    result.issues.append(
                        Issue(line, w.column, _cell_repr(w.value), w.code, w.message_zh, w.message_en, Severity.WARNING)
                    )
                key = spec.key_of(fields)
                if key in first_line and first_seen[key] == (fields, extra):
                    result.issues.append(
                        Issue(
                            line,
                            "",
                            spec.key_text(values),
                            "row.repeated",
                            f"与第 {first_line[key]} 行完全相同，已合并为一条记录",
                            f"Identical to line {first_line[key]}; merged into one record",
                            Severity.WARNING,
                        )
                    )
                elif key in first_line:
                    row_errors.append(
                        Issue(
                            line,
                            ",".join(c.name for c in spec.columns if c.key),
                            spec.key_text(values),
                            "row.duplicate_key",
                            f"与第 {first_line[key]} 行的关键字段相同（{spec.key_text(values)}），"
                            "同一文件中只能出现一次",
                            f"Same key as line {first_line[key]} ({spec.key_text(values)})",
                        )
                    )
                else:
                    first_line[key] = line
                    first_seen[key] = (fields, extra)
                    rows.append(_Row(line, values, fields, extra, key, spec.key_text(values)))
        result.issues.extend(row_errors)
        if progress is not None and (done % 500 == 0 or done == total):
            progress(done, total)
    return rows


@dataclass
class _Plan:
    creates: list[Any] = field(default_factory=list)
    updates: list[Any] = field(default_factory=list)
    update_fields: list[str] = field(default_factory=list)
    changes: list[audit.Change] = field(default_factory=list)
    side_changes: list[audit.Change] = field(default_factory=list)


def _writable_pks(spec: DatasetSpec, scope: Scope, pks: list[Any]) -> set[Any] | None:
    """Which existing records the scope may change; None when it may change them all."""
    if scope.is_system or not pks:
        return None
    condition = spec.model.scope_filter(scope, Action.WRITE)  # type: ignore[attr-defined]
    if condition is None:
        return None
    writable: set[Any] = set()
    base = spec.model._base_manager
    for start in range(0, len(pks), 500):
        writable.update(base.filter(pk__in=pks[start : start + 500]).filter(condition).values_list("pk", flat=True))
    return writable


def _plan(spec: DatasetSpec, rows: list[_Row], scope: Scope, result: ImportResult, *, present: set[str]) -> _Plan:
    """Compare rows with stored records by natural key: what to create, update, leave alone."""
    model: Any = spec.model
    has_extra = spec.keeps_extra and any(f.name == "extra" for f in model._meta.get_fields())
    existing: dict[tuple[Any, ...], Any] = {
        spec.key_of_object(obj): obj for obj in spec.existing(scope, (r.key for r in rows))
    }
    writable = _writable_pks(spec, scope, [o.pk for o in existing.values()])
    plan = _Plan(update_fields=[f for f in spec.compare_fields if spec.field_present(f, present)])
    if has_extra:
        plan.update_fields.append("extra")
    label = model._meta.label
    context = {"dataset": spec.name, "file": result.filename}
    for row in rows:
        obj = existing.get(row.key)
        if obj is None:
            new_fields = dict(row.fields)
            if has_extra:
                new_fields["extra"] = row.extra
            plan.creates.append(model(**new_fields))
            plan.changes.append(audit.Change("create", label, "", row.key_text, None, new_fields, context))
            continue
        if writable is not None and obj.pk not in writable:
            result.issues.append(
                Issue(
                    row.line,
                    "",
                    row.key_text,
                    "scope.row",
                    "该记录已存在且不在您的权限范围内，不能修改",
                    "The record exists outside your scope and cannot be changed",
                )
            )
            continue
        old: dict[str, Any] = {}
        new: dict[str, Any] = {}
        for name in plan.update_fields:
            if name == "extra":
                merged = {**(obj.extra or {}), **row.extra}
                if merged != (obj.extra or {}):
                    old[name], new[name] = obj.extra, merged
                    obj.extra = merged
                continue
            if not _same(getattr(obj, name), row.fields.get(name)):
                old[name], new[name] = getattr(obj, name), row.fields.get(name)
                setattr(obj, name, row.fields.get(name))
        if new:
            plan.updates.append(obj)
            plan.changes.append(audit.Change("update", label, obj.pk, row.key_text, old, new, context))
        else:
            result.unchanged += 1
    return plan


def _write(spec: DatasetSpec, plan: _Plan, scope: Scope, run: ImportRun) -> None:
    manager: Any = spec.model._default_manager  # the scoped manager re-checks every written row against the scope
    created = manager.bulk_create(plan.creates, batch_size=1000)
    creates = iter(created)
    for change in plan.side_changes:
        change.context = {**change.context, "import_run": run.pk}
    for change in plan.changes:
        if change.action == "create":
            change.object_pk = next(creates).pk
        change.context = {**change.context, "import_run": run.pk}
    if plan.updates:
        manager.bulk_update(plan.updates, plan.update_fields, batch_size=1000)
    audit.record(scope, [*plan.side_changes, *plan.changes])


def _import_facts(
    spec: Any, rows: list[_Row], scope: Scope, result: ImportResult, data: bytes, *, dry_run: bool, load_valid: bool
) -> None:
    """Activity data goes to the Delta fact store: one MERGE commit, one audit entry per import.

    The ImportRun is created first so its id is stamped on every line; if the Delta commit fails the
    database transaction rolls back with it. Old versions of corrected lines stay in Delta's history.
    """
    home = Path(settings.JICAI_HOME)
    fields = [r.fields for r in rows]
    result.rejected = len({i.line for i in result.errors})
    if dry_run:
        result.status = ImportStatus.DRY_RUN
        result.created, result.updated, result.unchanged = spec.diff(fields, home)
        transaction.set_rollback(True)
        return
    if result.rejected and not load_valid:
        result.status = ImportStatus.REJECTED
        transaction.set_rollback(True)
        return
    result.status = ImportStatus.PARTIAL if result.rejected else ImportStatus.APPLIED
    run = _record_run(spec, result, scope, data)
    outcome = spec.write(fields, home, run.pk)
    result.created, result.updated, result.unchanged = outcome.inserted, outcome.updated, outcome.unchanged
    with use_scope(Scope.system(scope.actor_name)):
        ImportRun.objects.filter(pk=run.pk).update(
            created=result.created, updated=result.updated, unchanged=result.unchanged
        )
    audit.record(
        scope,
        [
            audit.Change(
                "import",
                f"facts.{spec.name}",
                run.pk,
                result.filename,
                None,
                {
                    "rows": len(fields),
                    "inserted": outcome.inserted,
                    "updated": outcome.updated,
                    "unchanged": outcome.unchanged,
                    "delta_version": outcome.version,
                },
                {"dataset": spec.name, "import_run": run.pk, "file": result.filename},
            )
        ],
    )


def _record_run(spec: DatasetSpec, result: ImportResult, scope: Scope, data: bytes) -> ImportRun:
    run = ImportRun(
        dataset=spec.name,
        filename=result.filename[:255],
        file_sha256=hashlib.sha256(data).hexdigest(),
        actor_id=scope.actor_id,
        actor_name=scope.actor_name,
        scope_label=scope.label,
        region_code=scope.region_code or scope.institution_region_code,
        institution_id=scope.institution_id,
        status=result.status,
        mapping=result.mapping,
        total_rows=result.total_rows,
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
        rejected=result.rejected,
        warnings=len(result.warnings),
    )
    with use_scope(Scope.system(scope.actor_name)):
        run.save()
    result.run_id = run.pk
    return run


def _finish(spec: DatasetSpec, result: ImportResult, scope: Scope, data: bytes) -> ImportResult:
    """Log rejected and dry runs too (outside the rolled-back transaction) and write the report."""
    if result.run_id is None:
        _record_run(spec, result, scope, data)
    if result.issues and result.run_id is not None:
        reports = Path(settings.JICAI_HOME) / "reports"
        reports.mkdir(parents=True, exist_ok=True)
        path = reports / f"import-{result.run_id}.xlsx"
        write_report(result.issues, path, labels=result.labels)
        result.report_path = str(path)
        with use_scope(Scope.system(scope.actor_name)):
            ImportRun.objects.filter(pk=result.run_id).update(report=path.name)
    return result
