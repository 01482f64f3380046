"""Arrow schemas of the activity facts (purchases, payments, dispensing) and their keys.

Money and quantities are Arrow decimals (exact, like Python's Decimal); ``region_code`` is copied
from the institution at import so that the tenant filter needs no join; ``month`` (YYYY-MM of the
date that counts) is the partition column, so a new month of data touches new files only.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

QTY = pa.decimal128(18, 4)
PRICE = pa.decimal128(18, 4)
MONEY = pa.decimal128(18, 2)


@dataclass(frozen=True)
class FactTable:
    name: str
    key: str
    schema: pa.Schema
    month_from: tuple[str, ...]  # first non-null of these dates gives the partition month

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)

    @property
    def value_columns(self) -> list[str]:
        """Columns compared to tell a correction from an unchanged re-import."""
        return [c for c in self.schema.names if c not in {self.key, "import_id", "month"}]


PURCHASES = FactTable(
    name="purchases",
    key="line_id",
    month_from=("accepted_on", "delivered_on", "ordered_on"),
    schema=pa.schema(
        [
            ("line_id", pa.string()),
            ("institution_code", pa.string()),
            ("region_code", pa.string()),
            ("product_code", pa.string()),
            ("ordered_on", pa.date32()),
            ("delivered_on", pa.date32()),
            ("accepted_on", pa.date32()),
            ("qty", QTY),
            ("unit_price", PRICE),
            ("amount", MONEY),
            ("distributor", pa.string()),
            ("import_id", pa.int64()),
            ("month", pa.string()),
        ]
    ),
)

PAYMENTS = FactTable(
    name="payments",
    key="payment_id",
    month_from=("paid_on",),
    schema=pa.schema(
        [
            ("payment_id", pa.string()),
            ("line_id", pa.string()),
            ("institution_code", pa.string()),
            ("region_code", pa.string()),
            ("paid_on", pa.date32()),
            ("amount", MONEY),
            ("import_id", pa.int64()),
            ("month", pa.string()),
        ]
    ),
)

DISPENSING = FactTable(
    name="dispensing",
    key="record_id",
    month_from=("dispensed_on",),
    schema=pa.schema(
        [
            ("record_id", pa.string()),
            ("institution_code", pa.string()),
            ("region_code", pa.string()),
            ("department_code", pa.string()),
            ("dispensed_on", pa.date32()),
            ("product_code", pa.string()),
            ("qty", QTY),
            ("amount", MONEY),
            ("diagnosis_code", pa.string()),
            ("prescriber_code", pa.string()),
            ("patient_key", pa.string()),
            ("import_id", pa.int64()),
            ("month", pa.string()),
        ]
    ),
)

FACT_TABLES: dict[str, FactTable] = {t.name: t for t in (PURCHASES, PAYMENTS, DISPENSING)}

# Derived, rebuilt by the cycle month by month: accepted purchases summed per institution, product
# and acceptance day. Same columns the computations read from ``purchases``, so either can feed them.
PURCHASES_DAILY = FactTable(
    name="purchases_daily",
    key="",
    month_from=("accepted_on",),
    schema=pa.schema(
        [
            ("institution_code", pa.string()),
            ("region_code", pa.string()),
            ("product_code", pa.string()),
            ("accepted_on", pa.date32()),
            ("qty", QTY),
            ("amount", MONEY),
            ("lines", pa.int64()),
            ("month", pa.string()),
        ]
    ),
)
# Derived, rebuilt by the cycle month by month: accepted purchases of the products of each VBP item
# (batch × item) per institution and calendar month, in item units (each line's qty × conversion
# rounded to 4 places, as every computation counts them), split by kind. Province-wide a month of
# lines (~700 K) becomes ~170 K rows, and months that did not change are never read again.
PAIR_MONTHLY = FactTable(
    name="pair_monthly",
    key="",
    month_from=("accepted_on",),
    schema=pa.schema(
        [
            ("institution_code", pa.string()),
            ("region_code", pa.string()),
            ("batch_code", pa.string()),
            ("item_code", pa.string()),
            ("midx", pa.int32()),  # year × 12 + month − 1 of accepted_on
            ("sel_qty", QTY),
            ("ns_qty", QTY),
            ("sub_qty", QTY),
            ("lines", pa.int64()),
            ("month", pa.string()),
        ]
    ),
)
ROLLUP_TABLES: dict[str, FactTable] = {PURCHASES_DAILY.name: PURCHASES_DAILY, PAIR_MONTHLY.name: PAIR_MONTHLY}


# Reference rows the computations join with the facts (built from the database by
# jicai.monitoring.reference, or written by the benchmark generator, which must not need Django).
AGREEMENTS = pa.schema(
    [
        ("agreement_id", pa.int64()),
        ("batch_code", pa.string()),
        ("item_code", pa.string()),
        ("institution_code", pa.string()),
        ("region_code", pa.string()),
        ("year", pa.int32()),
        ("period_start", pa.date32()),
        ("period_end", pa.date32()),
        ("agreed_qty", QTY),
        ("unit_price", PRICE),
        ("profile", pa.string()),
    ]
)

ITEM_PRODUCTS = pa.schema(
    [
        ("batch_code", pa.string()),
        ("item_code", pa.string()),
        ("product_code", pa.string()),
        ("kind", pa.string()),  # selected | same_generic | substitute
        ("conversion", QTY),
        ("unit_price", PRICE),  # winning price per minimum unit for selected products
    ]
)

INSTITUTIONS = pa.schema(
    [
        ("institution_code", pa.string()),
        ("institution_name", pa.string()),
        ("region_code", pa.string()),
        ("kind", pa.string()),
        ("level", pa.int32()),
    ]
)
