"""The lines behind a number: purchase, dispensing and payable lines, and agreement-year progress rows,
filtered, sorted and paged in DuckDB under the session's scope.

Each list is a ``SqlRows``: a lazily paged query that ``django.core.paginator.Paginator`` pages like
a queryset (``count()`` and slicing each run one query), with ``totals()`` for the sums shown above
the table. Item quantities are computed as the engine counts them (``progress.item_qty_sql``: each
line's qty × conversion rounded half-up to four places; here always in the 38-digit form, the same
numbers without the two scans that pick the faster one), so the total of "the lines behind" a
counted quantity is that quantity exactly. Only the filtered item's products are registered (one
scoped ORM query), not the whole reference.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jicai.core.tenancy import ScopeError, use_scope
from jicai.facts.schemas import ITEM_PRODUCTS
from jicai.monitoring.dashboard import Dashboard, Row, dec4
from jicai.monitoring.payables import payables, payment_rules_for
from jicai.programme.models import NonSelectedProduct, SelectedProduct

KINDS = ("selected", "same_generic", "substitute")
PAGE_SIZE = 50


class SqlRows:
    """A SELECT paged on demand: ``count()``, ``rows[a:b]`` (ORDER BY + LIMIT/OFFSET), ``totals()``."""

    def __init__(
        self,
        run: Callable[[str, Sequence[Any]], list[Row]],
        select: str,
        params: Sequence[Any],
        order: str,
        *,
        post: Callable[[list[Row]], list[Row]] | None = None,
    ) -> None:
        self.run = run
        self.select = select
        self.params = list(params)
        self.order = order
        self.post = post
        self._count: int | None = None

    def count(self) -> int:
        if self._count is None:
            self._count = int(self.run(f"SELECT count(*) AS n FROM ({self.select})", self.params)[0]["n"])
        return self._count

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, index: slice) -> list[Row]:
        if not isinstance(index, slice):
            raise TypeError("SqlRows supports slices only")
        start = max(index.start or 0, 0)
        stop = index.stop if index.stop is not None else self.count()
        size = max(stop - start, 0)
        rows = self.run(
            f"SELECT * FROM ({self.select}) ORDER BY {self.order} LIMIT {int(size)} OFFSET {int(start)}", self.params
        )
        return self.post(rows) if self.post else rows

    def totals(self, expressions: dict[str, str]) -> Row:
        """Aggregates over every row (``{"qty": "sum(qty)"}``), with the row count (which ``count()``
        then reuses: one scan for both)."""
        select = ", ".join(f"{expr} AS {name}" for name, expr in expressions.items())
        row = self.run(f"SELECT count(*) AS _rows, {select} FROM ({self.select})", self.params)[0]
        self._count = int(row.pop("_rows"))
        return row


def order_by(sort: str, allowed: dict[str, str], default: str) -> tuple[str, str]:
    """(ORDER BY clause, the accepted sort key) for a ``sort`` parameter like "-amount"."""
    key = sort.lstrip("-")
    if key not in allowed:
        return default, ""
    direction = "DESC" if sort.startswith("-") else "ASC"
    return f"{allowed[key]} {direction} NULLS LAST, {default}", sort


@dataclass(frozen=True)
class LineFilter:
    """What lines to list; ``batch`` and ``item`` together restrict to the item's products (and ``kind``)."""

    institution: str | None = None
    department: str | None = None
    batch: str | None = None
    item: str | None = None
    kind: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    product: str | None = None
    search: str | None = None

    @property
    def by_item(self) -> bool:
        return bool(self.batch and self.item)


ITEM_QTY = "CAST(CAST(p.qty AS DECIMAL(38, 4)) * CAST(s.conversion AS DECIMAL(38, 4)) AS DECIMAL(38, 4))"
"""A line's quantity in item units, qty × conversion rounded half-up to four places (``item_qty_sql``)."""


def register_item_products(d: Dashboard, batch: str, item: str) -> None:
    """The item's selected, non-selected and substitute products (scoped ORM) as ``item_products``."""
    with use_scope(d.scope):
        selected = list(
            SelectedProduct.objects.filter(batch__code=batch, item__item_code=item).values_list(
                "product__code", "conversion"
            )
        )
        others = list(
            NonSelectedProduct.objects.filter(batch__code=batch, item__item_code=item).values_list(
                "product__code", "kind", "conversion"
            )
        )
    rows = [
        {"batch_code": batch, "item_code": item, "product_code": c, "kind": "selected", "conversion": v}
        for c, v in selected
    ]
    rows += [
        {"batch_code": batch, "item_code": item, "product_code": c, "kind": k, "conversion": v} for c, k, v in others
    ]
    d.facts.register("item_products", rows, schema=ITEM_PRODUCTS)


