"""Rows and chart series of the daily screens, from one ``Dashboard`` session (no web code here).

Every function reads the session's scoped relations: ``dash_progress`` (every agreement year's
progress), ``dash_current`` (each institution × item's agreement year running on the as-of date, or
its latest one that started), ``dash_subs`` (institution × item × month purchases by kind, with the
non-selected cap), ``dash_year_subs`` (those months inside the current year, the latest flagged),
``dash_cum`` (each agreement × month: cumulative counted quantity and elapsed share at the month's
end), ``dash_overdue`` (supplier payables per institution), ``dash_inst`` and ``dash_items`` (names).
Quantities are in the item's unit (``unit_label``), money in yuan (Decimal, two places), ratios
Decimal to four places.

Aggregates across items (an institution's "completion") are the mean of its agreements' completion
ratios: quantities of different items are in different units and are never added up; an item's
completion across institutions is its summed counted ÷ summed agreed quantity (one unit).
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import Count

from jicai.core.tenancy import use_scope
from jicai.monitoring.dashboard import STATUS_INDEX, Dashboard, Row, dec4, ratio, trend_months
from jicai.monitoring.models import Alert, AlertKind, AlertStatus

_PAIR = "institution_code, batch_code, item_code"
Q0 = Decimal(1)


def _where(**filters: str | None) -> tuple[str, list[Any]]:
    """AND-ed equality conditions on the given columns (None skips), with their parameters."""
    parts, args = [], []
    for column, value in filters.items():
        if value is not None:
            parts.append(f"{column} = ?")
            args.append(value)
    return (" AND " + " AND ".join(parts)) if parts else "", args


def _with_ratios(rows: list[Row]) -> list[Row]:
    for r in rows:
        for key in (
            "completion",
            "elapsed",
            "projected_completion",
            "worst_completion",
            "completion_adjusted",
            "elapsed_adjusted",
        ):
            if key in r:
                r[key] = dec4(r[key])
        if r.get("completion") is not None and r.get("elapsed"):
            r["pace"] = ratio(r["completion"], r["elapsed"])
    return rows


# --------------------------------------------------------------------------------------------------
# Region


def kpis(d: Dashboard, *, caps: list[Row] | None = None) -> Row:
    """Headline figures of the scope's current agreements, payables and caps (``caps``: cap_breaches)."""
    row = d.rows(
        """
        SELECT count(*) AS agreements, count(DISTINCT institution_code) AS institutions,
               count(DISTINCT (batch_code, item_code)) AS items,
               avg(completion) AS completion, avg(elapsed) AS elapsed,
               count(*) FILTER (WHERE status = 'completed') AS completed,
               count(*) FILTER (WHERE status = 'on_track') AS on_track,
               count(*) FILTER (WHERE status = 'behind') AS behind,
               count(*) FILTER (WHERE status = 'at_risk') AS at_risk
        FROM dash_current
        """
    )[0]
    pay = d.rows(
        """
        SELECT coalesce(sum(outstanding), 0) AS outstanding, coalesce(sum(overdue_amount), 0) AS overdue_amount,
               count(*) FILTER (WHERE overdue_lines > 0) AS overdue_institutions
        FROM dash_overdue
        """
    )[0]
    breaches = len(cap_breaches(d) if caps is None else caps)
    return _with_ratios([row])[0] | pay | {"cap_breaches": breaches}


def institution_ranking(d: Dashboard) -> list[Row]:
    """Per institution: its current agreements by status and their mean completion (worst first)."""
    rows = d.rows(
        """
        SELECT c.institution_code, i.institution_name, i.region_code, i.level,
               count(*) AS agreements, avg(c.completion) AS completion, avg(c.elapsed) AS elapsed,
               min(c.completion) AS worst_completion,
               count(*) FILTER (WHERE c.status = 'completed') AS completed,
               count(*) FILTER (WHERE c.status = 'on_track') AS on_track,
               count(*) FILTER (WHERE c.status = 'behind') AS behind,
               count(*) FILTER (WHERE c.status = 'at_risk') AS at_risk
        FROM dash_current c JOIN dash_inst i USING (institution_code)
        GROUP BY ALL
        ORDER BY completion, c.institution_code
        """
    )
    for n, r in enumerate(rows, start=1):
        r["rank"] = n
    return _with_ratios(rows)


