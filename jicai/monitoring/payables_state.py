"""Overdue supplier payables (R-E1) kept up to date incrementally between monthly cycles.

``overdue_totals`` (payables.py) joins every purchase line with every payment on each run. Most lines
are settled for good, though: accepted on or before the as-of date and paid in full by then. Such a
*closed* row adds one line and nothing else to its institution's totals, and stays so while as-of
moves forward unless a negative payment (a refund) reaches it. So the state keeps:

* ``closed``: per institution the number of closed rows (and a region code);
* ``open`` rows, every other purchase row (not accepted yet, or not paid in full, or with a refund
  dated after as-of), with amount, due date (region rule, semantics.md "Supplier payment deadline"),
  the sum of its payments dated on or before the state's as-of, and ``n``, how many identical rows it
  stands for. They are split by acceptance month, one Parquet file each sorted by line id, plus a
  *summary* per month (lines and outstanding per institution, due date and paid-in-full flag), which
  gives the month's totals for any later as-of while none of its rows changes;
* ``held`` payments, not counted yet: dated after as-of on a line with an open row, and every payment
  of a line not in the store (imported before its purchase line: ``orphan``).

A closed row has no pending refund, so the payments the state drops (positive ones on closed lines)
could only keep it closed. When the facts moved on by pure appends (every file of the state's Delta
snapshot is still there), as-of did not go back and the rules are the same, the new rows are exactly
those of the added files, and one run costs about the new month: new payments find their open rows
(the line-id range of the payments prunes the other months' files), only the months whose rows
change are rewritten, the others count through their summaries. A purchase row repeating a known
line id, or a refund, makes that line be recomputed from all its rows and payments in the older
files. Anything else (first run, correction, compaction, as-of back, rules changed) rebuilds the
state from every line. Either way the totals come from the state with the arithmetic of
``overdue_totals``, hence the same table; ``region_code`` is ``any_value`` there as here, exact where
an institution's lines share one region code (it is copied from the institution at import).

Files in ``state_dir/data`` are immutable; ``state_dir/CURRENT`` (JSON: snapshot versions and files,
as-of, rules fingerprint, the files in force) is replaced atomically after the new files are written,
so an interrupted run leaves the previous state in force; unreferenced files are removed afterwards.
"""

from __future__ import annotations

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

STATE_FORMAT = 2
CURRENT = "CURRENT"
DATA = "data"
_TABLES = (PURCHASES, PAYMENTS)
_FEW_MONTHS = 6  # reading this many months of open rows costs less than checking each month's id range
_NONE = "none"  # partition of rows without acceptance date: never counted, kept for their payments

# Payments that can ever count: ``overdue_totals`` sums ``amount`` of payments with ``paid_on`` ≤ as-of
# joined on ``line_id``, so a row without line, date or amount never changes a total.
_COUNTABLE = "line_id IS NOT NULL AND paid_on IS NOT NULL AND amount IS NOT NULL"
_AS_OF = "CAST($as_of AS DATE)"
_PART = f"coalesce(strftime(accepted_on, '%Y-%m'), '{_NONE}')"

_OPEN_TYPES = (
    "line_id VARCHAR, institution_code VARCHAR, region_code VARCHAR, accepted_on DATE, due_on DATE, "
    "amount DECIMAL(18, 2), paid DECIMAL(38, 2), n BIGINT"
)
_OPEN_COLUMNS = "line_id, institution_code, region_code, accepted_on, due_on, amount, paid, n"
_SUMMARY_TYPES = (
    "institution_code VARCHAR, region_code VARCHAR, due_on DATE, underpaid BOOLEAN, lines BIGINT, "
    "outstanding DECIMAL(38, 2)"
)
_SUMMARY_COLUMNS = "institution_code, region_code, due_on, underpaid, lines, outstanding"
# Outstanding of a group of open rows: per row as ``_payables_sql`` computes it, times ``n``.
_OUTSTANDING = (
    "CAST(sum(CAST(greatest(amount - CAST(paid AS DECIMAL(18, 2)), 0) AS DECIMAL(18, 2)) * n) AS DECIMAL(38, 2))"
)
_HELD_TYPES = "line_id VARCHAR, paid_on DATE, amount DECIMAL(18, 2), orphan BOOLEAN"
_CLOSED_TYPES = "institution_code VARCHAR, region_code VARCHAR, lines BIGINT"
# Typed empty relations standing in for a missing file list.
_EMPTY = {
    "_pst_e_open": _OPEN_TYPES,
    "_pst_e_summary": _SUMMARY_TYPES,
    "_pst_e_held": _HELD_TYPES,
    "_pst_e_closed": _CLOSED_TYPES,
}


