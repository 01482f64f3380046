"""Selected, non-selected and substitute purchases per institution × item × month, with the cap check
(R-D2, R-H7, R-I2; semantics.md "Non-selected cap").

One set-based DuckDB query over the scoped purchases view (or the daily rollup with the same columns),
the registered ``agreements`` and ``item_products`` relations, and two small registered relations
(cap ratio per profile, supply interruptions). Only institution × item pairs that have an agreement
are reported; a month with no purchase of the item's products has no row.

Per row (institution, batch, item, calendar month of ``accepted_on`` ≤ as_of), in item units
(qty × conversion):

* ``selected_qty`` / ``non_selected_qty`` (same generic, not selected) / ``substitute_qty``;
  ``total_qty`` is their sum and the shares are of that total.
* ``exempt_qty``: the part of ``non_selected_qty`` accepted on a day inside a supply interruption on
  record for the institution (or region-wide, institution_code NULL) and the item (R-I2). Exempt
  quantity is still reported in ``non_selected_qty`` (it was bought and used) but does not count
  toward the cap.
* ``mom_growth`` / ``yoy_growth``: growth of ``substitute_qty`` (what R-H7 watches) against the same
  institution and item in the previous calendar month / the same month a year earlier,
  (this − prev) ÷ prev; NULL when prev is 0 or there was no purchase then.
* ``cum_selected_qty`` / ``cum_non_selected_qty``: cumulative within the agreement year containing the
  month's reference day (its last day, or as_of in the current month), from period_start to that
  day; the non-selected figure counts only non-exempt quantity (the one the cap tests, like
  ``caps.CapCheck.non_selected_qty``). NULL when no agreement year contains the reference day.
* ``cap_limit`` = cap_ratio × cum_selected_qty, with the ratio of the agreement's profile
  (``cap_ratio`` mapping; None or a missing profile = no cap, limit NULL). ``cap_exceeded`` iff
  cum_non_selected_qty > cap_ratio × cum_selected_qty exactly, as ``caps.check_non_selected_cap``
  decides (so any counted non-selected quantity exceeds a zero selected quantity); false without a
  cap. Substitutes are not capped here (``non_selected_cap.substitutes_capped`` is false in every
  shipped profile).

Quantities are DECIMAL(18,4), each line's qty × conversion rounded to 4 places as in ``progress``
(so ``cum_selected_qty`` at a year's end is that year's counted quantity); shares and growth are
DECIMAL(18,4) rounded half-up from the exact quotient. Cumulation runs over monthly rows by
agreement year; a year that starts mid-month has the days of its first month before the start
subtracted, so the figures are exactly period_start … reference day either way. Rows come in no
particular order unless ``ordered=True`` (institution, batch, item, month).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pyarrow as pa

from jicai.facts.query import FactQuery
from jicai.facts.schemas import QTY
from jicai.monitoring.monthly import month_label
from jicai.monitoring.progress import (
    MIDX_SQL,
    RATIO,
    RATIO_OF_MACRO,
    THRESHOLD,
    ensure_macros,
    item_qty_sql,
    month_list,
    safe_relation,
    to_six_places,
)
from jicai.policy.caps import month_end

SUBSTITUTE_COLUMNS: tuple[str, ...] = (
    "institution_code",
    "batch_code",
    "item_code",
    "month",
    "selected_qty",
    "non_selected_qty",
    "substitute_qty",
    "exempt_qty",
    "total_qty",
    "selected_share",
    "non_selected_share",
    "substitute_share",
    "mom_growth",
    "yoy_growth",
    "cum_selected_qty",
    "cum_non_selected_qty",
    "cap_limit",
    "cap_exceeded",
)

SUBSTITUTE_SCHEMA = pa.schema(
    [
        ("institution_code", pa.string()),
        ("batch_code", pa.string()),
        ("item_code", pa.string()),
        ("month", pa.string()),
        ("selected_qty", QTY),
        ("non_selected_qty", QTY),
        ("substitute_qty", QTY),
        ("exempt_qty", QTY),
        ("total_qty", QTY),
        ("selected_share", RATIO),
        ("non_selected_share", RATIO),
        ("substitute_share", RATIO),
        ("mom_growth", RATIO),
        ("yoy_growth", RATIO),
        ("cum_selected_qty", QTY),
        ("cum_non_selected_qty", QTY),
        ("cap_limit", QTY),
        ("cap_exceeded", pa.bool_()),
    ]
)

INTERRUPTION_SCHEMA = pa.schema(
    [
        ("batch_code", pa.string()),
        ("item_code", pa.string()),
        ("institution_code", pa.string()),
        ("start", pa.date32()),
        ("end", pa.date32()),
    ]
)
"""Supply interruptions on record: ``institution_code`` NULL = region-wide; ``end`` NULL = still open.
``start_date``/``end_date`` or ``start_on``/``end_on`` are accepted for ``start``/``end``."""

CAPS_RELATION = "substitute_cap_ratios"
INTERRUPTIONS_RELATION = "substitute_interruptions"
_CAPS_SCHEMA = pa.schema([("profile", pa.string()), ("cap_ratio", THRESHOLD), ("cap_ratio_int", pa.int64())])
_INTERNAL_INTERRUPTIONS = pa.schema(
    [
        ("batch_code", pa.string()),
        ("item_code", pa.string()),
        ("institution_code", pa.string()),
        ("start_on", pa.date32()),
        ("end_on", pa.date32()),
    ]
)
_ALIASES = {"start_on": ("start", "start_date", "start_on"), "end_on": ("end", "end_date", "end_on")}


def _interruptions(table: pa.Table | None) -> pa.Table:
    """The caller's interruptions in the internal shape (columns renamed, types cast)."""
    if table is None:
        return _INTERNAL_INTERRUPTIONS.empty_table()
    columns: dict[str, pa.ChunkedArray | pa.Array] = {}
    for name in ("batch_code", "item_code", "institution_code"):
        columns[name] = table.column(name) if name in table.column_names else pa.nulls(table.num_rows, pa.string())
    for internal, names in _ALIASES.items():
        found = next((n for n in names if n in table.column_names), None)
        if found is None and internal == "start_on":
            raise ValueError(f"interruptions need a start column (one of {', '.join(names)})")
        columns[internal] = table.column(found) if found else pa.nulls(table.num_rows, pa.date32())
    return pa.table(columns).cast(_INTERNAL_INTERRUPTIONS)