def item_ranking(d: Dashboard, *, institution: str | None = None) -> list[Row]:
    """Per item: institutions, summed agreed and counted quantities (one unit), completion (worst first)."""
    where, args = _where(institution_code=institution)
    rows = d.rows(
        f"""
        SELECT c.batch_code, c.item_code, any_value(it.generic_name) AS generic_name,
               any_value(it.unit_label) AS unit_label,
               count(*) AS institutions, sum(c.agreed_qty) AS agreed_qty, sum(c.counted_qty) AS counted_qty,
               avg(c.elapsed) AS elapsed,
               count(*) FILTER (WHERE c.status = 'behind') AS behind,
               count(*) FILTER (WHERE c.status = 'at_risk') AS at_risk
        FROM dash_current c LEFT JOIN dash_items it USING (batch_code, item_code)
        WHERE TRUE{where}
        GROUP BY c.batch_code, c.item_code
        """,
        args,
    )
    for r in rows:
        r["completion"] = ratio(r["counted_qty"], r["agreed_qty"])
        r["generic_name"] = r["generic_name"] or r["item_code"]
    rows = _with_ratios(rows)
    rows.sort(key=lambda r: (r["completion"] is None, r["completion"] or 0, r["batch_code"], r["item_code"]))
    for n, r in enumerate(rows, start=1):
        r["rank"] = n
    return rows


def heatmap(d: Dashboard) -> Row:
    """Institutions × items: each current agreement's completion and status (ECharts heat map data).

    ``cells`` are ``[item index, institution index, completion %, status index, elapsed %]``;
    institutions run worst first (as the ranking), items by code.
    """
    institutions = [(r["institution_code"], r["institution_name"]) for r in institution_ranking(d)]
    rows = d.rows("SELECT institution_code, batch_code, item_code, completion, elapsed, status FROM dash_current")
    items = sorted({(r["batch_code"], r["item_code"]) for r in rows})
    x = {k: n for n, k in enumerate(items)}
    y = {code: n for n, (code, _name) in enumerate(institutions)}
    cells = []
    for r in rows:
        if r["institution_code"] not in y:
            continue
        completion = dec4(r["completion"])
        elapsed = dec4(r["elapsed"])
        cells.append(
            [
                x[(r["batch_code"], r["item_code"])],
                y[r["institution_code"]],
                float(round(completion * 100, 1)) if completion is not None else None,
                STATUS_INDEX.get(r["status"] or "", len(STATUS_INDEX)),
                float(round(elapsed * 100, 1)) if elapsed is not None else None,
            ]
        )
    return {
        "institutions": [{"code": c, "name": n} for c, n in institutions],
        "items": [{"batch": b, "item": i, "name": d.item_label(b, i)} for b, i in items],
        "cells": cells,
    }


def behind_schedule(d: Dashboard, *, institution: str | None = None, limit: int | None = None) -> list[Row]:
    """Current agreements behind schedule or at risk, the furthest behind (completion ÷ elapsed) first."""
    where, args = _where(institution_code=institution)
    rows = d.rows(
        f"""
        SELECT c.*, i.institution_name, it.generic_name, it.unit_label
        FROM dash_current c JOIN dash_inst i USING (institution_code)
        LEFT JOIN dash_items it USING (batch_code, item_code)
        WHERE c.status IN ('behind', 'at_risk'){where}
        ORDER BY CASE WHEN c.elapsed > 0 THEN c.completion / c.elapsed END, c.institution_code, c.item_code
        {"LIMIT " + str(int(limit)) if limit else ""}
        """,
        args,
    )
    return _with_ratios(rows)


