"""Insurance-fund prepayment tranches (R-E2) and settlement statements with year-end clearing (R-E3).

The counted purchases of every agreement, per acceptance date, come from ONE set-based query over the
scoped purchases (selected products of the item × conversion, inside the agreement year, up to the
as-of date). The rules themselves stay in ``jicai.policy``: ``evaluate_prepayment`` decides which
tranche fired when and what it pays, ``settlement_calendar`` cuts the year into settlement periods,
``split_reserve`` holds the reserve. Python walks the agreements one by one, which is fine for the
reported set (an institution's or a batch's agreements); the facts never leave DuckDB line by line.

The caller registers "agreements" and "item_products" (``jicai.monitoring.reference``) on the query.
An agreement's profile is resolved as of its period start (the rules agreed when the year began).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pyarrow as pa

from jicai.facts.query import FactQuery
from jicai.facts.schemas import MONEY, PRICE, QTY
from jicai.policy import params
from jicai.policy.money import ZERO, round_fen
from jicai.policy.prepayment import (
    Clearing,
    PrepaymentAgreement,
    PrepaymentStatus,
    Tranche,
    evaluate_prepayment,
)
from jicai.policy.profile import ProfileError, ProfileLibrary
from jicai.policy.settlement import PeriodKind, SettlementParams, settlement_calendar, split_reserve

DEFAULT_PROFILE = "national"
SOURCES = ("purchases", "purchases_daily")

PREPAYMENT_COLUMNS = (
    "agreement_id",
    "batch_code",
    "item_code",
    "institution_code",
    "year",
    "period_start",
    "period_end",
    "agreed_qty",
    "unit_price",
    "agreed_amount",
    "tranche",
    "share",
    "trigger",
    "fired_on",
    "amount",
    "reason",
    "profile",
)

PREPAYMENT_SCHEMA = pa.schema(
    [
        ("agreement_id", pa.int64()),
        ("batch_code", pa.string()),
        ("item_code", pa.string()),
        ("institution_code", pa.string()),
        ("year", pa.int32()),
        ("period_start", pa.date32()),
        ("period_end", pa.date32()),
        ("agreed_qty", QTY),
        ("unit_price", PRICE),
        ("agreed_amount", MONEY),
        ("tranche", pa.int32()),  # 1-based position in the profile's tranche list
        ("share", pa.decimal128(9, 4)),
        ("trigger", pa.string()),
        ("fired_on", pa.date32()),
        ("amount", MONEY),
        ("reason", pa.string()),
        ("profile", pa.string()),
    ]
)

SETTLEMENT_COLUMNS = (
    "agreement_id",
    "batch_code",
    "item_code",
    "institution_code",
    "year",
    "period",
    "period_start",
    "period_end",
    "counted_qty",
    "amount",
    "prepaid_to_date",
    "reserve",
    "payable",
    "kind",
)

SETTLEMENT_SCHEMA = pa.schema(
    [
        ("agreement_id", pa.int64()),
        ("batch_code", pa.string()),
        ("item_code", pa.string()),
        ("institution_code", pa.string()),
        ("year", pa.int32()),
        ("period", pa.string()),
        ("period_start", pa.date32()),
        ("period_end", pa.date32()),
        ("counted_qty", QTY),
        ("amount", MONEY),
        ("prepaid_to_date", MONEY),
        ("reserve", MONEY),
        ("payable", MONEY),
        ("kind", pa.string()),
    ]
)

Daily = list[tuple[dt.date, Decimal]]


@dataclass(frozen=True)
class _Rules:
    tranches: tuple[Tranche, ...]
    settlement: SettlementParams


@dataclass(frozen=True)
class _Evaluated:
    """One agreement with its rules and prepayment status, or the reason it has none."""

    row: dict[str, Any]
    profile: str
    daily: Daily
    rules: _Rules | None
    status: PrepaymentStatus | None
    problem: str | None


def _filters(batch: str | None, institution: str | None, alias: str = "") -> tuple[str, list[Any]]:
    where, args = [], []
    if batch:
        where.append(f"{alias}batch_code = ?")
        args.append(batch)
    if institution:
        where.append(f"{alias}institution_code = ?")
        args.append(institution)
    return (" AND " + " AND ".join(where)) if where else "", args


def daily_counted(
    q: FactQuery,
    as_of: dt.date,
    *,
    batch: str | None = None,
    institution: str | None = None,
    source: str = "purchases",
) -> dict[int, Daily]:
    """Counted quantity per agreement and acceptance date, in one query (semantics.md "Time").

    Selected products only, × conversion, inside the agreement year and up to ``as_of``. A day whose
    net quantity is negative (returns exceeding receipts) counts as 0, since the rule takes events.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown purchase source {source!r} (one of {', '.join(SOURCES)})")
    where, args = _filters(batch, institution, "a.")
    rows = q.con.execute(
        f"""
        WITH selected AS (
            SELECT DISTINCT batch_code, item_code, product_code, coalesce(conversion, 1) AS conversion
            FROM item_products WHERE kind = 'selected'
        )
        SELECT a.agreement_id, p.accepted_on,
               CAST(greatest(sum(p.qty * s.conversion), 0) AS DECIMAL(18, 4)) AS qty
        FROM agreements a
        JOIN selected s ON s.batch_code = a.batch_code AND s.item_code = a.item_code
        JOIN {source} p ON p.product_code = s.product_code AND p.institution_code = a.institution_code
        WHERE p.accepted_on BETWEEN a.period_start AND least(a.period_end, CAST(? AS DATE)){where}
        GROUP BY a.agreement_id, p.accepted_on
        ORDER BY a.agreement_id, p.accepted_on
        """,
        [as_of, *args],
    ).fetchall()
    out: dict[int, Daily] = {}
    for agreement_id, accepted_on, qty in rows:
        out.setdefault(agreement_id, []).append((accepted_on, qty))
    return out


