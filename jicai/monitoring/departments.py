"""Department progress: each department's dispensing of an item against its target (R-H3, R-L1).

Targets (batch_code, item_code, institution_code, year, department_code, target_qty) come from the
hospital workspace when the caller passes them: ``published_targets`` are the plans the hospital has
published (R-H3) and replace the other targets agreement by agreement — every agreement (batch, item,
institution, year) with at least one published row takes its targets from there, a department without
a row getting 0, and a row with a NULL ``department_code`` only marks its agreement as covered (so a
department scope that sees its own rows only still knows the hospital has published). ``targets``
replaces the derivation for every agreement. Otherwise, and for agreements nothing covers, they are
derived per agreement with
``department_targets``: each department's dispensing of the item's products (selected, same generic
and substitute, × conversion) in the ``reference_months`` months before the period (the window of
``allocation.reference_window``) is its weight, and ``allocation.allocate_targets`` splits the agreed
quantity into whole units by largest remainder (semantics.md "Department targets"). An agreed
quantity with a fraction is split on its whole part and the fraction goes to the department that
ranks first (larger use, then code), so the targets still sum exactly to the agreed quantity.

Dispensed = dispensing of the item's *selected* products in [period_start, min(as_of, period_end)]
× conversion (each line rounded to 4 places, as in ``progress``). Completion, elapsed and status
follow ``progress`` (same thresholds, same exact comparisons) with the department target in place
of the agreed quantity; a target of 0 is ``completed``. A department that dispensed the item but
has no target is listed with target 0.

Scopes: the ``dispensing`` view already limits a department scope to its own department; given
targets are filtered to it too. A department scope cannot derive targets (it sees only its own
history, which would hand it the whole agreed quantity), so without given targets its rows carry a
NULL target, completion and status — the hospital derives or sets the targets and passes them in.

Deriving targets is one set-based query (largest remainder in exact integer arithmetic), tested
against ``allocate_targets`` applied agreement by agreement. Rows come in no particular order unless
``ordered=True``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pyarrow as pa

from jicai.core.tenancy import Level
from jicai.facts.query import FactQuery
from jicai.facts.schemas import QTY
from jicai.monitoring.progress import (
    RATIO,
    RATIO_MACRO,
    THRESHOLDS_RELATION,
    agreements_sql,
    ensure_macros,
    item_qty_sql,
    register_thresholds,
    status_sql,
)
from jicai.policy.allocation import DepartmentUsage, UsageBasis, allocate_targets

DEPARTMENT_COLUMNS: tuple[str, ...] = (
    "batch_code",
    "item_code",
    "institution_code",
    "department_code",
    "year",
    "period_start",
    "period_end",
    "target_qty",
    "dispensed_qty",
    "completion",
    "elapsed",
    "status",
)

DEPARTMENT_SCHEMA = pa.schema(
    [
        ("batch_code", pa.string()),
        ("item_code", pa.string()),
        ("institution_code", pa.string()),
        ("department_code", pa.string()),
        ("year", pa.int32()),
        ("period_start", pa.date32()),
        ("period_end", pa.date32()),
        ("target_qty", QTY),
        ("dispensed_qty", QTY),
        ("completion", RATIO),
        ("elapsed", RATIO),
        ("status", pa.string()),
    ]
)

TARGET_SCHEMA = pa.schema(
    [
        ("batch_code", pa.string()),
        ("item_code", pa.string()),
        ("institution_code", pa.string()),
        ("year", pa.int32()),
        ("department_code", pa.string()),
        ("target_qty", QTY),
    ]
)
"""Department targets, as the hospital workspace stores them and ``department_targets`` derives them."""

TARGETS_RELATION = "department_targets_in"
PUBLISHED_RELATION = "department_targets_published"


def _split(agreed: Decimal, usage: Mapping[str, DepartmentUsage], basis: UsageBasis) -> dict[str, Decimal]:
    """``allocate_targets`` on the whole part of ``agreed``; a fraction goes to the first-ranked department."""
    whole = agreed.to_integral_value(rounding=ROUND_DOWN)
    targets = allocate_targets(whole, usage, basis=basis)
    fraction = agreed - whole
    if fraction:
        first = min(usage, key=lambda dept: (-usage[dept].counted(basis), dept))
        targets[first] += fraction
    return targets


def _usage_sql(q: FactQuery, inst: str) -> str:
    """Each department's use of each agreement's item in the window before its year, by kind."""
    qty = item_qty_sql(q, "dispensing", qty="d.qty", conversion="p.conversion")
    return f"""
        ag AS (
            SELECT a.*, CAST(a.period_start - to_months(CAST($months AS INTEGER)) AS DATE) AS window_start,
                   a.period_start - 1 AS window_end
            FROM agreements a {inst}
        ),
        prod AS (SELECT DISTINCT batch_code, item_code, product_code, kind, conversion FROM item_products),
        usage_rows AS (
            SELECT ag.agreement_id, d.department_code,
                   greatest(coalesce(sum({qty}) FILTER (WHERE p.kind = 'selected'), 0), 0) AS selected,
                   greatest(coalesce(sum({qty}) FILTER (WHERE p.kind = 'same_generic'), 0), 0) AS non_selected,
                   greatest(coalesce(sum({qty}) FILTER (WHERE p.kind = 'substitute'), 0), 0) AS substitutes
            FROM ag
            JOIN prod p ON p.batch_code = ag.batch_code AND p.item_code = ag.item_code
            JOIN dispensing d ON d.institution_code = ag.institution_code AND d.product_code = p.product_code
                AND d.dispensed_on BETWEEN ag.window_start AND ag.window_end
            WHERE coalesce(d.department_code, '') <> ''
            GROUP BY ALL
        )"""


def department_targets(
    q: FactQuery, *, institution: str | None = None, reference_months: int = 12, basis: UsageBasis | None = None
) -> pa.Table:
    """Targets derived from each department's use in the window before each agreement year (R-H3).

    Largest remainder as ``allocation.allocate_targets`` (whole units by largest remainder, ties to
    the larger use then the department code, an equal split when all use is zero, a fraction of the
    agreed quantity to the department ranked first), set-based in DuckDB so that a province's
    agreements are split in one query: weights are scaled to integers (quantities have four
    decimals) and floors and remainders computed in exact integer arithmetic. Agreements with no
    departmental use in the window get no rows. Needs ``agreements`` and ``item_products``
    registered; refuses a department scope (it cannot see the other departments).
    """
    if q.scope.level is Level.DEPARTMENT:
        raise ValueError("department targets are derived at hospital level; a department scope sees one department")
    basis = basis or UsageBasis(reference_months=reference_months)
    inst = "WHERE a.institution_code = $institution" if institution else ""
    params: dict[str, Any] = {"months": basis.reference_months} | ({"institution": institution} if institution else {})
    kinds = [
        k
        for k, on in (
            ("selected", basis.selected),
            ("non_selected", basis.non_selected),
            ("substitutes", basis.substitutes),
        )
        if on
    ]
    weight = " + ".join(f"u.{k}" for k in kinds)
    table = q.con.sql(
        f"""
        WITH {_usage_sql(q, inst)},
        w AS (
            SELECT u.agreement_id, u.department_code,
                   CAST(CAST({weight} AS DECIMAL(38, 4)) * 10000 AS HUGEINT) AS w_int
            FROM usage_rows u
        ),
        x AS (
            SELECT w.*, ag.batch_code, ag.item_code, ag.institution_code, ag.year,
                   CAST(ag.agreed_qty AS DECIMAL(38, 4)) AS agreed,
                   CAST(floor(ag.agreed_qty) AS HUGEINT) AS units,
                   sum(w.w_int) OVER (PARTITION BY w.agreement_id) AS w_sum,
                   count(*) OVER (PARTITION BY w.agreement_id) AS n
            FROM w JOIN ag ON ag.agreement_id = w.agreement_id
            WHERE ag.agreed_qty >= 0
        ),
        y AS (
            SELECT *,
                   CASE WHEN w_sum = 0 THEN CAST(1 AS HUGEINT) ELSE w_int END AS ww,
                   CASE WHEN w_sum = 0 THEN CAST(n AS HUGEINT) ELSE w_sum END AS ws
            FROM x
        ),
        z AS (
            SELECT *, (units * ww) // ws AS fl, (units * ww) % ws AS rem FROM y
        ),
        r AS (
            SELECT *,
                   units - sum(fl) OVER (PARTITION BY agreement_id) AS leftover,
                   row_number() OVER (PARTITION BY agreement_id ORDER BY rem DESC, ww DESC, department_code) AS rk,
                   row_number() OVER (PARTITION BY agreement_id ORDER BY w_int DESC, department_code) AS first_rank
            FROM z
        )
        SELECT batch_code, item_code, institution_code, CAST(year AS INTEGER) AS year, department_code,
               CAST(CAST(fl + CASE WHEN rk <= leftover THEN 1 ELSE 0 END AS DECIMAL(38, 4))
                    + CASE WHEN first_rank = 1 THEN agreed - CAST(units AS DECIMAL(38, 4)) ELSE 0 END
                    AS DECIMAL(18, 4)) AS target_qty
        FROM r
        ORDER BY agreement_id, department_code
        """,
        params=params,
    ).to_arrow_table()
    return table.cast(TARGET_SCHEMA)


def department_targets_reference(
    q: FactQuery, *, institution: str | None = None, reference_months: int = 12, basis: UsageBasis | None = None
) -> pa.Table:
    """The same targets through ``allocation.allocate_targets`` one agreement at a time (the pure rule):
    what ``department_targets`` is tested against."""
    if q.scope.level is Level.DEPARTMENT:
        raise ValueError("department targets are derived at hospital level; a department scope sees one department")
    basis = basis or UsageBasis(reference_months=reference_months)
    inst = "WHERE a.institution_code = $institution" if institution else ""
    params: dict[str, Any] = {"months": basis.reference_months} | ({"institution": institution} if institution else {})
    result = q.con.execute(
        f"""
        WITH {_usage_sql(q, inst)}
        SELECT ag.agreement_id, ag.batch_code, ag.item_code, ag.institution_code, ag.year, ag.agreed_qty,
               u.department_code, u.selected, u.non_selected, u.substitutes
        FROM usage_rows u JOIN ag ON ag.agreement_id = u.agreement_id
        ORDER BY ag.agreement_id, u.department_code
        """,
        params,
    )
    names = [d[0] for d in result.description or []]
    rows = [dict(zip(names, row, strict=True)) for row in result.fetchall()]
    out: list[dict[str, Any]] = []
    for _, group in itertools.groupby(rows, key=lambda r: r["agreement_id"]):
        lines = list(group)
        head = lines[0]
        usage = {
            r["department_code"]: DepartmentUsage(
                selected=Decimal(r["selected"]),
                non_selected=Decimal(r["non_selected"]),
                substitutes=Decimal(r["substitutes"]),
            )
            for r in lines
        }
        agreed = Decimal(head["agreed_qty"])
        if agreed < 0:
            continue
        for dept, target in _split(agreed, usage, basis).items():
            out.append(
                {
                    "batch_code": head["batch_code"],
                    "item_code": head["item_code"],
                    "institution_code": head["institution_code"],
                    "year": head["year"],
                    "department_code": dept,
                    "target_qty": target,
                }
            )
    return pa.Table.from_pylist(out, schema=TARGET_SCHEMA)


def department_progress(
    q: FactQuery,
    as_of: dt.date,
    *,
    thresholds: Mapping[str, tuple[Decimal, Decimal]],
    targets: pa.Table | None = None,
    published_targets: pa.Table | None = None,
    institution: str | None = None,
    reference_months: int = 12,
    ordered: bool = False,
) -> pa.Table:
    """Each department's dispensing against its target on ``as_of`` (module docstring); with ``ordered``
    by batch, item, institution, year, department. Needs ``agreements`` and ``item_products`` registered."""
    ensure_macros(q)
    register_thresholds(q, thresholds)
    department_scope = q.scope.level is Level.DEPARTMENT
    known = targets is not None or not department_scope
    if targets is None:
        targets = (
            TARGET_SCHEMA.empty_table()
            if department_scope
            else department_targets(q, institution=institution, reference_months=reference_months)
        )
    q.register(TARGETS_RELATION, targets.select(TARGET_SCHEMA.names).cast(TARGET_SCHEMA))
    published = published_targets is not None and published_targets.num_rows > 0
    if published and published_targets is not None:
        q.register(PUBLISHED_RELATION, published_targets.select(TARGET_SCHEMA.names).cast(TARGET_SCHEMA))
    ag_sql, params = agreements_sql(batch=None, institution=institution)
    params["as_of"] = as_of
    dept_filter = " AND t.department_code = $department" if department_scope else ""
    if department_scope:
        params["department"] = q.scope.department_code
    given = "CAST(coalesce(tg.target, 0) AS DECIMAL(38, 4))"
    target = given if known else "CAST(NULL AS DECIMAL(38, 4))"
    if published:
        target = f"CASE WHEN cv.agreement_id IS NOT NULL THEN {given} ELSE {target} END"
    # the targets in force: published ones for the agreements they cover, the others elsewhere
    targets_in = (
        f"""(
            SELECT * FROM {PUBLISHED_RELATION}
            UNION ALL
            SELECT t.* FROM {TARGETS_RELATION} t WHERE NOT EXISTS (
                SELECT 1 FROM {PUBLISHED_RELATION} p
                WHERE p.batch_code = t.batch_code AND p.item_code = t.item_code
                    AND p.institution_code = t.institution_code AND p.year = t.year
            )
        )"""
        if published
        else TARGETS_RELATION
    )
    covered = (
        f""",
        cv AS (
            SELECT DISTINCT a.agreement_id
            FROM {PUBLISHED_RELATION} p
            JOIN ag a ON a.batch_code = p.batch_code AND a.item_code = p.item_code
                AND a.institution_code = p.institution_code AND a.year = p.year
        )"""
        if published
        else ""
    )
    covered_join = "LEFT JOIN cv ON cv.agreement_id = k.agreement_id" if published else ""
    status = status_sql("x.dispensed", "x.target", "x.days_elapsed", "x.days_total", "th")
    sql = f"""
        WITH ag AS ({ag_sql}),
        sel AS (
            SELECT DISTINCT batch_code, item_code, product_code, conversion
            FROM item_products WHERE kind = 'selected'
        ),
        tg AS (
            SELECT a.agreement_id, t.department_code, sum(CAST(t.target_qty AS DECIMAL(38, 4))) AS target
            FROM {targets_in} t
            JOIN ag a ON a.batch_code = t.batch_code AND a.item_code = t.item_code
                AND a.institution_code = t.institution_code AND a.year = t.year
            WHERE t.department_code IS NOT NULL{dept_filter}
            GROUP BY ALL
        ){covered},
        disp AS (
            SELECT ag.agreement_id, d.department_code,
                   sum({item_qty_sql(q, "dispensing", qty="d.qty", conversion="s.conversion")}) AS dispensed
            FROM ag
            JOIN sel s ON s.batch_code = ag.batch_code AND s.item_code = ag.item_code
            JOIN dispensing d ON d.institution_code = ag.institution_code AND d.product_code = s.product_code
                AND d.dispensed_on >= ag.period_start AND d.dispensed_on <= ag.upto
            WHERE coalesce(d.department_code, '') <> ''
            GROUP BY ALL
        ),
        keys AS (
            SELECT agreement_id, department_code FROM tg
            UNION
            SELECT agreement_id, department_code FROM disp
        ),
        x AS (
            SELECT ag.*, k.department_code, {target} AS target,
                   CAST(coalesce(ds.dispensed, 0) AS DECIMAL(38, 4)) AS dispensed
            FROM keys k
            JOIN ag ON ag.agreement_id = k.agreement_id
            LEFT JOIN tg ON tg.agreement_id = k.agreement_id AND tg.department_code = k.department_code
            LEFT JOIN disp ds ON ds.agreement_id = k.agreement_id AND ds.department_code = k.department_code
            {covered_join}
        )
        SELECT x.batch_code, x.item_code, x.institution_code, x.department_code, CAST(x.year AS INTEGER) AS year,
               x.period_start, x.period_end,
               CAST(x.target AS DECIMAL(18, 4)) AS target_qty,
               CAST(x.dispensed AS DECIMAL(18, 4)) AS dispensed_qty,
               {RATIO_MACRO}(x.dispensed, x.target) AS completion,
               {RATIO_MACRO}(x.days_elapsed, x.days_total) AS elapsed,
               {status} AS status
        FROM x LEFT JOIN {THRESHOLDS_RELATION} th ON th.profile = x.profile
        {"ORDER BY x.batch_code, x.item_code, x.institution_code, x.year, x.department_code" if ordered else ""}
    """
    table = q.con.sql(sql, params=params).to_arrow_table()
    return table.select(list(DEPARTMENT_COLUMNS)).cast(DEPARTMENT_SCHEMA)