def _item_join(f: LineFilter, args: list[Any]) -> str:
    """JOIN of the lines (alias p) to the products of the filter's item (alias s)."""
    args += [f.batch, f.item]
    kind = ""
    if f.kind in KINDS:
        kind = " AND kind = ?"
        args.append(f.kind)
    return (
        f"JOIN (SELECT DISTINCT product_code, kind, conversion FROM item_products "
        f"WHERE batch_code = ? AND item_code = ?{kind}) s ON s.product_code = p.product_code"
    )


PURCHASE_SORTS = {
    "line_id": "line_id",
    "institution_code": "institution_code",
    "product_code": "product_code",
    "accepted_on": "accepted_on",
    "qty": "qty",
    "item_qty": "item_qty",
    "unit_price": "unit_price",
    "amount": "amount",
    "distributor": "distributor",
}


def purchase_lines(d: Dashboard, f: LineFilter, sort: str = "") -> tuple[SqlRows, str]:
    """Purchase lines in scope matching ``f`` (acceptance dates inclusive); with the sort applied."""
    d.require("purchase")
    q = d.facts
    args: list[Any] = []
    join = ""
    item_qty = "CAST(NULL AS DECIMAL(38, 4))"
    kind = "CAST(NULL AS VARCHAR)"
    if f.by_item:
        register_item_products(d, f.batch or "", f.item or "")
        join = _item_join(f, args)
        item_qty = ITEM_QTY
        kind = "s.kind"
    where = ["TRUE"]
    if f.institution:
        where.append("p.institution_code = ?")
        args.append(f.institution)
    if f.date_from:
        # the month partition is the acceptance month: naming it lets DuckDB skip the other files
        where.append("p.accepted_on >= ? AND p.month >= ?")
        args += [f.date_from, f.date_from.strftime("%Y-%m")]
    if f.date_to:
        where.append("p.accepted_on <= ? AND p.month <= ?")
        args += [f.date_to, f.date_to.strftime("%Y-%m")]
    if f.product:
        where.append("p.product_code = ?")
        args.append(f.product)
    if f.search:
        where.append("(p.line_id ILIKE ? OR p.product_code ILIKE ? OR p.distributor ILIKE ?)")
        args += [f"%{f.search}%"] * 3
    select = f"""
        SELECT p.line_id, p.institution_code, p.product_code, p.ordered_on, p.delivered_on, p.accepted_on,
               p.qty, p.unit_price, p.amount, p.distributor, {kind} AS kind, {item_qty} AS item_qty
        FROM purchases p {join}
        WHERE {" AND ".join(where)}
    """
    order, used = order_by(sort, PURCHASE_SORTS, "accepted_on ASC NULLS LAST, line_id ASC")
    return SqlRows(q.rows, select, args, order, post=lambda rows: _named(d, rows)), used


DISPENSING_SORTS = {
    "record_id": "record_id",
    "department_code": "department_code",
    "dispensed_on": "dispensed_on",
    "product_code": "product_code",
    "qty": "qty",
    "item_qty": "item_qty",
    "amount": "amount",
}


def dispensing_lines(d: Dashboard, f: LineFilter, sort: str = "") -> tuple[SqlRows, str]:
    """Dispensing lines in scope (a department scope sees its own department's only) matching ``f``."""
    d.require("dispensing")
    q = d.facts
    args: list[Any] = []
    join = ""
    item_qty = "CAST(NULL AS DECIMAL(38, 4))"
    kind = "CAST(NULL AS VARCHAR)"
    if f.by_item:
        register_item_products(d, f.batch or "", f.item or "")
        join = _item_join(f, args)
        item_qty = ITEM_QTY
        kind = "s.kind"
    where = ["TRUE"]
    for column, value in (("institution_code", f.institution), ("department_code", f.department)):
        if value:
            where.append(f"p.{column} = ?")
            args.append(value)
    if f.date_from:
        where.append("p.dispensed_on >= ? AND p.month >= ?")
        args += [f.date_from, f.date_from.strftime("%Y-%m")]
    if f.date_to:
        where.append("p.dispensed_on <= ? AND p.month <= ?")
        args += [f.date_to, f.date_to.strftime("%Y-%m")]
    if f.product:
        where.append("p.product_code = ?")
        args.append(f.product)
    if f.search:
        where.append("(p.record_id ILIKE ? OR p.product_code ILIKE ? OR p.diagnosis_code ILIKE ?)")
        args += [f"%{f.search}%"] * 3
    select = f"""
        SELECT p.record_id, p.institution_code, p.department_code, p.dispensed_on, p.product_code, p.qty,
               p.amount, p.diagnosis_code, p.prescriber_code, {kind} AS kind, {item_qty} AS item_qty
        FROM dispensing p {join}
        WHERE {" AND ".join(where)}
    """
    order, used = order_by(sort, DISPENSING_SORTS, "dispensed_on ASC NULLS LAST, record_id ASC")
    return SqlRows(q.rows, select, args, order, post=lambda rows: _named(d, rows)), used