@dataclass(frozen=True)
class _Monthly:
    """Reading whole months from the pair-month rollup ``relation`` (see ``substitutes``)."""

    relation: str
    partial_month: str | None  # the as-of month when as_of is not its last day (read from the lines)
    months: str | None  # SQL list of the months read (None: all)
    out_lo: int | None  # first month index returned (None: all)
    start_months: str  # SQL list of the months in which agreement years start mid-month


def _substitutes_sql(
    src: str,
    item_qty: str,
    *,
    batch: bool,
    institution: bool,
    interrupted: bool,
    misaligned: bool,
    ordered: bool,
    monthly: _Monthly | None = None,
) -> str:
    """The query; optional parts only when there are interruptions / agreement years starting mid-month."""
    pair_where = [
        c for c, on in (("batch_code = $batch", batch), ("institution_code = $institution", institution)) if on
    ]
    inst = " AND p.institution_code = $institution" if institution else ""
    lo_lines = f" AND p.month IN {monthly.months}" if monthly is not None and monthly.months is not None else ""
    start_lines = f" AND p.month IN {monthly.start_months}" if monthly is not None else ""
    keys = "institution_code, batch_code, item_code"
    ctes = [
        # Pairs numbered so that windows and joins key on one integer instead of three strings.
        f"""pairs AS (
            SELECT {keys}, row_number() OVER () AS pair_id
            FROM (SELECT DISTINCT {keys} FROM agreements {"WHERE " + " AND ".join(pair_where) if pair_where else ""})
        )""",
        """ag_pairs AS (
            SELECT pr.pair_id, a.agreement_id, a.period_start, a.period_end, a.profile
            FROM agreements a JOIN pairs pr ON pr.institution_code = a.institution_code
                AND pr.batch_code = a.batch_code AND pr.item_code = a.item_code
        )""",
        "prod AS (SELECT DISTINCT batch_code, item_code, product_code, kind, conversion FROM item_products)",
        # Grouped, windowed and joined by the integer pair_id alone; the codes come back at the end.
        _monthly_cte(src, item_qty, inst, monthly),
    ]
    if interrupted:
        ctes += [
            f"""non_selected_days AS (
                SELECT pr.pair_id, pr.institution_code, pr.batch_code, pr.item_code, p.accepted_on,
                       sum({item_qty}) AS ex
                FROM {src} p
                JOIN prod s ON s.product_code = p.product_code AND s.kind = 'same_generic'
                JOIN (SELECT DISTINCT batch_code, item_code FROM {INTERRUPTIONS_RELATION}) ii
                    ON ii.batch_code = s.batch_code AND ii.item_code = s.item_code
                JOIN pairs pr ON pr.institution_code = p.institution_code
                    AND pr.batch_code = s.batch_code AND pr.item_code = s.item_code
                WHERE p.accepted_on <= $as_of{inst}{lo_lines}
                GROUP BY ALL
            )""",
            f"""exempt_days AS (
                SELECT n.* FROM non_selected_days n
                WHERE EXISTS (
                    SELECT 1 FROM {INTERRUPTIONS_RELATION} i
                    WHERE i.batch_code = n.batch_code AND i.item_code = n.item_code
                      AND (i.institution_code IS NULL OR i.institution_code = n.institution_code)
                      AND n.accepted_on >= i.start_on AND (i.end_on IS NULL OR n.accepted_on <= i.end_on)
                )
            )""",
            """exempt AS (
                SELECT pair_id, year(accepted_on) * 12 + month(accepted_on) - 1 AS midx, sum(ex) AS ex
                FROM exempt_days GROUP BY ALL
            )""",
        ]
    exempt_join = "LEFT JOIN exempt e ON e.pair_id = m.pair_id AND e.midx = m.midx" if interrupted else ""
    out_where = "WHERE v.midx >= $out_lo" if monthly is not None and monthly.out_lo is not None else ""
    ex = "coalesce(e.ex, 0)" if interrupted else "0"
    ref_day = "least(last_day(make_date(CAST(m.midx // 12 AS BIGINT), CAST(m.midx % 12 + 1 AS BIGINT), 1)), $as_of)"
    if monthly is not None and monthly.out_lo is not None:
        ctes += _since_ctes(ex, exempt_join, ref_day)
    else:
        ctes += [
            f"""placed AS (
                SELECT m.*, {ex} AS ex, a.agreement_id, a.profile
                FROM monthly m
                {exempt_join}
                LEFT JOIN ag_pairs a ON a.pair_id = m.pair_id AND {ref_day} BETWEEN a.period_start AND a.period_end
            )""",
            """w AS (
                SELECT *,
                       sum(sub) OVER (by_pair RANGE BETWEEN 1 PRECEDING AND 1 PRECEDING) AS prev_sub,
                       sum(sub) OVER (by_pair RANGE BETWEEN 12 PRECEDING AND 12 PRECEDING) AS last_year_sub,
                       sum(sel) OVER (by_year ROWS UNBOUNDED PRECEDING) AS run_sel,
                       sum(ns - ex) OVER (by_year ROWS UNBOUNDED PRECEDING) AS run_ns
                FROM placed
                WINDOW by_pair AS (PARTITION BY pair_id ORDER BY midx),
                       by_year AS (PARTITION BY pair_id, agreement_id ORDER BY midx)
            )""",
        ]
    if misaligned:
        # A year starting mid-month: its first month's row also holds the days before the start, which
        # belong to the previous year; subtract them from the running sums.
        ctes += [
            """mid_start AS (
                SELECT a.agreement_id, a.pair_id, pr.institution_code, pr.batch_code, pr.item_code, a.period_start,
                       CAST(date_trunc('month', a.period_start) AS DATE) AS month_start
                FROM ag_pairs a JOIN pairs pr ON pr.pair_id = a.pair_id
                WHERE day(a.period_start) <> 1 AND a.period_start <= $as_of
            )""",
            f"""before_start AS (
                SELECT b.agreement_id,
                       coalesce(sum({item_qty}) FILTER (WHERE s.kind = 'selected'), 0) AS sel,
                       coalesce(sum({item_qty}) FILTER (WHERE s.kind = 'same_generic'), 0) AS ns
                FROM mid_start b
                JOIN prod s ON s.batch_code = b.batch_code AND s.item_code = b.item_code
                JOIN {src} p ON p.institution_code = b.institution_code AND p.product_code = s.product_code
                    AND p.accepted_on >= b.month_start AND p.accepted_on < b.period_start{start_lines}
                GROUP BY b.agreement_id
            )""",
        ]
        if interrupted:
            ctes.append(
                """exempt_before_start AS (
                    SELECT b.agreement_id, sum(x.ex) AS ex
                    FROM mid_start b JOIN exempt_days x ON x.pair_id = b.pair_id
                        AND x.accepted_on >= b.month_start AND x.accepted_on < b.period_start
                    GROUP BY b.agreement_id
                )"""
            )
        exempt_before = "coalesce(xb.ex, 0)" if interrupted else "0"
        xb_join = "LEFT JOIN exempt_before_start xb ON xb.agreement_id = b.agreement_id" if interrupted else ""
        ctes.append(
            f"""pre AS (
                SELECT b.agreement_id, b.sel, b.ns - {exempt_before} AS ns FROM before_start b {xb_join}
            )"""
        )
    pre_join = "LEFT JOIN pre ON pre.agreement_id = w.agreement_id" if misaligned else ""
    pre_sel, pre_ns = ("coalesce(pre.sel, 0)", "coalesce(pre.ns, 0)") if misaligned else ("0", "0")
    ctes.append(
        f"""v AS (
            SELECT w.*, w.sel + w.ns + w.sub AS total, cr.cap_ratio, cr.cap_ratio_int,
                   CAST(w.sel + w.ns + w.sub AS DOUBLE) AS total_d, CAST(w.sub AS DOUBLE) AS sub_d,
                   CASE WHEN w.agreement_id IS NOT NULL THEN w.run_sel - {pre_sel} END AS cum_sel,
                   CASE WHEN w.agreement_id IS NOT NULL THEN w.run_ns - {pre_ns} END AS cum_ns
            FROM w {pre_join}
            LEFT JOIN {CAPS_RELATION} cr ON cr.profile = w.profile
        )"""
    )
    # cap_limit: an integral ratio (the usual 1) multiplies without DuckDB's slow 128-bit rescaling.
    return (
        "WITH "
        + ",\n".join(ctes)
        + f"""
        SELECT pr.institution_code, pr.batch_code, pr.item_code,
               printf('%04d-%02d', midx // 12, midx % 12 + 1) AS month,
               CAST(sel AS DECIMAL(18, 4)) AS selected_qty,
               CAST(ns AS DECIMAL(18, 4)) AS non_selected_qty,
               CAST(sub AS DECIMAL(18, 4)) AS substitute_qty,
               CAST(ex AS DECIMAL(18, 4)) AS exempt_qty,
               CAST(total AS DECIMAL(18, 4)) AS total_qty,
               {RATIO_OF_MACRO}(CAST(sel AS DOUBLE) / total_d, sel, total) AS selected_share,
               {RATIO_OF_MACRO}(CAST(ns AS DOUBLE) / total_d, ns, total) AS non_selected_share,
               {RATIO_OF_MACRO}(sub_d / total_d, sub, total) AS substitute_share,
               {RATIO_OF_MACRO}(sub_d / CAST(prev_sub AS DOUBLE) - 1, sub - prev_sub, prev_sub) AS mom_growth,
               {RATIO_OF_MACRO}(sub_d / CAST(last_year_sub AS DOUBLE) - 1, sub - last_year_sub, last_year_sub)
                   AS yoy_growth,
               CAST(cum_sel AS DECIMAL(18, 4)) AS cum_selected_qty,
               CAST(cum_ns AS DECIMAL(18, 4)) AS cum_non_selected_qty,
               CASE WHEN cap_ratio_int IS NOT NULL THEN CAST(cum_sel * cap_ratio_int AS DECIMAL(18, 4))
                    ELSE CAST(cap_ratio * cum_sel AS DECIMAL(18, 4)) END AS cap_limit,
               coalesce(cap_ratio IS NOT NULL AND cum_ns > cap_ratio * cum_sel, FALSE) AS cap_exceeded
        FROM v JOIN pairs pr ON pr.pair_id = v.pair_id
        {out_where}
        {"ORDER BY pr.institution_code, pr.batch_code, pr.item_code, midx" if ordered else ""}
        """
    )


