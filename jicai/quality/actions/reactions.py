"""Adverse-reaction reports, cluster detection and suspensions of use (R-J2, XJ 五(八)2).

Every report written (by form, API or import) re-runs cluster detection for its product, in the
reporting institution and across the province; detection is idempotent (``policy.quality``
``reconcile_signals``), so re-running it never duplicates a signal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from jicai.catalog.models import Product
from jicai.core import audit
from jicai.core.tenancy import Level, Scope, ScopeError, use_scope
from jicai.imports.engine import ImportResult, run_import
from jicai.organizations.models import Department, Institution
from jicai.policy import quality as rules
from jicai.quality import queries
from jicai.quality.common import (
    ADVERSE_REACTION,
    WorkflowError,
    acting_institution,
    audited,
    elevated,
    fields_of,
    province_of,
    require,
)
from jicai.quality.models import (
    AdverseReaction,
    ClusterSignal,
    Outcome,
    SignalStatus,
    Suspension,
    SuspensionLevel,
    SuspensionStatus,
)

REPORT_FIELDS = (
    "institution",
    "department",
    "report_no",
    "report_date",
    "onset_date",
    "product",
    "item",
    "is_selected",
    "lot_number",
    "reaction",
    "is_new",
    "is_serious",
    "outcome",
    "reporter",
)


@dataclass(frozen=True)
class ReactionInput:
    """What a user enters for a report; ``report_no`` "" = numbered automatically."""

    report_date: dt.date
    product_code: str
    reaction: str
    reporter: str
    onset_date: dt.date | None = None
    lot_number: str = ""
    is_new: bool = False
    is_serious: bool = False
    outcome: str = Outcome.UNKNOWN
    department_code: str = ""
    report_no: str = ""
    institution_code: str = ""


def _product(code: str) -> Product:
    found: Product | None = Product.objects.filter(code=code.strip()).first()
    if found is None:
        raise WorkflowError(
            f"未知的药品编码：{code}", f"unknown product code {code}", code="reference.unknown", field="product_code"
        )
    return found


def _department(acting: Scope, institution: Institution, code: str) -> Department | None:
    if acting.level is Level.DEPARTMENT:
        dept: Department | None = Department.objects.filter(pk=acting.department_id).first()
        if code and dept is not None and dept.code != code:
            raise ScopeError(f"{code} is not {acting.label}")
        return dept
    if not code:
        return None
    found: Department | None = Department.objects.filter(institution=institution, code=code.strip()).first()
    if found is None:
        raise WorkflowError(
            f"该医疗机构没有编码为 {code} 的科室",
            f"no department {code} in {institution.code}",
            field="department_code",
        )
    return found


def _check_dates(data: ReactionInput) -> None:
    if data.onset_date and data.onset_date > data.report_date:
        raise WorkflowError("发生日期不能晚于报告日期", "the onset date is after the report date", field="onset_date")
    if data.report_date > timezone.localdate():
        raise WorkflowError("报告日期不能晚于今天", "the report date is in the future", field="report_date")
    if data.outcome not in Outcome.values:
        raise WorkflowError("转归不是可选值", f"unknown outcome {data.outcome}", field="outcome")
    if not data.reaction.strip() or not data.reporter.strip():
        raise WorkflowError("请填写不良反应描述和报告人", "reaction and reporter are required", field="reaction")


def next_number(model: Any, institution: Institution, field: str, prefix: str, on: dt.date) -> str:
    """``<prefix><yyyymmdd>-NNN``: the first free number of the institution on that day."""
    stem = f"{prefix}{on:%Y%m%d}-"
    taken = set(
        model.unguarded.filter(institution=institution, **{f"{field}__startswith": stem}).values_list(field, flat=True)
    )
    n = len(taken) + 1
    while f"{stem}{n:03d}" in taken:
        n += 1
    return f"{stem}{n:03d}"


def _apply(report: AdverseReaction, data: ReactionInput, institution: Institution, acting: Scope) -> None:
    product = _product(data.product_code)
    item, is_selected = queries.programme_link(institution, product)
    report.department = _department(acting, institution, data.department_code)
    report.report_date = data.report_date
    report.onset_date = data.onset_date
    report.product = product
    report.item = item
    report.is_selected = is_selected
    report.lot_number = data.lot_number.strip()
    report.reaction = data.reaction.strip()
    report.is_new = data.is_new
    report.is_serious = data.is_serious or data.outcome == Outcome.DEATH
    report.outcome = data.outcome
    report.reporter = data.reporter.strip()


def do_create_reaction(acting: Scope, data: ReactionInput) -> AdverseReaction:
    """Record an adverse-reaction report and re-run cluster detection for its product (R-J2)."""
    require(acting, ADVERSE_REACTION, "write")
    _check_dates(data)
    with use_scope(acting), transaction.atomic():
        institution = acting_institution(acting, data.institution_code or None)
        number = data.report_no.strip() or next_number(
            AdverseReaction, institution, "report_no", "ADR", data.report_date
        )
        if AdverseReaction.unguarded.filter(institution=institution, report_no=number).exists():
            raise WorkflowError(f"报告编号 {number} 已存在", f"report {number} exists", field="report_no")
        report = AdverseReaction(institution=institution, report_no=number, created_by_id=acting.actor_id)
        _apply(report, data, institution, acting)
        report.save()
        audited(acting, "create", report, new=fields_of(report, REPORT_FIELDS))
        _detect(acting, {institution.pk}, {report.product_id})
    return report


def do_update_reaction(acting: Scope, report_id: int, data: ReactionInput) -> AdverseReaction:
    """Correct a report (its number and institution stay) and re-run detection for the products touched."""
    require(acting, ADVERSE_REACTION, "write")
    _check_dates(data)
    with use_scope(acting), transaction.atomic():
        report: AdverseReaction = AdverseReaction.objects.for_scope(acting).select_for_update().get(pk=report_id)
        old = fields_of(report, REPORT_FIELDS)
        before = report.product_id
        _apply(report, data, report.institution, acting)
        new = fields_of(report, REPORT_FIELDS)
        changed = {k: v for k, v in new.items() if old[k] != v}
        if not changed:
            return report
        report.save()
        audited(acting, "update", report, old={k: old[k] for k in changed}, new=changed)
        _detect(acting, {report.institution_id}, {before, report.product_id})
    return report


def do_import_reactions(
    acting: Scope, data: bytes, filename: str, *, dry_run: bool = False, load_valid: bool = False
) -> ImportResult:
    """Import reports (CSV/XLSX; all-or-nothing unless ``load_valid``), then re-run detection for the
    institutions and products the file touched (a corrected product counts with its old one)."""
    from jicai.quality.datasets import REACTIONS_SPEC  # noqa: PLC0415 - the spec module imports this one

    touched: set[tuple[int, int]] = set()
    with transaction.atomic():
        result = run_import(
            REACTIONS_SPEC,
            data,
            filename,
            acting,
            dry_run=dry_run,
            load_valid=load_valid,
            options={"touched": touched},
        )
        if result.status in ("applied", "partial") and (result.created or result.updated):
            _detect(acting, {i for i, _ in touched}, {p for _, p in touched})
    return result


# ------------------------------------------------------------------------------------------------
# Cluster detection


def _facts(reports: Iterable[AdverseReaction]) -> list[rules.ReactionReport]:
    return [
        rules.ReactionReport(
            report_id=r.pk,
            product_code=str(r.product_id),
            lot_number=r.lot_number,
            event_date=r.onset_date or r.report_date,
            institution_code=r.institution.code,
            serious=r.is_serious,
            new=r.is_new,
            death=r.outcome == Outcome.DEATH,
        )
        for r in reports
    ]


def _known(signals: Iterable[ClusterSignal]) -> list[rules.KnownSignal]:
    return [
        rules.KnownSignal(
            signal_id=s.pk,
            product_code=str(s.product_id),
            lot_number=s.lot_number,
            first_date=s.first_date,
            last_date=s.last_date,
            report_ids=frozenset(s.report_ids),
            digest=s.digest,
            closed=s.status == SignalStatus.CLOSED,
        )
        for s in signals
    ]


@dataclass
class DetectionOutcome:
    created: int = 0
    updated: int = 0
    reopened: int = 0
    merged: int = 0
    unchanged: int = 0
    signals: list[int] | None = None


def _cluster_fields(cluster: rules.Cluster, params: rules.ClusterParams) -> dict[str, Any]:
    return {
        "first_date": cluster.first_date,
        "last_date": cluster.last_date,
        "report_count": cluster.report_count,
        "serious_count": cluster.serious_count,
        "new_count": cluster.new_count,
        "death_count": cluster.death_count,
        "institution_count": len(cluster.institutions),
        "report_ids": list(cluster.report_ids),
        "institutions": list(cluster.institutions),
        "triggers": [t.value for t in cluster.triggers],
        "params": {
            "min_reports": params.min_reports,
            "min_serious": params.min_serious,
            "window_days": params.window_days,
            "min_institutions": params.min_institutions,
        },
    }


def _apply_plan(
    acting: Scope,
    plan: rules.SignalPlan,
    params: rules.ClusterParams,
    *,
    institution: Institution | None,
    region_code: str,
    outcome: DetectionOutcome,
) -> None:
    changes: list[audit.Change] = []
    context = {"reason": "cluster detection", "territory": institution.code if institution else region_code}
    by_id = {
        s.pk: s
        for s in ClusterSignal.objects.filter(pk__in=[u.signal_id for u in plan.updates] + [m for m, _ in plan.merges])
    }
    for cluster in plan.creates:
        fields = _cluster_fields(cluster, params)
        signal = ClusterSignal(
            institution=institution,
            region_code=region_code,
            product_id=int(cluster.product_code),
            lot_number=cluster.lot_number,
            created_by_id=acting.actor_id,
            **fields,
        )
        signal.save()
        outcome.created += 1
        changes.append(audit.Change("create", ClusterSignal._meta.label, signal.pk, str(signal), None, fields, context))
    for update in plan.updates:
        signal = by_id[update.signal_id]
        fields = _cluster_fields(update.cluster, params)
        old = {k: getattr(signal, k) for k in fields}
        for k, v in fields.items():
            setattr(signal, k, v)
        if update.reopen:
            old["status"], fields["status"] = signal.status, SignalStatus.OPEN
            signal.status = SignalStatus.OPEN
            outcome.reopened += 1
        signal.save()
        outcome.updated += 1
        action = "reopen" if update.reopen else "update"
        changes.append(audit.Change(action, ClusterSignal._meta.label, signal.pk, str(signal), old, fields, context))
    for merged, into in plan.merges:
        signal = by_id[merged]
        signal.status, signal.merged_into_id = SignalStatus.MERGED, into
        signal.save()
        outcome.merged += 1
        changes.append(
            audit.Change(
                "merge", ClusterSignal._meta.label, signal.pk, str(signal), None, {"merged_into": into}, context
            )
        )
    outcome.unchanged += len(plan.unchanged)
    audit.record(acting, changes)


def _detect(
    acting: Scope,
    institution_ids: set[int],
    product_ids: set[int] | None,
    *,
    institution_params: rules.ClusterParams = rules.INSTITUTION_CLUSTERS,
    region_params: rules.ClusterParams = rules.REGION_CLUSTERS,
) -> DetectionOutcome:
    """Detect clusters in each institution and across each of their provinces (derived rows, written
    in the system scope and audited as ``acting``). ``product_ids`` None = every product."""
    outcome = DetectionOutcome()
    with use_scope(Scope.system(acting.actor_name or "quality")):
        institutions = list(Institution.objects.filter(pk__in=institution_ids))
        base = AdverseReaction.objects.select_related("institution")
        signals = ClusterSignal.objects.exclude(status=SignalStatus.MERGED)
        if product_ids is not None:
            base = base.filter(product_id__in=product_ids)
            signals = signals.filter(product_id__in=product_ids)
        for inst in institutions:
            plan = rules.reconcile_signals(
                _known(signals.filter(institution=inst)),
                rules.detect_clusters(_facts(base.filter(institution=inst)), institution_params),
            )
            _apply_plan(
                acting, plan, institution_params, institution=inst, region_code=inst.region_code, outcome=outcome
            )
        for province in sorted({province_of(i.region_code) for i in institutions}):
            reports = base.filter(institution__region_code__startswith=province[:2])
            plan = rules.reconcile_signals(
                _known(signals.filter(institution__isnull=True, region_code=province)),
                rules.detect_clusters(_facts(reports), region_params),
            )
            _apply_plan(acting, plan, region_params, institution=None, region_code=province, outcome=outcome)
    return outcome


def do_detect_clusters(acting: Scope, *, institution_code: str | None = None) -> DetectionOutcome:
    """Re-run detection over every product: for the acting hospital, or for every institution of the
    acting bureau's region (and their provinces). Idempotent: a second run changes nothing."""
    may = acting.can(ADVERSE_REACTION, "write") or acting.can(ADVERSE_REACTION, "approve")
    if not may or acting.level is Level.DEPARTMENT:
        raise ScopeError(f"{acting.label} may not run cluster detection")
    with use_scope(acting), transaction.atomic():
        if acting.level in (Level.INSTITUTION, Level.DEPARTMENT) or institution_code:
            ids = {acting_institution(acting, institution_code).pk}
        else:  # the institutions of the territory that have reports
            ids = set(AdverseReaction.objects.for_scope(acting).values_list("institution_id", flat=True).distinct())
        return _detect(acting, ids, None)