PAYABLE_SORTS = {
    "line_id": "line_id",
    "accepted_on": "accepted_on",
    "due_on": "due_on",
    "amount": "amount",
    "paid_amount": "paid_amount",
    "outstanding": "outstanding",
    "days_overdue": "days_overdue",
    "product_code": "product_code",
}


def payable_lines(d: Dashboard, institution: str, *, overdue_only: bool = False, sort: str = "") -> tuple[SqlRows, str]:
    """Open supplier payables of one institution on the as-of date (``payables.payables``, on demand)."""
    d.require("purchase", "payment")
    if not d.reads_payables:
        raise ScopeError(f"{d.scope.label} may not read payables")
    q = d.facts
    region = d.institution_regions.get(institution)
    if region is None:
        raise ScopeError(f"institution {institution} is outside {d.scope.label}")
    rules = payment_rules_for(d.profiles, {region}, d.as_of)

    def build() -> Any:
        return payables(q, d.as_of, rules=rules, institution=institution, only_open=True)

    q.register("dash_payables", d.cached("payables", (institution, repr(sorted(rules.items()))), build))
    select = "SELECT * FROM dash_payables" + (" WHERE overdue" if overdue_only else "")
    order, used = order_by(sort, PAYABLE_SORTS, "accepted_on ASC, line_id ASC")
    return SqlRows(q.rows, select, [], order, post=lambda rows: _named(d, rows)), used


PROGRESS_SORTS = {
    "institution_code": "institution_code",
    "item_code": "item_code",
    "year": "year",
    "agreed_qty": "agreed_qty",
    "counted_qty": "counted_qty",
    "completion": "completion",
    "elapsed": "elapsed",
    "pace": "pace",
    "projected_completion": "projected_completion",
    "status": "status",
}


@dataclass(frozen=True)
class ProgressFilter:
    institution: str | None = None
    batch: str | None = None
    item: str | None = None
    status: str | None = None
    all_years: bool = False
    search: str | None = None


def progress_rows(d: Dashboard, f: ProgressFilter, sort: str = "") -> tuple[SqlRows, str]:
    """Agreement years in scope (current ones unless ``all_years``) matching ``f``."""
    args: list[Any] = []
    where = ["TRUE"]
    for column, value in (
        ("c.institution_code", f.institution),
        ("c.batch_code", f.batch),
        ("c.item_code", f.item),
        ("c.status", f.status),
    ):
        if value:
            where.append(f"{column} = ?")
            args.append(value)
    if f.search:
        where.append(
            "(c.institution_code ILIKE ? OR i.institution_name ILIKE ? OR c.item_code ILIKE ? "
            "OR it.generic_name ILIKE ?)"
        )
        args += [f"%{f.search}%"] * 4
    source = "dash_progress" if f.all_years else "dash_current"
    select = f"""
        SELECT c.batch_code, c.item_code, c.institution_code, c.year, c.period_start, c.period_end,
               c.agreed_qty, c.counted_qty, c.completion, c.elapsed, c.status, c.projected_qty,
               c.projected_completion, c.over_volume_qty, c.affected_days, c.completion_adjusted,
               c.status_adjusted,
               CASE WHEN c.elapsed > 0 THEN c.completion / c.elapsed END AS pace,
               i.institution_name, it.generic_name, it.unit_label
        FROM {source} c JOIN dash_inst i USING (institution_code)
        LEFT JOIN dash_items it USING (batch_code, item_code)
        WHERE {" AND ".join(where)}
    """
    order, used = order_by(sort, PROGRESS_SORTS, "pace ASC NULLS LAST, institution_code, batch_code, item_code, year")
    return SqlRows(d.rows, select, args, order, post=_ratios), used


def _ratios(rows: list[Row]) -> list[Row]:
    for r in rows:
        for key in ("completion", "elapsed", "projected_completion", "pace", "completion_adjusted"):
            r[key] = dec4(r.get(key))
    return rows


def _named(d: Dashboard, rows: list[Row]) -> list[Row]:
    for r in rows:
        r["institution_name"] = d.names().institution_names.get(r.get("institution_code") or "", "")
    return rows
