"""Reads of the progress-feedback workflow (R-H4, R-H5): the department board, notifications,
published sheets, appraisal schemes and scores.

The board is the engine's department progress (``monitoring.reports`` report
``department-progress``, i.e. ``monitoring.departments.department_progress`` with whatever target
source the engine uses — derived from history, or the workspace's published targets), computed
under the caller's scope, narrowed to the agreement year in force on the as-of date:

* per department × item: target, selected dispensing toward it, completion, elapsed share and the
  engine's status;
* per department overall, weighted by the target quantity: completion = Σ dispensed ÷ Σ target,
  expected = Σ (target × elapsed) ÷ Σ target; its status is the worst of its items' statuses; a
  department is *behind* when one of its items is behind or at risk;
* ranking by overall completion (highest first; ties by department code; no target last).
"""

from __future__ import annotations

import datetime as dt
import io
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from openpyxl import Workbook
from openpyxl.styles import Font

from jicai.core.tenancy import Level, Scope, ScopeError, use_scope
from jicai.hospital.common import acting_institution
from jicai.hospital.feedback.display import (
    BEHIND_STATUSES,
    dec,
    pct_text,
    qty_text,
    ratio4,
    status_css,
    status_label,
    worst_status,
)
from jicai.hospital.models import AppraisalScheme, AppraisalScore, Notification, ProgressSheet
from jicai.monitoring.reports import ReportRequest, run_report
from jicai.organizations.models import Department, Institution
from jicai.policy.profile import ProfileLibrary
from jicai.programme.models import Agreement, Batch, Item

RESOURCE = "feedback"


def engine() -> tuple[Path, ProfileLibrary]:
    """The fact store's home and the policy profiles (built-in plus ``JICAI_HOME/profiles``)."""
    home = Path(settings.JICAI_HOME)
    return home, ProfileLibrary([home / "profiles"])


def require_read(scope: Scope) -> None:
    if not (scope.is_system or scope.can(RESOURCE, "read")):
        raise ScopeError(f"{scope.label} may not read {RESOURCE}")


# --------------------------------------------------------------------------------------------------
# The board


@dataclass
class ItemRow:
    batch_code: str
    item_code: str
    item_name: str
    unit_label: str
    year: int
    period_start: dt.date
    period_end: dt.date
    target_qty: Decimal | None
    dispensed_qty: Decimal
    completion: Decimal | None
    elapsed: Decimal | None
    status: str | None

    @property
    def behind(self) -> bool:
        return self.status in BEHIND_STATUSES

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch_code": self.batch_code,
            "item_code": self.item_code,
            "item_name": self.item_name,
            "unit_label": self.unit_label,
            "year": self.year,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "target_qty": None if self.target_qty is None else str(self.target_qty),
            "dispensed_qty": str(self.dispensed_qty),
            "completion": None if self.completion is None else str(self.completion),
            "elapsed": None if self.elapsed is None else str(self.elapsed),
            "status": self.status,
        }

    # display
    @property
    def target_text(self) -> str:
        return qty_text(self.target_qty)

    @property
    def dispensed_text(self) -> str:
        return qty_text(self.dispensed_qty)

    @property
    def completion_text(self) -> str:
        return pct_text(self.completion)

    @property
    def elapsed_text(self) -> str:
        return pct_text(self.elapsed)

    @property
    def status_css(self) -> str:
        return status_css(self.status)

    @property
    def status_label(self) -> Any:
        return status_label(self.status)