def _since_ctes(ex: str, exempt_join: str, ref_day: str) -> list[str]:
    """``placed`` and ``w`` for the rows from ``$out_lo`` on only (the cycle's increment).

    Windows over every month read (a year back, and back to each agreement year's start) would cost
    more than the rest of the query: the months before ``$out_lo`` enter only as one sum per
    agreement (``base``) and the two looked-up months of the growth figures (exact-month joins, the
    same values as the RANGE frames of the full query: one rollup row per pair and month).
    """
    return [
        f"""placed AS (
            SELECT m.*, {ex} AS ex, a.agreement_id, a.profile, a.period_start
            FROM monthly m
            {exempt_join}
            LEFT JOIN ag_pairs a ON a.pair_id = m.pair_id AND {ref_day} BETWEEN a.period_start AND a.period_end
            WHERE m.midx >= $out_lo
        )""",
        f"""base AS (
            SELECT o.agreement_id, sum(m.sel) AS sel0, sum(m.ns - {ex}) AS ns0
            FROM (SELECT DISTINCT pair_id, agreement_id, period_start FROM placed WHERE agreement_id IS NOT NULL) o
            JOIN monthly m ON m.pair_id = o.pair_id
                AND m.midx >= {MIDX_SQL.format("o.period_start")} AND m.midx < $out_lo
            {exempt_join}
            GROUP BY o.agreement_id
        )""",
        """w AS (
            SELECT p.pair_id, p.midx, p.sel, p.ns, p.sub, p.ex, p.agreement_id, p.profile,
                   m1.sub AS prev_sub, m12.sub AS last_year_sub,
                   sum(p.sel) OVER by_year + coalesce(b.sel0, 0) AS run_sel,
                   sum(p.ns - p.ex) OVER by_year + coalesce(b.ns0, 0) AS run_ns
            FROM placed p
            LEFT JOIN monthly m1 ON m1.pair_id = p.pair_id AND m1.midx = p.midx - 1
            LEFT JOIN monthly m12 ON m12.pair_id = p.pair_id AND m12.midx = p.midx - 12
            LEFT JOIN base b ON b.agreement_id = p.agreement_id
            WINDOW by_year AS (PARTITION BY p.pair_id, p.agreement_id ORDER BY p.midx ROWS UNBOUNDED PRECEDING)
        )""",
    ]


