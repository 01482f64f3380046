"""Progress feedback and appraisal (R-H4, R-H5): board, reminders, inbox, sheets, scores — and who may act."""

from __future__ import annotations

import io
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from django.core import mail
from openpyxl import load_workbook

from jicai.core.audit import AuditEntry
from jicai.core.tenancy import ScopeError, system_scope
from jicai.hospital.common import WorkflowError
from jicai.hospital.feedback import actions, queries
from jicai.hospital.models import AppraisalScore, Notification, ProgressSheet
from jicai.policy.appraisal import round2

from .conftest import AS_OF, D

pytestmark = pytest.mark.django_db


def _audit(action: str) -> list[Any]:
    with system_scope("test"):
        return list(AuditEntry.objects.filter(action=action).order_by("seq"))


# ------------------------------------------------------------------------------------------ board


def test_board_ranks_departments_by_weighted_completion(hospital: Any) -> None:
    # given targets A01 7,500 / 2,500 and A02 1,000 / 1,000 derived from history (conftest)
    board = queries.board(hospital.scope("hn_vbp"), as_of=AS_OF)
    # then SJ01 (1,700 of 3,500 = 48.57 %) ranks above NK01 (3,600 of 8,500 = 42.35 %)
    got = [(d.rank, d.code, d.target_qty, d.counted_toward_target, d.completion, d.expected) for d in board.departments]
    assert got == [
        (1, "SJ01", Decimal(3500), Decimal(1700), Decimal("0.4857"), Decimal("0.4959")),
        (2, "NK01", Decimal(8500), Decimal(3600), Decimal("0.4235"), Decimal("0.4959")),
    ]
    sj, nk = board.departments
    assert [(i.item_code, i.status) for i in nk.items] == [("A01", "behind"), ("A02", "on_track")]
    assert [(i.item_code, i.status) for i in sj.items] == [("A01", "on_track"), ("A02", "at_risk")]
    # the department's status is its worst item's; both are behind on one item
    assert (nk.status, sj.status) == ("behind", "at_risk")
    assert [d.code for d in board.behind] == ["SJ01", "NK01"]
    assert board.batches == [("HN-N7", "第七批国家集采（海南）")]


def test_board_filters_by_batch(hospital: Any) -> None:
    assert queries.board(hospital.scope("hn_vbp"), as_of=AS_OF, batch="SX-N7").departments == []


def test_department_head_sees_only_their_department(hospital: Any) -> None:
    board = queries.board(hospital.scope("hn_head"), as_of=AS_OF)
    assert [d.code for d in board.departments] == ["NK01"]
    assert board.departments[0].dispensed_qty == Decimal(3600)


def test_other_hospital_sees_its_own_board(hospital: Any) -> None:
    board = queries.board(hospital.scope("hn2_vbp"), as_of=AS_OF)
    assert board.institution.code == "H46020000002"
    assert board.departments == []


def test_pharmacy_may_read_the_board_but_not_remind(hospital: Any) -> None:
    assert queries.board(hospital.scope("hn_pharmacy"), as_of=AS_OF).departments
    with pytest.raises(ScopeError):
        actions.do_send_reminders(hospital.scope("hn_pharmacy"), as_of=AS_OF)


# -------------------------------------------------------------------------------------- reminders


def test_reminders_go_to_each_department_behind_with_its_figures(hospital: Any) -> None:
    sent = actions.do_send_reminders(hospital.scope("hn_vbp"), as_of=AS_OF, note="请于月底前完成。")
    assert sorted(n.department.code for n in sent) == ["NK01", "SJ01"]
    nk = next(n for n in sent if n.department.code == "NK01")
    assert nk.title == "集采任务进度提醒：心内科（截至 2023-04-30）"
    assert "完成率 42.4%，时间进度 49.6%，有 1 个品种进度滞后" in nk.body
    assert "阿托伐他汀钙片（HN-N7 A01）：任务量 7,500片，已使用 3,000，完成率 40.0%" in nk.body
    assert nk.body.endswith("请于月底前完成。")
    assert nk.link == "/hospital/feedback/?as_of=2023-04-30"
    assert [i["item_code"] for i in nk.data["items_behind"]] == ["A01"]
    assert nk.emailed_to == []
    assert len(_audit("feedback.remind")) == 2
    assert mail.outbox == []


