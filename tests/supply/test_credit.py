"""The supplier credit file (R-I3): manual events, events derived from the purchase facts (idempotent),
scores and standings, sanctions, and the distributor scorecard (R-D4)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from jicai.core.tenancy import ScopeError, system_scope, use_scope
from jicai.policy.supply import parse_period
from jicai.supply.actions import (
    CreditInput,
    SanctionInput,
    do_derive_credit_events,
    do_record_credit_event,
    do_record_sanction,
    do_update_credit_event,
    do_update_sanction,
)
from jicai.supply.common import WorkflowError
from jicai.supply.models import CreditEvent
from jicai.supply.queries import credit_scores, distributor_months, distributor_scorecard
from tests.conftest import World

from .conftest import DISTRIBUTOR, HN, HN2, SELECTED, SUBSTITUTE, SX, D, audit_actions, import_purchases, purchase_line

pytestmark = pytest.mark.django_db

Q4 = "2022Q4"
AS_OF = D(2023, 1, 31)


@pytest.fixture
def facts(supply_world: World) -> World:
    """Purchase lines of Q4 2022 (the expected figures are worked out in each test)."""
    import_purchases(
        [
            # 海口, by the known distributor: on time, 5 days late, 3 days late, never delivered
            purchase_line(
                "L1", HN, SELECTED, ordered=D(2022, 11, 1), delivered=D(2022, 11, 2), accepted=D(2022, 11, 3)
            ),
            purchase_line(
                "L2", HN, SELECTED, ordered=D(2022, 11, 5), delivered=D(2022, 11, 10), accepted=D(2022, 11, 10)
            ),
            purchase_line(
                "L3", HN, SELECTED, ordered=D(2022, 11, 7), delivered=D(2022, 11, 10), accepted=D(2022, 11, 11)
            ),
            purchase_line("L4", HN, SELECTED, ordered=D(2022, 11, 20)),
            # 三亚, no distributor named: the product's winning company (辉瑞), on time and accepted
            purchase_line(
                "L5",
                HN2,
                SELECTED,
                ordered=D(2022, 12, 1),
                delivered=D(2022, 12, 2),
                accepted=D(2022, 12, 2),
                distributor="",
            ),
            # 海口, an unknown distributor of a product nobody won: unmatched
            purchase_line(
                "L6",
                HN,
                SUBSTITUTE,
                ordered=D(2022, 11, 15),
                delivered=D(2022, 11, 16),
                accepted=D(2022, 11, 16),
                distributor="某配送公司",
            ),
            # 西安 (another province), 19 days late
            purchase_line(
                "L7", SX, SELECTED, ordered=D(2022, 11, 1), delivered=D(2022, 11, 20), accepted=D(2022, 11, 21)
            ),
        ]
    )
    return supply_world


def _events(**filters: Any) -> list[tuple[Any, ...]]:
    with system_scope("test"):
        return list(
            CreditEvent.objects.filter(**filters)
            .order_by("kind", "institution__code")
            .values_list("company__name", "kind", "severity", "institution__code", "occurred_on", "source", "period")
        )


# --------------------------------------------------------------------------- manual events


def test_the_pharmacy_files_a_near_expiry_delivery_for_its_institution(world: World) -> None:
    event = do_record_credit_event(
        world.scope("hn_pharmacy"),
        CreditInput(
            world.company.name, "near_expiry", D(2022, 11, 20), "major", "有效期不足6个月", product_code=SELECTED
        ),
    )
    assert (event.institution_id, event.region_code, event.source) == (world.hn_inst.pk, "460108", "manual")
    assert event.product_id == world.product.pk
    assert audit_actions("supply.CreditEvent") == ["create"]
    # another hospital does not see it, the province's bureau does
    with use_scope(world.scope("hn2_vbp")):
        assert not CreditEvent.objects.exists()
    with use_scope(world.scope("hn_admin")):
        assert CreditEvent.objects.count() == 1
    with use_scope(world.scope("sx_admin")):
        assert not CreditEvent.objects.exists()


def test_manual_events_are_checked(world: World) -> None:
    pharmacy = world.scope("hn_pharmacy")
    for data, field in (
        (CreditInput("不存在的企业", "shortage", D(2022, 11, 1)), "company"),
        (CreditInput(world.company.name, "bad_kind", D(2022, 11, 1)), "kind"),
        (CreditInput(world.company.name, "shortage", D(2022, 11, 1), severity="awful"), "severity"),
        (CreditInput(world.company.name, "shortage", D(2022, 11, 1), institution_code=HN2), "institution_code"),
        (CreditInput(world.company.name, "shortage", D(2022, 11, 1), product_code="NOPE"), "product_code"),
    ):
        with pytest.raises(WorkflowError) as exc:
            do_record_credit_event(pharmacy, data)
        assert exc.value.field == field
    with pytest.raises(ScopeError):
        do_record_credit_event(world.scope("hn_it"), CreditInput(world.company.name, "shortage", D(2022, 11, 1)))


def test_a_bureau_records_a_region_level_event_and_edits_it(world: World) -> None:
    admin = world.scope("hn_admin")
    event = do_record_credit_event(admin, CreditInput(world.company.name, "quality_problem", D(2022, 12, 1), "severe"))
    assert (event.institution_id, event.region_code) == (None, "460000")
    edited = do_update_credit_event(
        admin, event.pk, CreditInput(world.company.name, "quality_problem", D(2022, 12, 1), "major", "复检合格")
    )
    assert (edited.severity, edited.description) == ("major", "复检合格")
    assert audit_actions("supply.CreditEvent") == ["create", "update"]
    with pytest.raises(ScopeError):  # a hospital does not see the bureau's row
        do_update_credit_event(
            world.scope("hn_vbp"), event.pk, CreditInput(world.company.name, "shortage", D(2022, 12, 1))
        )


# --------------------------------------------------------------------------- derived events


def test_deriving_a_quarter_files_late_deliveries_and_low_fill_rates(facts: World) -> None:
    # When the province's bureau derives Q4 2022
    result = do_derive_credit_events(facts.scope("hn_admin"), Q4, as_of=AS_OF)
    # Then in 海口 the distributor had 2 of 3 November deliveries late (worst 5 days > 2 × 2: major)
    # and 3 of 4 November orders accepted (0.75 < 0.80: a major shortage); 三亚's line was fine;
    # 西安 is another province; the unknown distributor's line of an unselected product is unmatched
    assert (result.late_events, result.shortage_events, result.removed, result.unmatched_lines) == (1, 1, 0, 1)
    assert result.months == ("2022-10", "2022-11", "2022-12")
    assert _events() == [
        (DISTRIBUTOR, "late_delivery", "major", HN, D(2022, 11, 10), "derived", "2022-11"),
        (DISTRIBUTOR, "shortage", "major", HN, D(2022, 11, 20), "derived", "2022-11"),
    ]
    with system_scope("test"):
        late = CreditEvent.objects.get(kind="late_delivery")
        short = CreditEvent.objects.get(kind="shortage")
    assert late.metrics == {"lines": 3, "late_lines": 2, "max_days": 5, "late_days": 2}
    assert late.product_id == facts.product.pk
    assert (short.metrics["fill_rate"], short.metrics["qty_fill_rate"]) == ("0.7500", "0.7500")
    assert (short.metrics["ordered_lines"], short.metrics["accepted_lines"]) == (4, 3)
    assert "到货率 75.00%" in short.description
    assert audit_actions("supply.CreditEvent") == ["derive"]


def test_re_deriving_replaces_derived_events_and_keeps_manual_ones(facts: World) -> None:
    admin = facts.scope("hn_admin")
    manual = do_record_credit_event(
        facts.scope("hn_pharmacy"), CreditInput(DISTRIBUTOR, "late_delivery", D(2022, 11, 12), "minor", "急救药品延迟")
    )
    do_derive_credit_events(admin, Q4, as_of=AS_OF)
    again = do_derive_credit_events(admin, "2022-11", as_of=AS_OF)
    assert (again.removed, again.created) == (2, 2)
    assert len(_events(source="derived")) == 2
    assert _events(source="manual") == [(DISTRIBUTOR, "late_delivery", "minor", HN, D(2022, 11, 12), "manual", "")]
    # derived rows are not edited by hand
    with system_scope("test"):
        derived = CreditEvent.objects.filter(source="derived").first()
    assert derived is not None
    with pytest.raises(WorkflowError) as exc:
        do_update_credit_event(admin, derived.pk, CreditInput(DISTRIBUTOR, "shortage", D(2022, 11, 1)))
    assert exc.value.code == "credit.not_manual"
    assert manual.pk


def test_a_bureau_derives_only_its_own_territory(facts: World) -> None:
    do_derive_credit_events(facts.scope("hn_admin"), Q4, as_of=AS_OF)
    result = do_derive_credit_events(facts.scope("sx_admin"), Q4, as_of=AS_OF)
    # 西安: 19 days late (> 4 × 2: severe), 1 of 1 accepted; 海南's events stay
    assert (result.late_events, result.shortage_events, result.removed) == (1, 0, 0)
    assert [e[:4] for e in _events(institution__code=SX)] == [(DISTRIBUTOR, "late_delivery", "severe", SX)]
    assert len(_events(region_code__startswith="46")) == 2


def test_orders_not_yet_due_are_not_a_shortage(facts: World) -> None:
    # Derived on 21 November: L4 (ordered the 20th) is not due yet, 3 of 3 accepted
    result = do_derive_credit_events(facts.scope("hn_admin"), "2022-11", as_of=D(2022, 11, 21))
    assert result.shortage_events == 0


def test_deriving_is_a_bureau_task_with_a_readable_period(facts: World) -> None:
    with pytest.raises(ScopeError):
        do_derive_credit_events(facts.scope("hn_vbp"), Q4)
    with pytest.raises(ScopeError):
        do_derive_credit_events(facts.scope("hn_viewer"), Q4)
    with pytest.raises(WorkflowError) as exc:
        do_derive_credit_events(facts.scope("hn_admin"), "2022年四季度")
    assert exc.value.field == "period"


# --------------------------------------------------------------------------- scores and standings


def test_the_ranking_scores_each_company_from_its_events(facts: World) -> None:
    do_derive_credit_events(facts.scope("hn_admin"), Q4, as_of=AS_OF)
    do_record_credit_event(facts.scope("hn_pharmacy"), CreditInput(DISTRIBUTOR, "near_expiry", D(2022, 12, 1)))
    do_record_sanction(facts.scope("hn_admin"), SanctionInput(DISTRIBUTOR, "warning", D(2022, 12, 15), "约谈"))
    with use_scope(facts.scope("hn_admin")):
        rows = credit_scores(parse_period(Q4))
    # 100 − late major (2 × 2) − shortage major (5 × 2) − near-expiry minor (3 × 1) = 83: B
    # 辉瑞 wins HN-N7 and has no event: 100, A
    assert [(r.rank, r.name, r.score.score, r.score.standing, r.score.events, r.sanctions) for r in rows] == [
        (1, facts.company.name, Decimal(100), "A", 0, 0),
        (2, DISTRIBUTOR, Decimal(83), "B", 3, 1),
    ]
    # another period: nothing happened
    with use_scope(facts.scope("hn_admin")):
        assert [r.score.score for r in credit_scores(parse_period("2023"))] == [Decimal(100)]
    # a hospital scores from its own institution's events; 三亚 has none: a tie at 100, both rank 1
    with use_scope(facts.scope("hn2_vbp")):
        assert [(r.rank, r.score.score) for r in credit_scores(parse_period(Q4))] == [(1, Decimal(100))]
    with use_scope(facts.scope("hn_admin")):
        assert [r.name for r in credit_scores(parse_period(Q4), search="国药")] == [DISTRIBUTOR]


# --------------------------------------------------------------------------- sanctions


def test_the_bureau_records_sanctions_and_hospitals_read_them(world: World) -> None:
    from jicai.organizations.models import Company
    from jicai.supply.models import Sanction

    with system_scope("test"):
        Company.objects.create(name="备选制药有限公司", role="manufacturer")
    admin = world.scope("hn_admin")
    with pytest.raises(WorkflowError) as exc:
        do_record_sanction(admin, SanctionInput(world.company.name, "backup_supplier", D(2023, 1, 5)))
    assert exc.value.field == "backup_company"
    sanction = do_record_sanction(
        admin,
        SanctionInput(
            world.company.name, "backup_supplier", D(2023, 1, 5), "启用备选企业", "HN-N7", "A01", "备选制药有限公司"
        ),
    )
    assert (sanction.region_code, sanction.decided_by_id, sanction.item_id) == (
        "460000",
        world.user("hn_admin").pk,
        world.hn_item.pk,
    )
    changed = do_update_sanction(
        admin, sanction.pk, SanctionInput(world.company.name, "compensation", D(2023, 1, 5), amount=Decimal("12000.50"))
    )
    assert (changed.kind, changed.amount, changed.backup_company_id) == ("compensation", Decimal("12000.50"), None)
    assert audit_actions("supply.Sanction") == ["create", "update"]
    with pytest.raises(ScopeError):
        do_record_sanction(world.scope("hn_vbp"), SanctionInput(world.company.name, "warning", D(2023, 1, 5)))
    with pytest.raises(ScopeError):
        do_record_sanction(world.scope("hn_analyst"), SanctionInput(world.company.name, "warning", D(2023, 1, 5)))
    with pytest.raises(WorkflowError):
        do_record_sanction(admin, SanctionInput(world.company.name, "warning", D(2023, 1, 5), item_code="A01"))
    with pytest.raises(WorkflowError):
        do_record_sanction(admin, SanctionInput(world.company.name, "compensation", D(2023, 1, 5), amount=Decimal(-1)))
    with use_scope(world.scope("hn_vbp")):
        assert Sanction.objects.count() == 1
    with use_scope(world.scope("sx_vbp")):
        assert Sanction.objects.count() == 0


# --------------------------------------------------------------------------- distributor scorecard


def test_the_scorecard_gives_on_time_and_fill_rates_per_distributor(facts: World) -> None:
    rows, total = distributor_scorecard(facts.scope("hn_admin"), parse_period(Q4), sort="on_time_rate")
    assert total == 3
    by_name = {r.distributor: r for r in rows}
    known = by_name[DISTRIBUTOR]
    # 4 ordered, 3 delivered of which 1 within 2 days, 3 accepted
    assert (known.ordered_lines, known.delivered_lines, known.on_time_lines, known.accepted_lines) == (4, 3, 1, 3)
    assert (known.on_time_rate, known.fill_rate, known.qty_fill_rate) == (
        Decimal("0.3333"),
        Decimal("0.7500"),
        Decimal("0.7500"),
    )
    assert (known.institutions, by_name[""].fill_rate, by_name["某配送公司"].on_time_rate) == (
        1,
        Decimal(1),
        Decimal(1),
    )
    assert rows[0].distributor == DISTRIBUTOR  # lowest on-time rate first
    page, total = distributor_scorecard(facts.scope("hn_admin"), parse_period(Q4), search="国药", limit=1)
    assert (total, [r.distributor for r in page]) == (1, [DISTRIBUTOR])
    # a hospital sees its own lines; another province its own
    rows, _ = distributor_scorecard(facts.scope("hn2_vbp"), parse_period(Q4))
    assert [(r.distributor, r.ordered_lines) for r in rows] == [("", 1)]
    rows, _ = distributor_scorecard(facts.scope("sx_admin"), parse_period(Q4))
    assert [(r.distributor, r.on_time_rate) for r in rows] == [(DISTRIBUTOR, Decimal(0))]


def test_a_distributors_months(facts: World) -> None:
    rows = distributor_months(facts.scope("hn_admin"), DISTRIBUTOR, parse_period(Q4))
    assert [(r.month, r.ordered_lines, r.fill_rate) for r in rows] == [("2022-11", 4, Decimal("0.7500"))]
