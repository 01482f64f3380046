"""Prepayment tranches that fired in a window, province-wide and set-based (R-E2).

The monthly cycle raises an alert for every tranche that fired in (last as-of, as-of]; on 1 January
every agreement of the new year fires its ``start`` tranche, on 31 December every one its clearing.
``prepayments`` walks the agreements one by one in Python (minutes for ~850 K agreements);
``fired_tranches`` gives the same rows for the fired tranches from a few DuckDB statements:

* each (profile, period start) pair is resolved once in Python and its tranche list flattened into
  two small registered relations: one row per tranche (share, trigger text, clearing, whether it takes
  the remainder when the shares sum to exactly 1, as ``tranche_amounts``) and one per trigger member
  (``any_of`` flattened; kind start / end / period / volume with its share, completion = volume 1);
* start fires on period start, clearing on period end, ``period_share(s)`` on start + ⌈s × days⌉ − 1
  (exact decimals), each once it is ≤ as-of; a tranche fires on its earliest member;
* volume members need the cumulative counted quantity by acceptance day as ``_cumulative`` builds it
  from ``daily_counted`` (selected products × conversion, a day's net negative counts as 0, inside
  the year, ≤ as-of). It is computed only for agreements with a volume member whose year overlaps the
  window, plus those whose clearing fires in it, from the month partitions of their years only (a
  line's partition is its acceptance month, ``FactTable.month_from``). One aggregate per agreement
  gives the total and the total up to ``after``; when all of an agreement's line quantities are ≥ 0
  with at most 4 decimals (every day then counts its exact net), a crossing inside the window is
  found from the window's days alone. Other agreements (returns, fractional conversions) take the
  exact day-by-day path over their whole year;
* amounts: agreed amount = round_fen(agreed qty × unit price); each tranche round_fen(share × agreed),
  the remainder rule when shares sum to 1; clearing = round_fen(counted × unit price) − the share
  tranches fired by as-of (``evaluate_prepayment``). All money is DECIMAL, never float.

Trigger shares with more than 8 decimal places raise ``ValueError`` (no shipped profile comes near).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pyarrow as pa

from jicai.facts.query import FactQuery
from jicai.policy import params
from jicai.policy.money import ONE, ZERO
from jicai.policy.prepayment import (
    AnyOf,
    Clearing,
    Completion,
    PeriodShare,
    Start,
    Tranche,
    Trigger,
    VolumeShare,
    validate_tranches,
)
from jicai.policy.profile import ProfileError, ProfileLibrary

from .monthly import midx, month_label
from .prepayments import DEFAULT_PROFILE, PREPAYMENT_COLUMNS, PREPAYMENT_SCHEMA, SOURCES
from .progress import month_list, safe_relation

PLAN_RELATION = "prepayment_tranche_plan"
MEMBERS_RELATION = "prepayment_tranche_members"

PARAM = pa.decimal128(18, 8)
_PARAM_PLACES = Decimal("0.00000001")

_PLAN_SCHEMA = pa.schema(
    [
        ("profile", pa.string()),
        ("period_start", pa.date32()),
        ("tranche", pa.int32()),  # 1-based, as in ``prepayments``
        ("share", pa.decimal128(9, 4)),
        ("trigger", pa.string()),
        ("is_clearing", pa.bool_()),
        ("is_remainder", pa.bool_()),  # shares sum to exactly 1 and this is the last share tranche
        ("any_of", pa.bool_()),
    ]
)
_MEMBER_SCHEMA = pa.schema(
    [
        ("profile", pa.string()),
        ("period_start", pa.date32()),
        ("tranche", pa.int32()),
        ("member", pa.int32()),  # position among the any_of members (depth first), ties go to the first
        ("kind", pa.string()),  # start | end | period | volume
        ("param", PARAM),  # the share of period_share / volume_share; 1 for completion
        ("label", pa.string()),  # the member's own trigger text
        ("param_text", pa.string()),
    ]
)

# Temporary tables of one call (dropped at the end).
_AG = "_tranches_agreements"
_MEM = "_tranches_members"
_NEED = "_tranches_need"
_KEYS = "_tranches_keys"
_AGG = "_tranches_agg"
_THR = "_tranches_thresholds"
_SCAN = "_tranches_scan"
_EXACT = "_tranches_exact"
_VOL = "_tranches_volume"
_COUNTS = "_tranches_counts"
_FIRE = "_tranches_fire"
_TEMP = (_AG, _FIRE, _MEM, _NEED, _KEYS, _AGG, _THR, _SCAN, _EXACT, _VOL, _COUNTS)


@dataclass(frozen=True)
class _Member:
    kind: str
    param: Decimal | None
    label: str


def _members(trigger: Trigger) -> Iterator[_Member]:
    """The leaves of a trigger in order (an ``any_of`` fires on its earliest leaf, ties to the first)."""
    if isinstance(trigger, AnyOf):
        for member in trigger.triggers:
            yield from _members(member)
    elif isinstance(trigger, Start):
        yield _Member("start", None, str(trigger))
    elif isinstance(trigger, Clearing):
        yield _Member("end", None, str(trigger))
    elif isinstance(trigger, PeriodShare):
        yield _Member("period", trigger.share, str(trigger))
    elif isinstance(trigger, VolumeShare):
        yield _Member("volume", trigger.share, str(trigger))
    else:
        assert isinstance(trigger, Completion)
        yield _Member("volume", ONE, str(trigger))


def _exact_param(value: Decimal, trigger: Trigger) -> Decimal:
    if value.quantize(_PARAM_PLACES) != value:
        raise ValueError(f"trigger {trigger}: shares with more than 8 decimal places are not supported")
    return value


def _plan(
    profile: str, start: dt.date, tranches: tuple[Tranche, ...]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Plan and member rows of one resolved (profile, period start)."""
    sums_to_one = sum((t.share for t in tranches), ZERO) == ONE
    last = max((i for i, t in enumerate(tranches) if not isinstance(t.trigger, Clearing)), default=-1)
    plan, members = [], []
    for i, tranche in enumerate(tranches):
        plan.append(
            {
                "profile": profile,
                "period_start": start,
                "tranche": i + 1,
                "share": tranche.share,
                "trigger": str(tranche.trigger),
                "is_clearing": isinstance(tranche.trigger, Clearing),
                "is_remainder": sums_to_one and i == last,
                "any_of": isinstance(tranche.trigger, AnyOf),
            }
        )
        for j, member in enumerate(_members(tranche.trigger)):
            members.append(
                {
                    "profile": profile,
                    "period_start": start,
                    "tranche": i + 1,
                    "member": j,
                    "kind": member.kind,
                    "param": None if member.param is None else _exact_param(member.param, tranche.trigger),
                    "label": member.label,
                    "param_text": None if member.param is None else format(member.param, "f"),
                }
            )
    return plan, members