def _monthly_cte(src: str, item_qty: str, inst: str, monthly: _Monthly | None) -> str:
    """Selected / same-generic / substitute quantity per pair and month: from the lines, or whole
    months from the rollup plus the as-of month's days from the lines."""
    sums = f"""coalesce(sum({item_qty}) FILTER (WHERE s.kind = 'selected'), 0) AS sel,
                   coalesce(sum({item_qty}) FILTER (WHERE s.kind = 'same_generic'), 0) AS ns,
                   coalesce(sum({item_qty}) FILTER (WHERE s.kind = 'substitute'), 0) AS sub"""
    joins = """JOIN prod s ON s.product_code = p.product_code
            JOIN pairs pr ON pr.institution_code = p.institution_code
                AND pr.batch_code = s.batch_code AND pr.item_code = s.item_code"""
    if monthly is None:
        return f"""monthly AS (
            SELECT pr.pair_id, {MIDX_SQL.format("p.accepted_on")} AS midx,
                   {sums}
            FROM {src} p
            {joins}
            WHERE p.accepted_on <= $as_of{inst}
            GROUP BY pr.pair_id, midx
        )"""
    lo = f" AND m.month IN {monthly.months}" if monthly.months is not None else ""
    inst_m = " AND m.institution_code = $institution" if inst else ""
    whole = f"""SELECT pr.pair_id, m.midx, m.sel_qty AS sel, m.ns_qty AS ns, m.sub_qty AS sub
            FROM {monthly.relation} m
            JOIN pairs pr ON pr.institution_code = m.institution_code
                AND pr.batch_code = m.batch_code AND pr.item_code = m.item_code
            WHERE m.midx <= $full_hi{lo}{inst_m}"""
    if monthly.partial_month is None:
        return f"monthly AS MATERIALIZED ({whole})"
    return f"""monthly AS MATERIALIZED (
            {whole}
            UNION ALL
            SELECT pr.pair_id, {MIDX_SQL.format("p.accepted_on")} AS midx,
                   {sums}
            FROM {src} p
            {joins}
            WHERE p.month = '{monthly.partial_month}' AND p.accepted_on <= $as_of{inst}
            GROUP BY pr.pair_id, midx
        )"""


