"""The data behind the daily screens (bureau overview, institution, item, department), shaped for display.

``Dashboard(home, scope)`` is one read-only session for one page. It prefers the stored results of
the last monthly cycle (``results/progress`` and ``results/substitutes`` Delta tables, ``results/
latest/overdue.parquet``; ``results/state/cycle.json`` gives their as-of date), read with DuckDB
straight from their Parquet files, and falls back to computing the same tables on demand (the
named reports' functions) when no cycle has run or another as-of date is asked for. Either way the
page's figures carry one as-of date (``source.as_of``, shown as "数据截至 …").

Tenant scope: the stored results are province-wide (the cycle runs as the operator), so every view
over them is restricted twice — by the scope's territory (``facts.query.scope_predicate``, the
predicate the fact views use; FALSE for a department, which sees no purchase figures) and to the
institutions the scoped ORM returns. Facts are only ever read through ``FactQuery`` (opened lazily:
a page built from stored results alone does not pay for it), reference rows only through the scoped
ORM. What a scope may read follows the report rules (``reports.REPORT_READS``): purchase figures
need ``agreement`` and ``purchase``, payables ``purchase`` and ``payment``, department figures
``dispensing``; anything else raises ``ScopeError``.

Caches (in-process, bounded, thread-safe), all keyed on the cycle state, so a new cycle run starts
afresh: ``STORED`` holds the stored results as read (once per state, for every scope), ``RESULTS``
the scope's share of them with the relations derived from them, ``CACHE`` the figures computed on
demand from the facts (department progress, prepayment tranches, payables, department months),
keyed besides on the scope, the as-of date, the fact versions and a fingerprint of the agreements,
item products and published targets they come from: a new import or a changed agreement means a
new key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable

from jicai.core.tenancy import Level, Scope, ScopeError, use_scope
from jicai.facts.query import FactQuery, scope_predicate
from jicai.facts.schemas import FACT_TABLES, FactTable
from jicai.facts.store import open_table
from jicai.monitoring.cycle import STATE_VERSION, ondemand_dir, prune_ondemand
from jicai.monitoring.payables import OVERDUE_SCHEMA, overdue_totals, payment_rules_for
from jicai.monitoring.progress import PROGRESS_SCHEMA
from jicai.monitoring.reference import Reference, load_reference
from jicai.monitoring.reports import REPORT_READS, REPORTS, ReportRequest, published_targets
from jicai.monitoring.substitutes import SUBSTITUTE_SCHEMA
from jicai.organizations.models import Institution
from jicai.policy.profile import ProfileLibrary
from jicai.programme.models import Agreement, Item, NonSelectedProduct, SelectedProduct

STATUSES = ("completed", "on_track", "behind", "at_risk")
STATUS_INDEX = {s: i for i, s in enumerate(STATUSES)}
TREND_MONTHS = 36
Q4 = Decimal("0.0001")

PROGRESS_RESULT = FactTable("progress_result", "", PROGRESS_SCHEMA, ())
OVERDUE_RESULT = FactTable("overdue_result", "", OVERDUE_SCHEMA, ())
SUBSTITUTE_RESULT = FactTable("substitute_result", "", SUBSTITUTE_SCHEMA, ())

Row = dict[str, Any]


def ratio(num: Any, den: Any) -> Decimal | None:
    """num ÷ den as a Decimal to four places (half up); None when undefined."""
    if num is None or den is None:
        return None
    divisor = Decimal(den)
    if divisor == 0:
        return None
    return (Decimal(num) / divisor).quantize(Q4, rounding=ROUND_HALF_UP)


def dec4(value: Any) -> Decimal | None:
    """A DuckDB figure (DECIMAL or an average's DOUBLE) as a Decimal to four places."""
    if value is None:
        return None
    if isinstance(value, float):
        value = repr(value)
    return Decimal(value).quantize(Q4, rounding=ROUND_HALF_UP)


# --------------------------------------------------------------------------------------------------
# Where the figures come from


def results_root(home: Path) -> Path:
    return Path(home) / "results"


def cycle_state(home: Path) -> dict[str, Any] | None:
    """The last cycle's state file when it is readable and its result tables exist, else None."""
    root = results_root(home)
    try:
        state = json.loads((root / "state" / "cycle.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION or "as_of" not in state:
        return None
    if not all(DeltaTable.is_deltatable(str(root / name)) for name in ("progress", "substitutes")):
        return None
    return state


def fact_versions(home: Path) -> dict[str, int]:
    """Current Delta version of each fact table that exists (cheap: reads the logs only)."""
    out = {}
    for name, table in FACT_TABLES.items():
        found = open_table(home, table)
        if found is not None:
            out[name] = found.version()
    return out


@dataclass(frozen=True)
class Source:
    """What the page's figures are: the stored cycle results as of a date, or computed live."""

    kind: str  # "cycle" | "live"
    as_of: dt.date
    run: int | None = None
    stale: bool = False  # facts were imported after the cycle ran: not yet in its results

    @property
    def is_cycle(self) -> bool:
        return self.kind == "cycle"


# --------------------------------------------------------------------------------------------------
# A small in-process cache for on-demand computations


class _Cache:
    def __init__(self, size: int = 64) -> None:
        self.size = size
        self.lock = threading.Lock()
        self.items: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

    def get(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = build()
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value

    def peek(self, key: tuple[Any, ...]) -> Any:
        with self.lock:
            return self.items.get(key)

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


CACHE = _Cache()
STORED = _Cache(size=4)
"""The stored results as the cycle wrote them (every tenant), per cycle state: read once, filtered per scope."""
STORED_ROW_LIMIT = 2_000_000
RESULTS = _Cache(size=16)
"""Stored results restricted to a scope (and the relations derived from them), per cycle state."""
RELATIONS = ("dash_progress", "dash_subs", "dash_overdue", "dash_current", "dash_year_subs", "dash_cum")


def trend_months(as_of: dt.date, months: int = TREND_MONTHS) -> list[str]:
    """The ``months`` calendar months ending with the as-of date's, oldest first (YYYY-MM)."""
    index = as_of.year * 12 + as_of.month - 1
    return [f"{m // 12:04d}-{m % 12 + 1:02d}" for m in range(index - months + 1, index + 1)]


def table_digest(table: pa.Table) -> str:
    """Fingerprint of a small Arrow table's rows (cache keys)."""
    text = json.dumps(table.to_pylist(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


# --------------------------------------------------------------------------------------------------
# The session


class Dashboard:
    """One page's read-only session over the stored results (or live figures) in ``scope``."""

    def __init__(
        self,
        home: Path,
        scope: Scope | None,
        *,
        as_of: dt.date | None = None,
        profiles: ProfileLibrary | None = None,
        facts: bool = False,
    ) -> None:
        if scope is None:
            raise ScopeError("dashboards need a tenant scope")
        if not scope.can("report", "read"):
            raise ScopeError(f"{scope.label} may not read reports")
        self.home = Path(home)
        self.scope = scope
        self.profiles = profiles or ProfileLibrary([self.home / "profiles"])
        self._facts: FactQuery | None = None
        self._reference: Reference | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._versions: dict[str, int] | None = None
        self._orm: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]] | None = None
        state = cycle_state(self.home)
        stored = dt.date.fromisoformat(state["as_of"]) if state else None
        if state is not None and (as_of is None or as_of == stored):
            assert stored is not None
            versions = self.versions()
            stale = any(versions.get(k) != v for k, v in (state.get("versions") or {}).items())
            self.source = Source("cycle", stored, run=state.get("run"), stale=stale)
        else:
            self.source = Source("live", as_of or dt.date.today())
        self.as_of = self.source.as_of
        self._state = state
        self.institution_names: dict[str, str] = {}
        self.institution_regions: dict[str, str] = {}
        self.item_names: dict[tuple[str, str], tuple[str, str]] = {}
        self._prepared = False
        self._memo: dict[tuple[Any, ...], Any] = {}
        if facts:
            _ = self.facts

    def versions(self) -> dict[str, int]:
        """The fact tables' current versions (read once per session)."""
        if self._versions is None:
            self._versions = fact_versions(self.home)
        return self._versions

    # -- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> Dashboard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._facts is not None:
            self._facts.close()
        elif self._con is not None:
            self._con.close()
        self._facts = None
        self._con = None

    # -- what the scope may read -------------------------------------------------------------------

    @property
    def reads_purchases(self) -> bool:
        return self.scope.can("agreement", "read") and self.scope.can("purchase", "read")

    @property
    def reads_payables(self) -> bool:
        return self.scope.can("purchase", "read") and self.scope.can("payment", "read")

    @property
    def reads_dispensing(self) -> bool:
        return self.scope.can("dispensing", "read")

    def require(self, *resources: str) -> None:
        for resource in resources:
            if not self.scope.can(resource, "read"):
                raise ScopeError(f"{self.scope.label} may not read {resource}")

    # -- connections -------------------------------------------------------------------------------

    @property
    def facts(self) -> FactQuery:
        """The scoped fact session (opened on first use; the stored-results views move onto it)."""
        if self._facts is None:
            self._facts = FactQuery(self.home, self.scope)
            if self._con is not None:
                self._con.close()
                self._con = None
                self._prepared = False
            self._con = self._facts.con
            self._prepare()
        return self._facts

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            if self.source.is_cycle:
                self._con = duckdb.connect(config={"threads": 2, "memory_limit": "1GB"})
            else:
                _ = self.facts  # live figures are computed from the facts
        if not self._prepared:
            self._prepare()
        assert self._con is not None
        return self._con

    def reference(self) -> Reference:
        """The scope's agreements, item products and institutions (scoped ORM), loaded once."""
        if self._reference is None:
            self._reference = load_reference(self.scope)
        return self._reference

    def facts_with_reference(self, agreements: pa.Table | None = None) -> FactQuery:
        """The fact session with ``agreements`` (default: all of the scope's) and item products registered."""
        q = self.facts
        ref = self.reference()
        q.register("agreements", ref.agreements if agreements is None else agreements)
        q.register("item_products", ref.item_products)
        return q

    # -- setting up the relations ------------------------------------------------------------------

    def _orm_rows(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """Institutions and items of the scope (two ORM queries, once per session)."""
        if self._orm is None:
            with use_scope(self.scope):
                institutions = list(Institution.objects.values_list("code", "name", "region_code", "level"))
                items = list(
                    Item.objects.select_related("batch").values_list(
                        "batch__code", "item_code", "generic_name", "unit_label", "batch__name"
                    )
                )
            self._orm = (institutions, items)
            self.institution_names = {code: name for code, name, _r, _l in institutions}
            self.institution_regions = {code: region for code, _n, region, _l in institutions}
            self.item_names = {(b, i): (name, unit) for b, i, name, unit, _bn in items}
        return self._orm

    def names(self) -> Dashboard:
        """Load the institution and item names (``institution_names``, ``item_names``); returns self."""
        self._orm_rows()
        return self

    def _prepare(self) -> None:
        con = self._con
        assert con is not None
        self._prepared = True
        institutions, items = self._orm_rows()
        con.register(
            "dash_inst",
            pa.table(
                {
                    "institution_code": pa.array([r[0] for r in institutions], pa.string()),
                    "institution_name": pa.array([r[1] for r in institutions], pa.string()),
                    "region_code": pa.array([r[2] for r in institutions], pa.string()),
                    "level": pa.array([r[3] for r in institutions], pa.int32()),
                }
            ),
        )
        con.register(
            "dash_items",
            pa.table(
                {
                    "batch_code": pa.array([r[0] for r in items], pa.string()),
                    "item_code": pa.array([r[1] for r in items], pa.string()),
                    "generic_name": pa.array([r[2] for r in items], pa.string()),
                    "unit_label": pa.array([r[3] for r in items], pa.string()),
                    "batch_name": pa.array([r[4] for r in items], pa.string()),
                }
            ),
        )
        if self.scope.level is Level.DEPARTMENT or not self.reads_purchases:
            # A department (or a role without purchase reads) gets no purchase-based figure at all.
            base = {
                "dash_progress": PROGRESS_SCHEMA.empty_table(),
                "dash_subs": SUBSTITUTE_SCHEMA.empty_table(),
                "dash_overdue": OVERDUE_SCHEMA.empty_table(),
            }
            self._register(con, base | self._derive(con, base))
        elif self.source.is_cycle:
            key = (self.scope, self._state_key(), tuple(sorted(self.institution_names)))
            self._register(con, RESULTS.get(key, lambda: self._load_results(con)))
        else:
            base = self._live(con)
            self._register(con, base | self._derive(con, base))

    @staticmethod
    def _register(con: duckdb.DuckDBPyConnection, tables: Mapping[str, pa.Table]) -> None:
        for name, table in tables.items():
            con.register(name, table)

    def _state_key(self) -> tuple[Any, ...]:
        path = results_root(self.home) / "state" / "cycle.json"
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            stamp = 0
        state = self._state or {}
        return (str(self.home), state.get("run"), state.get("as_of"), stamp)

    def _stored(self, con: duckdb.DuckDBPyConnection) -> dict[str, pa.Table]:
        """The cycle's stored results, province-wide, read once per cycle state and process (small
        stores only; a large one is read again for each scope, its filter pushed into the scan)."""

        def read() -> dict[str, pa.Table]:
            root = results_root(self.home)
            progress_files = list(DeltaTable(str(root / "progress")).file_uris())
            subs_files = list(DeltaTable(str(root / "substitutes")).file_uris())
            overdue = root / "latest" / "overdue.parquet"
            sources = {
                "progress": _parquet_select(con, "progress", progress_files, PROGRESS_SCHEMA, "TRUE", autocast=True),
                "subs": _parquet_select(con, "subs", subs_files, SUBSTITUTE_SCHEMA, "TRUE", autocast=False),
                "overdue": _parquet_select(
                    con, "overdue", [str(overdue)] if overdue.is_file() else [], OVERDUE_SCHEMA, "TRUE", autocast=False
                ),
            }
            return {name: con.sql(sql).to_arrow_table() for name, sql in sources.items()}

        key = ("stored", self._state_key())
        found = STORED.peek(key)
        if found is not None:
            return found  # type: ignore[no-any-return]
        tables = read()
        if sum(t.num_rows for t in tables.values()) <= STORED_ROW_LIMIT:
            STORED.get(key, lambda: tables)
        return tables

    def _load_results(self, con: duckdb.DuckDBPyConnection) -> dict[str, pa.Table]:
        """The stored results restricted to the scope, and what the screens derive from them, as Arrow."""
        stored = self._stored(con)
        for name, table in stored.items():
            con.register(f"dash_stored_{name}", table)
        in_scope = "institution_code IN (SELECT institution_code FROM dash_inst)"
        progress_where = f"{scope_predicate(self.scope, PROGRESS_RESULT)} AND {in_scope}"
        overdue_where = f"{scope_predicate(self.scope, OVERDUE_RESULT)} AND {in_scope}"
        if not self.reads_payables:
            overdue_where = "FALSE"
        base = {
            "dash_progress": con.sql(f"SELECT * FROM dash_stored_progress WHERE {progress_where}").to_arrow_table(),
            "dash_subs": con.sql(f"SELECT * FROM dash_stored_subs WHERE {in_scope}").to_arrow_table(),
            "dash_overdue": con.sql(f"SELECT * FROM dash_stored_overdue WHERE {overdue_where}").to_arrow_table(),
        }
        for name in stored:
            con.unregister(f"dash_stored_{name}")
        return base | self._derive(con, base)

    def _derive(self, con: duckdb.DuckDBPyConnection, base: Mapping[str, pa.Table]) -> dict[str, pa.Table]:
        """dash_current, dash_year_subs and dash_cum from the three base relations (module docstring)."""
        self._register(con, base)
        as_of = _date_sql(self.as_of)
        pair = "institution_code, batch_code, item_code"
        months = ", ".join(f"'{m}'" for m in trend_months(self.as_of))
        current = con.sql(
            f"""
            SELECT *, least(period_end, {as_of}) AS upto FROM dash_progress WHERE period_start <= {as_of}
            QUALIFY row_number() OVER (
                PARTITION BY batch_code, item_code, institution_code ORDER BY period_start DESC, year DESC) = 1
            """
        ).to_arrow_table()
        con.register("dash_current", current)
        year_subs = con.sql(
            f"""
            SELECT s.*, c.year, c.period_start, c.period_end,
                   row_number() OVER (PARTITION BY s.institution_code, s.batch_code, s.item_code
                                      ORDER BY s.month DESC) = 1 AS is_latest
            FROM dash_subs s JOIN dash_current c USING ({pair})
            WHERE s.month BETWEEN strftime(c.period_start, '%Y-%m') AND strftime(c.upto, '%Y-%m')
            """
        ).to_arrow_table()
        cum = con.sql(
            f"""
            WITH months AS (SELECT unnest([{months or "NULL"}]::VARCHAR[]) AS month),
            ag AS (
                SELECT {pair}, year, period_start, period_end, agreed_qty
                FROM dash_progress WHERE agreed_qty > 0 AND period_start <= {as_of}
            ),
            grid AS (
                SELECT ag.*, m.month,
                       least(last_day(CAST(m.month || '-01' AS DATE)), {as_of}, ag.period_end) AS ref_day
                FROM ag JOIN months m ON m.month BETWEEN strftime(ag.period_start, '%Y-%m')
                                                     AND strftime(least(ag.period_end, {as_of}), '%Y-%m')
            )
            SELECT g.institution_code, g.batch_code, g.item_code, g.year, g.month,
                   coalesce(last_value(s.cum_selected_qty IGNORE NULLS) OVER (
                       PARTITION BY g.institution_code, g.batch_code, g.item_code, g.year ORDER BY g.month
                       ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW), 0) AS cum_qty,
                   g.agreed_qty,
                   CAST(g.ref_day - g.period_start + 1 AS DOUBLE)
                       / CAST(g.period_end - g.period_start + 1 AS DOUBLE) AS elapsed
            FROM grid g LEFT JOIN dash_subs s
              ON s.institution_code = g.institution_code AND s.batch_code = g.batch_code
             AND s.item_code = g.item_code AND s.month = g.month
            """
        ).to_arrow_table()
        return {"dash_current": current, "dash_year_subs": year_subs, "dash_cum": cum}

    def _live(self, con: duckdb.DuckDBPyConnection) -> dict[str, pa.Table]:
        """Progress, substitutes and overdue totals computed on demand (no stored results for this date)."""
        q = self.facts_with_reference()
        ref = self.reference()
        tables = {
            "dash_progress": self.report("progress").select(PROGRESS_SCHEMA.names).cast(PROGRESS_SCHEMA),
            "dash_subs": self.report("substitutes").select(SUBSTITUTE_SCHEMA.names).cast(SUBSTITUTE_SCHEMA),
        }
        if self.reads_payables:
            regions = set(ref.institutions.column("region_code").to_pylist())
            rules = payment_rules_for(self.profiles, regions, self.as_of)
            tables["dash_overdue"] = overdue_totals(q, self.as_of, rules=rules)
        else:
            tables["dash_overdue"] = OVERDUE_SCHEMA.empty_table()
        in_scope = "institution_code IN (SELECT institution_code FROM dash_inst)"
        out = {}
        for name, table in tables.items():
            q.register(f"{name}_live", table)
            out[name] = con.sql(f"SELECT * FROM {name}_live WHERE {in_scope}").to_arrow_table()
        return out

    # -- running SQL -------------------------------------------------------------------------------

    def rows(self, sql: str, params_: Sequence[Any] | Mapping[str, Any] | None = None) -> list[Row]:
        cursor = self.con.execute(sql, params_ or [])
        names = [d[0] for d in cursor.description or []]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]

    def cached(self, kind: str, parts: Iterable[Any], build: Callable[[], Any]) -> Any:
        """``build()`` cached under the cycle state (a new run starts afresh), the scope, the as-of date,
        the fact versions and ``parts``."""
        versions = tuple(sorted(self.versions().items()))
        key = (kind, self._state_key(), self.scope, self.as_of, versions, *parts)
        return CACHE.get(key, build)

    def shared(self, kind: str, institution: str, parts: Iterable[Any], build: Callable[[], pa.Table]) -> pa.Table:
        """An institution's on-demand report, cached in the process and on disk (``ondemand_dir``) so
        that the first request after a restart, or after ``jicai cycle --warm``, finds it computed.

        The disk key holds no user: every scope that covers the institution and passed the page's
        checks gets the same rows (the facts and agreements of that one institution); a department
        scope, which sees less, has its own entry.
        """
        if not self.source.is_cycle:  # figures for another day: kept in the process only
            return self.cached(kind, (institution, *parts), build)
        parts = tuple(parts)

        def load_or_build() -> pa.Table:
            viewer = self.scope.label if self.scope.level is Level.DEPARTMENT else "institution"
            versions = tuple(sorted(self.versions().items()))
            state = self._state or {}
            profiles = sorted((f.name, f.stat().st_mtime_ns) for f in (self.home / "profiles").glob("*") if f.is_file())
            run, day = state.get("run"), state.get("as_of")
            disk_key = repr((kind, institution, viewer, run, day, self.as_of, versions, profiles, *parts))
            folder = ondemand_dir(self.home, self.source.run)
            path = folder / f"{hashlib.sha256(disk_key.encode('utf-8')).hexdigest()[:32]}.parquet"
            try:
                return pq.read_table(path)
            except (OSError, pa.ArrowInvalid):
                pass
            table = build()
            try:
                folder.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                pq.write_table(table, tmp)
                os.replace(tmp, path)
            except OSError:
                pass  # a read-only home still serves the figures, computed each time
            return table

        return self.cached(f"shared:{kind}", (institution, *parts), load_or_build)

    def item_label(self, batch: str, item: str) -> str:
        return self.names().item_names.get((batch, item), (item, ""))[0]

    def current_agreements(self, institution: str, *, batch: str | None = None, item: str | None = None) -> pa.Table:
        """The scope's agreements of ``institution`` in their current year on the as-of date (reference rows)."""
        ag = self.reference().agreements
        mask = pc.and_(pc.equal(ag["institution_code"], institution), pc.less_equal(ag["period_start"], self.as_of))
        if batch is not None:
            mask = pc.and_(mask, pc.equal(ag["batch_code"], batch))
        if item is not None:
            mask = pc.and_(mask, pc.equal(ag["item_code"], item))
        mine = ag.filter(mask)
        if mine.num_rows == 0:
            return mine
        latest: dict[tuple[str, str], dt.date] = {}
        for b, i, start in zip(
            mine["batch_code"].to_pylist(), mine["item_code"].to_pylist(), mine["period_start"].to_pylist(), strict=True
        ):
            if start > latest.get((b, i), dt.date.min):
                latest[(b, i)] = start
        keep = [
            latest[(b, i)] == start
            for b, i, start in zip(
                mine["batch_code"].to_pylist(),
                mine["item_code"].to_pylist(),
                mine["period_start"].to_pylist(),
                strict=True,
            )
        ]
        return mine.filter(pa.array(keep))

    def reference_key(self, institution: str) -> str:
        """Fingerprint of what an institution's on-demand figures are computed from in the database:
        its agreements (with their batch's profile) and the scope's selected and non-selected products
        (three small queries, so a
        cached figure is found without loading the whole reference)."""
        memo = ("reference_key", institution)
        if memo not in self._memo:
            with use_scope(self.scope):
                agreements = list(
                    Agreement.objects.filter(institution__code=institution)
                    .order_by("pk")
                    .values_list(
                        "pk",
                        "batch_id",
                        "item_id",
                        "year",
                        "period_start",
                        "period_end",
                        "agreed_qty",
                        "product_id",
                        "batch__policy_profile",
                    )
                )
                selected = list(
                    SelectedProduct.objects.order_by("pk").values_list(
                        "pk", "batch_id", "item_id", "product_id", "winning_price", "conversion", "product__pack_size"
                    )
                )
                others = list(
                    NonSelectedProduct.objects.order_by("pk").values_list(
                        "pk", "batch_id", "item_id", "product_id", "kind", "conversion"
                    )
                )
            text = json.dumps([agreements, selected, others], default=str)
            self._memo[memo] = hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]
        return str(self._memo[memo])

    # -- named reports on demand (cached) --------------------------------------------------------

    def report(self, name: str, agreements: pa.Table | None = None, **request: Any) -> pa.Table:
        """Named report ``name`` (``reports.REPORTS``: the same wiring as the CLI and the API) over
        ``agreements`` (default: all of the scope's) as of the session's date."""
        for resource in REPORT_READS.get(name, ()):
            self.require(resource)
        q = self.facts_with_reference(agreements)
        req = ReportRequest(as_of=self.as_of, **request)
        return REPORTS[name](q, req, self.profiles, self.reference())

    def department_progress(self, institution: str, *, batch: str | None = None, item: str | None = None) -> pa.Table:
        """The department-progress report of ``institution``'s current agreements (published targets
        where the hospital has published them, else derived; none for a department scope without)."""
        self.require("dispensing")
        memo = ("departments", institution, batch, item)
        if memo in self._memo:
            return self._memo[memo]
        req = ReportRequest(as_of=self.as_of, institution=institution)
        targets = published_targets(self.scope, req)
        parts = (institution, self.reference_key(institution), table_digest(targets) if targets is not None else None)

        def build() -> pa.Table:
            agreements = self.current_agreements(institution)
            return self.report("department-progress", agreements, institution=institution)

        table = self.shared("departments", institution, parts, build)
        self._memo[memo] = table
        if batch is not None or item is not None:
            keep = [
                (b == batch or batch is None) and (i == item or item is None)
                for b, i in zip(table["batch_code"].to_pylist(), table["item_code"].to_pylist(), strict=True)
            ]
            table = table.filter(pa.array(keep, pa.bool_()))
            self._memo[memo] = table
        return table

    def prepayments(self, institution: str) -> pa.Table:
        """The prepayments report (tranches: share, trigger, fired or not, amount) of ``institution``'s
        current agreements."""
        self.require("agreement", "purchase")
        return self.shared(
            "prepayments",
            institution,
            (self.reference_key(institution),),
            lambda: self.report("prepayments", self.current_agreements(institution), institution=institution),
        )


def _date_sql(day: dt.date) -> str:
    return f"DATE '{day.isoformat()}'"


def _parquet_select(
    con: duckdb.DuckDBPyConnection, name: str, files: list[str], schema: pa.Schema, where: str, *, autocast: bool
) -> str:
    """SELECT of ``schema``'s columns from ``files`` (hive-partitioned Delta files) filtered by ``where``.

    Columns the files do not have (results stored before a column was added) come out NULL, so a
    page keeps working until the next cycle rewrites them.
    """
    if not files:
        con.register(f"dash_{name}_none", schema.empty_table())
        return f"SELECT * FROM dash_{name}_none WHERE FALSE"
    listing = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    options = "hive_partitioning = true, union_by_name = true"
    if not autocast:
        options += ", hive_types_autocast = false"
    source = f"read_parquet({listing}, {options})"
    present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    columns = ", ".join(
        'CAST({} AS {}) AS "{}"'.format(f'"{f.name}"' if f.name in present else "NULL", _duck_type(f.type), f.name)
        for f in schema
    )
    return f"SELECT {columns} FROM {source} WHERE {where}"


def _duck_type(t: pa.DataType) -> str:
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision}, {t.scale})"
    if pa.types.is_int32(t):
        return "INTEGER"
    if pa.types.is_int64(t):
        return "BIGINT"
    if pa.types.is_date32(t):
        return "DATE"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    return "VARCHAR"


def warm_ondemand(home: Path, institutions: Sequence[str] | None = None) -> tuple[int, float]:
    """Compute every institution's on-demand reports of the current cycle state onto disk
    (``Dashboard.shared``), as the institution's own office would see them, so the first page
    after a cycle or a restart reads them instead of computing them. Returns (institutions, seconds).
    """
    from jicai.accounts.models import User  # noqa: PLC0415
    from jicai.accounts.permissions import RoleName  # noqa: PLC0415

    started = time.perf_counter()
    state = cycle_state(Path(home))
    if state is None:
        return 0, 0.0
    prune_ondemand(Path(home), state.get("run"))
    with use_scope(Scope.system("warm")):
        rows = list(Institution.objects.order_by("code"))
    wanted = set(institutions) if institutions is not None else None
    done = 0
    for inst in rows:
        code = inst.code
        if wanted is not None and code not in wanted:
            continue
        scope = User(username="warm", role=RoleName.VBP_OFFICE, institution=inst).scope()  # unsaved: a scope only
        with Dashboard(Path(home), scope) as d, use_scope(scope):
            if not d.current_agreements(code).num_rows:
                continue
            d.prepayments(code)
            d.department_progress(code)
        done += 1
    return done, time.perf_counter() - started
