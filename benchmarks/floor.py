"""The floor: progress + substitutes as the most direct hand-written DuckDB SQL over the Parquet files.

The engine (``jicai.monitoring.progress`` / ``substitutes`` over ``FactQuery``) must stay within
1.3 × this time on the same files and connection settings; it exists only to be measured against.
It reads the files of one Delta snapshot (``DeltaTable(path).file_uris()``) with no scope filter and
the reference Parquet files written by ``benchmarks.generate``.

Definitions (semantics.md "Time", "Non-selected cap"; the engine's module docstrings; R-C2, R-D2,
R-H4, R-H7):

progress, one row per agreement —
  counted = Σ qty × conversion of accepted purchases of the item's *selected* products with
  accepted_on in [period_start, min(as_of, period_end)]; completion = counted ÷ agreed; elapsed =
  (as_of − start + 1) ÷ (end − start + 1) clipped to [0, 1]; status: ``completed`` if counted ≥ agreed
  (or agreed ≤ 0), ``on_track`` if nothing has elapsed or completion ≥ 0.90 × elapsed, ``behind`` if
  ≥ 0.70 × elapsed, else ``at_risk`` (compared exactly: counted × days_total ≥ r × days_elapsed ×
  agreed); projected = counted + recent × days_left ÷ rate_days, where recent is what was counted in
  the 90 days up to as_of and rate_days = min(90, days elapsed in the period) (the window clipped to
  the period, as the engine does), days_left = end − max(as_of, start − 1), ≥ 0; over_volume =
  max(0, counted − agreed).

substitutes, one row per institution × batch × item × calendar month of accepted_on ≤ as_of with
any purchase of the item's products, for institution × item pairs that have an agreement —
  selected / same-generic non-selected / substitute quantities × conversion, their total and shares;
  mom / yoy growth of ``substitute_qty`` against the previous calendar month / the same month a year
  earlier, NULL when that month has no row or its substitute quantity is 0; cumulative selected and
  non-selected quantity within the agreement year containing the month's reference day (its last
  day, or as_of), NULL when none does; cap_limit = cap_ratio × cum_selected; cap_exceeded =
  cum_non_selected > cap_limit (false without an agreement). Monthly cumulation equals the engine's
  daily attribution when agreement years start on the first of a month (the generated data: calendar
  years). No supply interruptions are considered (the benchmark data has none).

Quantities are DECIMAL(18,4) like the engine's. Each line's qty × conversion is rounded to 4 places
before summing (the engine rounds the sums; the same numbers unless a line has more than 4 places —
never in the generated data): scaling a DECIMAL(38,8) sum down to 4 places costs ~0.6 µs a value in
DuckDB 2.0, seconds over millions of rows, while the per-line cast is free. Ratios are DOUBLE
rounded half away from zero to 4 places (the engine rounds exact decimals half-up; the two agree
except on binary ties). Rows come unordered unless ``ordered=True`` (the engine's order).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

import duckdb
import pyarrow as pa

PROGRESS_COLUMNS = (
    "batch_code",
    "item_code",
    "institution_code",
    "year",
    "agreed_qty",
    "counted_qty",
    "completion",
    "elapsed",
    "status",
    "projected_qty",
    "over_volume_qty",
)
SUBSTITUTE_COLUMNS = (
    "institution_code",
    "batch_code",
    "item_code",
    "month",
    "selected_qty",
    "non_selected_qty",
    "substitute_qty",
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


def _string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _files(paths: Sequence[str]) -> str:
    if not paths:
        raise ValueError("no purchase files")
    return "[" + ", ".join(_string(p) for p in paths) + "]"


def _order(ordered: bool, columns: str) -> str:
    return f"\n        ORDER BY {columns}" if ordered else ""


def progress_sql(
    purchases: str,
    agreements: str,
    item_products: str,
    as_of: dt.date,
    *,
    behind_ratio: Decimal = Decimal("0.90"),
    at_risk_ratio: Decimal = Decimal("0.70"),
    run_rate_days: int = 90,
    ordered: bool = False,
) -> str:
    """Progress per agreement (module docstring); ``purchases`` etc. are SQL relations."""
    day = f"DATE '{as_of.isoformat()}'"
    behind, at_risk, window = Decimal(behind_ratio), Decimal(at_risk_ratio), int(run_rate_days)
    return f"""
        WITH ag AS (
            SELECT *,
                   period_end - period_start + 1 AS days_total,
                   least(greatest({day} - period_start + 1, 0), period_end - period_start + 1) AS days_elapsed,
                   greatest(period_end - greatest({day}, period_start - 1), 0) AS days_left
            FROM {agreements}
        ),
        sel AS (
            SELECT DISTINCT batch_code, item_code, product_code, conversion
            FROM {item_products} WHERE kind = 'selected'
        ),
        lines AS (
            SELECT p.institution_code, s.batch_code, s.item_code, p.accepted_on,
                   CAST(p.qty * s.conversion AS DECIMAL(18, 4)) AS q
            FROM {purchases} p JOIN sel s ON s.product_code = p.product_code
            WHERE p.accepted_on <= {day}
        ),
        counted AS (
            SELECT a.agreement_id, sum(l.q) AS counted,
                   sum(l.q) FILTER (WHERE l.accepted_on > {day} - {window}) AS recent
            FROM ag a JOIN lines l
              ON l.institution_code = a.institution_code AND l.batch_code = a.batch_code
             AND l.item_code = a.item_code AND l.accepted_on BETWEEN a.period_start AND a.period_end
            GROUP BY a.agreement_id
        ),
        c AS (
            SELECT a.*, coalesce(k.counted, 0) AS counted, coalesce(k.recent, 0) AS recent,
                   least({window}, a.days_elapsed) AS rate_days
            FROM ag a LEFT JOIN counted k ON k.agreement_id = a.agreement_id
        )
        SELECT batch_code, item_code, institution_code, CAST(year AS INTEGER) AS year,
               agreed_qty,
               CAST(counted AS DECIMAL(18, 4)) AS counted_qty,
               round(CAST(counted AS DOUBLE) / CAST(nullif(agreed_qty, 0) AS DOUBLE), 4) AS completion,
               round(days_elapsed / days_total, 4) AS elapsed,
               CASE WHEN agreed_qty <= 0 OR counted >= agreed_qty THEN 'completed'
                    WHEN days_elapsed <= 0 THEN 'on_track'
                    WHEN counted * days_total >= {behind} * days_elapsed * agreed_qty THEN 'on_track'
                    WHEN counted * days_total >= {at_risk} * days_elapsed * agreed_qty THEN 'behind'
                    ELSE 'at_risk' END AS status,
               round(CASE WHEN rate_days > 0
                          THEN CAST(counted AS DOUBLE) + CAST(recent AS DOUBLE) * days_left / rate_days
                          ELSE CAST(counted AS DOUBLE) END, 4) AS projected_qty,
               CAST(greatest(counted - agreed_qty, 0) AS DECIMAL(18, 4)) AS over_volume_qty
        FROM c{_order(ordered, "batch_code, item_code, institution_code, year")}
    """


def substitutes_sql(
    purchases: str,
    agreements: str,
    item_products: str,
    as_of: dt.date,
    *,
    cap_ratio: Decimal = Decimal(1),
    ordered: bool = False,
) -> str:
    """Monthly selected / non-selected / substitute use with growth and the cap (module docstring)."""
    day = f"DATE '{as_of.isoformat()}'"
    # An integral ratio stays an integer literal: scaling a DECIMAL(38, x) sum down is slow in DuckDB.
    ratio = Decimal(cap_ratio)
    ratio = ratio.to_integral_value() if ratio == ratio.to_integral_value() else ratio
    key = "institution_code, batch_code, item_code"
    return f"""
        WITH ag AS (SELECT * FROM {agreements}),
        pairs AS (SELECT DISTINCT {key} FROM ag),
        prod AS (SELECT DISTINCT batch_code, item_code, product_code, kind, conversion FROM {item_products}),
        lines AS (
            SELECT p.institution_code, d.batch_code, d.item_code, d.kind,
                   year(p.accepted_on) * 12 + month(p.accepted_on) - 1 AS midx,
                   CAST(p.qty * d.conversion AS DECIMAL(18, 4)) AS q
            FROM {purchases} p
            JOIN prod d ON d.product_code = p.product_code
            JOIN pairs r ON r.institution_code = p.institution_code
             AND r.batch_code = d.batch_code AND r.item_code = d.item_code
            WHERE p.accepted_on <= {day}
        ),
        monthly AS (
            SELECT institution_code, batch_code, item_code, midx,
                   coalesce(sum(q) FILTER (WHERE kind = 'selected'), 0) AS sel,
                   coalesce(sum(q) FILTER (WHERE kind = 'same_generic'), 0) AS ns,
                   coalesce(sum(q) FILTER (WHERE kind = 'substitute'), 0) AS sub
            FROM lines
            GROUP BY ALL
        ),
        placed AS (
            SELECT m.*, a.agreement_id
            FROM monthly m LEFT JOIN ag a
              ON a.institution_code = m.institution_code AND a.batch_code = m.batch_code
             AND a.item_code = m.item_code
             AND least(last_day(make_date(CAST(m.midx // 12 AS BIGINT), CAST(m.midx % 12 + 1 AS BIGINT), 1)), {day})
                 BETWEEN a.period_start AND a.period_end
        ),
        w AS (
            SELECT *,
                   sum(sub) OVER (pair RANGE BETWEEN 1 PRECEDING AND 1 PRECEDING) AS prev_sub,
                   sum(sub) OVER (pair RANGE BETWEEN 12 PRECEDING AND 12 PRECEDING) AS last_year_sub,
                   sum(sel) OVER (year_ ROWS UNBOUNDED PRECEDING) AS cum_sel,
                   sum(ns) OVER (year_ ROWS UNBOUNDED PRECEDING) AS cum_ns
            FROM placed
            WINDOW pair AS (PARTITION BY {key} ORDER BY midx),
                   year_ AS (PARTITION BY {key}, agreement_id ORDER BY midx)
        ),
        v AS (
            SELECT *, sel + ns + sub AS total,
                   CASE WHEN agreement_id IS NOT NULL THEN cum_sel END AS cs,
                   CASE WHEN agreement_id IS NOT NULL THEN cum_ns END AS cn
            FROM w
        )
        SELECT institution_code, batch_code, item_code,
               printf('%04d-%02d', midx // 12, midx % 12 + 1) AS month,
               CAST(sel AS DECIMAL(18, 4)) AS selected_qty,
               CAST(ns AS DECIMAL(18, 4)) AS non_selected_qty,
               CAST(sub AS DECIMAL(18, 4)) AS substitute_qty,
               CAST(total AS DECIMAL(18, 4)) AS total_qty,
               round(CAST(sel AS DOUBLE) / CAST(nullif(total, 0) AS DOUBLE), 4) AS selected_share,
               round(CAST(ns AS DOUBLE) / CAST(nullif(total, 0) AS DOUBLE), 4) AS non_selected_share,
               round(CAST(sub AS DOUBLE) / CAST(nullif(total, 0) AS DOUBLE), 4) AS substitute_share,
               round(CAST(sub - prev_sub AS DOUBLE) / CAST(nullif(prev_sub, 0) AS DOUBLE), 4) AS mom_growth,
               round(CAST(sub - last_year_sub AS DOUBLE) / CAST(nullif(last_year_sub, 0) AS DOUBLE), 4) AS yoy_growth,
               CAST(cs AS DECIMAL(18, 4)) AS cum_selected_qty,
               CAST(cn AS DECIMAL(18, 4)) AS cum_non_selected_qty,
               CAST({ratio} * cs AS DECIMAL(18, 4)) AS cap_limit,
               coalesce(cn > {ratio} * cs, FALSE) AS cap_exceeded
        FROM v{_order(ordered, "institution_code, batch_code, item_code, midx")}
    """


def floor_progress_and_substitutes(
    con: duckdb.DuckDBPyConnection,
    purchases_files: Sequence[str],
    agreements_path: str,
    item_products_path: str,
    as_of: dt.date,
    *,
    behind_ratio: Decimal = Decimal("0.90"),
    at_risk_ratio: Decimal = Decimal("0.70"),
    cap_ratio: Decimal = Decimal(1),
    run_rate_days: int = 90,
    ordered: bool = False,
) -> tuple[pa.Table, pa.Table]:
    """(progress, substitutes) as Arrow tables, each computed by one query straight over the files."""
    purchases = f"read_parquet({_files(purchases_files)})"
    agreements = f"read_parquet({_string(str(agreements_path))})"
    item_products = f"read_parquet({_string(str(item_products_path))})"
    progress = con.sql(
        progress_sql(
            purchases,
            agreements,
            item_products,
            as_of,
            behind_ratio=behind_ratio,
            at_risk_ratio=at_risk_ratio,
            run_rate_days=run_rate_days,
            ordered=ordered,
        )
    ).to_arrow_table()
    subs = con.sql(
        substitutes_sql(purchases, agreements, item_products, as_of, cap_ratio=cap_ratio, ordered=ordered)
    ).to_arrow_table()
    return progress.select(list(PROGRESS_COLUMNS)), subs.select(list(SUBSTITUTE_COLUMNS))