def substitutes(
    q: FactQuery,
    as_of: dt.date,
    *,
    cap_ratio: Mapping[str, Decimal | None],
    interruptions: pa.Table | None = None,
    source: str = "purchases",
    batch: str | None = None,
    institution: str | None = None,
    ordered: bool = False,
    monthly: str | None = None,
    since_month: str | None = None,
) -> pa.Table:
    """Monthly selected / non-selected / substitute use and the cap check (module docstring).
    Needs ``agreements`` and ``item_products`` registered on ``q``.

    ``monthly`` names the pair-month rollup of ``source`` (``jicai.monitoring.monthly``): whole
    months come from it, the as-of month's days (when as_of is not a month end) from ``source``.
    ``since_month`` (YYYY-MM, needs ``monthly``) returns only the rows from that month on, reading
    only what they depend on: 12 months back for year-on-year growth, and back to the start of
    every agreement year they fall in for the cumulative figures — the monthly cycle's increment.
    """
    src = safe_relation(source)
    ensure_macros(q)
    caps = [
        {
            "profile": name,
            "cap_ratio": to_six_places(ratio),
            "cap_ratio_int": int(ratio) if ratio is not None and Decimal(ratio) == int(ratio) else None,
        }
        for name, ratio in sorted(cap_ratio.items())
    ]
    q.register(CAPS_RELATION, pa.Table.from_pylist(caps, schema=_CAPS_SCHEMA))
    breaks = _interruptions(interruptions)
    q.register(INTERRUPTIONS_RELATION, breaks)
    mid_month = q.rows("SELECT count(*) AS n FROM agreements WHERE day(period_start) <> 1")[0]["n"]
    params: dict[str, Any] = {"as_of": as_of}
    plan: _Monthly | None = None
    if since_month is not None and monthly is None:
        raise ValueError("since_month needs the monthly rollup")
    if monthly is not None:
        plan, extra = _monthly_plan(q, as_of, safe_relation(monthly), since_month)
        params |= extra
    sql = _substitutes_sql(
        src,
        item_qty_sql(q, src, conversion="s.conversion"),
        batch=bool(batch),
        institution=bool(institution),
        interrupted=breaks.num_rows > 0,
        misaligned=mid_month > 0,
        ordered=ordered,
        monthly=plan,
    )
    if batch:
        params["batch"] = batch
    if institution:
        params["institution"] = institution
    table = q.con.sql(sql, params=params).to_arrow_table()
    return table.select(list(SUBSTITUTE_COLUMNS)).cast(SUBSTITUTE_SCHEMA)


