"""The pair-month rollup: accepted purchases per institution × VBP item × calendar month, by kind.

Province-wide, 20 M purchase lines are ~6 M pair-months, and a new month of data touches only its
own partition. ``progress`` and ``substitutes`` read whole months from here and only the days of
partial months (an agreement year starting mid-month, an as-of date before a month's end, the start
of the run-rate window) from the lines, so they give exactly the numbers of the line-level query
(tests compare both) at a fraction of the reads.

Quantities are each line's qty × conversion rounded half-up to 4 places (``item_qty_sql``), summed;
a product listed under several items counts for each, as in the line-level queries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from deltalake import DeltaTable, write_deltalake

from jicai.facts.query import FactQuery
from jicai.facts.schemas import PAIR_MONTHLY
from jicai.facts.store import table_path
from jicai.monitoring.progress import item_qty_sql, month_list, safe_relation


def midx(day: dt.date) -> int:
    """Month index year × 12 + month − 1 (the rollup's ``midx``)."""
    return day.year * 12 + day.month - 1


def month_label(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def pair_monthly_sql(q: FactQuery, *, source: str = "purchases", months: Iterable[str] | None = None) -> str:
    """SELECT producing PAIR_MONTHLY rows from the lines of ``source`` (all months, or ``months``)."""
    src = safe_relation(source)
    where = "p.accepted_on IS NOT NULL"
    if months is not None:
        where += f" AND p.month IN {month_list(months)}"
    qty = item_qty_sql(q, src)
    return f"""
        WITH prod AS (SELECT DISTINCT batch_code, item_code, product_code, kind, conversion FROM item_products)
        SELECT p.institution_code, p.region_code, s.batch_code, s.item_code,
               CAST(year(p.accepted_on) * 12 + month(p.accepted_on) - 1 AS INTEGER) AS midx,
               CAST(coalesce(sum({qty}) FILTER (WHERE s.kind = 'selected'), 0) AS DECIMAL(18, 4)) AS sel_qty,
               CAST(coalesce(sum({qty}) FILTER (WHERE s.kind = 'same_generic'), 0) AS DECIMAL(18, 4)) AS ns_qty,
               CAST(coalesce(sum({qty}) FILTER (WHERE s.kind = 'substitute'), 0) AS DECIMAL(18, 4)) AS sub_qty,
               count(*)::BIGINT AS lines,
               strftime(p.accepted_on, '%Y-%m') AS month
        FROM {src} p JOIN prod s ON s.product_code = p.product_code
        WHERE {where}
        GROUP BY ALL
    """


def build_pair_monthly(q: FactQuery, home: Path, months: set[str] | None) -> int:
    """Rewrite the rollup for ``months`` (all when None) in one Delta commit; returns rows written.

    Needs ``item_products`` registered on ``q`` (a system-scope query: the rollup is province-wide
    and every read of it is scoped again by the query layer).
    """
    if months is not None and not months:
        return 0
    data = q.arrow(pair_monthly_sql(q, months=months)).cast(PAIR_MONTHLY.schema)
    path = table_path(home, PAIR_MONTHLY)
    path.parent.mkdir(parents=True, exist_ok=True)
    if months is None or not DeltaTable.is_deltatable(str(path)):
        write_deltalake(str(path), data, partition_by=["month"], mode="overwrite", schema_mode="overwrite")
    else:
        write_deltalake(
            str(path), data, partition_by=["month"], mode="overwrite", predicate=f"month IN {month_list(months)}"
        )
    return int(data.num_rows)


def register_pair_monthly(q: FactQuery, name: str = "pair_monthly_tmp", *, source: str = "purchases") -> str:
    """Materialise the rollup of ``source`` as a temp table on ``q`` (tests, ad-hoc reports); returns its name."""
    q.con.execute(f"CREATE OR REPLACE TEMP TABLE {safe_relation(name)} AS {pair_monthly_sql(q, source=source)}")
    return name
