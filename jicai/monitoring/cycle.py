"""The monthly cycle (``jicai cycle --as-of DATE``): incremental rollups, computations, alerts.

Everything the cycle keeps lives under ``JICAI_HOME``: the pair-month rollup (``rollups/``), the
results (``results/progress`` and ``results/substitutes``, Delta tables by agreement year and by
month; ``results/latest``: overdue totals) and a state file (``results/state/cycle.json``) naming
the fact versions, the as-of date and fingerprints of the reference data and rules that the stored
results were computed from.

A run compares the current snapshot with that state and recomputes only what changed:

* rollup months whose fact files changed (one Delta commit);
* progress of the agreements whose year is still running at the last as-of date, that contain a
  changed month, or whose row changed; ended years keep their stored rows (their figures cannot
  move unless their months or rows change);
* substitute rows from the first month that can differ (a changed month, the last as-of month, the
  start of a changed agreement) — each month depends only on earlier ones;
* payables from the lines and payments appended since (``payables_state``);
* alerts of what was recomputed, written only when their content changed.

Changed item products, thresholds, caps or payment rules, facts that were rewritten rather than
appended, or an as-of date earlier than the last one mean a full run. The state file is replaced
last, atomically, and every stored result is keyed to it, so an interrupted run leaves the previous
state valid: the next run redoes the same work, and every step is idempotent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake
from django.db import connection, transaction
from django.utils import timezone

from jicai.core.audit import to_jsonable
from jicai.core.tenancy import Scope, use_scope
from jicai.facts.query import FactQuery
from jicai.facts.schemas import FACT_TABLES, PAIR_MONTHLY, PURCHASES
from jicai.facts.store import open_table, table_path
from jicai.monitoring import alerts_rules, hooks
from jicai.monitoring.models import Alert, AlertStatus, CycleRun
from jicai.monitoring.monthly import build_pair_monthly
from jicai.monitoring.payables import payment_rules_for
from jicai.monitoring.payables_state import overdue_totals_incremental
from jicai.monitoring.progress import PROGRESS_SCHEMA, progress, progress_thresholds
from jicai.monitoring.reference import Reference, load_reference
from jicai.monitoring.substitutes import SUBSTITUTE_SCHEMA, substitutes
from jicai.monitoring.tranches import fired_tranches
from jicai.policy import params
from jicai.policy.profile import ProfileLibrary
from jicai.programme.models import Item

_MONTH = re.compile(r"month=(\d{4}-\d{2})")
Log = Callable[[str], None]
STATE_VERSION = 3  # 3: progress rows carry the figures adjusted for supply interruptions
KINDS = (alerts_rules.BEHIND, alerts_rules.CAP, alerts_rules.GROWTH, alerts_rules.OVERDUE)
GROWTH_THRESHOLD = Decimal("0.5")
GROWTH_MIN_QTY = Decimal(100)
_PAIR = ("institution_code", "batch_code", "item_code")
_AGREEMENT_KEY = ("batch_code", "item_code", "institution_code", "year")


@dataclass
class CycleResult:
    as_of: dt.date
    run_id: int
    months_rebuilt: list[str]
    full_rebuild: bool
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# State


def results_dir(home: Path) -> Path:
    return Path(home) / "results" / "latest"


def ondemand_dir(home: Path, run: int | None) -> Path:
    """Where the screens keep institutions' on-demand reports of cycle run ``run``
    (``dashboard.Dashboard.shared``)."""
    return Path(home) / "results" / "ondemand" / str(run)


def prune_ondemand(home: Path, run: int | None) -> None:
    """Drop the on-demand reports of other cycle runs (they can no longer be served)."""
    root = Path(home) / "results" / "ondemand"
    if root.is_dir():
        for child in root.iterdir():
            if child.name != str(run):
                shutil.rmtree(child, ignore_errors=True)


def _state_dir(home: Path) -> Path:
    return Path(home) / "results" / "state"


def _progress_path(home: Path) -> Path:
    return Path(home) / "results" / "progress"


def _substitutes_path(home: Path) -> Path:
    return Path(home) / "results" / "substitutes"


def _load_state(home: Path) -> dict[str, Any] | None:
    path = _state_dir(home) / "cycle.json"
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if state.get("version") != STATE_VERSION:
        return None
    if not (_state_dir(home) / state.get("agreements", "")).is_file():
        return None
    if not all(DeltaTable.is_deltatable(str(p)) for p in (_substitutes_path(home), _progress_path(home))):
        return None
    return dict(state)


def _save_state(home: Path, state: dict[str, Any]) -> None:
    """Replace the state file atomically, then drop the result files it no longer names."""
    folder = _state_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "cycle.json.tmp"
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
    os.replace(tmp, folder / "cycle.json")
    for old in folder.glob("agreements-*.parquet"):
        if old.name != state["agreements"]:
            old.unlink(missing_ok=True)


def _write_parquet(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _digest(value: Any) -> str:
    text = json.dumps(to_jsonable(value), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _table_digest(table: pa.Table) -> str:
    """Order-independent fingerprint of a table's rows (the ORM returns reference rows in any order)."""
    con = duckdb.connect()
    try:
        con.register("t", table)
        total, count = con.sql("SELECT coalesce(sum(hash(t))::HUGEINT, 0), count(*) FROM t").fetchall()[0]
    finally:
        con.close()
    return f"{count}:{total}:{_digest(table.schema.to_string())}"


