"""Clinical comprehensive evaluation (R-K1, XJ 五(九)): weighted totals and grades, schemes, the
evaluation that counts for a product (formulary advice), and the shortage substitution ranking."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from jicai.core.tenancy import Scope, ScopeError, use_scope
from jicai.quality import queries
from jicai.quality.actions import (
    EvaluationInput,
    do_approve_suspension,
    do_create_evaluation,
    do_save_scheme,
    do_suspend_use,
    do_update_evaluation,
)
from jicai.quality.common import WorkflowError
from jicai.quality.models import ClinicalEvaluation
from tests.quality.conftest import HK, P1, P2, P3, Quality, day

pytestmark = pytest.mark.django_db
D = Decimal

# 90×25 + 80×25 + 95×20 + 40×10 + 70×10 + 100×10 = 8250 → 82.50 (B) with the default weights
SCORES = {
    "safety": D(90),
    "efficacy": D(80),
    "economy": D(95),
    "innovation": D(40),
    "suitability": D(70),
    "accessibility": D(100),
}


def scores(**changes: int | str) -> dict[str, Decimal]:
    return {**SCORES, **{k: D(str(v)) for k, v in changes.items()}}


def evaluate(scope: Scope, product: str = P1, on: int = 10, **kw: Any) -> ClinicalEvaluation:
    kw.setdefault("scores", SCORES)
    kw.setdefault("evaluator", "药学部")
    return do_create_evaluation(scope, EvaluationInput(product_code=product, evaluated_on=day(on), **kw))


def test_default_weights_give_a_hand_checked_total_and_grade(q: Quality) -> None:
    e = evaluate(q.scope("hn_pharmacy"))
    assert (e.total, e.grade) == (D("82.50"), "B")
    assert e.weights == {
        "safety": "25",
        "efficacy": "25",
        "economy": "20",
        "innovation": "10",
        "suitability": "10",
        "accessibility": "10",
    }
    assert (e.owner_code, e.institution_id, e.region_code) == (HK, q.world.hn_inst.pk, "460108")


def test_a_scheme_changes_the_total_but_not_past_evaluations(q: Quality) -> None:
    pharmacy = q.scope("hn_pharmacy")
    scheme = do_save_scheme(
        pharmacy,
        name="安全优先",
        weights={"safety": 40, "efficacy": 30, "economy": 10, "innovation": 0, "suitability": 10, "accessibility": 10},
    )
    # 90×40 + 80×30 + 95×10 + 40×0 + 70×10 + 100×10 = 3600 + 2400 + 950 + 0 + 700 + 1000 = 8650 → 86.50 (A)
    e = evaluate(pharmacy, scheme_id=scheme.pk)
    assert (e.total, e.grade) == (D("86.50"), "A")
    # changing the scheme later leaves the evaluation's weights and total alone
    do_save_scheme(
        pharmacy,
        scheme_id=scheme.pk,
        name="安全优先",
        weights={"safety": 20, "efficacy": 20, "economy": 20, "innovation": 20, "suitability": 10, "accessibility": 10},
    )
    with use_scope(pharmacy):
        stored = ClinicalEvaluation.objects.get(pk=e.pk)
    assert (stored.total, stored.weights["safety"]) == (D("86.50"), "40")


def test_scheme_weights_must_sum_to_100(q: Quality) -> None:
    with pytest.raises(WorkflowError) as info:
        do_save_scheme(
            q.scope("hn_pharmacy"),
            name="错",
            weights={
                "safety": 40,
                "efficacy": 40,
                "economy": 10,
                "innovation": 0,
                "suitability": 10,
                "accessibility": 10,
            },
        )
    assert info.value.code == "weights.invalid"
    do_save_scheme(q.scope("hn_pharmacy"), name="同名", weights=dict.fromkeys(SCORES, "16.66") | {"safety": "16.70"})
    with pytest.raises(WorkflowError):
        do_save_scheme(
            q.scope("hn_pharmacy"), name="同名", weights={k: str(v) for k, v in SCORES.items()} | {"safety": "-1"}
        )


def test_rounding_is_half_up_to_two_places(q: Quality) -> None:
    pharmacy = q.scope("hn_pharmacy")
    scheme = do_save_scheme(
        pharmacy,
        name="三分",
        weights={
            "safety": "33.33",
            "efficacy": "33.33",
            "economy": "33.34",
            "innovation": 0,
            "suitability": 0,
            "accessibility": 0,
        },
    )
    # 80.15×33.33 + 0 + 0 = 2671.3995 → /100 = 26.713995 → 26.71 (D)
    e = evaluate(pharmacy, scheme_id=scheme.pk, scores=scores(safety="80.15", efficacy=0, economy=0))
    assert (e.total, e.grade) == (D("26.71"), "D")


def test_invalid_evaluations_are_refused(q: Quality) -> None:
    pharmacy = q.scope("hn_pharmacy")
    with pytest.raises(WorkflowError):
        evaluate(pharmacy, scores=scores(safety=101))
    with pytest.raises(WorkflowError):
        evaluate(pharmacy, scores=scores(safety="50.001"))
    with pytest.raises(WorkflowError):
        evaluate(pharmacy, valid_until=day(9))
    with pytest.raises(WorkflowError):
        evaluate(pharmacy, evaluator=" ")
    evaluate(pharmacy)
    with pytest.raises(WorkflowError):
        evaluate(pharmacy)  # the same product on the same day


def test_who_may_evaluate(q: Quality) -> None:
    for user in ("hn_vbp", "hn_leader", "hn_head", "hn_analyst"):
        with pytest.raises(ScopeError):
            evaluate(q.scope(user))
    regional = evaluate(q.scope("hn_admin"))
    assert (regional.owner_code, regional.institution_id) == ("460000", None)
    with pytest.raises(ScopeError):
        evaluate(q.scope("hn_admin"), institution_code=HK)  # a bureau does not write a hospital's evaluation
    with pytest.raises(ScopeError):
        evaluate(q.scope("sy_admin"), region_code="460000")  # a city does not write the province's


def test_an_update_recomputes_the_total(q: Quality) -> None:
    pharmacy = q.scope("hn_pharmacy")
    e = evaluate(pharmacy)
    # safety 90 → 50: total 82.50 − 40×25/100 = 72.50 (B)
    updated = do_update_evaluation(pharmacy, e.pk, EvaluationInput(P1, day(10), scores(safety=50), "药学部"))
    assert (updated.total, updated.grade) == (D("72.50"), "B")
    with pytest.raises(ClinicalEvaluation.DoesNotExist):
        do_update_evaluation(q.scope("hn2_pharmacy"), e.pk, EvaluationInput(P1, day(10), SCORES, "x"))


def test_evaluation_for_prefers_own_then_the_most_specific_region_then_the_latest(q: Quality) -> None:
    hospital = q.scope("hn_pharmacy")
    evaluate(q.scope("hn_admin"), P1, on=5, scores=scores(safety=0))  # province, 60.00 → C
    evaluate(q.scope("hn_admin"), P3, on=5)  # province, 82.50
    evaluate(q.scope("hn_admin"), P3, on=8, scores=scores(safety=100))  # province later: 85.00 → A
    evaluate(hospital, P1, on=7, scores=scores(economy=0))  # own: 82.50 − 19 = 63.50 → C
    evaluate(hospital, P1, on=12, scores=scores(economy=45))  # own later: 82.50 − 10 = 72.50 → B
    evaluate(q.scope("hn2_pharmacy"), P2, on=5)  # another hospital's: never counts for 海口
    # On day 10: own P1 of day 7; P3 the province's of day 8; P2 nothing
    with use_scope(hospital):
        found = queries.evaluation_for([P1, P3, P2], day(10), scope=hospital)
    assert {k: (v.total, v.grade, v.evaluated_on, v.regional) for k, v in found.items()} == {
        P1: (D("63.50"), "C", day(7), False),
        P3: (D("85.00"), "A", day(8), True),
    }
    # On day 12 the own later one; on day 6 only the province's P1
    assert queries.grade_for([P1], day(12), scope=hospital) == {P1: "B"}
    assert queries.grade_for([P1], day(6), scope=hospital) == {P1: "C"}
    assert queries.evaluation_for([], day(6), scope=hospital) == {}
    # The bureau sees its region's by default, the hospital's when it asks for that institution
    bureau = q.scope("hn_admin")
    assert queries.grade_for([P1], day(12), scope=bureau) == {P1: "C"}
    assert queries.grade_for([P1], day(12), scope=bureau, institution=HK) == {P1: "B"}
    # Shaanxi sees none of it
    assert queries.evaluation_for([P1, P3], day(12), scope=q.scope("sx_pharmacy")) == {}


def test_an_expired_evaluation_no_longer_counts(q: Quality) -> None:
    hospital = q.scope("hn_pharmacy")
    evaluate(hospital, P1, on=5, valid_until=day(9))
    assert queries.grade_for([P1], day(9), scope=hospital) == {P1: "B"}
    assert queries.grade_for([P1], day(10), scope=hospital) == {}


def test_substitution_choices_rank_by_kind_then_evaluation(q: Quality) -> None:
    hospital = q.scope("hn_pharmacy")
    evaluate(hospital, P3, on=5)  # 82.50 B
    evaluate(hospital, P2, on=5, scores=scores(safety=100, efficacy=100))  # 82.50 + 2.5 + 5 = 90.00 A
    # Given the selected product P1 is suspended in 海口 from day 6
    from jicai.core.tenancy import system_scope
    from jicai.quality.models import ClusterSignal
    from tests.quality.conftest import reaction

    for n in (1, 2, 3):
        reaction(hospital, n)
    with system_scope("t"):
        signal = ClusterSignal.objects.get(institution__code=HK)
    s = do_suspend_use(hospital, signal_id=signal.pk, reason="群体事件", effective_from=day(6))
    do_approve_suspension(q.scope("hn_leader"), s.pk)
    choices = queries.substitution_choices(hospital, q.world.hn_item, day(10))
    # Then P1 is affected; P3 (same generic, 82.50) ranks above P2 (substitute, 90.00)
    assert [(r.product.code, r.rank, r.unavailable) for r in choices.rows] == [
        (P3, 1, ""),
        (P2, 2, ""),
        (P1, None, "suspended"),
    ]
    assert [r.product.code for r in choices.affected] == [P1]
    assert choices.has_shortage
    # Before the suspension (day 5) P1 is the first choice, unevaluated products after evaluated ones
    before = queries.substitution_choices(hospital, q.world.hn_item, day(5))
    assert [(r.product.code, r.rank) for r in before.rows] == [(P1, 1), (P3, 2), (P2, 3)]
    assert not before.has_shortage


def test_a_lot_suspension_does_not_take_the_product_out(q: Quality) -> None:
    decided = do_suspend_use(
        q.scope("hn_admin"), product_code=P1, lot_number="L9", reason="批次", effective_from=day(1)
    )
    assert decided.lot_number == "L9"
    choices = queries.substitution_choices(q.scope("hn_pharmacy"), q.world.hn_item, day(3))
    first = choices.rows[0]
    assert (first.product.code, first.rank, first.lot_suspensions) == (P1, 1, ("L9",))


def test_today_is_not_in_the_future(q: Quality) -> None:
    with pytest.raises(WorkflowError):
        do_create_evaluation(
            q.scope("hn_pharmacy"),
            EvaluationInput(P1, dt.date.today() + dt.timedelta(days=1), SCORES, "药学部"),
        )


def incident(q: Quality, *, start: int, end: int | None = None, status: str = "reported", **kw: Any) -> None:
    """A supply incident of item A01 (jicai.supply), written directly as the operator."""
    from jicai.core.tenancy import system_scope
    from jicai.supply.models import SupplyIncident

    kw.setdefault("institution", q.world.hn_inst)
    region = kw["institution"].region_code if kw["institution"] else "460000"
    with system_scope("t"):
        SupplyIncident.objects.create(
            batch=q.world.hn_batch,
            item=q.world.hn_item,
            region_code=region,
            kind="interruption",
            start_on=day(start),
            end_on=day(end) if end else None,
            cause="原料短缺",
            status=status,
            **kw,
        )


def test_a_supply_incident_puts_the_selected_product_in_shortage(q: Quality) -> None:
    from jicai.core.tenancy import system_scope
    from jicai.programme.models import SelectedProduct

    with system_scope("t"):
        selected = SelectedProduct.objects.get(product__code=P1, batch=q.world.hn_batch)
    incident(q, start=4, end=8, selected=selected)
    incident(q, start=20, status="rejected", selected=selected)
    hospital = q.scope("hn_pharmacy")
    assert queries.shortage_products(hospital, q.world.hn_item, day(6), q.world.hn_inst) == {P1}
    assert queries.shortage_products(hospital, q.world.hn_item, day(9), q.world.hn_inst) == set()  # ended on day 8
    assert queries.shortage_products(hospital, q.world.hn_item, day(21), q.world.hn_inst) == set()  # rejected
    choices = queries.substitution_choices(hospital, q.world.hn_item, day(6))
    assert [(r.product.code, r.unavailable) for r in choices.affected] == [(P1, "shortage")]
    assert choices.rows[-1].product.code == P1
    # another hospital of the province is not affected by 海口's incident
    other = q.scope("hn2_pharmacy")
    assert queries.substitution_choices(other, q.world.hn_item, day(6)).affected == ()


def test_a_region_wide_incident_without_a_product_covers_every_selected_product(q: Quality) -> None:
    incident(q, start=4, institution=None)
    for user in ("hn_pharmacy", "hn2_pharmacy", "hn_admin"):
        choices = queries.substitution_choices(q.scope(user), q.world.hn_item, day(6))
        assert [r.product.code for r in choices.affected] == [P1], user