@dataclass(frozen=True)
class Part:
    """One acceptance month of open rows: its row file, summary file, latest acceptance, row count."""

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

    def referenced(self) -> set[str]:
        return {self.closed, self.held, *(f for p in self.parts.values() for f in (p.rows, p.summary))}


def _lines_sql(source: str) -> str:
    """Each row of ``source`` with amount, due date and partition, as ``_payables_sql`` computes them (R-E1)."""
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
               coalesce(strftime(p.accepted_on, '%Y-%m'), '{_NONE}') AS part
        FROM {source} p
        LEFT JOIN region_rule rr ON rr.region_code IS NOT DISTINCT FROM p.region_code
    """


# Full build: one pass over every line and payment. Rows are classified, then grouped so that closed
# rows collapse to one count per institution while open rows stay as they are (identical rows merge,
# counted by ``n``); a payment line id that matches no purchase row is an orphan.
_FULL_SQL = f"""
    CREATE TEMP TABLE _pst_full AS
    WITH pay AS (
        SELECT line_id,
               sum(amount) FILTER (WHERE paid_on <= {_AS_OF}) AS paid,
               count(*) FILTER (WHERE paid_on > {_AS_OF}) AS pending,
               count(*) FILTER (WHERE paid_on > {_AS_OF} AND amount < 0) AS negative
        FROM payments WHERE {_COUNTABLE}
        GROUP BY line_id
    ),
    classed AS (
        SELECT l.*, pay.line_id AS paid_line,
               CAST(coalesce(pay.paid, 0) AS DECIMAL(38, 2)) AS paid,
               coalesce(pay.pending, 0) > 0 AS pending,
               CASE WHEN l.present IS NULL THEN 'orphan'
                    WHEN l.accepted_on <= {_AS_OF} AND coalesce(pay.paid, 0) >= l.amount
                         AND coalesce(pay.negative, 0) = 0 THEN 'closed'
                    ELSE 'open' END AS kind
        FROM (SELECT *, TRUE AS present FROM ({_lines_sql("purchases")})) l
        FULL JOIN pay ON pay.line_id = l.line_id
    ),
    keyed AS (
        SELECT kind, institution_code, region_code, pending,
               CASE kind WHEN 'open' THEN line_id WHEN 'orphan' THEN paid_line END AS line_id,
               CASE WHEN kind = 'open' THEN region_code END AS open_region,
               CASE WHEN kind = 'open' THEN accepted_on END AS accepted_on,
               CASE WHEN kind = 'open' THEN due_on END AS due_on,
               CASE WHEN kind = 'open' THEN amount END AS amount,
               CASE WHEN kind = 'open' THEN paid END AS paid,
               CASE WHEN kind = 'open' THEN part END AS part
        FROM classed
    )
    SELECT kind, institution_code, line_id, any_value(region_code) AS region_code, accepted_on, due_on,
           amount, paid, part, bool_or(pending) AS pending, count(*) AS n
    FROM keyed
    GROUP BY kind, institution_code, line_id, open_region, accepted_on, due_on, amount, paid, part