def _months(files: Iterable[str]) -> set[str]:
    return {m.group(1) for f in files if (m := _MONTH.search(f))}


def changed_months(home: Path, name: str, since: int | None) -> set[str] | None:
    """Months whose files differ between version ``since`` and now; None means rebuild everything."""
    table = FACT_TABLES[name]
    current = open_table(home, table)
    if current is None:
        return set()
    if since is None or since > current.version():
        return None
    try:
        before = DeltaTable(str(table_path(home, table)), version=since)
    except Exception:  # the old version was vacuumed away: start over
        return None
    return _months(set(current.file_uris()) ^ set(before.file_uris()))


def _current_versions(home: Path) -> dict[str, int]:
    versions = {}
    for name, table in FACT_TABLES.items():
        dt_ = open_table(home, table)
        if dt_ is not None:
            versions[name] = dt_.version()
    return versions


def _month(day: dt.date) -> str:
    return day.strftime("%Y-%m")


# --------------------------------------------------------------------------------------------------
# Alerts


_ALERT_COLUMNS = (
    "key",
    "kind",
    "severity",
    "status",
    "institution_code",
    "region_code",
    "batch_code",
    "item_code",
    "message_zh",
    "message_en",
    "data",
    "digest",
    "first_seen",
    "last_seen",
)


Stored = dict[str, tuple[int, str, str, str, str]]
"""key → (id, digest, status, kind, "batch:item:institution") of stored alerts."""


def existing_alerts(
    kinds: Iterable[str], raised: Iterable[str] = (), behind_years: Iterable[int] | None = None
) -> Stored:
    """Stored alerts of ``kinds`` that are not resolved, and the resolved ones among ``raised`` keys
    (they come back): resolved alerts pile up month after month and are otherwise never read.
    ``behind_years`` limits behind-schedule alerts to those agreement years (the ones recomputed;
    ended years' alerts stay as they are and need not be read)."""
    kinds = tuple(kinds)
    table = Alert._meta.db_table
    columns = "key, id, digest, status, kind, batch_code || ':' || item_code || ':' || institution_code"
    where = f"status <> %s AND kind IN ({', '.join(['%s'] * len(kinds))})"
    params: list[Any] = [AlertStatus.RESOLVED.value, *kinds]
    if behind_years is not None:
        years = sorted({int(y) for y in behind_years})
        tails = " OR ".join(["key LIKE %s"] * len(years)) or "FALSE"
        where += f" AND (kind <> %s OR {tails})"
        params += [alerts_rules.BEHIND, *(f"%:{y}" for y in years)]
    with connection.cursor() as cur:
        cur.execute(f"SELECT {columns} FROM {table} WHERE {where}", params)
        out: Stored = {key: (pk, digest, status, kind, pair) for key, pk, digest, status, kind, pair in cur.fetchall()}
        missing = [k for k in raised if k not in out]
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            cur.execute(f"SELECT {columns} FROM {table} WHERE key IN ({', '.join(['%s'] * len(chunk))})", chunk)
            for key, pk, digest, status, kind, pair in cur.fetchall():
                out[key] = (pk, digest, status, kind, pair)
    return out