def _register_plans(q: FactQuery, profiles: ProfileLibrary, pairs: list[tuple[str, dt.date]]) -> None:
    """Resolve each (profile, period start) as ``prepayments`` does; unresolvable ones get no rows."""
    plan: list[dict[str, Any]] = []
    members: list[dict[str, Any]] = []
    for profile, start in pairs:
        try:
            resolved = profiles.resolve(profile, start)
            tranches = params.tranches(resolved)
            params.settlement_params(resolved)  # ``prepayments`` needs both, or lists the agreement as a problem
            validate_tranches(tranches)
        except (ProfileError, KeyError, ValueError):
            continue
        rows, leaves = _plan(profile, start, tranches)
        plan.extend(rows)
        members.extend(leaves)
    q.register(PLAN_RELATION, pa.Table.from_pylist(plan, schema=_PLAN_SCHEMA))
    q.register(MEMBERS_RELATION, pa.Table.from_pylist(members, schema=_MEMBER_SCHEMA))


def _months(first: dt.date, last: dt.date) -> list[str]:
    return [month_label(m) for m in range(midx(first), midx(last) + 1)]


def _fit(expr: str, scale: int, target: str) -> str:
    """``CAST(expr AS target)`` for a 128-bit DECIMAL(38, ``scale``): through 64 bits when the value fits,
    since DuckDB rescales 128-bit decimals ~25× slower (same result: both round half away from zero)."""
    return (
        f"CASE WHEN abs({expr}) < {10 ** (18 - scale)} THEN CAST(CAST({expr} AS DECIMAL(18, {scale})) AS {target}) "
        f"ELSE CAST({expr} AS {target}) END"
    )