"""

# Incremental merge. Old = the state's snapshot files, new = the files added since; ``_pst_held`` and
# ``_pst_closed`` are the state's, ``_pst_t0`` holds the open rows of the months new payments may reach
# (``hit``: the row's line takes a payment now).
_NEW_SQL = (
    # New rows are read where they are used (views over the added files), not copied.
    f"CREATE TEMP VIEW _pst_np AS {_lines_sql('_pst_new_purchases')}",
    f"CREATE TEMP VIEW _pst_ny AS SELECT line_id, paid_on, amount FROM _pst_new_payments WHERE {_COUNTABLE}",
    # Line ids whose open rows take payments now (held ones dated later wait, their rows stay put).
    f"""CREATE TEMP TABLE _pst_pm AS
        SELECT line_id FROM _pst_ny
        UNION ALL SELECT line_id FROM _pst_held WHERE NOT orphan AND paid_on <= {_AS_OF}""",
    # Lines to recompute if the older files have them: repeated line ids and refunds.
    """CREATE TEMP VIEW _pst_cand AS
       SELECT line_id FROM _pst_new_purchases WHERE line_id IS NOT NULL
       UNION ALL SELECT line_id FROM _pst_ny WHERE amount < 0""",
)

_RECOMPUTE_SQL = (
    f"""CREATE TEMP TABLE _pst_t2 AS
        SELECT o.*, {_PART} AS part FROM _pst_open_rows o
        SEMI JOIN (SELECT line_id FROM _pst_mat ANTI JOIN (SELECT line_id FROM _pst_t0 WHERE hit) USING (line_id))
        USING (line_id)""",
    f"""CREATE TEMP TABLE _pst_matpay AS
        SELECT line_id, paid_on, amount FROM _pst_old_payments SEMI JOIN _pst_mat USING (line_id)
        WHERE {_COUNTABLE}""",
    # Closed rows of recomputed lines leave the counts: all their old rows minus the tracked ones.
    f"""CREATE TEMP TABLE _pst_adjust AS
        SELECT institution_code, sum(c) AS lines FROM (
            SELECT institution_code, count(*) AS c FROM _pst_found GROUP BY ALL
            UNION ALL
            SELECT institution_code, -sum(n) FROM (
                SELECT {_OPEN_COLUMNS} FROM _pst_t0 WHERE hit UNION ALL SELECT {_OPEN_COLUMNS} FROM _pst_t2
            ) SEMI JOIN _pst_mat USING (line_id) GROUP BY ALL
        ) GROUP BY ALL""",
)

_MERGE_SQL = (
    # Payments to apply, tagged by where they come from (the state's held ones, or new / re-read).
    """CREATE TEMP VIEW _pst_pay AS
       SELECT line_id, paid_on, amount, TRUE AS held, orphan FROM _pst_held ANTI JOIN _pst_mat USING (line_id)
       UNION ALL SELECT line_id, paid_on, amount, FALSE, FALSE FROM _pst_ny
       UNION ALL SELECT line_id, paid_on, amount, FALSE, FALSE FROM _pst_matpay""",
    # The rows that change (tracked rows taking payments, recomputed lines, new purchase rows) with
    # their new paid amount; payment lines without such a row come out with NULL rows.
    f"""CREATE TEMP TABLE _pst_next AS
        WITH w AS (
            SELECT line_id, institution_code, region_code, accepted_on, due_on, amount, paid AS base, n, part
            FROM (
                SELECT {_OPEN_COLUMNS}, part FROM _pst_t0 WHERE hit
                UNION ALL SELECT {_OPEN_COLUMNS}, part FROM _pst_t2
            ) ANTI JOIN _pst_mat USING (line_id)
            UNION ALL
            SELECT line_id, institution_code, region_code, accepted_on, due_on, amount, 0, 1, part
            FROM ({_lines_sql("_pst_found")})
            UNION ALL
            SELECT line_id, institution_code, region_code, accepted_on, due_on, amount, 0, 1, part FROM _pst_np
        ),
        a AS (
            SELECT line_id, sum(amount) FILTER (WHERE paid_on <= {_AS_OF}) AS paid,
                   count(*) FILTER (WHERE paid_on > {_AS_OF} AND amount < 0) AS negative,
                   bool_or(held) AS held, bool_or(orphan) AS orphan
            FROM _pst_pay GROUP BY line_id
        )
        SELECT w.line_id, w.institution_code, w.region_code, w.accepted_on, w.due_on, w.amount, w.n, w.part,
               w.present, a.line_id AS pay_line, a.held, a.orphan,
               CAST(coalesce(w.base, 0) + coalesce(a.paid, 0) AS DECIMAL(38, 2)) AS paid,
               coalesce(w.accepted_on <= {_AS_OF} AND coalesce(w.base, 0) + coalesce(a.paid, 0) >= w.amount
                        AND coalesce(a.negative, 0) = 0, FALSE) AS closed
        FROM (SELECT *, TRUE AS present FROM w) w
        FULL JOIN a ON a.line_id = w.line_id""",
    # Payment lines with no changing row: held ones stay (orphans, or later payments of untouched
    # open rows); new ones are looked up next (known line: closed for good, else an orphan).
    """CREATE TEMP TABLE _pst_unmatched AS
       SELECT pay_line AS line_id, held, orphan FROM _pst_next WHERE present IS NULL""",
)

_NEXT_SQL = (
    """CREATE TEMP TABLE _pst_closed_next AS
       SELECT institution_code, any_value(region_code) AS region_code, CAST(sum(lines) AS BIGINT) AS lines
       FROM (
           SELECT institution_code, region_code, lines FROM _pst_closed
           UNION ALL
           SELECT institution_code, NULL, -lines FROM _pst_adjust
           UNION ALL
           SELECT institution_code, region_code, n FROM _pst_next WHERE present AND closed
       ) GROUP BY institution_code HAVING sum(lines) <> 0""",
    f"""CREATE TEMP TABLE _pst_held_next AS
        SELECT line_id, paid_on, amount, FALSE AS orphan FROM _pst_pay
        WHERE paid_on > {_AS_OF}
          AND line_id IN (SELECT line_id FROM _pst_next WHERE present AND NOT closed AND line_id IS NOT NULL)
        UNION ALL
        SELECT p.line_id, p.paid_on, p.amount, coalesce(u.orphan, FALSE) OR NOT coalesce(u.held, FALSE)
        FROM _pst_pay p JOIN _pst_unmatched u ON u.line_id = p.line_id
        WHERE u.held OR u.line_id NOT IN (SELECT line_id FROM _pst_known)""",
    # Months to rewrite: where changed rows were and where they go.
    """CREATE TEMP TABLE _pst_touched AS
       SELECT DISTINCT part FROM (
           SELECT part FROM _pst_t0 WHERE hit UNION ALL SELECT part FROM _pst_t2
           UNION ALL SELECT part FROM _pst_next WHERE present AND NOT closed)""",
)

# Summary of every row of each rewritten month (stored with it), and the month's row count and
# latest acceptance: while that is on or before as-of the summary gives the month's totals.
_SUMMARY_SQL = (
    f"""CREATE TEMP TABLE _pst_summary_next AS
        SELECT part, institution_code, region_code, due_on, paid < amount AS underpaid,
               CAST(sum(n) AS BIGINT) AS lines, {_OUTSTANDING} AS outstanding
        FROM _pst_parts_next GROUP BY ALL""",
    """CREATE TEMP TABLE _pst_meta AS
       SELECT part, max(accepted_on) AS max_accepted, count(*) AS count, min(line_id) AS low, max(line_id) AS high
       FROM _pst_parts_next GROUP BY part""",
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

_VIEWS = (
    "_pst_new_purchases",
    "_pst_new_payments",
    "_pst_old_purchases",
    "_pst_old_payments",
    "_pst_open_rows",
    "_pst_pay",
    "_pst_cand",
    "_pst_np",
    "_pst_ny",
)
_TEMP_TABLES = (
    "_pst_full",
    "_pst_closed",
    "_pst_held",
    "_pst_pm",
    "_pst_t0",
    "_pst_found",
    "_pst_mat",
    "_pst_t2",
    "_pst_matpay",
    "_pst_adjust",
    "_pst_next",
    "_pst_unmatched",
    "_pst_known",
    "_pst_touched",
    "_pst_closed_next",
    "_pst_held_next",
    "_pst_parts_next",
    "_pst_summary_next",
    "_pst_summary_all",
    "_pst_meta",
    "_pst_newcomers",
    "_pst_known_rows",
    *_EMPTY,
)


def _run(q: FactQuery, sql: str, as_of: dt.date) -> None:
    q.con.execute(sql, {"as_of": as_of} if "$as_of" in sql else None)


def _scalar(q: FactQuery, sql: str) -> Any:
    rows = q.con.execute(sql).fetchall()
    return rows[0][0] if rows else None


def _count(q: FactQuery, relation: str, expr: str = "count(*)") -> int:
    return int(_scalar(q, f"SELECT {expr} FROM {relation}") or 0)


def _quote(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _parquet(files: Sequence[Path], empty: str) -> str:
    """A relation over ``files``, or the empty typed table ``empty`` when there are none."""
    if not files:
        return f"SELECT * FROM {empty}"
    return "SELECT * FROM read_parquet([" + ", ".join(_quote(f) for f in files) + "])"


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


def load_state(state_dir: Path) -> State | None:
    """The state in force, or None when there is none (or it cannot be read: then it is rebuilt)."""
    try:
        data = json.loads((state_dir / CURRENT).read_text())
        if data.get("format") != STATE_FORMAT:
            return None
        state = State(
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
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not all((state_dir / DATA / f).is_file() for f in state.referenced()):
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


def _lookup(q: FactQuery, target: str, ids: str) -> None:
    """``target`` = old purchase rows whose line id is in ``ids``; cheap when none can be there.

    The old files' min/max statistics answer first whether any row falls in the ids' range (new
    line ids usually sort after the old ones); otherwise the semi join's key range prunes the scan.
    """
    empty = f"CREATE TEMP TABLE {target} AS SELECT * FROM _pst_old_purchases WHERE FALSE"
    low, high = q.con.execute(f"SELECT min(line_id), max(line_id) FROM {ids}").fetchall()[0]
    if low is None:
        q.con.execute(empty)
        return
    hit = q.con.execute(
        "SELECT count(*) FROM (SELECT 1 FROM _pst_old_purchases WHERE line_id BETWEEN ? AND ? LIMIT 1)", [low, high]
    ).fetchall()[0][0]
    if not hit:
        q.con.execute(empty)
        return
    q.con.execute(f"CREATE TEMP TABLE {target} AS SELECT * FROM _pst_old_purchases SEMI JOIN {ids} USING (line_id)")


def _build(q: FactQuery, as_of: dt.date) -> None:
    """The state from every line and payment of the snapshot (every month is written)."""
    _run(q, _FULL_SQL, as_of)
    q.con.execute(
        "CREATE TEMP TABLE _pst_closed_next AS "
        "SELECT institution_code, region_code, CAST(n AS BIGINT) AS lines FROM _pst_full WHERE kind = 'closed'"
    )
    q.con.execute(
        f"CREATE TEMP TABLE _pst_parts_next AS SELECT {_OPEN_COLUMNS}, part FROM _pst_full WHERE kind = 'open'"
    )
    q.con.execute("CREATE TEMP TABLE _pst_touched AS SELECT DISTINCT part FROM _pst_parts_next")
    held_lines = (
        "SELECT line_id, bool_or(kind = 'orphan') AS orphan FROM _pst_full "
        "WHERE line_id IS NOT NULL AND (kind = 'orphan' OR pending) GROUP BY line_id"
    )
    if _count(q, f"({held_lines})"):
        sql = (
            "CREATE TEMP TABLE _pst_held_next AS SELECT y.line_id, y.paid_on, y.amount, h.orphan "
            f"FROM (SELECT * FROM payments WHERE {_COUNTABLE}) y JOIN ({held_lines}) h ON h.line_id = y.line_id "
            f"WHERE h.orphan OR y.paid_on > {_AS_OF}"
        )
        _run(q, sql, as_of)
    else:
        q.con.execute(f"CREATE TEMP TABLE _pst_held_next ({_HELD_TYPES})")


def _reachable_parts(q: FactQuery, state: State) -> list[str]:
    """Months holding an open row some payment now may be for: its line id is in the month's range.

    Open rows are split by acceptance month and line ids mostly grow with time, so a month of new
    payments reaches the latest few months. The payments' overall id range answers at once; when it
    spans many months (a straggler paid years late) each month's range is checked against the ids.
    """
    ranges = [{"part": name, "low": p.low, "high": p.high} for name, p in state.parts.items() if p.low is not None]
    low, high = q.con.execute("SELECT min(line_id), max(line_id) FROM _pst_pm").fetchall()[0]
    if low is None:
        return []
    coarse = sorted(str(r["part"]) for r in ranges if r["low"] <= high and r["high"] >= low)
    if len(coarse) <= _FEW_MONTHS:
        return coarse
    q.register("_pst_ranges", pa.Table.from_pylist([r for r in ranges if r["part"] in coarse]))
    try:
        rows = q.con.execute(
            "SELECT r.part FROM _pst_ranges r "
            "WHERE EXISTS (SELECT 1 FROM _pst_pm m WHERE m.line_id BETWEEN r.low AND r.high)"
        ).fetchall()
    finally:
        q.con.unregister("_pst_ranges")
    return sorted(str(r[0]) for r in rows)


def _advance(
    q: FactQuery, state: State, data: Path, snapshot: dict[str, tuple[int | None, list[str]]], as_of: dt.date
) -> dict[str, int]:
    """Merge the rows of the files added since the state's snapshot into the state (see module doc)."""
    for table in _TABLES:
        old = state.files.get(table.name, [])
        known = set(old)
        q.files_view(f"_pst_new_{table.name}", table.name, [f for f in snapshot[table.name][1] if f not in known])
        q.files_view(f"_pst_old_{table.name}", table.name, old)
    rows = [data / p.rows for p in state.parts.values()]
    q.con.execute(f"CREATE OR REPLACE TEMP VIEW _pst_open_rows AS {_parquet(rows, '_pst_e_open')}")
    q.con.execute(f"CREATE TEMP TABLE _pst_held AS {_parquet([data / state.held], '_pst_e_held')}")
    q.con.execute(f"CREATE TEMP TABLE _pst_closed AS {_parquet([data / state.closed], '_pst_e_closed')}")
    for sql in _NEW_SQL:
        _run(q, sql, as_of)
    # The open rows of the months new payments may reach, each marked whether its line takes one now.
    reachable = _reachable_parts(q, state)
    q.con.execute(
        f"CREATE TEMP TABLE _pst_t0 AS SELECT o.*, {_PART} AS part, "
        "coalesce(o.line_id IN (SELECT line_id FROM _pst_pm), FALSE) AS hit "
        f"FROM ({_parquet([data / state.parts[p].rows for p in reachable], '_pst_e_open')}) o"
    )
    _lookup(q, "_pst_found", "_pst_cand")
    q.con.execute("CREATE TEMP TABLE _pst_mat AS SELECT DISTINCT line_id FROM _pst_found")
    recomputed = _count(q, "_pst_mat")
    if recomputed:
        for sql in _RECOMPUTE_SQL:
            _run(q, sql, as_of)
    else:
        q.con.execute(f"CREATE TEMP TABLE _pst_t2 ({_OPEN_TYPES}, part VARCHAR)")
        q.con.execute("CREATE TEMP TABLE _pst_matpay AS SELECT line_id, paid_on, amount FROM _pst_ny WHERE FALSE")
        q.con.execute("CREATE TEMP TABLE _pst_adjust (institution_code VARCHAR, lines BIGINT)")
    for sql in _MERGE_SQL:
        _run(q, sql, as_of)
    # New payments of lines that are neither open nor new: a known line is closed for good (they are
    # not refunds: those were recomputed), an unknown one waits as an orphan.
    q.con.execute("CREATE TEMP TABLE _pst_newcomers AS SELECT line_id FROM _pst_unmatched WHERE NOT held")
    _lookup(q, "_pst_known_rows", "_pst_newcomers")
    q.con.execute("CREATE TEMP TABLE _pst_known AS SELECT DISTINCT line_id FROM _pst_known_rows")
    for sql in _NEXT_SQL:
        _run(q, sql, as_of)
    touched = [str(r[0]) for r in q.con.execute("SELECT part FROM _pst_touched").fetchall()]
    # A rewritten month keeps its rows that do not change: not taking a payment, not recomputed.
    others = [data / state.parts[p].rows for p in touched if p in state.parts and p not in reachable]
    q.con.execute(
        f"""CREATE TEMP TABLE _pst_parts_next AS
            SELECT {_OPEN_COLUMNS}, part FROM _pst_t0
            WHERE NOT hit AND part IN (SELECT part FROM _pst_touched)
              AND (line_id IS NULL OR line_id NOT IN (SELECT line_id FROM _pst_mat))
            UNION ALL
            SELECT {_OPEN_COLUMNS}, {_PART} FROM ({_parquet(others, "_pst_e_open")})
            WHERE line_id IS NULL OR line_id NOT IN (SELECT line_id FROM _pst_mat)
            UNION ALL
            SELECT {_OPEN_COLUMNS}, part FROM _pst_next WHERE present AND NOT closed"""
    )
    return {
        "new_purchase_rows": _count(q, "_pst_np"),
        "new_payment_rows": _count(q, "_pst_ny"),
        "tracked_rows_paid": _count(q, "_pst_t0 WHERE hit"),
        "recomputed_lines": recomputed,
        "closed_lines_paid": _count(q, "_pst_known"),
        "months_read": len(reachable),
        "months_rewritten": len(touched),
    }