def store_alerts(
    candidates: list[alerts_rules.AlertCandidate],
    as_of: dt.date,
    kinds: Iterable[str],
    *,
    raised: dict[str, str] | None = None,
    existing: Stored | None = None,
    recomputed: dict[str, set[str]] | None = None,
) -> dict[str, int]:
    """Write alert ``candidates`` by key; open alerts of ``kinds`` no longer raised are resolved.

    ``raised`` maps every key raised this run to its situation digest (default: the candidates'
    own keys, digest = their severity); ``candidates`` need only hold the keys whose situation is
    new or changed (the cycle renders no message it would not write). A stored alert is rewritten
    only when its digest changes or a resolved one comes back; an acknowledged one (a user acted on
    it) stays so while its digest is the same, and either is resolved when its situation ends.
    ``recomputed`` limits resolution per kind to the
    situations this run looked at again (behind: alert keys; cap and growth:
    "batch:item:institution"); kinds missing from it, or None, were recomputed entirely. Every open
    ``last_seen`` is the as-of date of the run that last wrote the alert (the latest cycle run says
    when open alerts were last confirmed), so a run rewrites no row whose situation holds. Alerts are
    results the cycle derives (no user edit to audit), so the writes are plain bulk SQL.
    """
    kinds = tuple(kinds)
    if raised is None:
        raised = {c.key: c.severity for c in candidates}
    table = Alert._meta.db_table
    json_param = "%s::jsonb" if connection.vendor == "postgresql" else "%s"
    created: list[tuple[Any, ...]] = []
    changed: list[tuple[Any, ...]] = []
    with use_scope(Scope.system("cycle")), transaction.atomic():
        if existing is None:
            existing = existing_alerts({*kinds, *(c.kind for c in candidates), *_SITUATIONS}, raised)
        for c in candidates:
            digest = raised.get(c.key, c.severity)
            data = c.payload()
            found = existing.get(c.key)
            if found is None:
                created.append(
                    (
                        c.key,
                        c.kind,
                        c.severity,
                        AlertStatus.OPEN.value,
                        c.institution_code,
                        c.region_code,
                        c.batch_code or "",
                        c.item_code or "",
                        c.message_zh,
                        c.message_en,
                        data,
                        digest,
                        as_of,
                        as_of,
                    )
                )
            elif found[1] != digest or found[2] == AlertStatus.RESOLVED:
                # a changed situation reopens an acknowledged alert; the same one leaves it be
                changed.append((c.message_zh, c.message_en, data, c.severity, digest, as_of, found[0]))
        stale: list[int] = []
        with connection.cursor() as cur:
            if created:
                values = ", ".join(json_param if c == "data" else "%s" for c in _ALERT_COLUMNS)
                cur.executemany(f"INSERT INTO {table} ({', '.join(_ALERT_COLUMNS)}) VALUES ({values})", created)
            if changed:
                cur.executemany(
                    f"UPDATE {table} SET message_zh = %s, message_en = %s, data = {json_param}, severity = %s, "
                    "digest = %s, status = 'open', resolved_on = NULL, last_seen = %s WHERE id = %s",
                    changed,
                )
            for key, (pk, _digest, status, kind, pair) in existing.items():
                if status == AlertStatus.RESOLVED or kind not in kinds or key in raised:
                    continue
                looked = None if recomputed is None else recomputed.get(kind)
                if looked is None or key in looked or pair in looked:
                    stale.append(pk)
            for start in range(0, len(stale), 2000):
                chunk = stale[start : start + 2000]
                cur.execute(
                    f"UPDATE {table} SET status = 'resolved', resolved_on = %s "
                    f"WHERE id IN ({', '.join(['%s'] * len(chunk))})",
                    [as_of, *chunk],
                )
    return {"alerts_created": len(created), "alerts_updated": len(changed), "alerts_resolved": len(stale)}


def alert_inputs(
    prog: pa.Table, fresh: pa.Table, stored: str | None = None, *, touched: pa.Table | None = None
) -> tuple[pa.Table, pa.Table]:
    """Only the rows an alert can come from, selected in DuckDB before any Python loop.

    The agreements behind schedule, and for each institution × item whose latest month breaks the
    cap or grows abnormally, that latest row with ``cap_since``: the first month of the unbroken run
    of exceeded months it ends (the cap alert's episode). ``fresh`` holds the substitute rows just
    recomputed; ``stored`` is a SQL relation over all stored rows (after this run's write), read
    only for the history of flagged pairs and for ``touched`` pairs that have no fresh row any more.
    """
    keys = ", ".join(_PAIR)
    con = duckdb.connect(config={"threads": 2, "memory_limit": "2GB"})
    try:
        con.register("prog", prog)
        con.register("fresh", fresh)
        late = con.sql("SELECT * FROM prog WHERE status IN ('behind', 'at_risk')").to_arrow_table()
        latest = f"SELECT * FROM fresh QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY month DESC) = 1"
        history = stored or "fresh"
        if stored is not None and touched is not None:
            con.register("touched", touched)
            latest += (
                f" UNION ALL BY NAME SELECT * FROM (SELECT s.* FROM {stored} s SEMI JOIN "
                f"(SELECT * FROM touched ANTI JOIN fresh USING ({keys})) g USING ({keys})) "
                f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY month DESC) = 1"
            )
        hit = con.sql(
            f"""
            SELECT * FROM ({latest})
            WHERE cap_exceeded OR (substitute_qty >= $min AND (mom_growth > $g OR yoy_growth > $g))
            """,
            params={"min": GROWTH_MIN_QTY, "g": GROWTH_THRESHOLD},
        ).to_arrow_table()
        con.register("hit", hit)
        # The history of the pairs over the cap, the last year first: a pair whose run of exceeded
        # months breaks inside it needs no older month (most do, as the cumulative figures restart
        # with every agreement year), the others are read in full.
        newest = con.sql("SELECT max(month) FROM hit").fetchall()[0][0]
        recent_from = f"{int(newest[:4]) - 1:04d}{newest[4:]}" if newest else ""
        part = f"SELECT s.institution_code, s.batch_code, s.item_code, s.month, s.cap_exceeded FROM {history} s"
        capped = f"(SELECT {keys} FROM hit WHERE cap_exceeded)"
        con.execute(
            f"CREATE TEMP TABLE hist AS {part} SEMI JOIN {capped} h USING ({keys}) WHERE s.month >= $from",
            {"from": recent_from},
        )
        open_runs = con.sql(
            f"SELECT count(*) FROM {capped} c ANTI JOIN (SELECT {keys} FROM hist WHERE NOT cap_exceeded) r "
            f"USING ({keys})"
        ).fetchall()[0][0]
        if open_runs:
            con.execute(
                f"INSERT INTO hist {part} SEMI JOIN ({capped} ANTI JOIN "
                f"(SELECT {keys} FROM hist WHERE NOT cap_exceeded) r USING ({keys})) u USING ({keys}) "
                "WHERE s.month < $from",
                {"from": recent_from},
            )
        flagged = con.sql(
            f"""
            WITH last_ok AS (
                SELECT {keys}, max(month) AS ok FROM hist WHERE NOT cap_exceeded GROUP BY ALL
            ),
            since AS (
                SELECT h.institution_code, h.batch_code, h.item_code, min(h.month) AS cap_since
                FROM hist h LEFT JOIN last_ok o USING ({keys})
                WHERE h.cap_exceeded AND (o.ok IS NULL OR h.month > o.ok) GROUP BY ALL
            )
            SELECT hit.*, since.cap_since FROM hit LEFT JOIN since USING ({keys})
            """
        ).to_arrow_table()
    finally:
        con.close()
    return late, flagged


