"""The supply registers as import/export specs of the dataset framework (``jicai.imports``).

``run_import`` accepts any ``DatasetSpec``, so the registers reuse the framework as it is — header
mapping by English name or Chinese label, the cell parsers, row and column errors in Chinese, the
all-or-nothing write with audit rows, the ``ImportRun`` log and its Excel report — without being
listed among the master datasets (``jicai.imports.datasets`` is not edited). Each spec's ``prepare``
resolves a row with the same function the register's action uses, so a row is accepted by the import
exactly when the form would accept it. ``export_row`` writes a record back in the spec's columns, so
export → import is an identity.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from django.db import models

from jicai.core.tenancy import Scope
from jicai.imports.datasets import cell_text
from jicai.imports.spec import Column, DatasetSpec, RowContext, RowIssue
from jicai.imports.values import ValueParseError, parse_bool, parse_date, parse_money, parse_quantity, parse_text
from jicai.supply import permissions as perms
from jicai.supply.actions.credit import CreditInput, SanctionInput, resolve_credit_event, resolve_sanction
from jicai.supply.actions.incidents import IncidentInput, resolve_incident
from jicai.supply.actions.reports import ReportInput, resolve_report
from jicai.supply.common import WorkflowError
from jicai.supply.models import (
    CreditEvent,
    CreditKind,
    CreditSource,
    IncidentKind,
    IncidentStatus,
    Sanction,
    SanctionKind,
    Severity,
    SupplyIncident,
    SupplyReport,
)


def _text(max_length: int) -> Callable[[object], str]:
    return lambda v: parse_text(v, max_length=max_length)


def _choice(mapping: dict[str, str], options_zh: str) -> Callable[[object], str]:
    lookup = {k.casefold(): v for k, v in mapping.items()}

    def parse(value: object) -> str:
        text = parse_text(value).casefold()
        if text in lookup:
            return lookup[text]
        raise ValueParseError("value.choice", f"不是可选值，可选：{options_zh}", "Not an allowed value")

    return parse


def _labels(choices: type[models.TextChoices], zh: Mapping[Any, tuple[str, ...]]) -> dict[str, str]:
    out = {value: value for value in choices.values}
    for value, words in zh.items():
        for word in words:
            out[word] = value
    return out


KIND_ZH = {IncidentKind.SHORTAGE: ("短缺", "供应短缺"), IncidentKind.INTERRUPTION: ("断供", "供应中断")}
CREDIT_KIND_ZH = {
    CreditKind.LATE_DELIVERY: ("配送不及时", "配送延迟", "延迟配送"),
    CreditKind.SHORTAGE: ("短缺", "供应短缺"),
    CreditKind.NEAR_EXPIRY: ("近效期", "近效期配送"),
    CreditKind.UNSUITABLE_PACK: ("包装规格不适宜", "包装不适宜"),
    CreditKind.QUALITY_PROBLEM: ("质量问题",),
    CreditKind.MALICIOUS_INTERRUPTION: ("恶意断供",),
}
SOURCE_ZH = {
    CreditSource.MANUAL: ("手工登记", "手工"),
    CreditSource.DERIVED: ("由采购数据生成", "采购数据"),
    CreditSource.INCIDENT: ("来自已确认的供应事件", "供应事件"),
}
SEVERITY_ZH = {Severity.MINOR: ("一般",), Severity.MAJOR: ("较重",), Severity.SEVERE: ("严重",)}
SANCTION_ZH = {
    SanctionKind.WARNING: ("警告", "约谈警告"),
    SanctionKind.COMPENSATION: ("赔偿",),
    SanctionKind.DISCIPLINE: ("惩戒",),
    SanctionKind.EXIT: ("退出", "取消中选资格"),
    SanctionKind.BACKUP_SUPPLIER: ("备选", "备选企业"),
    SanctionKind.EMERGENCY_SUPPLY: ("应急保障", "应急供应"),
}


def _as_row_issue(exc: WorkflowError, default_column: str) -> RowIssue:
    return RowIssue(exc.field or default_column, str(exc.code or "row.invalid"), exc.message_zh, exc.message_en)


def _code(value: Any) -> str:
    return value.code if value is not None else ""


class SupplySpec(DatasetSpec):
    """What the supply specs share: no ``extra`` column, the resolver's errors as row issues."""

    keeps_extra: ClassVar[bool] = False

    def export_queryset(self, scope: Scope) -> models.QuerySet[Any]:
        return super().export_queryset(scope).select_related(*self.related)

    related: ClassVar[tuple[str, ...]] = ()


