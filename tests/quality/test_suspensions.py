"""Suspension of use after a cluster event (R-J2, XJ 五(八)2): hospital proposes, leadership approves;
a bureau decides region-wide; who sees which."""

from __future__ import annotations

import pytest

from jicai.core.tenancy import ScopeError, system_scope, use_scope
from jicai.quality import queries
from jicai.quality.actions import (
    do_approve_suspension,
    do_lift_suspension,
    do_reject_suspension,
    do_suspend_use,
)
from jicai.quality.common import WorkflowError
from jicai.quality.models import ClusterSignal, Suspension, SuspensionStatus
from tests.quality.conftest import P1, Quality, day, reaction

pytestmark = pytest.mark.django_db


@pytest.fixture
def signal(q: Quality) -> ClusterSignal:
    for n in (1, 2, 3):
        reaction(q.scope("hn_pharmacy"), n, lot="L1")
    with system_scope("t"):
        return ClusterSignal.objects.get(institution=q.world.hn_inst, lot_number="L1")


def test_a_proposal_takes_effect_when_leadership_approves(q: Quality, signal: ClusterSignal) -> None:
    # Given the pharmacy proposes to suspend lot L1 from day 5 to day 20
    proposal = do_suspend_use(
        q.scope("hn_pharmacy"), signal_id=signal.pk, reason="群体不良事件", effective_from=day(5), until=day(20)
    )
    assert (proposal.status, proposal.lot_number, proposal.product_id) == ("proposed", "L1", q.world.product.pk)
    assert not proposal.in_effect(day(6))
    # The pharmacy may not approve its own proposal
    with pytest.raises(ScopeError):
        do_approve_suspension(q.scope("hn_pharmacy"), proposal.pk)
    # When leadership approves
    approved = do_approve_suspension(q.scope("hn_leader"), proposal.pk, "同意")
    # Then it is in effect from day 5 to day 20 inclusive
    assert approved.status == SuspensionStatus.APPROVED
    assert approved.decided_by_id == q.user("hn_leader").pk
    assert [approved.in_effect(day(n)) for n in (4, 5, 20, 21)] == [False, True, True, False]
    # And it binds the institution on day 10, found by the query used by substitution choices
    with use_scope(q.scope("hn_pharmacy")):
        assert [s.pk for s in queries.active_suspensions(q.scope("hn_pharmacy"), day(10))] == [approved.pk]


def test_lifting_ends_it_the_day_before(q: Quality, signal: ClusterSignal) -> None:
    proposal = do_suspend_use(q.scope("hn_medical"), signal_id=signal.pk, reason="原因", effective_from=day(5))
    do_approve_suspension(q.scope("hn_leader"), proposal.pk)
    with pytest.raises(WorkflowError):
        do_lift_suspension(q.scope("hn_leader"), proposal.pk, lifted_on=day(4))
    lifted = do_lift_suspension(q.scope("hn_leader"), proposal.pk, lifted_on=day(12), note="检验合格")
    assert lifted.status == SuspensionStatus.LIFTED
    assert [lifted.in_effect(day(n)) for n in (11, 12)] == [True, False]
    with pytest.raises(WorkflowError):
        do_lift_suspension(q.scope("hn_leader"), proposal.pk)


def test_rejection_needs_a_reason_and_is_final(q: Quality, signal: ClusterSignal) -> None:
    proposal = do_suspend_use(q.scope("hn_pharmacy"), signal_id=signal.pk, reason="原因", effective_from=day(5))
    with pytest.raises(WorkflowError):
        do_reject_suspension(q.scope("hn_leader"), proposal.pk, "")
    rejected = do_reject_suspension(q.scope("hn_leader"), proposal.pk, "证据不足")
    assert rejected.status == SuspensionStatus.REJECTED
    assert not rejected.in_effect(day(6))
    with pytest.raises(WorkflowError):
        do_approve_suspension(q.scope("hn_leader"), proposal.pk)


def test_dates_and_reason_are_checked(q: Quality, signal: ClusterSignal) -> None:
    with pytest.raises(WorkflowError):
        do_suspend_use(q.scope("hn_pharmacy"), signal_id=signal.pk, reason="", effective_from=day(5))
    with pytest.raises(WorkflowError):
        do_suspend_use(q.scope("hn_pharmacy"), signal_id=signal.pk, reason="x", effective_from=day(5), until=day(4))


def test_who_may_not_propose(q: Quality, signal: ClusterSignal) -> None:
    for user in ("hn_vbp", "hn_leader", "hn_head", "hn_analyst"):
        with pytest.raises(ScopeError):
            do_suspend_use(q.scope(user), signal_id=signal.pk, reason="x", effective_from=day(5))
    with pytest.raises(ClusterSignal.DoesNotExist):
        do_suspend_use(q.scope("hn2_pharmacy"), signal_id=signal.pk, reason="x", effective_from=day(5))


def test_another_hospitals_leadership_cannot_approve(q: Quality, signal: ClusterSignal) -> None:
    proposal = do_suspend_use(q.scope("hn_pharmacy"), signal_id=signal.pk, reason="x", effective_from=day(5))
    with pytest.raises(Suspension.DoesNotExist):
        do_approve_suspension(q.scope("hn2_leader"), proposal.pk)
    with pytest.raises(ScopeError):
        do_approve_suspension(q.scope("hn_admin"), proposal.pk)  # the bureau does not decide a hospital's


def test_a_bureau_suspends_region_wide_at_once(q: Quality) -> None:
    # When Hainan's bureau suspends P1 across the province from day 5 (no signal needed)
    decided = do_suspend_use(q.scope("hn_admin"), product_code=P1, reason="省药监通报", effective_from=day(5))
    # Then it is in effect at once, region-wide
    assert (decided.status, decided.level, decided.region_code, decided.institution_id) == (
        "approved",
        "region",
        "460000",
        None,
    )
    # every Hainan hospital and department sees it and is bound; Shaanxi does not see it
    for user, expected in (("hn_pharmacy", True), ("hn_head", True), ("hn2_pharmacy", True), ("sx_pharmacy", False)):
        scope = q.scope(user)
        with use_scope(scope):
            found = [s.pk for s in queries.active_suspensions(scope, day(6))]
        assert (found == [decided.pk]) is expected, user
    # a city bureau inside sees it but may not lift the province's decision
    with use_scope(q.scope("sy_admin")):
        assert Suspension.objects.filter(pk=decided.pk).exists()
    with pytest.raises(ScopeError):
        do_lift_suspension(q.scope("sy_admin"), decided.pk, lifted_on=day(9))
    assert do_lift_suspension(q.scope("hn_admin"), decided.pk, lifted_on=day(9)).status == "lifted"


def test_hospitals_and_analysts_cannot_suspend_region_wide(q: Quality) -> None:
    with pytest.raises(ScopeError):
        do_suspend_use(q.scope("hn_analyst"), product_code=P1, reason="x", effective_from=day(5))
    with pytest.raises(ScopeError):
        do_suspend_use(q.scope("hn_pharmacy"), product_code=P1, reason="x", effective_from=day(5), region_wide=True)