def _finish(q: FactQuery, state: State | None, data: Path, as_of: dt.date) -> tuple[dict[str, Part], list[str]]:
    """Every month's summary rows as of ``as_of`` in ``_pst_summary_all`` (rewritten months from memory).

    Returns the parts kept from ``state`` and the names of the rewritten months.
    """
    touched = sorted(str(r[0]) for r in q.con.execute("SELECT part FROM _pst_touched").fetchall())
    kept = {name: p for name, p in (state.parts.items() if state else []) if name not in touched}
    for sql in _SUMMARY_SQL:
        _run(q, sql, as_of)
    # A month whose rows are all accepted by as-of counts through its summary; one with rows accepted
    # later (as-of inside the month) is summarised from its rows accepted by then.
    complete = [data / p.summary for p in kept.values() if p.max_accepted and p.max_accepted <= as_of]
    partial = [data / p.rows for p in kept.values() if p.max_accepted and p.max_accepted > as_of]
    sql = f"""
        CREATE TEMP TABLE _pst_summary_all AS
        SELECT {_SUMMARY_COLUMNS} FROM ({_parquet(complete, "_pst_e_summary")})
        UNION ALL
        SELECT {_SUMMARY_COLUMNS} FROM _pst_summary_next JOIN _pst_meta USING (part)
        WHERE max_accepted <= {_AS_OF}
        UNION ALL
        SELECT institution_code, region_code, due_on, paid < amount, CAST(sum(n) AS BIGINT), {_OUTSTANDING}
        FROM (
            SELECT {_OPEN_COLUMNS} FROM ({_parquet(partial, "_pst_e_open")})
            UNION ALL
            SELECT {_OPEN_COLUMNS} FROM _pst_parts_next JOIN _pst_meta USING (part) WHERE max_accepted > {_AS_OF}
        )
        WHERE accepted_on <= {_AS_OF} GROUP BY ALL
    """
    _run(q, sql, as_of)
    return kept, touched