# ------------------------------------------------------------------------------------------------
# Closing a signal, suspensions of use


def _signal(acting: Scope, signal_id: int) -> ClusterSignal:
    signal: ClusterSignal = (
        ClusterSignal.objects.for_scope(acting).select_related("institution", "product").get(pk=signal_id)
    )
    return signal


def _may_decide(acting: Scope, regional: bool) -> Scope:
    """Who may close a signal or decide on a suspension: the hospital's writers for its own
    records (decisions need ``approve``), the bureau's approvers for the region's."""
    if acting.level is Level.DEPARTMENT:
        raise ScopeError(f"{acting.label} may not decide on signals or suspensions")
    if regional:
        if not acting.is_system and acting.level is not Level.REGION:
            raise ScopeError(f"{acting.label} may not decide for a region")
        require(acting, ADVERSE_REACTION, "approve")
        return elevated(acting, ADVERSE_REACTION)
    require(acting, ADVERSE_REACTION, "write")
    return acting


def do_close_signal(acting: Scope, signal_id: int, conclusion: str) -> ClusterSignal:
    """Close a signal after investigation, with its conclusion (reopened if new reports join it)."""
    if not conclusion.strip():
        raise WorkflowError("请填写调查结论", "a conclusion is needed", field="conclusion")
    with use_scope(acting):
        signal = _signal(acting, signal_id)
    writer = _may_decide(acting, signal.is_regional)
    if signal.status != SignalStatus.OPEN:
        raise WorkflowError("只能关闭处于开放状态的信号", "only an open signal can be closed")
    with use_scope(writer), transaction.atomic():
        old = fields_of(signal, ("status", "conclusion"))
        signal.status = SignalStatus.CLOSED
        signal.conclusion = conclusion.strip()
        signal.closed_by_id = acting.actor_id
        signal.closed_at = timezone.now()
        signal.save()
        audited(acting, "close", signal, old=old, new=fields_of(signal, ("status", "conclusion")))
    return signal