def overdue(d: Dashboard, *, only_overdue: bool = True) -> list[Row]:
    """Supplier payables per institution (the cycle's overdue totals), the largest overdue amount first."""
    return d.rows(
        f"""
        SELECT o.*, i.institution_name FROM dash_overdue o JOIN dash_inst i USING (institution_code)
        {"WHERE o.overdue_lines > 0" if only_overdue else ""}
        ORDER BY o.overdue_amount DESC, o.institution_code
        """
    )


def cap_breaches(d: Dashboard, *, institution: str | None = None) -> list[Row]:
    """Institution × items whose latest month in the current agreement year breaks the non-selected cap."""
    where, args = _where(**{"s.institution_code": institution})
    rows = d.rows(
        f"""
        SELECT s.*, i.institution_name, it.generic_name, it.unit_label,
               s.cum_non_selected_qty - s.cap_limit AS excess_qty
        FROM dash_year_subs s
        JOIN dash_inst i USING (institution_code)
        LEFT JOIN dash_items it USING (batch_code, item_code)
        WHERE s.is_latest AND s.cap_exceeded{where}
        ORDER BY excess_qty DESC NULLS LAST, s.institution_code, s.batch_code, s.item_code
        """,
        args,
    )
    return rows


# --------------------------------------------------------------------------------------------------
# Trends


def monthly_mix(
    d: Dashboard, *, institution: str | None = None, batch: str | None = None, item: str | None = None
) -> Row:
    """Selected, non-selected (same generic) and substitute quantities by calendar month (item units)."""
    months = trend_months(d.as_of)
    where, args = _where(institution_code=institution, batch_code=batch, item_code=item)
    rows = d.rows(
        f"""
        SELECT month, sum(selected_qty) AS selected, sum(non_selected_qty) AS non_selected,
               sum(substitute_qty) AS substitute
        FROM dash_subs WHERE month >= ? AND month <= ?{where}
        GROUP BY month
        """,
        [months[0], months[-1], *args],
    )
    by_month = {r["month"]: r for r in rows}
    first = min(by_month, default=months[-1])
    shown = [m for m in months if m >= first]

    def series(key: str) -> list[float]:
        return [float(by_month[m][key]) if m in by_month else 0.0 for m in shown]

    return {
        "months": shown,
        "selected": series("selected"),
        "non_selected": series("non_selected"),
        "substitute": series("substitute"),
    }


def completion_trend(
    d: Dashboard, *, institution: str | None = None, batch: str | None = None, item: str | None = None
) -> Row:
    """Mean completion and mean elapsed share of the agreements running in each month, at its end.

    Counted quantities are the cycle's cumulative selected quantity within the agreement year
    (``cum_selected_qty``, exact to the month's last day, or the as-of date), carried over months
    without purchases; the elapsed share is taken on the same day (``dash_cum``).
    """
    where, args = _where(institution_code=institution, batch_code=batch, item_code=item)
    rows = d.rows(
        f"""
        SELECT month, avg(CAST(cum_qty AS DOUBLE) / CAST(agreed_qty AS DOUBLE)) AS completion,
               avg(elapsed) AS elapsed, count(*) AS agreements
        FROM dash_cum WHERE TRUE{where} GROUP BY month ORDER BY month
        """,
        args,
    )
    return {
        "months": [r["month"] for r in rows],
        "completion": [round(r["completion"] * 100, 1) for r in rows],
        "elapsed": [round(r["elapsed"] * 100, 1) for r in rows],
        "agreements": [r["agreements"] for r in rows],
    }


# --------------------------------------------------------------------------------------------------
# Alerts (database rows, scoped by the ORM)


def alert_counts(d: Dashboard, *, institution: str | None = None) -> dict[str, int]:
    """Open alerts per kind."""
    with use_scope(d.scope):
        qs = Alert.objects.filter(status=AlertStatus.OPEN)
        if institution:
            qs = qs.filter(institution_code=institution)
        counts = {r["kind"]: r["n"] for r in qs.values("kind").annotate(n=Count("id")).order_by()}
    return {kind.value: counts.get(kind.value, 0) for kind in AlertKind}