def _write(q: FactQuery, data: Path, kept: dict[str, Part], touched: list[str]) -> tuple[str, str, dict[str, Part]]:
    """Write the new files (nothing in force changes yet); returns closed, held and all parts."""
    data.mkdir(parents=True, exist_ok=True)
    stamp = uuid.uuid4().hex

    def copy(relation: str, name: str) -> str:
        q.con.execute(f"COPY ({relation}) TO {_quote(data / name)} (FORMAT parquet)")
        return name

    parts = dict(kept)
    meta = {str(r[0]): r[1:] for r in q.con.execute("SELECT * FROM _pst_meta").fetchall()}
    for name in touched:
        if name not in meta:
            continue  # every row of the month closed
        where = f"part = {_quote(name)}"
        parts[name] = Part(
            rows=copy(
                f"SELECT {_OPEN_COLUMNS} FROM _pst_parts_next WHERE {where}",
                f"open-{name}-{stamp}.parquet",
            ),
            summary=copy(
                f"SELECT {_SUMMARY_COLUMNS} FROM _pst_summary_next WHERE {where}", f"summary-{name}-{stamp}.parquet"
            ),
            max_accepted=meta[name][0],
            count=int(meta[name][1]),
            low=meta[name][2],
            high=meta[name][3],
        )
    closed = copy("SELECT * FROM _pst_closed_next", f"closed-{stamp}.parquet")
    held = copy("SELECT * FROM _pst_held_next", f"held-{stamp}.parquet")
    return closed, held, parts


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


