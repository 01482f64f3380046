"""Overdue supplier payables (R-E1) kept up to date incrementally between monthly cycles.

``overdue_totals`` (payables.py) joins every purchase line with every payment on each run. Most lines
are settled for good, though: accepted on or before the as-of date and paid in full by then. Such a
*closed* row adds one line and nothing else to its institution's totals, and stays so while as-of
moves forward unless a negative payment (a refund) reaches it. So the state keeps:

* ``closed``: per institution the number of closed rows (and a region code);
* ``open`` rows, every other purchase row (not accepted yet, or not paid in full, or with a refund
  dated after as-of), with amount, due date (region rule, semantics.md "Supplier payment deadline"),
  the sum of its payments dated on or before the state's as-of, and ``n``, how many identical rows it
  stands for. They are split by the purchases' ``month`` partition (the acceptance month), one
  Parquet file each, plus a *summary* per month (lines and outstanding per institution, due date and
  paid-in-full flag) that gives the month's totals for any later as-of while none of its rows changes;
* ``held`` payments, not counted yet: dated after as-of on a line with an open row, and every payment
  of a line not in the store (imported before its purchase line: ``orphan``).

A closed row has no pending refund, so the payments the state drops (positive ones on closed lines)
could only keep it closed. When the facts moved on by pure appends (every file of the state's Delta
snapshot is still there), as-of did not go back and the rules are the same, the new rows are exactly
those of the added files, and a run costs about one month of facts: the months whose line-id range
holds a new payment's line are read, rows that change are merged with the new purchase rows and
payments in one join, and only months whose rows changed are rewritten; the others count through
their summaries. A purchase row repeating a known line id, or a refund, makes that line be recomputed
from all its rows and payments in the older files. Anything else (first run, correction, compaction,
as-of back, rules changed) rebuilds the state from every line. Either way the totals come from the
state with the arithmetic of ``overdue_totals``, hence the same table; ``region_code`` is
``any_value`` there as here, exact where an institution's lines share one region code (it is copied
from the institution at import).

Files in ``state_dir/data`` are immutable; ``state_dir/CURRENT`` (JSON: snapshot versions and files,
as-of, rules fingerprint, the files in force) is replaced atomically after the new files are written,
so an interrupted run leaves the previous state in force; unreferenced files are removed afterwards.
All work is DuckDB SQL on ``q``'s connection; new and old Delta files are read through
``FactQuery.files_view`` (scoped like the main views).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable

from jicai.core.tenancy import ScopeError
from jicai.facts.query import FactQuery
from jicai.facts.schemas import PAYMENTS, PURCHASES, FactTable
from jicai.facts.store import table_path
from jicai.monitoring.payables import OVERDUE_COLUMNS, OVERDUE_SCHEMA, RULES_RELATION, _rule_rows
from jicai.policy.payment_terms import PaymentRule

STATE_FORMAT = 6  # 6: fact file paths relative to the table root
CURRENT = "CURRENT"
DATA = "data"
_TABLES = (PURCHASES, PAYMENTS)
_FEW_MONTHS = 6  # reading this many months of open rows costs less than checking each month's id range

# Payments that can ever count: ``overdue_totals`` sums ``amount`` of payments with ``paid_on`` ≤ as-of
# joined on ``line_id``, so a row without line, date or amount never changes a total.
_COUNTABLE = "line_id IS NOT NULL AND paid_on IS NOT NULL AND amount IS NOT NULL"
_AS_OF = "$as_of"  # replaced by the as-of date literal (views take no parameters)

_OPEN_TYPES = (
    "line_id VARCHAR, institution_code VARCHAR, region_code VARCHAR, accepted_on DATE, due_on DATE, "
    "amount DECIMAL(18, 2), paid DECIMAL(18, 2), n BIGINT"
)
_OPEN_COLUMNS = "line_id, institution_code, region_code, accepted_on, due_on, amount, paid, n"
_SUMMARY_TYPES = (
    "institution_code VARCHAR, region_code VARCHAR, due_on DATE, underpaid BOOLEAN, lines BIGINT, "
    "outstanding DECIMAL(38, 2)"
)
_SUMMARY_COLUMNS = "institution_code, region_code, due_on, underpaid, lines, outstanding"
_HELD_TYPES = "line_id VARCHAR, paid_on DATE, amount DECIMAL(18, 2), orphan BOOLEAN"
_CLOSED_TYPES = "institution_code VARCHAR, region_code VARCHAR, lines BIGINT"
# Typed empty relations standing in for an empty file list.
_EMPTY = {
    "_pst_e_open": f"{_OPEN_TYPES}, part VARCHAR",
    "_pst_e_summary": _SUMMARY_TYPES,
    "_pst_e_held": _HELD_TYPES,
    "_pst_e_closed": _CLOSED_TYPES,
}
# Outstanding of a group of open rows: per row as ``_payables_sql`` computes it, times ``n``.
_OUTSTANDING = "CAST(sum(CAST(greatest(amount - paid, 0) AS DECIMAL(18, 2)) * n) AS DECIMAL(38, 2))"
_REACHED_SCHEMA = pa.schema([("part", pa.string()), ("count", pa.int64())])


@dataclass(frozen=True)
class Part:
    """One month of open rows: row file, summary file, latest acceptance, row count, line-id range."""

    rows: str
    summary: str
    max_accepted: dt.date | None
    count: int
    low: str | None  # smallest and largest line id (None: the month's rows have none)
    high: str | None


@dataclass(frozen=True)
class State:
    """What ``CURRENT`` records: the snapshot and as-of the files in force cover."""

    as_of: dt.date
    rules: str
    versions: dict[str, int | None]
    files: dict[str, list[str]]
    closed: str
    held: str
    parts: dict[str, Part] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "as_of": self.as_of.isoformat(),
            "rules": self.rules,
            "versions": self.versions,
            "files": self.files,
            "closed": self.closed,
            "held": self.held,
            "parts": {
                name: {
                    "rows": p.rows,
                    "summary": p.summary,
                    "max_accepted": p.max_accepted.isoformat() if p.max_accepted else None,
                    "count": p.count,
                    "low": p.low,
                    "high": p.high,
                }
                for name, p in sorted(self.parts.items())
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> State:
        return cls(
            as_of=dt.date.fromisoformat(data["as_of"]),
            rules=str(data["rules"]),
            versions={str(k): (None if v is None else int(v)) for k, v in data["versions"].items()},
            files={str(k): [str(f) for f in v] for k, v in data["files"].items()},
            closed=str(data["closed"]),
            held=str(data["held"]),
            parts={
                str(name): Part(
                    rows=str(p["rows"]),
                    summary=str(p["summary"]),
                    max_accepted=dt.date.fromisoformat(p["max_accepted"]) if p["max_accepted"] else None,
                    count=int(p["count"]),
                    low=None if p["low"] is None else str(p["low"]),
                    high=None if p["high"] is None else str(p["high"]),
                )
                for name, p in data["parts"].items()
            },
        )

    def referenced(self) -> set[str]:
        return {self.closed, self.held, *(f for p in self.parts.values() for f in (p.rows, p.summary))}


def _lines_sql(source: str) -> str:
    """Rows of ``source`` with amount and due date as ``_payables_sql`` computes them (R-E1), and month."""
    return f"""
        WITH regions AS (SELECT DISTINCT region_code FROM {source}),
        region_rule AS (
            SELECT g.region_code,
                   arg_max(r.kind, length(r.prefix)) AS kind,
                   arg_max(r.days, length(r.prefix)) AS days
            FROM regions g JOIN {RULES_RELATION} r ON starts_with(coalesce(g.region_code, ''), r.prefix)
            GROUP BY g.region_code
        )
        SELECT p.line_id, p.institution_code, p.region_code, p.accepted_on,
               CAST(coalesce(p.amount, round(p.qty * p.unit_price, 2), 0) AS DECIMAL(18, 2)) AS amount,
               CASE WHEN rr.kind = 'days' THEN p.accepted_on + rr.days
                    ELSE CAST(last_day(p.accepted_on + INTERVAL 1 MONTH) AS DATE) END AS due_on,
               coalesce(p.month, 'none') AS part
        FROM {source} p
        LEFT JOIN region_rule rr ON rr.region_code IS NOT DISTINCT FROM p.region_code
    """


# Full build: one pass over every line and payment; only the rows that are not closed are kept (and
# payment line ids matching no purchase row: orphans). Closed rows are counted as all rows less those.
_FULL_SQL = f"""
    CREATE TEMP TABLE _pst_full AS
    WITH pay AS (
        SELECT line_id,
               sum(amount) FILTER (WHERE paid_on <= {_AS_OF}) AS paid,
               count(*) FILTER (WHERE paid_on > {_AS_OF}) AS pending,
               count(*) FILTER (WHERE paid_on > {_AS_OF} AND amount < 0) AS negative
        FROM payments WHERE {_COUNTABLE}
        GROUP BY line_id
    )
    SELECT * FROM (
        SELECT coalesce(l.line_id, pay.line_id) AS line_id, l.institution_code, l.region_code, l.accepted_on,
               l.due_on, l.amount, CAST(coalesce(pay.paid, 0) AS DECIMAL(18, 2)) AS paid,
               CAST(1 AS BIGINT) AS n, l.part,
               coalesce(pay.pending, 0) > 0 AS pending,
               CASE WHEN l.present IS NULL THEN 'orphan'
                    WHEN l.accepted_on <= {_AS_OF} AND coalesce(pay.paid, 0) >= l.amount
                         AND coalesce(pay.negative, 0) = 0 THEN 'closed'
                    ELSE 'open' END AS kind
        FROM (SELECT *, TRUE AS present FROM ({_lines_sql("purchases")})) l
        FULL JOIN pay ON pay.line_id = l.line_id
    ) WHERE kind <> 'closed'
