"""The monthly cycle (``jicai cycle --as-of DATE``): incremental rollups, computations, alerts.

Incremental: the last finished run records the Delta version of each fact table it processed (its
watermark). A new run compares the current snapshot with that version, finds the months whose files
changed, and rebuilds the daily purchase rollup for those months only (one atomic Delta commit).
Computations then read the small rollup instead of every line. A rerun with no new data rebuilds
nothing; an interrupted run left its watermark unchanged, so the next run redoes the same months —
the rollup overwrite is idempotent, so nothing is half-applied or counted twice.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake
from django.db import transaction
from django.utils import timezone

from jicai.core.audit import to_jsonable
from jicai.core.tenancy import Scope, use_scope
from jicai.facts.query import FactQuery
from jicai.facts.schemas import FACT_TABLES, PURCHASES, PURCHASES_DAILY
from jicai.facts.store import open_table, table_path
from jicai.monitoring import alerts_rules
from jicai.monitoring.models import Alert, AlertStatus, CycleRun
from jicai.monitoring.payables import overdue_totals, payment_rules_for
from jicai.monitoring.progress import progress, progress_thresholds
from jicai.monitoring.reference import Reference, load_reference
from jicai.monitoring.substitutes import substitutes
from jicai.policy import params
from jicai.policy.profile import ProfileLibrary

_MONTH = re.compile(r"month=(\d{4}-\d{2})")
Log = Callable[[str], None]


@dataclass
class CycleResult:
    as_of: dt.date
    run_id: int
    months_rebuilt: list[str]
    full_rebuild: bool
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def _months(files: list[str]) -> set[str]:
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
    now_files, old_files = set(current.file_uris()), set(before.file_uris())
    return _months(list(now_files ^ old_files))


def rebuild_rollup(home: Path, months: set[str] | None) -> int:
    """Recompute the daily purchase rollup for ``months`` (all when None) in one commit."""
    if months is not None and not months:
        return 0
    with FactQuery(home, Scope.system("cycle")) as q:
        where = "accepted_on IS NOT NULL"
        if months is not None:
            where += " AND month IN (" + ", ".join(f"'{m}'" for m in sorted(months)) + ")"
        data = q.arrow(
            "SELECT institution_code, region_code, product_code, accepted_on, "
            "sum(qty)::DECIMAL(18,4) AS qty, sum(amount)::DECIMAL(18,2) AS amount, count(*)::BIGINT AS lines, "
            "strftime(accepted_on, '%Y-%m') AS month "
            f"FROM purchases WHERE {where} GROUP BY ALL"
        ).cast(PURCHASES_DAILY.schema)
    path = table_path(home, PURCHASES_DAILY)
    path.parent.mkdir(parents=True, exist_ok=True)
    if months is None or not DeltaTable.is_deltatable(str(path)):
        write_deltalake(str(path), data, partition_by=["month"], mode="overwrite", schema_mode="overwrite")
    else:
        predicate = "month IN (" + ", ".join(f"'{m}'" for m in sorted(months)) + ")"
        write_deltalake(str(path), data, partition_by=["month"], mode="overwrite", predicate=predicate)
    return int(data.num_rows)


def _last_watermarks() -> dict[str, int]:
    last = CycleRun.objects.filter(status="done").order_by("-finished_at").first()
    return dict(last.watermarks) if last else {}


def _current_versions(home: Path) -> dict[str, int]:
    versions = {}
    for name, table in FACT_TABLES.items():
        dt_ = open_table(home, table)
        if dt_ is not None:
            versions[name] = dt_.version()
    return versions


def store_alerts(candidates: list[alerts_rules.AlertCandidate], as_of: dt.date, kinds: set[str]) -> dict[str, int]:
    """Upsert alerts by key in bulk; open alerts of the recomputed kinds no longer raised are resolved.

    Unchanged alerts are not rewritten, so a rerun of the same month writes nothing.
    """
    by_key = {c.key: c for c in candidates}
    created: list[Alert] = []
    changed: list[Alert] = []
    with use_scope(Scope.system("cycle")), transaction.atomic():
        existing: dict[str, Alert] = {}
        keys = list(by_key)
        for start in range(0, len(keys), 2000):
            for alert in Alert.objects.filter(key__in=keys[start : start + 2000]):
                existing[alert.key] = alert
        for key, c in by_key.items():
            data = to_jsonable(c.data)
            alert = existing.get(key)
            if alert is None:
                created.append(
                    Alert(
                        key=key,
                        kind=c.kind,
                        severity=c.severity,
                        institution_code=c.institution_code,
                        region_code=c.region_code,
                        batch_code=c.batch_code or "",
                        item_code=c.item_code or "",
                        message_zh=c.message_zh,
                        message_en=c.message_en,
                        data=data,
                        first_seen=as_of,
                        last_seen=as_of,
                    )
                )
                continue
            fresh = (c.message_zh, c.message_en, data, c.severity, AlertStatus.OPEN, max(alert.last_seen, as_of))
            if fresh != (alert.message_zh, alert.message_en, alert.data, alert.severity, alert.status, alert.last_seen):
                alert.message_zh, alert.message_en, alert.data, alert.severity = fresh[:4]
                alert.status, alert.last_seen, alert.resolved_on = AlertStatus.OPEN, fresh[5], None
                changed.append(alert)
        Alert.objects.bulk_create(created, batch_size=2000)
        fields = ["message_zh", "message_en", "data", "severity", "status", "last_seen", "resolved_on"]
        Alert.objects.bulk_update(changed, fields, batch_size=2000)
        open_now = Alert.objects.filter(kind__in=kinds, status=AlertStatus.OPEN).values_list("pk", "key")
        stale = [pk for pk, key in open_now if key not in by_key]
        resolved = 0
        for start in range(0, len(stale), 2000):
            resolved += Alert.objects.filter(pk__in=stale[start : start + 2000]).update(
                status=AlertStatus.RESOLVED, resolved_on=as_of
            )
    return {"alerts_created": len(created), "alerts_updated": len(changed), "alerts_resolved": resolved}


GROWTH_THRESHOLD = Decimal("0.5")
GROWTH_MIN_QTY = Decimal(100)


def alert_inputs(prog: pa.Table, subs: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Only the rows an alert can come from, selected in DuckDB before any Python loop.

    Province-wide the substitute table has millions of rows; the alert rules need the agreements
    behind schedule, and the full history of the institution × item pairs whose latest month breaks
    the cap or grows abnormally (the cap alert dates its episode from that history).
    """
    con = duckdb.connect()
    try:
        con.register("prog", prog)
        con.register("subs", subs)
        late = con.sql("SELECT * FROM prog WHERE status IN ('behind', 'at_risk')").to_arrow_table()
        flagged = con.sql(
            "WITH latest AS (SELECT institution_code, batch_code, item_code, max(month) AS month "
            "FROM subs GROUP BY ALL), "
            "hit AS (SELECT s.institution_code, s.batch_code, s.item_code FROM subs s "
            "JOIN latest l USING (institution_code, batch_code, item_code, month) "
            "WHERE s.cap_exceeded OR (s.substitute_qty >= ? AND (s.mom_growth > ? OR s.yoy_growth > ?))) "
            "SELECT s.* FROM subs s JOIN hit USING (institution_code, batch_code, item_code)",
            params=[GROWTH_MIN_QTY, GROWTH_THRESHOLD, GROWTH_THRESHOLD],
        ).to_arrow_table()
    finally:
        con.close()
    return late, flagged