@dataclass
class DepartmentRow:
    code: str
    name: str
    items: list[ItemRow] = field(default_factory=list)
    rank: int = 0

    @property
    def known(self) -> list[ItemRow]:
        return [i for i in self.items if i.target_qty is not None]

    @property
    def target_qty(self) -> Decimal | None:
        known = self.known
        return sum((i.target_qty for i in known if i.target_qty is not None), Decimal(0)) if known else None

    @property
    def dispensed_qty(self) -> Decimal:
        return sum((i.dispensed_qty for i in self.items), Decimal(0))

    @property
    def counted_toward_target(self) -> Decimal:
        return sum((i.dispensed_qty for i in self.known), Decimal(0))

    @property
    def completion(self) -> Decimal | None:
        return ratio4(self.counted_toward_target, self.target_qty)

    @property
    def expected(self) -> Decimal | None:
        """The elapsed share weighted by target (the plain maximum when there are no targets)."""
        target = self.target_qty
        if target:
            weighted = sum(((i.target_qty or Decimal(0)) * (i.elapsed or Decimal(0)) for i in self.known), Decimal(0))
            return ratio4(weighted, target)
        elapsed = [i.elapsed for i in self.items if i.elapsed is not None]
        return max(elapsed) if elapsed else None

    @property
    def status(self) -> str | None:
        return worst_status([i.status for i in self.items])

    @property
    def behind_items(self) -> list[ItemRow]:
        return [i for i in self.items if i.behind]

    @property
    def behind(self) -> bool:
        return bool(self.behind_items)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "department_code": self.code,
            "department_name": self.name,
            "target_qty": None if self.target_qty is None else str(self.target_qty),
            "dispensed_qty": str(self.counted_toward_target if self.known else self.dispensed_qty),
            "completion": None if self.completion is None else str(self.completion),
            "expected": None if self.expected is None else str(self.expected),
            "status": self.status,
            "items_behind": len(self.behind_items),
            "items": [i.as_dict() for i in self.items],
        }

    # display
    @property
    def target_text(self) -> str:
        return qty_text(self.target_qty)

    @property
    def dispensed_text(self) -> str:
        return qty_text(self.counted_toward_target if self.known else self.dispensed_qty)

    @property
    def completion_text(self) -> str:
        return pct_text(self.completion)

    @property
    def expected_text(self) -> str:
        return pct_text(self.expected)

    @property
    def status_css(self) -> str:
        return status_css(self.status)

    @property
    def status_label(self) -> Any:
        return status_label(self.status)


@dataclass
class Board:
    institution: Institution
    as_of: dt.date
    batch: str | None
    departments: list[DepartmentRow]
    batches: list[tuple[str, str]]

    @property
    def behind(self) -> list[DepartmentRow]:
        return [d for d in self.departments if d.behind]

    def department(self, code: str) -> DepartmentRow | None:
        return next((d for d in self.departments if d.code == code), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "institution_code": self.institution.code,
            "institution_name": self.institution.name,
            "as_of": self.as_of.isoformat(),
            "batch": self.batch,
            "departments": [d.as_dict() for d in self.departments],
        }


def board_institution(scope: Scope, code: str | None = None) -> Institution:
    """The institution whose board ``scope`` looks at (their own; a bureau or the operator names one)."""
    with use_scope(scope):
        return acting_institution(scope, code)


def _current_rows(rows: list[dict[str, Any]], as_of: dt.date) -> list[dict[str, Any]]:
    """Each (batch, item)'s rows of the agreement year in force on ``as_of`` (else the latest begun)."""
    started = [r for r in rows if r["period_start"] <= as_of]
    best: dict[tuple[str, str], dt.date] = {}
    for r in started:
        key = (r["batch_code"], r["item_code"])
        if r["period_start"] > best.get(key, dt.date.min):
            best[key] = r["period_start"]
    return [r for r in started if r["period_start"] == best[(r["batch_code"], r["item_code"])]]


