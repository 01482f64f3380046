"""Register reads (R-H10, R-H11): the prescription review and complaint lists with their filters,
overdue cases, the fixed categories, and the people a case may be assigned to.

A case is overdue when it is not closed and its due date has passed. Lists put open and in-progress
cases first (earliest due first), closed cases last. A department head reads the prescription reviews
of their own department only (``PrescriptionReview.department_path``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from jicai.accounts.models import User
from jicai.hospital.models import CaseStatus, Complaint, PrescriptionReview
from jicai.hospital.shell import Sheet, workbook_bytes
from jicai.organizations.models import Department

# Irrational-use categories of prescription review (医院处方点评管理规范（试行） 不适宜处方 / 超常处方,
# plus the VBP finding "selected drug not used first", XJ 四.3).
ISSUE_CATEGORIES: dict[str, Any] = {
    "indication": _("Indication not appropriate"),
    "selection": _("Drug selection not appropriate"),
    "route": _("Dosage form or route not appropriate"),
    "dosage": _("Usage or dosage not appropriate"),
    "combination": _("Combination not appropriate"),
    "duplication": _("Duplicate medication"),
    "interaction": _("Incompatibility or adverse interaction"),
    "no_indication": _("Use without indication"),
    "off_label": _("Off-label use"),
    "not_selected_first": _("Selected drug not used first"),
    "other": _("Other"),
}
ISSUE_ZH = {
    "indication": "适应证不适宜",
    "selection": "遴选药品不适宜",
    "route": "药品剂型或给药途径不适宜",
    "dosage": "用法、用量不适宜",
    "combination": "联合用药不适宜",
    "duplication": "重复给药",
    "interaction": "有配伍禁忌或者不良相互作用",
    "no_indication": "无适应证用药",
    "off_label": "超说明书用药",
    "not_selected_first": "未优先使用中选药品",
    "other": "其他",
}
CHANNELS: dict[str, Any] = {
    "on_site": _("In person"),
    "phone": _("Telephone"),
    "letter": _("Letter"),
    "online": _("Online"),
    "hotline": _("12345 hotline"),
    "survey": _("Satisfaction survey"),
    "other": _("Other"),
}
CHANNEL_ZH = {
    "on_site": "现场",
    "phone": "电话",
    "letter": "信函",
    "online": "网络",
    "hotline": "12345热线",
    "survey": "满意度调查",
    "other": "其他",
}
STATUS_ZH = {CaseStatus.OPEN.value: "待处理", CaseStatus.IN_PROGRESS.value: "处理中", CaseStatus.CLOSED.value: "已办结"}


@dataclass(frozen=True)
class Filters:
    status: str = ""
    department: str = ""  # department code (prescription reviews)
    overdue: bool = False
    issue: str = ""  # issue category (prescription reviews); "rational" for the rational ones
    channel: str = ""  # complaints
    q: str = ""

    @classmethod
    def from_query(cls, data: Mapping[str, str]) -> Filters:
        status = data.get("status", "")
        return cls(
            status=status if status in CaseStatus.values else "",
            department=data.get("department", "").strip(),
            overdue=data.get("overdue", "") in {"1", "true", "on", "yes"},
            issue=data.get("issue", "").strip(),
            channel=data.get("channel", "").strip(),
            q=data.get("q", "").strip()[:100],
        )

    def as_query(self) -> dict[str, str]:
        out = {k: v for k, v in (("status", self.status), ("department", self.department), ("issue", self.issue),
                                  ("channel", self.channel), ("q", self.q)) if v}  # fmt: skip
        if self.overdue:
            out["overdue"] = "1"
        return out


def _ordered(qs: QuerySet[Any]) -> QuerySet[Any]:
    rank = Case(
        When(status=CaseStatus.OPEN, then=Value(0)),
        When(status=CaseStatus.IN_PROGRESS, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    ordered: QuerySet[Any] = qs.annotate(status_rank=rank).order_by("status_rank", "due_on", "pk")
    return ordered


def overdue_q(today: dt.date) -> Q:
    return Q(due_on__lt=today) & ~Q(status=CaseStatus.CLOSED)


def reviews(filters: Filters, today: dt.date) -> QuerySet[PrescriptionReview]:
    """Prescription reviews the active scope may read, filtered and ordered."""
    qs = PrescriptionReview.objects.select_related("department", "owner", "institution")
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.department:
        qs = qs.filter(department__code=filters.department)
    if filters.issue == "rational":
        qs = qs.filter(rational=True)
    elif filters.issue:
        qs = qs.filter(issue=filters.issue)
    if filters.overdue:
        qs = qs.filter(overdue_q(today))
    if filters.q:
        qs = qs.filter(
            Q(sample__icontains=filters.q) | Q(prescriber_code__icontains=filters.q) | Q(comment__icontains=filters.q)
        )
    return _ordered(qs)


def complaints(filters: Filters, today: dt.date) -> QuerySet[Complaint]:
    """Complaints the active scope may read, filtered and ordered."""
    qs = Complaint.objects.select_related("product", "owner", "institution")
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.channel:
        qs = qs.filter(channel=filters.channel)
    if filters.overdue:
        qs = qs.filter(overdue_q(today))
    if filters.q:
        qs = qs.filter(Q(subject__icontains=filters.q) | Q(content__icontains=filters.q) | Q(product__code=filters.q))
    return _ordered(qs)


def is_overdue(case: PrescriptionReview | Complaint, today: dt.date) -> bool:
    return case.status != CaseStatus.CLOSED and case.due_on < today


def departments() -> list[Department]:
    """Departments the active scope reads (for filters and forms)."""
    return list(Department.objects.select_related("institution").order_by("institution__code", "code"))


def owners(institution_id: int | None) -> list[User]:
    """Active users of the institution a case may be assigned to."""
    if institution_id is None:
        return []
    return list(User.objects.filter(institution_id=institution_id, is_active=True).order_by("username"))


def owner_choices(institution_id: int | None) -> list[tuple[str, str]]:
    return [("", "—")] + [
        (str(u.pk), f"{u.get_full_name() or u.username}（{u.get_role_display()}）") for u in owners(institution_id)
    ]


# --------------------------------------------------------------------------------------------------
# Excel exports (Chinese headers; every filtered row)


def _user_name(user: User | None) -> str:
    return "" if user is None else (user.get_full_name() or user.get_username())


def _local(value: dt.datetime | None) -> str:
    return "" if value is None else timezone.localtime(value).strftime("%Y-%m-%d %H:%M")


def reviews_workbook(rows: list[PrescriptionReview], today: dt.date) -> bytes:
    sheet = Sheet(
        title="处方点评",
        heading="处方点评登记",
        info=[("导出日期", today.isoformat()), ("记录数", len(rows))],
        headers=(
            "医疗机构", "科室", "医师", "点评日期", "样本", "结论", "问题类别", "点评意见",
            "负责人", "办结期限", "状态", "是否逾期", "处理结果", "办结时间",
        ),
        rows=[
            [
                r.institution.name, r.department.name, r.prescriber_code, r.reviewed_on, r.sample,
                "合理" if r.rational else "不合理", ISSUE_ZH.get(r.issue, r.issue), r.comment,
                _user_name(r.owner), r.due_on, STATUS_ZH.get(r.status, r.status), is_overdue(r, today),
                r.outcome, _local(r.closed_at),
            ]
            for r in rows
        ],
    )  # fmt: skip
    return workbook_bytes([sheet])


def complaints_workbook(rows: list[Complaint], today: dt.date) -> bytes:
    sheet = Sheet(
        title="患者异议与投诉",
        heading="集采药品患者异议与投诉登记",
        info=[("导出日期", today.isoformat()), ("记录数", len(rows))],
        headers=(
            "医疗机构", "受理日期", "渠道", "药品编码", "药品", "事由", "内容",
            "负责人", "办结期限", "状态", "是否逾期", "处理结果", "办结时间",
        ),
        rows=[
            [
                c.institution.name, c.received_on, CHANNEL_ZH.get(c.channel, c.channel),
                c.product.code if c.product else "", str(c.product) if c.product else "", c.subject, c.content,
                _user_name(c.owner), c.due_on, STATUS_ZH.get(c.status, c.status), is_overdue(c, today),
                c.outcome, _local(c.closed_at),
            ]
            for c in rows
        ],
    )  # fmt: skip
    return workbook_bytes([sheet])