# --------------------------------------------------------------------------------------------------
# The run


@dataclass
class _Plan:
    """What this run recomputes, from the stored state and the current snapshot."""

    full: bool
    reason: str
    months: set[str] | None  # rollup months to rebuild (None: all)
    progress_from: dt.date | None  # recompute agreements whose year ends on or after this (None: all)
    substitutes_from: str | None  # first month recomputed (None: all)


def _plan(
    home: Path,
    state: dict[str, Any] | None,
    as_of: dt.date,
    fingerprints: dict[str, str],
    changed_agreements: pa.Table | None,
) -> _Plan:
    if state is None:
        return _Plan(True, "no stored state", None, None, None)
    if as_of < dt.date.fromisoformat(state["as_of"]):
        return _Plan(True, "as-of date earlier than the last run", None, None, None)
    if state["fingerprints"].get("item_products") != fingerprints["item_products"]:
        return _Plan(True, "item products changed", None, None, None)
    months = changed_months(home, PURCHASES.name, state["versions"].get(PURCHASES.name))
    if months is None:
        return _Plan(True, "purchase history rewritten or vacuumed", None, None, None)
    if not DeltaTable.is_deltatable(str(table_path(home, PAIR_MONTHLY))):
        return _Plan(True, "rollup missing", None, None, None)
    last = dt.date.fromisoformat(state["as_of"])
    changed = [dt.date.fromisoformat(m + "-01") for m in months]
    # An agreement year that had ended by the last as-of date and holds no changed month keeps its
    # figures; a month complete at the last as-of date keeps its substitute rows unless it changed.
    after_last = last + dt.timedelta(days=1)
    progress_from = min([after_last, *changed])
    # A supply interruption recorded, changed or closed moves exemptions and adjusted figures in
    # any month it covers: rare enough to recompute everything that reads them.
    breaks_changed = state["fingerprints"].get("interruptions") != fingerprints["interruptions"]
    if state["fingerprints"].get("thresholds") != fingerprints["thresholds"] or breaks_changed:
        progress_from = dt.date.min
    starts = []
    if changed_agreements is not None and changed_agreements.num_rows:
        earliest = pc.min(changed_agreements["period_start"]).as_py()  # a new year: 200,000 of them
        starts = [earliest.replace(day=1)] if earliest is not None else []
    first_open_month = (last if after_last.day != 1 else after_last).replace(day=1)
    first = min([first_open_month, *changed, *starts])
    subs_from: str | None = _month(min(first, as_of))
    if state["fingerprints"].get("caps") != fingerprints["caps"] or breaks_changed:
        subs_from = None
    return _Plan(False, "incremental", months, progress_from, subs_from)


_SNAPSHOT_COLUMNS = ("agreement_id", "batch_code", "item_code", "institution_code", "year", "period_start")


def agreements_snapshot(current: pa.Table) -> pa.Table:
    """What the state keeps of the agreements: their keys, period start and a hash of each whole row."""
    con = duckdb.connect()
    try:
        con.register("cur", current)
        return con.sql(f"SELECT {', '.join(_SNAPSHOT_COLUMNS)}, hash(cur) AS row_hash FROM cur").to_arrow_table()
    finally:
        con.close()


def _changed_agreements(home: Path, state: dict[str, Any] | None, snapshot: pa.Table, digest: str) -> pa.Table | None:
    """Agreements added, changed or removed since the stored snapshot (the keys of both versions);
    ``digest`` fingerprints ``snapshot``, so the usual run, with the same agreements, reads nothing."""
    if state is None:
        return None
    if state["fingerprints"].get("agreements") == digest:
        return snapshot.slice(0, 0).select(list(_SNAPSHOT_COLUMNS))  # the usual month: none changed
    previous = pq.read_table(_state_dir(home) / state["agreements"])
    con = duckdb.connect()
    try:
        con.register("cur", snapshot)
        con.register("prev", previous)
        cols = ", ".join(_SNAPSHOT_COLUMNS)
        return con.sql(
            f"SELECT {cols} FROM cur ANTI JOIN prev USING (agreement_id, row_hash) "
            f"UNION ALL SELECT {cols} FROM prev ANTI JOIN cur USING (agreement_id, row_hash)"
        ).to_arrow_table()
    finally:
        con.close()


