"""Quality problems (R-J1, XJ 五(八)1): the distributor from the purchase facts, routing to the
distributor and the regulator, the status machine, the credit-file hook, scope."""

from __future__ import annotations

from typing import Any

import pytest

from jicai.core.models import AuditEntry
from jicai.core.tenancy import Scope, ScopeError, system_scope, use_scope
from jicai.imports.datasets import get_spec
from jicai.imports.engine import run_import
from jicai.quality import credit
from jicai.quality.actions import (
    ProblemInput,
    do_close_problem,
    do_create_problem,
    do_resolve_problem,
    do_route_to_distributor,
    do_route_to_regulator,
    do_update_problem,
)
from jicai.quality.common import WorkflowError
from jicai.quality.models import ProblemStatus, QualityProblem
from tests.conftest import csv_bytes
from tests.quality.conftest import HK, P1, P2, SY, Quality, day

pytestmark = pytest.mark.django_db


def purchases() -> None:
    """海口 bought P1 from 国药控股 (2025-01) and later from 九州通 (2025-02); 三亚 from 海王."""
    data = csv_bytes(
        "line_id,institution_code,product_code,ordered_on,accepted_on,qty,unit_price,amount,distributor\n"
        f"Q1,{HK},{P1},2025-01-05,2025-01-08,100,0.34,34.00,国药控股海南有限公司\n"
        f"Q2,{HK},{P1},2025-02-05,2025-02-09,100,0.34,34.00,九州通医药集团海南有限公司\n"
        f"Q3,{HK},{P2},2025-02-06,2025-02-10,100,0.20,20.00,\n"
        f"Q4,{SY},{P1},2025-03-01,2025-03-03,100,0.34,34.00,海王医药海南有限公司\n"
    )
    result = run_import(get_spec("purchases"), data, "purchases.csv", Scope.system("t"))
    assert result.status == "applied", [(i.line, i.column, i.message_en) for i in result.issues]


def problem(scope: Scope, **kw: Any) -> QualityProblem:
    values: dict[str, Any] = {
        "product_code": P1,
        "description": "铝塑板破损",
        "found_on": day(10),
        "reported_by": "李药师",
        "lot_number": "L1",
    }
    values.update(kw)
    return do_create_problem(scope, ProblemInput(**values))


def test_the_distributor_is_the_one_of_the_latest_delivery(q: Quality) -> None:
    purchases()
    # 海口's latest accepted line of P1 is Q2 (2025-02-09): 九州通
    assert problem(q.scope("hn_pharmacy")).distributor == "九州通医药集团海南有限公司"
    # no distributor named for P2: left empty; a name given wins
    assert problem(q.scope("hn_pharmacy"), product_code=P2).distributor == ""
    assert problem(q.scope("hn_pharmacy"), distributor="指定配送").distributor == "指定配送"
    # 三亚's own facts only
    assert problem(q.scope("hn2_pharmacy")).distributor == "海王医药海南有限公司"


def test_routing_to_the_distributor_then_the_regulator_then_resolved(q: Quality) -> None:
    purchases()
    pharmacy = q.scope("hn_pharmacy")
    p = problem(pharmacy, problem_no="ZL-1")
    assert (p.status, p.problem_no) == (ProblemStatus.OPEN, "ZL-1")
    p = do_route_to_distributor(pharmacy, p.pk, on=day(11), reply="同意退换")
    assert (p.status, p.distributor, p.distributor_notified_on) == (
        ProblemStatus.WITH_DISTRIBUTOR,
        "九州通医药集团海南有限公司",
        day(11),
    )
    with pytest.raises(WorkflowError):
        do_route_to_regulator(pharmacy, p.pk, reference="")
    p = do_route_to_regulator(pharmacy, p.pk, reference="琼药监〔2025〕12号", on=day(12))
    assert (p.status, p.needs_regulator, p.regulator_reference) == (
        ProblemStatus.WITH_REGULATOR,
        True,
        "琼药监〔2025〕12号",
    )
    with pytest.raises(WorkflowError):
        do_route_to_distributor(pharmacy, p.pk)  # no going back
    p = do_resolve_problem(pharmacy, p.pk, resolution="整批退货", on=day(20))
    assert (p.status, p.resolved_on) == (ProblemStatus.RESOLVED, day(20))
    with pytest.raises(WorkflowError):
        do_close_problem(pharmacy, p.pk, reason="x")  # final
    with pytest.raises(WorkflowError):
        do_update_problem(pharmacy, p.pk, ProblemInput(P1, "改", day(10), "李药师"))
    with system_scope("t"):
        actions = list(
            AuditEntry.objects.filter(model="quality.QualityProblem", object_pk=str(p.pk))
            .order_by("seq")
            .values_list("action", flat=True)
        )
    assert actions == ["create", "credit_event", "route_distributor", "route_regulator", "resolve"]