SUSPENSION_FIELDS = (
    "level",
    "institution",
    "region_code",
    "product",
    "lot_number",
    "status",
    "effective_from",
    "until",
)


def do_suspend_use(
    acting: Scope,
    *,
    reason: str,
    effective_from: dt.date,
    until: dt.date | None = None,
    signal_id: int | None = None,
    product_code: str = "",
    lot_number: str | None = None,
    region_wide: bool = False,
    region_code: str = "",
) -> Suspension:
    """Suspend use of a product (or one lot), usually after a cluster signal (R-J2).

    A hospital's proposal (``write``) waits for its leadership's approval; a bureau's region-wide
    decision (``approve``) is in effect at once.
    """
    if not reason.strip():
        raise WorkflowError("请填写暂停使用的理由", "a reason is needed", field="reason")
    if until is not None and until < effective_from:
        raise WorkflowError("截止日期不能早于生效日期", "until is before the first day", field="until")
    region_wide = region_wide or acting.level is Level.REGION
    writer = _may_decide(acting, region_wide)
    with use_scope(acting):
        signal = _signal(acting, signal_id) if signal_id is not None else None
        product = signal.product if signal is not None and not product_code else _product(product_code)
        lot = (signal.lot_number if signal is not None else "") if lot_number is None else lot_number.strip()
        if region_wide:
            institution = None
            region = region_code or acting.region_code or (signal.region_code if signal else "")
            if not region:
                raise WorkflowError("请指定地区", "a region code is needed", field="region_code")
        else:
            institution = acting_institution(acting, signal.institution.code if signal and signal.institution else None)
            region = institution.region_code
    now = timezone.now()
    suspension = Suspension(
        signal=signal,
        level=SuspensionLevel.REGION if region_wide else SuspensionLevel.INSTITUTION,
        institution=institution,
        region_code=region,
        product=product,
        lot_number=lot,
        reason=reason.strip(),
        effective_from=effective_from,
        until=until,
        created_by_id=acting.actor_id,
        status=SuspensionStatus.APPROVED if region_wide else SuspensionStatus.PROPOSED,
        decided_by_id=acting.actor_id if region_wide else None,
        decided_at=now if region_wide else None,
    )
    with use_scope(writer), transaction.atomic():
        suspension.save()
        audited(acting, "create", suspension, new=fields_of(suspension, SUSPENSION_FIELDS))
    return suspension