@dataclass
class _Inputs:
    """Everything a run reads before touching the facts: reference rows, rules, state, plan."""

    reference: Reference
    thresholds: dict[str, Any]
    caps: dict[str, Any]
    rules: dict[str, Any]
    interruptions: pa.Table
    fingerprints: dict[str, str]
    state: dict[str, Any] | None
    versions: dict[str, int]
    changed_agreements: pa.Table | None
    plan: _Plan
    snapshot: pa.Table


def _inputs(home: Path, as_of: dt.date, profiles: ProfileLibrary, reference: Reference | None) -> _Inputs:
    reference = reference or load_reference(Scope.system("cycle"))
    names = {n for n in reference.agreements.column("profile").to_pylist() if n}
    thresholds = progress_thresholds(profiles, names, as_of)
    caps: dict[str, Any] = {}
    for name in sorted(names):
        cap = params.cap_params(profiles.resolve(name, as_of))
        caps[name] = cap.cap_ratio if cap else None
    regions = set(reference.institutions.column("region_code").to_pylist())
    rules = payment_rules_for(profiles, regions, as_of)
    breaks = hooks.interruptions(as_of)
    fingerprints = {
        "item_products": _table_digest(reference.item_products),
        "thresholds": _digest(thresholds),
        "caps": _digest(caps),
        "interruptions": _table_digest(breaks),
    }
    state = _load_state(home)
    snapshot = agreements_snapshot(reference.agreements)
    fingerprints["agreements"] = _table_digest(snapshot.select(["agreement_id", "row_hash"]))
    changed = _changed_agreements(home, state, snapshot, fingerprints["agreements"])
    return _Inputs(
        reference=reference,
        thresholds=thresholds,
        caps=caps,
        rules=rules,
        interruptions=breaks,
        fingerprints=fingerprints,
        state=state,
        versions=_current_versions(home),
        changed_agreements=changed,
        plan=_plan(home, state, as_of, fingerprints, changed),
        snapshot=snapshot,
    )


def run_cycle(
    home: Path,
    as_of: dt.date,
    *,
    profiles: ProfileLibrary,
    log: Log | None = None,
    reference: Reference | None = None,
) -> CycleResult:
    """Run the cycle for ``as_of`` as the operator: rollups, computations, alerts, state.

    ``reference`` replaces the database's agreements (the benchmark passes generated ones).
    """
    say = log or (lambda _msg: None)
    started = time.perf_counter()
    home = Path(home)
    system = Scope.system("cycle")
    timings: dict[str, float] = {}
    tick = time.perf_counter()
    inp = _inputs(home, as_of, profiles, reference)
    plan, ref = inp.plan, inp.reference
    with use_scope(system):
        run = CycleRun.objects.create(as_of=as_of, watermarks=inp.versions)
    timings["reference"] = time.perf_counter() - tick
    say(f"plan: {plan.reason}")

    tick = time.perf_counter()
    with FactQuery(home, system) as q:
        q.register("item_products", ref.item_products)
        rebuilt = build_pair_monthly(q, home, plan.months)
    timings["rollup"] = time.perf_counter() - tick
    shown = "all months" if plan.months is None else ", ".join(sorted(plan.months)) or "nothing new"
    say(f"rollup: {shown} ({rebuilt} rows)")

    out = _compute(home, as_of, inp, profiles, timings)
    _write_parquet(out.overdue, results_dir(home) / "overdue.parquet")
    if inp.changed_agreements is not None and inp.changed_agreements.num_rows == 0 and inp.state is not None:
        files = {"agreements": inp.state["agreements"]}  # the same agreements: keep their snapshot
    else:
        files = {"agreements": f"agreements-{run.pk}.parquet"}
        _write_parquet(inp.snapshot, _state_dir(home) / files["agreements"])

    tick = time.perf_counter()
    alert_counts = _alerts(home, inp, as_of, out)
    timings["alerts"] = time.perf_counter() - tick
    state = {"version": STATE_VERSION, "as_of": as_of.isoformat(), "versions": inp.versions}
    _save_state(home, state | {"fingerprints": inp.fingerprints, "run": run.pk} | files)
    prune_ondemand(home, run.pk)  # the screens' reports of earlier runs
    timings["total"] = time.perf_counter() - started
    counts = {
        "agreements": out.prog_rows,
        "agreements_recomputed": out.prog_new.num_rows,
        "substitute_rows_recomputed": out.fresh.num_rows,
        "tranches_fired": out.fired.num_rows,
        "rollup_rows_written": rebuilt,
        "payables_open_lines": int(out.pay_info.get("open_lines", 0)),
        **alert_counts,
    }
    months = sorted(plan.months or [])
    stats = {"timings": timings, "counts": counts, "months": months, "full": plan.full, "reason": plan.reason}
    stats["substitutes_from"] = plan.substitutes_from
    stats["payables"] = {k: v for k, v in out.pay_info.items() if isinstance(v, str | int | float)}
    with use_scope(system):
        CycleRun.objects.filter(pk=run.pk).update(status="done", finished_at=timezone.now(), stats=stats)
    return CycleResult(
        as_of=as_of, run_id=run.pk, months_rebuilt=months, full_rebuild=plan.full, timings=timings, counts=counts
    )


