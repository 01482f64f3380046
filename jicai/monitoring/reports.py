"""Named reports over the engine, computed on demand under the caller's scope.

The same functions serve ``jicai report``, the API and (later) the web pages. Facts are read through
the scoped DuckDB layer and reference rows through the scoped ORM, so a hospital user's report can
only ever contain that hospital's rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc
from openpyxl import Workbook

from jicai.core.tenancy import Scope, ScopeError, use_scope
from jicai.facts.query import FactQuery
from jicai.monitoring import hooks
from jicai.monitoring.departments import TARGET_SCHEMA, department_progress
from jicai.monitoring.models import Alert
from jicai.monitoring.payables import payables, payment_rules_for
from jicai.monitoring.prepayments import prepayments, settlements
from jicai.monitoring.progress import progress, progress_thresholds
from jicai.monitoring.reference import load_reference
from jicai.monitoring.substitutes import substitutes
from jicai.policy import params
from jicai.policy.profile import ProfileLibrary

FORMATS = ("table", "json", "csv", "xlsx")


@dataclass(frozen=True)
class ReportRequest:
    as_of: dt.date
    batch: str | None = None
    institution: str | None = None


Builder = Callable[[FactQuery, ReportRequest, ProfileLibrary, Any], pa.Table]


def _profiles_of(reference: Any) -> set[str]:
    return set(reference.agreements.column("profile").to_pylist())


def _progress(q: FactQuery, req: ReportRequest, profiles: ProfileLibrary, ref: Any) -> pa.Table:
    thresholds = progress_thresholds(profiles, _profiles_of(ref), req.as_of)
    breaks = hooks.interruptions(req.as_of)
    return progress(
        q,
        req.as_of,
        thresholds=thresholds,
        batch=req.batch,
        institution=req.institution,
        ordered=True,
        interruptions=breaks if breaks.num_rows else None,
    )


def _of_batch(table: pa.Table, batch: str | None) -> pa.Table:
    return table if not batch else table.filter(pc.equal(table["batch_code"], batch))


TargetSource = Callable[[Scope, ReportRequest], pa.Table | None]

TARGET_SOURCES: list[TargetSource] = []
"""Where published department targets come from (R-H3): apps above the engine register a function
returning the targets visible in a scope (``departments.TARGET_SCHEMA`` rows; a NULL department_code
marks an agreement as covered) or None. The hospital workspace registers its published target plans
from ``HospitalConfig.ready``; the engine never imports it."""


def published_targets(scope: Scope, req: ReportRequest) -> pa.Table | None:
    """The registered sources' published targets for ``scope``, or None when none has any."""
    tables = [table for source in TARGET_SOURCES if (table := source(scope, req)) is not None]
    if not tables:
        return None
    return pa.concat_tables([t.select(TARGET_SCHEMA.names).cast(TARGET_SCHEMA) for t in tables])


def _departments(q: FactQuery, req: ReportRequest, profiles: ProfileLibrary, ref: Any) -> pa.Table:
    thresholds = progress_thresholds(profiles, _profiles_of(ref), req.as_of)
    table = department_progress(
        q,
        req.as_of,
        thresholds=thresholds,
        published_targets=published_targets(q.scope, req),
        institution=req.institution,
        ordered=True,
    )
    return _of_batch(table, req.batch)


def _substitutes(q: FactQuery, req: ReportRequest, profiles: ProfileLibrary, ref: Any) -> pa.Table:
    caps: dict[str, Any] = {}
    for name in _profiles_of(ref):
        cap = params.cap_params(profiles.resolve(name, req.as_of))
        caps[name] = cap.cap_ratio if cap else None
    breaks = hooks.interruptions(req.as_of)
    return substitutes(
        q,
        req.as_of,
        cap_ratio=caps,
        batch=req.batch,
        institution=req.institution,
        ordered=True,
        interruptions=breaks if breaks.num_rows else None,
    )


def _payables(q: FactQuery, req: ReportRequest, profiles: ProfileLibrary, ref: Any) -> pa.Table:
    regions = set(ref.institutions.column("region_code").to_pylist())
    rules = payment_rules_for(profiles, regions, req.as_of)
    table = payables(q, req.as_of, rules=rules, institution=req.institution)
    if req.batch:
        # a batch's lines: its products (selected, same generic, substitute) bought by institutions
        # that hold an agreement of the batch
        products = ref.item_products.filter(pc.equal(ref.item_products["batch_code"], req.batch))
        holders = ref.agreements.filter(pc.equal(ref.agreements["batch_code"], req.batch))
        table = table.filter(
            pc.and_(
                pc.is_in(table["product_code"], value_set=products["product_code"].combine_chunks()),
                pc.is_in(table["institution_code"], value_set=holders["institution_code"].combine_chunks()),
            )
        )
    return table


