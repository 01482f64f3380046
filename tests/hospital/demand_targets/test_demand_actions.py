"""Demand reporting (R-H2; XJ 五(二)1): suggestion from history, adjustments, comments, approval, lock, export."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import pytest
from openpyxl import load_workbook

from jicai.core.models import AuditEntry
from jicai.core.tenancy import ScopeError, system_scope, use_scope
from jicai.hospital.common import WorkflowError
from jicai.hospital.demand import actions, export, queries
from jicai.hospital.models import DemandComment, DemandLine, DemandPlan, DemandStatus
from tests.hospital.demand_targets.conftest import HN, ROUND, UNTIL, WS

pytestmark = pytest.mark.django_db


def create(ws: WS, who: str = "hn_pharmacy", **kw: Any) -> DemandPlan:
    kw.setdefault("history_months", 12)
    kw.setdefault("until", UNTIL)
    return actions.do_create_plan(ws.scope(who), batch_code=ROUND, **kw)


def lines(plan: DemandPlan) -> dict[str, DemandLine]:
    with system_scope("test"):
        return {ln.item.item_code: ln for ln in DemandLine.objects.filter(plan=plan).select_related("item")}


def status(plan: DemandPlan) -> str:
    with system_scope("test"):
        return DemandPlan.objects.get(pk=plan.pk).status  # type: ignore[no-any-return]


# --- the suggestion ---------------------------------------------------------------------------------


def test_suggestion_per_item_from_the_hospitals_own_history(ws: WS, demand_round: Any) -> None:
    # when the pharmacy creates the report for round HN-N9 (12 months: 2022-01 … 2022-12)
    plan = create(ws)
    # then the window is the 12 whole months before the round, and there is one line per item
    assert (str(plan.history_from), str(plan.history_to), plan.status) == ("2022-01-01", "2022-12-31", "draft")
    got = lines(plan)
    assert set(got) == {"B01", "B02", "B03"}
    b01 = got["B01"]
    # B01: 100 + 10t (selected + same generic × 2; substitutes, 三亚 and 2023 not counted) → 3,300
    assert b01.suggested_qty == Decimal(3300)
    assert b01.history_qty == Decimal(1860)  # 100 + 110 + … + 210
    assert (b01.method["method"], b01.method["slope"], b01.method["intercept"]) == ("trend", "10.0000", "100.0000")
    assert b01.method["series"]["2022-01"] == "100.0000"
    assert b01.method["series"]["2022-12"] == "210.0000"
    assert (b01.months_used, b01.months_excluded) == (12, [])
    assert b01.reported_qty == Decimal(3300)
    # B02: June (10, no purchase between the February and October purchases) is a detected shortage
    b02 = got["B02"]
    assert (b02.months_excluded, b02.method["detected"], b02.months_used) == (["2022-06"], ["2022-06"], 11)
    assert b02.suggested_qty == Decimal(1200)
    # B03: no history at all
    assert (got["B03"].suggested_qty, got["B03"].method["method"]) == (Decimal(0), "no_history")
    with system_scope("test"):
        entry = AuditEntry.objects.get(action="hospital.demand.create")
    assert entry.actor_name == "hn_pharmacy"
    assert entry.context["lines"] == {"B01": "3300", "B02": "1200", "B03": "0"}


def test_purchases_as_the_source_detect_no_shortage(ws: WS, demand_round: Any) -> None:
    plan = create(ws, source="purchases")
    got = lines(plan)
    # B01 bought 300 every month → 3,600; B02's months without an order are not shortages
    assert got["B01"].suggested_qty == Decimal(3600)
    assert (got["B02"].months_excluded, got["B02"].method["purchased"]) == ([], None)
    assert got["B02"].method["first_use"] == "2022-02"


def test_window_is_twelve_to_twenty_four_months_and_one_report_per_round(ws: WS, demand_round: Any) -> None:
    with pytest.raises(WorkflowError, match="12–24"):
        create(ws, history_months=6)
    with pytest.raises(WorkflowError, match="用量来源"):
        create(ws, source="guess")
    create(ws)
    with pytest.raises(WorkflowError, match="已有"):
        create(ws, who="hn_vbp")


def test_marked_shortage_months_recompute_the_line(ws: WS, demand_round: Any) -> None:
    plan = create(ws)
    b02 = lines(plan)["B02"]
    # when the pharmacy marks March as a shortage month too (use 100 there: the line stays flat at 100)
    line = actions.do_mark_shortage(ws.scope("hn_pharmacy"), b02.pk, months=["2022-03"], note="断供证明 2022-03")
    # then March is marked, June still detected, and 10 months of 100 give 1,200
    assert (line.months_excluded, line.months_used, line.suggested_qty) == (["2022-03", "2022-06"], 10, Decimal(1200))
    assert (line.method["marked"], line.method["detected"]) == (["2022-03"], ["2022-06"])
    with system_scope("test"):
        entry = AuditEntry.objects.get(action="hospital.demand.shortage")
    assert (entry.old["marked"], entry.new["marked"]) == ([], ["2022-03"])
    assert entry.new["months_excluded"] == ["2022-03", "2022-06"]
    with pytest.raises(WorkflowError, match="不在历史区间"):
        actions.do_mark_shortage(ws.scope("hn_pharmacy"), b02.pk, months=["2021-05"])
    with pytest.raises(WorkflowError, match="YYYY-MM"):
        actions.do_mark_shortage(ws.scope("hn_pharmacy"), b02.pk, months=["March"])


# --- adjustments ----------------------------------------------------------------------------------


def test_pharmacy_adjusts_with_a_reason_and_every_change_is_audited(ws: WS, demand_round: Any) -> None:
    plan = create(ws)
    b01 = lines(plan)["B01"]
    scope = ws.scope("hn_pharmacy")
    line = actions.do_adjust_line(scope, b01.pk, qty="3500", reason="guideline", note="2023 版血脂指南")
    assert (line.adjusted_qty, line.reported_qty, line.reason) == (Decimal(3500), Decimal(3500), "guideline")
    with system_scope("test"):
        entry = AuditEntry.objects.get(action="hospital.demand.adjust")
    assert (entry.old["adjusted_qty"], entry.new["adjusted_qty"], entry.new["reason"]) == (None, "3500", "guideline")
    # a quantity needs a reason; "other" needs a note; whole units ≥ 0 only
    with pytest.raises(WorkflowError, match="调整原因"):
        actions.do_adjust_line(scope, b01.pk, qty=3600)
    with pytest.raises(WorkflowError, match="其他"):
        actions.do_adjust_line(scope, b01.pk, qty=3600, reason="other")
    for bad in ("12.5", "-1", "abc"):
        with pytest.raises(WorkflowError, match="申报量"):
            actions.do_adjust_line(scope, b01.pk, qty=bad, reason="insurance")
    # clearing the adjustment goes back to the suggestion
    cleared = actions.do_adjust_line(scope, b01.pk, qty=None)
    assert (cleared.adjusted_qty, cleared.reported_qty, cleared.reason) == (None, Decimal(3300), "")


@pytest.mark.parametrize("who", ["hn_lead", "hn_med", "hn_head", "hn_admin"])
def test_only_pharmacy_and_the_vbp_office_adjust(ws: WS, demand_round: Any, who: str) -> None:
    b01 = lines(create(ws))["B01"]
    with pytest.raises(ScopeError):
        actions.do_adjust_line(ws.scope(who), b01.pk, qty=1, reason="guideline")


def test_another_hospital_cannot_reach_the_line(ws: WS, demand_round: Any) -> None:
    b01 = lines(create(ws))["B01"]
    with pytest.raises(DemandLine.DoesNotExist):
        actions.do_adjust_line(ws.scope("hn2_pharmacy"), b01.pk, qty=1, reason="guideline")


# --- comments -------------------------------------------------------------------------------------


def test_clinicians_comment_on_lines(ws: WS, demand_round: Any) -> None:
    b01 = lines(create(ws))["B01"]
    head = actions.do_comment(ws.scope("hn_head"), b01.pk, text="心内科明年床位增加，建议上调 10%")
    med = actions.do_comment(ws.scope("hn_med"), b01.pk, text="同意")
    assert (head.department_id, med.department_id) == (ws.hn_dept.pk, None)
    with use_scope(ws.scope("hn_head2")):  # another department of the hospital reads the comments too
        assert DemandComment.objects.filter(line_id=b01.pk).count() == 2
    with system_scope("test"):
        assert AuditEntry.objects.filter(action="hospital.demand.comment", actor_name="hn_head").count() == 1
    with pytest.raises(WorkflowError, match="请填写"):
        actions.do_comment(ws.scope("hn_med"), b01.pk, text="  ")
    # pharmacy drafts the report; it does not comment on it
    with pytest.raises(ScopeError):
        actions.do_comment(ws.scope("hn_pharmacy"), b01.pk, text="x")


# --- the workflow ---------------------------------------------------------------------------------


def test_submit_approve_lock(ws: WS, demand_round: Any) -> None:
    plan = create(ws)
    b01 = lines(plan)["B01"]
    actions.do_submit(ws.scope("hn_vbp"), plan.pk)
    assert status(plan) == DemandStatus.PENDING
    # pending: lines are frozen, comments still welcome
    with pytest.raises(WorkflowError, match="不能再修改"):
        actions.do_adjust_line(ws.scope("hn_pharmacy"), b01.pk, qty=1, reason="guideline")
    actions.do_comment(ws.scope("hn_med"), b01.pk, text="可以")
    # only leadership approves
    for who in ("hn_pharmacy", "hn_vbp", "hn_med", "hn_head"):
        with pytest.raises(ScopeError):
            actions.do_approve(ws.scope(who), plan.pk)
    approved = actions.do_approve(ws.scope("hn_lead"), plan.pk, note="同意上报")
    assert (approved.status, approved.approved_by_id) == (DemandStatus.APPROVED, ws.user("hn_lead").pk)
    with system_scope("test"):
        entry = AuditEntry.objects.get(action="hospital.demand.approve")
    assert (entry.actor_name, entry.old["status"], entry.new["status"], entry.context) == (
        "hn_lead",
        "pending",
        "approved",
        {"note": "同意上报"},
    )
    # leadership does not lock; the VBP office does
    with pytest.raises(ScopeError):
        actions.do_lock(ws.scope("hn_lead"), plan.pk)
    actions.do_lock(ws.scope("hn_vbp"), plan.pk)
    assert status(plan) == DemandStatus.LOCKED
    # locked: nothing changes
    with pytest.raises(WorkflowError):
        actions.do_comment(ws.scope("hn_med"), b01.pk, text="晚了")
    with pytest.raises(WorkflowError):
        actions.do_mark_shortage(ws.scope("hn_pharmacy"), b01.pk, months=[])
    with pytest.raises(WorkflowError, match="不能执行"):
        actions.do_submit(ws.scope("hn_pharmacy"), plan.pk)


def test_leadership_sends_back_with_a_note(ws: WS, demand_round: Any) -> None:
    plan = create(ws)
    with pytest.raises(WorkflowError, match="不能执行"):
        actions.do_approve(ws.scope("hn_lead"), plan.pk)  # not submitted yet
    actions.do_submit(ws.scope("hn_pharmacy"), plan.pk)
    with pytest.raises(WorkflowError, match="说明原因"):
        actions.do_return(ws.scope("hn_lead"), plan.pk, note="")
    back = actions.do_return(ws.scope("hn_lead"), plan.pk, note="B01 请结合指南复核")
    assert (back.status, back.note, back.submitted_by_id) == (DemandStatus.DRAFT, "B01 请结合指南复核", None)
    # and the pharmacy can edit again
    actions.do_adjust_line(ws.scope("hn_pharmacy"), lines(plan)["B01"].pk, qty=3400, reason="clinical")


def test_who_sees_which_reports(ws: WS, demand_round: Any) -> None:
    plan = create(ws)
    with pytest.raises(DemandPlan.DoesNotExist):
        queries.get_plan(ws.scope("hn2_pharmacy"), plan.pk)
    # the bureau reads submitted (locked) reports of its region only
    with pytest.raises(DemandPlan.DoesNotExist):
        queries.get_plan(ws.scope("hn_admin"), plan.pk)
    actions.do_submit(ws.scope("hn_pharmacy"), plan.pk)
    actions.do_approve(ws.scope("hn_lead"), plan.pk)
    actions.do_lock(ws.scope("hn_vbp"), plan.pk)
    assert queries.get_plan(ws.scope("hn_admin"), plan.pk).pk == plan.pk
    assert [r.plan.pk for r in queries.plan_rows(ws.scope("hn_viewer"))] == [plan.pk]
    assert queries.plan_rows(ws.scope("sx_admin")) == []
    steps = queries.allowed_steps(ws.scope("hn_admin"), plan)
    assert not any(steps.values())


# --- the submission sheet -------------------------------------------------------------------------


def test_submission_sheet_has_the_bureaus_columns(ws: WS, demand_round: Any) -> None:
    plan = create(ws)
    b01 = lines(plan)["B01"]
    actions.do_adjust_line(ws.scope("hn_pharmacy"), b01.pk, qty=3500, reason="public_health", note="流感季")
    actions.do_submit(ws.scope("hn_pharmacy"), plan.pk)
    actions.do_approve(ws.scope("hn_lead"), plan.pk)
    scope = ws.scope("hn_vbp")
    out = io.BytesIO()
    loaded = queries.get_plan(scope, plan.pk)
    assert export.write_submission(scope, loaded, out) == 3
    assert export.filename(loaded) == f"demand-{ROUND}-{HN}.xlsx"
    sheet = load_workbook(io.BytesIO(out.getvalue())).active
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0][0] == "第九批国家集采（海南）采购需求量申报表"
    assert rows[2] == list(export.HEADERS)
    assert rows[2][:3] == ["序号", "医疗机构编码", "医疗机构名称"]
    assert rows[3] == [
        1,
        HN,
        "海南省人民医院",
        "第九批国家集采（海南）",
        "B01",
        "瑞舒伐他汀钙片",
        "片剂",
        "10mg/片",
        1860,
        3300,
        3500,
        "公共卫生事件",
        "流感季",
    ]
    assert rows[6][0] == "合计"
    assert (rows[6][9], rows[6][10]) == (4500, 4700)  # 3,300 + 1,200 + 0; 3,500 + 1,200 + 0
    text = [str(r[0]) for r in rows if r and r[0]]
    assert "审批人：hn_lead" in text
    assert any(str(r[4]).startswith("审批日期：20") for r in rows if len(r) > 4 and r[4])
    # export needs demand:export (the bureau reads, it does not export)
    with pytest.raises(ScopeError):
        export.write_submission(ws.scope("hn_admin"), loaded, io.BytesIO())