def test_reminders_to_chosen_departments_only(hospital: Any) -> None:
    sent = actions.do_send_reminders(hospital.scope("hn_medical"), as_of=AS_OF, departments=["SJ01", "XX99"])
    assert [n.department.code for n in sent] == ["SJ01"]


def test_reminders_are_refused_when_nobody_is_behind(hospital: Any) -> None:
    # before the agreement year nobody can be behind
    with pytest.raises(WorkflowError) as err:
        actions.do_send_reminders(hospital.scope("hn_vbp"), as_of=D(2022, 10, 31))
    assert err.value.message_zh == "没有进度滞后的科室，无需提醒"


def test_reminders_by_email_to_heads_with_an_address(hospital: Any) -> None:
    with system_scope("test"):
        head = hospital.user("hn_head")
        head.email = "nk01@hospital.example"
        head.save()
    sent = actions.do_send_reminders(hospital.scope("hn_vbp"), as_of=AS_OF, email=True)
    by_dept = {n.department.code: n for n in sent}
    assert by_dept["NK01"].emailed_to == ["nk01@hospital.example"]
    assert by_dept["SJ01"].emailed_to == []
    assert by_dept["SJ01"].data["email_note"] == "科室主任没有登记电子邮箱"
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["nk01@hospital.example"]
    assert mail.outbox[0].subject.startswith("集采任务进度提醒：心内科")


def test_a_failing_mail_backend_never_fails_the_reminder(hospital: Any, monkeypatch: Any) -> None:
    with system_scope("test"):
        head = hospital.user("hn_head")
        head.email = "nk01@hospital.example"
        head.save()

    def broken(*args: Any, **kwargs: Any) -> int:
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(actions, "send_mail", broken)
    sent = actions.do_send_reminders(hospital.scope("hn_vbp"), as_of=AS_OF, email=True)
    nk = next(n for n in sent if n.department.code == "NK01")
    assert nk.emailed_to == []
    assert nk.data["email_error"] == "ConnectionRefusedError: smtp down"
    assert nk.data["email_failed_to"] == ["nk01@hospital.example"]
    with system_scope("test"):
        assert Notification.objects.count() == 2


# ------------------------------------------------------------------------------------------ inbox


def test_department_head_reads_and_marks_only_their_own(hospital: Any) -> None:
    sent = actions.do_send_reminders(hospital.scope("hn_vbp"), as_of=AS_OF)
    nk = next(n for n in sent if n.department.code == "NK01")
    sj = next(n for n in sent if n.department.code == "SJ01")
    head = hospital.scope("hn_head")
    with system_scope("t"):
        assert [n.pk for n in queries.notifications(head)] == [nk.pk]
    assert queries.unread_count(head) == 1
    assert queries.unread_count(hospital.scope("hn_head2")) == 1
    assert queries.unread_count(hospital.scope("hn_vbp")) == 0  # staff send, departments receive
    # another department's notification is unknown to this head
    with pytest.raises(Notification.DoesNotExist):
        actions.do_mark_read(head, sj.pk)
    read = actions.do_mark_read(head, nk.pk)
    assert read.read_at is not None
    assert queries.unread_count(head) == 0
    assert actions.do_mark_read(head, nk.pk).read_at == read.read_at  # idempotent
    assert len(_audit("feedback.read")) == 1
    # staff do not mark the departments' messages read
    with pytest.raises(WorkflowError):
        actions.do_mark_read(hospital.scope("hn_vbp"), sj.pk)


def test_other_hospitals_never_see_the_notifications(hospital: Any) -> None:
    sent = actions.do_send_reminders(hospital.scope("hn_vbp"), as_of=AS_OF)
    with system_scope("t"):
        assert list(queries.notifications(hospital.scope("hn2_vbp"))) == []
    assert sent


# ----------------------------------------------------------------------------------------- sheets