def _monthly_plan(
    q: FactQuery, as_of: dt.date, relation: str, since_month: str | None
) -> tuple[_Monthly, dict[str, Any]]:
    """What the rollup path reads: the partial as-of month, the first month needed, mid-month starts."""
    at_month_end = as_of == month_end(as_of)
    as_of_midx = as_of.year * 12 + as_of.month - 1
    params: dict[str, Any] = {"full_hi": as_of_midx if at_month_end else as_of_midx - 1}
    months: str | None = None
    out_lo: int | None = None
    if since_month is not None:
        month_list([since_month])  # validates
        out_lo = int(since_month[:4]) * 12 + int(since_month[5:7]) - 1
        first_day = dt.date(out_lo // 12, out_lo % 12 + 1, 1)
        starts = q.con.execute(
            f"SELECT min({MIDX_SQL.format('period_start')}) FROM agreements "
            "WHERE period_end >= $first AND period_start <= $as_of",
            {"first": first_day, "as_of": as_of},
        ).fetchall()[0][0]
        # year-on-year needs the same months a year earlier, month-on-month the month before, the
        # cumulative figures every month since the start of each agreement year returned
        cum_lo = min(out_lo, starts) if starts is not None else out_lo
        wanted = {*range(out_lo - 12, as_of_midx - 11), out_lo - 1, *range(cum_lo, as_of_midx + 1)}
        months = month_list(month_label(m) for m in wanted)
        params["out_lo"] = out_lo
    starts_mid = q.con.execute(
        "SELECT DISTINCT strftime(period_start, '%Y-%m') FROM agreements "
        "WHERE day(period_start) <> 1 AND period_start <= $as_of",
        {"as_of": as_of},
    ).fetchall()
    plan = _Monthly(
        relation=relation,
        partial_month=None if at_month_end else as_of.strftime("%Y-%m"),
        months=months,
        out_lo=out_lo,
        start_months=month_list(m for (m,) in starts_mid),
    )
    return plan, params