class IncidentsSpec(SupplySpec):
    name = "supply_incidents"
    label = "供应事件"
    label_en = "Supply incidents"
    model = SupplyIncident
    resource = perms.SUPPLY_INCIDENT
    columns = (
        Column("batch_code", "批次编码", _text(40), required=True, key=True, aliases=("采购批次",)),
        Column("item_code", "品种编码", _text(40), required=True, key=True),
        Column("institution_code", "医疗机构编码", _text(12), aliases=("机构编码",), help="空 = 全地区"),
        Column("region_code", "地区代码", _text(6), aliases=("行政区划代码",)),
        Column("kind", "事件类型", _choice(_labels(IncidentKind, KIND_ZH), "短缺、断供"), required=True, key=True),
        Column("start_on", "开始日期", parse_date, required=True, key=True),
        Column("end_on", "结束日期", parse_date),
        Column("product_code", "中选产品编码", _text(40), aliases=("药品编码",)),
        Column("cause", "原因", _text(2000), required=True, aliases=("断供原因", "短缺原因")),
    )
    key_fields = ("batch_id", "item_id", "institution_id", "region_code", "kind", "start_on")
    compare_fields = ("selected_id", "company_id", "end_on", "cause")
    sources: ClassVar[dict[str, tuple[str, ...]]] = {"selected_id": ("product_code",), "company_id": ("product_code",)}
    related = ("batch", "item", "institution", "selected__product")

    def prepare(self, values: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        data = IncidentInput(
            batch_code=values["batch_code"],
            item_code=values["item_code"],
            kind=values["kind"],
            start_on=values["start_on"],
            cause=values["cause"],
            product_code=values.get("product_code") or "",
            institution_code=values.get("institution_code") or "",
            region_code=values.get("region_code") or "",
            end_on=values.get("end_on"),
        )
        try:
            resolved = resolve_incident(ctx.scope, data)
        except WorkflowError as exc:
            raise _as_row_issue(exc, "batch_code") from None
        fields = {
            "batch_id": resolved["batch"].pk,
            "item_id": resolved["item"].pk,
            "selected_id": resolved["selected"].pk if resolved["selected"] else None,
            "company_id": resolved["company"].pk if resolved["company"] else None,
            "institution_id": resolved["institution"].pk if resolved["institution"] else None,
            "region_code": resolved["region_code"],
            "kind": resolved["kind"],
            "start_on": resolved["start_on"],
            "end_on": resolved["end_on"],
            "cause": resolved["cause"],
            "reported_by_id": ctx.scope.actor_id,
        }
        stored = SupplyIncident.objects.filter(
            batch_id=fields["batch_id"],
            item_id=fields["item_id"],
            institution_id=fields["institution_id"],
            region_code=fields["region_code"],
            kind=fields["kind"],
            start_on=fields["start_on"],
        ).first()
        if stored is not None and stored.status in (IncidentStatus.CLOSED, IncidentStatus.REJECTED):
            present = set(ctx.options.get("present_columns", ()))
            shown = [f for f in self.compare_fields if self.field_present(f, present)]
            if any(getattr(stored, f) != fields[f] for f in shown):
                raise RowIssue(
                    "start_on",
                    "incident.status",
                    "该事件已关闭或驳回，不能通过导入修改",
                    "a closed or rejected incident cannot be changed by import",
                )
        return fields

    def export_row(self, obj: SupplyIncident) -> dict[str, Any]:
        return {
            "batch_code": obj.batch.code,
            "item_code": obj.item.item_code,
            "institution_code": _code(obj.institution),
            "region_code": obj.region_code,
            "kind": obj.kind,
            "start_on": obj.start_on,
            "end_on": obj.end_on,
            "product_code": obj.selected.product.code if obj.selected else "",
            "cause": obj.cause,
        }


class CreditEventsSpec(SupplySpec):
    name = "credit_events"
    label = "企业诚信档案事件"
    label_en = "Credit events"
    model = CreditEvent
    resource = perms.CREDIT
    columns = (
        Column("company", "企业名称", _text(200), required=True, key=True, aliases=("企业",)),
        Column(
            "kind",
            "事件类型",
            _choice(
                _labels(CreditKind, CREDIT_KIND_ZH), "配送不及时、短缺、近效期、包装规格不适宜、质量问题、恶意断供"
            ),
            required=True,
            key=True,
        ),
        Column("occurred_on", "发生日期", parse_date, required=True, key=True, aliases=("日期",)),
        Column("severity", "严重程度", _choice(_labels(Severity, SEVERITY_ZH), "一般、较重、严重"), required=True),
        Column("institution_code", "医疗机构编码", _text(12), aliases=("机构编码",)),
        Column("product_code", "药品编码", _text(40)),
        Column("region_code", "地区代码", _text(6)),
        Column("description", "情况说明", _text(2000), aliases=("说明",)),
        Column("source", "来源", _choice(_labels(CreditSource, SOURCE_ZH), "manual（手工登记）、derived、incident")),
    )
    key_fields = ("company_id", "kind", "occurred_on", "institution_id", "product_id", "source")
    compare_fields = ("severity", "description", "region_code")
    related = ("company", "institution", "product")

    def prepare(self, values: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        data = CreditInput(
            company=values["company"],
            kind=values["kind"],
            occurred_on=values["occurred_on"],
            severity=values["severity"],
            description=values.get("description") or "",
            institution_code=values.get("institution_code") or "",
            product_code=values.get("product_code") or "",
            region_code=values.get("region_code") or "",
        )
        try:
            resolved = resolve_credit_event(ctx.scope, data)
        except WorkflowError as exc:
            raise _as_row_issue(exc, "company") from None
        source = values.get("source") or CreditSource.MANUAL
        fields = {
            "company_id": resolved["company"].pk,
            "kind": resolved["kind"],
            "occurred_on": resolved["occurred_on"],
            "institution_id": resolved["institution"].pk if resolved["institution"] else None,
            "region_code": resolved["region_code"],
            "product_id": resolved["product"].pk if resolved["product"] else None,
            "description": resolved["description"],
            "severity": resolved["severity"],
            "source": source,
            "created_by_id": ctx.scope.actor_id,
        }
        if source != CreditSource.MANUAL:
            fields = self._generated(fields, ctx)
        return fields

    def _generated(self, fields: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        """A derived or incident row read back from an export: it matches its stored row and changes
        nothing (those rows follow their sources); one that is not on record cannot be imported."""
        stored = CreditEvent.objects.filter(**{k: fields[k] for k in self.key_fields}).first()
        if stored is None:
            raise RowIssue(
                "source",
                "credit.not_manual",
                "由采购数据或供应事件生成的记录只能由系统生成，不能导入新增；请删除该行或将来源改为 manual",
                "derived and incident events are made by the system, not imported",
            )
        kept = {name: getattr(stored, name) for name in self.compare_fields}
        if any(kept[name] != fields[name] for name in self.compare_fields):
            ctx.warn(
                "source",
                "credit.generated_kept",
                "生成的记录不能通过导入修改，已保留原值",
                "a generated event is not changed by import; kept as stored",
            )
        return fields | kept

    def export_row(self, obj: CreditEvent) -> dict[str, Any]:
        return {
            "company": obj.company.name,
            "kind": obj.kind,
            "occurred_on": obj.occurred_on,
            "severity": obj.severity,
            "institution_code": _code(obj.institution),
            "product_code": _code(obj.product),
            "region_code": obj.region_code,
            "description": obj.description,
            "source": obj.source,
        }


class SanctionsSpec(SupplySpec):
    name = "sanctions"
    label = "处理措施"
    label_en = "Sanctions"
    model = Sanction
    resource = perms.SANCTION
    columns = (
        Column("company", "企业名称", _text(200), required=True, key=True, aliases=("企业",)),
        Column(
            "kind",
            "措施类型",
            _choice(_labels(SanctionKind, SANCTION_ZH), "警告、赔偿、惩戒、退出、备选、应急保障"),
            required=True,
            key=True,
        ),
        Column("decided_on", "决定日期", parse_date, required=True, key=True),
        Column("region_code", "地区代码", _text(6)),
        Column("batch_code", "批次编码", _text(40)),
        Column("item_code", "品种编码", _text(40)),
        Column("backup_company", "备选或应急供应企业", _text(200)),
        Column("amount", "赔偿金额（元）", parse_money),
        Column("note", "说明", _text(2000), aliases=("备注",)),
    )
    key_fields = ("company_id", "kind", "decided_on", "region_code")
    compare_fields = ("batch_id", "item_id", "backup_company_id", "amount", "note")
    related = ("company", "batch", "item", "backup_company")

    def prepare(self, values: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        data = SanctionInput(
            company=values["company"],
            kind=values["kind"],
            decided_on=values["decided_on"],
            note=values.get("note") or "",
            batch_code=values.get("batch_code") or "",
            item_code=values.get("item_code") or "",
            backup_company=values.get("backup_company") or "",
            amount=values.get("amount"),
            region_code=values.get("region_code") or "",
        )
        try:
            resolved = resolve_sanction(ctx.scope, data)
        except WorkflowError as exc:
            raise _as_row_issue(exc, "company") from None
        return {
            "company_id": resolved["company"].pk,
            "kind": resolved["kind"],
            "decided_on": resolved["decided_on"],
            "region_code": resolved["region_code"],
            "batch_id": resolved["batch"].pk if resolved["batch"] else None,
            "item_id": resolved["item"].pk if resolved["item"] else None,
            "backup_company_id": resolved["backup_company"].pk if resolved["backup_company"] else None,
            "amount": resolved["amount"],
            "note": resolved["note"],
            "decided_by_id": ctx.scope.actor_id,
        }

    def export_row(self, obj: Sanction) -> dict[str, Any]:
        return {
            "company": obj.company.name,
            "kind": obj.kind,
            "decided_on": obj.decided_on,
            "region_code": obj.region_code,
            "batch_code": _code(obj.batch),
            "item_code": obj.item.item_code if obj.item else "",
            "backup_company": obj.backup_company.name if obj.backup_company else "",
            "amount": obj.amount,
            "note": obj.note,
        }


class SupplyReportsSpec(SupplySpec):
    name = "supply_reports"
    label = "企业供应报告"
    label_en = "Supply reports"
    model = SupplyReport
    resource = perms.SUPPLY_REPORT
    columns = (
        Column("company", "生产企业", _text(200), required=True, key=True, aliases=("企业名称", "企业")),
        Column("batch_code", "批次编码", _text(40), required=True, key=True),
        Column("item_code", "品种编码", _text(40), required=True, key=True),
        Column("product_code", "药品编码", _text(40), aliases=("产品编码",)),
        Column("report_date", "报告日期", parse_date, required=True, key=True),
        Column("region_code", "地区代码", _text(6)),
        Column("stock_on_hand", "库存量", parse_quantity, required=True, aliases=("库存",)),
        Column("capacity_per_month", "月产能", parse_quantity, aliases=("产能",)),
        Column("monthly_demand", "预计月需求量", parse_quantity, aliases=("月需求量",)),
        Column("production_stopped", "是否停产", parse_bool, aliases=("停产",)),
        Column("stop_reason", "停产原因", _text(2000)),
        Column("expected_restart", "预计复产日期", parse_date),
        Column("note", "说明", _text(2000), aliases=("备注",)),
    )
    key_fields = ("company_id", "item_id", "product_id", "region_code", "report_date")
    compare_fields = (
        "batch_id",
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
    # A report is a snapshot: its demand and cover are recomputed from each row (an absent demand
    # column means "no demand entered", so the agreed volumes give it).
    sources: ClassVar[dict[str, tuple[str, ...]]] = {
        "monthly_demand_entered": ("stock_on_hand",),
        "monthly_demand": ("stock_on_hand",),
        "demand_source": ("stock_on_hand",),
        "stock_cover": ("stock_on_hand",),
    }
    related = ("company", "batch", "item", "product")

    def prepare(self, values: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        data = ReportInput(
            company=values["company"],
            batch_code=values["batch_code"],
            item_code=values["item_code"],
            report_date=values["report_date"],
            stock_on_hand=values["stock_on_hand"],
            product_code=values.get("product_code") or "",
            capacity_per_month=values.get("capacity_per_month"),
            monthly_demand=values.get("monthly_demand"),
            production_stopped=bool(values.get("production_stopped")),
            stop_reason=values.get("stop_reason") or "",
            expected_restart=values.get("expected_restart"),
            note=values.get("note") or "",
            region_code=values.get("region_code") or "",
        )
        try:
            resolved = resolve_report(ctx.scope, data)
        except WorkflowError as exc:
            raise _as_row_issue(exc, "company") from None
        fields = {
            f"{name}_id" if name in {"company", "batch", "item", "product"} else name: (
                getattr(value, "pk", None) if name in {"company", "batch", "item", "product"} else value
            )
            for name, value in resolved.items()
        }
        fields["created_by_id"] = ctx.scope.actor_id
        return fields

    def export_row(self, obj: SupplyReport) -> dict[str, Any]:
        return {
            "company": obj.company.name,
            "batch_code": obj.batch.code,
            "item_code": obj.item.item_code,
            "product_code": _code(obj.product),
            "report_date": obj.report_date,
            "region_code": obj.region_code,
            "stock_on_hand": obj.stock_on_hand,
            "capacity_per_month": obj.capacity_per_month,
            "monthly_demand": obj.monthly_demand_entered,
            "production_stopped": obj.production_stopped,
            "stop_reason": obj.stop_reason,
            "expected_restart": obj.expected_restart,
            "note": obj.note,
        }


SPECS: dict[str, SupplySpec] = {
    spec.name: spec for spec in (IncidentsSpec(), CreditEventsSpec(), SanctionsSpec(), SupplyReportsSpec())
}

__all__ = ["SPECS", "CreditEventsSpec", "IncidentsSpec", "SanctionsSpec", "SupplyReportsSpec", "cell_text"]
