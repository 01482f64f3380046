"""Money monitoring tests: payables (R-E1), prepayments and settlements (R-E2, R-E3), alert rules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from jicai.facts.schemas import PAYMENTS, PURCHASES
from jicai.facts.store import append


def purchase(
    line_id: str,
    institution: str,
    region: str,
    accepted_on: dt.date | None,
    amount: str = "0",
    *,
    product: str = "P1",
    qty: str = "1",
    unit_price: str = "0",
) -> dict[str, Any]:
    """One purchase line as the fact schema wants it."""
    month_of = accepted_on or dt.date(2000, 1, 1)
    return {
        "line_id": line_id,
        "institution_code": institution,
        "region_code": region,
        "product_code": product,
        "ordered_on": None,
        "delivered_on": None,
        "accepted_on": accepted_on,
        "qty": Decimal(qty),
        "unit_price": Decimal(unit_price),
        "amount": Decimal(amount),
        "distributor": "D1",
        "import_id": 1,
        "month": month_of.strftime("%Y-%m"),
    }


def payment(
    payment_id: str, line_id: str, institution: str, region: str, paid_on: dt.date, amount: str
) -> dict[str, Any]:
    return {
        "payment_id": payment_id,
        "line_id": line_id,
        "institution_code": institution,
        "region_code": region,
        "paid_on": paid_on,
        "amount": Decimal(amount),
        "import_id": 1,
        "month": paid_on.strftime("%Y-%m"),
    }


def write_purchases(home: Path, rows: list[dict[str, Any]]) -> None:
    append(home, PURCHASES, pa.Table.from_pylist(rows, schema=PURCHASES.schema))


def write_payments(home: Path, rows: list[dict[str, Any]]) -> None:
    append(home, PAYMENTS, pa.Table.from_pylist(rows, schema=PAYMENTS.schema))