"""

_FULL_NEXT_SQL = (
    """CREATE TEMP TABLE _pst_closed_next AS
       SELECT institution_code, any_value(region_code) AS region_code, CAST(sum(n) AS BIGINT) AS lines FROM (
           SELECT institution_code, region_code, 1 AS n FROM purchases
           UNION ALL SELECT institution_code, NULL, -1 FROM _pst_full WHERE kind = 'open'
       ) GROUP BY institution_code HAVING sum(n) <> 0""",
    f"CREATE TEMP VIEW _pst_rows_next AS SELECT {_OPEN_COLUMNS}, part FROM _pst_full WHERE kind = 'open'",
    "CREATE TEMP TABLE _pst_touched AS SELECT DISTINCT part FROM _pst_full WHERE kind = 'open'",
    """CREATE TEMP TABLE _pst_held_lines AS
       SELECT line_id, bool_or(kind = 'orphan') AS orphan FROM _pst_full
       WHERE line_id IS NOT NULL AND (kind = 'orphan' OR pending) GROUP BY line_id""",
)

# Incremental merge. Old = the state's snapshot files, new = the files added since. ``_pst_reach``
# holds the open rows of the months a payment now may reach, ``_pst_held`` and ``_pst_closed`` are
# the state's others.
_NEW_SQL = (
    f"CREATE TEMP VIEW _pst_np AS {_lines_sql('_pst_new_purchases')}",
    f"CREATE TEMP VIEW _pst_ny AS SELECT line_id, paid_on, amount FROM _pst_new_payments WHERE {_COUNTABLE}",
    # Line ids whose open rows take payments now (held ones dated later wait, their rows stay put).
    f"""CREATE TEMP VIEW _pst_pm AS
        SELECT line_id FROM _pst_ny
        UNION ALL SELECT line_id FROM _pst_held WHERE NOT orphan AND paid_on <= {_AS_OF}""",
    # Lines to recompute if the older files have them: repeated line ids and refunds.
    """CREATE TEMP VIEW _pst_cand AS
       SELECT line_id FROM _pst_new_purchases WHERE line_id IS NOT NULL
       UNION ALL SELECT line_id FROM _pst_ny WHERE amount < 0""",
)

_RECOMPUTE_SQL = (
    "CREATE TEMP TABLE _pst_t2 AS SELECT * FROM _pst_open_rows SEMI JOIN _pst_mat USING (line_id)",
    f"""CREATE TEMP TABLE _pst_matpay AS
        SELECT line_id, paid_on, amount FROM _pst_old_payments SEMI JOIN _pst_mat USING (line_id)
        WHERE {_COUNTABLE}""",
    # Closed rows of recomputed lines leave the counts: all their old rows minus the tracked ones.
    """CREATE TEMP TABLE _pst_adjust AS
       SELECT institution_code, sum(c) AS lines FROM (
           SELECT institution_code, count(*) AS c FROM _pst_found GROUP BY ALL
           UNION ALL SELECT institution_code, -sum(n) FROM _pst_t2 GROUP BY ALL
       ) GROUP BY ALL""",
    f"CREATE TEMP VIEW _pst_found_lines AS {_lines_sql('_pst_found')}",
)

_NO_RECOMPUTE_SQL = (
    "CREATE TEMP TABLE _pst_t2 AS SELECT * FROM _pst_e_open",
    "CREATE TEMP TABLE _pst_matpay AS SELECT line_id, paid_on, amount FROM _pst_e_held",
    "CREATE TEMP TABLE _pst_adjust (institution_code VARCHAR, lines BIGINT)",
    f"CREATE TEMP VIEW _pst_found_lines AS SELECT {_OPEN_COLUMNS.replace(', paid, n', '')}, part FROM _pst_e_open",
)

_MERGE_SQL = (
    # Payments to apply, tagged by where they come from (the state's held ones, or new / re-read).
    """CREATE TEMP VIEW _pst_pay AS
       SELECT line_id, paid_on, amount, TRUE AS held, orphan FROM _pst_held ANTI JOIN _pst_mat USING (line_id)
       UNION ALL SELECT line_id, paid_on, amount, FALSE, FALSE FROM _pst_ny
       UNION ALL SELECT line_id, paid_on, amount, FALSE, FALSE FROM _pst_matpay""",
    # The rows that may change: every open row of the months payments reach (``old``), recomputed
    # lines and new purchase rows.
    """CREATE TEMP VIEW _pst_w AS
       SELECT line_id, institution_code, region_code, accepted_on, due_on, amount, paid AS base, n, part,
              TRUE AS old
       FROM _pst_reach ANTI JOIN _pst_mat USING (line_id)
       UNION ALL
       SELECT line_id, institution_code, region_code, accepted_on, due_on, amount, 0, 1, part, FALSE
       FROM _pst_found_lines
       UNION ALL
       SELECT line_id, institution_code, region_code, accepted_on, due_on, amount, 0, 1, part, FALSE FROM _pst_np""",
    # Their new paid amount, except those now closed (counted through _pst_wcount); payment lines
    # without such a row come out with NULL rows (``present`` NULL).
    f"""CREATE TEMP TABLE _pst_next AS
        WITH a AS (
            SELECT line_id, CAST(sum(amount) FILTER (WHERE paid_on <= {_AS_OF}) AS DECIMAL(18, 2)) AS paid,
                   count(*) FILTER (WHERE paid_on > {_AS_OF} AND amount < 0) AS negative,
                   bool_or(held) AS held, bool_or(orphan) AS orphan
            FROM _pst_pay GROUP BY line_id
        )
        SELECT * EXCLUDE (closed) FROM (
            SELECT w.line_id, w.institution_code, w.region_code, w.accepted_on, w.due_on, w.amount, w.n, w.part,
                   w.old, w.present, a.line_id IS NOT NULL AS hit, a.line_id AS pay_line, a.held, a.orphan,
                   CAST(coalesce(w.base, 0) + coalesce(a.paid, 0) AS DECIMAL(18, 2)) AS paid,
                   coalesce(w.accepted_on <= {_AS_OF} AND coalesce(w.base, 0) + coalesce(a.paid, 0) >= w.amount
                            AND coalesce(a.negative, 0) = 0, FALSE) AS closed
            FROM (SELECT *, TRUE AS present FROM _pst_w) w
            FULL JOIN a ON a.line_id = w.line_id
        ) WHERE NOT closed""",
    """CREATE TEMP TABLE _pst_wcount AS
       SELECT institution_code, any_value(region_code) AS region_code, sum(n) AS n FROM (
           SELECT institution_code, region_code, n FROM _pst_reach ANTI JOIN _pst_mat USING (line_id)
           UNION ALL SELECT institution_code, region_code, 1 FROM _pst_found
           UNION ALL SELECT institution_code, region_code, 1 FROM _pst_new_purchases
       ) GROUP BY ALL""",
    # Payment lines with no such row: held ones stay (orphans, or later payments of open rows in
    # months not read); new ones are looked up next (known line: closed for good, else an orphan).
    """CREATE TEMP TABLE _pst_unmatched AS
       SELECT pay_line AS line_id, held, orphan FROM _pst_next WHERE present IS NULL""",
)

_NEXT_SQL = (
    """CREATE TEMP TABLE _pst_closed_next AS
       SELECT institution_code, any_value(region_code) AS region_code, CAST(sum(lines) AS BIGINT) AS lines
       FROM (
           SELECT institution_code, region_code, lines FROM _pst_closed
           UNION ALL SELECT institution_code, NULL, -lines FROM _pst_adjust
           UNION ALL SELECT institution_code, region_code, n FROM _pst_wcount
           UNION ALL SELECT institution_code, NULL, -n FROM _pst_next WHERE present
       ) GROUP BY institution_code HAVING sum(lines) <> 0""",
    f"""CREATE TEMP TABLE _pst_held_next AS
        SELECT line_id, paid_on, amount, FALSE AS orphan FROM _pst_pay
        WHERE paid_on > {_AS_OF} AND line_id IN (SELECT line_id FROM _pst_next WHERE present AND line_id IS NOT NULL)
        UNION ALL
        SELECT p.line_id, p.paid_on, p.amount, coalesce(u.orphan, FALSE) OR NOT coalesce(u.held, FALSE)
        FROM _pst_pay p JOIN _pst_unmatched u ON u.line_id = p.line_id
        WHERE u.held OR u.line_id NOT IN (SELECT line_id FROM _pst_known)""",
    # Months to rewrite: a month read where a row took a payment or closed (fewer rows are left than
    # it had), a month new or recomputed rows go to, a month recomputed rows leave.
    """CREATE TEMP TABLE _pst_touched AS
       SELECT part FROM _pst_next WHERE present AND (hit OR NOT old)
       UNION SELECT part FROM _pst_t2
       UNION SELECT r.part FROM _pst_reached r
             LEFT JOIN (SELECT part, count(*) AS c FROM _pst_next WHERE present AND old GROUP BY part) x USING (part)
             WHERE coalesce(x.c, 0) < r.count""",
)

# Per rewritten month: its summary (every accepted row; stored with it) and its row count, latest
# acceptance and line-id range. While the latest acceptance is on or before as-of, the summary gives
# the month's totals.
_SUMMARY_SQL = (
    f"""CREATE TEMP TABLE _pst_summary_next AS
        SELECT part, institution_code, region_code, due_on, paid < amount AS underpaid,
               CAST(sum(n) AS BIGINT) AS lines, {_OUTSTANDING} AS outstanding
        FROM _pst_rows_next WHERE accepted_on IS NOT NULL GROUP BY ALL""",
    """CREATE TEMP TABLE _pst_meta AS
       SELECT part, max(accepted_on) AS max_accepted, count(*) AS count, min(line_id) AS low, max(line_id) AS high
       FROM _pst_rows_next GROUP BY part""",
)

# Totals from summaries (lines and outstanding per institution, due date, paid-in-full flag) with the
# per-line arithmetic of ``_payables_sql`` and the aggregation of ``overdue_totals``: overdue when
# as-of is past the due date and not paid in full; a closed row is one line, 0 outstanding, 0 days.
_TOTALS_SQL = f"""
    WITH s AS (SELECT *, underpaid AND {_AS_OF} > due_on AS overdue FROM _pst_summary_all),
    parts AS (
        SELECT institution_code, region_code, lines,
               CASE WHEN overdue THEN lines ELSE 0 END AS overdue_lines,
               outstanding,
               CASE WHEN overdue THEN outstanding ELSE CAST(0 AS DECIMAL(38, 2)) END AS overdue_amount,
               CAST(CASE WHEN overdue THEN {_AS_OF} - due_on ELSE 0 END AS INTEGER) AS days_overdue
        FROM s
        UNION ALL
        SELECT institution_code, region_code, lines, 0, CAST(0 AS DECIMAL(38, 2)), CAST(0 AS DECIMAL(38, 2)), 0
        FROM _pst_closed_next
    )
    SELECT institution_code, any_value(region_code) AS region_code,
           CAST(sum(lines) AS BIGINT) AS lines,
           CAST(sum(overdue_lines) AS BIGINT) AS overdue_lines,
           CAST(sum(outstanding) AS DECIMAL(18, 2)) AS outstanding,
           CAST(sum(overdue_amount) AS DECIMAL(18, 2)) AS overdue_amount,
           CAST(max(days_overdue) AS INTEGER) AS max_days_overdue
    FROM parts
    GROUP BY institution_code
    ORDER BY overdue_amount DESC, institution_code
