"""Supplier payables of accepted purchase lines: due date, paid, outstanding, days overdue (R-E1).

Every accepted line (``accepted_on`` ≤ as-of) is a payable. Its due date follows the payment rule of
the institution's region (semantics.md "Supplier payment deadline"); what has been paid is the sum
of the line's payments with ``paid_on`` ≤ as-of. Everything is one set-based DuckDB query over the
scoped ``purchases`` and ``payments`` views; the rules reach SQL as a small registered relation
(region prefix → rule), so no Python touches the lines.

Rules mapping: ``rules`` maps a region to a :class:`PaymentRule`. A key is a 6-digit GB/T 2260 code
(read as the region it names: "220000" covers every code starting "22", "610100" every "6101…",
"610112" only itself), a bare prefix ("46"), or "" / "*" for the default. The longest key covering a
line's ``region_code`` wins; with none, the default is ``DEFAULT_PAYMENT_RULE`` (end of next month).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from jicai.core.tenancy import region_prefix
from jicai.facts.query import FactQuery
from jicai.facts.schemas import MONEY
from jicai.policy import params
from jicai.policy.payment_terms import DEFAULT_PAYMENT_RULE, DaysAfterAcceptance, PaymentRule
from jicai.policy.profile import SHIPPED_DIR, Level, Profile, ProfileLibrary

PAYABLE_COLUMNS = (
    "line_id",
    "institution_code",
    "region_code",
    "product_code",
    "accepted_on",
    "amount",
    "due_on",
    "paid_amount",
    "outstanding",
    "days_overdue",
    "overdue",
)

PAYABLE_SCHEMA = pa.schema(
    [
        ("line_id", pa.string()),
        ("institution_code", pa.string()),
        ("region_code", pa.string()),
        ("product_code", pa.string()),
        ("accepted_on", pa.date32()),
        ("amount", MONEY),
        ("due_on", pa.date32()),
        ("paid_amount", MONEY),
        ("outstanding", MONEY),
        ("days_overdue", pa.int32()),
        ("overdue", pa.bool_()),
    ]
)

OVERDUE_COLUMNS = (
    "institution_code",
    "region_code",
    "lines",
    "overdue_lines",
    "outstanding",
    "overdue_amount",
    "max_days_overdue",
)

OVERDUE_SCHEMA = pa.schema(
    [
        ("institution_code", pa.string()),
        ("region_code", pa.string()),
        ("lines", pa.int64()),
        ("overdue_lines", pa.int64()),
        ("outstanding", MONEY),
        ("overdue_amount", MONEY),
        ("max_days_overdue", pa.int32()),
    ]
)

RULES_RELATION = "payment_rules"
_RULES_SCHEMA = pa.schema([("prefix", pa.string()), ("kind", pa.string()), ("days", pa.int32())])
_DEFAULT_KEYS = ("", "*")


def _key_prefix(key: str) -> str:
    """The code prefix a rules key stands for (6-digit codes name a region; anything else is a prefix)."""
    key = key.strip()
    if key in _DEFAULT_KEYS:
        return ""
    if len(key) == 6 and key.isdigit():
        return region_prefix(key)
    return key


def _rule_rows(rules: Mapping[str, PaymentRule]) -> pa.Table:
    by_prefix: dict[str, PaymentRule] = {"": DEFAULT_PAYMENT_RULE}
    # Exact keys are applied after prefix-equivalent ones so "610112" beats a prefix key "610112".
    for key in sorted(rules, key=lambda k: (len(k.strip()) == 6, k)):
        by_prefix[_key_prefix(key)] = rules[key]
    rows = []
    for prefix, rule in by_prefix.items():
        if isinstance(rule, DaysAfterAcceptance):
            rows.append({"prefix": prefix, "kind": "days", "days": rule.days})
        else:
            rows.append({"prefix": prefix, "kind": "end_of_next_month", "days": None})
    return pa.Table.from_pylist(rows, schema=_RULES_SCHEMA)


def _payables_sql(as_of: dt.date, institution: str | None) -> tuple[str, list[Any]]:
    """One query: accepted lines with due date (per region rule), paid, outstanding and overdue days."""
    inst = " AND institution_code = ?" if institution else ""
    inst_p = " AND p.institution_code = ?" if institution else ""
    inst_params: list[Any] = [institution] if institution else []
    sql = f"""
        WITH regions AS (
            SELECT DISTINCT region_code FROM purchases WHERE accepted_on <= ?{inst}
        ),
        region_rule AS (
            SELECT g.region_code,
                   arg_max(r.kind, length(r.prefix)) AS kind,
                   arg_max(r.days, length(r.prefix)) AS days
            FROM regions g JOIN {RULES_RELATION} r ON starts_with(coalesce(g.region_code, ''), r.prefix)
            GROUP BY g.region_code
        ),
        paid AS (
            SELECT line_id, sum(amount) AS paid FROM payments WHERE paid_on <= ?{inst} GROUP BY line_id
        ),
        lines AS (
            SELECT p.line_id, p.institution_code, p.region_code, p.product_code, p.accepted_on,
                   CAST(coalesce(p.amount, round(p.qty * p.unit_price, 2), 0) AS DECIMAL(18, 2)) AS amount,
                   CASE WHEN rr.kind = 'days' THEN p.accepted_on + rr.days
                        ELSE CAST(last_day(p.accepted_on + INTERVAL 1 MONTH) AS DATE) END AS due_on,
                   CAST(coalesce(pd.paid, 0) AS DECIMAL(18, 2)) AS paid_amount
            FROM purchases p
            LEFT JOIN region_rule rr ON rr.region_code IS NOT DISTINCT FROM p.region_code
            LEFT JOIN paid pd ON pd.line_id = p.line_id
            WHERE p.accepted_on <= ?{inst_p}
        )
        SELECT line_id, institution_code, region_code, product_code, accepted_on, amount, due_on, paid_amount,
               CAST(greatest(amount - paid_amount, 0) AS DECIMAL(18, 2)) AS outstanding,
               CAST(CASE WHEN CAST(? AS DATE) > due_on AND paid_amount < amount
                         THEN CAST(? AS DATE) - due_on ELSE 0 END AS INTEGER) AS days_overdue,
               (CAST(? AS DATE) > due_on AND paid_amount < amount) AS overdue
        FROM lines
    """
    params_: list[Any] = [as_of, *inst_params, as_of, *inst_params, as_of, *inst_params, as_of, as_of, as_of]
    return sql, params_


def payables(
    q: FactQuery,
    as_of: dt.date,
    *,
    rules: Mapping[str, PaymentRule],
    institution: str | None = None,
    only_open: bool = False,
) -> pa.Table:
    """Each accepted line's due date, paid amount, outstanding and days overdue on ``as_of`` (R-E1).

    ``only_open`` keeps lines with something still to pay. Ordered by institution, acceptance, line.
    """
    q.register(RULES_RELATION, _rule_rows(rules))
    sql, args = _payables_sql(as_of, institution)
    where = "WHERE outstanding > 0" if only_open else ""
    table = q.arrow(
        f"SELECT * FROM ({sql}) {where} ORDER BY institution_code, accepted_on, line_id",
        args,
    )
    return table.select(list(PAYABLE_COLUMNS)).cast(PAYABLE_SCHEMA)


def overdue_totals(q: FactQuery, as_of: dt.date, *, rules: Mapping[str, PaymentRule]) -> pa.Table:
    """Per institution: accepted lines, overdue lines, outstanding, overdue amount, oldest overdue (R-E1).

    Institutions with accepted lines but nothing overdue are listed too (zeros), so a report shows
    who pays on time; alerts keep the rows with ``overdue_lines`` > 0. Largest overdue amount first.
    """
    q.register(RULES_RELATION, _rule_rows(rules))
    sql, args = _payables_sql(as_of, None)
    table = q.arrow(
        f"""
        SELECT institution_code, any_value(region_code) AS region_code,
               count(*) AS lines,
               count(*) FILTER (WHERE overdue) AS overdue_lines,
               CAST(sum(outstanding) AS DECIMAL(18, 2)) AS outstanding,
               CAST(coalesce(sum(outstanding) FILTER (WHERE overdue), 0) AS DECIMAL(18, 2)) AS overdue_amount,
               CAST(max(days_overdue) AS INTEGER) AS max_days_overdue
        FROM ({sql})
        GROUP BY institution_code
        ORDER BY overdue_amount DESC, institution_code
        """,
        args,
    )
    return table.select(list(OVERDUE_COLUMNS)).cast(OVERDUE_SCHEMA)


def _covers(profile: Profile, code: str) -> int:
    """Length of the profile's region prefix when it covers ``code``, else -1."""
    if profile.level not in (Level.PROVINCE, Level.CITY) or not profile.region_code:
        return -1
    try:
        prefix = region_prefix(profile.region_code)
    except ValueError:
        return -1
    return len(prefix) if code.startswith(prefix) else -1