def _decision(acting: Scope, suspension_id: int) -> tuple[Suspension, Scope]:
    require(acting, ADVERSE_REACTION, "approve")
    with use_scope(acting):
        suspension: Suspension = (
            Suspension.objects.for_scope(acting).select_related("product", "institution").get(pk=suspension_id)
        )
    if suspension.is_regional and not acting.is_system and acting.level is not Level.REGION:
        raise ScopeError(f"{acting.label} may not decide for a region")
    return suspension, elevated(acting, ADVERSE_REACTION)


def _decide(acting: Scope, suspension_id: int, status: SuspensionStatus, note: str) -> Suspension:
    suspension, writer = _decision(acting, suspension_id)
    if suspension.status != SuspensionStatus.PROPOSED:
        raise WorkflowError("只能审批待审批的暂停使用申请", "only a proposal can be approved or rejected")
    with use_scope(writer), transaction.atomic():
        old = fields_of(suspension, ("status",))
        suspension.status = status
        suspension.decided_by_id = acting.actor_id
        suspension.decided_at = timezone.now()
        suspension.decision_note = note.strip()
        suspension.save()
        audited(
            acting,
            "approve" if status == SuspensionStatus.APPROVED else "reject",
            suspension,
            old=old,
            new={"status": status, "note": note},
        )
    return suspension


