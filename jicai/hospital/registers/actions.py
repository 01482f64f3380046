"""Register actions: prescription review (R-H10; XJ 四.3) and patients' objections and complaints
about selected drugs (R-H11; XJ 四.2, 四.8).

A case has an owner (a user of the institution), a due date and a status: open → in progress →
closed (or open → closed), closing with an outcome; a closed case is the record and is read-only.
Prescription reviews are written by pharmacy and medical affairs (``prescription_review:write``),
complaints by the VBP office, pharmacy and medical affairs (``complaint:write``). A complaint carries
no patient identity: text that looks like an ID-card or mobile number is refused. Every action is one
transaction with an audit row holding the old and new values.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, TypeVar

from django.db import transaction
from django.utils import timezone

from jicai.accounts.models import User
from jicai.catalog.models import Product
from jicai.core.tenancy import Scope, ScopeError, use_scope
from jicai.hospital.common import WorkflowError, acting_institution, audited, fields_of, require
from jicai.hospital.models import CaseStatus, Complaint, PrescriptionReview
from jicai.hospital.registers.queries import CHANNELS, ISSUE_CATEGORIES
from jicai.organizations.models import Department, Institution

REVIEW_FIELDS = (
    "institution",
    "department",
    "prescriber_code",
    "reviewed_on",
    "sample",
    "rational",
    "issue",
    "comment",
    "owner",
    "due_on",
    "status",
    "outcome",
    "closed_at",
)
COMPLAINT_FIELDS = (
    "institution",
    "received_on",
    "channel",
    "product",
    "subject",
    "content",
    "owner",
    "due_on",
    "status",
    "outcome",
    "closed_at",
)
TRANSITIONS = {
    CaseStatus.OPEN.value: {CaseStatus.IN_PROGRESS.value, CaseStatus.CLOSED.value},
    CaseStatus.IN_PROGRESS.value: {CaseStatus.CLOSED.value},
    CaseStatus.CLOSED.value: set(),
}
# An 18-character resident ID (17 digits and a digit or X) or an 11-digit mainland mobile number.
_IDENTITY = re.compile(r"(?<!\d)(\d{17}[\dXx]|1[3-9]\d{9})(?![\dXx])")

CaseT = TypeVar("CaseT", PrescriptionReview, Complaint)


def _owner(institution: Institution, owner: Any) -> User | None:
    if owner in (None, ""):
        return None
    qs = User.objects.filter(institution=institution, is_active=True)
    if isinstance(owner, User):
        found = qs.filter(pk=owner.pk).first()
    elif isinstance(owner, int) or (isinstance(owner, str) and owner.isdigit()):
        found = qs.filter(pk=int(owner)).first()
    else:
        found = qs.filter(username=str(owner)).first()
    if found is None:
        raise WorkflowError(
            "负责人须为本机构的在用账号", f"owner {owner!r} is not an active user of the institution", code="owner"
        )
    return found


def _no_identity(*texts: str) -> None:
    for text in texts:
        if text and _IDENTITY.search(text):
            raise WorkflowError(
                "内容中疑似包含身份证号或手机号：请勿登记患者身份信息",
                "the text looks like it holds an ID-card or phone number; record no patient identity",
                code="identity",
            )


def _required(value: str, zh: str, en: str) -> str:
    value = (value or "").strip()
    if not value:
        raise WorkflowError(f"请填写{zh}", f"{en} is required", code="required")
    return value


def _dates(start: dt.date, due_on: dt.date, what_zh: str) -> None:
    if due_on < start:
        raise WorkflowError(f"办结期限不能早于{what_zh}", "the due date is before the case's date", code="due_on")


# --------------------------------------------------------------------------------------------------
# Prescription review (R-H10)


def _check_review(review: PrescriptionReview) -> None:
    review.sample = _required(review.sample, "点评样本（处方号或医嘱号）", "sample")[:200]
    if review.rational:
        if review.issue:
            raise WorkflowError("合理处方不填写问题类别", "a rational prescription has no issue category", code="issue")
    elif review.issue not in ISSUE_CATEGORIES:
        raise WorkflowError(
            "不合理处方须选择问题类别", "an irrational prescription needs an issue category", code="issue"
        )
    _dates(review.reviewed_on, review.due_on, "点评日期")


def _department(institution: Institution, code: Any) -> Department:
    if isinstance(code, Department):
        code = code.code
    found: Department | None = Department.objects.filter(institution=institution, code=str(code or "").strip()).first()
    if found is None:
        raise WorkflowError(f"本机构没有科室 {code}", f"no department {code} in the institution", code="department")
    return found


def do_record_review(
    acting: Scope,
    *,
    department: Any,
    reviewed_on: dt.date,
    sample: str,
    rational: bool,
    due_on: dt.date,
    issue: str = "",
    comment: str = "",
    prescriber_code: str = "",
    owner: Any = None,
    institution_code: str | None = None,
) -> PrescriptionReview:
    """Record a reviewed prescription sample and its finding, with owner and due date (R-H10)."""
    require(acting, "prescription_review", "write")
    with use_scope(acting), transaction.atomic():
        institution = acting_institution(acting, institution_code)
        review = PrescriptionReview(
            institution=institution,
            department=_department(institution, department),
            prescriber_code=(prescriber_code or "").strip()[:40],
            reviewed_on=reviewed_on,
            sample=sample,
            rational=rational,
            issue=(issue or "").strip(),
            comment=(comment or "").strip(),
            owner=_owner(institution, owner),
            due_on=due_on,
            created_by_id=acting.actor_id,
        )
        _check_review(review)
        review.save()
        audited(acting, "register.review.create", review, new=fields_of(review, REVIEW_FIELDS))
    return review


def _load(acting: Scope, model: type[CaseT], case: CaseT | int) -> CaseT:
    pk = case if isinstance(case, int) else case.pk
    found: CaseT | None = model.objects.select_for_update().filter(pk=pk).first()
    if found is None:
        raise ScopeError(f"{model._meta.label} {pk} is outside {acting.label}")
    return found


def _open(case: PrescriptionReview | Complaint) -> None:
    if case.status == CaseStatus.CLOSED:
        raise WorkflowError("已办结的记录只读", "a closed case is read-only", code="closed")


def do_update_review(acting: Scope, review: PrescriptionReview | int, **changes: Any) -> PrescriptionReview:
    """Change a review's details, owner or due date while it is not closed."""
    require(acting, "prescription_review", "write")
    allowed = {
        "department",
        "prescriber_code",
        "reviewed_on",
        "sample",
        "rational",
        "issue",
        "comment",
        "owner",
        "due_on",
    }
    unknown = set(changes) - allowed
    if unknown:
        raise WorkflowError("不能修改这些字段", f"cannot change {sorted(unknown)}", code="fields")
    with use_scope(acting), transaction.atomic():
        case = _load(acting, PrescriptionReview, review)
        _open(case)
        old = fields_of(case, REVIEW_FIELDS)
        for name, value in changes.items():
            if value is None and name != "owner":
                continue  # None changes nothing (only the owner may be cleared)
            if name == "department":
                case.department = _department(case.institution, value)
            elif name == "owner":
                case.owner = _owner(case.institution, value)
            elif isinstance(value, str):
                setattr(case, name, value.strip())
            else:
                setattr(case, name, value)
        _check_review(case)
        case.save()
        audited(acting, "register.review.update", case, old=old, new=fields_of(case, REVIEW_FIELDS))
    return case


