"""Progress of each agreement: counted volume, completion, elapsed share, status, projection (R-L1, R-C2).

One set-based DuckDB query over the scoped ``purchases`` view (or the daily rollup with the same
columns) joined to the registered ``agreements`` and ``item_products`` relations; the per-profile
thresholds reach SQL as a small registered relation, so no Python touches the lines.

Semantics (semantics.md "Time", "Units and money"):

* counted = accepted purchases of the item's *selected* products in [period_start, min(as_of,
  period_end)] × conversion; non-selected products and substitutes never count. Each line's
  qty × conversion is rounded half-up to 4 places (the precision of every stored quantity) before
  summing — the same numbers as rounding the sum unless a conversion has decimals — so sums stay
  DECIMAL(…,4) and never need DuckDB's slow 128-bit rescaling (``item_qty_sql``).
* completion = counted ÷ agreed (may exceed 1); elapsed = (d − start + 1) ÷ (end − start + 1)
  clipped to [0, 1], d = as_of.
* status (profile settings ``progress.behind_ratio`` / ``progress.at_risk_ratio``):
  ``completed`` if completion ≥ 1; else ``on_track`` if elapsed = 0 or completion ≥ behind × elapsed;
  ``behind`` if completion ≥ at_risk × elapsed; else ``at_risk``. The comparisons are made on the
  exact quantities (counted × period days ≥ ratio × elapsed days × agreed), not on the rounded
  ratios. An agreement whose profile has no thresholds gets a NULL status unless completed or not
  started; an agreed quantity of 0 is ``completed``.
* projected = counted + run rate × days left, where the run rate is what was counted in the last
  ``run_rate_days`` days up to as_of ÷ those days — the window clipped to the period, so a period
  that started 30 days ago uses a 30-day rate. Days left = period_end − as_of (the whole period
  before it starts, when the rate is 0).
* over_volume_qty = max(0, counted − agreed): what was bought after the agreed volume was reached,
  still at the winning price until the period ends (R-C2).
* supply interruptions (R-I2, ``interruptions``: batch, item, institution or NULL for all, start_on,
  end_on or NULL while open): ``affected_days`` = the days of the period covered by an interruption
  known on as_of (an open one up to as_of; overlapping ones counted once), X of them elapsed by
  as_of. Without those days the agreed volume is pro rata: completion_adjusted = counted × T ÷
  (agreed × (T − X_total)), elapsed_adjusted = (E − X_elapsed) ÷ (T − X_total), and
  status_adjusted the status on those figures (T period days, E elapsed days). With no interruption
  the adjusted figures equal the plain ones.

Number types: quantities are DECIMAL(18,4); completion, elapsed and projected_completion are
DECIMAL(18,4), the exact quotient rounded half-up (``jicai_ratio4``: a double where it cannot be
wrong, integer arithmetic near a tie), so Arrow and JSON carry exact decimals (serialise them as
strings or numbers as the shell prefers). Status is decided on exact quantities, not on these.

Rows come in no particular order unless ``ordered=True`` (batch, item, institution, year): sorting a
province's million agreements by their codes costs about as much as computing them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pyarrow as pa

from jicai.facts.query import FactQuery
from jicai.facts.schemas import QTY
from jicai.policy.profile import ProfileLibrary

RATIO = pa.decimal128(18, 4)
THRESHOLD = pa.decimal128(18, 6)

PROGRESS_COLUMNS: tuple[str, ...] = (
    "batch_code",
    "item_code",
    "institution_code",
    "region_code",
    "year",
    "period_start",
    "period_end",
    "agreed_qty",
    "counted_qty",
    "completion",
    "elapsed",
    "status",
    "projected_qty",
    "projected_completion",
    "over_volume_qty",
    "profile",
    "affected_days",
    "completion_adjusted",
    "elapsed_adjusted",
    "status_adjusted",
)

PROGRESS_SCHEMA = pa.schema(
    [
        ("batch_code", pa.string()),
        ("item_code", pa.string()),
        ("institution_code", pa.string()),
        ("region_code", pa.string()),
        ("year", pa.int32()),
        ("period_start", pa.date32()),
        ("period_end", pa.date32()),
        ("agreed_qty", QTY),
        ("counted_qty", QTY),
        ("completion", RATIO),
        ("elapsed", RATIO),
        ("status", pa.string()),
        ("projected_qty", QTY),
        ("projected_completion", RATIO),
        ("over_volume_qty", QTY),
        ("profile", pa.string()),
        ("affected_days", pa.int32()),
        ("completion_adjusted", RATIO),
        ("elapsed_adjusted", RATIO),
        ("status_adjusted", pa.string()),
    ]
)

STATUS_COMPLETED = "completed"
STATUS_ON_TRACK = "on_track"
STATUS_BEHIND = "behind"
STATUS_AT_RISK = "at_risk"

STATUS_LABELS: dict[str, tuple[str, str]] = {
    STATUS_COMPLETED: ("已完成", "completed"),
    STATUS_ON_TRACK: ("进度正常", "on track"),
    STATUS_BEHIND: ("进度滞后", "behind"),
    STATUS_AT_RISK: ("完成风险", "at risk"),
}
"""Status code → (Chinese, English) label for reports and the UI."""

THRESHOLDS_RELATION = "progress_profile_thresholds"
INTERRUPTIONS_RELATION = "progress_interruptions"
_THRESHOLDS_SCHEMA = pa.schema([("profile", pa.string()), ("behind_ratio", THRESHOLD), ("at_risk_ratio", THRESHOLD)])
_SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SIX_PLACES = Decimal("0.000001")

RATIO_MACRO = "jicai_ratio4"
"""``jicai_ratio4(n, d)``: n ÷ d as DECIMAL(18,4), rounded half-up (away from zero) from the exact quotient."""
RATIO_OF_MACRO = "jicai_ratio4_of"
"""``jicai_ratio4_of(x, n, d)``: the same, given ``x`` = n ÷ d as DOUBLE already computed once (a column):
for wide tables, where casting DECIMAL(38,…) sums to DOUBLE in every branch would dominate."""
RATIO_LIMIT = 10**13
"""Quotients at or beyond ±10¹³ do not fit DECIMAL(18,4) safely and come out NULL (absurd growth rates)."""
# DuckDB divides decimals as DOUBLE. A double quotient is accurate to ~1e-12 here, so it gives the
# exact half-up result unless the 5th place sits within 1e-6 of a tie (d = 0 or a NULL side makes x
# NULL, infinite or NaN: NULL out). Only near-ties (and huge quotients) take the exact path: both
# sides scaled to integers (every input has at most 8 decimal places) and
# floor((2·|N|·10⁴ + |D|) ÷ 2|D|) in HUGEINT arithmetic — about 15× slower, so rare.
_N = "abs(CAST(CAST(n AS DECIMAL(38, 8)) * 100000000 AS HUGEINT))"
_D = "abs(CAST(CAST(d AS DECIMAL(38, 8)) * 100000000 AS HUGEINT))"
_RATIO_MACRO_SQL = f"""
CREATE OR REPLACE TEMP MACRO {RATIO_OF_MACRO}(x, n, d) AS (
    CASE WHEN x IS NULL OR NOT isfinite(x) OR abs(x) >= {RATIO_LIMIT} THEN NULL
    WHEN abs(x) < 100000 AND abs(abs(x) * 10000 - floor(abs(x) * 10000) - 0.5) > 0.000001
    THEN CAST(x AS DECIMAL(18, 4))
    ELSE CAST(CAST(sign(CAST(n AS DECIMAL(38, 8))) * sign(CAST(d AS DECIMAL(38, 8)))
                   * (({_N} * 20000 + {_D}) // (2 * {_D})) AS DECIMAL(38, 0)) * 0.0001 AS DECIMAL(18, 4))
    END
);
CREATE OR REPLACE TEMP MACRO {RATIO_MACRO}(n, d) AS (
    {RATIO_OF_MACRO}(CAST(n AS DOUBLE) / CAST(d AS DOUBLE), n, d)
);
"""


def ensure_macros(q: FactQuery) -> None:
    """Define the SQL helpers this package uses on ``q``'s connection (idempotent)."""
    q.con.execute(_RATIO_MACRO_SQL)


def safe_relation(name: str) -> str:
    """``name`` if it is a plain SQL identifier (the source relation is spliced into SQL)."""
    if not _SAFE_NAME.match(name):
        raise ValueError(f"bad relation name {name!r}")
    return name


def month_list(months: Iterable[str]) -> str:
    """A SQL list of YYYY-MM literals (validated: they are spliced into SQL so that DuckDB prunes
    the month partitions it need not read)."""
    items = sorted(set(months))
    for m in items:
        if len(m) != 7 or not (m[:4].isdigit() and m[4] == "-" and m[5:].isdigit()):
            raise ValueError(f"bad month {m!r}")
    return "(" + ", ".join(f"'{m}'" for m in items) + ")" if items else "(NULL)"


MIDX_SQL = "CAST(year({0}) * 12 + month({0}) - 1 AS INTEGER)"
"""SQL month index of a date expression (``MIDX_SQL.format("p.accepted_on")``), as the pair-month rollup's."""


_FAST_PRODUCT_LIMIT = Decimal(10) ** 9
"""qty × conversion stays in 64-bit DECIMAL(18,8) below 10¹⁰; beyond this (absurd) size use 128 bits."""


def item_qty_sql(q: FactQuery, relation: str, *, qty: str = "p.qty", conversion: str = "s.conversion") -> str:
    """SQL for one line's item quantity, ``qty × conversion`` rounded half-up to 4 places.

    The 64-bit product is ~free but overflows past 10¹⁰ item units; the largest quantity in
    ``relation`` and the largest conversion decide (two cheap aggregates) whether it is safe.
    """
    big_qty = q.rows(f"SELECT max(abs(qty)) AS m FROM {safe_relation(relation)}")[0]["m"] or 0
    big_conversion = q.rows("SELECT max(abs(conversion)) AS m FROM item_products")[0]["m"] or 0
    if Decimal(big_qty) * Decimal(big_conversion) < _FAST_PRODUCT_LIMIT:
        return f"CAST(CAST({qty} AS DECIMAL(18, 4)) * CAST({conversion} AS DECIMAL(18, 4)) AS DECIMAL(18, 4))"
    return f"CAST(CAST({qty} AS DECIMAL(38, 4)) * {conversion} AS DECIMAL(38, 4))"


def to_six_places(value: Decimal | int | str | None) -> Decimal | None:
    if value is None:
        return None
    return Decimal(value).quantize(_SIX_PLACES, rounding=ROUND_HALF_UP)


def register_thresholds(q: FactQuery, thresholds: Mapping[str, tuple[Decimal, Decimal]]) -> None:
    """Make ``profile → (behind_ratio, at_risk_ratio)`` available to SQL as ``THRESHOLDS_RELATION``."""
    rows = [
        {"profile": name, "behind_ratio": to_six_places(behind), "at_risk_ratio": to_six_places(at_risk)}
        for name, (behind, at_risk) in sorted(thresholds.items())
    ]
    q.register(THRESHOLDS_RELATION, pa.Table.from_pylist(rows, schema=_THRESHOLDS_SCHEMA))


def status_sql(done: str, target: str, days_elapsed: str, days_total: str, thresholds: str) -> str:
    """SQL CASE giving the status of ``done`` against ``target`` (exact comparisons; module docstring)."""
    lhs = f"CAST({done} AS DECIMAL(38, 4)) * ({days_total})"
    target_d = f"CAST({target} AS DECIMAL(38, 4))"

    def bound(ratio: str) -> str:
        return f"CAST({thresholds}.{ratio} AS DECIMAL(38, 6)) * ({days_elapsed}) * {target_d}"

    return f"""CASE
        WHEN {target} IS NULL THEN NULL
        WHEN {target} <= 0 OR {done} >= {target} THEN '{STATUS_COMPLETED}'
        WHEN ({days_elapsed}) <= 0 THEN '{STATUS_ON_TRACK}'
        WHEN {thresholds}.profile IS NULL THEN NULL
        WHEN {lhs} >= {bound("behind_ratio")} THEN '{STATUS_ON_TRACK}'
        WHEN {lhs} >= {bound("at_risk_ratio")} THEN '{STATUS_BEHIND}'
        ELSE '{STATUS_AT_RISK}' END"""


def _affected_sql(q: FactQuery, interruptions: pa.Table | None) -> tuple[str, str, dict[str, str]]:
    """The ``affected`` CTE (days of each agreement's period under an interruption), its join into ``c``
    and the adjusted output expressions; with no interruption the adjusted figures are the plain ones."""
    if interruptions is None or interruptions.num_rows == 0:
        plain = {
            "status": "",
            "columns": "CAST(0 AS INTEGER) AS affected_days, "
            f"{RATIO_OF_MACRO}(CAST(counted AS DOUBLE) / agreed_d, counted, agreed_qty) AS completion_adjusted, "
            f"{RATIO_OF_MACRO}(days_elapsed / days_total, days_elapsed, days_total) AS elapsed_adjusted, "
            "status AS status_adjusted",
        }
        return "", "\n            FROM ag LEFT JOIN counted k ON k.agreement_id = ag.agreement_id", plain
    q.register(
        INTERRUPTIONS_RELATION,
        interruptions.select(["batch_code", "item_code", "institution_code", "start_on", "end_on"]),
    )
    cte = f"""
        affected_spans AS (
            SELECT a.agreement_id, a.upto,
                   greatest(i.start_on, a.period_start) AS s,
                   least(coalesce(i.end_on, $as_of), $as_of, a.period_end) AS e
            FROM ag a JOIN {INTERRUPTIONS_RELATION} i
              ON i.batch_code = a.batch_code AND i.item_code = a.item_code
             AND (i.institution_code IS NULL OR i.institution_code = a.institution_code)
            WHERE i.start_on <= $as_of
        ),
        affected_days AS (
            SELECT DISTINCT agreement_id, upto, CAST(unnest(range(s, e + INTERVAL 1 DAY, INTERVAL 1 DAY)) AS DATE) AS d
            FROM affected_spans WHERE e >= s
        ),
        affected AS (
            SELECT agreement_id, count(*) AS x_total, count(*) FILTER (WHERE d <= upto) AS x_elapsed
            FROM affected_days GROUP BY agreement_id
        ),"""
    join = """,
                   coalesce(x.x_total, 0) AS x_total, coalesce(x.x_elapsed, 0) AS x_elapsed
            FROM ag LEFT JOIN counted k ON k.agreement_id = ag.agreement_id
            LEFT JOIN affected x ON x.agreement_id = ag.agreement_id"""
    status = status_sql(
        "counted * days_total",
        "agreed_qty * (days_total - x_total)",
        "(days_elapsed - x_elapsed)",
        "(days_total - x_total)",
        "t",
    )
    adjusted = {
        "status": f"\n                   {status} AS status_adjusted,",
        "columns": "CAST(x_total AS INTEGER) AS affected_days, "
        f"{RATIO_OF_MACRO}(CAST(counted * days_total AS DOUBLE) / (agreed_d * (days_total - x_total)), "
        "counted * days_total, agreed_qty * (days_total - x_total)) AS completion_adjusted, "
        f"{RATIO_OF_MACRO}((days_elapsed - x_elapsed) / (days_total - x_total), days_elapsed - x_elapsed, "
        "days_total - x_total) AS elapsed_adjusted, status_adjusted",
    }
    return cte, join, adjusted


def _monthly_counted_sql(
    q: FactQuery, ag_sql: str, params: dict[str, Any], *, src: str, monthly: str, inst: str
) -> str:
    """The ``counted`` CTE from the pair-month rollup: the whole months of [period_start, upto] (and of
    the run-rate window) from ``monthly``, the days of the partial months at either end from the lines.

    The partial months are found first (one small query over the agreements) so that the line scan
    is limited to their partitions.
    """
    w = "greatest(a.period_start, $as_of - CAST($run_rate_days AS INTEGER) + 1)"
    edges = q.con.sql(
        f"""
        WITH a AS ({ag_sql})
        SELECT DISTINCT m FROM (
            SELECT CASE WHEN day(a.period_start) <> 1 THEN strftime(a.period_start, '%Y-%m') END AS m
            FROM a WHERE a.upto >= a.period_start
            UNION ALL
            SELECT CASE WHEN a.upto <> last_day(a.upto) THEN strftime(a.upto, '%Y-%m') END
            FROM a WHERE a.upto >= a.period_start
            UNION ALL
            SELECT CASE WHEN day({w}) <> 1 THEN strftime({w}, '%Y-%m') END
            FROM a WHERE a.upto >= {w}
        ) WHERE m IS NOT NULL
        """,
        params=params,
    ).fetchall()
    edge_months = month_list(m for (m,) in edges)
    first = "CASE WHEN day({0}) = 1 THEN 0 ELSE 1 END"
    last = "CASE WHEN {0} = last_day({0}) THEN 0 ELSE 1 END"
    return f"""
        agx AS (
            SELECT a.agreement_id, a.institution_code, a.batch_code, a.item_code, a.period_start, a.upto,
                   {w} AS w,
                   {MIDX_SQL.format("a.period_start")} + {first.format("a.period_start")} AS fm_lo,
                   {MIDX_SQL.format("a.upto")} - {last.format("a.upto")} AS fm_hi,
                   {MIDX_SQL.format(w)} + {first.format(w)} AS rfm_lo
            FROM ag a WHERE a.upto >= a.period_start
        ),
        full_months AS (
            SELECT a.agreement_id, sum(m.sel_qty) AS counted,
                   sum(m.sel_qty) FILTER (WHERE m.midx >= a.rfm_lo) AS recent
            FROM agx a JOIN {monthly} m
              ON m.institution_code = a.institution_code AND m.batch_code = a.batch_code
             AND m.item_code = a.item_code AND m.midx BETWEEN a.fm_lo AND a.fm_hi
            GROUP BY a.agreement_id
        ),
        edge_lines AS (
            SELECT p.institution_code, s.batch_code, s.item_code, p.accepted_on,
                   {MIDX_SQL.format("p.accepted_on")} AS midx, {item_qty_sql(q, src)} AS q
            FROM {src} p JOIN sel s ON s.product_code = p.product_code
            WHERE p.month IN {edge_months} AND p.accepted_on <= $as_of{inst}
        ),
        edge_days AS (
            SELECT a.agreement_id,
                   sum(l.q) FILTER (WHERE l.midx NOT BETWEEN a.fm_lo AND a.fm_hi) AS counted,
                   sum(l.q) FILTER (WHERE l.accepted_on >= a.w AND l.midx NOT BETWEEN a.rfm_lo AND a.fm_hi) AS recent
            FROM agx a JOIN edge_lines l
              ON l.institution_code = a.institution_code AND l.batch_code = a.batch_code
             AND l.item_code = a.item_code AND l.accepted_on BETWEEN a.period_start AND a.upto
            GROUP BY a.agreement_id
        ),
        counted AS (
            SELECT agreement_id, sum(counted) AS counted, sum(recent) AS recent
            FROM (SELECT * FROM full_months UNION ALL SELECT * FROM edge_days)
            GROUP BY agreement_id
        ),"""


def agreements_sql(*, batch: str | None, institution: str | None, alias: str = "a") -> tuple[str, dict[str, Any]]:
    """The filtered agreements with their day counts (days_total, days_elapsed clipped, days_left) and
    ``upto`` = min(as_of, period_end). Named parameters: ``$as_of`` (the caller binds it), ``$batch``
    and ``$institution`` (returned, only when filtering)."""
    where = []
    params: dict[str, Any] = {}
    if batch:
        where.append(f"{alias}.batch_code = $batch")
        params["batch"] = batch
    if institution:
        where.append(f"{alias}.institution_code = $institution")
        params["institution"] = institution
    sql = f"""
        SELECT {alias}.*,
               ({alias}.period_end - {alias}.period_start + 1) AS days_total,
               least(greatest($as_of - {alias}.period_start + 1, 0),
                     {alias}.period_end - {alias}.period_start + 1) AS days_elapsed,
               greatest({alias}.period_end - greatest($as_of, {alias}.period_start - 1), 0) AS days_left,
               least($as_of, {alias}.period_end) AS upto
        FROM agreements {alias}
        {"WHERE " + " AND ".join(where) if where else ""}
    """
    return sql, params


def progress_thresholds(
    profiles: ProfileLibrary, profile_names: Iterable[str], as_of: dt.date
) -> dict[str, tuple[Decimal, Decimal]]:
    """Each profile's ``(behind_ratio, at_risk_ratio)`` in force on ``as_of`` (R-L1)."""
    out: dict[str, tuple[Decimal, Decimal]] = {}
    for name in sorted({n for n in profile_names if n}):
        resolved = profiles.resolve(name, as_of)
        out[name] = (
            Decimal(resolved.get("progress.behind_ratio")),
            Decimal(resolved.get("progress.at_risk_ratio")),
        )
    return out


def progress(
    q: FactQuery,
    as_of: dt.date,
    *,
    thresholds: Mapping[str, tuple[Decimal, Decimal]],
    source: str = "purchases",
    batch: str | None = None,
    institution: str | None = None,
    run_rate_days: int = 90,
    ordered: bool = False,
    monthly: str | None = None,
    interruptions: pa.Table | None = None,
) -> pa.Table:
    """Progress of every agreement in scope on ``as_of`` (module docstring). ``source`` is the purchases
    view or a rollup with the columns institution_code, product_code, accepted_on, qty. Needs
    ``agreements`` and ``item_products`` registered on ``q``. ``monthly`` names the pair-month rollup
    of ``source`` (``jicai.monitoring.monthly``): whole months are read from it, partial ones from
    ``source``, with the same result. ``interruptions`` (``hooks.INTERRUPTION_SCHEMA``) gives the
    adjusted figures; without any they equal the plain ones."""
    if run_rate_days <= 0:
        raise ValueError(f"run_rate_days must be positive, got {run_rate_days}")
    src = safe_relation(source)
    ensure_macros(q)
    register_thresholds(q, thresholds)
    ag_sql, params = agreements_sql(batch=batch, institution=institution)
    params |= {"as_of": as_of, "run_rate_days": run_rate_days}
    inst = " AND p.institution_code = $institution" if institution else ""
    status = status_sql("counted", "agreed_qty", "days_elapsed", "days_total", "t")
    if monthly is None:
        counted_sql = f"""
        lines AS (
            SELECT p.institution_code, s.batch_code, s.item_code, p.accepted_on,
                   {item_qty_sql(q, src)} AS q
            FROM {src} p JOIN sel s ON s.product_code = p.product_code
            WHERE p.accepted_on <= $as_of{inst}
        ),
        counted AS (
            SELECT a.agreement_id, sum(l.q) AS counted,
                   sum(l.q) FILTER (WHERE l.accepted_on > $as_of - CAST($run_rate_days AS INTEGER)) AS recent
            FROM ag a JOIN lines l
              ON l.institution_code = a.institution_code AND l.batch_code = a.batch_code
             AND l.item_code = a.item_code AND l.accepted_on BETWEEN a.period_start AND a.upto
            GROUP BY a.agreement_id
        ),"""
    else:
        counted_sql = _monthly_counted_sql(q, ag_sql, params, src=src, monthly=safe_relation(monthly), inst=inst)
    affected_sql, affected_join, adjusted = _affected_sql(q, interruptions)
    sql = f"""
        WITH ag AS ({ag_sql}),
        sel AS (
            SELECT DISTINCT batch_code, item_code, product_code, conversion
            FROM item_products WHERE kind = 'selected'
        ),{counted_sql}{affected_sql}
        c AS (
            SELECT ag.*,
                   CAST(coalesce(k.counted, 0) AS DECIMAL(38, 4)) AS counted,
                   CAST(coalesce(k.recent, 0) AS DECIMAL(38, 4)) AS recent,
                   least(CAST($run_rate_days AS BIGINT), ag.days_elapsed) AS rate_days{affected_join}
        ),
        r AS (
            SELECT c.*, {status} AS status,{adjusted["status"]}
                   CAST(c.agreed_qty AS DOUBLE) AS agreed_d,
                   c.counted * c.rate_days + c.recent * c.days_left AS projected_num
            FROM c LEFT JOIN {THRESHOLDS_RELATION} t ON t.profile = c.profile
        ),
        r2 AS (
            SELECT r.*,
                   CASE WHEN rate_days > 0
                        THEN {RATIO_OF_MACRO}(CAST(projected_num AS DOUBLE) / rate_days, projected_num, rate_days)
                        ELSE CAST(counted AS DECIMAL(18, 4)) END AS projected
            FROM r
        )
        SELECT batch_code, item_code, institution_code, region_code, CAST(year AS INTEGER) AS year,
               period_start, period_end,
               CAST(agreed_qty AS DECIMAL(18, 4)) AS agreed_qty,
               CAST(counted AS DECIMAL(18, 4)) AS counted_qty,
               {RATIO_OF_MACRO}(CAST(counted AS DOUBLE) / agreed_d, counted, agreed_qty) AS completion,
               {RATIO_OF_MACRO}(days_elapsed / days_total, days_elapsed, days_total) AS elapsed,
               status,
               projected AS projected_qty,
               {RATIO_OF_MACRO}(CAST(projected AS DOUBLE) / agreed_d, projected, agreed_qty) AS projected_completion,
               CAST(greatest(counted - agreed_qty, 0) AS DECIMAL(18, 4)) AS over_volume_qty,
               profile,
               {adjusted["columns"]}
        FROM r2
        {"ORDER BY batch_code, item_code, institution_code, year" if ordered else ""}
    """
    table = q.con.sql(sql, params=params).to_arrow_table()
    return table.select(list(PROGRESS_COLUMNS)).cast(PROGRESS_SCHEMA)
