"""Fixtures for the tenant-isolation tests: the shared ``world`` plus one row of every scoped model per tenant.

``tenants`` adds to ``world`` what the security tests need to tell tenants apart on every dataset:
selected and non-selected products in both provinces, a department and an agreement of the second
Hainan hospital (三亚, region 460200), a shared price list, and one import run per hospital.

``VISIBLE`` is the expected answer, written out by hand from the requirement (not computed by the
code under test): which of those rows each user must see, dataset by dataset.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from jicai.core.tenancy import system_scope

TENANT_DATASETS = ("institutions", "departments", "batches", "items", "selected", "non_selected", "agreements")
SHARED_DATASETS = ("companies", "products", "prices")

# Rows each user must see, by dataset, as attribute names of ``Tenants``. Shared reference data
# (companies, products, price lists) is visible to every role that may read it.
_HN_PROGRAMME = {"batches": ["hn_batch"], "items": ["hn_item"], "selected": ["hn_sel"], "non_selected": ["hn_ns"]}
_SX_PROGRAMME = {"batches": ["sx_batch"], "items": ["sx_item"], "selected": ["sx_sel"], "non_selected": ["sx_ns"]}
VISIBLE: dict[str, dict[str, list[str]]] = {
    # Hainan provincial bureau: both Hainan hospitals, none of Shaanxi.
    "hn_admin": {
        "institutions": ["hn_inst", "hn_inst2"],
        "departments": ["hn_dept", "hn_dept2", "hn2_dept"],
        "agreements": ["hn_agreement", "hn2_agreement"],
        **_HN_PROGRAMME,
    },
    # Sanya city bureau (460200): its city's hospital only, and the provincial round that applies there.
    "sy_admin": {
        "institutions": ["hn_inst2"],
        "departments": ["hn2_dept"],
        "agreements": ["hn2_agreement"],
        **_HN_PROGRAMME,
    },
    # Shaanxi provincial bureau: nothing of Hainan.
    "sx_admin": {
        "institutions": ["sx_inst"],
        "departments": ["sx_dept"],
        "agreements": ["sx_agreement"],
        **_SX_PROGRAMME,
    },
    # Hospital VBP offices: their own hospital; rounds of their region and the regions above it.
    "hn_vbp": {
        "institutions": ["hn_inst"],
        "departments": ["hn_dept", "hn_dept2"],
        "agreements": ["hn_agreement"],
        **_HN_PROGRAMME,
    },
    "hn2_vbp": {
        "institutions": ["hn_inst2"],
        "departments": ["hn2_dept"],
        "agreements": ["hn2_agreement"],
        **_HN_PROGRAMME,
    },
    "sx_vbp": {
        "institutions": ["sx_inst"],
        "departments": ["sx_dept"],
        "agreements": ["sx_agreement"],
        **_SX_PROGRAMME,
    },
    # Department head of 心内科 NK01 in 海南省人民医院: its own department only.
    "hn_head": {
        "institutions": ["hn_inst"],
        "departments": ["hn_dept"],
        "batches": ["hn_batch"],
        "items": ["hn_item"],
        "selected": ["hn_sel"],
    },
}
SHARED_ROWS = {"companies": ["company"], "products": ["product", "product2"], "prices": ["entry"]}
# Datasets a department head has no permission to read at all (404 in web and API).
HEAD_FORBIDDEN = ("companies", "prices", "non_selected", "agreements")
for _user, _rows in VISIBLE.items():
    for _name, _attrs in SHARED_ROWS.items():
        if not (_user == "hn_head" and _name in HEAD_FORBIDDEN):
            _rows.setdefault(_name, list(_attrs))

ALL_ROWS: dict[str, list[str]] = {
    "institutions": ["hn_inst", "hn_inst2", "sx_inst"],
    "departments": ["hn_dept", "hn_dept2", "hn2_dept", "sx_dept"],
    "batches": ["hn_batch", "sx_batch"],
    "items": ["hn_item", "sx_item"],
    "selected": ["hn_sel", "sx_sel"],
    "non_selected": ["hn_ns", "sx_ns"],
    "agreements": ["hn_agreement", "hn2_agreement", "sx_agreement"],
    **SHARED_ROWS,
}


@dataclass
class Tenants:
    world: Any
    hn2_dept: Any
    hn2_agreement: Any
    hn_sel: Any
    sx_sel: Any
    hn_ns: Any
    sx_ns: Any
    price_list: Any
    entry: Any
    run_hn: Any
    run_hn2: Any
    run_sx: Any

    def __getattr__(self, name: str) -> Any:
        if name == "world":
            raise AttributeError(name)
        return getattr(self.world, name)

    def row(self, attr: str) -> Any:
        return getattr(self, attr)

    def visible(self, user: str, dataset: str) -> list[Any]:
        return [self.row(a) for a in VISIBLE[user][dataset]]

    def hidden(self, user: str, dataset: str) -> list[Any]:
        seen = set(VISIBLE[user].get(dataset, []))
        return [self.row(a) for a in ALL_ROWS[dataset] if a not in seen]


@pytest.fixture
def tenants(world: Any) -> Tenants:
    from jicai.catalog.models import PriceList, PriceListEntry
    from jicai.imports.models import ImportRun
    from jicai.organizations.models import Department
    from jicai.programme.models import Agreement, NonSelectedProduct, SelectedProduct

    period = {"period_start": dt.date(2022, 11, 1), "period_end": dt.date(2023, 10, 31)}
    with system_scope("security-fixture"):
        hn2_dept = Department.objects.create(institution=world.hn_inst2, code="NK01", name="心内科")
        hn2_agreement = Agreement.objects.create(
            batch=world.hn_batch,
            item=world.hn_item,
            institution=world.hn_inst2,
            year=1,
            agreed_qty=Decimal(5000),
            **period,
        )
        hn_sel = SelectedProduct.objects.get(batch=world.hn_batch)
        sx_sel = SelectedProduct.objects.create(
            batch=world.sx_batch,
            product=world.product,
            item=world.sx_item,
            winning_price=Decimal("2.45"),
            company=world.company,
        )
        hn_ns = NonSelectedProduct.objects.create(
            batch=world.hn_batch, product=world.product2, item=world.hn_item, kind="substitute"
        )
        sx_ns = NonSelectedProduct.objects.create(
            batch=world.sx_batch, product=world.product2, item=world.sx_item, kind="same_generic"
        )
        price_list = PriceList.objects.create(code="gz-vbp", name="贵州集采中选价")
        entry = PriceListEntry.objects.create(
            price_list=price_list,
            generic_name="阿托伐他汀钙片",
            pack="20mg*7片/盒",
            company="辉瑞",
            price=Decimal("16.66"),
        )

        def run(inst: Any) -> Any:
            return ImportRun.objects.create(
                dataset="departments",
                filename=f"{inst.code}.csv",
                file_sha256="0" * 64,
                actor_name="someone",
                scope_label=f"institution:{inst.code}",
                region_code=inst.region_code,
                institution_id=inst.pk,
                status="applied",
            )

        run_hn, run_hn2, run_sx = run(world.hn_inst), run(world.hn_inst2), run(world.sx_inst)
    return Tenants(
        world=world,
        hn2_dept=hn2_dept,
        hn2_agreement=hn2_agreement,
        hn_sel=hn_sel,
        sx_sel=sx_sel,
        hn_ns=hn_ns,
        sx_ns=sx_ns,
        price_list=price_list,
        entry=entry,
        run_hn=run_hn,
        run_hn2=run_hn2,
        run_sx=run_sx,
    )
