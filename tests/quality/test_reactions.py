"""Adverse-reaction reports and automatic cluster detection (R-J2, XJ 五(八)2) through the actions."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from jicai.core.models import AuditEntry
from jicai.core.tenancy import ScopeError, system_scope, use_scope
from jicai.quality.actions import ReactionInput, do_detect_clusters, do_update_reaction
from jicai.quality.common import WorkflowError
from jicai.quality.models import AdverseReaction, ClusterSignal, SignalStatus
from tests.quality.conftest import P1, P2, SY, Quality, day, reaction

pytestmark = pytest.mark.django_db


def signals(**kw: Any) -> list[ClusterSignal]:
    with system_scope("t"):
        return list(ClusterSignal.objects.filter(**kw).order_by("institution_id", "lot_number", "first_date"))


def test_a_report_is_numbered_linked_to_its_item_and_audited(q: Quality) -> None:
    # Given the pharmacy of 海南省人民医院
    pharmacy = q.scope("hn_pharmacy")
    # When it records a report on the selected product without a number
    report = reaction(pharmacy, 5, lot="L1", is_new=True)
    # Then the report is numbered by day, tied to item A01 as a selected product, and audited
    assert report.report_no == "ADR20250305-001"
    assert (report.is_selected, report.item_id) == (True, q.world.hn_item.pk)
    assert reaction(pharmacy, 5).report_no == "ADR20250305-002"
    with system_scope("t"):
        entry = AuditEntry.objects.filter(model="quality.AdverseReaction", object_pk=str(report.pk)).get()
    assert entry.action == "create"
    assert entry.new["lot_number"] == "L1"


def test_a_substitute_is_not_a_selected_product(q: Quality) -> None:
    report = reaction(q.scope("hn_pharmacy"), 5, product=P2)
    assert (report.is_selected, report.item_id) == (False, q.world.hn_item.pk)


def test_death_makes_a_report_serious(q: Quality) -> None:
    assert reaction(q.scope("hn_pharmacy"), 5, outcome="death").is_serious is True


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"onset_date": day(6)}, "onset_date"),  # onset after the report date (day 5)
        ({"report_date": dt.date.today() + dt.timedelta(days=1), "onset_date": None}, "report_date"),
        ({"outcome": "bogus"}, "outcome"),
        ({"product_code": "NOPE"}, "product_code"),
        ({"department_code": "ZZ99"}, "department_code"),
    ],
)
def test_invalid_reports_are_refused_with_the_field(q: Quality, change: dict[str, Any], field: str) -> None:
    values: dict[str, Any] = {
        "report_date": day(5),
        "onset_date": day(5),
        "product_code": P1,
        "reaction": "皮疹",
        "reporter": "张医生",
    }
    values.update(change)
    from jicai.quality.actions import do_create_reaction

    with pytest.raises(WorkflowError) as info:
        do_create_reaction(q.scope("hn_pharmacy"), ReactionInput(**values))
    assert info.value.field == field
    assert info.value.message_zh


def test_roles_that_may_not_write_are_refused(q: Quality) -> None:
    for user in ("hn_vbp", "hn_leader", "hn_admin", "hn_viewer"):
        with pytest.raises(ScopeError):
            reaction(q.scope(user), 5)


def test_a_department_head_reports_for_its_own_department_only(q: Quality) -> None:
    # Given the head of 心内科 (NK01)
    head = q.scope("hn_head")
    report = reaction(head, 5)
    assert report.department_id == q.world.hn_dept.pk
    with pytest.raises(ScopeError):
        reaction(head, 5, department_code="SJ01")
    # and the head of 神经内科 cannot see it, the pharmacy can
    with use_scope(q.scope("hn_head2")):
        assert not AdverseReaction.objects.filter(pk=report.pk).exists()
    with use_scope(q.scope("hn_pharmacy")):
        assert AdverseReaction.objects.filter(pk=report.pk).exists()


def test_three_reports_within_thirty_days_raise_one_signal(q: Quality) -> None:
    pharmacy = q.scope("hn_pharmacy")
    # Given two reports on days 1 and 15: no signal yet
    reaction(pharmacy, 1)
    reaction(pharmacy, 15)
    assert signals() == []
    # When a third arrives on day 30 (the 30th day of a window from day 1)
    third = reaction(pharmacy, 30)
    # Then one product-level signal of the institution holds the three
    (signal,) = signals()
    assert signal.institution_id == q.world.hn_inst.pk
    assert (signal.lot_number, signal.report_count, signal.serious_count) == ("", 3, 0)
    assert (signal.first_date, signal.last_date) == (day(1), day(30))
    assert signal.triggers == ["reports"]
    assert signal.params == {"min_reports": 3, "min_serious": 2, "window_days": 30, "min_institutions": 1}
    assert third.pk in signal.report_ids


def test_rerunning_detection_does_not_duplicate(q: Quality) -> None:
    pharmacy = q.scope("hn_pharmacy")
    for n in (1, 2, 3):
        reaction(pharmacy, n, lot="L1")
    first = signals()
    assert [(s.lot_number, s.report_count) for s in first] == [("", 3), ("L1", 3)]
    # When detection runs again (twice), nothing changes
    outcome = do_detect_clusters(pharmacy)
    assert (outcome.created, outcome.updated, outcome.unchanged) == (0, 0, 2)
    do_detect_clusters(q.scope("hn_admin"))
    assert [(s.pk, s.report_count) for s in signals()] == [(s.pk, s.report_count) for s in first]


def test_a_fourth_report_updates_the_signal(q: Quality) -> None:
    pharmacy = q.scope("hn_pharmacy")
    for n in (1, 2, 3):
        reaction(pharmacy, n)
    (before,) = signals()
    reaction(pharmacy, 20, is_serious=True)
    (after,) = signals()
    assert after.pk == before.pk
    assert (after.report_count, after.serious_count, after.last_date) == (4, 1, day(20))


def test_two_serious_reports_are_a_cluster_on_their_own(q: Quality) -> None:
    pharmacy = q.scope("hn_pharmacy")
    reaction(pharmacy, 1, is_serious=True)
    reaction(pharmacy, 9, outcome="death")  # death is serious
    (signal,) = signals()
    assert signal.triggers == ["serious"]
    assert (signal.report_count, signal.serious_count, signal.death_count) == (2, 2, 1)


def test_a_closed_signal_reopens_when_reports_join(q: Quality) -> None:
    from jicai.quality.actions import do_close_signal

    pharmacy = q.scope("hn_pharmacy")
    for n in (1, 2, 3):
        reaction(pharmacy, n)
    (signal,) = signals()
    do_close_signal(pharmacy, signal.pk, "批次已排查，与用药无关")
    assert signals()[0].status == SignalStatus.CLOSED
    reaction(pharmacy, 10)
    (reopened,) = signals()
    assert (reopened.pk, reopened.status, reopened.report_count) == (signal.pk, SignalStatus.OPEN, 4)


def test_region_wide_signal_needs_two_institutions(q: Quality) -> None:
    # Given 2 reports in 海口 and 1 in 三亚 on the same lot within a week: no institution has 3
    reaction(q.scope("hn_pharmacy"), 1, lot="L7")
    reaction(q.scope("hn_pharmacy"), 3, lot="L7")
    assert signals() == []
    reaction(q.scope("hn2_pharmacy"), 6, lot="L7")
    # Then the province holds a product-level and a lot-level signal across the two hospitals
    regional = signals(institution__isnull=True)
    assert [(s.region_code, s.lot_number, s.report_count, s.institution_count) for s in regional] == [
        ("460000", "", 3, 2),
        ("460000", "L7", 3, 2),
    ]
    assert regional[0].institutions == ["H46010800001", SY]
    assert signals(institution__isnull=False) == []


def test_one_hospitals_cluster_is_not_raised_region_wide(q: Quality) -> None:
    for n in (1, 2, 3):
        reaction(q.scope("hn_pharmacy"), n)
    assert len(signals(institution__isnull=False)) == 1
    assert signals(institution__isnull=True) == []


def test_correcting_the_product_moves_the_report_out_of_the_signal(q: Quality) -> None:
    pharmacy = q.scope("hn_pharmacy")
    reports = [reaction(pharmacy, n) for n in (1, 2, 3, 4)]
    (signal,) = signals()
    assert signal.report_count == 4
    moved = reports[3]
    do_update_reaction(
        pharmacy,
        moved.pk,
        ReactionInput(report_date=day(4), onset_date=day(4), product_code=P2, reaction="皮疹", reporter="张医生"),
    )
    (signal,) = signals()
    assert signal.report_count == 3
    assert moved.pk not in signal.report_ids


def test_signals_are_scoped_institution_region_and_province(q: Quality) -> None:
    for n in (1, 2, 3):
        reaction(q.scope("hn_pharmacy"), n)
    reaction(q.scope("hn2_pharmacy"), 4)
    with system_scope("t"):
        institution_signal = ClusterSignal.objects.get(institution__isnull=False)
        regional = ClusterSignal.objects.get(institution__isnull=True, lot_number="")
    visible = {}
    for user in ("hn_pharmacy", "hn_head", "hn2_pharmacy", "hn_admin", "sy_admin", "sx_admin", "sx_vbp"):
        with use_scope(q.scope(user)):
            visible[user] = set(ClusterSignal.objects.values_list("pk", flat=True))
    i, r = institution_signal.pk, regional.pk
    assert visible == {
        "hn_pharmacy": {i, r},
        "hn_head": {i, r},
        "hn2_pharmacy": {r},
        "hn_admin": {i, r},
        "sy_admin": {r},  # the city of 三亚 sees the province's signal, not 海口's hospital's
        "sx_admin": set(),
        "sx_vbp": set(),
    }


def test_closing_needs_the_right_level(q: Quality) -> None:
    from jicai.quality.actions import do_close_signal

    for n in (1, 2, 3):
        reaction(q.scope("hn_pharmacy"), n)
    reaction(q.scope("hn2_pharmacy"), 4)
    with system_scope("t"):
        own = ClusterSignal.objects.get(institution__isnull=False)
        regional = ClusterSignal.objects.get(institution__isnull=True, lot_number="")
    with pytest.raises(ScopeError):
        do_close_signal(q.scope("hn_pharmacy"), regional.pk, "结论")  # a hospital does not close the region's
    with pytest.raises(ScopeError):
        do_close_signal(q.scope("hn_head"), own.pk, "结论")
    with pytest.raises(ScopeError):
        do_close_signal(q.scope("hn_analyst"), regional.pk, "结论")  # read only
    with pytest.raises(ClusterSignal.DoesNotExist):
        do_close_signal(q.scope("hn2_pharmacy"), own.pk, "结论")  # another hospital's: not even visible
    with pytest.raises(WorkflowError):
        do_close_signal(q.scope("hn_pharmacy"), own.pk, "  ")
    assert do_close_signal(q.scope("hn_admin"), regional.pk, "全省排查完毕").status == SignalStatus.CLOSED
    assert do_close_signal(q.scope("hn_medical"), own.pk, "已排查").status == SignalStatus.CLOSED


def test_detection_is_refused_to_readers(q: Quality) -> None:
    for user in ("hn_vbp", "hn_analyst", "hn_head"):
        with pytest.raises(ScopeError):
            do_detect_clusters(q.scope(user))
