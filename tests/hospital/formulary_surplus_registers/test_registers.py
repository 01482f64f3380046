"""Registers: prescription review (R-H10) and patients' complaints about selected drugs (R-H11) —
status, owner and due date, overdue cases, filters, pagination, export, permissions, API."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from jicai.core.audit import AuditEntry
from jicai.core.tenancy import ScopeError, system_scope, use_scope
from jicai.hospital.common import WorkflowError
from jicai.hospital.models import Complaint, PrescriptionReview
from jicai.hospital.registers import actions, queries

from .conftest import SEL, WS

pytestmark = pytest.mark.django_db
D = dt.date
TODAY = timezone.localdate()


def _review(ws: WS, user: str = "hn_pharmacy", **kw: Any) -> PrescriptionReview:
    kw.setdefault("department", "NK01")
    kw.setdefault("reviewed_on", TODAY - dt.timedelta(days=20))
    kw.setdefault("sample", "RX-0001")
    kw.setdefault("rational", False)
    kw.setdefault("issue", "not_selected_first")
    kw.setdefault("due_on", TODAY + dt.timedelta(days=5))
    return actions.do_record_review(ws.scope(user), **kw)


def _complaint(ws: WS, user: str = "hn_vbp", **kw: Any) -> Complaint:
    kw.setdefault("received_on", TODAY - dt.timedelta(days=3))
    kw.setdefault("channel", "phone")
    kw.setdefault("subject", "对中选药品疗效有疑虑")
    kw.setdefault("content", "患者家属来电，认为更换为中选药品后血脂控制不佳。")
    kw.setdefault("due_on", TODAY + dt.timedelta(days=7))
    return actions.do_record_complaint(ws.scope(user), **kw)


def test_review_lifecycle_open_in_progress_closed(ws: WS) -> None:
    review = _review(ws, owner="hn_medical", prescriber_code="D001", comment="未优先选用阿托伐他汀中选品种")
    assert (review.status, review.owner.username, review.department.code) == ("open", "hn_medical", "NK01")
    review = actions.do_start_review(ws.scope("hn_medical"), review)
    assert review.status == "in_progress"
    with pytest.raises(WorkflowError, match="处理结果"):
        actions.do_close_review(ws.scope("hn_medical"), review, outcome=" ")
    review = actions.do_close_review(ws.scope("hn_medical"), review, outcome="已约谈医师并纳入科室考核")
    assert (review.status, review.outcome) == ("closed", "已约谈医师并纳入科室考核")
    assert review.closed_at is not None
    with pytest.raises(WorkflowError, match="只读"):
        actions.do_update_review(ws.scope("hn_pharmacy"), review, comment="x")
    with pytest.raises(WorkflowError, match="不能从"):
        actions.do_start_review(ws.scope("hn_pharmacy"), review)
    with system_scope("t"):
        audit = list(AuditEntry.objects.filter(model="hospital.PrescriptionReview").order_by("seq"))
    assert [a.action for a in audit] == [
        "register.review.create",
        "register.review.in_progress",
        "register.review.closed",
    ]
    assert (audit[2].old["status"], audit[2].new["status"]) == ("in_progress", "closed")


def test_review_rules(ws: WS) -> None:
    with pytest.raises(WorkflowError, match="须选择问题类别"):
        _review(ws, issue="")
    with pytest.raises(WorkflowError, match="须选择问题类别"):
        _review(ws, issue="bad_category")
    rational = _review(ws, rational=True, issue="")
    assert rational.issue == ""
    with pytest.raises(WorkflowError, match="合理处方不填写问题类别"):
        _review(ws, rational=True, issue="dosage")
    with pytest.raises(WorkflowError, match="不合理处方须选择问题类别"):
        actions.do_update_review(ws.scope("hn_pharmacy"), rational, rational=False)
    changed = actions.do_update_review(ws.scope("hn_pharmacy"), rational, rational=False, issue="dosage")
    assert (changed.rational, changed.issue) == (False, "dosage")
    with pytest.raises(WorkflowError, match="本机构没有科室"):
        _review(ws, department="XX99")
    with pytest.raises(WorkflowError, match="办结期限不能早于"):
        _review(ws, due_on=TODAY - dt.timedelta(days=30))
    with pytest.raises(WorkflowError, match="负责人须为本机构"):
        _review(ws, owner="hn2_vbp")  # a user of another hospital
    with pytest.raises(WorkflowError, match="负责人须为本机构"):
        _review(ws, owner="nobody")
    # the categories are the fixed Chinese list
    assert queries.ISSUE_ZH["not_selected_first"] == "未优先使用中选药品"
    assert set(queries.ISSUE_ZH) == set(queries.ISSUE_CATEGORIES)


@pytest.mark.parametrize("user", ["hn_vbp", "hn_finance", "hn_leader", "hn_head", "hn_admin"])
def test_only_pharmacy_and_medical_affairs_record_reviews(ws: WS, user: str) -> None:
    with pytest.raises(ScopeError):
        _review(ws, user=user)


@pytest.mark.parametrize("user", ["hn_finance", "hn_leader", "hn_head", "hn_admin"])
def test_complaints_are_recorded_by_vbp_pharmacy_medical_affairs_only(ws: WS, user: str) -> None:
    for allowed in ("hn_vbp", "hn_pharmacy", "hn_medical"):
        _complaint(ws, user=allowed)
    with pytest.raises(ScopeError):
        _complaint(ws, user=user)


def test_complaint_lifecycle_and_no_patient_identity(ws: WS) -> None:
    complaint = _complaint(ws, product=SEL, owner="hn_pharmacy")
    assert (complaint.product.code, complaint.owner.username) == (SEL, "hn_pharmacy")
    with pytest.raises(WorkflowError, match="身份证号或手机号"):
        _complaint(ws, content="患者张三，电话13812345678，投诉药品")
    with pytest.raises(WorkflowError, match="身份证号或手机号"):
        _complaint(ws, subject="身份证 46010819800101123X")
    with pytest.raises(WorkflowError, match="受理渠道"):
        _complaint(ws, channel="pigeon")
    with pytest.raises(WorkflowError, match="未知的药品编码"):
        _complaint(ws, product="NOPE")
    complaint = actions.do_update_complaint(ws.scope("hn_medical"), complaint, owner="hn_medical")
    assert complaint.owner.username == "hn_medical"
    # open → closed directly
    complaint = actions.do_close_complaint(ws.scope("hn_medical"), complaint, outcome="已向患者解释一致性评价")
    assert complaint.status == "closed"


def test_other_hospitals_cannot_act(ws: WS) -> None:
    review = _review(ws)
    complaint = _complaint(ws)
    with pytest.raises(ScopeError):
        actions.do_start_review(ws.scope("hn2_pharmacy"), review)
    with pytest.raises(ScopeError):
        actions.do_close_complaint(ws.scope("hn2_pharmacy"), complaint, outcome="x")
    with use_scope(ws.scope("hn2_pharmacy")):
        assert not PrescriptionReview.objects.exists()
        assert not Complaint.objects.exists()


def test_department_head_reads_their_department_only(ws: WS) -> None:
    # R-H10: a department head sees the reviews of their own department (``department_path``). The
    # role's grants do not yet include ``prescription_review:read`` (reported); the row rule is tested
    # with a department scope that holds it.
    mine = _review(ws, department="NK01", sample="RX-NK")
    _review(ws, department="SJ01", sample="RX-SJ")
    head = ws.scope("hn_head")
    reader = dataclasses.replace(head, permissions=head.permissions | {"department:prescription_review:read"})
    with use_scope(reader):
        assert [r.pk for r in queries.reviews(queries.Filters(), TODAY)] == [mine.pk]
    with pytest.raises(ScopeError):
        actions.do_start_review(reader, mine)


def test_filters_and_overdue(ws: WS) -> None:
    late = _review(ws, sample="RX-LATE", reviewed_on=TODAY - dt.timedelta(days=30), due_on=TODAY - dt.timedelta(days=1))
    due_today = _review(ws, sample="RX-TODAY", due_on=TODAY)
    other_dept = _review(ws, sample="RX-SJ", department="SJ01", issue="dosage")
    closed = _review(
        ws, sample="RX-CLOSED", due_on=TODAY - dt.timedelta(days=2), reviewed_on=TODAY - dt.timedelta(days=9)
    )
    actions.do_close_review(ws.scope("hn_pharmacy"), closed, outcome="完成")
    rational = _review(ws, sample="RX-OK", rational=True, issue="")
    with use_scope(ws.scope("hn_vbp")):

        def pks(**kw: Any) -> list[int]:
            return [r.pk for r in queries.reviews(queries.Filters(**kw), TODAY)]

        # open and in progress first (earliest due first), closed last
        assert pks() == [late.pk, due_today.pk, other_dept.pk, rational.pk, closed.pk]
        assert pks(overdue=True) == [late.pk]  # a closed case is never overdue; due today is not late
        assert pks(department="SJ01") == [other_dept.pk]
        assert pks(issue="dosage") == [other_dept.pk]
        assert pks(issue="rational") == [rational.pk]
        assert pks(status="closed") == [closed.pk]
        assert pks(q="LATE") == [late.pk]


def test_review_pages(ws: WS) -> None:
    late = _review(ws, sample="RX-LATE", reviewed_on=TODAY - dt.timedelta(days=30), due_on=TODAY - dt.timedelta(days=1))
    pharmacy = ws.client("hn_pharmacy")
    page = pharmacy.get(reverse("hospital:review_list"))
    assert page.status_code == 200
    assert f'<tr data-id="{late.pk}" class="overdue">'.encode() in page.content
    assert b'data-testid="create-case"' in page.content
    response = pharmacy.post(
        reverse("hospital:review_create"),
        {
            "department": "SJ01",
            "reviewed_on": TODAY.isoformat(),
            "sample": "RX-NEW",
            "rational": "0",
            "issue": "off_label",
            "comment": "超说明书剂量",
            "owner": str(ws.users["hn_medical"].pk),
            "due_on": (TODAY + dt.timedelta(days=10)).isoformat(),
        },
    )
    assert response.status_code == 302
    with system_scope("t"):
        new = PrescriptionReview.objects.get(sample="RX-NEW")
    assert (new.issue, new.owner.username, new.department.code) == ("off_label", "hn_medical", "SJ01")
    detail = pharmacy.get(reverse("hospital:review_detail", args=[new.pk]))
    assert b'data-testid="start"' in detail.content
    assert pharmacy.post(reverse("hospital:review_status", args=[new.pk]), {"action": "start"}).status_code == 302
    pharmacy.post(reverse("hospital:review_status", args=[new.pk]), {"action": "close", "outcome": "已反馈科室"})
    with system_scope("t"):
        new.refresh_from_db()
    assert new.status == "closed"
    # the VBP office reads but does not record reviews
    vbp = ws.client("hn_vbp")
    assert b'data-testid="create-case"' not in vbp.get(reverse("hospital:review_list")).content
    assert vbp.post(reverse("hospital:review_status", args=[late.pk]), {"action": "start"}).status_code == 403
    # filters through the query string
    filtered = vbp.get(reverse("hospital:review_list"), {"overdue": "1"})
    assert filtered.content.count(b"<tr data-id=") == 1


def test_review_export_follows_the_filters(ws: WS) -> None:
    _review(ws, sample="RX-LATE", reviewed_on=TODAY - dt.timedelta(days=30), due_on=TODAY - dt.timedelta(days=1))
    _review(ws, sample="RX-OK", rational=True, issue="")
    response = ws.client("hn_vbp").get(reverse("hospital:review_export"), {"overdue": "1"})
    assert response.status_code == 200
    rows = [[c.value for c in r] for r in load_workbook(io.BytesIO(response.content)).active.iter_rows()]
    header = next(i for i, r in enumerate(rows) if r[0] == "医疗机构")
    body = [dict(zip(rows[header], r, strict=True)) for r in rows[header + 1 :]]
    assert [(b["样本"], b["结论"], b["问题类别"], b["状态"], b["是否逾期"]) for b in body] == [
        ("RX-LATE", "不合理", "未优先使用中选药品", "待处理", "是")
    ]


def test_complaint_pages_and_export(ws: WS) -> None:
    vbp = ws.client("hn_vbp")
    response = vbp.post(
        reverse("hospital:complaint_create"),
        {
            "received_on": TODAY.isoformat(),
            "channel": "hotline",
            "product_code": SEL,
            "subject": "要求继续使用原研药",
            "content": "患者要求继续使用原研药，对中选药品有顾虑。",
            "owner": "",
            "due_on": (TODAY + dt.timedelta(days=7)).isoformat(),
        },
    )
    assert response.status_code == 302
    with system_scope("t"):
        complaint = Complaint.objects.get()
    assert (complaint.channel, complaint.product.code, complaint.owner) == ("hotline", SEL, None)
    page = vbp.get(reverse("hospital:complaint_list"), {"channel": "hotline"})
    assert page.content.count(b"<tr data-id=") == 1
    assert vbp.get(reverse("hospital:complaint_list"), {"channel": "phone"}).content.count(b"<tr data-id=") == 0
    export = vbp.get(reverse("hospital:complaint_export"))
    rows = [[c.value for c in r] for r in load_workbook(io.BytesIO(export.content)).active.iter_rows()]
    assert any(r[2] == "12345热线" and r[5] == "要求继续使用原研药" for r in rows)
    # identity in the form is refused with the Chinese message
    refused = vbp.post(
        reverse("hospital:complaint_create"),
        {
            "received_on": TODAY.isoformat(),
            "channel": "phone",
            "subject": "投诉",
            "content": "联系电话 13912345678",
            "due_on": TODAY.isoformat(),
        },
        follow=True,
    )
    assert "身份证号或手机号" in refused.content.decode()


@pytest.mark.parametrize(
    ("user", "review_status", "complaint_status"),
    [
        (None, 302, 302),
        ("hn_head", 200, 404),  # a department head reads their own department's reviews, no complaints
        ("hn_head2", 404, 404),  # another department's head does not
        ("hn2_vbp", 404, 404),
        ("sx_vbp", 404, 404),
        ("hn_finance", 200, 200),
        ("hn_admin", 200, 200),
    ],
)
def test_detail_permissions(ws: WS, user: str | None, review_status: int, complaint_status: int) -> None:
    review = _review(ws)
    complaint = _complaint(ws)
    client = ws.client(user)
    assert client.get(reverse("hospital:review_detail", args=[review.pk])).status_code == review_status
    assert client.get(reverse("hospital:complaint_detail", args=[complaint.pk])).status_code == complaint_status


def test_list_pages_query_count(ws: WS, django_assert_num_queries: Any) -> None:
    for n in range(60):  # more than a page
        _review(ws, sample=f"RX-{n:03d}", owner="hn_medical")
        if n < 5:
            _complaint(ws, owner="hn_pharmacy")
    client = ws.client("hn_pharmacy")
    client.get(reverse("hospital:review_list"))
    # session, user, the user's institution (scope), count, page, departments, owners for the form
    with django_assert_num_queries(7):
        page = client.get(reverse("hospital:review_list"))
    assert page.content.count(b"<tr data-id=") == 50
    assert client.get(reverse("hospital:review_list"), {"page": 2}).content.count(b"<tr data-id=") == 10
    # session, user, institution, count, page, owners for the form
    with django_assert_num_queries(6):
        page = client.get(reverse("hospital:complaint_list"))
    assert page.content.count(b"<tr data-id=") == 5


def test_api(ws: WS) -> None:
    pharmacy = ws.client("hn_pharmacy")
    body = {
        "department": "NK01",
        "reviewed_on": TODAY.isoformat(),
        "sample": "RX-API",
        "rational": False,
        "issue": "dosage",
        "due_on": (TODAY + dt.timedelta(days=3)).isoformat(),
        "owner": "hn_medical",
    }
    created = pharmacy.post("/api/v1/hospital/registers/reviews", json.dumps(body), content_type="application/json")
    assert created.status_code == 201, created.content
    review = created.json()
    assert (review["issue_zh"], review["owner"], review["status"], review["overdue"]) == (
        "用法、用量不适宜",
        "hn_medical",
        "open",
        False,
    )
    rid = review["id"]
    bad = pharmacy.post(
        "/api/v1/hospital/registers/reviews", json.dumps({**body, "issue": ""}), content_type="application/json"
    )
    assert bad.status_code == 400
    assert bad.json()["message_zh"] == "不合理处方须选择问题类别"
    patched = pharmacy.patch(
        f"/api/v1/hospital/registers/reviews/{rid}", json.dumps({"owner": None}), content_type="application/json"
    )
    assert patched.json()["owner"] is None
    assert pharmacy.post(f"/api/v1/hospital/registers/reviews/{rid}/start").json()["status"] == "in_progress"
    closed = pharmacy.post(
        f"/api/v1/hospital/registers/reviews/{rid}/close",
        json.dumps({"outcome": "已整改"}),
        content_type="application/json",
    )
    assert closed.json()["status"] == "closed"
    listing = ws.client("hn_vbp").get("/api/v1/hospital/registers/reviews?status=closed").json()
    assert [r["id"] for r in listing["results"]] == [rid]
    assert ws.client("hn_vbp").post(f"/api/v1/hospital/registers/reviews/{rid}/start").status_code == 403
    assert ws.client("hn2_pharmacy").get(f"/api/v1/hospital/registers/reviews/{rid}").status_code == 404
    # a department head lists only their department's reviews (this one is of NK01, theirs)
    assert [r["id"] for r in ws.client("hn_head").get("/api/v1/hospital/registers/reviews").json()["results"]] == [rid]
    assert ws.client("hn_head2").get("/api/v1/hospital/registers/reviews").json()["results"] == []
    assert ws.client("hn_head").get("/api/v1/hospital/registers/complaints").status_code == 404
    assert ws.client(None).get("/api/v1/hospital/registers/reviews").status_code == 401
    assert ws.client("hn_vbp").get("/api/v1/hospital/registers/reviews-export").status_code == 200

    vbp = ws.client("hn_vbp")
    complaint = {
        "received_on": TODAY.isoformat(),
        "channel": "online",
        "subject": "价格疑问",
        "content": "询问中选药品为何便宜",
        "due_on": TODAY.isoformat(),
        "product": SEL,
    }
    made = vbp.post("/api/v1/hospital/registers/complaints", json.dumps(complaint), content_type="application/json")
    assert made.status_code == 201, made.content
    cid = made.json()["id"]
    assert made.json()["channel_zh"] == "网络"
    assert vbp.post(f"/api/v1/hospital/registers/complaints/{cid}/start").json()["status"] == "in_progress"
    patched = vbp.patch(
        f"/api/v1/hospital/registers/complaints/{cid}",
        json.dumps({"owner": "hn_pharmacy"}),
        content_type="application/json",
    )
    assert patched.json()["owner"] == "hn_pharmacy"
    done = vbp.post(
        f"/api/v1/hospital/registers/complaints/{cid}/close",
        json.dumps({"outcome": "已解释"}),
        content_type="application/json",
    )
    assert done.json()["status"] == "closed"
    assert vbp.get("/api/v1/hospital/registers/complaints?channel=online").json()["count"] == 1
    assert ws.client("hn_finance").post(f"/api/v1/hospital/registers/complaints/{cid}/start").status_code == 403
    assert vbp.get("/api/v1/hospital/registers/complaints-export").status_code == 200