@dataclass
class _Computed:
    prog_rows: int
    prog_new: pa.Table
    late: pa.Table  # behind / at-risk agreements of every institution × batch × year recomputed
    late_groups: set[str]  # those groups' alert keys (behind:{batch}:{institution}:{year})
    fresh: pa.Table
    touched: pa.Table | None
    overdue: pa.Table
    pay_info: dict[str, Any]
    fired: pa.Table


def _compute(
    home: Path, as_of: dt.date, inp: _Inputs, profiles: ProfileLibrary, timings: dict[str, float]
) -> _Computed:
    """Progress, substitutes, payables and fired tranches from the fresh rollup, timing each."""
    ref = inp.reference
    with FactQuery(home, Scope.system("cycle")) as q:
        q.register("agreements", ref.agreements)
        q.register("item_products", ref.item_products)
        tick = time.perf_counter()
        prog, prog_new, late, late_groups = _progress_step(q, home, as_of, inp)
        timings["progress"] = time.perf_counter() - tick
        tick = time.perf_counter()
        fresh, touched = _substitutes_step(q, home, as_of, inp)
        timings["substitutes"] = time.perf_counter() - tick
        tick = time.perf_counter()
        overdue, pay_info = overdue_totals_incremental(
            q, as_of, rules=inp.rules, state_dir=_state_dir(home) / "payables"
        )
        timings["payables"] = time.perf_counter() - tick
        tick = time.perf_counter()
        fired = fired_tranches(q, as_of, profiles=profiles, after=_tranche_window_start(inp, as_of))
        timings["tranches"] = time.perf_counter() - tick
    return _Computed(prog, prog_new, late, late_groups, fresh, touched, overdue, pay_info, fired)


TRANCHE_LOOKBACK_DAYS = 31


def _tranche_window_start(inp: _Inputs, as_of: dt.date) -> dt.date:
    """Tranches fired after the last run's as-of date are new; without a state, those of the last month.

    Tranche alerts are events: they are raised once and stay until someone resolves them (they are
    not in ``KINDS``, so a later run does not resolve them when they leave the window).
    """
    if inp.state is not None:
        last = dt.date.fromisoformat(inp.state["as_of"])
        if last <= as_of:
            return last
    return as_of - dt.timedelta(days=TRANCHE_LOOKBACK_DAYS)


def _late_groups(rows: pa.Table, groups: pa.Table | None) -> tuple[pa.Table, set[str]]:
    """The behind / at-risk rows of ``rows`` in the institution × batch × year groups of ``groups``
    (None: all), and those groups' alert keys: a behind-schedule alert covers a whole group."""
    con = duckdb.connect()
    try:
        con.register("rows_in", rows)
        where = "WHERE status IN ('behind', 'at_risk')"
        if groups is None:
            late = con.sql(f"SELECT * FROM rows_in {where}").to_arrow_table()
            keys = con.sql(f"SELECT DISTINCT {_BEHIND_KEY} FROM rows_in").fetchall()
        else:
            con.register("groups_in", groups.select(["batch_code", "institution_code", "year"]))
            late = con.sql(
                f"SELECT * FROM rows_in SEMI JOIN groups_in USING (batch_code, institution_code, year) {where}"
            ).to_arrow_table()
            keys = con.sql(f"SELECT DISTINCT {_BEHIND_KEY} FROM groups_in").fetchall()
    finally:
        con.close()
    return late, {k for (k,) in keys}


def _progress_step(q: FactQuery, home: Path, as_of: dt.date, inp: _Inputs) -> tuple[int, pa.Table, pa.Table, set[str]]:
    """Store every agreement's progress by agreement year; returns the row count, the rows recomputed
    and, for the alerts, the late rows of the groups they fall in (``_late_groups``).

    Only the years holding a recomputed or changed agreement are read and rewritten: a month in the
    middle of a year touches that year's partition alone.
    """
    state, plan, thresholds = inp.state, inp.plan, inp.thresholds
    agreements, changed_ag = inp.reference.agreements, inp.changed_agreements
    path = _progress_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    if plan.full or plan.progress_from is None or state is None:
        table = progress(q, as_of, thresholds=thresholds, monthly=PAIR_MONTHLY.name, interruptions=inp.interruptions)
        write_deltalake(str(path), table, partition_by=["year"], mode="overwrite", schema_mode="overwrite")
        return table.num_rows, table, *_late_groups(table, None)
    # a plain Arrow filter: the SQL equivalent materialises the agreements once more
    keep = pc.greater_equal(agreements["period_end"], pa.scalar(plan.progress_from, pa.date32()))
    if changed_ag is not None and changed_ag.num_rows:
        changed_ids = changed_ag["agreement_id"].cast(agreements.schema.field("agreement_id").type)
        keep = pc.or_kleene(keep, pc.is_in(agreements["agreement_id"], value_set=changed_ids.combine_chunks()))
    subset = agreements.filter(pc.fill_null(keep, False))
    q.register("agreements", subset)
    try:
        fresh = progress(q, as_of, thresholds=thresholds, monthly=PAIR_MONTHLY.name, interruptions=inp.interruptions)
    finally:
        q.register("agreements", agreements)
    years = set(fresh.column("year").to_pylist())
    if changed_ag is not None:
        years |= set(changed_ag.column("year").to_pylist())
    years.discard(None)
    if not years:
        return agreements.num_rows, fresh, *_late_groups(fresh, fresh)
    in_years = pc.is_in(agreements["year"], value_set=pa.array(sorted(years), agreements.schema.field("year").type))
    if pc.sum(in_years).as_py() == subset.num_rows:  # the usual month: the running year recomputed whole
        kept = PROGRESS_SCHEMA.empty_table()
    else:
        kept = _kept_progress(path, years, agreements, subset)
    rows = pa.concat_tables([kept.select(list(PROGRESS_SCHEMA.names)).cast(PROGRESS_SCHEMA), fresh])
    predicate = f"year IN ({', '.join(str(int(y)) for y in sorted(years))})"
    write_deltalake(str(path), rows, partition_by=["year"], mode="overwrite", predicate=predicate)
    touched = fresh.select(["batch_code", "institution_code", "year"])
    if changed_ag is not None:
        touched = pa.concat_tables([touched, changed_ag.select(touched.column_names).cast(touched.schema)])
    return agreements.num_rows, fresh, *_late_groups(rows, touched)


