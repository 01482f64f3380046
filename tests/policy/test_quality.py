"""Adverse-reaction clusters, quality-problem routing, clinical evaluation and substitute ranking
(R-J1, R-J2, R-K1; XJ 五(八), 五(九)), pure tests without a database. Every expected number is
worked out by hand in the comment beside it."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jicai.policy.quality import (
    DEFAULT_BANDS,
    DEFAULT_MIN_INSTITUTIONS_REGION,
    DEFAULT_MIN_REPORTS,
    DEFAULT_MIN_SERIOUS,
    DEFAULT_WEIGHTS,
    DEFAULT_WINDOW_DAYS,
    DIMENSIONS,
    INSTITUTION_CLUSTERS,
    REGION_CLUSTERS,
    TRANSITIONS,
    Candidate,
    CandidateKind,
    Cluster,
    ClusterParams,
    GradeBands,
    KnownSignal,
    ProblemStatus,
    ReactionReport,
    SignalPlan,
    SignalUpdate,
    Trigger,
    Weights,
    can_move,
    check_score,
    detect_clusters,
    evaluate,
    grade,
    is_final,
    rank_substitutes,
    reconcile_signals,
    suspension_in_effect,
    weighted_total,
)

D = Decimal
P1, P2 = "XC10AAA067A001020101187", "XC08CAA014A001010100001"
HK, SY = "H46010800001", "H46020000002"


def day(n: int) -> dt.date:
    """Day ``n`` of 2026 (1 = 1 January)."""
    return dt.date(2026, 1, 1) + dt.timedelta(days=n - 1)


def report(rid: int, on: int, *, product: str = P1, lot: str = "", inst: str = HK, **flags: bool) -> ReactionReport:
    return ReactionReport(rid, product, lot, day(on), inst, **flags)


# ------------------------------------------------------------------------------------------------
# parameters


def test_defaults_are_the_documented_ones() -> None:
    assert (DEFAULT_MIN_REPORTS, DEFAULT_MIN_SERIOUS, DEFAULT_WINDOW_DAYS) == (3, 2, 30)
    assert ClusterParams(3, 2, 30, 1) == INSTITUTION_CLUSTERS
    assert ClusterParams(3, 2, 30, DEFAULT_MIN_INSTITUTIONS_REGION) == REGION_CLUSTERS
    assert DEFAULT_MIN_INSTITUTIONS_REGION == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_reports": 1}, "at least 2 reports"),
        ({"min_serious": 0}, "serious-report threshold"),
        ({"window_days": 0}, "at least one day"),
        ({"min_institutions": 0}, "at least one institution"),
    ],
)
def test_cluster_params_are_checked(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClusterParams(**kwargs)


# ------------------------------------------------------------------------------------------------
# detection


def test_three_reports_within_thirty_days_are_a_cluster() -> None:
    # Given reports on days 1, 15 and 30: day 30 is the 30th day of a window starting on day 1
    clusters = detect_clusters([report(1, 1), report(2, 15), report(3, 30)])
    # Then one product-level episode of the three reports, triggered by the count
    assert clusters == (Cluster(P1, "", day(1), day(30), (1, 2, 3), 0, 0, 0, (HK,), (Trigger.REPORTS,)),)
    assert clusters[0].report_count == 3
    assert clusters[0].group == (P1, "")


def test_the_window_is_thirty_days_including_the_first() -> None:
    # day 31 is one day too late for a window starting on day 1, and days 15..31 hold only two
    assert detect_clusters([report(1, 1), report(2, 15), report(3, 31)]) == ()


def test_two_reports_are_no_cluster_unless_both_are_serious() -> None:
    assert detect_clusters([report(1, 1), report(2, 2, serious=True)]) == ()
    (cluster,) = detect_clusters([report(1, 1, serious=True), report(2, 20, serious=True, death=True)])
    assert cluster.triggers == (Trigger.SERIOUS,)
    assert (cluster.serious_count, cluster.death_count, cluster.report_count) == (2, 1, 2)


def test_both_triggers_are_recorded() -> None:
    (cluster,) = detect_clusters(
        [report(1, 1, serious=True), report(2, 2, serious=True, new=True), report(3, 3, new=True)]
    )
    assert cluster.triggers == (Trigger.REPORTS, Trigger.SERIOUS)
    assert cluster.new_count == 2


def test_lot_clusters_are_found_beside_the_product_cluster() -> None:
    # Given 3 reports of lot L1 and one of lot L2, all within 10 days
    reports = [report(1, 1, lot="L1"), report(2, 2, lot="L1"), report(3, 3, lot=" L1 "), report(4, 4, lot="L2")]
    clusters = detect_clusters(reports)
    # Then the product episode holds all 4, the lot-L1 episode 3, lot L2 none
    assert [(c.lot_number, c.report_ids) for c in clusters] == [("", (1, 2, 3, 4)), ("L1", (1, 2, 3))]


def test_blank_lots_count_for_the_product_only() -> None:
    clusters = detect_clusters([report(1, 1, lot="  "), report(2, 2), report(3, 3)])
    assert [c.lot_number for c in clusters] == [""]


def test_products_are_separate_groups() -> None:
    reports = [report(1, 1), report(2, 2), report(3, 3, product=P2), report(4, 4, product=P2)]
    assert detect_clusters(reports) == ()


def test_overlapping_windows_chain_into_one_episode() -> None:
    # days 1, 20, 29 qualify (window 1..30); days 20, 29, 45 qualify (window 20..49): one episode 1..45
    (cluster,) = detect_clusters([report(1, 1), report(2, 20), report(3, 29), report(4, 45)])
    assert (cluster.first_date, cluster.last_date, cluster.report_ids) == (day(1), day(45), (1, 2, 3, 4))


def test_separate_episodes_stay_separate() -> None:
    # days 1, 2, 3 and days 100, 101, 102: two episodes; day 50 alone belongs to neither
    reports = [report(i, d) for i, d in enumerate((1, 2, 3, 50, 100, 101, 102), start=1)]
    clusters = detect_clusters(reports)
    assert [c.report_ids for c in clusters] == [(1, 2, 3), (5, 6, 7)]


def test_a_report_outside_any_qualifying_window_is_not_pulled_in() -> None:
    # days 1, 2, 3 qualify; day 31 is within 30 days of day 2 and 3 but the window 2..31 holds
    # reports 2, 3 and 31: three reports — so it qualifies and chains
    (cluster,) = detect_clusters([report(1, 1), report(2, 2), report(3, 3), report(4, 31)])
    assert cluster.report_ids == (1, 2, 3, 4)
    # day 33: windows from day 2 (2..31) and 3 (3..32) hold 2, 3 only → no chain
    clusters = detect_clusters([report(1, 1), report(2, 2), report(3, 3), report(4, 33)])
    assert [c.report_ids for c in clusters] == [(1, 2, 3)]


def test_unsorted_input_and_same_day_reports() -> None:
    clusters = detect_clusters([report(3, 5), report(1, 5), report(2, 5)])
    assert clusters[0].report_ids == (1, 2, 3)
    assert clusters[0].first_date == clusters[0].last_date == day(5)


def test_custom_thresholds() -> None:
    params = ClusterParams(min_reports=2, min_serious=1, window_days=7)
    # one serious report alone is a cluster at min_serious=1; 2 reports within 7 days too
    assert [c.report_ids for c in detect_clusters([report(1, 1, serious=True)], params)] == [(1,)]
    assert detect_clusters([report(1, 1), report(2, 8)], params) == ()  # day 8 is the 8th day
    assert len(detect_clusters([report(1, 1), report(2, 7)], params)) == 1


def test_region_clusters_need_two_institutions() -> None:
    same = [report(1, 1), report(2, 2), report(3, 3)]
    assert detect_clusters(same, REGION_CLUSTERS) == ()
    mixed = [report(1, 1), report(2, 2, inst=SY), report(3, 3)]
    (cluster,) = detect_clusters(mixed, REGION_CLUSTERS)
    assert cluster.institutions == (HK, SY)


def test_report_ids_must_be_unique() -> None:
    with pytest.raises(ValueError, match="unique"):
        detect_clusters([report(1, 1), report(1, 2)])


@given(st.lists(st.integers(min_value=1, max_value=200), min_size=0, max_size=25), st.randoms())
def test_detection_ignores_input_order_and_every_member_is_within_a_qualifying_window(
    days: list[int], rnd: random.Random
) -> None:
    reports = [report(i, d, serious=(i % 4 == 0)) for i, d in enumerate(days, start=1)]
    shuffled = list(reports)
    rnd.shuffle(shuffled)
    clusters = detect_clusters(reports)
    assert clusters == detect_clusters(shuffled)
    by_id = {r.report_id: r for r in reports}
    seen: set[int] = set()
    for c in clusters:
        assert not seen & set(c.report_ids)  # product episodes are disjoint
        seen |= set(c.report_ids)
        for rid in c.report_ids:
            d = by_id[rid].event_date
            windows = [
                [r for r in reports if s <= r.event_date <= s + dt.timedelta(days=29)]
                for s in {r.event_date for r in reports}
                if s <= d <= s + dt.timedelta(days=29)
            ]
            assert any(len(w) >= 3 or sum(r.serious for r in w) >= 2 for w in windows)


# ------------------------------------------------------------------------------------------------
# reconciliation (deduplication)


def known(sid: int, cluster: Cluster, *, closed: bool = False, **changes: object) -> KnownSignal:
    values: dict[str, object] = {
        "signal_id": sid,
        "product_code": cluster.product_code,
        "lot_number": cluster.lot_number,
        "first_date": cluster.first_date,
        "last_date": cluster.last_date,
        "report_ids": frozenset(cluster.report_ids),
        "digest": cluster.digest,
        "closed": closed,
    }
    values.update(changes)
    return KnownSignal(**values)  # type: ignore[arg-type]


BASE = [report(1, 1), report(2, 2), report(3, 3)]


def test_first_run_creates_rerun_changes_nothing() -> None:
    (cluster,) = detect_clusters(BASE)
    first = reconcile_signals([], [cluster])
    assert first == SignalPlan(creates=(cluster,))
    assert not first.empty
    again = reconcile_signals([known(7, cluster)], detect_clusters(BASE))
    assert again == SignalPlan(unchanged=(7,))
    assert again.empty


def test_a_new_report_updates_the_signal_instead_of_duplicating() -> None:
    (old,) = detect_clusters(BASE)
    (grown,) = detect_clusters([*BASE, report(4, 10)])
    plan = reconcile_signals([known(7, old)], [grown])
    assert plan == SignalPlan(updates=(SignalUpdate(7, grown, reopen=False),))


def test_a_closed_signal_that_gains_reports_is_reopened() -> None:
    (old,) = detect_clusters(BASE)
    (grown,) = detect_clusters([*BASE, report(4, 10)])
    plan = reconcile_signals([known(7, old, closed=True)], [grown])
    assert plan.updates == (SignalUpdate(7, grown, reopen=True),)


def test_a_closed_signal_whose_flags_change_is_updated_not_reopened() -> None:
    (old,) = detect_clusters(BASE)
    (flagged,) = detect_clusters([report(1, 1, serious=True), report(2, 2), report(3, 3)])
    plan = reconcile_signals([known(7, old, closed=True)], [flagged])
    assert plan.updates == (SignalUpdate(7, flagged, reopen=False),)


def test_signals_of_another_lot_or_period_do_not_match() -> None:
    (cluster,) = detect_clusters(BASE)
    other_lot = known(7, cluster, lot_number="L9")
    later = known(8, cluster, first_date=day(40), last_date=day(45))
    plan = reconcile_signals([other_lot, later], [cluster])
    assert plan.creates == (cluster,)
    assert plan.unchanged == ()


def test_a_bridging_report_merges_two_signals_into_the_earlier() -> None:
    early = detect_clusters([report(1, 1), report(2, 2), report(3, 3)])[0]
    late = detect_clusters([report(4, 40), report(5, 41), report(6, 42)])[0]
    bridged = detect_clusters([*BASE, report(7, 20), report(8, 25), report(4, 40), report(5, 41), report(6, 42)])
    assert len(bridged) == 1
    plan = reconcile_signals([known(9, late), known(3, early)], bridged)
    assert plan.merges == ((9, 3),)
    assert plan.updates == (SignalUpdate(3, bridged[0], reopen=False),)


def test_an_unmatched_stored_signal_is_left_alone() -> None:
    (cluster,) = detect_clusters(BASE)
    assert reconcile_signals([known(7, cluster)], []) == SignalPlan()


# ------------------------------------------------------------------------------------------------
# suspension


@pytest.mark.parametrize(
    ("approved", "until", "lifted", "on", "expected"),
    [
        (False, None, None, 10, False),  # proposed only
        (True, None, None, 4, False),  # before its first day (5)
        (True, None, None, 5, True),  # first day
        (True, 20, None, 20, True),  # last day
        (True, 20, None, 21, False),  # after ``until``
        (True, None, 12, 11, True),  # the day before it was lifted
        (True, None, 12, 12, False),  # lifted that day
    ],
)
def test_suspension_in_effect(approved: bool, until: int | None, lifted: int | None, on: int, expected: bool) -> None:
    assert (
        suspension_in_effect(
            approved=approved,
            effective_from=day(5),
            until=day(until) if until else None,
            lifted_on=day(lifted) if lifted else None,
            on=day(on),
        )
        is expected
    )


# ------------------------------------------------------------------------------------------------
# quality problems


def test_routing_goes_forward_only() -> None:
    assert can_move("open", "with_distributor")
    assert can_move(ProblemStatus.OPEN, ProblemStatus.WITH_REGULATOR)
    assert can_move("with_distributor", "with_regulator")
    assert can_move("with_regulator", "resolved")
    assert not can_move("with_regulator", "with_distributor")
    assert not can_move("resolved", "closed")
    assert is_final("closed")
    assert is_final("resolved")
    assert not is_final("open")
    assert set(TRANSITIONS) == set(ProblemStatus)
    with pytest.raises(ValueError, match="bogus"):
        can_move("bogus", "open")


# ------------------------------------------------------------------------------------------------
# clinical evaluation


SCORES = {
    "safety": D(90),
    "efficacy": D(80),
    "economy": D(95),
    "innovation": D(40),
    "suitability": D(70),
    "accessibility": D(100),
}


def test_default_weights_and_a_hand_checked_total() -> None:
    assert DEFAULT_WEIGHTS.as_dict() == {
        "safety": D(25),
        "efficacy": D(25),
        "economy": D(20),
        "innovation": D(10),
        "suitability": D(10),
        "accessibility": D(10),
    }
    # 90×25 + 80×25 + 95×20 + 40×10 + 70×10 + 100×10 = 2250 + 2000 + 1900 + 400 + 700 + 1000 = 8250 → 82.50
    assert weighted_total(SCORES) == D("82.50")
    assert grade(D("82.50")) == "B"


def test_rounding_is_half_up_once_at_the_end() -> None:
    weights = Weights(D("33.33"), D("33.33"), D("33.34"), D(0), D(0), D(0))
    scores = {**SCORES, "safety": D("80.15"), "efficacy": D(0), "economy": D(0)}
    # 80.15 × 33.33 / 100 = 26.713995 → 26.71
    assert weighted_total(scores, weights) == D("26.71")
    # 0.5 × 1 / 100 = 0.005 → half-up 0.01
    tiny = Weights(D(1), D(99), D(0), D(0), D(0), D(0))
    assert weighted_total({**SCORES, "safety": D("0.5"), "efficacy": D(0)}, tiny) == D("0.01")


def test_evaluate_gives_contributions_and_grade() -> None:
    outcome = evaluate(SCORES)
    assert outcome.total == D("82.50")
    assert outcome.grade == "B"
    assert outcome.contributions["economy"] == D(19)  # 95 × 20 / 100
    assert sum(outcome.contributions.values()) == D("82.5")


@pytest.mark.parametrize(
    ("total", "expected"),
    [("100", "A"), ("85", "A"), ("84.99", "B"), ("70", "B"), ("69.99", "C"), ("60", "C"), ("59.99", "D"), ("0", "D")],
)
def test_grade_bands(total: str, expected: str) -> None:
    assert grade(D(total), DEFAULT_BANDS) == expected


def test_custom_bands() -> None:
    assert grade(D(80), GradeBands(a=D(80), b=D(60), c=D(40))) == "A"
    with pytest.raises(ValueError, match="grade bands"):
        GradeBands(a=D(70), b=D(70), c=D(60))


def test_weights_must_sum_to_one_hundred() -> None:
    with pytest.raises(ValueError, match="sum to 100"):
        Weights(D(20), D(20), D(20), D(20), D(10), D(9))
    with pytest.raises(ValueError, match="negative"):
        Weights(D(-10), D(30), D(20), D(20), D(20), D(20))
    with pytest.raises(ValueError, match="two decimal places"):
        Weights(D("16.666"), D("16.667"), D("16.667"), D(20), D(15), D(15))
    with pytest.raises(TypeError, match="Decimal"):
        Weights(20, D(20), D(20), D(20), D(10), D(10))  # type: ignore[arg-type]


def test_weights_from_a_mapping() -> None:
    w = Weights.from_mapping(
        {"safety": "30", "efficacy": 30, "economy": D(20), "innovation": 0, "suitability": 10, "accessibility": 10}
    )
    assert w.of("safety") == D(30)
    assert w.total == D(100)
    with pytest.raises(ValueError, match="missing for accessibility"):
        Weights.from_mapping({d.value: 20 for d in DIMENSIONS[:5]})


def test_scores_are_checked() -> None:
    assert check_score("safety", D("99.99")) == D("99.99")
    with pytest.raises(ValueError, match="between 0 and 100"):
        check_score("safety", D("100.01"))
    with pytest.raises(ValueError, match="between 0 and 100"):
        check_score("safety", D(-1))
    with pytest.raises(ValueError, match="two decimal places"):
        check_score("safety", D("50.001"))
    with pytest.raises(TypeError, match="Decimal"):
        check_score("safety", 50)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="missing for safety"):
        weighted_total({k: v for k, v in SCORES.items() if k != "safety"})


@given(st.lists(st.integers(min_value=0, max_value=10000), min_size=6, max_size=6))
def test_total_lies_between_the_lowest_and_highest_score(raw: list[int]) -> None:
    scores = {d.value: D(v) / 100 for d, v in zip(DIMENSIONS, raw, strict=True)}
    total = weighted_total(scores)
    assert min(scores.values()) <= total <= max(scores.values())
    assert grade(total) in "ABCD"


# ------------------------------------------------------------------------------------------------
# substitution ranking


def test_ranking_prefers_selected_then_same_generic_then_substitutes() -> None:
    ranked = rank_substitutes(
        [
            Candidate("S1", CandidateKind.SUBSTITUTE, D(99)),
            Candidate("N2", CandidateKind.SAME_GENERIC, D(70)),
            Candidate("N1", CandidateKind.SAME_GENERIC, D(88)),
            Candidate("N3", CandidateKind.SAME_GENERIC),  # not evaluated: after the evaluated
            Candidate("W2", CandidateKind.SELECTED, D(60)),
            Candidate("W1", CandidateKind.SELECTED, unavailable="shortage"),
            Candidate("N0", CandidateKind.SAME_GENERIC, D(95), unavailable="suspended"),
        ]
    )
    assert [(r.candidate.product_code, r.rank) for r in ranked] == [
        ("W2", 1),
        ("N1", 2),
        ("N2", 3),
        ("N3", 4),
        ("S1", 5),
        ("W1", None),
        ("N0", None),
    ]


def test_ties_go_by_product_code() -> None:
    ranked = rank_substitutes(
        [Candidate("B", CandidateKind.SAME_GENERIC, D(80)), Candidate("A", CandidateKind.SAME_GENERIC, D(80))]
    )
    assert [r.candidate.product_code for r in ranked] == ["A", "B"]


def test_ranking_needs_unique_codes() -> None:
    with pytest.raises(ValueError, match="unique"):
        rank_substitutes([Candidate("A", CandidateKind.SUBSTITUTE), Candidate("A", CandidateKind.SELECTED)])
