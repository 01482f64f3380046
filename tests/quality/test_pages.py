"""The quality pages: who may open what (anonymous, wrong role, wrong tenant, right role), forms and
steps through the browser's POSTs, filtered Excel exports, the import page, pinned query counts."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from jicai.core.tenancy import system_scope, use_scope
from jicai.quality.models import AdverseReaction, ClusterSignal, QualityProblem, Suspension
from tests.conftest import csv_bytes
from tests.quality.conftest import P1, P2, P3, Quality, reaction

pytestmark = pytest.mark.django_db


def three_reports(q: Quality) -> ClusterSignal:
    for n in (1, 2, 3):
        reaction(q.scope("hn_pharmacy"), n, lot="L1", is_serious=n == 3)
    with system_scope("t"):
        return ClusterSignal.objects.get(institution=q.world.hn_inst, lot_number="")


LISTS = (
    "quality:index",
    "quality:reaction_list",
    "quality:signal_list",
    "quality:suspension_list",
    "quality:problem_list",
    "quality:evaluation_list",
    "quality:scheme_list",
    "quality:substitution_items",
)


@pytest.mark.parametrize("name", LISTS)
def test_anonymous_users_are_sent_to_log_in(q: Quality, name: str) -> None:
    response = q.client(None).get(reverse(name))
    assert response.status_code == 302
    assert "/login" in response["Location"]


@pytest.mark.parametrize(
    ("user", "name", "status"),
    [
        ("hn_pharmacy", "quality:reaction_list", 200),
        ("hn_head", "quality:reaction_list", 200),
        ("hn_head", "quality:problem_list", 404),  # department heads hold no quality-problem grant
        ("hn_head", "quality:problem_create", 404),
        ("hn_vbp", "quality:reaction_create", 404),  # reads, does not write
        ("hn_vbp", "quality:reaction_import", 404),
        ("hn_leader", "quality:evaluation_create", 404),
        ("hn_pharmacy", "quality:reaction_create", 200),
        ("hn_pharmacy", "quality:reaction_import", 200),
        ("hn_pharmacy", "quality:problem_create", 200),
        ("hn_pharmacy", "quality:evaluation_create", 200),
        ("hn_pharmacy", "quality:scheme_create", 200),
        ("hn_admin", "quality:evaluation_create", 200),
        ("hn_admin", "quality:reaction_create", 404),
        ("hn_viewer", "quality:reaction_export", 404),
        ("hn_analyst", "quality:reaction_export", 200),
    ],
)
def test_pages_by_role(q: Quality, user: str, name: str, status: int) -> None:
    assert q.client(user).get(reverse(name)).status_code == status


def test_every_list_opens_for_the_pharmacy_and_the_bureau(q: Quality) -> None:
    three_reports(q)
    for user in ("hn_pharmacy", "hn_admin"):
        client = q.client(user)
        for name in LISTS:
            response = client.get(reverse(name))
            assert response.status_code == 200, (user, name)
            assert b'data-testid="quality-nav"' in response.content


def test_a_hospital_sees_only_its_reports_the_bureau_its_region(q: Quality) -> None:
    mine = reaction(q.scope("hn_pharmacy"), 1)
    theirs = reaction(q.scope("hn2_pharmacy"), 1, reaction="头痛")
    far = reaction(q.scope("sx_pharmacy"), 1, reaction="恶心")
    detail = "quality:reaction_detail"
    assert q.client("hn_pharmacy").get(reverse(detail, args=[mine.pk])).status_code == 200
    assert q.client("hn_pharmacy").get(reverse(detail, args=[theirs.pk])).status_code == 404
    assert q.client("hn_admin").get(reverse(detail, args=[theirs.pk])).status_code == 200
    assert q.client("hn_admin").get(reverse(detail, args=[far.pk])).status_code == 404
    listing = q.client("hn_admin").get(reverse("quality:reaction_list")).content.decode()
    assert mine.report_no in listing
    assert "头痛" in listing
    assert "恶心" not in listing
    assert q.client("sy_admin").get(reverse(detail, args=[mine.pk])).status_code == 404


def test_creating_a_report_through_the_form(q: Quality) -> None:
    client = q.client("hn_pharmacy")
    response = client.post(
        reverse("quality:reaction_create"),
        {
            "report_date": "2025-03-05",
            "onset_date": "2025-03-06",
            "product_code": P1,
            "reaction": "皮疹",
            "outcome": "recovered",
            "reporter": "张医生",
        },
    )
    assert response.status_code == 200  # onset after report: the form comes back with the reason
    assert "发生日期不能晚于报告日期" in response.content.decode()
    response = client.post(
        reverse("quality:reaction_create"),
        {
            "report_date": "2025-03-05",
            "onset_date": "2025-03-04",
            "product_code": P1,
            "lot_number": "L1",
            "reaction": "皮疹",
            "outcome": "recovered",
            "reporter": "张医生",
            "department": q.world.hn_dept.pk,
        },
    )
    assert response.status_code == 302
    with use_scope(q.scope("hn_pharmacy")):
        report = AdverseReaction.objects.get()
    assert response["Location"] == reverse("quality:reaction_detail", args=[report.pk])
    assert (report.department_id, report.report_no) == (q.world.hn_dept.pk, "ADR20250305-001")
    # a reader may not post
    assert q.client("hn_vbp").post(reverse("quality:reaction_create"), {}).status_code == 404


def test_a_signal_is_closed_and_use_suspended_from_its_page(q: Quality) -> None:
    signal = three_reports(q)
    page = q.client("hn_pharmacy").get(reverse("quality:signal_detail", args=[signal.pk])).content.decode()
    assert "ADR20250301-001" in page
    assert "Propose to suspend use" in page or "建议暂停使用" in page
    # the pharmacy proposes; the leadership approves on the suspensions page
    response = q.client("hn_pharmacy").post(
        reverse("quality:signal_suspend", args=[signal.pk]),
        {"reason": "群体不良事件", "effective_from": "2025-03-05", "lot_number": ""},
    )
    assert response.status_code == 302
    with use_scope(q.scope("hn_pharmacy")):
        suspension = Suspension.objects.get()
    assert suspension.status == "proposed"
    assert (
        q.client("hn_pharmacy").post(reverse("quality:suspension_decide", args=[suspension.pk, "approve"])).status_code
        == 403
    )
    assert (
        q.client("hn_leader").post(reverse("quality:suspension_decide", args=[suspension.pk, "approve"])).status_code
        == 302
    )
    with use_scope(q.scope("hn_pharmacy")):
        assert Suspension.objects.get().status == "approved"
    # closing needs a conclusion; then the signal is closed
    response = q.client("hn_pharmacy").post(reverse("quality:signal_close", args=[signal.pk]), {"conclusion": ""})
    assert response.status_code == 200
    response = q.client("hn_pharmacy").post(reverse("quality:signal_close", args=[signal.pk]), {"conclusion": "已排查"})
    assert response.status_code == 302
    with system_scope("t"):
        assert ClusterSignal.objects.get(pk=signal.pk).status == "closed"
    # another hospital cannot even open it
    assert q.client("hn2_pharmacy").get(reverse("quality:signal_detail", args=[signal.pk])).status_code == 404
    assert (
        q.client("hn2_pharmacy")
        .post(reverse("quality:signal_close", args=[signal.pk]), {"conclusion": "x"})
        .status_code
        == 404
    )


def test_detection_can_be_rerun_from_the_page(q: Quality) -> None:
    three_reports(q)
    response = q.client("hn_pharmacy").post(reverse("quality:signal_detect"), follow=True)
    assert response.status_code == 200
    with system_scope("t"):
        assert ClusterSignal.objects.count() == 2
    assert q.client("hn_vbp").post(reverse("quality:signal_detect")).status_code == 403


def test_problem_routing_from_the_detail_page(q: Quality) -> None:
    client = q.client("hn_pharmacy")
    response = client.post(
        reverse("quality:problem_create"),
        {
            "product_code": P1,
            "lot_number": "L1",
            "description": "铝塑板破损",
            "found_on": "2025-03-10",
            "reported_by": "李药师",
            "distributor": "国药控股海南有限公司",
        },
    )
    assert response.status_code == 302
    with use_scope(q.scope("hn_pharmacy")):
        problem = QualityProblem.objects.get()
    page = client.get(reverse("quality:problem_detail", args=[problem.pk])).content.decode()
    assert "国药控股海南有限公司" in page
    step = reverse("quality:problem_step", args=[problem.pk, "distributor"])
    assert client.post(step, {"distributor-on": "2025-03-11"}).status_code == 302
    resolve = reverse("quality:problem_step", args=[problem.pk, "resolve"])
    assert client.post(resolve, {"resolve-on": "2025-03-12", "resolve-resolution": ""}).status_code == 200
    assert client.post(resolve, {"resolve-on": "2025-03-12", "resolve-resolution": "退货"}).status_code == 302
    with use_scope(q.scope("hn_pharmacy")):
        assert QualityProblem.objects.get().status == "resolved"
    assert q.client("hn_vbp").post(step, {"distributor-on": "2025-03-11"}).status_code == 403
    assert q.client("hn_admin").get(reverse("quality:problem_detail", args=[problem.pk])).status_code == 200
    assert q.client("hn2_pharmacy").get(reverse("quality:problem_detail", args=[problem.pk])).status_code == 404


def test_evaluation_form_and_detail(q: Quality) -> None:
    client = q.client("hn_pharmacy")
    data = {
        "product_code": P3,
        "evaluated_on": "2025-03-10",
        "evaluator": "药学部",
        "safety": "90",
        "efficacy": "80",
        "economy": "95",
        "innovation": "40",
        "suitability": "70",
        "accessibility": "100",
    }
    response = client.post(reverse("quality:evaluation_create"), data)
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "82.50" in page
    assert "grade-B" in page


def test_scheme_form_checks_the_sum(q: Quality) -> None:
    client = q.client("hn_pharmacy")
    data = {"name": "方案", "active": "on", "safety": "30", "efficacy": "30", "economy": "20", "innovation": "10"}
    data |= {"suitability": "10", "accessibility": "10"}
    bad = client.post(reverse("quality:scheme_create"), data)
    assert bad.status_code == 200
    data["accessibility"] = "0"
    assert client.post(reverse("quality:scheme_create"), data).status_code == 302


def test_substitution_page_ranks_the_items_products(q: Quality) -> None:
    page = q.client("hn_pharmacy").get(
        reverse("quality:substitution_choices", args=[q.world.hn_item.pk]), {"as_of": "2025-03-10"}
    )
    assert page.status_code == 200
    text = page.content.decode()
    assert text.index(P1) < text.index(P3) < text.index(P2)
    assert (
        q.client("sx_pharmacy").get(reverse("quality:substitution_choices", args=[q.world.hn_item.pk])).status_code
        == 404
    )


def test_export_follows_the_filters(q: Quality) -> None:
    three_reports(q)
    response = q.client("hn_pharmacy").get(reverse("quality:reaction_export"), {"serious": "是"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(io.BytesIO(response.content))
    rows = list(book.worksheets[0].values)
    assert rows[0][:3] == ("报告编号", "医疗机构编码", "科室编码")
    assert [r[0] for r in rows[1:]] == ["ADR20250303-001"]
    csv_response = q.client("hn_pharmacy").get(reverse("quality:signal_export"), {"format": "csv"})
    assert csv_response.status_code == 200
    assert csv_response.content.decode("utf-8-sig").splitlines()[0].startswith("信号编号,机构/地区,药品编码")
    assert q.client("hn_pharmacy").get(reverse("quality:suspension_export"), {"format": "pdf"}).status_code == 404


def test_the_import_page_lists_each_problem_in_chinese(q: Quality) -> None:
    data = csv_bytes(
        "报告编号,报告日期,药品编码,不良反应描述,报告人\n"
        f"R-1,2025-03-02,{P1},皮疹,张医生\n"
        f"R-2,2025-13-02,{P1},皮疹,张医生\n"
    )
    upload = io.BytesIO(data)
    upload.name = "adr.csv"
    response = q.client("hn_pharmacy").post(reverse("quality:reaction_import"), {"file": upload})
    assert response.status_code == 200
    text = response.content.decode()
    assert 'data-testid="result"' in text
    assert "报告日期（report_date）" in text
    with use_scope(q.scope("hn_pharmacy")):
        assert AdverseReaction.objects.count() == 0


@pytest.mark.parametrize(
    "name",
    [
        "quality:reaction_list",
        "quality:signal_list",
        "quality:suspension_list",
        "quality:problem_list",
        "quality:evaluation_list",
    ],
)
def test_list_pages_take_a_fixed_number_of_queries(q: Quality, django_assert_num_queries: Any, name: str) -> None:
    from tests.quality.test_evaluations import evaluate
    from tests.quality.test_problems import problem

    def grow(n: int) -> None:
        for i in range(n):
            reaction(q.scope("hn_pharmacy"), 1 + i, lot="L1", report_no=f"R{n}-{i}")
            problem(q.scope("hn_pharmacy"), problem_no=f"Z{n}-{i}", distributor="x")
            evaluate(q.scope("hn_pharmacy"), P1, on=1 + i + 10 * (n > 3))

    client = q.client("hn_pharmacy")
    grow(3)
    client.get(reverse(name))  # warm the session and caches
    with django_assert_num_queries(QUERIES[name]):
        client.get(reverse(name))
    grow(6)
    with django_assert_num_queries(QUERIES[name]):
        client.get(reverse(name))


# session, user, count, page of rows (related rows joined) …: the same with 3 or 9 records of each
QUERIES = {
    "quality:reaction_list": 5,
    "quality:signal_list": 5,
    "quality:suspension_list": 4,
    "quality:problem_list": 5,
    "quality:evaluation_list": 5,
}


def test_decision_forms_show_only_to_who_may_decide(q: Quality) -> None:
    reaction(q.scope("hn_pharmacy"), 1)
    reaction(q.scope("hn_pharmacy"), 2)
    reaction(q.scope("hn2_pharmacy"), 3)
    with system_scope("t"):
        regional = ClusterSignal.objects.get(institution__isnull=True, lot_number="")
    url = reverse("quality:signal_detail", args=[regional.pk])
    suspend = reverse("quality:signal_suspend", args=[regional.pk])
    close = reverse("quality:signal_close", args=[regional.pk])
    # the province bureau closes the province's signal and suspends use province-wide
    page = q.client("hn_admin").get(url).content.decode()
    assert suspend in page
    assert close in page
    # the city bureau of 三亚 may suspend use in its city, not close the province's signal
    page = q.client("sy_admin").get(url).content.decode()
    assert suspend in page
    assert close not in page
    assert q.client("sy_admin").post(close, {"conclusion": "x"}).status_code == 403
    response = q.client("sy_admin").post(suspend, {"reason": "本市暂停", "effective_from": "2025-03-05"})
    assert response.status_code == 302
    with system_scope("t"):
        decided = Suspension.objects.get()
    assert (decided.region_code, decided.status, decided.signal_id) == ("460200", "approved", regional.pk)
    # a hospital may propose to suspend use in itself, not close the province's signal
    page = q.client("hn_pharmacy").get(url).content.decode()
    assert suspend in page
    assert close not in page
    # a reader sees neither
    page = q.client("hn_vbp").get(url).content.decode()
    assert suspend not in page
    assert close not in page