# --------------------------------------------------------------------------------------------------
# Complaints (R-H11)


def _check_complaint(c: Complaint) -> None:
    c.subject = _required(c.subject, "事由", "subject")[:200]
    c.content = _required(c.content, "投诉内容", "content")
    if c.channel not in CHANNELS:
        raise WorkflowError("请选择受理渠道", "choose a channel", code="channel")
    _dates(c.received_on, c.due_on, "受理日期")
    _no_identity(c.subject, c.content)


def _product(code: Any) -> Product | None:
    if code in (None, ""):
        return None
    if isinstance(code, Product):
        return code
    found: Product | None = Product.objects.filter(code=str(code).strip()).first()
    if found is None:
        raise WorkflowError(f"未知的药品编码 {code}", f"unknown product {code}", code="product")
    return found


def do_record_complaint(
    acting: Scope,
    *,
    received_on: dt.date,
    channel: str,
    subject: str,
    content: str,
    due_on: dt.date,
    product: Any = None,
    owner: Any = None,
    institution_code: str | None = None,
) -> Complaint:
    """Record a patient's objection or complaint about a selected drug, with owner and due date (R-H11)."""
    require(acting, "complaint", "write")
    with use_scope(acting), transaction.atomic():
        institution = acting_institution(acting, institution_code)
        complaint = Complaint(
            institution=institution,
            received_on=received_on,
            channel=(channel or "").strip(),
            product=_product(product),
            subject=subject,
            content=(content or "").strip(),
            owner=_owner(institution, owner),
            due_on=due_on,
            created_by_id=acting.actor_id,
        )
        _check_complaint(complaint)
        complaint.save()
        audited(acting, "register.complaint.create", complaint, new=fields_of(complaint, COMPLAINT_FIELDS))
    return complaint