def _evaluate(
    q: FactQuery,
    as_of: dt.date,
    *,
    profiles: ProfileLibrary,
    batch: str | None,
    institution: str | None,
    source: str,
) -> Iterator[_Evaluated]:
    where, args = _filters(batch, institution)
    agreements = q.rows(
        f"SELECT * FROM agreements WHERE TRUE{where} "
        "ORDER BY batch_code, item_code, institution_code, year, agreement_id",
        args,
    )
    daily = daily_counted(q, as_of, batch=batch, institution=institution, source=source)
    cache: dict[tuple[str, dt.date], _Rules | str] = {}
    for row in agreements:
        profile = row.get("profile") or DEFAULT_PROFILE
        key = (profile, row["period_start"])
        if key not in cache:
            try:
                resolved = profiles.resolve(profile, row["period_start"])
                cache[key] = _Rules(params.tranches(resolved), params.settlement_params(resolved))
            except (ProfileError, KeyError, ValueError) as exc:
                cache[key] = f"政策配置 {profile} 无法读取 / profile {profile} cannot be resolved: {exc}"
        found = cache[key]
        days = daily.get(row["agreement_id"], [])
        if isinstance(found, str):
            yield _Evaluated(row, profile, days, None, None, found)
            continue
        problem = None
        if row.get("unit_price") is None or row["unit_price"] <= ZERO:
            problem = (
                "无中选单价（中选产品缺少包装规格），无法计算金额 / "
                "no winning unit price (no selected product with a pack size), amounts cannot be computed"
            )
        elif row.get("agreed_qty") is None or row["agreed_qty"] <= ZERO:
            problem = "约定采购量为 0 / agreed quantity is zero"
        status = None
        if problem is None:
            agreement = PrepaymentAgreement(
                row["period_start"], row["period_end"], row["agreed_qty"], row["unit_price"]
            )
            status = evaluate_prepayment(agreement, found.tranches, days, as_of)
        yield _Evaluated(row, profile, days, found, status, problem)


