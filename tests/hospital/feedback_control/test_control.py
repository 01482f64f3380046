"""Substitute control (R-H7, R-H8, R-H9): figures, anomalies, exceptions, measures — and who may act."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from jicai.core.audit import AuditEntry
from jicai.core.tenancy import ScopeError, system_scope
from jicai.hospital.common import WorkflowError
from jicai.hospital.control import actions, queries
from jicai.hospital.models import AntimicrobialException, ControlMeasure

from .conftest import CEF_NS, NS, ROSU, SEL, D

pytestmark = pytest.mark.django_db

RANGE = queries.MonthRange.of("2023-02", "2023-04")
FAR = D(2099, 12, 31)


def board(world: Any, key: str = "hn_pharmacy", **kw: Any) -> queries.ControlBoard:
    return queries.control_board(world.scope(key), months=RANGE, **kw)


def row(rows: list[queries.UseRow], unit: str, item: str) -> queries.UseRow:
    return next(r for r in rows if r.unit == unit and r.item_code == item)


def anomaly(b: queries.ControlBoard, level: str, unit: str, product: str) -> queries.Anomaly | None:
    return next((a for a in b.anomalies if (a.level, a.unit, a.product_code) == (level, unit, product)), None)


def exception(world: Any, **kw: Any) -> AntimicrobialException:
    args: dict[str, Any] = {
        "product_code": CEF_NS,
        "department_code": "NK01",
        "patient_key": "P1",
        "reason": "consultation",
        "valid_from": D(2023, 4, 1),
        "valid_until": D(2023, 4, 30),
    }
    args.update(kw)
    return actions.do_record_exception(world.scope("hn_medical"), **args)


def propose(world: Any, key: str = "hn_pharmacy", **kw: Any) -> ControlMeasure:
    args: dict[str, Any] = {
        "product_code": NS,
        "kind": "limit_quantity",
        "limit_qty": "500",
        "department_code": "NK01",
        "reason": "环比增长过快",
        "effective_from": D(2023, 4, 1),
        "expires_on": FAR,
    }
    args.update(kw)
    return actions.do_propose_measure(world.scope(key), **args)


# ---------------------------------------------------------------------------------------- figures


def test_use_by_department_with_shares_and_growth(hospital: Any) -> None:
    b = board(hospital)
    nk = row(b.departments, "NK01", "A01")
    # February–April: selected 400 × 3, non-selected 200 + 400 + 900, substitute 100 + 200
    assert (nk.kinds["selected"].qty, nk.kinds["same_generic"].qty, nk.kinds["substitute"].qty) == (
        Decimal(1200),
        Decimal(1500),
        Decimal(300),
    )
    assert (nk.share("selected"), nk.share("same_generic"), nk.share("substitute")) == (
        Decimal("0.4"),
        Decimal("0.5"),
        Decimal("0.1"),
    )
    # April against March: non-selected 900 / 400 − 1 = 125 %; substitute 200 / 100 − 1 = 100 %
    assert (nk.mom("same_generic"), nk.mom("substitute")) == (Decimal("1.25"), Decimal(1))
    assert nk.yoy("same_generic") is None  # nothing in April 2022
    assert [(r.unit, r.item_code) for r in b.departments] == [("NK01", "A01"), ("NK01", "A02"), ("SJ01", "A01")]
    # the other hospital's 5,000 of the same product never shows
    assert all(r.kinds["same_generic"].qty_all < 5000 for r in b.departments)


def test_use_by_prescriber(hospital: Any) -> None:
    b = board(hospital)
    d01 = row(b.prescribers, "D01", "A01")
    assert (d01.kinds["selected"].qty, d01.kinds["same_generic"].qty) == (Decimal(1200), Decimal(1500))
    assert d01.departments == {"NK01"}
    # D05 (only selected use) is not listed among prescribers with non-selected or substitute use
    assert {r.unit for r in b.prescribers} == {"D01", "D02", "D03"}


def test_department_filter(hospital: Any) -> None:
    b = board(hospital, department="SJ01")
    assert [(r.unit, r.item_code) for r in b.departments] == [("SJ01", "A01")]
    assert b.anomalies == []


def test_diagnosis_mix_by_icd10_chapter(hospital: Any) -> None:
    b = board(hospital)
    table = next(t for t in b.mixes if (t.department_code, t.item_code) == ("NK01", "A01"))
    got = [(r.chapter, r.label, r.qty["selected"], r.qty["same_generic"], r.qty["substitute"]) for r in table.rows]
    assert got == [
        ("IV", "第四章 内分泌、营养和代谢疾病", Decimal(0), Decimal(1500), Decimal(0)),
        ("IX", "第九章 循环系统疾病", Decimal(1200), Decimal(0), Decimal(300)),
    ]
    assert table.rows[0].shares["same_generic"] == 1


# -------------------------------------------------------------------------------------- anomalies


def test_anomalies_with_their_reasons(hospital: Any) -> None:
    b = board(hospital)
    ns = anomaly(b, "department", "NK01", NS)
    assert ns is not None
    assert [r.code for r in ns.reasons] == ["growth", "cap", "diagnosis"]
    assert ns.reasons[0].message_zh.startswith("2023-04 用量 900，环比增长 125.0%（对比 400）")
    assert "非中选药品用量 1500 超过中选药品用量 1200 的 1 倍" in ns.reasons[1].message_zh
    assert "第四章 内分泌、营养和代谢疾病 占本品用量 100.0%" in ns.reasons[2].message_zh
    assert not ns.keep_essential
    d03 = anomaly(b, "prescriber", "D03", ROSU)
    assert d03 is not None
    assert [r.code for r in d03.reasons] == ["growth", "share"]


def test_essential_medicine_is_kept(hospital: Any) -> None:
    # R-H9: rosuvastatin is an essential medicine, the selected atorvastatin is not
    rosu = anomaly(board(hospital), "department", "NK01", ROSU)
    assert rosu is not None
    assert rosu.keep_essential
    assert rosu.keep_message == "基本药物，予以保留"
    assert rosu.as_dict()["keep_message_zh"] == "基本药物，予以保留"


def test_essential_medicine_is_not_kept_when_the_selected_product_is_one(hospital: Any) -> None:
    from jicai.catalog.models import Product

    with system_scope("t"):
        Product.objects.filter(code=SEL).update(is_essential=True)
    rosu = anomaly(board(hospital), "department", "NK01", ROSU)
    assert rosu is not None
    assert not rosu.keep_essential


def test_exception_lines_are_excluded_from_anomalies_and_both_figures_shown(hospital: Any) -> None:
    # without an exception the 400 of CEF_NS exceed the 300 selected in the range
    assert anomaly(board(hospital), "department", "NK01", CEF_NS) is not None
    exception(hospital)  # patient P1's 250
    b = board(hospital)
    cef = row(b.departments, "NK01", "A02")
    assert (cef.kinds["same_generic"].qty_all, cef.kinds["same_generic"].qty) == (Decimal(400), Decimal(150))
    assert cef.excluded == Decimal(250)
    assert cef.cells()[1]["qty_all"] == "400"
    assert cef.cells()[1]["qty"] == "150"
    assert anomaly(b, "department", "NK01", CEF_NS) is None
    assert anomaly(b, "prescriber", "D02", CEF_NS) is None


def test_a_prescriber_exception_covers_all_their_patients(hospital: Any) -> None:
    exception(hospital, patient_key="", prescriber_code="D02")
    cef = row(board(hospital).departments, "NK01", "A02")
    assert cef.kinds["same_generic"].qty == 0


def test_an_exception_outside_its_validity_covers_nothing(hospital: Any) -> None:
    exception(hospital, valid_from=D(2023, 3, 1), valid_until=D(2023, 3, 31))
    cef = row(board(hospital).departments, "NK01", "A02")
    assert cef.kinds["same_generic"].qty == Decimal(400)


# ------------------------------------------------------------------------------------- exceptions


def test_exception_rules(hospital: Any) -> None:
    with pytest.raises(WorkflowError) as err:
        exception(hospital, product_code=NS)
    assert err.value.message_zh == "阿托伐他汀钙片 不是抗菌药物，不能登记抗菌药物例外（R-H8）"
    with pytest.raises(WorkflowError):
        exception(hospital, patient_key="", prescriber_code="")
    with pytest.raises(WorkflowError):
        exception(hospital, valid_until=D(2023, 3, 1))
    with pytest.raises(WorkflowError):
        exception(hospital, reason="whim")
    with pytest.raises(WorkflowError):
        exception(hospital, department_code="XX01")


def test_who_records_exceptions(hospital: Any) -> None:
    assert exception(hospital).reason == "consultation"
    actions.do_record_exception(
        hospital.scope("hn_pharmacy"),
        product_code=CEF_NS,
        department_code="NK01",
        prescriber_code="D02",
        reason="adverse_reaction",
        valid_from=D(2023, 4, 1),
        valid_until=D(2023, 4, 30),
    )
    for key in ("hn_leader", "hn_vbp"):
        with pytest.raises(ScopeError):
            actions.do_record_exception(
                hospital.scope(key),
                product_code=CEF_NS,
                department_code="NK01",
                patient_key="P9",
                reason="long_course",
                valid_from=D(2023, 4, 1),
                valid_until=D(2023, 4, 30),
            )
    with pytest.raises(ScopeError):
        queries.exceptions(hospital.scope("hn_head"))
    with system_scope("t"):
        assert list(queries.exceptions(hospital.scope("hn2_pharmacy"))) == []
        assert AuditEntry.objects.filter(action="control.record_exception").count() == 2


def test_end_an_exception_early(hospital: Any) -> None:
    e = exception(hospital)
    ended = actions.do_end_exception(hospital.scope("hn_pharmacy"), e.pk, on=D(2023, 4, 8), note="已停药")
    assert ended.valid_until == D(2023, 4, 8)
    assert ended.note == "已停药"
    with pytest.raises(WorkflowError):
        actions.do_end_exception(hospital.scope("hn_pharmacy"), e.pk, on=D(2023, 3, 1))
    with pytest.raises(AntimicrobialException.DoesNotExist):
        actions.do_end_exception(hospital.scope("hn2_pharmacy"), e.pk)


# --------------------------------------------------------------------------------------- measures


def test_propose_approve_and_flag_dispensing_above_the_limit(hospital: Any) -> None:
    m = propose(hospital, anomaly={"product_code": NS, "reasons": "growth,cap"})
    assert (m.status, m.limit_qty) == ("proposed", Decimal(500))
    assert board(hospital).over_limit == []  # not approved yet
    approved = actions.do_decide_measure(hospital.scope("hn_leader"), m.pk, approve=True, note="同意")
    assert approved.status == "approved"
    assert approved.decided_by_id == hospital.user("hn_leader").pk
    assert queries.measure_state(approved) == "active"
    b = board(hospital)
    # April: NK01 dispensed 900 of NS against a limit of 500 (March, 400, was before the limit)
    assert [(o.measure.pk, o.month, o.qty) for o in b.over_limit] == [(m.pk, "2023-04", Decimal(900))]
    assert [x.pk for x in b.measures] == [m.pk]
    ns = anomaly(b, "department", "NK01", NS)
    assert ns is not None
    assert [x.pk for x in ns.measures] == [m.pk]
    with system_scope("t"):
        entry = AuditEntry.objects.get(action="control.approve_measure")
    assert entry.actor_name == "hn_leader"
    assert entry.old["status"] == "proposed"
    assert entry.new["status"] == "approved"


def test_only_leadership_approves(hospital: Any) -> None:
    m = propose(hospital)
    for key in ("hn_pharmacy", "hn_medical", "hn_vbp"):
        with pytest.raises(ScopeError):
            actions.do_decide_measure(hospital.scope(key), m.pk, approve=True)
    with pytest.raises(ControlMeasure.DoesNotExist):
        actions.do_decide_measure(hospital.scope("hn2_leader"), m.pk, approve=True)
    with pytest.raises(ScopeError):
        propose(hospital, key="hn_leader")
    with pytest.raises(ScopeError):
        propose(hospital, key="hn_vbp")
    assert propose(hospital, key="hn_medical").status == "proposed"


def test_reject_and_no_second_decision(hospital: Any) -> None:
    m = propose(hospital)
    assert (
        actions.do_decide_measure(hospital.scope("hn_leader"), m.pk, approve=False, note="先观察").status == "rejected"
    )
    with pytest.raises(WorkflowError):
        actions.do_decide_measure(hospital.scope("hn_leader"), m.pk, approve=True)


def test_withdraw_and_revoke(hospital: Any) -> None:
    m = propose(hospital)
    assert actions.do_revoke_measure(hospital.scope("hn_pharmacy"), m.pk).status == "revoked"
    with pytest.raises(WorkflowError):
        actions.do_revoke_measure(hospital.scope("hn_leader"), m.pk)
    m2 = propose(hospital)
    actions.do_decide_measure(hospital.scope("hn_leader"), m2.pk, approve=True)
    with pytest.raises(ScopeError):  # lifting an approved measure is leadership's
        actions.do_revoke_measure(hospital.scope("hn_pharmacy"), m2.pk)
    revoked = actions.do_revoke_measure(hospital.scope("hn_leader"), m2.pk, note="异常已消除")
    assert revoked.status == "revoked"
    assert "异常已消除" in revoked.decision_note
    assert board(hospital).over_limit == []


def test_measure_states(hospital: Any) -> None:
    today = timezone.localdate()
    m = propose(hospital, effective_from=today + dt.timedelta(days=3), expires_on=today + dt.timedelta(days=30))
    assert queries.measure_state(m) == "proposed"
    m = actions.do_decide_measure(hospital.scope("hn_leader"), m.pk, approve=True)
    assert queries.measure_state(m) == "scheduled"
    assert queries.measure_state(m, today + dt.timedelta(days=3)) == "active"
    assert queries.measure_state(m, today + dt.timedelta(days=31)) == "expired"
    # a proposal that has already expired is not approved
    old = propose(hospital, effective_from=D(2023, 1, 1), expires_on=D(2023, 3, 31))
    with pytest.raises(WorkflowError):
        actions.do_decide_measure(hospital.scope("hn_leader"), old.pk, approve=True)


def test_selected_products_are_never_limited(hospital: Any) -> None:
    with pytest.raises(WorkflowError) as err:
        propose(hospital, product_code=SEL)
    assert err.value.code == "selected"
    with pytest.raises(WorkflowError) as err:
        propose(hospital, product_code=hospital.product2.code)  # listed in no item of this hospital
    assert err.value.code == "not_watched"


@pytest.mark.parametrize("kind", ["limit_quantity", "suspend_purchase"])
def test_essential_medicines_kept_by_r_h9_are_never_limited_or_suspended(hospital: Any, kind: str) -> None:
    limit = "100" if kind == "limit_quantity" else None
    with pytest.raises(WorkflowError) as err:
        propose(hospital, product_code=ROSU, kind=kind, limit_qty=limit)
    assert err.value.code == "essential"
    assert err.value.message_zh.startswith("基本药物，予以保留：瑞舒伐他汀钙片 是国家基本药物，而中选药品不是")


def test_no_suspension_of_the_only_supply_for_an_open_exception(hospital: Any) -> None:
    exception(hospital, valid_until=FAR)
    with pytest.raises(WorkflowError) as err:
        propose(hospital, product_code=CEF_NS, kind="suspend_purchase", limit_qty=None)
    assert err.value.code == "only_supply"
    assert err.value.message_zh.startswith("不能暂停采购：头孢呋辛酯片 是 1 条有效抗菌药物例外")
    # a limit keeps the supply and is allowed
    assert propose(hospital, product_code=CEF_NS, limit_qty="300").status == "proposed"


def test_suspension_allowed_when_the_exception_has_another_supply(hospital: Any) -> None:
    from jicai.catalog.models import Product

    exception(hospital, valid_until=FAR)
    with system_scope("t"):
        Product.objects.create(code="XJ01DCB001C003", generic_name="头孢呋辛酯片", antimicrobial_class="restricted")
    m = propose(hospital, product_code=CEF_NS, kind="suspend_purchase", limit_qty=None)
    assert m.kind == "suspend_purchase"


def test_approval_rechecks_the_refusals(hospital: Any) -> None:
    m = propose(hospital, product_code=CEF_NS, kind="suspend_purchase", limit_qty=None)
    exception(hospital, valid_until=FAR)  # recorded after the proposal
    with pytest.raises(WorkflowError) as err:
        actions.do_decide_measure(hospital.scope("hn_leader"), m.pk, approve=True)
    assert err.value.code == "only_supply"


def test_measure_form_rules(hospital: Any) -> None:
    with pytest.raises(WorkflowError):
        propose(hospital, limit_qty=None)  # a limit needs a quantity
    with pytest.raises(WorkflowError):
        propose(hospital, limit_qty="-1")
    with pytest.raises(WorkflowError):
        propose(hospital, kind="suspend_purchase", limit_qty="5")  # a suspension has none
    with pytest.raises(WorkflowError):
        propose(hospital, kind="ban")
    with pytest.raises(WorkflowError):
        propose(hospital, reason=" ")
    with pytest.raises(WorkflowError):
        propose(hospital, expires_on=D(2023, 1, 1))
    with pytest.raises(WorkflowError):
        propose(hospital, product_code="NOPE")


def test_department_heads_and_bureaus_see_no_control_data(hospital: Any) -> None:
    with pytest.raises(ScopeError):
        board(hospital, "hn_head")
    # a bureau reads the workspace for a named institution of its region
    b = queries.control_board(hospital.scope("hn_admin"), months=RANGE, institution="H46010800001")
    assert b.anomalies
    with pytest.raises(WorkflowError):
        queries.control_board(hospital.scope("hn_admin"), months=RANGE)
    with pytest.raises(ScopeError):
        queries.control_board(hospital.scope("sx_admin"), months=RANGE, institution="H46010800001")