def test_publish_a_sheet_and_export_it(hospital: Any) -> None:
    sheet = actions.do_publish_sheet(hospital.scope("hn_vbp"), as_of=AS_OF)
    assert sheet.title == "集采任务科室进度公示（截至 2023-04-30）"
    assert [r["department_code"] for r in sheet.rows] == ["SJ01", "NK01"]
    assert sheet.rows[1]["completion"] == "0.4235"
    # department heads see the published sheet (all departments: it is a public notice)
    assert queries.sheet(hospital.scope("hn_head"), sheet.pk) is not None
    assert queries.sheet(hospital.scope("hn2_vbp"), sheet.pk) is None
    data = queries.sheet_workbook(hospital.scope("hn_vbp"), sheet)
    ws = load_workbook(io.BytesIO(data)).active
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][0] == "集采任务科室进度公示（截至 2023-04-30）（数据截至 2023-04-30）"
    assert rows[1][:3] == ("排名", "科室编码", "科室")
    assert rows[2][:7] == (1, "SJ01", "神经内科", "HN-N7", "A01", "阿托伐他汀钙片", 2500)
    assert rows[2][10] == "进度正常"
    # a department head may read but not export
    with pytest.raises(ScopeError):
        queries.sheet_workbook(hospital.scope("hn_head"), sheet)


def test_only_publishers_publish_sheets(hospital: Any) -> None:
    for key in ("hn_medical", "hn_pharmacy", "hn_head", "hn_leader"):
        with pytest.raises(ScopeError):
            actions.do_publish_sheet(hospital.scope(key), as_of=AS_OF)
    sheet = actions.do_publish_sheet(hospital.scope("hn_perf"), as_of=AS_OF, title="四月公示")
    assert sheet.title == "四月公示"
    assert _audit("feedback.publish_sheet")[0].actor_name == "hn_perf"
    with system_scope("t"):
        assert ProgressSheet.objects.count() == 1


def test_an_empty_board_is_not_published(hospital: Any) -> None:
    with pytest.raises(WorkflowError):
        actions.do_publish_sheet(hospital.scope("hn_vbp"), as_of=AS_OF, batch="SX-N7")


# -------------------------------------------------------------------------------------- appraisal

WEIGHTS = {"completion": "60", "selected_share": "25", "substitute_control": "15"}


def test_scheme_weights_must_sum_to_100(hospital: Any) -> None:
    with pytest.raises(WorkflowError) as err:
        actions.do_create_scheme(hospital.scope("hn_perf"), name="A", weights={"completion": "60"})
    assert err.value.message_zh == "各项权重之和须为 100%（现为 60%）"
    scheme = actions.do_create_scheme(hospital.scope("hn_perf"), name="2023 考核", weights=WEIGHTS)
    assert scheme.weights == WEIGHTS
    with pytest.raises(ScopeError):
        actions.do_create_scheme(hospital.scope("hn_pharmacy"), name="B", weights=WEIGHTS)


def test_scores_by_hand(hospital: Any) -> None:
    # given the 60 / 25 / 15 scheme, scored for April 2023
    scheme = actions.do_create_scheme(hospital.scope("hn_perf"), name="2023", weights=WEIGHTS)
    done, skipped = actions.do_compute_scores(hospital.scope("hn_perf"), scheme.pk, period="2023-04")
    assert skipped == []
    got = {s.department.code: s for s in done}
    # NK01: completion (3,600 / 8,500) ÷ 0.4959 → 85.41; April: 400 selected, 900 + 400 non-selected,
    # 200 substitutes → selected share 400 / 1,700 = 23.53; substitutes 1 − 200 / 1,900 = 89.47
    completion = 100 * Fraction(3600, 8500) / Fraction("0.4959")
    total = (60 * completion + 25 * 100 * Fraction(400, 1700) + 15 * 100 * (1 - Fraction(200, 1900))) / 100
    nk = got["NK01"]
    assert nk.score == round2(total) == Decimal("70.55")
    assert {k: nk.components[k] for k in WEIGHTS} == {
        "completion": "85.41",
        "selected_share": "23.53",
        "substitute_control": "89.47",
    }
    assert nk.components["figures"]["non_selected_qty"] == "1300.0000"
    # SJ01: (1,700 / 3,500) ÷ 0.4959 → 97.95; nothing but selected in April → 100, 100
    assert got["SJ01"].score == Decimal("98.77")
    assert not nk.published
    # department heads do not see unpublished scores
    with system_scope("t"):
        assert list(queries.scores(hospital.scope("hn_head"))) == []


