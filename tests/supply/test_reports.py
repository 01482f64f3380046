"""Manufacturers' supply reports (R-I4): demand from the agreed volumes, stock cover, low-stock alerts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from jicai.core.tenancy import ScopeError, system_scope, use_scope
from jicai.supply.actions import ReportInput, do_record_supply_report, do_update_supply_report
from jicai.supply.common import WorkflowError
from jicai.supply.models import SupplyReport
from jicai.supply.queries import low_stock_reports
from tests.conftest import World

from .conftest import SELECTED, D, audit_actions

pytestmark = pytest.mark.django_db


@pytest.fixture
def agreements(world: World) -> World:
    """三亚 also holds an agreement of HN-N7 / A01: 2 000 beside 海口's 10 000 (2022-11-01 … 2023-10-31)."""
    from jicai.programme.models import Agreement

    with system_scope("fixture"):
        Agreement.objects.create(
            batch=world.hn_batch,
            item=world.hn_item,
            institution=world.hn_inst2,
            year=1,
            agreed_qty=Decimal(2000),
            period_start=D(2022, 11, 1),
            period_end=D(2023, 10, 31),
        )
    return world


def report(world: World, user: str = "hn_admin", **kw: Any) -> SupplyReport:
    values: dict[str, Any] = {
        "company": world.company.name,
        "batch_code": "HN-N7",
        "item_code": "A01",
        "report_date": D(2023, 1, 15),
        "stock_on_hand": Decimal(800),
    }
    return do_record_supply_report(world.scope(user), ReportInput(**(values | kw)))


def test_stock_cover_uses_the_regions_agreed_volumes_over_twelve(agreements: World) -> None:
    # Given 12 000 agreed in the province for the year running on 15 January 2023
    r = report(agreements, capacity_per_month=Decimal(5000))
    # Then the monthly demand is 1 000 and 800 in stock cover 0.80 months
    assert (r.monthly_demand, r.demand_source, r.stock_cover) == (Decimal(1000), "agreements", Decimal("0.80"))
    assert (r.region_code, r.created_by_id) == ("460000", agreements.user("hn_admin").pk)
    assert audit_actions("supply.SupplyReport") == ["create"]
    # 三亚's bureau counts 三亚's agreements only: 2 000 ÷ 12 = 166.6667; 500 cover 3.00 months
    city = report(agreements, user="sy_admin", stock_on_hand=Decimal(500))
    assert (city.region_code, city.monthly_demand, city.stock_cover) == ("460200", Decimal("166.6667"), Decimal("3.00"))


def test_an_entered_demand_wins_and_a_product_counts_its_assigned_agreements(agreements: World) -> None:
    from jicai.programme.models import Agreement

    entered = report(agreements, monthly_demand=Decimal(400), stock_on_hand=Decimal(200))
    assert (entered.monthly_demand, entered.demand_source, entered.stock_cover) == (
        Decimal(400),
        "entered",
        Decimal("0.50"),
    )
    with system_scope("test"):
        Agreement.objects.filter(pk=agreements.hn_agreement.pk).update(product=agreements.product)
    assigned = report(agreements, product_code=SELECTED, report_date=D(2023, 1, 16), stock_on_hand=Decimal(1000))
    assert (assigned.monthly_demand, assigned.stock_cover) == (Decimal("833.3333"), Decimal("1.20"))


def test_without_a_running_agreement_the_cover_is_unknown(agreements: World) -> None:
    r = report(agreements, report_date=D(2024, 1, 15))
    assert (r.monthly_demand, r.demand_source, r.stock_cover) == (None, "unknown", None)


def test_the_alert_list_holds_the_latest_report_below_the_threshold_or_stopped(agreements: World) -> None:
    from jicai.organizations.models import Company

    with system_scope("test"):
        Company.objects.create(name="齐鲁制药有限公司", role="manufacturer")
    low = report(agreements)  # 0.80 months
    report(agreements, company="齐鲁制药有限公司", stock_on_hand=Decimal(5000))  # 5.00: fine
    stopped = report(
        agreements,
        company="齐鲁制药有限公司",
        report_date=D(2023, 1, 20),
        stock_on_hand=Decimal(3000),
        production_stopped=True,
        stop_reason="原料药供应中断",
        expected_restart=D(2023, 3, 1),
    )
    with use_scope(agreements.scope("hn_admin")):
        assert [r.pk for r in low_stock_reports()] == [low.pk, stopped.pk]
        assert [r.pk for r in low_stock_reports(Decimal("0.5"))] == [stopped.pk]
    # a newer report with enough stock takes 辉瑞 off the list
    report(agreements, report_date=D(2023, 2, 15), stock_on_hand=Decimal(1500))
    with use_scope(agreements.scope("hn_admin")):
        assert [r.pk for r in low_stock_reports()] == [stopped.pk]
    # hospitals of the province read the list; another province does not see it
    with use_scope(agreements.scope("hn_vbp")):
        assert [r.pk for r in low_stock_reports()] == [stopped.pk]
    with use_scope(agreements.scope("sx_admin")):
        assert list(low_stock_reports()) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"stock_on_hand": Decimal(-1)}, "stock_on_hand"),
        ({"production_stopped": True}, "stop_reason"),
        ({"production_stopped": True, "stop_reason": "检修", "expected_restart": D(2023, 1, 1)}, "expected_restart"),
        ({"company": "无此企业"}, "company"),
        ({"item_code": "Z9"}, "item_code"),
        ({"product_code": "NOPE"}, "product_code"),
        ({"region_code": "610000"}, "region_code"),
    ],
)
def test_reports_are_checked(agreements: World, change: dict[str, Any], field: str) -> None:
    with pytest.raises(WorkflowError) as exc:
        report(agreements, **change)
    assert exc.value.field == field


def test_one_report_per_company_item_region_and_date_and_edits_recompute(agreements: World) -> None:
    r = report(agreements)
    with pytest.raises(WorkflowError) as exc:
        report(agreements)
    assert exc.value.code == "report.duplicate"
    data = ReportInput(agreements.company.name, "HN-N7", "A01", D(2023, 1, 15), Decimal(2500))
    edited = do_update_supply_report(agreements.scope("hn_admin"), r.pk, data)
    assert edited.stock_cover == Decimal("2.50")
    assert audit_actions("supply.SupplyReport") == ["create", "update"]


def test_hospitals_read_but_do_not_enter_reports(agreements: World) -> None:
    with pytest.raises(ScopeError):
        report(agreements, user="hn_vbp")
    analyst = report(agreements, user="hn_analyst")  # the analyst enters on the manufacturer's behalf
    with pytest.raises(ScopeError):
        do_update_supply_report(
            agreements.scope("sy_admin"),
            analyst.pk,
            ReportInput(agreements.company.name, "HN-N7", "A01", D(2023, 1, 15), Decimal(1)),
        )