def _kept_progress(path: Path, years: set[int], agreements: pa.Table, subset: pa.Table) -> pa.Table:
    """The stored progress rows of ``years`` still current and not recomputed (``subset``)."""
    stored = DeltaTable(str(path)).to_pyarrow_dataset().to_table(filter=pc.field("year").isin(sorted(years)))
    con = duckdb.connect()
    try:
        con.register("stored", stored)
        con.register("subset", subset)
        con.register("current", agreements)
        keys = ", ".join(_AGREEMENT_KEY)
        return con.sql(
            f"SELECT s.* FROM stored s SEMI JOIN current c USING ({keys}) ANTI JOIN subset n USING ({keys})"
        ).to_arrow_table()
    finally:
        con.close()


def _substitutes_step(q: FactQuery, home: Path, as_of: dt.date, inp: _Inputs) -> tuple[pa.Table, pa.Table | None]:
    """Recompute the substitute rows from ``plan.substitutes_from`` and store them by month.

    Returns the rows recomputed and the institution × item pairs whose rows were replaced (None:
    all of them), the only ones whose alerts can change.
    """
    path, plan = _substitutes_path(home), inp.plan
    since = None if plan.full else plan.substitutes_from
    fresh = substitutes(
        q,
        as_of,
        cap_ratio=inp.caps,
        monthly=PAIR_MONTHLY.name,
        since_month=since,
        interruptions=inp.interruptions if inp.interruptions.num_rows else None,
    )
    fresh = fresh.cast(SUBSTITUTE_SCHEMA)
    path.parent.mkdir(parents=True, exist_ok=True)
    if since is None or not DeltaTable.is_deltatable(str(path)):
        write_deltalake(str(path), fresh, partition_by=["month"], mode="overwrite", schema_mode="overwrite")
        return fresh, None
    old_files = list(DeltaTable(str(path)).file_uris())
    con = duckdb.connect()
    try:
        con.register("fresh", fresh)
        pairs = "SELECT institution_code, batch_code, item_code FROM fresh"
        if old_files:
            pairs += (
                " UNION SELECT institution_code, batch_code, item_code "
                f"FROM read_parquet({old_files!r}, hive_partitioning = true) WHERE month >= $m"
            )
        touched = con.sql(pairs, params={"m": since} if old_files else None).to_arrow_table()
    finally:
        con.close()
    write_deltalake(str(path), fresh, partition_by=["month"], mode="overwrite", predicate=f"month >= '{since}'")
    return fresh, touched


def read_substitutes(home: Path) -> pa.Table | None:
    """The stored substitute rows of the last cycle (all months)."""
    path = _substitutes_path(home)
    if not DeltaTable.is_deltatable(str(path)):
        return None
    return DeltaTable(str(path)).to_pyarrow_table()


_BEHIND_KEY = "concat('behind:', batch_code, ':', institution_code, ':', CAST(year AS VARCHAR))"
_SITUATIONS = {
    # kind: (key expression, situation expression) over the rows the rule reads; a behind-schedule
    # alert's situation is which of its group's items has which status (an order-free digest)
    alerts_rules.BEHIND: (
        _BEHIND_KEY,
        "concat(CAST(count(*) OVER g AS VARCHAR), ':', "
        "CAST(bit_xor(hash(concat(item_code, '=', status))) OVER g AS VARCHAR))",
    ),
    alerts_rules.CAP: (
        "concat('cap:', batch_code, ':', item_code, ':', institution_code, ':', coalesce(cap_since, month))",
        "'exceeded'",
    ),
    alerts_rules.GROWTH: ("concat('growth:', batch_code, ':', item_code, ':', institution_code, ':', month)", "'grew'"),
    alerts_rules.OVERDUE: (
        "concat('overdue:', institution_code)",
        f"CASE WHEN max_days_overdue > {alerts_rules.CRITICAL_OVERDUE_DAYS} THEN 'critical' ELSE 'warning' END",
    ),
    alerts_rules.TRANCHE: (
        "concat('tranche:', batch_code, ':', institution_code, ':', CAST(year AS VARCHAR), ':', "
        "CAST(tranche AS VARCHAR), ':', strftime(fired_on, '%Y-%m-%d'))",
        "'fired'",
    ),
}


