"""Reference rows from the database (agreements, item products, institutions) as Arrow tables.

Everything is read through the scoped ORM, so a user's computation joins their own facts (scoped in
DuckDB) with their own agreements (scoped here): no path mixes tenants.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import pyarrow as pa

from jicai.core.tenancy import Scope, use_scope
from jicai.facts.schemas import AGREEMENTS, INSTITUTIONS, ITEM_PRODUCTS
from jicai.organizations.models import Institution
from jicai.programme.models import Agreement, NonSelectedProduct, SelectedProduct

UNIT = Decimal("0.0001")


def winning_unit_price(winning_price: Decimal, pack_size: int | None) -> Decimal | None:
    """Winning price per minimum unit, to four places (semantics.md); unknown without a pack size."""
    if not pack_size:
        return None
    return (winning_price / Decimal(pack_size)).quantize(UNIT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Reference:
    agreements: pa.Table
    item_products: pa.Table
    institutions: pa.Table


def load_reference(scope: Scope) -> Reference:
    """The scope's agreements, item products and institutions."""
    with use_scope(scope):
        selected = list(
            SelectedProduct.objects.select_related("batch", "item", "product").values_list(
                "batch__code", "item__item_code", "product__code", "conversion", "winning_price", "product__pack_size"
            )
        )
        non_selected = list(
            NonSelectedProduct.objects.select_related("batch", "item", "product").values_list(
                "batch__code", "item__item_code", "product__code", "kind", "conversion"
            )
        )
        agreements = list(
            Agreement.objects.select_related("batch", "item", "institution", "product").values_list(
                "pk",
                "batch__code",
                "item__item_code",
                "institution__code",
                "institution__region_code",
                "year",
                "period_start",
                "period_end",
                "agreed_qty",
                "batch__policy_profile",
                "product__code",
            )
        )
        institutions = list(Institution.objects.values_list("code", "name", "region_code", "kind", "level"))
    item_rows = []
    prices: dict[tuple[str, str], list[Decimal]] = {}
    product_price: dict[tuple[str, str], Decimal] = {}
    for batch, item, product, conversion, price, pack_size in selected:
        unit = winning_unit_price(price, pack_size)
        item_rows.append(
            {
                "batch_code": batch,
                "item_code": item,
                "product_code": product,
                "kind": "selected",
                "conversion": conversion,
                "unit_price": unit,
            }
        )
        if unit is not None:
            prices.setdefault((batch, item), []).append(unit)
            product_price[(batch, product)] = unit
    for batch, item, product, kind, conversion in non_selected:
        item_rows.append(
            {
                "batch_code": batch,
                "item_code": item,
                "product_code": product,
                "kind": kind,
                "conversion": conversion,
                "unit_price": None,
            }
        )
    agreement_rows = []
    for pk, batch, item, inst, region, year, start, end, qty, profile, product in agreements:
        unit = product_price.get((batch, product)) if product else None
        if unit is None and prices.get((batch, item)):
            # Several winners and no assigned one: the mean winning unit price (documented reading).
            candidates = prices[(batch, item)]
            unit = (sum(candidates, Decimal(0)) / len(candidates)).quantize(UNIT, rounding=ROUND_HALF_UP)
        agreement_rows.append(
            {
                "agreement_id": pk,
                "batch_code": batch,
                "item_code": item,
                "institution_code": inst,
                "region_code": region,
                "year": year,
                "period_start": start,
                "period_end": end,
                "agreed_qty": qty,
                "unit_price": unit,
                "profile": profile,
            }
        )
    institution_rows = [
        {"institution_code": c, "institution_name": n, "region_code": r, "kind": k, "level": lv}
        for c, n, r, k, lv in institutions
    ]
    return Reference(
        agreements=pa.Table.from_pylist(agreement_rows, schema=AGREEMENTS),
        item_products=pa.Table.from_pylist(item_rows, schema=ITEM_PRODUCTS),
        institutions=pa.Table.from_pylist(institution_rows, schema=INSTITUTIONS),
    )
