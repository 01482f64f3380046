"""The one DuckDB query layer over the facts: current snapshot's Parquet files, tenant scope injected.

``FactQuery(home, scope)`` opens an in-memory DuckDB connection whose views ``purchases``,
``payments`` and ``dispensing`` scan the Parquet files of the current Delta snapshot directly and
are already filtered to the scope's territory. There is no other way in: without a scope the
constructor raises, so a forgotten scope fails closed. Reference data from the database (agreements,
selected products …) is registered as Arrow tables with ``register``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from jicai.core.tenancy import Level, Scope, ScopeError
from jicai.facts.schemas import FACT_TABLES, ROLLUP_TABLES, FactTable
from jicai.facts.store import snapshot_files

_SAFE = re.compile(r"[A-Za-z0-9_]+")
DEFAULT_THREADS = 2
DEFAULT_MEMORY = "3GB"


def _literal(text: str) -> str:
    if not _SAFE.fullmatch(text):
        raise ScopeError(f"unsafe scope value {text!r}")
    return f"'{text}'"


def scope_predicate(scope: Scope, table: FactTable) -> str:
    """SQL condition restricting ``table`` to the scope's territory; raises without a territory."""
    if scope.is_system:
        return "TRUE"
    if scope.level is Level.REGION:
        if not scope.region_prefix:
            raise ScopeError("region scope without a region code")
        return f"region_code LIKE {_literal(scope.region_prefix)} || '%'"
    if not scope.institution_code:
        raise ScopeError("hospital scope without an institution")
    condition = f"institution_code = {_literal(scope.institution_code)}"
    if scope.level is Level.DEPARTMENT:
        if not scope.department_code:
            raise ScopeError("department scope without a department")
        department = _literal(scope.department_code)
        if "department_code" not in table.columns:
            # A department sees its own dispensing only: purchases and payments are the hospital's.
            return "FALSE"
        condition += f" AND department_code = {department}"
    return condition


class FactQuery:
    """A scoped, read-only DuckDB session over the fact store."""

    def __init__(
        self,
        home: Path,
        scope: Scope | None,
        *,
        threads: int = DEFAULT_THREADS,
        memory_limit: str = DEFAULT_MEMORY,
    ) -> None:
        if scope is None:
            raise ScopeError("fact queries need a tenant scope")
        self.scope = scope
        self.home = Path(home)
        self.versions: dict[str, int | None] = {}
        self.con = duckdb.connect(config={"threads": threads, "memory_limit": memory_limit})
        try:
            for table in (*FACT_TABLES.values(), *ROLLUP_TABLES.values()):
                version, files = snapshot_files(self.home, table)
                self.versions[table.name] = version
                self.con.execute(f"CREATE VIEW {table.name} AS {self._source(table, files)}")
        except BaseException:
            self.con.close()
            raise

    def _source(self, table: FactTable, files: Sequence[str]) -> str:
        where = scope_predicate(self.scope, table)
        if not files:
            empty = pa.Table.from_batches([], schema=table.schema)
            self.con.register(f"_empty_{table.name}", empty)
            return f"SELECT * FROM _empty_{table.name} WHERE {where}"
        file_list = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
        columns = ", ".join(table.columns)
        return (
            f"SELECT {columns} FROM read_parquet({file_list}, hive_partitioning = true, union_by_name = true) "
            f"WHERE {where}"
        )

    def files_view(self, view: str, table: str, files: Sequence[str]) -> None:
        """Create (or replace) ``view`` over exactly ``files`` of ``table``, scoped like its main view.

        Incremental computations read only the files a Delta commit added, or an older snapshot's;
        those reads get the same scope predicate and columns as ``table`` itself, so they fail closed too.
        """
        fact = FACT_TABLES.get(table) or ROLLUP_TABLES.get(table)
        if fact is None:
            raise ValueError(f"unknown fact table {table!r}")
        if not _SAFE.fullmatch(view) or view in FACT_TABLES or view in ROLLUP_TABLES:
            raise ValueError(f"bad view name {view!r}")
        self.con.execute(f"CREATE OR REPLACE VIEW {view} AS {self._source(fact, files)}")

    def register(
        self, name: str, data: pa.Table | Sequence[Mapping[str, Any]], schema: pa.Schema | None = None
    ) -> None:
        """Make reference rows (from the database, already scoped) available to SQL as ``name``."""
        if not _SAFE.fullmatch(name) or name in FACT_TABLES or name in ROLLUP_TABLES:
            raise ValueError(f"bad relation name {name!r}")
        table = data if isinstance(data, pa.Table) else pa.Table.from_pylist(list(data), schema=schema)
        self.con.register(name, table)

    def sql(self, query: str, params: Sequence[Any] | None = None) -> duckdb.DuckDBPyRelation:
        return self.con.sql(query, params=params)

    def rows(self, query: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        cursor = self.con.execute(query, params or [])
        names = [d[0] for d in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def arrow(self, query: str, params: Sequence[Any] | None = None) -> pa.Table:
        return self.con.sql(query, params=params).to_arrow_table()

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> FactQuery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
