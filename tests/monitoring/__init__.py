"""Helpers for the monitoring tests: build fact lines, open a scoped query with the reference registered."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from jicai.core.tenancy import Scope
from jicai.facts import store
from jicai.facts.query import FactQuery
from jicai.facts.schemas import DISPENSING, PURCHASES
from jicai.monitoring.reference import load_reference

D = dt.date
HN = "H46010800001"  # world.hn_inst
HN2 = "H46020000002"  # world.hn_inst2
SX = "H61011200123"  # world.sx_inst
REGION = {HN: "460108", HN2: "460200", SX: "610112"}
SELECTED = "XC10AAA067A001020101187"  # world.product, selected for HN-N7 / A01
NON_SELECTED = "XC10AAA067B002020101999"  # same generic, added by ``add_products``
SUBSTITUTE = "XC08CAA014A001010100001"  # world.product2, listed as a substitute by ``add_products``


def month_of(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def purchase_table(rows: Iterable[tuple[Any, ...]]) -> pa.Table:
    """Rows of (line_id, institution_code, product_code, accepted_on | None, qty[, ordered_on])."""
    out = []
    for row in rows:
        line_id, inst, product, accepted, qty = row[:5]
        ordered = row[5] if len(row) > 5 else (accepted or D(2023, 1, 1))
        qty_d = Decimal(qty)
        out.append(
            {
                "line_id": line_id,
                "institution_code": inst,
                "region_code": REGION.get(inst, "460108"),
                "product_code": product,
                "ordered_on": ordered,
                "delivered_on": accepted,
                "accepted_on": accepted,
                "qty": qty_d,
                "unit_price": Decimal("0.3400"),
                "amount": (qty_d * Decimal("0.34")).quantize(Decimal("0.01")),
                "distributor": "配送A",
                "import_id": 1,
                "month": month_of(accepted or ordered),
            }
        )
    return pa.Table.from_pylist(out, schema=PURCHASES.schema)


def dispensing_table(rows: Iterable[tuple[Any, ...]]) -> pa.Table:
    """Rows of (record_id, institution_code, department_code, product_code, dispensed_on, qty)."""
    out = [
        {
            "record_id": record_id,
            "institution_code": inst,
            "region_code": REGION.get(inst, "460108"),
            "department_code": dept,
            "dispensed_on": day,
            "product_code": product,
            "qty": Decimal(qty),
            "amount": Decimal("1.00"),
            "diagnosis_code": "I10",
            "prescriber_code": "D001",
            "patient_key": "p1",
            "import_id": 1,
            "month": month_of(day),
        }
        for record_id, inst, dept, product, day, qty in rows
    ]
    return pa.Table.from_pylist(out, schema=DISPENSING.schema)


def add_purchases(home: Path, rows: Iterable[tuple[Any, ...]]) -> None:
    store.append(home, PURCHASES, purchase_table(rows))


def add_dispensing(home: Path, rows: Iterable[tuple[Any, ...]]) -> None:
    store.append(home, DISPENSING, dispensing_table(rows))


def open_query(home: Path, scope: Scope) -> FactQuery:
    """A scoped query with the scope's agreements and item products registered (the callers' contract)."""
    ref = load_reference(scope)
    q = FactQuery(home, scope)
    q.register("agreements", ref.agreements)
    q.register("item_products", ref.item_products)
    return q


def add_products(world: Any) -> None:
    """A non-selected same-generic product and a substitute for HN-N7 / A01 (call under system scope)."""
    from jicai.catalog.models import Product
    from jicai.programme.models import NonSelectedProduct

    other = Product.objects.create(
        code=NON_SELECTED,
        generic_name="阿托伐他汀钙片",
        dosage_form="片剂",
        strength="20mg",
        pack="20mg*14片/盒",
        pack_size=14,
        min_unit="片",
    )
    NonSelectedProduct.objects.create(batch=world.hn_batch, item=world.hn_item, product=other, kind="same_generic")
    NonSelectedProduct.objects.create(
        batch=world.hn_batch, item=world.hn_item, product=world.product2, kind="substitute"
    )


def by(table: pa.Table, *keys: str) -> dict[Any, dict[str, Any]]:
    """Rows keyed by the given columns (one key → scalar key, several → tuple)."""
    out = {}
    for row in table.to_pylist():
        key = row[keys[0]] if len(keys) == 1 else tuple(row[k] for k in keys)
        out[key] = row
    return out
