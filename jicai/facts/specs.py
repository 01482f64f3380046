"""Import specs of the activity datasets (purchases, payments, dispensing), same rules as master data."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar

from jicai.catalog.models import Product
from jicai.core.tenancy import Level
from jicai.facts.schemas import DISPENSING, PAYMENTS, PURCHASES, FactTable
from jicai.imports.spec import Column, DatasetSpec, RowContext, RowIssue
from jicai.imports.values import ValueParseError, parse_date, parse_money, parse_quantity, parse_text, parse_unit_price
from jicai.organizations.models import Department, Institution

_ICD10 = re.compile(r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$")
FEN = Decimal("0.01")


def _text(max_length: int) -> Any:
    return lambda v: parse_text(v, max_length=max_length)


def _code(value: object) -> str:
    text = parse_text(value, max_length=64)
    if any(c.isspace() for c in text):
        raise ValueParseError("code.space", "编码中不能有空格", "A code cannot contain spaces")
    return text


def _diagnosis(value: object) -> str:
    text = parse_text(value, max_length=16).upper()
    if not _ICD10.match(text):
        raise ValueParseError(
            "diagnosis.icd10",
            "诊断编码应为 ICD-10 格式，如 I10 或 E11.9",
            "Diagnosis codes are ICD-10, e.g. I10 or E11.9",
        )
    return text


class FactSpec(DatasetSpec):
    """A high-volume dataset stored in the Delta fact store instead of the database."""

    fact_table: ClassVar[FactTable]
    keeps_extra = False
    model = Institution  # unused for storage; kept so shared code can read ``_meta``
    key_fields: ClassVar[tuple[str, ...]]
    compare_fields: ClassVar[tuple[str, ...]] = ()

    def institution_region(self, ctx: RowContext, code: str) -> str:
        """The institution's region code, if the acting scope may load its data."""
        allowed = ctx.cache.get("fact_institutions")
        if allowed is None:
            scope = ctx.scope
            qs = Institution.objects.for_scope(scope)
            if scope.level in (Level.INSTITUTION, Level.DEPARTMENT):
                qs = qs.filter(pk=scope.institution_id)
            allowed = dict(qs.values_list("code", "region_code"))
            ctx.cache["fact_institutions"] = allowed
        if code not in allowed:
            raise RowIssue(
                "institution_code",
                "reference.unknown",
                f"未知的医疗机构编码，或不在您的权限范围内：{code}",
                f"Unknown institution code, or outside your scope: {code}",
                code,
            )
        return str(allowed[code])

    def known_product(self, ctx: RowContext, code: str) -> None:
        known = ctx.cache.get("fact_products")
        if known is None:
            known = set(Product.objects.for_scope(ctx.scope).values_list("code", flat=True))
            ctx.cache["fact_products"] = known
        if code not in known:
            raise RowIssue(
                "product_code",
                "reference.unknown",
                f"未知的药品编码（请先导入药品目录）：{code}",
                f"Unknown product code (import the products first): {code}",
                code,
            )

    def month_of(self, fields: dict[str, Any]) -> str:
        for name in self.fact_table.month_from:
            value = fields.get(name)
            if isinstance(value, dt.date):
                return f"{value.year:04d}-{value.month:02d}"
        raise RowIssue(self.fact_table.month_from[0], "date.missing", "缺少日期", "A date is required")

    def export_row(self, obj: Any) -> dict[str, Any]:  # pragma: no cover - facts export through reports
        raise NotImplementedError

    def write(self, rows: list[dict[str, Any]], home: Any, import_id: int) -> Any:
        return write_facts(self, rows, home, import_id)

    def diff(self, rows: list[dict[str, Any]], home: Any) -> tuple[int, int, int]:
        return diff_facts(self, rows, home)