"""


def _bind(sql: str, as_of: dt.date) -> str:
    return sql.replace(_AS_OF, f"DATE '{as_of.isoformat()}'")


def _count(q: FactQuery, relation: str, expr: str = "count(*)") -> int:
    rows = q.con.execute(f"SELECT {expr} FROM {relation}").fetchall()
    return int(rows[0][0] or 0) if rows else 0


def _quote(text: Path | str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _parquet(files: Sequence[Path], empty: str) -> str:
    """A relation over ``files``, or the empty typed table ``empty`` when there are none."""
    if not files:
        return f"SELECT * FROM {empty}"
    return "SELECT * FROM read_parquet([" + ", ".join(_quote(f) for f in files) + "])"


def _open_rows(data: Path, parts: Mapping[str, Part]) -> str:
    """The open rows of ``parts`` with their month (a file's rows all belong to its month)."""
    if not parts:
        return "SELECT * FROM _pst_e_open"
    return " UNION ALL ".join(
        f"SELECT *, {_quote(name)} AS part FROM read_parquet({_quote(data / p.rows)})" for name, p in parts.items()
    )


def rules_fingerprint(rules: Mapping[str, PaymentRule]) -> str:
    """Digest of the rule rows SQL sees: a changed rule changes due dates, so the state is rebuilt."""
    rows = sorted(_rule_rows(rules).to_pylist(), key=lambda r: str(r["prefix"]))
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()


def _snapshot(q: FactQuery, table: FactTable) -> tuple[int | None, list[str]]:
    """The version and files behind ``q``'s view of ``table`` (the version it opened, not a newer one)."""
    version = q.versions.get(table.name)
    if version is None:
        return None, []
    return version, list(DeltaTable(str(table_path(q.home, table)), version=version).file_uris())


def _relative(q: FactQuery, table: FactTable, files: Sequence[str]) -> list[str]:
    """File URIs relative to the table's root, as ``CURRENT`` keeps them: a moved or copied
    ``JICAI_HOME`` keeps its state."""
    root = str(table_path(q.home, table)).rstrip("/") + "/"
    return [f[len(root) :] if f.startswith(root) else f for f in files]


def _absolute(q: FactQuery, table: FactTable, files: Sequence[str]) -> list[str]:
    root = str(table_path(q.home, table)).rstrip("/")
    return [f if f.startswith("/") or "://" in f else f"{root}/{f}" for f in files]


def load_state(state_dir: Path) -> State | None:
    """The state in force, or None when there is none (or it cannot be read: then it is rebuilt)."""
    try:
        data = json.loads((Path(state_dir) / CURRENT).read_text())
        if data.get("format") != STATE_FORMAT:
            return None
        state = State.from_json(data)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not all((Path(state_dir) / DATA / f).is_file() for f in state.referenced()):
        return None
    return state


def _why_full(
    state: State | None, snapshot: dict[str, tuple[int | None, list[str]]], as_of: dt.date, rules: str
) -> str | None:
    """Why the state cannot be advanced to this snapshot and as-of (None: it can)."""
    if state is None:
        return "no usable state"
    if state.rules != rules:
        return "payment rules changed"
    if as_of < state.as_of:
        return f"as-of moved back ({state.as_of} → {as_of})"
    for table in _TABLES:
        old_version = state.versions.get(table.name)
        version, files = snapshot[table.name]
        if old_version is not None and (version is None or version < old_version):
            return f"{table.name}: version went back"
        if not set(state.files.get(table.name, [])) <= set(files):
            return f"{table.name}: files removed since version {old_version} (correction, compaction or rewrite)"
    return None


class _Session:
    """The temporary relations of one call on ``q``'s connection, dropped at the end."""

    def __init__(self, q: FactQuery, as_of: dt.date) -> None:
        self.q = q
        self.as_of = as_of
        self.views: list[str] = []
        self.tables: list[str] = []
        self.registered: list[str] = []

    def run(self, sql: str) -> None:
        words = sql.split(None, 4)
        if words[:2] == ["CREATE", "TEMP"]:
            (self.views if words[2] == "VIEW" else self.tables).append(words[3])
        self.q.con.execute(_bind(sql, self.as_of))

    def view(self, name: str, table: str, files: Sequence[str]) -> None:
        self.q.files_view(name, table, files)
        self.views.append(name)

    def register(self, name: str, data: pa.Table) -> None:
        self.q.register(name, data)
        self.registered.append(name)

    def close(self) -> None:
        for name in reversed(self.views):
            self.q.con.execute(f"DROP VIEW IF EXISTS {name}")
        for name in reversed(self.tables):
            self.q.con.execute(f"DROP TABLE IF EXISTS {name}")
        for name in self.registered:
            self.q.con.unregister(name)


def _lookup(s: _Session, target: str, ids: str) -> None:
    """``target`` = old purchase rows whose line id is in ``ids``; cheap when none can be there.

    The old files' min/max statistics answer first whether any row falls in the ids' range (new
    line ids usually sort after the old ones); otherwise the semi join's key range prunes the scan.
    """
    low, high = s.q.con.execute(f"SELECT min(line_id), max(line_id) FROM {ids}").fetchall()[0]
    hit = (
        low is not None
        and s.q.con.execute(
            "SELECT count(*) FROM (SELECT 1 FROM _pst_old_purchases WHERE line_id BETWEEN ? AND ? LIMIT 1)", [low, high]
        ).fetchall()[0][0]
    )
    where = f"SEMI JOIN {ids} USING (line_id)" if hit else "WHERE FALSE"
    s.run(f"CREATE TEMP TABLE {target} AS SELECT * FROM _pst_old_purchases {where}")


def _reachable_parts(s: _Session, state: State) -> list[str]:
    """Months holding an open row some payment now may be for: its line id is in the month's range.

    Line ids mostly grow with time, so a month of new payments reaches the latest few months. The
    payments' overall id range answers at once; when it spans many months (a straggler paid years
    late) each month's range is checked against the ids.
    """
    low, high = s.q.con.execute("SELECT min(line_id), max(line_id) FROM _pst_pm").fetchall()[0]
    if low is None:
        return []
    ranges = [
        {"part": name, "low": p.low, "high": p.high}
        for name, p in state.parts.items()
        if p.low is not None and p.high is not None and p.low <= high and p.high >= low
    ]
    if len(ranges) <= _FEW_MONTHS:
        return sorted(str(r["part"]) for r in ranges)
    s.register("_pst_ranges", pa.Table.from_pylist(ranges))
    rows = s.q.con.execute(
        "SELECT r.part FROM _pst_ranges r "
        "WHERE EXISTS (SELECT 1 FROM _pst_pm m WHERE m.line_id BETWEEN r.low AND r.high)"
    ).fetchall()
    return sorted(str(r[0]) for r in rows)


def _build(s: _Session) -> None:
    """The state from every line and payment of the snapshot (every month is written)."""
    s.run(_FULL_SQL)
    for sql in _FULL_NEXT_SQL:
        s.run(sql)
    if _count(s.q, "_pst_held_lines"):
        s.run(
            "CREATE TEMP TABLE _pst_held_next AS SELECT y.line_id, y.paid_on, y.amount, h.orphan "
            f"FROM (SELECT * FROM payments WHERE {_COUNTABLE}) y JOIN _pst_held_lines h ON h.line_id = y.line_id "
            f"WHERE h.orphan OR y.paid_on > {_AS_OF}"
        )
    else:
        s.run("CREATE TEMP TABLE _pst_held_next AS SELECT * FROM _pst_e_held")


def _advance(
    s: _Session, state: State, data: Path, snapshot: dict[str, tuple[int | None, list[str]]]
) -> dict[str, int]:
    """Merge the rows of the files added since the state's snapshot into the state (see module doc)."""
    for table in _TABLES:
        old = state.files.get(table.name, [])
        known = set(old)
        s.view(f"_pst_new_{table.name}", table.name, [f for f in snapshot[table.name][1] if f not in known])
        s.view(f"_pst_old_{table.name}", table.name, old)
    s.run(f"CREATE TEMP VIEW _pst_open_rows AS {_open_rows(data, state.parts)}")
    s.run(f"CREATE TEMP TABLE _pst_held AS {_parquet([data / state.held], '_pst_e_held')}")
    s.run(f"CREATE TEMP TABLE _pst_closed AS {_parquet([data / state.closed], '_pst_e_closed')}")
    for sql in _NEW_SQL:
        s.run(sql)
    reached = _reachable_parts(s, state)
    s.run(f"CREATE TEMP VIEW _pst_reach AS {_open_rows(data, {p: state.parts[p] for p in reached})}")
    counts = [{"part": p, "count": state.parts[p].count} for p in reached]
    s.register("_pst_reached", pa.Table.from_pylist(counts, schema=_REACHED_SCHEMA))
    _lookup(s, "_pst_found", "_pst_cand")
    s.run("CREATE TEMP TABLE _pst_mat AS SELECT DISTINCT line_id FROM _pst_found")
    recomputed = _count(s.q, "_pst_mat")
    for sql in _RECOMPUTE_SQL if recomputed else _NO_RECOMPUTE_SQL:
        s.run(sql)
    for sql in _MERGE_SQL:
        s.run(sql)
    # New payments of lines that are neither open nor new: a known line is closed for good (they are
    # not refunds: those were recomputed), an unknown one waits as an orphan.
    s.run("CREATE TEMP TABLE _pst_newcomers AS SELECT line_id FROM _pst_unmatched WHERE NOT held")
    _lookup(s, "_pst_known_rows", "_pst_newcomers")
    s.run("CREATE TEMP TABLE _pst_known AS SELECT DISTINCT line_id FROM _pst_known_rows")
    for sql in _NEXT_SQL:
        s.run(sql)
    touched = [str(r[0]) for r in s.q.con.execute("SELECT part FROM _pst_touched").fetchall()]
    # A rewritten month keeps its rows that do not change; those of months read are in _pst_next.
    others = {p: state.parts[p] for p in touched if p in state.parts and p not in reached}
    s.run(
        f"""CREATE TEMP VIEW _pst_rows_next AS
            SELECT {_OPEN_COLUMNS}, part FROM _pst_next WHERE present AND part IN (SELECT part FROM _pst_touched)
            UNION ALL
            SELECT {_OPEN_COLUMNS}, part FROM ({_open_rows(data, others)})
            WHERE line_id IS NULL OR line_id NOT IN (SELECT line_id FROM _pst_mat)"""
    )
    return {
        "new_purchase_rows": _count(s.q, "_pst_new_purchases"),
        "new_payment_rows": _count(s.q, "_pst_ny"),
        "recomputed_lines": recomputed,
        "closed_lines_paid": _count(s.q, "_pst_known"),
        "months_read": len(reached),
        "months_rewritten": len(touched),
    }


def _unchanged(s: _Session, state: State, data: Path) -> None:
    """The state's own closed counts, and nothing rewritten."""
    s.run(f"CREATE TEMP TABLE _pst_closed_next AS {_parquet([data / state.closed], '_pst_e_closed')}")
    s.run("CREATE TEMP TABLE _pst_touched (part VARCHAR)")
    s.run("CREATE TEMP VIEW _pst_rows_next AS SELECT * FROM _pst_e_open")


def _summaries(s: _Session, state: State | None, data: Path) -> tuple[dict[str, Part], list[str]]:
    """Every month's summary rows as of as-of in ``_pst_summary_all`` (rewritten months from memory).

    Returns the parts kept from ``state`` and the names of the rewritten months.
    """
    touched = sorted(str(r[0]) for r in s.q.con.execute("SELECT part FROM _pst_touched").fetchall())
    kept = {name: p for name, p in (state.parts.items() if state else []) if name not in touched}
    for sql in _SUMMARY_SQL:
        s.run(sql)
    # A month whose rows are all accepted by as-of counts through its summary; one with rows accepted
    # later (as-of inside the month) is summarised from its rows accepted by then.
    complete = [data / p.summary for p in kept.values() if p.max_accepted and p.max_accepted <= s.as_of]
    partial = {n: p for n, p in kept.items() if p.max_accepted and p.max_accepted > s.as_of}
    s.run(
        f"""CREATE TEMP TABLE _pst_summary_all AS
            SELECT {_SUMMARY_COLUMNS} FROM ({_parquet(complete, "_pst_e_summary")})
            UNION ALL
            SELECT {_SUMMARY_COLUMNS} FROM _pst_summary_next JOIN _pst_meta USING (part)
            WHERE max_accepted <= {_AS_OF}
            UNION ALL
            SELECT institution_code, region_code, due_on, paid < amount, CAST(sum(n) AS BIGINT), {_OUTSTANDING}
            FROM (
                SELECT {_OPEN_COLUMNS} FROM ({_open_rows(data, partial)})
                UNION ALL
                SELECT {_OPEN_COLUMNS} FROM _pst_rows_next JOIN _pst_meta USING (part) WHERE max_accepted > {_AS_OF}
            )
            WHERE accepted_on <= {_AS_OF} GROUP BY ALL"""
    )
    return kept, touched


def _write(s: _Session, data: Path, kept: dict[str, Part], touched: list[str]) -> tuple[str, str, dict[str, Part]]:
    """Write the new files (nothing in force changes yet); returns closed, held and all parts."""
    data.mkdir(parents=True, exist_ok=True)

    def copy(relation: str, kind: str) -> str:
        name = f"{kind}-{uuid.uuid4().hex}.parquet"
        s.q.con.execute(f"COPY ({relation}) TO {_quote(data / name)} (FORMAT parquet)")
        return name

    parts = dict(kept)
    meta = {str(r[0]): r[1:] for r in s.q.con.execute("SELECT * FROM _pst_meta").fetchall()}
    for name in touched:
        if name not in meta:
            continue  # every row of the month closed
        where = f"part = {_quote(name)}"
        max_accepted, count, low, high = meta[name]
        parts[name] = Part(
            rows=copy(f"SELECT {_OPEN_COLUMNS} FROM _pst_rows_next WHERE {where}", "open"),
            summary=copy(f"SELECT {_SUMMARY_COLUMNS} FROM _pst_summary_next WHERE {where}", "summary"),
            max_accepted=max_accepted,
            count=int(count),
            low=low,
            high=high,
        )
    return copy("SELECT * FROM _pst_closed_next", "closed"), copy("SELECT * FROM _pst_held_next", "held"), parts


def _publish(state_dir: Path, state: State) -> None:
    """Put the written files in force by replacing ``CURRENT`` atomically, then drop unreferenced ones."""
    tmp = state_dir / f"{CURRENT}.{uuid.uuid4().hex}.tmp"
    with tmp.open("w") as fh:
        json.dump(state.to_json(), fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, state_dir / CURRENT)
    referenced = state.referenced()
    for child in (state_dir / DATA).iterdir():
        if child.name not in referenced:
            child.unlink(missing_ok=True)
    for child in state_dir.glob(f"{CURRENT}.*.tmp"):
        child.unlink(missing_ok=True)


def overdue_totals_incremental(
    q: FactQuery, as_of: dt.date, *, rules: Mapping[str, PaymentRule], state_dir: Path
) -> tuple[pa.Table, dict[str, Any]]:
    """``overdue_totals(q, as_of, rules=rules)`` (R-E1), from the state in ``state_dir`` when it can be.

    Returns the same table and ``info``: ``mode`` ("full" or "incremental"), ``reason``, ``seconds``,
    ``open_lines`` (rows the state keeps in full), ``held_payments`` and a few counts. ``q`` must be
    system-scoped: the state covers every territory.
    """
    started = time.perf_counter()
    if not q.scope.is_system:
        raise ScopeError("incremental payables keep a province-wide state: use a system scope")
    state_dir = Path(state_dir)
    data = state_dir / DATA
    fingerprint = rules_fingerprint(rules)
    snapshot = {table.name: _snapshot(q, table) for table in _TABLES}
    state = load_state(state_dir)
    if state is not None:
        state = dataclasses.replace(
            state, files={t.name: _absolute(q, t, state.files.get(t.name, [])) for t in _TABLES}
        )
    reason = _why_full(state, snapshot, as_of, fingerprint)
    q.register(RULES_RELATION, _rule_rows(rules))
    info: dict[str, Any] = {"mode": "full" if reason else "incremental", "reason": reason or ""}
    s = _Session(q, as_of)
    try:
        for name, types in _EMPTY.items():
            s.run(f"CREATE TEMP TABLE {name} ({types})")
        unchanged = False
        if reason is None and state is not None:
            unchanged = state.as_of == as_of and all(
                set(state.files.get(t.name, [])) == set(snapshot[t.name][1]) for t in _TABLES
            )
            if unchanged:
                info["reason"] = "no new facts, same as-of"
                _unchanged(s, state, data)
            else:
                info["reason"] = "appended facts" if as_of == state.as_of else "appended facts, later as-of"
                info.update(_advance(s, state, data, snapshot))
        else:
            state = None
            _build(s)
        kept, touched = _summaries(s, state, data)
        table = q.con.sql(_bind(_TOTALS_SQL, as_of)).to_arrow_table()
        info["open_lines"] = sum(p.count for p in kept.values()) + _count(q, "_pst_meta", "sum(count)")
        if not unchanged:
            closed, held, parts = _write(s, data, kept, touched)
            info["held_payments"] = _count(q, "_pst_held_next")
            _publish(
                state_dir,
                State(
                    as_of=as_of,
                    rules=fingerprint,
                    versions={name: version for name, (version, _files) in snapshot.items()},
                    files={t.name: _relative(q, t, snapshot[t.name][1]) for t in _TABLES},
                    closed=closed,
                    held=held,
                    parts=parts,
                ),
            )
    finally:
        s.close()
    info["seconds"] = time.perf_counter() - started
    return table.select(list(OVERDUE_COLUMNS)).cast(OVERDUE_SCHEMA), info