def _times(a: str, b: str, scale_a: int, target: str) -> str:
    """``CAST(a × b AS target)`` exactly: the 64-bit product where it surely fits (a double estimate below
    10⁹; DuckDB's DECIMAL(18, 8) holds up to 10¹⁰), else the 128-bit one."""
    return (
        f"CASE WHEN abs(CAST({a} AS DOUBLE) * CAST({b} AS DOUBLE)) < 1e9 THEN CAST({a} * {b} AS {target}) "
        f"ELSE CAST(CAST({a} AS DECIMAL(38, {scale_a})) * {b} AS {target}) END"
    )


# Agreements that can fire in the window and have what ``prepayments`` needs to compute amounts: a
# positive unit price and agreed quantity, a year that overlaps (after, as_of] (every trigger fires
# inside the year). Parameters: $as_of, $after, $default.
_AGREEMENTS_SQL = f"""
    SELECT a.agreement_id, a.batch_code, a.item_code, a.institution_code, CAST(a.year AS INTEGER) AS year,
           a.period_start, a.period_end, a.agreed_qty, a.unit_price,
           coalesce(nullif(a.profile, ''), $default) AS profile,
           {_times("a.agreed_qty", "a.unit_price", 4, "DECIMAL(18, 2)")} AS agreed_amount
    FROM agreements a
    WHERE a.period_start <= $as_of AND a.period_end > $after AND a.period_end >= a.period_start
      AND a.unit_price > 0 AND a.agreed_qty > 0
"""

_SELECTED_SQL = """
    SELECT DISTINCT batch_code, item_code, product_code, coalesce(conversion, 1) AS conversion
    FROM item_products WHERE kind = 'selected'
"""

_PRODUCT = "p.qty * k.conversion"  # as ``daily_counted`` (DECIMAL(18,8), the same overflow check)
_JOIN_LINES = "JOIN {src} p ON p.institution_code = k.institution_code AND p.product_code = k.product_code"
# A line whose item quantity is negative or has more than 4 decimals (only then can the days differ
# from the plain sum of the lines); the conversion test first, so integral conversions cost nothing.
_ODD_LINE = f"p.qty < 0 OR (k.odd_conversion AND ({_PRODUCT} < 0 OR {_PRODUCT} <> CAST({_PRODUCT} AS DECIMAL(18, 4))))"

_EMPTY_VOLUME = (
    "SELECT NULL::BIGINT AS agreement_id, NULL::DECIMAL(18, 8) AS param, NULL::DECIMAL(38, 12) AS threshold, "
    "NULL::DATE AS day, NULL::DECIMAL(38, 4) AS cum LIMIT 0"
)
_EMPTY_COUNTS = "SELECT NULL::BIGINT AS agreement_id, NULL::DECIMAL(18, 4) AS counted LIMIT 0"


def _trimmed(expr: str, decimal: str = "DECIMAL(18, 4)") -> str:
    """SQL text of a quantity without trailing zeros (5500.0000 → 5500, 0.5000 → 0.5); ``decimal`` must
    have places, so that the text always has a point."""
    return f"rtrim(rtrim(CAST(CAST({expr} AS {decimal}) AS VARCHAR), '0'), '.')"


# The reason of a fired tranche (``h`` the tranche, ``w`` the member that fired, ``v`` its volume
# numbers, ``a`` the agreement); ``concat`` skips the NULL of a CASE without ELSE.
_REASON = f"""concat(
    '已触发 fired ', h.fired_on, ': ', CASE WHEN p.any_of THEN 'first of any_of: ' END, w.label,
    CASE w.kind
        WHEN 'start' THEN concat(': period start ', h.fired_on)
        WHEN 'end' THEN concat(': period end ', h.fired_on)
        WHEN 'period' THEN concat(': elapsed share reached ', w.param_text, ' on ', h.fired_on)
        ELSE concat(': cumulative ', {_trimmed("v.cum")}, ' reached ',
                    {_trimmed("v.threshold", "DECIMAL(38, 12)")}, ' on ', h.fired_on)
    END,
    CASE WHEN h.is_clearing THEN concat(
        '; actual ', {_trimmed("h.counted")}, ' × ', a.unit_price, ' = ', CAST(h.actual AS DECIMAL(18, 2)),
        ' minus prepaid ', CAST(h.prepaid AS DECIMAL(18, 2))
    ) END
)"""