class PurchasesSpec(FactSpec):
    name = "purchases"
    label = "采购订单明细"
    label_en = "Purchases"
    resource = "purchase"
    fact_table = PURCHASES
    key_fields = ("line_id",)
    columns = (
        Column(
            "line_id", "订单明细编号", _code, required=True, key=True, aliases=("明细编号", "订单明细ID", "订单编号")
        ),
        Column("institution_code", "医疗机构编码", _code, required=True, aliases=("机构编码",)),
        Column("product_code", "药品编码", _code, required=True, aliases=("药品统一编码", "药品代码")),
        Column("ordered_on", "下单日期", parse_date, aliases=("订单日期", "采购日期")),
        Column("delivered_on", "配送日期", parse_date, aliases=("发货日期",)),
        Column("accepted_on", "入库验收日期", parse_date, aliases=("验收日期", "入库日期")),
        Column("qty", "采购数量", parse_quantity, required=True, aliases=("数量",)),
        Column("unit_price", "采购单价", parse_unit_price, aliases=("单价",)),
        Column("amount", "采购金额", parse_money, aliases=("金额",)),
        Column("distributor", "配送企业", _text(200), aliases=("配送商",)),
    )

    def prepare(self, values: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        region = self.institution_region(ctx, values["institution_code"])
        self.known_product(ctx, values["product_code"])
        dates: list[tuple[str, dt.date]] = [
            (n, values[n]) for n in ("ordered_on", "delivered_on", "accepted_on") if values.get(n)
        ]
        if not dates:
            raise RowIssue("ordered_on", "date.missing", "下单、配送、验收日期至少填写一个", "Give at least one date")
        for (earlier, a), (later, b) in itertools.pairwise(dates):
            if b < a:
                raise RowIssue(later, "date.order", f"{later} 早于 {earlier}", f"{later} is before {earlier}", b)
        qty, price, amount = values["qty"], values.get("unit_price"), values.get("amount")
        if amount is None and price is not None:
            amount = (qty * price).quantize(FEN, rounding=ROUND_HALF_UP)
        if amount is None:
            raise RowIssue(
                "amount", "amount.missing", "采购金额和采购单价至少填写一个", "Give the amount or the unit price"
            )
        if price is None and qty:
            price = (amount / qty).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
        fields = {
            "line_id": values["line_id"],
            "institution_code": values["institution_code"],
            "region_code": region,
            "product_code": values["product_code"],
            "ordered_on": values.get("ordered_on"),
            "delivered_on": values.get("delivered_on"),
            "accepted_on": values.get("accepted_on"),
            "qty": qty,
            "unit_price": price,
            "amount": amount,
            "distributor": values.get("distributor") or "",
        }
        fields["month"] = self.month_of(fields)
        return fields


class PaymentsSpec(FactSpec):
    name = "payments"
    label = "回款明细"
    label_en = "Payments"
    resource = "payment"
    fact_table = PAYMENTS
    key_fields = ("payment_id",)
    columns = (
        Column("payment_id", "回款编号", _code, required=True, key=True, aliases=("付款编号", "支付编号")),
        Column("line_id", "订单明细编号", _code, required=True, aliases=("明细编号",)),
        Column("institution_code", "医疗机构编码", _code, required=True, aliases=("机构编码",)),
        Column("paid_on", "回款日期", parse_date, required=True, aliases=("付款日期", "支付日期")),
        Column("amount", "回款金额", parse_money, required=True, aliases=("付款金额", "金额")),
    )

    def prepare(self, values: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        region = self.institution_region(ctx, values["institution_code"])
        fields = {
            "payment_id": values["payment_id"],
            "line_id": values["line_id"],
            "institution_code": values["institution_code"],
            "region_code": region,
            "paid_on": values["paid_on"],
            "amount": values["amount"],
        }
        fields["month"] = self.month_of(fields)
        return fields


class DispensingSpec(FactSpec):
    name = "dispensing"
    label = "院内发药明细"
    label_en = "Dispensing"
    resource = "dispensing"
    fact_table = DISPENSING
    key_fields = ("record_id",)
    columns = (
        Column("record_id", "处方明细编号", _code, required=True, key=True, aliases=("记录编号", "发药明细编号")),
        Column("institution_code", "医疗机构编码", _code, required=True, aliases=("机构编码",)),
        Column("department_code", "科室编码", _code, required=True, aliases=("开单科室编码",)),
        Column("dispensed_on", "发药日期", parse_date, required=True, aliases=("处方日期", "开方日期")),
        Column("product_code", "药品编码", _code, required=True, aliases=("药品统一编码",)),
        Column("qty", "数量", parse_quantity, required=True, aliases=("发药数量",)),
        Column("amount", "金额", parse_money, aliases=("发药金额",)),
        Column("diagnosis_code", "诊断编码", _diagnosis, aliases=("ICD10", "诊断代码")),
        Column("prescriber_code", "医师编码", _code, aliases=("处方医师编码", "医生编码")),
        Column("patient_key", "患者标识", _text(128), aliases=("患者编号",)),
    )

    def prepare(self, values: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        institution = values["institution_code"]
        region = self.institution_region(ctx, institution)
        self.known_product(ctx, values["product_code"])
        departments = ctx.cache.get("fact_departments")
        if departments is None:
            departments = set(Department.objects.for_scope(ctx.scope).values_list("institution__code", "code"))
            ctx.cache["fact_departments"] = departments
        if (institution, values["department_code"]) not in departments:
            raise RowIssue(
                "department_code",
                "reference.unknown",
                f"未知的科室编码（{institution}），请先导入科室：{values['department_code']}",
                f"Unknown department of {institution} (import the departments first)",
                values["department_code"],
            )
        fields = {
            "record_id": values["record_id"],
            "institution_code": institution,
            "region_code": region,
            "department_code": values["department_code"],
            "dispensed_on": values["dispensed_on"],
            "product_code": values["product_code"],
            "qty": values["qty"],
            "amount": values.get("amount"),
            "diagnosis_code": values.get("diagnosis_code") or "",
            "prescriber_code": values.get("prescriber_code") or "",
            "patient_key": values.get("patient_key") or "",
        }
        fields["month"] = self.month_of(fields)
        return fields


FACT_SPECS: dict[str, FactSpec] = {s.name: s for s in (PurchasesSpec(), PaymentsSpec(), DispensingSpec())}


def _to_arrow(table: FactTable, rows: list[dict[str, Any]], import_id: int) -> Any:
    import pyarrow as pa  # noqa: PLC0415 - keep module import light for the web process

    records = [{**r, "import_id": import_id} for r in rows]
    return pa.Table.from_pylist(records, schema=table.schema)


def write_facts(spec: FactSpec, rows: list[dict[str, Any]], home: Any, import_id: int) -> Any:
    """Upsert validated rows into the spec's Delta table as one commit."""
    from jicai.facts.store import upsert  # noqa: PLC0415

    return upsert(home, spec.fact_table, _to_arrow(spec.fact_table, rows, import_id))


def diff_facts(spec: FactSpec, rows: list[dict[str, Any]], home: Any) -> tuple[int, int, int]:
    """(new, changed, unchanged) counts a dry run would produce, without writing."""
    from jicai.core.tenancy import Scope  # noqa: PLC0415
    from jicai.facts.query import FactQuery  # noqa: PLC0415

    table = spec.fact_table
    if not rows:
        return 0, 0, 0
    source = _to_arrow(table, rows, 0)
    with FactQuery(home, Scope.system("dry-run")) as q:
        q.register("incoming", source)
        changed_expr = " OR ".join(f"t.{c} IS DISTINCT FROM s.{c}" for c in table.value_columns)
        result = q.rows(
            f"SELECT count(*) FILTER (WHERE t.{table.key} IS NULL) AS new, "
            f"count(*) FILTER (WHERE t.{table.key} IS NOT NULL AND ({changed_expr})) AS changed "
            f"FROM incoming s LEFT JOIN {table.name} t ON t.{table.key} = s.{table.key}"
        )[0]
    new, changed = int(result["new"]), int(result["changed"])
    return new, changed, len(rows) - new - changed
