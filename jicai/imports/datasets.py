"""The master and programme datasets of ``data-exchange.md`` as import/export specs."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar

from django.db import models

from jicai.catalog.models import AntimicrobialClass, PriceList, PriceListEntry, Product
from jicai.catalog.packs import PackParseError, parse_pack
from jicai.core import audit
from jicai.core.tenancy import Action, Level
from jicai.imports.spec import Column, DatasetSpec, RowContext, RowIssue
from jicai.imports.values import (
    ValueParseError,
    parse_bool,
    parse_date,
    parse_decimal,
    parse_int,
    parse_money,
    parse_quantity,
    parse_text,
)
from jicai.organizations.models import Company, CompanyRole, Department, Institution, InstitutionKind
from jicai.programme.models import (
    Agreement,
    Batch,
    BatchLevel,
    Item,
    NonSelectedKind,
    NonSelectedProduct,
    SelectedProduct,
)

_INSTITUTION_CODE = re.compile(r"^H\d{11}$")
_REGION_CODE = re.compile(r"^\d{6}$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_CREDIT_CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CREDIT_CODE_LENGTH = 18


def _text(max_length: int) -> Any:
    return lambda v: parse_text(v, max_length=max_length)


def _pattern(regex: re.Pattern[str], code: str, zh: str, en: str) -> Any:
    def parse(value: object) -> str:
        text = parse_text(value).upper() if regex is _INSTITUTION_CODE else parse_text(value)
        if not regex.match(text):
            raise ValueParseError(code, zh, en)
        return text

    return parse


def _choice(mapping: dict[str, Any], zh_options: str, en_options: str) -> Any:
    lookup = {k.lower(): v for k, v in mapping.items()}

    def parse(value: object) -> Any:
        text = parse_text(value)
        key = text.lower()
        if key.endswith(".0"):
            key = key[:-2]
        if key in lookup:
            return lookup[key]
        raise ValueParseError(
            "value.choice", f"不是可选值，可选：{zh_options}", f"Not an allowed value; use {en_options}"
        )

    return parse


def parse_credit_code(value: object) -> str:
    """Unified social credit code (GB 32100): 18 characters with a check character."""
    text = parse_text(value).upper()
    if len(text) != _CREDIT_CODE_LENGTH or any(c not in _CREDIT_CODE_CHARS for c in text):
        raise ValueParseError(
            "credit_code.format",
            "统一社会信用代码应为 18 位数字或大写字母",
            "A unified social credit code has 18 digits or capital letters",
        )
    total = sum(_CREDIT_CODE_CHARS.index(c) * w for c, w in zip(text[:17], _CREDIT_WEIGHTS, strict=True))
    check = (31 - total % 31) % 31
    if _CREDIT_CODE_CHARS[check] != text[17]:
        raise ValueParseError(
            "credit_code.check", "统一社会信用代码校验位不正确", "The check character of the credit code is wrong"
        )
    return text


def parse_ratio(value: object) -> Decimal:
    """Agreed ratio as a fraction (0.6) or a percentage with its sign (60%); must lie in (0, 1].

    A bare number above 1 ("60", "1.5") is refused rather than guessed as a percentage.
    """
    text = parse_text(value).replace("％", "%")
    percent = text.endswith("%")
    number = parse_decimal(text.rstrip("%"), places=4)
    if percent:
        number = (number / 100).quantize(Decimal("0.0001"))
    elif number > 1:
        raise ValueParseError(
            "ratio.format",
            "约定采购比例请写成小数（如 0.6）或带百分号（如 60%）",
            "Write the agreed ratio as a fraction (0.6) or with a percent sign (60%)",
        )
    if not Decimal(0) < number <= 1:
        raise ValueParseError(
            "ratio.range", "约定采购比例应在 0 到 100% 之间", "The agreed ratio must be between 0 and 100%"
        )
    return number


def parse_conversion(value: object) -> Decimal:
    number = parse_decimal(value, places=4)
    if number <= 0:
        raise ValueParseError("conversion.range", "换算系数必须大于 0", "The conversion factor must be greater than 0")
    return number


def _decimal_text(value: Decimal | None) -> str:
    if value is None:
        return ""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _money_text(value: Decimal | None) -> str:
    return "" if value is None else format(value.quantize(Decimal("0.01")), "f")


YES_NO = {True: "是", False: "否"}

KIND_CHOICES = {
    "public": InstitutionKind.PUBLIC,
    "公立": InstitutionKind.PUBLIC,
    "公立医院": InstitutionKind.PUBLIC,
    "公立医疗机构": InstitutionKind.PUBLIC,
    "military": InstitutionKind.MILITARY,
    "军队": InstitutionKind.MILITARY,
    "军队医院": InstitutionKind.MILITARY,
    "军队医疗机构": InstitutionKind.MILITARY,
    "private": InstitutionKind.PRIVATE,
    "民营": InstitutionKind.PRIVATE,
    "民营医院": InstitutionKind.PRIVATE,
    "社会办": InstitutionKind.PRIVATE,
    "社会办医疗机构": InstitutionKind.PRIVATE,
    "primary": InstitutionKind.PRIMARY,
    "基层": InstitutionKind.PRIMARY,
    "基层医疗机构": InstitutionKind.PRIMARY,
}
LEVEL_CHOICES = {
    "3": 3,
    "三级": 3,
    "三甲": 3,
    "三乙": 3,
    "2": 2,
    "二级": 2,
    "二甲": 2,
    "二乙": 2,
    "1": 1,
    "一级": 1,
}
ROLE_CHOICES = {
    "manufacturer": CompanyRole.MANUFACTURER,
    "生产企业": CompanyRole.MANUFACTURER,
    "mah": CompanyRole.MAH,
    "上市许可持有人": CompanyRole.MAH,
    "distributor": CompanyRole.DISTRIBUTOR,
    "配送企业": CompanyRole.DISTRIBUTOR,
}
BATCH_LEVEL_CHOICES = {
    "national": BatchLevel.NATIONAL,
    "国家": BatchLevel.NATIONAL,
    "国家组织": BatchLevel.NATIONAL,
    "alliance": BatchLevel.ALLIANCE,
    "联盟": BatchLevel.ALLIANCE,
    "省际联盟": BatchLevel.ALLIANCE,
    "provincial": BatchLevel.PROVINCIAL,
    "省级": BatchLevel.PROVINCIAL,
    "municipal": BatchLevel.MUNICIPAL,
    "市级": BatchLevel.MUNICIPAL,
}
ANTIMICROBIAL_CHOICES = {
    "none": AntimicrobialClass.NONE,
    "否": AntimicrobialClass.NONE,
    "非抗菌药物": AntimicrobialClass.NONE,
    "unrestricted": AntimicrobialClass.UNRESTRICTED,
    "非限制": AntimicrobialClass.UNRESTRICTED,
    "非限制使用级": AntimicrobialClass.UNRESTRICTED,
    "restricted": AntimicrobialClass.RESTRICTED,
    "限制": AntimicrobialClass.RESTRICTED,
    "限制使用级": AntimicrobialClass.RESTRICTED,
    "special": AntimicrobialClass.SPECIAL,
    "特殊": AntimicrobialClass.SPECIAL,
    "特殊使用级": AntimicrobialClass.SPECIAL,
}
NON_SELECTED_CHOICES = {
    "same_generic": NonSelectedKind.SAME_GENERIC,
    "非中选": NonSelectedKind.SAME_GENERIC,
    "同通用名": NonSelectedKind.SAME_GENERIC,
    "同通用名非中选": NonSelectedKind.SAME_GENERIC,
    "substitute": NonSelectedKind.SUBSTITUTE,
    "可替代": NonSelectedKind.SUBSTITUTE,
    "替代": NonSelectedKind.SUBSTITUTE,
    "同类可替代": NonSelectedKind.SUBSTITUTE,
}

CODE_COLUMN_PARSE = _pattern(
    _INSTITUTION_CODE,
    "institution.code",
    "医疗机构编码应为 H 加 11 位数字，如 H61011200123",
    "Institution code is H followed by 11 digits, e.g. H61011200123",
)
REGION_PARSE = _pattern(
    _REGION_CODE,
    "region.code",
    "行政区划代码应为 6 位数字（GB/T 2260），如 610100",
    "Region code is 6 digits (GB/T 2260), e.g. 610100",
)


def _unknown(column: str, what_zh: str, what_en: str, value: object) -> RowIssue:
    return RowIssue(
        column,
        "reference.unknown",
        f"未知的{what_zh}，或不在您的权限范围内：{value}",
        f"Unknown {what_en}, or outside your scope: {value}",
        value,
    )


def _side_change(ctx: RowContext, obj: models.Model, values: dict[str, Any]) -> None:
    ctx.options.setdefault("side_changes", []).append(
        audit.Change("create", obj._meta.label, obj.pk, str(obj), None, values, {"reason": "referenced by import"})
    )


class ResolvingSpec(DatasetSpec):
    """Shared lookups of referenced records, cached per import and restricted to the scope."""

    def institution(self, ctx: RowContext, code: str, column: str = "institution_code") -> Institution:
        cache = ctx.cache.setdefault("institutions", {})
        if code not in cache:
            cache[code] = Institution.objects.for_scope(ctx.scope, self.institution_action).filter(code=code).first()
        found = cache[code]
        if found is None:
            raise _unknown(column, "医疗机构编码", "institution code", code)
        return found  # type: ignore[no-any-return]

    institution_action: ClassVar[Action] = Action.WRITE
    batch_action: ClassVar[Action] = Action.WRITE

    def batch(self, ctx: RowContext, code: str) -> Batch:
        cache = ctx.cache.setdefault("batches", {})
        if code not in cache:
            cache[code] = Batch.objects.for_scope(ctx.scope, self.batch_action).filter(code=code).first()
        found = cache[code]
        if found is None:
            raise _unknown("batch_code", "批次编码", "batch code", code)
        return found  # type: ignore[no-any-return]

    def item(self, ctx: RowContext, batch: Batch, code: str) -> Item:
        cache = ctx.cache.setdefault("items", {})
        key = (batch.pk, code)
        if key not in cache:
            cache[key] = Item.objects.for_scope(ctx.scope).filter(batch=batch, item_code=code).first()
        found = cache[key]
        if found is None:
            raise _unknown("item_code", f"品种编码（批次 {batch.code}）", f"item code in batch {batch.code}", code)
        return found  # type: ignore[no-any-return]

    def product(self, ctx: RowContext, code: str, column: str = "product_code") -> Product:
        cache = ctx.cache.setdefault("products", {})
        if code not in cache:
            cache[code] = Product.objects.for_scope(ctx.scope).filter(code=code).first()
        found = cache[code]
        if found is None:
            raise _unknown(column, "药品编码（请先导入药品目录）", "product code (import the products first)", code)
        return found  # type: ignore[no-any-return]


class InstitutionsSpec(ResolvingSpec):
    name = "institutions"
    label = "医疗机构"
    label_en = "Institutions"
    model = Institution
    resource = "institution"
    columns = (
        Column(
            "code", "医疗机构编码", CODE_COLUMN_PARSE, required=True, key=True, aliases=("机构编码", "定点医疗机构编码")
        ),
        Column("name", "医疗机构名称", _text(200), required=True, aliases=("机构名称", "名称")),
        Column("region_code", "行政区划代码", REGION_PARSE, required=True, aliases=("区划代码", "地区编码")),
        Column(
            "kind",
            "机构类型",
            _choice(KIND_CHOICES, "公立/军队/民营/基层", "public/military/private/primary"),
            required=True,
            aliases=("类型",),
        ),
        Column(
            "level",
            "机构等级",
            _choice(LEVEL_CHOICES, "3/2/1 或 三级/二级/一级", "3/2/1"),
            required=True,
            aliases=("等级", "医院等级"),
        ),
        Column("participating", "是否参加集采", parse_bool, aliases=("参加集采",)),
    )
    key_fields = ("code",)
    compare_fields = ("name", "region_code", "kind", "level", "participating")

    def prepare(self, values: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        scope = ctx.scope
        if scope.level is Level.REGION and not values["region_code"].startswith(scope.region_prefix):
            raise RowIssue(
                "region_code",
                "region.outside",
                f"行政区划 {values['region_code']} 不在您的管辖范围（{scope.region_code}）内",
                f"Region {values['region_code']} is outside your region {scope.region_code}",
                values["region_code"],
            )
        fields = {k: values.get(k) for k in ("code", "name", "region_code", "kind", "level")}
        fields["participating"] = True if values.get("participating") is None else values["participating"]
        return fields

    def export_row(self, obj: Institution) -> dict[str, Any]:
        return {
            "code": obj.code,
            "name": obj.name,
            "region_code": obj.region_code,
            "kind": obj.kind,
            "level": obj.level,
            "participating": obj.participating,
        }


class DepartmentsSpec(ResolvingSpec):
    name = "departments"
    label = "科室"
    label_en = "Departments"
    model = Department
    resource = "department"
    # Hospitals read their own institution; the department row itself is checked for writing.
    institution_action = Action.READ
    columns = (
        Column("institution_code", "医疗机构编码", CODE_COLUMN_PARSE, required=True, key=True, aliases=("机构编码",)),
        Column("code", "科室编码", _text(32), required=True, key=True, aliases=("科室代码",)),
        Column("name", "科室名称", _text(100), required=True),
    )
    key_fields = ("institution_id", "code")
    compare_fields = ("name",)

    def prepare(self, values: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        institution = self.institution(ctx, values["institution_code"])
        return {"institution_id": institution.pk, "code": values["code"], "name": values["name"]}

    def export_queryset(self, scope: Any) -> models.QuerySet[Any]:
        return super().export_queryset(scope).select_related("institution")

    def export_row(self, obj: Department) -> dict[str, Any]:
        return {"institution_code": obj.institution.code, "code": obj.code, "name": obj.name}


class CompaniesSpec(ResolvingSpec):
    name = "companies"
    label = "企业"
    label_en = "Companies"
    model = Company
    resource = "company"
    columns = (
        Column("name", "企业名称", _text(200), required=True, key=True, aliases=("企业", "公司名称")),
        Column(
            "role",
            "企业类型",
            _choice(ROLE_CHOICES, "生产企业/上市许可持有人/配送企业", "manufacturer/mah/distributor"),
            aliases=("角色",),
        ),
        Column("credit_code", "统一社会信用代码", parse_credit_code, aliases=("信用代码",)),
    )
    key_fields = ("name",)
    compare_fields = ("role", "credit_code")

    def prepare(self, values: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        return {
            "name": values["name"],
            "role": values.get("role") or CompanyRole.MANUFACTURER,
            "credit_code": values.get("credit_code") or "",
        }

    def export_row(self, obj: Company) -> dict[str, Any]:
        return {"name": obj.name, "role": obj.role, "credit_code": obj.credit_code}


def _product_code(value: object) -> str:
    text = parse_text(value, max_length=40)
    if any(c.isspace() for c in text):
        raise ValueParseError("product.code", "药品编码中不能有空格", "A product code cannot contain spaces")
    return text


class ProductsSpec(ResolvingSpec):
    name = "products"
    label = "药品"
    label_en = "Products"
    model = Product
    resource = "product"
    columns = (
        Column(
            "code",
            "药品编码",
            _product_code,
            required=True,
            key=True,
            aliases=("药品统一编码", "国家医保药品编码", "医保药品编码", "药品代码"),
        ),
        Column("generic_name", "通用名", _text(200), required=True, aliases=("通用名称", "药品通用名", "药品名称")),
        Column("dosage_form", "剂型", _text(60)),
        Column("strength", "规格", _text(200)),
        Column("pack", "包装", _text(200), aliases=("包装规格",)),
        Column("pack_size", "包装数量", lambda v: parse_int(v, minimum=1), aliases=("装量", "转换比", "最小包装数量")),
        Column("min_unit", "最小制剂单位", _text(10), aliases=("最小单位",)),
        Column("manufacturer", "生产企业", _text(200), aliases=("生产厂家", "厂家")),
        Column("approval_number", "批准文号", _text(100)),
        Column("ce_passed", "是否通过一致性评价", parse_bool, aliases=("一致性评价", "过评", "是否过评")),
        Column("is_originator", "是否原研", parse_bool, aliases=("原研",)),
        Column("is_reference", "是否参比制剂", parse_bool, aliases=("参比制剂",)),
        Column("is_essential", "是否基本药物", parse_bool, aliases=("基本药物", "基药")),
        Column(
            "antimicrobial_class",
            "抗菌药物级别",
            _choice(ANTIMICROBIAL_CHOICES, "非限制使用级/限制使用级/特殊使用级", "unrestricted/restricted/special"),
            aliases=("抗菌药物分级",),
        ),
        Column("listed_price", "挂网价格", parse_money, aliases=("挂网价", "价格", "零售价")),
    )
    key_fields = ("code",)
    compare_fields = (
        "generic_name",
        "dosage_form",
        "strength",
        "pack",
        "pack_size",
        "min_unit",
        "manufacturer",
        "approval_number",
        "ce_passed",
        "is_originator",
        "is_reference",
        "is_essential",
        "antimicrobial_class",
        "listed_price",
    )

    def prepare(self, values: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        pack = values.get("pack") or ""
        pack_size = values.get("pack_size")
        min_unit = values.get("min_unit") or ""
        if pack:
            try:
                parsed = parse_pack(pack)
            except PackParseError as exc:
                if pack_size is None:
                    ctx.warn(
                        "pack",
                        exc.code,
                        f"无法从包装解析装量和最小单位（{exc.message_zh}），已留空待核对；可在“包装数量”“最小制剂单位”列中填写",
                        f"Pack size and unit could not be read from the pack ({exc.message_en}); left empty for review",
                        pack,
                    )
            else:
                if pack_size is None:
                    pack_size = parsed.pack_size
                elif pack_size != parsed.pack_size:
                    ctx.warn(
                        "pack_size",
                        "pack.mismatch",
                        f"包装数量 {pack_size} 与包装“{pack}”解析出的 {parsed.pack_size} 不一致，已按包装数量列导入",
                        f"Pack size {pack_size} differs from {parsed.pack_size} in the pack; the column was used",
                        pack_size,
                    )
                min_unit = min_unit or parsed.min_unit
        elif pack_size is None:
            ctx.warn(
                "pack",
                "pack.empty",
                "包装为空，装量和最小单位未知，已留空待核对",
                "The pack is empty: pack size and unit unknown, left empty for review",
            )
        return {
            "code": values["code"],
            "generic_name": values["generic_name"],
            "dosage_form": values.get("dosage_form") or "",
            "strength": values.get("strength") or "",
            "pack": pack,
            "pack_size": pack_size,
            "min_unit": min_unit,
            "manufacturer": values.get("manufacturer") or "",
            "approval_number": values.get("approval_number") or "",
            "ce_passed": bool(values.get("ce_passed")),
            "is_originator": bool(values.get("is_originator")),
            "is_reference": bool(values.get("is_reference")),
            "is_essential": bool(values.get("is_essential")),
            "antimicrobial_class": values.get("antimicrobial_class") or "",
            "listed_price": values.get("listed_price"),
        }

    sources: ClassVar[dict[str, tuple[str, ...]]] = {
        "pack_size": ("pack_size", "pack"),
        "min_unit": ("min_unit", "pack"),
    }

    def export_row(self, obj: Product) -> dict[str, Any]:
        return {
            "code": obj.code,
            "generic_name": obj.generic_name,
            "dosage_form": obj.dosage_form,
            "strength": obj.strength,
            "pack": obj.pack,
            "pack_size": obj.pack_size,
            "min_unit": obj.min_unit,
            "manufacturer": obj.manufacturer,
            "approval_number": obj.approval_number,
            "ce_passed": obj.ce_passed,
            "is_originator": obj.is_originator,
            "is_reference": obj.is_reference,
            "is_essential": obj.is_essential,
            "antimicrobial_class": obj.antimicrobial_class,
            "listed_price": _money_text(obj.listed_price),
        }


class PricesSpec(ResolvingSpec):
    """A published price list (e.g. Guizhou's VBP winning prices); ``list`` names which one."""

    name = "prices"
    label = "价格目录"
    label_en = "Price lists"
    model = PriceListEntry
    resource = "price_list"
    columns = (
        Column("list", "价格目录", _text(60), key=True, aliases=("目录编码",)),
        Column(
            "generic_name", "通用名", _text(200), required=True, key=True, aliases=("产品名称", "药品名称", "通用名称")
        ),
        Column("dosage_form", "剂型", _text(60), key=True),
        Column("strength", "规格", _text(200), key=True),
        Column("pack", "包装", _text(200), key=True),
        Column("company", "企业", _text(200), key=True, aliases=("中选企业", "生产企业")),
        Column("price", "价格", parse_money, required=True, key=True, aliases=("中选价格", "中选价", "挂网价格")),
    )
    key_fields = ("price_list_id", "generic_name", "dosage_form", "strength", "pack", "company", "price")
    compare_fields = ("pack_size", "min_unit")
    sources: ClassVar[dict[str, tuple[str, ...]]] = {"pack_size": ("pack",), "min_unit": ("pack",)}

    def price_list(self, ctx: RowContext, code: str) -> PriceList:
        cache = ctx.cache.setdefault("price_lists", {})
        if code not in cache:
            found = PriceList.objects.for_scope(ctx.scope).filter(code=code).first()
            if found is None and not ctx.options.get("dry_run"):
                found = PriceList(code=code, name=code)
                found.save()
                _side_change(ctx, found, {"code": code, "name": code})
            cache[code] = found or PriceList(pk=-1, code=code, name=code)
        return cache[code]  # type: ignore[no-any-return]

    def prepare(self, values: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        code = values.get("list") or ctx.options.get("list") or ""
        if not code:
            raise RowIssue(
                "list",
                "price_list.missing",
                "未指定价格目录：请在命令中用 --list 指定，或在文件中加“价格目录”列",
                "No price list given: use --list or add a 'list' column",
            )
        if not _SLUG.match(code):
            raise RowIssue(
                "list",
                "price_list.code",
                "价格目录编码只能含小写字母、数字和 - _ .",
                "Use a-z, 0-9, - _ . in list codes",
                code,
            )
        pack = values.get("pack") or ""
        pack_size, min_unit = None, ""
        if pack:
            try:
                parsed = parse_pack(pack)
                pack_size, min_unit = parsed.pack_size, parsed.min_unit
            except PackParseError as exc:
                ctx.warn(
                    "pack",
                    exc.code,
                    f"无法解析包装（{exc.message_zh}），装量留空",
                    f"Pack not readable ({exc.message_en})",
                    pack,
                )
        return {
            "price_list_id": self.price_list(ctx, code).pk,
            "generic_name": values["generic_name"],
            "dosage_form": values.get("dosage_form") or "",
            "strength": values.get("strength") or "",
            "pack": pack,
            "company": values.get("company") or "",
            "price": values["price"],
            "pack_size": pack_size,
            "min_unit": min_unit,
        }

    def export_queryset(self, scope: Any) -> models.QuerySet[Any]:
        return super().export_queryset(scope).select_related("price_list")

    def export_row(self, obj: PriceListEntry) -> dict[str, Any]:
        return {
            "list": obj.price_list.code,
            "generic_name": obj.generic_name,
            "dosage_form": obj.dosage_form,
            "strength": obj.strength,
            "pack": obj.pack,
            "company": obj.company,
            "price": _money_text(obj.price),
        }


class BatchesSpec(ResolvingSpec):
    name = "batches"
    label = "采购批次"
    label_en = "Batches"
    model = Batch
    resource = "batch"
    columns = (
        Column("code", "批次编码", _text(40), required=True, key=True, aliases=("批次代码",)),
        Column("name", "批次名称", _text(200), required=True),
        Column(
            "level",
            "批次级别",
            _choice(BATCH_LEVEL_CHOICES, "国家组织/省际联盟/省级/市级", "national/alliance/provincial/municipal"),
            required=True,
            aliases=("级别",),
        ),
        Column("policy_profile", "政策配置", _text(60), required=True, aliases=("规则配置",)),
        Column("region_code", "行政区划代码", REGION_PARSE, required=True, aliases=("执行地区",)),
        Column("start_date", "执行日期", parse_date, required=True, aliases=("开始日期", "执行开始日期")),
    )
    key_fields = ("code",)
    compare_fields = ("name", "level", "policy_profile", "region_code", "start_date")

    def prepare(self, values: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        scope = ctx.scope
        if not _SLUG.match(values["policy_profile"]):
            raise RowIssue(
                "policy_profile",
                "profile.name",
                "政策配置名只能含小写字母、数字和 - _ .，如 national、shanxi",
                "Profile names use a-z, 0-9, - _ ., e.g. national, shanxi",
                values["policy_profile"],
            )
        if scope.level is Level.REGION and not values["region_code"].startswith(scope.region_prefix):
            raise RowIssue(
                "region_code",
                "region.outside",
                f"行政区划 {values['region_code']} 不在您的管辖范围（{scope.region_code}）内",
                f"Region {values['region_code']} is outside your region {scope.region_code}",
                values["region_code"],
            )
        return {k: values[k] for k in ("code", "name", "level", "policy_profile", "region_code", "start_date")}

    def export_row(self, obj: Batch) -> dict[str, Any]:
        return {
            "code": obj.code,
            "name": obj.name,
            "level": obj.level,
            "policy_profile": obj.policy_profile,
            "region_code": obj.region_code,
            "start_date": obj.start_date,
        }


class ItemsSpec(ResolvingSpec):
    name = "items"
    label = "采购品种"
    label_en = "Items"
    model = Item
    resource = "item"
    columns = (
        Column("batch_code", "批次编码", _text(40), required=True, key=True),
        Column("item_code", "品种编码", _text(40), required=True, key=True, aliases=("品种代码",)),
        Column("generic_name", "通用名", _text(200), required=True, aliases=("品种名称", "通用名称")),
        Column("dosage_form_group", "剂型组", _text(60), aliases=("剂型",)),
        Column("unit_label", "计量单位", _text(10), required=True, aliases=("单位",)),
        Column("winners", "中选企业数", lambda v: parse_int(v, minimum=1), required=True, aliases=("中选家数",)),
    )
    key_fields = ("batch_id", "item_code")
    compare_fields = ("generic_name", "dosage_form_group", "unit_label", "winners")

    def prepare(self, values: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        batch = self.batch(ctx, values["batch_code"])
        return {
            "batch_id": batch.pk,
            "item_code": values["item_code"],
            "generic_name": values["generic_name"],
            "dosage_form_group": values.get("dosage_form_group") or "",
            "unit_label": values["unit_label"],
            "winners": values["winners"],
        }

    def export_queryset(self, scope: Any) -> models.QuerySet[Any]:
        return super().export_queryset(scope).select_related("batch")

    def export_row(self, obj: Item) -> dict[str, Any]:
        return {
            "batch_code": obj.batch.code,
            "item_code": obj.item_code,
            "generic_name": obj.generic_name,
            "dosage_form_group": obj.dosage_form_group,
            "unit_label": obj.unit_label,
            "winners": obj.winners,
        }


class SelectedSpec(ResolvingSpec):
    name = "selected"
    label = "中选结果"
    label_en = "Selected products"
    model = SelectedProduct
    resource = "selected"
    columns = (
        Column("batch_code", "批次编码", _text(40), required=True, key=True),
        Column("product_code", "药品编码", _product_code, required=True, key=True, aliases=("药品统一编码",)),
        Column("item_code", "品种编码", _text(40), required=True),
        Column("winning_price", "中选价格", parse_money, required=True, aliases=("中选价",)),
        Column("company", "中选企业", _text(200), required=True, aliases=("企业名称",)),
        Column("conversion", "换算系数", parse_conversion, aliases=("转换系数",)),
    )
    key_fields = ("batch_id", "product_id")
    compare_fields = ("item_id", "winning_price", "company_id", "conversion")

    def company(self, ctx: RowContext, name: str) -> Company:
        cache = ctx.cache.setdefault("companies", {})
        if name not in cache:
            found = Company.objects.for_scope(ctx.scope).filter(name=name).first()
            if found is None:
                ctx.warn(
                    "company",
                    "company.created",
                    f"企业“{name}”不在企业名录中，已新建",
                    f"Company '{name}' was not listed and has been added",
                    name,
                )
                if ctx.options.get("dry_run"):
                    found = Company(pk=-1, name=name)
                else:
                    ctx.scope.require("company", "write")
                    found = Company(name=name, role=CompanyRole.MANUFACTURER)
                    found.save()
                    _side_change(ctx, found, {"name": name, "role": CompanyRole.MANUFACTURER})
            cache[name] = found
        return cache[name]  # type: ignore[no-any-return]

    def prepare(self, values: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        batch = self.batch(ctx, values["batch_code"])
        item = self.item(ctx, batch, values["item_code"])
        product = self.product(ctx, values["product_code"])
        company = self.company(ctx, values["company"])
        return {
            "batch_id": batch.pk,
            "product_id": product.pk,
            "item_id": item.pk,
            "winning_price": values["winning_price"],
            "company_id": company.pk,
            "conversion": values.get("conversion") or Decimal(1),
        }

    def export_queryset(self, scope: Any) -> models.QuerySet[Any]:
        return super().export_queryset(scope).select_related("batch", "product", "item", "company")

    def export_row(self, obj: SelectedProduct) -> dict[str, Any]:
        return {
            "batch_code": obj.batch.code,
            "product_code": obj.product.code,
            "item_code": obj.item.item_code,
            "winning_price": _money_text(obj.winning_price),
            "company": obj.company.name,
            "conversion": obj.conversion,
        }


class NonSelectedSpec(ResolvingSpec):
    name = "non_selected"
    label = "非中选及可替代药品"
    label_en = "Non-selected products"
    model = NonSelectedProduct
    resource = "non_selected"
    columns = (
        Column("batch_code", "批次编码", _text(40), required=True, key=True),
        Column("product_code", "药品编码", _product_code, required=True, key=True, aliases=("药品统一编码",)),
        Column("item_code", "品种编码", _text(40), required=True),
        Column(
            "kind",
            "类别",
            _choice(NON_SELECTED_CHOICES, "同通用名/可替代", "same_generic/substitute"),
            required=True,
            aliases=("类型",),
        ),
        Column("conversion", "换算系数", parse_conversion, aliases=("转换系数",)),
    )
    key_fields = ("batch_id", "product_id")
    compare_fields = ("item_id", "kind", "conversion")

    def prepare(self, values: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        batch = self.batch(ctx, values["batch_code"])
        item = self.item(ctx, batch, values["item_code"])
        product = self.product(ctx, values["product_code"])
        return {
            "batch_id": batch.pk,
            "product_id": product.pk,
            "item_id": item.pk,
            "kind": values["kind"],
            "conversion": values.get("conversion") or Decimal(1),
        }

    def export_queryset(self, scope: Any) -> models.QuerySet[Any]:
        return super().export_queryset(scope).select_related("batch", "product", "item")

    def export_row(self, obj: NonSelectedProduct) -> dict[str, Any]:
        return {
            "batch_code": obj.batch.code,
            "product_code": obj.product.code,
            "item_code": obj.item.item_code,
            "kind": obj.kind,
            "conversion": obj.conversion,
        }


class AgreementsSpec(ResolvingSpec):
    name = "agreements"
    label = "约定采购量"
    label_en = "Agreements"
    model = Agreement
    resource = "agreement"
    batch_action = Action.READ
    columns = (
        Column("batch_code", "批次编码", _text(40), required=True, key=True),
        Column("item_code", "品种编码", _text(40), required=True, key=True),
        Column("institution_code", "医疗机构编码", CODE_COLUMN_PARSE, required=True, key=True, aliases=("机构编码",)),
        Column(
            "year", "协议年度", lambda v: parse_int(v, minimum=1), required=True, key=True, aliases=("采购年度", "年度")
        ),
        Column("period_start", "协议开始日期", parse_date, required=True, aliases=("开始日期",)),
        Column("period_end", "协议结束日期", parse_date, required=True, aliases=("结束日期",)),
        Column("agreed_qty", "约定采购量", parse_quantity, aliases=("约定量",)),
        Column("base_qty", "采购量基数", parse_quantity, aliases=("基数",)),
        Column("agreed_ratio", "约定采购比例", parse_ratio, aliases=("约定比例",)),
        Column("product_code", "指定中选药品编码", _product_code, aliases=("中选药品编码",)),
    )
    key_fields = ("batch_id", "item_id", "institution_id", "year")
    compare_fields = ("period_start", "period_end", "agreed_qty", "base_qty", "agreed_ratio", "product_id")

    def prepare(self, values: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        batch = self.batch(ctx, values["batch_code"])
        item = self.item(ctx, batch, values["item_code"])
        institution = self.institution(ctx, values["institution_code"])
        if values["period_end"] < values["period_start"]:
            raise RowIssue(
                "period_end",
                "period.order",
                "协议结束日期早于开始日期",
                "The period ends before it starts",
                values["period_end"],
            )
        agreed, base, ratio = values.get("agreed_qty"), values.get("base_qty"), values.get("agreed_ratio")
        if agreed is None:
            if base is None or ratio is None:
                raise RowIssue(
                    "agreed_qty",
                    "agreed.missing",
                    "约定采购量为空时，必须同时填写采购量基数和约定采购比例",
                    "Give agreed_qty, or both base_qty and agreed_ratio",
                )
            # Agreed volume = base × ratio (R-B3), in whole item units, half up.
            agreed = (base * ratio).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        product = self.product(ctx, values["product_code"]) if values.get("product_code") else None
        return {
            "batch_id": batch.pk,
            "item_id": item.pk,
            "institution_id": institution.pk,
            "year": values["year"],
            "period_start": values["period_start"],
            "period_end": values["period_end"],
            "agreed_qty": agreed,
            "base_qty": base,
            "agreed_ratio": ratio,
            "product_id": product.pk if product else None,
        }

    sources: ClassVar[dict[str, tuple[str, ...]]] = {
        "agreed_qty": ("agreed_qty", "base_qty", "agreed_ratio"),
        "product_id": ("product_code",),
    }

    def export_queryset(self, scope: Any) -> models.QuerySet[Any]:
        return super().export_queryset(scope).select_related("batch", "item", "institution", "product")

    def export_row(self, obj: Agreement) -> dict[str, Any]:
        return {
            "batch_code": obj.batch.code,
            "item_code": obj.item.item_code,
            "institution_code": obj.institution.code,
            "year": obj.year,
            "period_start": obj.period_start,
            "period_end": obj.period_end,
            "agreed_qty": obj.agreed_qty,
            "base_qty": obj.base_qty,
            "agreed_ratio": obj.agreed_ratio,
            "product_code": obj.product.code if obj.product else "",
        }


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        InstitutionsSpec(),
        DepartmentsSpec(),
        CompaniesSpec(),
        ProductsSpec(),
        PricesSpec(),
        BatchesSpec(),
        ItemsSpec(),
        SelectedSpec(),
        NonSelectedSpec(),
        AgreementsSpec(),
    )
}


# Activity datasets (purchases, payments, dispensing) are imported with the same machinery but live
# in the fact store, not the database: they are registered here by the facts app and are not listed
# with the master data (they are read back through reports, not exported record by record).
ACTIVITY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> None:
    """Add an activity dataset defined in ``jicai.facts`` to the import registry."""
    ACTIVITY[spec.name] = spec


def get_spec(name: str) -> DatasetSpec:
    """The spec for a dataset name (English, with - or _), e.g. ``non-selected``."""
    key = name.strip().lower().replace("-", "_")
    if key in DATASETS:
        return DATASETS[key]
    if key in ACTIVITY:
        return ACTIVITY[key]
    raise KeyError(name)


def cell_text(value: Any) -> Any:
    """How a value is written into CSV/XLSX cells so that it reads back identically."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return YES_NO[value]
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


__all__ = ["DATASETS", "cell_text", "get_spec", "parse_credit_code", "parse_ratio"]