def _drop_temp(q: FactQuery) -> None:
    for name in _VIEWS:
        q.con.execute(f"DROP VIEW IF EXISTS {name}")
    for name in _TEMP_TABLES:
        q.con.execute(f"DROP TABLE IF EXISTS {name}")


def overdue_totals_incremental(
    q: FactQuery, as_of: dt.date, *, rules: Mapping[str, PaymentRule], state_dir: Path
) -> tuple[pa.Table, dict[str, Any]]:
    """``overdue_totals(q, as_of, rules=rules)`` (R-E1), from the state in ``state_dir`` when it can be.

    Returns the same table and ``info``: ``mode`` ("full" or "incremental"), ``reason``, ``seconds``,
    ``open_lines`` (rows the state keeps in full) and a few counts. ``q`` must be system-scoped: the
    state covers every territory.
    """
    started = time.perf_counter()
    if not q.scope.is_system:
        raise ScopeError("incremental payables keep a province-wide state: use a system scope")
    state_dir = Path(state_dir)
    data = state_dir / DATA
    fingerprint = rules_fingerprint(rules)
    snapshot = {table.name: _snapshot(q, table) for table in _TABLES}
    state = load_state(state_dir)
    reason = _why_full(state, snapshot, as_of, fingerprint)
    q.register(RULES_RELATION, _rule_rows(rules))
    info: dict[str, Any] = {"mode": "full" if reason else "incremental", "reason": reason or ""}
    unchanged = state is not None and (
        reason is None
        and state.as_of == as_of
        and all(set(state.files.get(t.name, [])) == set(snapshot[t.name][1]) for t in _TABLES)
    )
    _drop_temp(q)
    for name, types in _EMPTY.items():
        q.con.execute(f"CREATE TEMP TABLE {name} ({types})")
    try:
        if unchanged and state is not None:
            info["reason"] = "no new facts, same as-of"
            q.con.execute(f"CREATE TEMP TABLE _pst_closed_next AS {_parquet([data / state.closed], '_pst_e_closed')}")
            q.con.execute("CREATE TEMP TABLE _pst_touched (part VARCHAR)")
            q.con.execute(f"CREATE TEMP TABLE _pst_parts_next ({_OPEN_TYPES}, part VARCHAR)")
            kept, touched = _finish(q, state, data, as_of)
        elif reason is None and state is not None:
            info["reason"] = "appended facts" if as_of == state.as_of else "appended facts, later as-of"
            info.update(_advance(q, state, data, snapshot, as_of))
            kept, touched = _finish(q, state, data, as_of)
        else:
            _build(q, as_of)
            kept, touched = _finish(q, None, data, as_of)
        table = q.con.sql(_TOTALS_SQL, params={"as_of": as_of}).to_arrow_table()
        open_lines = sum(p.count for p in kept.values()) + _count(q, "_pst_parts_next")
        info["open_lines"] = open_lines
        if not unchanged:
            closed, held, parts = _write(q, data, kept, touched)
            info["held_payments"] = _count(q, "_pst_held_next")
            _publish(
                state_dir,
                State(
                    as_of=as_of,
                    rules=fingerprint,
                    versions={name: version for name, (version, _files) in snapshot.items()},
                    files={name: files for name, (_version, files) in snapshot.items()},
                    closed=closed,
                    held=held,
                    parts=parts,
                ),
            )
    finally:
        _drop_temp(q)
    info["seconds"] = time.perf_counter() - started
    return table.select(list(OVERDUE_COLUMNS)).cast(OVERDUE_SCHEMA), info