def board(scope: Scope, *, as_of: dt.date, batch: str | None = None, institution: str | None = None) -> Board:
    """The department progress board of one institution on ``as_of`` (module docstring)."""
    require_read(scope)
    inst = board_institution(scope, institution)
    home, profiles = engine()
    table = run_report(
        "department-progress",
        scope,
        ReportRequest(as_of=as_of, batch=batch or None, institution=inst.code),
        home=home,
        profiles=profiles,
    )
    rows = _current_rows(table.to_pylist(), as_of)
    with use_scope(scope):
        names = dict(Department.objects.filter(institution=inst).values_list("code", "name"))
        keys = {(r["batch_code"], r["item_code"]) for r in rows}
        items = {
            (b, i): (g, u)
            for b, i, g, u in Item.objects.filter(
                batch__code__in={k[0] for k in keys}, item_code__in={k[1] for k in keys}
            ).values_list("batch__code", "item_code", "generic_name", "unit_label")
        }
        batches = sorted(
            set(Agreement.objects.filter(institution=inst).values_list("batch__code", "batch__name").distinct())
        )
    by_dept: dict[str, DepartmentRow] = {}
    for r in sorted(rows, key=lambda r: (r["department_code"], r["batch_code"], r["item_code"])):
        code = r["department_code"]
        dept = by_dept.setdefault(code, DepartmentRow(code=code, name=names.get(code, code)))
        name, unit = items.get((r["batch_code"], r["item_code"]), (r["item_code"], ""))
        dept.items.append(
            ItemRow(
                batch_code=r["batch_code"],
                item_code=r["item_code"],
                item_name=name,
                unit_label=unit,
                year=r["year"],
                period_start=r["period_start"],
                period_end=r["period_end"],
                target_qty=dec(r["target_qty"]),
                dispensed_qty=dec(r["dispensed_qty"]) or Decimal(0),
                completion=dec(r["completion"]),
                elapsed=dec(r["elapsed"]),
                status=r["status"],
            )
        )
    ranked = sorted(
        by_dept.values(),
        key=lambda d: (d.completion is None, -(d.completion or Decimal(0)), d.code),
    )
    for rank, dept in enumerate(ranked, start=1):
        dept.rank = rank
    return Board(institution=inst, as_of=as_of, batch=batch or None, departments=ranked, batches=batches)


# --------------------------------------------------------------------------------------------------
# Notifications


def notifications(scope: Scope, *, unread_only: bool = False) -> QuerySet[Notification]:
    """The notifications ``scope`` sees: a department head its department's, hospital staff all they sent."""
    require_read(scope)
    with use_scope(scope):
        qs = Notification.objects.select_related("department", "created_by").order_by("-created_at", "-pk")
        if unread_only:
            qs = qs.filter(read_at__isnull=True)
        return qs


def unread_count(scope: Scope | None) -> int:
    """Unread notifications addressed to ``scope``'s department (0 for other scopes: messages go to
    departments, and hospital staff are their senders), for the navigation badge."""
    if scope is None or scope.level is not Level.DEPARTMENT or not scope.can(RESOURCE, "read"):
        return 0
    with use_scope(scope):
        return Notification.objects.filter(read_at__isnull=True).count()


# --------------------------------------------------------------------------------------------------
# Published sheets

SHEET_COLUMNS: tuple[tuple[str, str], ...] = (
    ("rank", "排名"),
    ("department_code", "科室编码"),
    ("department_name", "科室"),
    ("batch_code", "批次"),
    ("item_code", "品种编码"),
    ("item_name", "品种"),
    ("target_qty", "任务量"),
    ("dispensed_qty", "中选药品使用量"),
    ("completion", "完成率"),
    ("elapsed", "时间进度"),
    ("status", "状态"),
)
_STATUS_ZH = {"completed": "已完成", "on_track": "进度正常", "behind": "进度滞后", "at_risk": "完成风险"}


def sheets(scope: Scope) -> QuerySet[ProgressSheet]:
    require_read(scope)
    with use_scope(scope):
        return ProgressSheet.objects.select_related("published_by").order_by("-as_of", "-created_at")


def sheet(scope: Scope, pk: int) -> ProgressSheet | None:
    require_read(scope)
    with use_scope(scope):
        return ProgressSheet.objects.select_related("published_by", "institution").filter(pk=pk).first()


