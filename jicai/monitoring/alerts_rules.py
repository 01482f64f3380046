"""Alert candidates derived from the computed tables (no storage, no I/O; grouping in in-memory DuckDB).

Each candidate says what is wrong, with the numbers, and what to do, in Chinese and English. Its
``key`` names the underlying situation, not the run, so the cycle can store candidates idempotently
(``jicai.monitoring.cycle.store_alerts`` upserts by key and resolves keys no longer raised):

- ``behind:{batch}:{institution}:{year}`` — an institution's items of a batch behind schedule in an
  agreement year (R-L1);
- ``cap:{batch}:{item}:{institution}:{since}`` — non-selected cap exceeded since month ``since`` (R-D2);
  a new breach after the cap was back in bounds gets a new key;
- ``growth:{batch}:{item}:{institution}:{month}`` — substitute growth in a month (R-H7);
- ``overdue:{institution}`` — supplier payments overdue (R-E1);
- ``tranche:{batch}:{institution}:{year}:{tranche}:{day}`` — a prepayment tranche fired (R-E2).

Tables may give readable names in optional columns (``institution_name``, ``generic_name``) or via
``Labels``; otherwise codes are shown. ``region_code`` comes from the row, then ``Labels``, then the
institution code itself (national medical institution codes are "H" + 6-digit region + serial).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import duckdb
import pyarrow as pa

from jicai.policy.money import round_fen
from jicai.policy.prepayment import AnyOf, Clearing, Completion, PeriodShare, Start, Trigger, VolumeShare, parse_trigger

BEHIND = "behind_schedule"
CAP = "cap_exceeded"
GROWTH = "substitute_growth"
OVERDUE = "overdue_payment"
TRANCHE = "tranche_fired"

CRITICAL = "critical"
WARNING = "warning"
INFO = "info"

DEFAULT_BEHIND_RATIO = Decimal("0.90")
#: Overdue longer than this many days is critical rather than a warning.
CRITICAL_OVERDUE_DAYS = 30

_INSTITUTION_CODE = re.compile(r"^H(\d{6})\d{5}$")
#: Items named in a grouped message (all are in its data).
_LISTED = 3


@dataclass(frozen=True)
class AlertCandidate:
    kind: str
    key: str
    institution_code: str
    region_code: str
    batch_code: str | None
    item_code: str | None
    severity: str
    message_zh: str
    message_en: str
    data: dict[str, Any]
    data_json: str | None = None  # ``data`` serialised, with detail rows built in DuckDB (stored as is)

    def payload(self) -> str:
        """The JSON stored with the alert: ``data_json`` when the rule built it, else ``data``."""
        if self.data_json is not None:
            return self.data_json
        return json.dumps(self.data, ensure_ascii=False, sort_keys=True, default=_json_value)


@dataclass(frozen=True)
class Labels:
    """Optional readable names: institution code → name / region code, (batch, item) → generic name."""

    institutions: Mapping[str, str] = field(default_factory=dict)
    regions: Mapping[str, str] = field(default_factory=dict)
    items: Mapping[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def from_reference(cls, reference: Any, items: Mapping[tuple[str, str], str] | None = None) -> Labels:
        """From ``jicai.monitoring.reference.Reference`` (institution names and regions)."""
        rows = reference.institutions.to_pylist()
        return cls(
            institutions={r["institution_code"]: r["institution_name"] for r in rows},
            regions={r["institution_code"]: r["region_code"] for r in rows},
            items=dict(items or {}),
        )


_NO_LABELS = Labels()


# --------------------------------------------------------------------------------------------------
# Formatting


def _json_value(value: Any) -> Any:
    """Decimal and dates as strings in stored alert data (as ``core.audit.json_default``, without Django)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _dec(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


_PCT_SQL = (
    "CASE WHEN {0} IS NULL THEN '—' ELSE regexp_replace(CAST(round(CAST({0} AS DECIMAL(18, 4)) * 100, 1) "
    "AS VARCHAR), '\\.0$', '') || '%' END"
)
"""``_pct`` in DuckDB SQL (``_PCT_SQL.format(column)``): the same text for the same DECIMAL(18,4) value."""
_TENTH = Decimal("0.1")
_Q4 = Decimal("0.0001")
_HUNDRED = Decimal(100)


def _pct(value: Any) -> str:
    """A ratio as a percentage with at most one decimal (0.25 → "25%", 0.125 → "12.5%")."""
    number = _dec(value)
    if number is None:
        return "—"
    shown = (number * _HUNDRED).quantize(_TENTH, rounding=ROUND_HALF_UP)
    text = format(shown, "f")
    return (text[:-2] if text.endswith(".0") else text) + "%"


def _qty(value: Any) -> str:
    number = _dec(value)
    if number is None:
        return "—"
    if number == number.to_integral_value():  # the usual whole quantity: skip quantize and normalize
        return f"{int(number):,}"
    number = number.quantize(_Q4, rounding=ROUND_HALF_UP).normalize()
    return format(number, ",f")


def _money(value: Any) -> str:
    number = _dec(value)
    return "—" if number is None else format(round_fen(number), ",.2f")


def _month(value: Any) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()[:7]
    return str(value)[:7]


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    return table.to_pylist() if table is not None else []


def _institution(row: Mapping[str, Any], labels: Labels) -> str:
    code = row["institution_code"]
    return str(row.get("institution_name") or labels.institutions.get(code) or code)


def _item(row: Mapping[str, Any], labels: Labels) -> str:
    batch, item = row.get("batch_code"), row.get("item_code")
    name = row.get("generic_name") or row.get("item_name") or labels.items.get((batch, item))  # type: ignore[arg-type]
    return str(name) if name else f"{batch}/{item}"


def _region(row: Mapping[str, Any], labels: Labels) -> str:
    code = row["institution_code"]
    if row.get("region_code"):
        return str(row["region_code"])
    if code in labels.regions:
        return labels.regions[code]
    match = _INSTITUTION_CODE.match(code or "")
    return match.group(1) if match else ""


def _as_of_zh(as_of: dt.date | None) -> str:
    return f"（数据截至 {as_of.isoformat()}）" if as_of else ""


def _as_of_en(as_of: dt.date | None) -> str:
    return f" (figures as of {as_of.isoformat()})" if as_of else ""


def _group_latest(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """Rows per (institution, batch, item), sorted by month."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["institution_code"], row["batch_code"], row["item_code"]), []).append(row)
    for members in groups.values():
        members.sort(key=lambda r: _month(r["month"]))
    return groups


# --------------------------------------------------------------------------------------------------
# Rules


def _behind_ratio(setting: Decimal | Mapping[str, Decimal | tuple[Decimal, Decimal]], profile: str | None) -> Decimal:
    if not isinstance(setting, Mapping):
        return setting
    value = setting.get(profile or "", DEFAULT_BEHIND_RATIO)
    return value[0] if isinstance(value, tuple) else value


def behind_schedule(
    progress: pa.Table,
    *,
    behind_ratio: Decimal | Mapping[str, Decimal | tuple[Decimal, Decimal]] = DEFAULT_BEHIND_RATIO,
    labels: Labels = _NO_LABELS,
    as_of: dt.date | None = None,
) -> list[AlertCandidate]:
    """One alert per institution × batch × agreement year with items behind schedule (R-L1, R-H4).

    Whoever acts on it (the hospital's VBP office, the bureau following up) acts per institution and
    batch, not per item: the message names the items furthest behind and ``data["items"]`` holds
    every item's figures. It is critical when one item is at risk. With ``as_of`` the message says
    which day its figures are of: the cycle rewrites a stored alert when its situation (which item
    has which status) changes, not every time a percentage moves.

    "应达" (expected) = behind_ratio × elapsed share, the completion below which a year is behind;
    ``behind_ratio`` is one number or a mapping by profile name, whose values may also be the
    ``(behind_ratio, at_risk_ratio)`` pairs of ``progress.progress_thresholds`` (default 0.90, national).
    """
    if progress is None or progress.num_rows == 0:
        return []
    names = set(progress.column_names)
    given = progress.column("profile").to_pylist() if "profile" in names else []
    profiles = sorted({p for p in given if p is not None})
    ratios = pa.table(
        {
            "profile": pa.array(profiles, pa.string()),
            "ratio": pa.array([_behind_ratio(behind_ratio, p) for p in profiles], pa.decimal128(9, 4)),
        }
    )
    default = _behind_ratio(behind_ratio, None)
    optional = {c: f"any_value({c})" if c in names else "NULL" for c in ("region_code", "institution_name", "profile")}
    item_name = "generic_name" if "generic_name" in names else "NULL"
    profile = "p.profile" if "profile" in names else "NULL"
    item_labels = pa.table(
        {
            "batch_code": pa.array([b for b, _ in labels.items], pa.string()),
            "item_code": pa.array([i for _, i in labels.items], pa.string()),
            "name": pa.array([str(n) for n in labels.items.values()], pa.string()),
        }
    )
    # Percentages and the stored JSON are formatted here, set-based: a province's month has ten
    # thousand groups to render, and per-value Python formatting would cost more than the query.
    sql = f"""
        WITH late AS (
            SELECT p.*, coalesce({item_name}, li.name, p.item_code) AS _item_name,
                   CAST(coalesce(r.ratio, $default) * coalesce(p.elapsed, 0) AS DECIMAL(18, 4)) AS _expected,
                   greatest(coalesce(p.agreed_qty, 0) - coalesce(p.counted_qty, 0), 0) AS _remaining
            FROM progress p LEFT JOIN ratios r ON r.profile = {profile}
            LEFT JOIN item_labels li ON li.batch_code = p.batch_code AND li.item_code = p.item_code
            WHERE p.status IN ('behind', 'at_risk')
        ),
        g AS (
            SELECT institution_code, batch_code, year,
                   {optional["region_code"]} AS region_code, {optional["institution_name"]} AS institution_name,
                   {optional["profile"]} AS profile,
                   min(period_start) AS period_start, max(period_end) AS period_end,
                   coalesce(max(elapsed), 0) AS elapsed,
                   count(*) AS behind, count(*) FILTER (status = 'at_risk') AS at_risk,
                   list(_item_name || ' 完成率 ' || {_PCT_SQL.format("completion")} || '（应达 '
                        || {_PCT_SQL.format("_expected")} || '）'
                        ORDER BY completion - _expected, item_code)[1:{_LISTED}] AS worst_zh,
                   list(_item_name || ' ' || {_PCT_SQL.format("completion")} || ' (expected '
                        || {_PCT_SQL.format("_expected")} || ')'
                        ORDER BY completion - _expected, item_code)[1:{_LISTED}] AS worst_en,
                   list({{
                       'item_code': item_code, 'status': status,
                       'agreed_qty': CAST(CAST(agreed_qty AS DECIMAL(18, 4)) AS VARCHAR),
                       'counted_qty': CAST(CAST(counted_qty AS DECIMAL(18, 4)) AS VARCHAR),
                       'remaining_qty': CAST(CAST(_remaining AS DECIMAL(18, 4)) AS VARCHAR),
                       'completion': CAST(CAST(completion AS DECIMAL(18, 4)) AS VARCHAR),
                       'expected_completion': CAST(CAST(_expected AS DECIMAL(18, 4)) AS VARCHAR),
                       'projected_completion': CAST(CAST(projected_completion AS DECIMAL(18, 4)) AS VARCHAR)
                   }} ORDER BY item_code) AS items
            FROM late GROUP BY institution_code, batch_code, year
        )
        SELECT institution_code, batch_code, year, region_code, institution_name, profile,
               period_start, period_end, elapsed, behind, at_risk,
               {_PCT_SQL.format("elapsed")} AS elapsed_pct,
               array_to_string(worst_zh, '；') AS worst_zh, array_to_string(worst_en, '; ') AS worst_en,
               len(worst_zh) AS listed,
               CAST(to_json({{
                   'at_risk': at_risk, 'behind': behind, 'elapsed': CAST(elapsed AS VARCHAR),
                   'period_end': CAST(period_end AS VARCHAR), 'period_start': CAST(period_start AS VARCHAR),
                   'profile': profile, 'year': year, 'items': items
               }}) AS VARCHAR) AS data_json
        FROM g
        ORDER BY institution_code, batch_code, year
    """
    con = duckdb.connect(config={"threads": 2})
    try:
        con.register("progress", progress)
        con.register("ratios", ratios)
        con.register("item_labels", item_labels)
        groups = con.sql(sql, params={"default": default}).to_arrow_table().to_pylist()
    finally:
        con.close()
    as_zh, as_en = _as_of_zh(as_of), _as_of_en(as_of)
    out = []
    for g in groups:
        inst, batch, year = _institution(g, labels), g["batch_code"], g["year"]
        count, at_risk, listed, elapsed = g["behind"], g["at_risk"], g["listed"], g["elapsed_pct"]
        more_zh = f"等 {count} 个品种" if count > listed else ""
        more_en = f" and {count - listed} more" if count > listed else ""
        zh_risk = f"，其中 {at_risk} 个严重落后" if at_risk else ""
        en_risk = f", {at_risk} of them well behind (at risk)" if at_risk else ""
        data = {
            "year": year,
            "period_start": g["period_start"],
            "period_end": g["period_end"],
            "elapsed": g["elapsed"],
            "behind": count,
            "at_risk": at_risk,
            "profile": g["profile"],
        }
        out.append(
            AlertCandidate(
                kind=BEHIND,
                key=f"behind:{batch}:{g['institution_code']}:{year}",
                institution_code=g["institution_code"],
                region_code=_region(g, labels),
                batch_code=batch,
                item_code=None,
                severity=CRITICAL if at_risk else WARNING,
                message_zh=(
                    f"{inst} 批次 {batch} 第{year}协议年 {count} 个品种落后于进度{zh_risk}，时间进度 {elapsed}："
                    f"{g['worst_zh']}{more_zh}。请核查采购计划，优先采购中选产品。{as_zh}"
                ),
                message_en=(
                    f"{inst} batch {batch} agreement year {year}: {count} items behind schedule{en_risk}, time "
                    f"elapsed {elapsed}: {g['worst_en']}{more_en}. Review the purchasing plan and buy the selected "
                    f"products first.{as_en}"
                ),
                data=data,
                data_json=g["data_json"],
            )
        )
    return out


_CAP_COLUMNS = {
    "institution_code",
    "batch_code",
    "item_code",
    "month",
    "cap_exceeded",
    "cap_since",
    "institution_name",
    "generic_name",
    "item_name",
    "region_code",
    "cum_selected_qty",
    "cum_non_selected_qty",
    "cap_limit",
}


def cap_exceeded(substitutes: pa.Table, *, labels: Labels = _NO_LABELS) -> list[AlertCandidate]:
    """Institution × item whose latest month has the non-selected cap exceeded (R-D2).

    The key carries the first month of the current unbroken run of exceeded months, so the alert
    stays one alert while the breach lasts and a later, separate breach is a new alert. The run is
    read from the rows given, or from a ``cap_since`` column when the caller computed it (the cycle
    does, in SQL, and passes only each pair's latest row).
    """
    out: list[AlertCandidate] = []
    read = [c for c in substitutes.column_names if c in _CAP_COLUMNS]  # not the ten columns it ignores
    for (institution, batch, item), rows in sorted(_group_latest(_rows(substitutes.select(read))).items()):
        latest = rows[-1]
        if not latest.get("cap_exceeded"):
            continue
        since = _month(latest["month"])
        for row in reversed(rows):
            if not row.get("cap_exceeded"):
                break
            since = _month(row["month"])
        if latest.get("cap_since"):
            since = _month(latest["cap_since"])
        month = _month(latest["month"])
        inst, name = _institution(latest, labels), _item(latest, labels)
        non_selected, selected = latest.get("cum_non_selected_qty"), latest.get("cum_selected_qty")
        limit = _dec(latest.get("cap_limit"))
        excess = (_dec(non_selected) or Decimal(0)) - (limit or Decimal(0))
        out.append(
            AlertCandidate(
                kind=CAP,
                key=f"cap:{batch}:{item}:{institution}:{since}",
                institution_code=institution,
                region_code=_region(latest, labels),
                batch_code=batch,
                item_code=item,
                severity=CRITICAL,
                message_zh=(
                    f"{inst} {name} 截至 {month} 非中选产品累计用量 {_qty(non_selected)}，超过上限 {_qty(limit)}"
                    f"（中选产品累计 {_qty(selected)}），超出 {_qty(excess)}，自 {since} 起超限。"
                    "请暂停非中选产品采购，优先使用中选产品。"
                ),
                message_en=(
                    f"{inst} {name}: by {month} non-selected use {_qty(non_selected)} exceeds the cap {_qty(limit)} "
                    f"(selected {_qty(selected)}) by {_qty(excess)}, over the cap since {since}. Stop buying "
                    "non-selected products and use the selected product first."
                ),
                data={
                    "month": month,
                    "since": since,
                    "cum_selected_qty": _dec(selected),
                    "cum_non_selected_qty": _dec(non_selected),
                    "cap_limit": limit,
                    "excess_qty": excess,
                },
            )
        )
    return out


def substitute_growth(
    substitutes: pa.Table,
    *,
    threshold: Decimal = Decimal("0.5"),
    min_qty: Decimal = Decimal(100),
    labels: Labels = _NO_LABELS,
) -> list[AlertCandidate]:
    """Latest month per institution × item whose month-on-month or year-on-year growth exceeds ``threshold``.

    Growth is the table's ``mom_growth`` / ``yoy_growth``, which ``substitutes`` computes on
    ``substitute_qty`` (what R-H7 watches; non-selected use is capped instead, see ``cap_exceeded``).
    Months with less than ``min_qty`` substitute units are ignored (small numbers grow noisily).
    """
    if substitutes is None or substitutes.num_rows == 0:
        return []
    names = set(substitutes.column_names)
    optional = {
        c: c if c in names else "NULL"
        for c in ("institution_name", "generic_name", "item_name", "region_code", "selected_share", "selected_qty")
    }
    ns = "non_selected_qty" if "non_selected_qty" in names else "NULL"
    # The latest month per pair, its hits and percentages in DuckDB (as in ``behind_schedule``).
    sql = f"""
        WITH latest AS (
            SELECT *, left(CAST(month AS VARCHAR), 7) AS _month FROM rows_in
            QUALIFY row_number() OVER (PARTITION BY institution_code, batch_code, item_code
                                       ORDER BY left(CAST(month AS VARCHAR), 7) DESC) = 1
        )
        SELECT institution_code, batch_code, item_code, _month AS month,
               {optional["institution_name"]} AS institution_name, {optional["generic_name"]} AS generic_name,
               {optional["item_name"]} AS item_name, {optional["region_code"]} AS region_code,
               CAST(coalesce(substitute_qty, 0) AS DECIMAL(38, 4)) AS substitute_qty,
               CAST(coalesce({ns}, 0) AS DECIMAL(38, 4)) AS non_selected_qty,
               CAST({optional["selected_qty"]} AS VARCHAR) AS selected_qty,
               CAST({optional["selected_share"]} AS VARCHAR) AS selected_share,
               {_PCT_SQL.format(optional["selected_share"])} AS selected_pct,
               CAST(mom_growth AS VARCHAR) AS mom, CAST(yoy_growth AS VARCHAR) AS yoy,
               CASE WHEN mom_growth > $threshold THEN {_PCT_SQL.format("mom_growth")} END AS mom_pct,
               CASE WHEN yoy_growth > $threshold THEN {_PCT_SQL.format("yoy_growth")} END AS yoy_pct
        FROM latest
        WHERE coalesce(substitute_qty, 0) >= $min_qty AND (mom_growth > $threshold OR yoy_growth > $threshold)
        ORDER BY institution_code, batch_code, item_code
    """
    con = duckdb.connect(config={"threads": 2})
    try:
        con.register("rows_in", substitutes)
        rows = con.sql(sql, params={"threshold": threshold, "min_qty": min_qty}).to_arrow_table().to_pylist()
    finally:
        con.close()
    limit = _pct(threshold)
    out = []
    for row in rows:
        institution, batch, item, month = row["institution_code"], row["batch_code"], row["item_code"], row["month"]
        inst, name = _institution(row, labels), _item(row, labels)
        substitute, non_selected = row["substitute_qty"], row["non_selected_qty"]
        hits = [
            (zh, en, pct)
            for zh, en, pct in (("环比", "month on month", row["mom_pct"]), ("同比", "year on year", row["yoy_pct"]))
            if pct
        ]
        zh_growth = "，".join(f"{zh}增长 {pct}" for zh, _, pct in hits)
        en_growth = ", ".join(f"up {pct} {en}" for _, en, pct in hits)
        out.append(
            AlertCandidate(
                kind=GROWTH,
                key=f"growth:{batch}:{item}:{institution}:{month}",
                institution_code=institution,
                region_code=_region(row, labels),
                batch_code=batch,
                item_code=item,
                severity=WARNING,
                message_zh=(
                    f"{inst} {name} {month} 替代药品用量 {_qty(substitute)}，{zh_growth}（阈值 {limit}）；"
                    f"同月非中选产品 {_qty(non_selected)}，中选产品占比 {row['selected_pct']}。"
                    "请核查是否以替代药品代替中选产品。"
                ),
                message_en=(
                    f"{inst} {name} {month}: substitute use {_qty(substitute)}, {en_growth} (threshold "
                    f"{limit}); non-selected {_qty(non_selected)} in the month, selected share "
                    f"{row['selected_pct']}. Check whether substitutes are replacing the selected product."
                ),
                data={
                    "month": month,
                    "non_selected_qty": non_selected,
                    "substitute_qty": substitute,
                    "selected_qty": _dec(row["selected_qty"]),
                    "selected_share": _dec(row["selected_share"]),
                    "mom_growth": _dec(row["mom"]),
                    "yoy_growth": _dec(row["yoy"]),
                    "threshold": threshold,
                },
            )
        )
    return out


def overdue_payments(
    overdue: pa.Table, *, labels: Labels = _NO_LABELS, as_of: dt.date | None = None
) -> list[AlertCandidate]:
    """Institutions with overdue supplier payments, from ``payables.overdue_totals`` (R-E1).

    Critical when the oldest overdue line is more than ``CRITICAL_OVERDUE_DAYS`` days late; with
    ``as_of`` the message dates its figures (see ``behind_schedule``).
    """
    out = []
    for row in _rows(overdue):
        lines = row.get("overdue_lines") or 0
        if lines <= 0:
            continue
        code = row["institution_code"]
        inst = _institution(row, labels)
        days = int(row.get("max_days_overdue") or 0)
        amount, outstanding = row.get("overdue_amount"), row.get("outstanding")
        out.append(
            AlertCandidate(
                kind=OVERDUE,
                key=f"overdue:{code}",
                institution_code=code,
                region_code=_region(row, labels),
                batch_code=None,
                item_code=None,
                severity=CRITICAL if days > CRITICAL_OVERDUE_DAYS else WARNING,
                message_zh=(
                    f"{inst} 有 {lines} 笔药品货款逾期未付，逾期金额 {_money(amount)} 元（未付合计 "
                    f"{_money(outstanding)} 元），最长逾期 {days} 天。请按合同约定尽快向供应企业回款。"
                    f"{_as_of_zh(as_of)}"
                ),
                message_en=(
                    f"{inst}: {lines} purchase lines unpaid past their due date, {_money(amount)} yuan overdue "
                    f"({_money(outstanding)} yuan outstanding in all), the oldest {days} days late. Pay the "
                    f"suppliers as the contract requires.{_as_of_en(as_of)}"
                ),
                data={
                    "lines": row.get("lines"),
                    "overdue_lines": lines,
                    "overdue_amount": _dec(amount),
                    "outstanding": _dec(outstanding),
                    "max_days_overdue": days,
                },
            )
        )
    return out


def trigger_zh(trigger: Trigger | str) -> str:
    """A tranche trigger in Chinese words ("累计采购量达到约定量的 50%")."""
    t = parse_trigger(trigger) if isinstance(trigger, str) else trigger
    if isinstance(t, Start):
        return "协议期开始"
    if isinstance(t, Completion):
        return "完成约定采购量"
    if isinstance(t, Clearing):
        return "协议期结束清算"
    if isinstance(t, VolumeShare):
        return f"累计采购量达到约定量的 {_pct(t.share)}"
    if isinstance(t, PeriodShare):
        return f"协议期时间过 {_pct(t.share)}"
    assert isinstance(t, AnyOf)
    return "、".join(trigger_zh(m) for m in t.triggers) + "（先到者）"


def tranche_fired(
    prepayments: pa.Table, as_of: dt.date, *, within_days: int = 31, labels: Labels = _NO_LABELS
) -> list[AlertCandidate]:
    """Prepayment tranches that fired in the ``within_days`` days up to ``as_of`` (R-E2).

    Tells the fund what to release (or, for a negative clearing, what the institution pays back).
    """
    out = []
    for row in _rows(prepayments):
        fired_on = row.get("fired_on")
        if fired_on is None or row.get("tranche") is None or not 0 <= (as_of - fired_on).days <= within_days:
            continue
        inst, name, year, number = _institution(row, labels), _item(row, labels), row.get("year"), row["tranche"]
        amount = _dec(row.get("amount")) or Decimal(0)
        trigger = str(row.get("trigger") or "")
        clearing = trigger == "clearing"
        what_zh = trigger_zh(trigger) if trigger else ""
        if clearing and amount < 0:
            zh_act = f"年终清算：医疗机构应退回医保基金 {_money(-amount)} 元"
            en_act = f"year-end clearing: the institution owes the fund {_money(-amount)} yuan"
        elif clearing:
            zh_act = f"年终清算：医保基金应拨付 {_money(amount)} 元"
            en_act = f"year-end clearing: the fund pays {_money(amount)} yuan"
        else:
            zh_act = (
                f"第{number}笔预付款 {_money(amount)} 元（约定金额 {_money(row.get('agreed_amount'))} 元的 "
                f"{_pct(row.get('share'))}）应予拨付"
            )
            en_act = (
                f"prepayment tranche {number} of {_money(amount)} yuan ({_pct(row.get('share'))} of the agreed "
                f"{_money(row.get('agreed_amount'))} yuan) is due"
            )
        out.append(
            AlertCandidate(
                kind=TRANCHE,
                key=f"tranche:{row['batch_code']}:{row['item_code']}:{row['institution_code']}:{year}:{number}",
                institution_code=row["institution_code"],
                region_code=_region(row, labels),
                batch_code=row["batch_code"],
                item_code=row["item_code"],
                severity=INFO,
                message_zh=(
                    f"{inst} {name} 第{year}协议年：{what_zh}，已于 {fired_on} 触发，{zh_act}。"
                    "请医保经办机构按规定办理。"
                ),
                message_en=(
                    f"{inst} {name} agreement year {year}: trigger {trigger} fired on {fired_on}; {en_act}. "
                    "The insurance agency should process it as the rules require."
                ),
                data={
                    "agreement_id": row.get("agreement_id"),
                    "year": year,
                    "tranche": number,
                    "trigger": trigger,
                    "fired_on": fired_on,
                    "amount": amount,
                    "share": _dec(row.get("share")),
                    "agreed_amount": _dec(row.get("agreed_amount")),
                    "profile": row.get("profile"),
                },
            )
        )
    return out


def tranches_due(fired: pa.Table, *, labels: Labels = _NO_LABELS) -> list[AlertCandidate]:
    """Fired prepayment tranches, one alert per institution × batch × agreement year × tranche × day (R-E2).

    What the fund acts on is a payment to an institution: on the first day of a year every item of a
    batch fires its start tranche at once, so the items are summed into one alert (each item's
    amount is in ``data_json``'s ``items``). A clearing tranche may pay (positive) or claw back
    (negative) per item; both totals are shown. Rows are ``tranches.fired_tranches`` rows
    (PREPAYMENT_SCHEMA); the grouping runs in DuckDB, as a batch's start fires every agreement at once.
    """
    if fired is None or fired.num_rows == 0:
        return []
    names = set(fired.column_names)
    optional = {c: f"any_value({c})" if c in names else "NULL" for c in ("region_code", "institution_name", "profile")}
    sql = f"""
        SELECT institution_code, batch_code, year, tranche, fired_on, any_value(trigger) AS trigger,
               {optional["region_code"]} AS region_code, {optional["institution_name"]} AS institution_name,
               {optional["profile"]} AS profile, count(*) AS items,
               coalesce(sum(amount) FILTER (amount > 0), 0) AS pay,
               coalesce(-sum(amount) FILTER (amount < 0), 0) AS back,
               to_json(map_from_entries(list({{'k': item_code, 'v': CAST(coalesce(amount, 0) AS VARCHAR)}}
                                             ORDER BY item_code))) AS items_json
        FROM fired WHERE fired_on IS NOT NULL AND tranche IS NOT NULL
        GROUP BY institution_code, batch_code, year, tranche, fired_on
    """
    # the stored JSON built here too (a year's start fires tens of thousands of these at once)
    sql = f"""
        SELECT *, CAST(to_json({{
                   'amount': CAST(pay - back AS VARCHAR), 'fired_on': CAST(fired_on AS VARCHAR),
                   'profile': profile, 'to_pay': CAST(pay AS VARCHAR), 'to_recover': CAST(back AS VARCHAR),
                   'tranche': tranche, 'trigger': coalesce(CAST(trigger AS VARCHAR), ''), 'year': year,
                   'items': json(items_json)
               }}) AS VARCHAR) AS data_json
        FROM ({sql}) g
        ORDER BY institution_code, batch_code, year, tranche, fired_on
    """
    con = duckdb.connect(config={"threads": 2})
    try:
        con.register("fired", fired)
        groups = con.sql(sql).to_arrow_table().to_pylist()
    finally:
        con.close()
    out = []
    for g in groups:
        institution, batch, year, number, fired_on = (
            g["institution_code"],
            g["batch_code"],
            g["year"],
            g["tranche"],
            g["fired_on"],
        )
        trigger = str(g["trigger"] or "")
        pay, back = _dec(g["pay"]) or Decimal(0), _dec(g["back"]) or Decimal(0)
        inst, items = _institution(g, labels), g["items"]
        if trigger == "clearing":
            zh_act = f"年终清算：医保基金应拨付 {_money(pay)} 元" + (
                f"，医疗机构应退回 {_money(back)} 元" if back else ""
            )
            en_act = f"year-end clearing: the fund pays {_money(pay)} yuan" + (
                f" and the institution pays back {_money(back)} yuan" if back else ""
            )
        else:
            zh_act = f"第{number}笔预付款合计 {_money(pay - back)} 元应予拨付"
            en_act = f"prepayment tranche {number} of {_money(pay - back)} yuan in all is due"
        data = {
            "year": year,
            "tranche": number,
            "trigger": trigger,
            "fired_on": fired_on,
            "amount": pay - back,
            "to_pay": pay,
            "to_recover": back,
            "profile": g["profile"],
        }
        out.append(
            AlertCandidate(
                kind=TRANCHE,
                key=f"tranche:{batch}:{institution}:{year}:{number}:{fired_on}",
                institution_code=institution,
                region_code=_region(g, labels),
                batch_code=batch,
                item_code=None,
                severity=INFO,
                message_zh=(
                    f"{inst} 批次 {batch} 第{year}协议年 {items} 个品种：{trigger_zh(trigger) if trigger else ''}，"
                    f"已于 {fired_on} 触发，{zh_act}。请医保经办机构按规定办理。"
                ),
                message_en=(
                    f"{inst} batch {batch} agreement year {year}, {items} items: trigger {trigger} fired on "
                    f"{fired_on}; {en_act}. The insurance agency should process it as the rules require."
                ),
                data=data,
                data_json=g["data_json"],
            )
        )
    return out
