"""Manufacturers' supply reports (R-I4): capacity, stock on hand, production stops, stock cover.

A bureau enters them on the manufacturers' behalf (SX 五(二): 按要求报告产能、库存和供应等情况; CQ 二(六):
应急储备、库存和停产报告制度) or imports a file of them. The expected monthly demand is the one entered,
else the agreed volumes of the item in the report's region for the agreement years running on the
report date ÷ 12 (``policy.supply.monthly_demand``) — only the agreements assigned to the reported
product when the report names one and any agreement is assigned to it. Stock cover = stock ÷ monthly
demand (``policy.supply.stock_cover``); both are stored with the report, so the alert list filters in
the database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Sum

from jicai.catalog.models import Product
from jicai.core.tenancy import Scope, ScopeError, region_prefix, use_scope
from jicai.policy.supply import monthly_demand, stock_cover
from jicai.programme.models import Agreement, Item
from jicai.supply import lookups
from jicai.supply import permissions as perms
from jicai.supply.common import WorkflowError, audited, changed, fields_of, require
from jicai.supply.models import DemandSource, SupplyReport

AUDITED = (
    "company",
    "batch",
    "item",
    "product",
    "region_code",
    "report_date",
    "capacity_per_month",
    "stock_on_hand",
    "monthly_demand_entered",
    "monthly_demand",
    "demand_source",
    "stock_cover",
    "production_stopped",
    "stop_reason",
    "expected_restart",
    "note",
)


@dataclass(frozen=True)
class ReportInput:
    company: str
    batch_code: str
    item_code: str
    report_date: dt.date
    stock_on_hand: Decimal
    product_code: str = ""
    capacity_per_month: Decimal | None = None
    monthly_demand: Decimal | None = None
    production_stopped: bool = False
    stop_reason: str = ""
    expected_restart: dt.date | None = None
    note: str = ""
    region_code: str = ""


def agreed_demand(item: Item, product: Product | None, region_code: str, on: dt.date) -> Decimal | None:
    """Σ agreed quantity of ``item`` in the region for the years running on ``on`` ÷ 12; None without any."""
    agreements = Agreement.objects.filter(
        item=item,
        institution__region_code__startswith=region_prefix(region_code),
        period_start__lte=on,
        period_end__gte=on,
    )
    if product is not None and agreements.filter(product=product).exists():
        agreements = agreements.filter(product=product)
    total = agreements.aggregate(total=Sum("agreed_qty"))["total"]
    return monthly_demand(total) if total is not None else None


def resolve_report(acting: Scope, data: ReportInput) -> dict[str, Any]:
    """Fields of a supply report with its demand and stock cover (inside ``use_scope(acting)``)."""
    for name in ("stock_on_hand", "capacity_per_month", "monthly_demand"):
        value = getattr(data, name)
        if value is not None and value < 0:
            raise WorkflowError("数量不能为负数", f"{name} must not be negative", "decimal.negative", name)
    if data.production_stopped and not data.stop_reason.strip():
        raise WorkflowError("停产时请填写停产原因", "a stop needs its reason", "value.required", "stop_reason")
    if data.expected_restart is not None and data.expected_restart < data.report_date:
        raise WorkflowError(
            "预计复产日期早于报告日期", "the restart is before the report date", "period.order", "expected_restart"
        )
    company = lookups.company(data.company)
    batch = lookups.batch(data.batch_code)
    item = lookups.item(batch, data.item_code)
    product = lookups.product(data.product_code) if data.product_code.strip() else None
    region_code = lookups.region_of(acting, None, data.region_code)
    if data.monthly_demand is not None and data.monthly_demand > 0:
        demand: Decimal | None = data.monthly_demand
        source = DemandSource.ENTERED
    else:
        demand = agreed_demand(item, product, region_code, data.report_date)
        source = DemandSource.AGREEMENTS if demand else DemandSource.UNKNOWN
    return {
        "company": company,
        "batch": batch,
        "item": item,
        "product": product,
        "region_code": region_code,
        "report_date": data.report_date,
        "capacity_per_month": data.capacity_per_month,
        "stock_on_hand": data.stock_on_hand,
        "monthly_demand_entered": data.monthly_demand,
        "monthly_demand": demand,
        "demand_source": source,
        "stock_cover": stock_cover(data.stock_on_hand, demand),
        "production_stopped": data.production_stopped,
        "stop_reason": data.stop_reason.strip() if data.production_stopped else "",
        "expected_restart": data.expected_restart if data.production_stopped else None,
        "note": data.note.strip(),
    }


def _duplicate() -> WorkflowError:
    return WorkflowError(
        "该企业同一品种（产品）在同一地区、同一报告日期已有报告",
        "a report of this company, item and date is already on record",
        "report.duplicate",
        "report_date",
    )


def do_record_supply_report(acting: Scope, data: ReportInput) -> SupplyReport:
    require(acting, perms.SUPPLY_REPORT, "write")
    with use_scope(acting), transaction.atomic():
        report = SupplyReport(**resolve_report(acting, data), created_by_id=acting.actor_id)
        try:
            with transaction.atomic():
                report.save()
        except IntegrityError:
            raise _duplicate() from None
        audited(acting, "create", report, new=fields_of(report, AUDITED))
    return report


def do_update_supply_report(acting: Scope, report_id: int, data: ReportInput) -> SupplyReport:
    require(acting, perms.SUPPLY_REPORT, "write")
    with use_scope(acting), transaction.atomic():
        report: SupplyReport | None = SupplyReport.objects.select_for_update().filter(pk=report_id).first()
        if report is None:
            raise ScopeError(f"no supply report {report_id} in scope")
        old = fields_of(report, AUDITED)
        for name, value in resolve_report(acting, data).items():
            setattr(report, name, value)
        try:
            with transaction.atomic():
                report.save()
        except IntegrityError:
            raise _duplicate() from None
        before, after = changed(old, fields_of(report, AUDITED))
        if after:
            audited(acting, "update", report, old=before, new=after)
    return report
