"""Writes of the progress-feedback workflow (R-H4, R-H5), each one transaction with its audit rows.

* ``do_send_reminders`` (feedback:write — VBP office, medical affairs, performance): one notification
  per department behind target, with its figures and a link; optionally e-mailed through Django's
  mail settings to the department heads who have an address. A failing mail backend never fails the
  action: the failure is recorded on the notification (``data.email_error``).
* ``do_mark_read``: the receiving department's head marks a notification read (department heads
  hold feedback:read only; the write is made in the system scope after the notification was found
  in the head's own write territory, ``Notification.scope_filter``).
* ``do_publish_sheet`` (feedback:publish): a snapshot of the board, visible to every department.
* ``do_create_scheme`` / ``do_update_scheme`` (feedback:write), ``do_compute_scores``
  (feedback:write) and ``do_publish_scores`` (feedback:publish): appraisal (``policy.appraisal``).

Publishing is done in the system scope after the permission check, so a role that may publish but
not write can still publish; every audit row names the real actor.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.core.exceptions import ObjectDoesNotExist
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from jicai.accounts.models import User
from jicai.accounts.permissions import RoleName
from jicai.core.tenancy import Action, Level, Scope, use_scope
from jicai.hospital.common import WorkflowError, acting_institution, actor_id, audited, fields_of, require
from jicai.hospital.feedback import queries
from jicai.hospital.feedback.display import pct_text, qty_text
from jicai.hospital.feedback.periods import parse_period
from jicai.hospital.models import AppraisalScheme, AppraisalScore, Notification, ProgressSheet
from jicai.organizations.models import Department
from jicai.policy.appraisal import AppraisalError, DepartmentFigures, parse_weights, score_department

log = logging.getLogger(__name__)
RESOURCE = "feedback"
REMINDER = "progress_reminder"
_NOTIFICATION_FIELDS = ("department", "kind", "title", "body", "link", "data", "emailed_to", "read_at")
_SCHEME_FIELDS = ("name", "weights", "active")
_SCORE_FIELDS = ("scheme", "department", "period", "score", "components", "published")
_STATUS_ZH = {"completed": "已完成", "on_track": "进度正常", "behind": "进度滞后", "at_risk": "完成风险"}


def _system(acting: Scope) -> Scope:
    return Scope.system(f"{acting.actor_name or 'system'} (workspace)")


# --------------------------------------------------------------------------------------------------
# Reminders


def _reminder_text(dept: queries.DepartmentRow, as_of: dt.date, note: str) -> tuple[str, str]:
    title = f"集采任务进度提醒：{dept.name}（截至 {as_of.isoformat()}）"
    lines = [
        f"截至 {as_of.isoformat()}，贵科室集采中选药品任务完成率 {pct_text(dept.completion)}，"
        f"时间进度 {pct_text(dept.expected)}，有 {len(dept.behind_items)} 个品种进度滞后：",
    ]
    for i in dept.behind_items:
        lines.append(
            f"- {i.item_name}（{i.batch_code} {i.item_code}）：任务量 {qty_text(i.target_qty)}{i.unit_label}，"
            f"已使用 {qty_text(i.dispensed_qty)}，完成率 {pct_text(i.completion)}，时间进度 {pct_text(i.elapsed)}，"
            f"{_STATUS_ZH.get(i.status or '', '')}"
        )
    lines.append("请优先使用集采中选药品，按时间节点完成任务量（R-H4）。")
    if note:
        lines.append(note)
    return title, "\n".join(lines)


def _board_link(as_of: dt.date, batch: str | None) -> str:
    query = {"as_of": as_of.isoformat()} | ({"batch": batch} if batch else {})
    return f"{reverse('hospital:feedback_board')}?{urlencode(query)}"


def _heads_emails(dept: Department) -> list[str]:
    found = User.objects.filter(role=RoleName.DEPARTMENT_HEAD, department=dept, is_active=True).exclude(email="")
    return sorted(set(found.values_list("email", flat=True)))


def do_send_reminders(
    acting: Scope,
    *,
    as_of: dt.date,
    batch: str | None = None,
    departments: list[str] | None = None,
    email: bool = False,
    note: str = "",
    institution: str | None = None,
) -> list[Notification]:
    """A reminder to each department behind target on ``as_of`` (all of them, or those of ``departments``
    that are behind); returns the notifications. Refused when no department is behind."""
    require(acting, RESOURCE, "write")
    with use_scope(acting):
        inst = acting_institution(acting, institution)
    board = queries.board(acting, as_of=as_of, batch=batch, institution=inst.code)
    wanted = set(departments or [])
    behind = [d for d in board.behind if not wanted or d.code in wanted]
    if not behind:
        raise WorkflowError("没有进度滞后的科室，无需提醒", "no department is behind target", code="nothing_behind")
    link = _board_link(as_of, batch)
    out: list[Notification] = []
    with use_scope(acting), transaction.atomic():
        known = {d.code: d for d in Department.objects.filter(institution=inst, code__in=[d.code for d in behind])}
        for row in behind:
            dept = known.get(row.code)
            if dept is None:  # dispensing names a department the hospital has not registered
                continue
            title, body = _reminder_text(row, as_of, note.strip())
            data: dict[str, Any] = {
                "as_of": as_of.isoformat(),
                "batch": batch or "",
                "completion": None if row.completion is None else str(row.completion),
                "expected": None if row.expected is None else str(row.expected),
                "items_behind": [i.as_dict() for i in row.behind_items],
            }
            emailed: list[str] = []
            if email:
                recipients = _heads_emails(dept)
                if not recipients:
                    data["email_note"] = "科室主任没有登记电子邮箱"
                else:
                    try:
                        send_mail(title, f"{body}\n\n请登录集采系统查看：{link}", None, recipients, fail_silently=False)
                        emailed = recipients
                    except Exception as exc:  # the mail backend's failure is recorded, never raised
                        log.warning("reminder e-mail to %s failed: %s", recipients, exc)
                        data["email_error"] = f"{type(exc).__name__}: {exc}"[:300]
                        data["email_failed_to"] = recipients
            notification = Notification(
                institution=inst,
                department=dept,
                kind=REMINDER,
                title=title[:200],
                body=body,
                link=link,
                data=data,
                emailed_to=emailed,
                created_by_id=actor_id(acting),
            )
            notification.save()
            audited(
                acting,
                "feedback.remind",
                notification,
                new=fields_of(notification, _NOTIFICATION_FIELDS),
                context={"as_of": as_of.isoformat(), "batch": batch or "", "email": email},
            )
            out.append(notification)
    if not out:
        raise WorkflowError(
            "进度滞后的科室均未在系统中登记，无法发送提醒",
            "the departments behind are not registered",
            code="no_department",
        )
    return out


def do_mark_read(acting: Scope, notification_id: int) -> Notification:
    """The receiving department marks a notification read (idempotent)."""
    require(acting, RESOURCE, "read")
    if not acting.is_system and acting.level is not Level.DEPARTMENT:
        raise WorkflowError("只有收到提醒的科室可以标记已读", "only the receiving department marks a notification read")
    with use_scope(acting):
        found: Notification | None = (
            Notification.objects.for_scope(acting, Action.WRITE).filter(pk=notification_id).first()
        )
    if found is None:
        raise Notification.DoesNotExist(f"no notification {notification_id} for {acting.label}")
    if found.read_at is not None:
        return found
    now = timezone.now()
    with transaction.atomic(), use_scope(_system(acting)):
        Notification.objects.filter(pk=found.pk, read_at__isnull=True).update(read_at=now)
        audited(acting, "feedback.read", found, old={"read_at": None}, new={"read_at": now})
    found.read_at = now
    return found


# --------------------------------------------------------------------------------------------------
# Published progress sheets


def do_publish_sheet(
    acting: Scope,
    *,
    as_of: dt.date,
    batch: str | None = None,
    title: str = "",
    institution: str | None = None,
) -> ProgressSheet:
    """Publish the board on ``as_of`` as a progress sheet every department sees (R-H4, XJ 五(六)2)."""
    require(acting, RESOURCE, "publish")
    with use_scope(acting):
        inst = acting_institution(acting, institution)
    board = queries.board(acting, as_of=as_of, batch=batch, institution=inst.code)
    if not board.departments:
        raise WorkflowError("该日期没有科室进度数据，无法发布", "no department figures on that date", code="empty")
    suffix = f"（{batch}）" if batch else ""
    sheet = ProgressSheet(
        institution=inst,
        as_of=as_of,
        title=(title.strip() or f"集采任务科室进度公示{suffix}（截至 {as_of.isoformat()}）")[:200],
        rows=[d.as_dict() for d in board.departments],
        published_by_id=actor_id(acting),
        created_by_id=actor_id(acting),
    )
    with transaction.atomic(), use_scope(_system(acting)):
        sheet.save()
        audited(
            acting,
            "feedback.publish_sheet",
            sheet,
            new={"as_of": as_of.isoformat(), "title": sheet.title, "departments": len(sheet.rows)},
            context={"batch": batch or ""},
        )
    return sheet


# --------------------------------------------------------------------------------------------------
# Appraisal (R-H5)


def _weights(raw: dict[str, Any]) -> dict[str, str]:
    try:
        return {k: str(v) for k, v in parse_weights(raw).items()}
    except AppraisalError as exc:
        raise WorkflowError(exc.message_zh, exc.message_en, code="weights") from exc


def do_create_scheme(
    acting: Scope, *, name: str, weights: dict[str, Any], active: bool = True, institution: str | None = None
) -> AppraisalScheme:
    require(acting, RESOURCE, "write")
    if not name.strip():
        raise WorkflowError("请填写方案名称", "a scheme needs a name", code="name")
    checked = _weights(weights)
    with use_scope(acting), transaction.atomic():
        inst = acting_institution(acting, institution)
        obj = AppraisalScheme(
            institution=inst, name=name.strip()[:100], weights=checked, active=active, created_by_id=actor_id(acting)
        )
        obj.save()
        audited(acting, "feedback.create_scheme", obj, new=fields_of(obj, _SCHEME_FIELDS))
    return obj


def _scheme(acting: Scope, scheme_id: int) -> AppraisalScheme:
    found: AppraisalScheme | None = AppraisalScheme.objects.filter(pk=scheme_id).first()
    if found is None:
        raise AppraisalScheme.DoesNotExist(f"no appraisal scheme {scheme_id} for {acting.label}")
    return found


def do_update_scheme(
    acting: Scope,
    scheme_id: int,
    *,
    name: str | None = None,
    weights: dict[str, Any] | None = None,
    active: bool | None = None,
) -> AppraisalScheme:
    """Rename, re-weight or (de)activate a scheme; weights are frozen once a score under it is published."""
    require(acting, RESOURCE, "write")
    with use_scope(acting), transaction.atomic():
        obj = _scheme(acting, scheme_id)
        old = fields_of(obj, _SCHEME_FIELDS)
        if weights is not None:
            checked = _weights(weights)
            if checked != obj.weights and AppraisalScore.objects.filter(scheme=obj, published=True).exists():
                raise WorkflowError(
                    "该方案已有发布的考核分，不能修改权重，请新建方案",
                    "scores under this scheme are published; create a new scheme instead",
                    code="published",
                )
            obj.weights = checked
        if name is not None:
            if not name.strip():
                raise WorkflowError("请填写方案名称", "a scheme needs a name", code="name")
            obj.name = name.strip()[:100]
        if active is not None:
            obj.active = active
        new = fields_of(obj, _SCHEME_FIELDS)
        if new != old:
            obj.save()
            audited(acting, "feedback.update_scheme", obj, old=old, new=new)
    return obj


def do_compute_scores(  # noqa: PLR0915 - one audited transaction: checks, scoring and writes together
    acting: Scope, scheme_id: int, *, period: str, batch: str | None = None
) -> tuple[list[AppraisalScore], list[str]]:
    """Score every department of the institution for ``period`` under the scheme (R-H5).

    Completion comes from the board on the period's last day (or today, if earlier); the shares from
    the department's dispensing in the period without antimicrobial-exception lines. Scores of a
    period already published are frozen. Returns the scores and the departments that could not be
    scored (no weighted figures, e.g. no target under a completion-only scheme).
    """
    from jicai.hospital.control.queries import use_by_department  # noqa: PLC0415 - sibling workflow

    require(acting, RESOURCE, "write")
    require(acting, "dispensing", "read")
    try:
        span = parse_period(period)
    except ValueError as exc:
        raise WorkflowError("考核期间格式应为 2023-03、2023-Q1、2023-H1 或 2023", str(exc), code="period") from exc
    if span.start > timezone.localdate():
        raise WorkflowError("考核期间尚未开始", f"the period {span.label} has not started", code="period")
    with use_scope(acting):
        obj = _scheme(acting, scheme_id)
        inst = obj.institution
        if not obj.active:
            raise WorkflowError("该考核方案已停用", "the scheme is not active", code="inactive")
        if AppraisalScore.objects.filter(scheme=obj, period=span.label, published=True).exists():
            raise WorkflowError(
                "该期间的考核分已发布，不能重新计算", "the period's scores are published", code="published"
            )
        departments = {d.code: d for d in Department.objects.filter(institution=inst)}
    as_of = min(span.end, timezone.localdate())
    board = queries.board(acting, as_of=as_of, batch=batch, institution=inst.code)
    use = use_by_department(acting, inst, span.start, as_of)
    weights = {k: Decimal(v) for k, v in obj.weights.items()}
    scored: list[AppraisalScore] = []
    skipped: list[str] = []
    codes = sorted({d.code for d in board.departments} | set(use))
    with use_scope(acting), transaction.atomic():
        existing = {s.department_id: s for s in AppraisalScore.objects.filter(scheme=obj, period=span.label)}
        for code in codes:
            dept = departments.get(code)
            if dept is None:
                continue
            row = board.department(code)
            kinds = use.get(code, {})
            figures = DepartmentFigures(
                target_qty=row.target_qty if row else None,
                dispensed_qty=row.counted_toward_target if row else Decimal(0),
                expected=(row.expected if row and row.expected is not None else Decimal(0)),
                selected_qty=kinds.get("selected", Decimal(0)),
                non_selected_qty=kinds.get("same_generic", Decimal(0)),
                substitute_qty=kinds.get("substitute", Decimal(0)),
            )
            try:
                result = score_department(figures, weights)
            except AppraisalError:
                skipped.append(code)
                continue
            components: dict[str, Any] = {k: None if v is None else str(v) for k, v in result.components.items()}
            components["figures"] = {
                "target_qty": None if figures.target_qty is None else str(figures.target_qty),
                "dispensed_qty": str(figures.dispensed_qty),
                "expected": str(figures.expected),
                "selected_qty": str(figures.selected_qty),
                "non_selected_qty": str(figures.non_selected_qty),
                "substitute_qty": str(figures.substitute_qty),
            }
            components["as_of"] = as_of.isoformat()
            components["weights"] = dict(obj.weights)
            score = existing.get(dept.pk)
            old = fields_of(score, _SCORE_FIELDS) if score else None
            if score is None:
                score = AppraisalScore(
                    institution=inst, scheme=obj, department=dept, period=span.label, created_by_id=actor_id(acting)
                )
            score.score = result.total
            score.components = components
            score.save()
            audited(
                acting,
                "feedback.compute_score",
                score,
                old=old,
                new=fields_of(score, _SCORE_FIELDS),
                context={"as_of": as_of.isoformat(), "batch": batch or ""},
            )
            scored.append(score)
    return scored, skipped


def do_publish_scores(acting: Scope, scheme_id: int, *, period: str) -> int:
    """Publish a period's scores under a scheme to the departments (R-H5); returns how many."""
    require(acting, RESOURCE, "publish")
    with use_scope(acting):
        obj = _scheme(acting, scheme_id)
        pending = list(AppraisalScore.objects.filter(scheme=obj, period=period.strip().upper(), published=False))
        if not pending and not AppraisalScore.objects.filter(scheme=obj, period=period.strip().upper()).exists():
            raise WorkflowError("该期间还没有计算考核分", "no scores for that period yet", code="no_scores")
    with transaction.atomic(), use_scope(_system(acting)):
        AppraisalScore.objects.filter(pk__in=[s.pk for s in pending]).update(published=True)
        for s in pending:
            audited(acting, "feedback.publish_score", s, old={"published": False}, new={"published": True})
    return len(pending)


def not_found(exc: Exception) -> bool:
    """Whether an action's error means "no such record in your territory" (views answer 404)."""
    return isinstance(exc, ObjectDoesNotExist)