class _Run:
    """One evaluation: the statements share the bound dates and the temporary tables."""

    def __init__(self, q: FactQuery, as_of: dt.date, after: dt.date, src: str) -> None:
        self.q = q
        self.src = src
        self.args: dict[str, Any] = {"as_of": as_of, "after": after, "default": DEFAULT_PROFILE}

    def _bound(self, sql: str) -> dict[str, Any]:
        return {k: v for k, v in self.args.items() if f"${k}" in sql}

    def run(self, sql: str) -> list[tuple[Any, ...]]:
        return self.q.con.execute(sql, self._bound(sql)).fetchall()

    def table(self, name: str, sql: str) -> None:
        self.run(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")

    def month_filter(self, relation: str, lo: str, hi: str) -> str:
        """``p.month IN (...)``: the month partitions between the earliest ``lo`` and the latest ``hi``."""
        first, last = self.run(f"SELECT min({lo}), max({hi}) FROM {relation}")[0]
        return f"p.month IN {month_list(_months(first, last) if first is not None else [])}"

    def agreements(self) -> list[tuple[str, dt.date]]:
        """The candidate agreements (one scan of the registered relation); their (profile, period start)."""
        self.table(_AG, _AGREEMENTS_SQL)
        return [(p, s) for p, s in self.run(f"SELECT DISTINCT profile, period_start FROM {_AG}")]

    def members(self) -> None:
        """Every member of every tranche of the candidate agreements, with its date unless it is volume."""
        self.table(
            _MEM,
            f"""
            SELECT a.agreement_id, m.tranche, m.member, m.kind, m.param,
                   CASE m.kind WHEN 'start' THEN a.period_start WHEN 'end' THEN a.period_end
                        WHEN 'period' THEN CAST(a.period_start
                             + CAST(ceil(m.param * (a.period_end - a.period_start + 1)) AS INTEGER) - 1 AS DATE)
                   END AS day
            FROM {_AG} a JOIN {MEMBERS_RELATION} m ON m.profile = a.profile AND m.period_start = a.period_start
            """,
        )

    def need(self) -> tuple[int, int]:
        """Agreements with a tranche that may fire in the window; which need volume and counted totals.

        A volume member matters unless a dated member of its tranche fired by ``after`` (the tranche
        then fired before the window, whatever the volume did).
        """
        self.table(
            _NEED,
            f"""
            SELECT agreement_id, bool_or(volume) AS volume, bool_or(clearing) AS clearing
            FROM (
                SELECT agreement_id,
                       bool_or(kind = 'volume') AND coalesce(min(day) FILTER (WHERE kind <> 'volume'
                                                             AND day <= $as_of) > $after, TRUE) AS volume,
                       bool_or(kind = 'end' AND day > $after AND day <= $as_of) AS clearing,
                       bool_or(kind <> 'volume' AND day > $after AND day <= $as_of) AS dated
                FROM {_MEM} GROUP BY agreement_id, tranche
            )
            GROUP BY agreement_id
            HAVING bool_or(volume OR dated)
            """,
        )
        volume, clearing = self.run(
            f"SELECT count(*) FILTER (WHERE volume), count(*) FILTER (WHERE clearing) FROM {_NEED}"
        )[0]
        return int(volume), int(clearing)

    def keys(self) -> None:
        """(agreement, selected product) rows of the agreements whose lines are counted."""
        self.table(
            _KEYS,
            f"""
            SELECT a.agreement_id, a.institution_code, s.product_code, s.conversion,
                   s.conversion < 0 OR s.conversion <> trunc(s.conversion) AS odd_conversion,
                   a.period_start, least(a.period_end, $as_of) AS upto, n.volume
            FROM {_AG} a
            JOIN {_NEED} n ON n.agreement_id = a.agreement_id
            JOIN ({_SELECTED_SQL}) s ON s.batch_code = a.batch_code AND s.item_code = a.item_code
            WHERE n.volume OR n.clearing
            """,
        )

    def aggregate(self, volume: bool) -> None:
        """Counted total (and total up to ``after``) per agreement from one pass over the lines; ``odd``
        counts the lines that rule the plain sum out (``_ODD_LINE``)."""
        months = self.month_filter(_KEYS, "period_start", "upto")
        before = f"sum({_PRODUCT}) FILTER (WHERE p.accepted_on <= $after)" if volume else "NULL::DECIMAL(38, 8)"
        self.table(
            _AGG,
            f"""
            SELECT k.agreement_id, sum({_PRODUCT}) AS total, {before} AS before, count_if({_ODD_LINE}) AS odd
            FROM {_KEYS} k {_JOIN_LINES.format(src=self.src)}
            WHERE {months} AND p.accepted_on BETWEEN k.period_start AND k.upto
            GROUP BY k.agreement_id
            """,
        )

    def thresholds(self) -> None:
        """Each volume member's threshold (share × agreed quantity, exact) for the agreements needing volume."""
        self.table(
            _THR,
            f"""
            SELECT DISTINCT m.agreement_id, m.param, CAST(a.agreed_qty AS DECIMAL(38, 4)) * m.param AS threshold
            FROM {_MEM} m
            JOIN {_NEED} n ON n.agreement_id = m.agreement_id AND n.volume
            JOIN {_AG} a ON a.agreement_id = m.agreement_id
            WHERE m.kind = 'volume'
            """,
        )

    def scan_set(self) -> int:
        """Agreements whose days are counted one by one: odd ones over their year (exact as
        ``daily_counted``), well-behaved ones whose volume crossing falls inside the window from the
        window's days on top of the total up to ``after``."""
        self.table(
            _SCAN,
            f"""
            SELECT a.agreement_id, a.period_start AS lo, CAST(0 AS DECIMAL(38, 4)) AS base, TRUE AS odd
            FROM {_AGG} g JOIN {_AG} a ON a.agreement_id = g.agreement_id
            WHERE g.odd > 0
            UNION ALL
            SELECT a.agreement_id, greatest(a.period_start, CAST($after + 1 AS DATE)),
                   CAST(coalesce(g.before, 0) AS DECIMAL(38, 4)), FALSE
            FROM {_AGG} g JOIN {_AG} a ON a.agreement_id = g.agreement_id
            WHERE g.odd = 0 AND EXISTS (
                SELECT 1 FROM {_THR} t WHERE t.agreement_id = g.agreement_id
                AND coalesce(g.before, 0) < t.threshold AND g.total >= t.threshold
            )
            """,
        )
        return int(self.run(f"SELECT count(*) FROM {_SCAN}")[0][0])

    def exact(self) -> None:
        """Day by day as ``daily_counted`` and ``_cumulative``: first day each threshold is reached, and
        the counted total (rows without a param), for the agreements of the scan set."""
        months = self.month_filter(f"{_SCAN} s JOIN {_KEYS} k USING (agreement_id)", "s.lo", "k.upto")
        self.table(
            _EXACT,
            f"""
            WITH d AS (
                SELECT k.agreement_id, p.accepted_on AS day,
                       {_fit(f"greatest(sum({_PRODUCT}), 0)", 8, "DECIMAL(18, 4)")} AS qty
                FROM {_KEYS} k JOIN {_SCAN} s ON s.agreement_id = k.agreement_id {_JOIN_LINES.format(src=self.src)}
                WHERE {months} AND p.accepted_on BETWEEN s.lo AND k.upto
                GROUP BY k.agreement_id, p.accepted_on
            ),
            c AS (
                SELECT d.agreement_id, d.day,
                       s.base + sum(d.qty) OVER (PARTITION BY d.agreement_id ORDER BY d.day) AS cum
                FROM d JOIN {_SCAN} s ON s.agreement_id = d.agreement_id
            )
            SELECT t.agreement_id, t.param, min(c.day) AS day, arg_min(c.cum, c.day) AS cum
            FROM {_THR} t JOIN c ON c.agreement_id = t.agreement_id AND c.cum >= t.threshold
            GROUP BY t.agreement_id, t.param
            UNION ALL
            SELECT agreement_id, NULL, NULL, max(cum) FROM c GROUP BY agreement_id
            """,
        )

    def volume_and_counts(self, scanned: bool) -> None:
        """First day each volume threshold is reached (``after`` stands for "by then": such a tranche
        fired before the window and only its amount matters) and the counted total of each agreement."""
        exact = _EXACT if scanned else f"({_EMPTY_VOLUME})"
        scan = _SCAN if scanned else "(SELECT NULL::BIGINT AS agreement_id, TRUE AS odd LIMIT 0)"
        self.table(
            _VOL,
            f"""
            SELECT t.agreement_id, t.param, t.threshold,
                   CASE WHEN s.agreement_id IS NULL AND coalesce(g.before, 0) >= t.threshold
                        THEN CAST($after AS DATE) ELSE e.day END AS day,
                   e.cum
            FROM {_THR} t
            LEFT JOIN {_AGG} g ON g.agreement_id = t.agreement_id
            LEFT JOIN {scan} s ON s.agreement_id = t.agreement_id AND s.odd
            LEFT JOIN {exact} e ON e.agreement_id = t.agreement_id AND e.param = t.param
            """,
        )
        odd_totals = (
            f"UNION ALL SELECT e.agreement_id, {_fit('e.cum', 4, 'DECIMAL(18, 4)')} FROM {_EXACT} e JOIN {_SCAN} s "
            "ON s.agreement_id = e.agreement_id AND s.odd WHERE e.param IS NULL"
            if scanned
            else ""
        )
        self.table(
            _COUNTS,
            f"SELECT agreement_id, {_fit('total', 8, 'DECIMAL(18, 4)')} AS counted FROM {_AGG} "
            f"WHERE odd = 0 {odd_totals}",
        )

    def no_counts(self) -> None:
        self.table(_VOL, _EMPTY_VOLUME)
        self.table(_COUNTS, _EMPTY_COUNTS)

    def fire(self) -> None:
        """Each tranche's firing date by as-of (its earliest member) and the member that fired."""
        self.table(
            _FIRE,
            f"""
            SELECT agreement_id, tranche, min(day) AS fired_on,
                   arg_min(member, (day - DATE '1970-01-01') * 1000 + member) AS member
            FROM (
                SELECT m.agreement_id, m.tranche, m.member, CASE WHEN m.kind = 'volume' THEN v.day ELSE m.day END AS day
                FROM {_MEM} m
                JOIN {_NEED} n ON n.agreement_id = m.agreement_id
                LEFT JOIN {_VOL} v ON m.kind = 'volume' AND v.agreement_id = m.agreement_id AND v.param = m.param
            )
            WHERE day <= $as_of
            GROUP BY agreement_id, tranche
            """,
        )

    def fired(self) -> pa.Table:
        """The tranches fired in the window with their amounts (numbers by agreement id first, the
        agreement's codes and the reason only for the rows returned)."""
        rounded = _times("a.agreed_amount", "p.share", 2, "DECIMAL(18, 2)")
        actual = _times("coalesce(c.counted, CAST(0 AS DECIMAL(18, 4)))", "tr.unit_price", 4, "DECIMAL(18, 2)")
        sql = f"""
            WITH tr AS (
                SELECT a.agreement_id, a.agreed_amount, a.unit_price, a.profile, a.period_start, p.tranche,
                       p.is_clearing, p.is_remainder, f.fired_on, f.member,
                       {rounded} AS rounded
                FROM {_AG} a
                JOIN {_NEED} n ON n.agreement_id = a.agreement_id
                JOIN {PLAN_RELATION} p ON p.profile = a.profile AND p.period_start = a.period_start
                LEFT JOIN {_FIRE} f ON f.agreement_id = a.agreement_id AND f.tranche = p.tranche
            ),
            tot AS (
                SELECT agreement_id, CAST(sum(rounded) AS DECIMAL(18, 2)) AS all_rounded,
                       CAST(coalesce(sum(rounded) FILTER (WHERE fired_on IS NOT NULL AND NOT is_clearing), 0)
                            AS DECIMAL(18, 2)) AS fired_rounded,
                       bool_or(is_remainder AND fired_on IS NOT NULL) AS remainder_fired
                FROM tr GROUP BY agreement_id
                HAVING bool_or(fired_on > $after)
            ),
            h AS (
                SELECT tr.*,
                       CASE WHEN tr.is_remainder THEN tr.agreed_amount - (t.all_rounded - tr.rounded)
                            ELSE tr.rounded END AS scheduled,
                       t.fired_rounded + CASE WHEN t.remainder_fired THEN tr.agreed_amount - t.all_rounded ELSE 0 END
                           AS prepaid,
                       coalesce(c.counted, 0) AS counted,
                       {actual} AS actual
                FROM tr
                JOIN tot t ON t.agreement_id = tr.agreement_id
                LEFT JOIN {_COUNTS} c ON tr.is_clearing AND c.agreement_id = tr.agreement_id
                WHERE tr.fired_on > $after
            )
            SELECT a.agreement_id, a.batch_code, a.item_code, a.institution_code, a.year, a.period_start,
                   a.period_end, a.agreed_qty, a.unit_price, CAST(a.agreed_amount AS DECIMAL(18, 2)) AS agreed_amount,
                   h.tranche, p.share, p.trigger, h.fired_on,
                   CAST(CASE WHEN h.is_clearing THEN h.actual - h.prepaid ELSE h.scheduled END AS DECIMAL(18, 2))
                       AS amount,
                   {_REASON} AS reason,
                   a.profile
            FROM h
            JOIN {_AG} a ON a.agreement_id = h.agreement_id
            JOIN {PLAN_RELATION} p
              ON p.profile = h.profile AND p.period_start = h.period_start AND p.tranche = h.tranche
            JOIN {MEMBERS_RELATION} w ON w.profile = h.profile AND w.period_start = h.period_start
                 AND w.tranche = h.tranche AND w.member = h.member
            LEFT JOIN {_VOL} v ON w.kind = 'volume' AND v.agreement_id = h.agreement_id AND v.param = w.param
        """
        table = self.q.con.sql(sql, params=self._bound(sql)).to_arrow_table()
        return table.select(list(PREPAYMENT_COLUMNS)).cast(PREPAYMENT_SCHEMA)

    def drop(self) -> None:
        for name in _TEMP:
            self.q.con.execute(f"DROP TABLE IF EXISTS {name}")
        for name in (PLAN_RELATION, MEMBERS_RELATION):
            self.q.con.unregister(name)


def fired_tranches(
    q: FactQuery,
    as_of: dt.date,
    *,
    profiles: ProfileLibrary,
    after: dt.date,
    source: str = "purchases",
) -> pa.Table:
    """The prepayment tranches that fired in (``after``, ``as_of``], for the monthly alerts (R-E2).

    Rows as ``prepayments(q, as_of, profiles=profiles)`` gives them for exactly those tranches (same
    schema, PREPAYMENT_SCHEMA, and values), computed set-based in DuckDB for every agreement
    registered as ``agreements`` (with ``item_products``) on ``q`` (module docstring). Agreements
    that ``prepayments`` lists with a problem (no unit price, agreed quantity ≤ 0, unresolvable
    profile) fire nothing. ``reason`` is a shorter text of the same form: "已触发 fired <date>: " then
    the member that fired ("start: period start 2025-01-01", "volume_share(0.5): cumulative 5500
    reached 5000 on 2023-01-10", "first of any_of: …"); a clearing adds "; actual <qty> × <price> =
    <amount> minus prepaid <prepaid>". Rows come in no particular order.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown purchase source {source!r} (one of {', '.join(SOURCES)})")
    if after >= as_of:
        return PREPAYMENT_SCHEMA.empty_table()
    run = _Run(q, as_of, after, safe_relation(source))
    try:
        _register_plans(q, profiles, run.agreements())
        run.members()
        volume, clearing = run.need()
        if volume or clearing:
            run.keys()
            run.aggregate(volume > 0)
            run.thresholds()
            scanned = run.scan_set() > 0
            if scanned:
                run.exact()
            run.volume_and_counts(scanned)
        else:
            run.no_counts()
        run.fire()
        return run.fired()
    finally:
        run.drop()