def _prepayments(q: FactQuery, req: ReportRequest, profiles: ProfileLibrary, ref: Any) -> pa.Table:
    return prepayments(q, req.as_of, profiles=profiles, batch=req.batch, institution=req.institution)


def _settlements(q: FactQuery, req: ReportRequest, profiles: ProfileLibrary, ref: Any) -> pa.Table:
    return settlements(q, req.as_of, profiles=profiles, batch=req.batch, institution=req.institution)


REPORTS: dict[str, Builder] = {
    "progress": _progress,
    "department-progress": _departments,
    "substitutes": _substitutes,
    "payables": _payables,
    "prepayments": _prepayments,
    "settlements": _settlements,
}
REPORT_NAMES = (*REPORTS, "alerts")

REPORT_READS: dict[str, tuple[str, ...]] = {
    "progress": ("agreement", "purchase"),
    "department-progress": ("dispensing",),
    "substitutes": ("agreement", "purchase"),
    "payables": ("purchase", "payment"),
    "prepayments": ("agreement", "purchase"),
    "settlements": ("agreement", "purchase"),
    "alerts": ("agreement",),
}
"""What each report reads besides ``report:read``: a department head (dispensing only) gets its
department's progress and nothing computed from the whole hospital's purchases or payments."""

ALERT_COLUMNS = (
    "kind",
    "status",
    "severity",
    "institution_code",
    "region_code",
    "batch_code",
    "item_code",
    "message_zh",
    "message_en",
    "first_seen",
    "last_seen",
    "resolved_on",
    "key",
)


def _alerts(scope: Scope, req: ReportRequest) -> pa.Table:
    with use_scope(scope):
        qs = Alert.objects.filter(first_seen__lte=req.as_of)
        if req.institution:
            qs = qs.filter(institution_code=req.institution)
        if req.batch:
            qs = qs.filter(batch_code=req.batch)
        rows = list(qs.values(*ALERT_COLUMNS))
    schema = pa.schema(
        [(c, pa.date32() if c in {"first_seen", "last_seen", "resolved_on"} else pa.string()) for c in ALERT_COLUMNS]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def run_report(name: str, scope: Scope, request: ReportRequest, *, home: Path, profiles: ProfileLibrary) -> pa.Table:
    """Compute report ``name`` for ``scope``; raises KeyError for an unknown name."""
    if not scope.can("report", "read") and not scope.is_system:
        raise ScopeError(f"{scope.label} may not read reports")
    for resource in REPORT_READS.get(name, ()):
        if not scope.can(resource, "read"):
            raise ScopeError(f"{scope.label} may not read {resource}, which report {name} is computed from")
    if name == "alerts":
        return _alerts(scope, request)
    builder = REPORTS[name]
    reference = load_reference(scope)
    with FactQuery(home, scope) as q:
        q.register("agreements", reference.agreements)
        q.register("item_products", reference.item_products)
        return builder(q, request, profiles, reference)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def table_rows(table: pa.Table) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row.items()} for row in table.to_pylist()]


def write_report(table: pa.Table, fmt: str, out: IO[bytes], *, title: str = "report", limit: int | None = None) -> None:
    """Write ``table`` as json / csv / xlsx / a plain text table."""
    rows = table_rows(table)
    columns = table.column_names
    if fmt == "json":
        out.write(json.dumps(rows, ensure_ascii=False, indent=1).encode("utf-8"))
    elif fmt == "csv":
        text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")
        writer = csv.DictWriter(text, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        text.flush()
        text.detach()
    elif fmt == "xlsx":
        wb = Workbook(write_only=True)
        ws = wb.create_sheet(title[:31])
        ws.append(columns)
        for row in rows:
            ws.append([row[c] for c in columns])
        wb.save(out)
    elif fmt == "table":
        shown = rows if limit is None else rows[:limit]
        widths = {c: max([len(c), *(len(str(r[c] if r[c] is not None else "")) for r in shown)]) for c in columns}
        lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
        lines += ["  ".join(str(r[c] if r[c] is not None else "").ljust(widths[c]) for c in columns) for r in shown]
        if limit is not None and len(rows) > limit:
            lines.append(f"… {len(rows) - limit} more rows (use --format csv/xlsx/json for all)")
        out.write(("\n".join(lines) + "\n").encode("utf-8"))
    else:
        raise ValueError(f"unknown format {fmt!r}")
