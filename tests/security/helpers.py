"""Helpers shared by the security tests: expected export keys and one valid Hainan row per dataset."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from jicai.catalog.models import PriceListEntry, Product
from jicai.core.tenancy import system_scope
from jicai.imports.datasets import DATASETS, cell_text
from jicai.organizations.models import Company, Department, Institution
from jicai.programme.models import Agreement, Batch, Item, NonSelectedProduct, SelectedProduct

from .conftest import Tenants


def key_columns(dataset: str) -> list[str]:
    return [c.name for c in DATASETS[dataset].columns if c.key]


def key_of(dataset: str, row: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(cell_text(row[c])) for c in key_columns(dataset))


def expected_keys(t: Tenants, user: str, dataset: str) -> set[tuple[str, ...]]:
    spec = DATASETS[dataset]
    with system_scope("expect"):
        return {key_of(dataset, spec.export_row(o)) for o in t.visible(user, dataset)}


def hidden_keys(t: Tenants, user: str, dataset: str) -> set[tuple[str, ...]]:
    spec = DATASETS[dataset]
    with system_scope("expect"):
        return {key_of(dataset, spec.export_row(o)) for o in t.hidden(user, dataset)}


def csv_keys(dataset: str, data: bytes) -> set[tuple[str, ...]]:
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
    return {key_of(dataset, row) for row in reader}


# One valid Hainan row per dataset, and how to find it afterwards (read as the operator).
IMPORT_ROWS: dict[str, tuple[str, Callable[[], bool]]] = {
    "institutions": (
        "code,name,region_code,kind,level\nH46010800009,海口新医院,460108,public,2",
        lambda: Institution.objects.filter(code="H46010800009").exists(),
    ),
    "departments": (
        "institution_code,code,name\nH46010800001,WK01,普外科",
        lambda: Department.objects.filter(institution__code="H46010800001", code="WK01").exists(),
    ),
    "companies": (
        "name,role\n测试药业有限公司,manufacturer",
        lambda: Company.objects.filter(name="测试药业有限公司").exists(),
    ),
    "products": ("code,generic_name\nXTEST0001,测试药", lambda: Product.objects.filter(code="XTEST0001").exists()),
    "prices": (
        "list,generic_name,dosage_form,strength,pack,company,price\nhn-ref,测试药,片剂,5mg,,测试药业,1.23",
        lambda: PriceListEntry.objects.filter(generic_name="测试药").exists(),
    ),
    "batches": (
        "code,name,level,policy_profile,region_code,start_date\nHN-N9,第九批（海南）,national,national,460000,2024-03-01",
        lambda: Batch.objects.filter(code="HN-N9").exists(),
    ),
    "items": (
        "batch_code,item_code,generic_name,unit_label,winners\nHN-N7,A02,苯磺酸氨氯地平片,片,2",
        lambda: Item.objects.filter(batch__code="HN-N7", item_code="A02").exists(),
    ),
    "selected": (
        "batch_code,product_code,item_code,winning_price,company\n"
        "HN-N7,XC08CAA014A001010100001,A01,0.98,辉瑞制药有限公司",
        lambda: SelectedProduct.objects.filter(batch__code="HN-N7", product__code="XC08CAA014A001010100001").exists(),
    ),
    "non_selected": (
        "batch_code,product_code,item_code,kind\nHN-N7,XC10AAA067A001020101187,A01,substitute",
        lambda: NonSelectedProduct.objects.filter(
            batch__code="HN-N7", product__code="XC10AAA067A001020101187"
        ).exists(),
    ),
    "agreements": (
        "batch_code,item_code,institution_code,year,period_start,period_end,agreed_qty\n"
        "HN-N7,A01,H46010800001,2,2023-11-01,2024-10-31,12000",
        lambda: Agreement.objects.filter(institution__code="H46010800001", year=2).exists(),
    ),
}


def imported(dataset: str) -> bool:
    with system_scope("check"):
        return IMPORT_ROWS[dataset][1]()


def snapshot_all() -> dict[str, list[Any]]:
    models = (Institution, Department, Company, Product, PriceListEntry, Batch, Item, SelectedProduct)
    with system_scope("check"):
        out = {m.__name__: sorted(map(repr, m.objects.values())) for m in models}
        out |= {m.__name__: sorted(map(repr, m.objects.values())) for m in (NonSelectedProduct, Agreement)}
    return out