def results_dir(home: Path) -> Path:
    return Path(home) / "results" / "latest"


def run_cycle(
    home: Path,
    as_of: dt.date,
    *,
    profiles: ProfileLibrary,
    log: Log | None = None,
    reference: Reference | None = None,
) -> CycleResult:
    """Run the cycle for ``as_of`` as the operator: rollups, computations, alerts, watermarks.

    ``reference`` replaces the database's agreements (the benchmark passes generated ones).
    """
    say = log or (lambda _msg: None)
    started = time.perf_counter()
    system = Scope.system("cycle")
    with use_scope(system):
        since = _last_watermarks()
        versions = _current_versions(home)
        run = CycleRun.objects.create(as_of=as_of, watermarks=versions)
    timings: dict[str, float] = {}
    tick = time.perf_counter()
    months = changed_months(home, PURCHASES.name, since.get(PURCHASES.name))
    rollup_missing = not DeltaTable.is_deltatable(str(table_path(home, PURCHASES_DAILY)))
    full = months is None or rollup_missing
    rebuilt = rebuild_rollup(home, None if full else months)
    timings["rollup"] = time.perf_counter() - tick
    say(f"rollup: {'all months' if full else ', '.join(sorted(months or [])) or 'nothing new'} ({rebuilt} rows)")

    tick = time.perf_counter()
    reference = reference or load_reference(system)
    names = set(reference.agreements.column("profile").to_pylist())
    thresholds = progress_thresholds(profiles, names, as_of)
    caps: dict[str, Any] = {}
    for name in names:
        cap = params.cap_params(profiles.resolve(name, as_of))
        caps[name] = cap.cap_ratio if cap else None
    regions = set(reference.institutions.column("region_code").to_pylist())
    rules = payment_rules_for(profiles, regions, as_of)
    timings["reference"] = time.perf_counter() - tick

    out = results_dir(home)
    out.mkdir(parents=True, exist_ok=True)
    with FactQuery(home, system) as q:
        q.register("agreements", reference.agreements)
        q.register("item_products", reference.item_products)
        tick = time.perf_counter()
        prog = progress(q, as_of, thresholds=thresholds, source=PURCHASES_DAILY.name)
        timings["progress"] = time.perf_counter() - tick
        tick = time.perf_counter()
        subs = substitutes(q, as_of, cap_ratio=caps, source=PURCHASES_DAILY.name)
        timings["substitutes"] = time.perf_counter() - tick
        tick = time.perf_counter()
        overdue = overdue_totals(q, as_of, rules=rules)
        timings["payables"] = time.perf_counter() - tick
    for name, table in (("progress", prog), ("substitutes", subs), ("overdue", overdue)):
        pq.write_table(table, out / f"{name}.parquet")
    tick = time.perf_counter()
    alert_counts = _alerts(reference, prog=prog, subs=subs, overdue=overdue, thresholds=thresholds, as_of=as_of)
    timings["alerts"] = time.perf_counter() - tick
    timings["total"] = time.perf_counter() - started
    counts = {
        "agreements": prog.num_rows,
        "substitute_rows": subs.num_rows,
        "rollup_rows_written": rebuilt,
        **alert_counts,
    }
    with use_scope(system):
        CycleRun.objects.filter(pk=run.pk).update(
            status="done",
            finished_at=timezone.now(),
            stats={"timings": timings, "counts": counts, "months": sorted(months or []), "full": full},
        )
    return CycleResult(
        as_of=as_of,
        run_id=run.pk,
        months_rebuilt=sorted(months or []),
        full_rebuild=full,
        timings=timings,
        counts=counts,
    )


def _alerts(
    reference: Reference,
    *,
    prog: pa.Table,
    subs: pa.Table,
    overdue: pa.Table,
    thresholds: dict[str, Any],
    as_of: dt.date,
) -> dict[str, int]:
    labels = alerts_rules.Labels.from_reference(reference)
    late, flagged = alert_inputs(prog, subs)
    candidates = [
        *alerts_rules.behind_schedule(late, labels=labels, behind_ratio=thresholds),
        *alerts_rules.cap_exceeded(flagged, labels=labels),
        *alerts_rules.substitute_growth(flagged, labels=labels, threshold=GROWTH_THRESHOLD, min_qty=GROWTH_MIN_QTY),
        *alerts_rules.overdue_payments(overdue, labels=labels),
    ]
    return store_alerts(candidates, as_of, {"behind_schedule", "cap_exceeded", "substitute_growth", "overdue_payment"})


def read_result(home: Path, name: str) -> pa.Table | None:
    path = results_dir(home) / f"{name}.parquet"
    return pq.read_table(path) if path.exists() else None