def test_an_exception_changes_the_shares(hospital: Any) -> None:
    from jicai.hospital.control.actions import do_record_exception

    do_record_exception(
        hospital.scope("hn_medical"),
        product_code=hospital.cef_ns.code,
        department_code="NK01",
        patient_key="P1",
        reason="failed_therapy",
        valid_from=D(2023, 4, 1),
        valid_until=D(2023, 4, 30),
    )
    scheme = actions.do_create_scheme(hospital.scope("hn_perf"), name="2023", weights=WEIGHTS)
    done, _ = actions.do_compute_scores(hospital.scope("hn_perf"), scheme.pk, period="2023-04")
    nk = next(s for s in done if s.department.code == "NK01")
    # patient P1's 250 are justified: non-selected 900 + 150 → 400 / 1,450 = 27.59
    assert nk.components["selected_share"] == "27.59"
    assert nk.score == Decimal("71.32")


def test_publish_scores_then_heads_see_their_own(hospital: Any) -> None:
    scheme = actions.do_create_scheme(hospital.scope("hn_perf"), name="2023", weights=WEIGHTS)
    actions.do_compute_scores(hospital.scope("hn_perf"), scheme.pk, period="2023-04")
    with pytest.raises(ScopeError):
        actions.do_publish_scores(hospital.scope("hn_medical"), scheme.pk, period="2023-04")
    assert actions.do_publish_scores(hospital.scope("hn_perf"), scheme.pk, period="2023-04") == 2
    with system_scope("t"):
        mine = list(queries.scores(hospital.scope("hn_head")))
        assert [(s.department.code, s.score) for s in mine] == [("NK01", Decimal("70.55"))]
        assert list(queries.scores(hospital.scope("hn2_vbp"))) == []
    # published scores are frozen: no recompute, no new weights
    with pytest.raises(WorkflowError):
        actions.do_compute_scores(hospital.scope("hn_perf"), scheme.pk, period="2023-04")
    with pytest.raises(WorkflowError) as err:
        actions.do_update_scheme(hospital.scope("hn_perf"), scheme.pk, weights={"completion": "100"})
    assert "已有发布的考核分" in err.value.message_zh
    assert actions.do_update_scheme(hospital.scope("hn_perf"), scheme.pk, name="2023 年度").name == "2023 年度"
    assert len(_audit("feedback.publish_score")) == 2


def test_recompute_before_publishing_updates_in_place(hospital: Any) -> None:
    scheme = actions.do_create_scheme(hospital.scope("hn_perf"), name="2023", weights=WEIGHTS)
    actions.do_compute_scores(hospital.scope("hn_perf"), scheme.pk, period="2023-04")
    actions.do_update_scheme(hospital.scope("hn_perf"), scheme.pk, weights={"completion": "100"})
    done, _ = actions.do_compute_scores(hospital.scope("hn_perf"), scheme.pk, period="2023-04")
    with system_scope("t"):
        assert AppraisalScore.objects.count() == 2
    assert next(s for s in done if s.department.code == "NK01").score == Decimal("85.41")


def test_bad_period_and_other_tenants(hospital: Any) -> None:
    scheme = actions.do_create_scheme(hospital.scope("hn_perf"), name="2023", weights=WEIGHTS)
    with pytest.raises(WorkflowError) as err:
        actions.do_compute_scores(hospital.scope("hn_perf"), scheme.pk, period="April")
    assert "2023-Q1" in err.value.message_zh
    with pytest.raises(WorkflowError) as err:
        actions.do_compute_scores(hospital.scope("hn_perf"), scheme.pk, period="2099")
    assert err.value.message_zh == "考核期间尚未开始"
    from jicai.hospital.models import AppraisalScheme

    with pytest.raises(AppraisalScheme.DoesNotExist):
        actions.do_compute_scores(hospital.scope("hn2_vbp"), scheme.pk, period="2023-04")