def do_update_complaint(acting: Scope, complaint: Complaint | int, **changes: Any) -> Complaint:
    """Change a complaint's details, owner or due date while it is not closed."""
    require(acting, "complaint", "write")
    allowed = {"received_on", "channel", "product", "subject", "content", "owner", "due_on"}
    unknown = set(changes) - allowed
    if unknown:
        raise WorkflowError("不能修改这些字段", f"cannot change {sorted(unknown)}", code="fields")
    with use_scope(acting), transaction.atomic():
        case = _load(acting, Complaint, complaint)
        _open(case)
        old = fields_of(case, COMPLAINT_FIELDS)
        for name, value in changes.items():
            if value is None and name not in ("owner", "product"):
                continue  # None changes nothing (owner and product may be cleared)
            if name == "product":
                case.product = _product(value)
            elif name == "owner":
                case.owner = _owner(case.institution, value)
            elif isinstance(value, str):
                setattr(case, name, value.strip())
            else:
                setattr(case, name, value)
        _check_complaint(case)
        case.save()
        audited(acting, "register.complaint.update", case, old=old, new=fields_of(case, COMPLAINT_FIELDS))
    return case


# --------------------------------------------------------------------------------------------------
# Status: open → in progress → closed with an outcome


def _transition(acting: Scope, model: type[CaseT], case: CaseT | int, target: str, outcome: str) -> CaseT:
    require(acting, model.resource, "write")
    fields = REVIEW_FIELDS if model is PrescriptionReview else COMPLAINT_FIELDS
    with use_scope(acting), transaction.atomic():
        found = _load(acting, model, case)
        if target not in TRANSITIONS.get(found.status, set()):
            raise WorkflowError(
                f"不能从“{found.get_status_display()}”改为该状态",
                f"cannot go from {found.status} to {target}",
                code="status",
            )
        old = fields_of(found, fields)
        found.status = target
        if target == CaseStatus.CLOSED:
            outcome = (outcome or "").strip()
            if not outcome:
                raise WorkflowError("办结须填写处理结果", "closing needs an outcome", code="outcome")
            if model is Complaint:
                _no_identity(outcome)
            found.outcome = outcome
            found.closed_at = timezone.now()
        found.save()
        kind = "review" if model is PrescriptionReview else "complaint"
        audited(acting, f"register.{kind}.{target}", found, old=old, new=fields_of(found, fields))
    return found


def do_start_review(acting: Scope, review: PrescriptionReview | int) -> PrescriptionReview:
    return _transition(acting, PrescriptionReview, review, CaseStatus.IN_PROGRESS, "")


def do_close_review(acting: Scope, review: PrescriptionReview | int, *, outcome: str) -> PrescriptionReview:
    return _transition(acting, PrescriptionReview, review, CaseStatus.CLOSED, outcome)


def do_start_complaint(acting: Scope, complaint: Complaint | int) -> Complaint:
    return _transition(acting, Complaint, complaint, CaseStatus.IN_PROGRESS, "")


def do_close_complaint(acting: Scope, complaint: Complaint | int, *, outcome: str) -> Complaint:
    return _transition(acting, Complaint, complaint, CaseStatus.CLOSED, outcome)