def _is_user(profile: Profile) -> bool:
    try:
        return not Path(profile.path).resolve().is_relative_to(SHIPPED_DIR.resolve())
    except (OSError, ValueError):
        return True


def profile_for_region(profiles: ProfileLibrary, region_code: str) -> str:
    """The profile governing ``region_code``: the most specific province or city profile whose
    ``region_code`` covers it (a city beats its province; on a tie a user's profile beats a shipped
    one, then the name decides), else "national"."""
    best: tuple[int, bool, str] | None = None
    for profile in profiles.profiles().values():
        length = _covers(profile, region_code)
        if length < 0:
            continue
        rank = (length, _is_user(profile), profile.name)
        if best is None or rank[:2] > best[:2] or (rank[:2] == best[:2] and rank[2] < best[2]):
            best = rank
    return best[2] if best else "national"


def payment_rules_for(profiles: ProfileLibrary, region_codes: Iterable[str], as_of: dt.date) -> dict[str, PaymentRule]:
    """The supplier payment rule of each region code on ``as_of`` (R-E1), keyed by the code itself:
    the resolved ``supplier_payment.rule`` of the region's profile (``profile_for_region``)."""
    resolved: dict[str, PaymentRule] = {}
    out: dict[str, PaymentRule] = {}
    for code in sorted({c for c in region_codes if c}):
        name = profile_for_region(profiles, code)
        if name not in resolved:
            resolved[name] = params.payment_rule(profiles.resolve(name, as_of))
        out[code] = resolved[name]
    return out