def _situations(inputs: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """Each input table with its alert key (``_key``) and situation digest (``_digest``), in DuckDB.

    The situation is what makes an alert worth rewriting: a behind-schedule year turning at-risk, an
    overdue institution turning critical. Figures moving within a situation are not: the message
    dates its figures, and the reports give today's.
    """
    out: dict[str, pa.Table] = {}
    con = duckdb.connect()
    try:
        for kind, table in inputs.items():
            key, digest = _SITUATIONS[kind]
            con.register("rows_in", table)
            out[kind] = con.sql(
                f"SELECT *, {key} AS _key, {digest} AS _digest FROM rows_in "
                "WINDOW g AS (PARTITION BY batch_code, institution_code, year)"
            ).to_arrow_table()
            con.unregister("rows_in")
    finally:
        con.close()
    return out


def _item_names() -> dict[tuple[str, str], str]:
    """(batch, item) → generic name, so that messages name 阿托伐他汀 rather than an item code."""
    with use_scope(Scope.system("cycle")):
        rows = Item.objects.values_list("batch__code", "item_code", "generic_name")
        return {(batch, item): name for batch, item, name in rows if name}


def _alerts(home: Path, inp: _Inputs, as_of: dt.date, out: _Computed) -> dict[str, int]:
    plan, thresholds = inp.plan, inp.thresholds
    labels = alerts_rules.Labels.from_reference(inp.reference, items=_item_names())
    files = list(DeltaTable(str(_substitutes_path(home))).file_uris())
    stored = (
        f"(SELECT * FROM read_parquet({files!r}, hive_partitioning = true, hive_types_autocast = false))"
        if files
        else None
    )
    late, flagged = alert_inputs(out.late, out.fresh, stored, touched=out.touched)
    growth_hit = pc.and_(
        pc.greater_equal(flagged["substitute_qty"], GROWTH_MIN_QTY),
        pc.or_kleene(
            pc.greater(flagged["mom_growth"], GROWTH_THRESHOLD), pc.greater(flagged["yoy_growth"], GROWTH_THRESHOLD)
        ),
    )
    fired = out.fired.filter(pc.is_valid(out.fired["fired_on"]))
    keyed = _situations(
        {
            alerts_rules.BEHIND: late,
            alerts_rules.CAP: flagged.filter(pc.fill_null(flagged["cap_exceeded"], False)),
            alerts_rules.GROWTH: flagged.filter(pc.fill_null(growth_hit, False)),
            alerts_rules.OVERDUE: out.overdue.filter(pc.greater(out.overdue["overdue_lines"], 0)),
            alerts_rules.TRANCHE: fired,
        }
    )
    raised = {
        k: d
        for table in keyed.values()
        for k, d in zip(table["_key"].to_pylist(), table["_digest"].to_pylist(), strict=True)
    }
    years = None if plan.full else {int(k.rsplit(":", 1)[1]) for k in out.late_groups}
    existing = existing_alerts(_SITUATIONS, raised, behind_years=years)
    need = pa.array(
        [k for k, d in raised.items() if (e := existing.get(k)) is None or e[1] != d or e[2] == AlertStatus.RESOLVED],
        pa.string(),
    )
    todo = {kind: table.filter(pc.is_in(table["_key"], value_set=need)) for kind, table in keyed.items()}
    candidates = [
        *alerts_rules.behind_schedule(todo[alerts_rules.BEHIND], labels=labels, behind_ratio=thresholds, as_of=as_of),
        *alerts_rules.cap_exceeded(todo[alerts_rules.CAP], labels=labels),
        *alerts_rules.substitute_growth(
            todo[alerts_rules.GROWTH], labels=labels, threshold=GROWTH_THRESHOLD, min_qty=GROWTH_MIN_QTY
        ),
        *alerts_rules.overdue_payments(todo[alerts_rules.OVERDUE], labels=labels, as_of=as_of),
        *alerts_rules.tranches_due(todo[alerts_rules.TRANCHE], labels=labels),
    ]
    recomputed: dict[str, set[str]] | None = None
    if not plan.full:
        recomputed = {alerts_rules.BEHIND: out.late_groups}
        if out.touched is not None:
            t = out.touched
            pairs = set(
                pc.binary_join_element_wise(t["batch_code"], t["item_code"], t["institution_code"], ":").to_pylist()
            )
            recomputed[alerts_rules.CAP] = pairs
            recomputed[alerts_rules.GROWTH] = pairs
    return store_alerts(candidates, as_of, KINDS, raised=raised, existing=existing, recomputed=recomputed)


def read_result(home: Path, name: str) -> pa.Table | None:
    """A stored result of the last cycle: "progress", "overdue" or "substitutes"."""
    if name == "substitutes":
        return read_substitutes(home)
    state = _load_state(home)
    if name == "progress":
        return (
            DeltaTable(str(_progress_path(home))).to_pyarrow_table().select(list(PROGRESS_SCHEMA.names))
            if state
            else None
        )
    path = results_dir(home) / f"{name}.parquet"
    return pq.read_table(path) if path.exists() else None