def _base(row: dict[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    return {c: row.get(c) for c in columns}


_AGREEMENT_FIELDS = (
    "agreement_id",
    "batch_code",
    "item_code",
    "institution_code",
    "year",
    "period_start",
    "period_end",
    "agreed_qty",
    "unit_price",
)


def prepayments(
    q: FactQuery,
    as_of: dt.date,
    *,
    profiles: ProfileLibrary,
    batch: str | None = None,
    institution: str | None = None,
    source: str = "purchases",
) -> pa.Table:
    """Each agreement's prepayment tranches on ``as_of``: amount, trigger, firing date and why (R-E2).

    One row per tranche, fired or not (``fired_on`` is empty until it fires). A clearing tranche
    shows actual use minus what was prepaid, provisional until the period ends (negative: the
    institution owes the fund). Agreements without a winning unit price, a positive agreed quantity
    or a resolvable profile are listed with the reason and zero amounts. ``source`` may be the daily
    rollup "purchases_daily" (same counts, fewer rows).
    """
    out: list[dict[str, Any]] = []
    for ev in _evaluate(q, as_of, profiles=profiles, batch=batch, institution=institution, source=source):
        base = _base(ev.row, _AGREEMENT_FIELDS) | {"profile": ev.profile}
        if ev.status is None:
            tranches = ev.rules.tranches if ev.rules else ()
            if not tranches:
                out.append(base | {"agreed_amount": ZERO, "amount": ZERO, "reason": ev.problem})
            for i, tranche in enumerate(tranches, start=1):
                out.append(
                    base
                    | {
                        "agreed_amount": ZERO,
                        "tranche": i,
                        "share": tranche.share,
                        "trigger": str(tranche.trigger),
                        "fired_on": None,
                        "amount": ZERO,
                        "reason": ev.problem,
                    }
                )
            continue
        for result in ev.status.tranches:
            state = f"已触发 fired {result.fired_on}" if result.fired else "未触发 not yet"
            out.append(
                base
                | {
                    "agreed_amount": ev.status.agreed_amount,
                    "tranche": result.index + 1,
                    "share": result.share,
                    "trigger": result.trigger,
                    "fired_on": result.fired_on,
                    "amount": result.amount,
                    "reason": f"{state}: {result.reason}",
                }
            )
    return pa.Table.from_pylist(out, schema=PREPAYMENT_SCHEMA)


def _statements(ev: _Evaluated, as_of: dt.date) -> list[dict[str, Any]]:
    """Settlement rows of one agreement (see ``settlements``)."""
    assert ev.status is not None
    assert ev.rules is not None
    row = ev.row
    price: Decimal = row["unit_price"]
    advances = [
        (t.fired_on, t.amount)
        for t in ev.status.tranches
        if t.fired_on is not None and not isinstance(ev.rules.tranches[t.index].trigger, Clearing)
    ]
    cal = settlement_calendar(row["period_start"], row["period_end"], ev.rules.settlement)
    base = _base(row, ("agreement_id", "batch_code", "item_code", "institution_code", "year"))
    out: list[dict[str, Any]] = []
    settled_net = paid = ZERO
    for period in cal.settlement:
        if period.start > as_of:
            break
        upto = min(period.end, as_of)
        qty = sum((n for day, n in ev.daily if period.start <= day <= upto), ZERO)
        amount = round_fen(qty * price)
        prepaid = sum((a for day, a in advances if day <= upto), ZERO)
        split = split_reserve(amount, ev.rules.settlement.reserve_share)
        settled_net += split.paid_now
        payable = max(settled_net - prepaid - paid, ZERO)
        paid += payable
        out.append(
            base
            | {
                "period": period.label,
                "period_start": period.start,
                "period_end": period.end,
                "counted_qty": qty,
                "amount": amount,
                "prepaid_to_date": prepaid,
                "reserve": split.reserved,
                "payable": payable,
                "kind": str(PeriodKind.SETTLEMENT),
            }
        )
    if as_of >= row["period_end"]:
        clearing = cal.clearing
        amount = round_fen(ev.status.counted_qty * price)
        prepaid = sum((a for _, a in advances), ZERO)
        out.append(
            base
            | {
                "period": clearing.label,
                "period_start": clearing.start,
                "period_end": clearing.end,
                "counted_qty": ev.status.counted_qty,
                "amount": amount,
                "prepaid_to_date": prepaid,
                "reserve": ZERO,
                "payable": amount - prepaid - paid,
                "kind": str(PeriodKind.CLEARING),
            }
        )
    return out


def settlements(
    q: FactQuery,
    as_of: dt.date,
    *,
    profiles: ProfileLibrary,
    batch: str | None = None,
    institution: str | None = None,
    source: str = "purchases",
) -> pa.Table:
    """Settlement statements of each agreement (R-E3: monthly monitoring, quarterly settlement, year-end clearing).

    One row per settlement period of the profile's calendar that has started by ``as_of`` (counted to
    ``as_of`` while it runs), then a 'clearing' row for the whole year once ``as_of`` ≥ period end:

    - ``amount``: counted quantity of the period × winning unit price, rounded to the fen;
    - ``prepaid_to_date``: advances (fired share tranches) released by the period's end;
    - ``reserve``: the part of this period's amount held back (预留金, ``split_reserve``);
    - ``payable``: what the fund pays on this statement. Settlements pay the cumulative amount net
      of reserve beyond what the advances and earlier statements already cover (never below 0); the
      clearing row pays actual use of the year − advances − earlier statements, releasing the reserve
      (negative: the institution owes the fund). Advances + all payables = the year's actual use.

    Agreements without a price or profile have nothing to settle and are left out (``prepayments``
    lists them with the reason).
    """
    out: list[dict[str, Any]] = []
    for ev in _evaluate(q, as_of, profiles=profiles, batch=batch, institution=institution, source=source):
        if ev.status is not None:
            out.extend(_statements(ev, as_of))
    return pa.Table.from_pylist(out, schema=SETTLEMENT_SCHEMA)
