"""Resolving the codes users type (batch, item, product, institution, company) inside the active scope.

Every lookup runs through the scoped managers, so a code outside the user's territory is simply
unknown. Errors are :class:`WorkflowError` naming the field (the form field or import column) with a
Chinese message; the import specs turn them into row issues.
"""

from __future__ import annotations

from jicai.catalog.models import Product
from jicai.core.tenancy import Level, Scope, ScopeError, region_prefix
from jicai.organizations.models import Company, Institution
from jicai.programme.models import Batch, Item, SelectedProduct
from jicai.supply.common import WorkflowError


def batch(code: str) -> Batch:
    found: Batch | None = Batch.objects.filter(code=code.strip()).first()
    if found is None:
        raise WorkflowError(
            f"未知的采购批次“{code}”（或不在您的权限范围内）",
            f"unknown batch {code}",
            "reference.unknown",
            "batch_code",
        )
    return found


def item(of_batch: Batch, code: str) -> Item:
    found: Item | None = Item.objects.filter(batch=of_batch, item_code=code.strip()).first()
    if found is None:
        raise WorkflowError(
            f"批次 {of_batch.code} 中没有品种“{code}”",
            f"no item {code} in {of_batch.code}",
            "reference.unknown",
            "item_code",
        )
    return found


def selected(of_item: Item, product_code: str) -> SelectedProduct:
    found: SelectedProduct | None = (
        SelectedProduct.objects.select_related("product", "company")
        .filter(item=of_item, product__code=product_code.strip())
        .first()
    )
    if found is None:
        raise WorkflowError(
            f"“{product_code}”不是品种 {of_item.item_code} 的中选产品",
            f"{product_code} is not a selected product of {of_item.item_code}",
            "reference.not_selected",
            "product_code",
        )
    return found


def product(code: str, field: str = "product_code") -> Product:
    found: Product | None = Product.objects.filter(code=code.strip()).first()
    if found is None:
        raise WorkflowError(f"未知的药品编码“{code}”", f"unknown product {code}", "reference.unknown", field)
    return found


def company(name: str, field: str = "company") -> Company:
    found: Company | None = Company.objects.filter(name=name.strip()).first()
    if found is None:
        raise WorkflowError(
            f"未知的企业“{name}”（请先在企业数据中登记）", f"unknown company {name}", "reference.unknown", field
        )
    return found


def institution(acting: Scope, code: str | None) -> Institution | None:
    """The institution a row is for: a hospital's own (a different code is refused); for a bureau the
    named one inside its region, or None (region-wide) when no code is given."""
    code = (code or "").strip().upper()
    if acting.level in (Level.INSTITUTION, Level.DEPARTMENT):
        if code and code != acting.institution_code:
            raise WorkflowError(
                f"只能为本机构（{acting.institution_code}）登记",
                f"{code} is not {acting.label}",
                "scope.row",
                "institution_code",
            )
        code = acting.institution_code
    if not code:
        return None
    found: Institution | None = Institution.objects.filter(code=code).first()
    if found is None:
        raise WorkflowError(
            f"未知的医疗机构“{code}”（或不在您的权限范围内）",
            f"unknown institution {code}",
            "reference.unknown",
            "institution_code",
        )
    return found


def region_of(acting: Scope, found: Institution | None, region_code: str | None) -> str:
    """The region a row belongs to: its institution's, else the given one inside the bureau's region
    (default: the bureau's own region)."""
    if found is not None:
        return found.region_code
    code = (region_code or "").strip() or acting.region_code
    if not code:
        raise WorkflowError(
            "请填写医疗机构或地区代码", "an institution or region code is needed", "value.required", "region_code"
        )
    try:
        prefix = region_prefix(code)
    except ValueError:
        raise WorkflowError(
            "地区代码应为 6 位数字（GB/T 2260）", "region code is 6 digits", "region.format", "region_code"
        ) from None
    if acting.level is Level.REGION and not prefix.startswith(acting.region_prefix):
        raise WorkflowError(
            f"地区 {code} 不在您的辖区（{acting.region_code}）内",
            f"{code} is outside {acting.label}",
            "scope.row",
            "region_code",
        )
    if acting.level in (Level.INSTITUTION, Level.DEPARTMENT):
        raise ScopeError("a hospital records rows of its own institution only")
    return code