def do_approve_suspension(acting: Scope, suspension_id: int, note: str = "") -> Suspension:
    """Leadership approves a hospital's proposal: the suspension is in effect from its first day."""
    return _decide(acting, suspension_id, SuspensionStatus.APPROVED, note)


def do_reject_suspension(acting: Scope, suspension_id: int, note: str) -> Suspension:
    if not note.strip():
        raise WorkflowError("请填写驳回理由", "a reason is needed", field="note")
    return _decide(acting, suspension_id, SuspensionStatus.REJECTED, note)


def do_lift_suspension(
    acting: Scope, suspension_id: int, *, lifted_on: dt.date | None = None, note: str = ""
) -> Suspension:
    """Lift a suspension in effect: use resumes on ``lifted_on`` (default today)."""
    suspension, writer = _decision(acting, suspension_id)
    if suspension.status != SuspensionStatus.APPROVED:
        raise WorkflowError("只能解除已生效的暂停使用", "only a suspension in effect can be lifted")
    day = lifted_on or timezone.localdate()
    if day < suspension.effective_from:
        raise WorkflowError("解除日期不能早于生效日期", "lifted before it took effect", field="lifted_on")
    with use_scope(writer), transaction.atomic():
        suspension.status = SuspensionStatus.LIFTED
        suspension.lifted_on = day
        suspension.lifted_by_id = acting.actor_id
        suspension.lifted_at = timezone.now()
        suspension.lift_note = note.strip()
        suspension.save()
        audited(
            acting,
            "lift",
            suspension,
            old={"status": SuspensionStatus.APPROVED},
            new={"status": suspension.status, "lifted_on": day},
        )
    return suspension