def open_tranches(d: Dashboard, *, institution: str | None = None, limit: int = 20) -> list[Row]:
    """Fired prepayment tranches still open (awaiting the fund), those fired in the as-of month flagged."""
    month = d.as_of.strftime("%Y-%m")
    with use_scope(d.scope):
        qs = Alert.objects.filter(kind=AlertKind.TRANCHE, status=AlertStatus.OPEN)
        if institution:
            qs = qs.filter(institution_code=institution)
        alerts = list(qs.order_by("-last_seen", "institution_code")[:limit])
    out = []
    for a in alerts:
        data = a.data or {}
        fired = str(data.get("fired_on") or a.first_seen)
        out.append(
            {
                "alert": a,
                "institution_code": a.institution_code,
                "institution_name": d.names().institution_names.get(a.institution_code, a.institution_code),
                "batch_code": a.batch_code,
                "year": data.get("year"),
                "tranche": data.get("tranche"),
                "trigger": data.get("trigger"),
                "fired_on": fired,
                "this_month": fired[:7] == month,
                "amount": Decimal(str(data["amount"])) if data.get("amount") is not None else None,
                "items": len(data.get("items") or {}),
            }
        )
    return out


# --------------------------------------------------------------------------------------------------
# One institution


def institution_items(d: Dashboard, institution: str) -> list[Row]:
    """The institution's current agreements with progress, shares in the year so far and the cap."""
    rows = d.rows(
        f"""
        WITH s AS (SELECT * FROM dash_year_subs WHERE institution_code = ?),
        shares AS (
            SELECT {_PAIR}, sum(selected_qty) AS sel_qty, sum(non_selected_qty) AS ns_qty,
                   sum(substitute_qty) AS sub_qty, sum(total_qty) AS total_qty,
                   any_value(cap_exceeded) FILTER (WHERE is_latest) AS cap_exceeded,
                   any_value(cap_limit) FILTER (WHERE is_latest) AS cap_limit,
                   any_value(cum_non_selected_qty) FILTER (WHERE is_latest) AS cum_non_selected_qty
            FROM s GROUP BY ALL
        )
        SELECT c.*, it.generic_name, it.unit_label, it.batch_name,
               shares.sel_qty, shares.ns_qty, shares.sub_qty, shares.total_qty,
               shares.cap_exceeded, shares.cap_limit, shares.cum_non_selected_qty
        FROM dash_current c LEFT JOIN dash_items it USING (batch_code, item_code)
        LEFT JOIN shares USING ({_PAIR})
        WHERE c.institution_code = ?
        ORDER BY c.batch_code, c.item_code
        """,
        [institution, institution],
    )
    for r in rows:
        r["generic_name"] = r["generic_name"] or r["item_code"]
        r["non_selected_share"] = ratio(r["ns_qty"], r["total_qty"])
        r["substitute_share"] = ratio(r["sub_qty"], r["total_qty"])
    return _with_ratios(rows)


def institution_summary(d: Dashboard, institution: str) -> Row:
    row = d.rows(
        """
        SELECT count(*) AS agreements, avg(completion) AS completion, avg(elapsed) AS elapsed,
               count(*) FILTER (WHERE status = 'completed') AS completed,
               count(*) FILTER (WHERE status = 'on_track') AS on_track,
               count(*) FILTER (WHERE status = 'behind') AS behind,
               count(*) FILTER (WHERE status = 'at_risk') AS at_risk
        FROM dash_current WHERE institution_code = ?
        """,
        [institution],
    )[0]
    pay = d.rows("SELECT * FROM dash_overdue WHERE institution_code = ?", [institution])
    return _with_ratios([row])[0] | {"payables": pay[0] if pay else None}


def agreement_years(d: Dashboard, institution: str, batch: str, item: str) -> list[Row]:
    """Every agreement year of one institution × item, the latest first."""
    rows = d.rows(
        "SELECT * FROM dash_progress WHERE institution_code = ? AND batch_code = ? AND item_code = ? "
        "ORDER BY period_start DESC, year DESC",
        [institution, batch, item],
    )
    return _with_ratios(rows)


