"""The Delta Lake fact store under ``JICAI_HOME/facts``: atomic upserts by natural key, compaction.

Every import is one Delta commit (a MERGE on the natural key), so an interrupted import leaves no
partial data, re-importing the same lines changes nothing, and a corrected line replaces the earlier
version (which stays readable through Delta's history until vacuumed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from jicai.facts.schemas import FACT_TABLES, ROLLUP_TABLES, FactTable


@dataclass(frozen=True)
class UpsertResult:
    inserted: int
    updated: int
    unchanged: int
    version: int


def table_path(home: Path, table: FactTable) -> Path:
    folder = "rollups" if table.name in ROLLUP_TABLES else "facts"
    return Path(home) / folder / table.name


def open_table(home: Path, table: FactTable) -> DeltaTable | None:
    path = table_path(home, table)
    if not DeltaTable.is_deltatable(str(path)):
        return None
    return DeltaTable(str(path))


def _changed_predicate(table: FactTable) -> str:
    return " OR ".join(f"(t.{c} IS DISTINCT FROM s.{c})" for c in table.value_columns)


def upsert(home: Path, table: FactTable, data: pa.Table) -> UpsertResult:
    """Insert new keys and replace changed lines in one commit; identical lines are left alone."""
    data = data.select(table.columns).cast(table.schema)
    existing = open_table(home, table)
    if existing is None:
        path = table_path(home, table)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_deltalake(str(path), data, partition_by=["month"], mode="append")
        created = DeltaTable(str(path))
        return UpsertResult(inserted=data.num_rows, updated=0, unchanged=0, version=created.version())
    if data.num_rows == 0:
        return UpsertResult(inserted=0, updated=0, unchanged=0, version=existing.version())
    metrics: dict[str, Any] = (
        existing.merge(
            data,
            predicate=f"t.{table.key} = s.{table.key}",
            source_alias="s",
            target_alias="t",
        )
        .when_matched_update_all(predicate=_changed_predicate(table))
        .when_not_matched_insert_all()
        .execute()
    )
    inserted = int(metrics.get("num_target_rows_inserted", 0))
    updated = int(metrics.get("num_target_rows_updated", 0))
    return UpsertResult(
        inserted=inserted,
        updated=updated,
        unchanged=data.num_rows - inserted - updated,
        version=DeltaTable(str(table_path(home, table))).version(),
    )


def append(home: Path, table: FactTable, data: pa.Table) -> int:
    """Bulk append of lines known to be new (the data generator and benchmarks); returns the version."""
    path = table_path(home, table)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_deltalake(str(path), data.select(table.columns).cast(table.schema), partition_by=["month"], mode="append")
    return DeltaTable(str(path)).version()


def compact(home: Path, *, vacuum_hours: int | None = None) -> dict[str, Any]:
    """Merge small files per partition (and optionally vacuum files older than the retention)."""
    report: dict[str, Any] = {}
    for table in FACT_TABLES.values():
        dt = open_table(home, table)
        if dt is None:
            continue
        metrics = dt.optimize.compact()
        entry: dict[str, Any] = {
            "files_added": metrics.get("numFilesAdded"),
            "files_removed": metrics.get("numFilesRemoved"),
            "version": dt.version(),
        }
        if vacuum_hours is not None:
            removed = dt.vacuum(retention_hours=vacuum_hours, enforce_retention_duration=False, dry_run=False)
            entry["vacuumed"] = len(removed)
        report[table.name] = entry
    return report


def snapshot_files(home: Path, table: FactTable) -> tuple[int | None, list[str]]:
    """The current version and the Parquet files that make it up (what DuckDB scans)."""
    dt = open_table(home, table)
    if dt is None:
        return None, []
    return dt.version(), list(dt.file_uris())