def test_a_flagged_problem_must_reach_the_regulator_before_it_is_resolved(q: Quality) -> None:
    pharmacy = q.scope("hn_pharmacy")
    p = problem(pharmacy, needs_regulator=True, distributor="国药控股海南有限公司")
    do_route_to_distributor(pharmacy, p.pk)
    with pytest.raises(WorkflowError):
        do_resolve_problem(pharmacy, p.pk, resolution="退货")
    # an unflagged one may be resolved with the distributor alone
    other = problem(pharmacy, distributor="国药控股海南有限公司")
    do_route_to_distributor(pharmacy, other.pk)
    assert do_resolve_problem(pharmacy, other.pk, resolution="换货").status == ProblemStatus.RESOLVED


def test_routing_needs_a_distributor_name(q: Quality) -> None:
    pharmacy = q.scope("hn_pharmacy")
    p = problem(pharmacy, product_code=P2)  # no facts at all: no distributor
    with pytest.raises(WorkflowError) as info:
        do_route_to_distributor(pharmacy, p.pk)
    assert info.value.field == "distributor"
    assert do_route_to_distributor(pharmacy, p.pk, distributor="某配送企业").distributor == "某配送企业"


def test_closing_without_resolution(q: Quality) -> None:
    p = problem(q.scope("hn_pharmacy"))
    with pytest.raises(WorkflowError):
        do_close_problem(q.scope("hn_pharmacy"), p.pk, reason="")
    p = do_close_problem(q.scope("hn_pharmacy"), p.pk, reason="重复登记", on=day(12))
    assert (p.status, p.resolution) == (ProblemStatus.CLOSED, "重复登记")


def test_who_registers_and_who_sees(q: Quality) -> None:
    p = problem(q.scope("hn_pharmacy"))
    problem(q.scope("hn_medical"), lot_number="L2")
    for user in ("hn_vbp", "hn_leader", "hn_head", "hn_admin"):
        with pytest.raises(ScopeError):
            problem(q.scope(user))
    seen = {}
    for user in ("hn_pharmacy", "hn_vbp", "hn2_pharmacy", "hn_admin", "sy_admin", "sx_admin", "hn_head"):
        with use_scope(q.scope(user)):
            seen[user] = QualityProblem.objects.count()
    assert seen == {
        "hn_pharmacy": 2,
        "hn_vbp": 2,
        "hn2_pharmacy": 0,
        "hn_admin": 2,
        "sy_admin": 0,
        "sx_admin": 0,
        "hn_head": 2,  # the rows are the hospital's; department heads hold no read grant (pages and API refuse)
    }
    with pytest.raises(QualityProblem.DoesNotExist):
        do_route_to_distributor(q.scope("hn2_pharmacy"), p.pk, distributor="x")


def test_the_credit_hook_is_called_and_its_reference_kept(q: Quality, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []

    def record(acting: Scope, problem: QualityProblem) -> str:
        calls.append((acting.label, problem.problem_no))
        return "CREDIT-7"

    monkeypatch.setattr(credit, "quality_problem_credit_event", record)
    p = problem(q.scope("hn_pharmacy"), problem_no="ZL-9")
    assert calls == [("institution:H46010800001", "ZL-9")]
    assert p.credit_event == "CREDIT-7"


def test_a_problem_is_an_event_in_the_winning_companys_credit_file(q: Quality) -> None:
    from jicai.supply.models import CreditEvent

    # P1 is selected in HN-N7 from 辉瑞制药有限公司; medical affairs registers, flagged for the regulator
    p = problem(q.scope("hn_medical"), problem_no="ZL-5", needs_regulator=True)
    with system_scope("t"):
        event = CreditEvent.objects.select_related("company", "institution", "product").get()
    assert p.credit_event == f"credit:{event.pk}"
    assert (event.company.name, event.kind, event.severity, event.occurred_on) == (
        "辉瑞制药有限公司",
        "quality_problem",
        "major",
        day(10),
    )
    assert (event.institution.code, event.product.code) == (HK, P1)
    assert event.description.startswith("药品质量问题 ZL-5：铝塑板破损")
    # P2 is in no round as a winner and names no manufacturer: no company, no event
    assert problem(q.scope("hn_pharmacy"), product_code=P2).credit_event == ""
    with system_scope("t"):
        assert CreditEvent.objects.count() == 1