def item_months(d: Dashboard, institution: str, batch: str, item: str) -> list[Row]:
    """The institution × item's months (the cycle's substitute rows), the latest first."""
    rows = d.rows(
        "SELECT * FROM dash_subs WHERE institution_code = ? AND batch_code = ? AND item_code = ? AND month <= ? "
        "ORDER BY month DESC",
        [institution, batch, item, d.as_of.strftime("%Y-%m")],
    )
    for r in rows:
        for key in ("selected_share", "non_selected_share", "substitute_share", "mom_growth", "yoy_growth"):
            r[key] = dec4(r[key])
    return rows


def month_bounds(month: str, as_of: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """First and last day of a YYYY-MM month (the last clipped to ``as_of``)."""
    first = dt.date.fromisoformat(month + "-01")
    nxt = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
    last = nxt - dt.timedelta(days=1)
    if as_of is not None and as_of < last:
        last = as_of
    return first, last


# --------------------------------------------------------------------------------------------------
# One department


def department_rows(d: Dashboard, institution: str, department: str) -> list[Row]:
    """The department's targets and dispensing of each current agreement (department-progress report)."""
    table = d.department_progress(institution)
    rows = [r for r in table.to_pylist() if r["department_code"] == department]
    for r in rows:
        r["generic_name"], r["unit_label"] = d.names().item_names.get(
            (r["batch_code"], r["item_code"]), (r["item_code"], "")
        )
    return _with_ratios(rows)


def department_months(d: Dashboard, institution: str, department: str) -> dict[tuple[str, str], list[Row]]:
    """Per current agreement: the department's dispensing of the selected products by month, cumulated,
    with the target to date (target × elapsed share on the month's last day) when a target is known."""
    targets = {(r["batch_code"], r["item_code"]): r for r in department_rows(d, institution, department)}

    def build() -> list[Row]:
        q = d.facts_with_reference(d.current_agreements(institution))
        return q.rows(
            """
            WITH sel AS (SELECT DISTINCT batch_code, item_code, product_code, conversion FROM item_products
                         WHERE kind = 'selected')
            SELECT a.batch_code, a.item_code, a.period_start, a.period_end,
                   strftime(x.dispensed_on, '%Y-%m') AS month,
                   sum(CAST(CAST(x.qty AS DECIMAL(38, 4)) * CAST(s.conversion AS DECIMAL(38, 4)) AS DECIMAL(38, 4)))
                       AS dispensed_qty,
                   count(*) AS lines
            FROM agreements a
            JOIN sel s ON s.batch_code = a.batch_code AND s.item_code = a.item_code
            JOIN dispensing x ON x.institution_code = a.institution_code AND x.product_code = s.product_code
             AND x.dispensed_on BETWEEN a.period_start AND least(a.period_end, ?)
            WHERE x.department_code = ?
            GROUP BY ALL ORDER BY a.batch_code, a.item_code, month
            """,
            [d.as_of, department],
        )

    cached = d.cached("department_months", (institution, department, d.reference_key(institution)), build)
    rows = [dict(r) for r in cached]
    out: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        key = (r["batch_code"], r["item_code"])
        series = out.setdefault(key, [])
        previous = series[-1]["cum_qty"] if series else Decimal(0)
        r["cum_qty"] = previous + r["dispensed_qty"]
        first, last = month_bounds(r["month"], min(d.as_of, r["period_end"]))
        r["from"], r["to"] = max(first, r["period_start"]), last
        target = targets.get(key, {}).get("target_qty")
        days = (r["period_end"] - r["period_start"]).days + 1
        if target is not None and days > 0:
            share = Decimal((last - r["period_start"]).days + 1) / Decimal(days)
            r["target_to_date"] = (Decimal(target) * share).quantize(Q0, rounding=ROUND_HALF_UP)
            r["completion_to_date"] = ratio(r["cum_qty"], r["target_to_date"])
        else:
            r["target_to_date"] = None
            r["completion_to_date"] = None
        series.append(r)
    return out
