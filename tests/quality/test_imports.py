"""Import and export of the quality registers through the shared engine: all-or-nothing, errors in
Chinese by line and column, re-import changes nothing, export → import is an identity."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from jicai.core.tenancy import ScopeError, system_scope, use_scope
from jicai.imports.engine import ImportDenied
from jicai.quality import credit, exports
from jicai.quality.actions import do_import_evaluations, do_import_problems, do_import_reactions
from jicai.quality.datasets import PROBLEMS_SPEC, REACTIONS_SPEC
from jicai.quality.models import AdverseReaction, ClinicalEvaluation, ClusterSignal, QualityProblem
from tests.conftest import csv_bytes
from tests.quality.conftest import HK, P1, P2, P3, SY, Quality

pytestmark = pytest.mark.django_db

REACTIONS = """报告编号,科室编码,报告日期,发生日期,药品编码,批号,不良反应描述,严重,新的,转归,报告人
R-1,NK01,2025-03-02,2025-03-01,{p1},L1,皮疹,否,是,好转,张医生
R-2,NK01,2025-03-05,2025-03-04,{p1},L1,瘙痒,否,否,痊愈,张医生
R-3,SJ01,2025-03-09,2025-03-08,{p1},L1,肝功能异常,是,否,未好转,李医生
"""


def reactions_file(text: str = REACTIONS) -> bytes:
    return csv_bytes(text.format(p1=P1, p2=P2))


def issues(result: Any) -> list[tuple[int, str, str]]:
    return [(i.line, i.column, i.code) for i in result.errors]


def test_reports_import_and_raise_a_signal(q: Quality) -> None:
    result = do_import_reactions(q.scope("hn_pharmacy"), reactions_file(), "adr.csv")
    assert (result.status, result.created, result.rejected) == ("applied", 3, 0)
    with use_scope(q.scope("hn_pharmacy")):
        r3 = AdverseReaction.objects.get(report_no="R-3")
        assert (r3.is_serious, r3.outcome, r3.department.code, r3.is_selected) == (True, "not_recovered", "SJ01", True)
    with system_scope("t"):
        found = sorted((s.lot_number, s.report_count, s.serious_count) for s in ClusterSignal.objects.all())
    assert found == [("", 3, 1), ("L1", 3, 1)]
    # re-importing the same file changes nothing, and detection adds nothing
    again = do_import_reactions(q.scope("hn_pharmacy"), reactions_file(), "adr.csv")
    assert (again.status, again.created, again.updated, again.unchanged) == ("applied", 0, 0, 3)
    with system_scope("t"):
        assert ClusterSignal.objects.count() == 2


def test_a_bad_row_rejects_the_whole_file_with_chinese_reasons(q: Quality) -> None:
    bad = (
        REACTIONS
        + "R-4,NK01,2025-02-30,,{p1},,皮疹,否,否,好转,张医生\nR-5,NK01,2025-03-02,,NOPE,,皮疹,否,否,康复了,张医生\n"
    )
    result = do_import_reactions(q.scope("hn_pharmacy"), reactions_file(bad), "adr.csv")
    assert result.status == "rejected"
    assert issues(result) == [
        (5, "report_date", "date.nonexistent"),
        (6, "outcome", "value.choice"),
    ]
    assert "不是可选值" in result.errors[1].message_zh
    with use_scope(q.scope("hn_pharmacy")):
        assert AdverseReaction.objects.count() == 0
    # fixing the outcome reveals the unknown product on the same line
    fixed = bad.replace("2025-02-30", "2025-02-28").replace("康复了", "痊愈")
    result = do_import_reactions(q.scope("hn_pharmacy"), reactions_file(fixed), "adr.csv")
    assert issues(result) == [(6, "product_code", "reference.unknown")]
    assert "未知的药品编码" in result.errors[0].message_zh


def test_row_rules_onset_after_report_and_other_institutions(q: Quality) -> None:
    text = (
        "报告编号,医疗机构编码,报告日期,发生日期,药品编码,不良反应描述,报告人\n"
        f"R-1,{HK},2025-03-02,2025-03-03,{P1},皮疹,张医生\n"
        f"R-2,{SY},2025-03-02,,{P1},皮疹,张医生\n"
        f"R-3,{HK},2025-03-02,,{P1},皮疹,张医生\n"
        f"R-3,{HK},2025-03-02,,{P2},皮疹,张医生\n"
    )
    result = do_import_reactions(q.scope("hn_pharmacy"), csv_bytes(text), "adr.csv")
    assert issues(result) == [
        (2, "onset_date", "date.order"),
        (3, "institution_code", "scope.institution"),
        (5, "report_no", "row.duplicate_key"),
    ]
    assert result.errors[1].message_zh == f"只能导入本机构（{HK}）的记录"


def test_missing_required_columns_are_named(q: Quality) -> None:
    result = do_import_reactions(q.scope("hn_pharmacy"), csv_bytes("报告编号,药品编码\nR-1,X"), "adr.csv")
    assert [(i.line, i.column) for i in result.errors] == [(1, "report_date"), (1, "reaction"), (1, "reporter")]
    assert "缺少必需的列“报告日期”" in result.errors[0].message_zh


def test_import_needs_the_import_grant(q: Quality) -> None:
    for user in ("hn_vbp", "hn_head", "hn_admin"):
        with pytest.raises(ImportDenied):
            do_import_reactions(q.scope(user), reactions_file(), "adr.csv")


def test_export_then_import_is_an_identity(q: Quality) -> None:
    pharmacy = q.scope("hn_pharmacy")
    do_import_reactions(pharmacy, reactions_file(), "adr.csv")
    with use_scope(pharmacy):
        objects = list(REACTIONS_SPEC.export_queryset(pharmacy))
    for fmt in ("xlsx", "csv"):
        data = exports.write(fmt, "adr", exports.spec_columns(REACTIONS_SPEC), objects, spec=REACTIONS_SPEC)
        result = do_import_reactions(pharmacy, data, f"adr.{fmt}")
        assert (result.status, result.created, result.updated, result.unchanged) == ("applied", 0, 0, 3), issues(result)


def test_problems_import_uses_the_facts_and_tells_the_credit_file(q: Quality, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.quality.test_problems import purchases

    purchases()
    told: list[str] = []
    monkeypatch.setattr(credit, "quality_problem_credit_event", lambda acting, p: told.append(p.problem_no) or "")
    text = (
        "问题编号,药品编码,批号,问题描述,发现日期,报告人,需报告药监部门\n"
        f"ZL-1,{P1},L1,铝塑板破损,2025-03-10,李药师,否\n"
        f"ZL-2,{P2},L2,片剂变色,2025-03-11,李药师,是\n"
    )
    result = do_import_problems(q.scope("hn_pharmacy"), csv_bytes(text), "problems.csv")
    assert (result.status, result.created) == ("applied", 2)
    with use_scope(q.scope("hn_pharmacy")):
        got = {p.problem_no: (p.distributor, p.needs_regulator, p.status) for p in QualityProblem.objects.all()}
    assert got == {
        "ZL-1": ("九州通医药集团海南有限公司", False, "open"),
        "ZL-2": ("", True, "open"),
    }
    assert sorted(told) == ["ZL-1", "ZL-2"]
    # re-import: nothing created, nothing told again
    do_import_problems(q.scope("hn_pharmacy"), csv_bytes(text), "problems.csv")
    assert sorted(told) == ["ZL-1", "ZL-2"]
    # and the export imports back unchanged (its status column is for reading only)
    with use_scope(q.scope("hn_pharmacy")):
        objects = list(PROBLEMS_SPEC.export_queryset(q.scope("hn_pharmacy")))
    data = exports.write("xlsx", "p", exports.spec_columns(PROBLEMS_SPEC), objects, spec=PROBLEMS_SPEC)
    again = do_import_problems(q.scope("hn_pharmacy"), data, "p.xlsx")
    assert (again.status, again.unchanged) == ("applied", 2), issues(again)


HEADER = "药品编码,评价日期,评价方案,安全性得分,有效性得分,经济性得分,创新性得分,适宜性得分,可及性得分,综合得分"
EVALUATIONS = (
    HEADER
    + """,评价人
{p1},2025-03-10,,90,80,95,40,70,100,82.5,药学部
{p3},2025-03-10,,100,80,95,40,70,100,80,药学部
"""
)


def test_evaluations_import_computes_totals_and_warns_on_a_wrong_one(q: Quality) -> None:
    result = do_import_evaluations(q.scope("hn_pharmacy"), csv_bytes(EVALUATIONS.format(p1=P1, p3=P3)), "e.csv")
    assert (result.status, result.created) == ("applied", 2)
    # P3: 82.50 + 10×25/100 = 85.00 — the file's 80 is corrected, with a note
    assert [(w.line, w.column, w.code) for w in result.warnings] == [(3, "total", "total.recomputed")]
    assert "85.00" in result.warnings[0].message_zh
    with use_scope(q.scope("hn_pharmacy")):
        got = {e.product.code: (e.total, e.grade, e.owner_code) for e in ClinicalEvaluation.objects.all()}
    assert got == {P1: (Decimal("82.50"), "B", HK), P3: (Decimal("85.00"), "A", HK)}


def test_evaluation_rows_are_checked_cell_by_cell(q: Quality) -> None:
    text = (
        EVALUATIONS.format(p1=P1, p3=P3)
        .replace(",,100,80,95", ",,100.5,80,95")
        .replace(f"{P1},2025-03-10,,", f"{P1},2025-03-10,没有的方案,")
    )
    result = do_import_evaluations(q.scope("hn_pharmacy"), csv_bytes(text), "e.csv")
    assert result.status == "rejected"
    assert issues(result) == [(2, "scheme", "reference.unknown"), (3, "safety", "score.range")]
    assert result.errors[1].message_zh == "得分应在 0 到 100 之间"


def test_a_bureau_imports_region_wide_evaluations_only(q: Quality) -> None:
    data = csv_bytes(EVALUATIONS.format(p1=P1, p3=P3))
    result = do_import_evaluations(q.scope("hn_admin"), data, "e.csv")
    assert (result.status, result.created) == ("applied", 2)
    with system_scope("t"):
        assert set(ClinicalEvaluation.objects.values_list("owner_code", flat=True)) == {"460000"}
    hospital = csv_bytes(("医疗机构编码," + EVALUATIONS.replace("\n{", f"\n{HK},{{")).format(p1=P1, p3=P3))
    refused = do_import_evaluations(q.scope("hn_admin"), hospital, "e.csv")
    assert [i.code for i in refused.errors] == ["scope.owner", "scope.owner"]


def test_hospital_scope_guard_on_existing_rows(q: Quality) -> None:
    do_import_reactions(q.scope("hn_pharmacy"), reactions_file(), "adr.csv")
    # the other hospital using the same report numbers makes its own records
    result = do_import_reactions(
        q.scope("hn2_pharmacy"), reactions_file(REACTIONS.replace("NK01", "").replace("SJ01", "")), "adr.csv"
    )
    assert (result.status, result.created) == ("applied", 3), issues(result)
    with system_scope("t"):
        assert AdverseReaction.objects.count() == 6


def test_department_heads_cannot_import(q: Quality) -> None:
    with pytest.raises(ScopeError):
        do_import_reactions(q.scope("hn_head"), reactions_file(), "adr.csv")


def test_a_closed_problem_imports_back_unchanged_but_cannot_be_changed(q: Quality) -> None:
    from jicai.quality.actions import do_close_problem
    from tests.quality.test_problems import problem

    pharmacy = q.scope("hn_pharmacy")
    closed = do_close_problem(pharmacy, problem(pharmacy, problem_no="ZL-1", distributor="甲").pk, reason="重复")
    with use_scope(pharmacy):
        objects = list(PROBLEMS_SPEC.export_queryset(pharmacy))
    data = exports.write("csv", "p", exports.spec_columns(PROBLEMS_SPEC), objects, spec=PROBLEMS_SPEC)
    same = do_import_problems(pharmacy, data, "p.csv")
    assert (same.status, same.unchanged) == ("applied", 1), issues(same)
    changed = do_import_problems(pharmacy, data.replace("铝塑板破损".encode(), "改了".encode()), "p.csv")
    assert issues(changed) == [(2, "problem_no", "problem.final")]
    with use_scope(pharmacy):
        assert QualityProblem.objects.get(pk=closed.pk).description == "铝塑板破损"