def sheet_display_rows(obj: ProgressSheet) -> list[dict[str, Any]]:
    """The sheet's departments with display strings (the stored snapshot is not recomputed)."""
    out = []
    for d in obj.rows:
        items = [
            {
                **i,
                "target_text": qty_text(i.get("target_qty")),
                "dispensed_text": qty_text(i.get("dispensed_qty")),
                "completion_text": pct_text(i.get("completion")),
                "elapsed_text": pct_text(i.get("elapsed")),
                "status_css": status_css(i.get("status")),
                "status_label": status_label(i.get("status")),
            }
            for i in d.get("items", [])
        ]
        out.append(
            {
                **d,
                "items": items,
                "completion_text": pct_text(d.get("completion")),
                "expected_text": pct_text(d.get("expected")),
                "status_css": status_css(d.get("status")),
                "status_label": status_label(d.get("status")),
            }
        )
    return out


def sheet_workbook(scope: Scope, obj: ProgressSheet) -> bytes:
    """The sheet as an Excel workbook: one row per department × item, Chinese headers."""
    if not (scope.is_system or scope.can(RESOURCE, "export")):
        raise ScopeError(f"{scope.label} may not export {RESOURCE}")
    wb = Workbook()
    ws = wb.active
    ws.title = "科室进度"
    ws.append([f"{obj.title}（数据截至 {obj.as_of.isoformat()}）"])
    ws["A1"].font = Font(bold=True)
    ws.append([label for _, label in SHEET_COLUMNS])
    for d in obj.rows:
        for i in d.get("items", []):
            row = {**i, "rank": d.get("rank"), "department_code": d.get("department_code")}
            row["department_name"] = d.get("department_name")
            values: list[Any] = []
            for key, _label in SHEET_COLUMNS:
                value = row.get(key)
                if key in {"target_qty", "dispensed_qty", "completion", "elapsed"} and value is not None:
                    value = Decimal(value)
                if key == "status":
                    value = _STATUS_ZH.get(value or "", "")
                values.append(value)
            ws.append(values)
        ws.append(
            [
                d.get("rank"),
                d.get("department_code"),
                d.get("department_name"),
                "",
                "",
                "合计",
                Decimal(d["target_qty"]) if d.get("target_qty") is not None else None,
                Decimal(d["dispensed_qty"]) if d.get("dispensed_qty") is not None else None,
                Decimal(d["completion"]) if d.get("completion") is not None else None,
                Decimal(d["expected"]) if d.get("expected") is not None else None,
                _STATUS_ZH.get(d.get("status") or "", ""),
            ]
        )
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# --------------------------------------------------------------------------------------------------
# Appraisal


def schemes(scope: Scope) -> QuerySet[AppraisalScheme]:
    require_read(scope)
    with use_scope(scope):
        return AppraisalScheme.objects.order_by("-active", "name", "pk")


def scheme(scope: Scope, pk: int) -> AppraisalScheme | None:
    require_read(scope)
    with use_scope(scope):
        return AppraisalScheme.objects.filter(pk=pk).first()


def scores(scope: Scope, *, scheme_id: int | None = None, period: str | None = None) -> QuerySet[AppraisalScore]:
    """Appraisal scores ``scope`` sees: a department head only its own published ones."""
    require_read(scope)
    with use_scope(scope):
        qs = AppraisalScore.objects.select_related("department", "scheme").order_by("-period", "-score", "pk")
        if scope.level is Level.DEPARTMENT:
            qs = qs.filter(published=True)
        if scheme_id is not None:
            qs = qs.filter(scheme_id=scheme_id)
        if period:
            qs = qs.filter(period=period)
        return qs


def periods_of(scope: Scope, scheme_id: int) -> list[tuple[str, bool]]:
    """The periods scored under a scheme, newest first, with whether they are published."""
    with use_scope(scope):
        found: dict[str, bool] = defaultdict(bool)
        for period, published in AppraisalScore.objects.filter(scheme_id=scheme_id).values_list("period", "published"):
            found[period] = found[period] or published
    return sorted(found.items(), reverse=True)


def batches_of(scope: Scope, inst: Institution) -> list[Batch]:
    with use_scope(scope):
        codes = set(Agreement.objects.filter(institution=inst).values_list("batch_id", flat=True))
        return list(Batch.objects.filter(pk__in=codes).order_by("code"))
