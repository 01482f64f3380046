"""Fixtures for formulary advice (R-H6), retained surplus (R-G3) and the registers (R-H10, R-H11).

``ws`` is the shared ``world`` plus the hospital roles these workflows need (leadership, medical
affairs, finance in 海南省人民医院; pharmacy and finance in 三亚) and the products of the
阿托伐他汀钙片 item A01 of round HN-N7 that the formulary scenario uses. Facts are written with the
fact store's own append (one Delta commit per table), as tests/monitoring does.

The formulary scenario (hospital H46010800001, review date 2023-04-30, window 2022-05-01…2023-04-30),
prices per tablet of 20 mg (the item unit); the selected product is 2.38 yuan for 7 = 0.3400:

=========  ===========================================  ==========  ===========================
code       what                                          unit price  advice (XJ 五(一), 五(五))
=========  ===========================================  ==========  ===========================
SEL        world.product, selected (not essential)      0.3400      keep: selected
ORIG       originator, bought at 5.6000                  5.6000      keep: originator/reference
CELOW      CE generic, bought at 0.3000                  0.3000      keep: CE not pricier
CEHIGH     CE generic, bought at 0.5000                  0.5000      suspend: pricier (④)
NCE        non-CE generic, bought at 0.2000              0.2000      drop: non-CE (③)
ESS        non-CE essential medicine, bought at 0.6000   0.6000      keep: essential (R-H9)
CE10       CE 10 mg tablet (conversion 0.5) at 0.2000    0.4000      suspend: pricier (per item unit)
DISP       non-CE, dispensed only; listed 2.80 for 14    0.2000      drop: non-CE (listed price)
OLD        bought 2022-04-30 (before the window)         —           not in the formulary
world.product2  a substitute, bought                     —           not in the formulary
=========  ===========================================  ==========  ===========================
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from django.test import Client

from jicai.core.tenancy import Scope, system_scope
from jicai.facts import store
from jicai.facts.schemas import DISPENSING, PURCHASES
from tests.conftest import PASSWORD, World

D = dt.date
HN = "H46010800001"
HN2 = "H46020000002"
REGION = {HN: "460108", HN2: "460200", "H61011200123": "610112"}
SEL = "XC10AAA067A001020101187"  # world.product
ORIG, CELOW, CEHIGH, NCE, ESS, CE10, DISP, OLD, ADDED = (
    "ORIG0001",
    "CELOW001",
    "CEHIGH01",
    "NCE00001",
    "ESS00001",
    "CE10MG01",
    "DISP0001",
    "OLD00001",
    "ADDED001",
)
AS_OF = D(2023, 4, 30)


@dataclass
class WS:
    world: World
    users: dict[str, Any]

    def scope(self, key: str) -> Scope:
        return self.users[key].scope()  # type: ignore[no-any-return]

    def client(self, key: str | None) -> Client:
        client = Client()
        if key is not None:
            client.force_login(self.users[key])
        return client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.world, name)


def _user(username: str, role: str, **kw: Any) -> Any:
    from jicai.accounts.models import User

    user = User(username=username, role=role, **kw)
    user.set_password(PASSWORD)
    user.save()
    return user


def _products(world: World) -> None:
    from jicai.catalog.models import Product
    from jicai.programme.models import NonSelectedProduct

    specs = [
        (ORIG, {"is_originator": True, "ce_passed": True, "manufacturer": "辉瑞制药有限公司"}, 7, "1"),
        (CELOW, {"ce_passed": True, "manufacturer": "甲药业"}, 7, "1"),
        (CEHIGH, {"ce_passed": True, "manufacturer": "乙药业"}, 7, "1"),
        (NCE, {"manufacturer": "丙药业"}, 7, "1"),
        (ESS, {"is_essential": True, "manufacturer": "丁药业"}, 7, "1"),
        (CE10, {"ce_passed": True, "strength": "10mg", "manufacturer": "戊药业"}, 7, "0.5"),
        (DISP, {"manufacturer": "己药业", "listed_price": Decimal("2.80")}, 14, "1"),
        (OLD, {"ce_passed": True, "manufacturer": "庚药业"}, 7, "1"),
    ]
    for code, flags, pack_size, conversion in specs:
        flags.setdefault("strength", "20mg")
        product = Product.objects.create(
            code=code, generic_name="阿托伐他汀钙片", dosage_form="片剂", pack_size=pack_size, min_unit="片", **flags
        )
        NonSelectedProduct.objects.create(
            batch=world.hn_batch,
            item=world.hn_item,
            product=product,
            kind="same_generic",
            conversion=Decimal(conversion),
        )
    Product.objects.create(
        code=ADDED,
        generic_name="阿托伐他汀钙片",
        dosage_form="片剂",
        strength="20mg",
        pack_size=10,
        min_unit="片",
        ce_passed=True,
        listed_price=Decimal("3.00"),  # 0.3000 a tablet: keep (CE, not pricier)
    )
    NonSelectedProduct.objects.create(
        batch=world.hn_batch, item=world.hn_item, product=world.product2, kind="substitute"
    )


@pytest.fixture
def ws(world: World) -> WS:
    with system_scope("fixture"):
        _products(world)
        users = dict(world.users)
        for name, role, inst in (
            ("hn_leader", "leadership", world.hn_inst),
            ("hn_medical", "medical_affairs", world.hn_inst),
            ("hn_finance", "finance", world.hn_inst),
            ("hn2_pharmacy", "pharmacy", world.hn_inst2),
            ("hn2_finance", "finance", world.hn_inst2),
            ("hn2_leader", "leadership", world.hn_inst2),
        ):
            users[name] = _user(name, role, institution=inst)
        world.users.update(users)
    return WS(world, users)


def month_of(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def add_purchases(home: Path, rows: Iterable[tuple[str, str, str, dt.date, str, str]]) -> None:
    """Rows of (line_id, institution, product, accepted_on, qty, unit price)."""
    out = []
    for line_id, inst, product, day, qty, price in rows:
        q, p = Decimal(qty), Decimal(price)
        out.append(
            {
                "line_id": line_id,
                "institution_code": inst,
                "region_code": REGION[inst],
                "product_code": product,
                "ordered_on": day,
                "delivered_on": day,
                "accepted_on": day,
                "qty": q,
                "unit_price": p,
                "amount": (q * p).quantize(Decimal("0.01")),
                "distributor": "配送A",
                "import_id": 1,
                "month": month_of(day),
            }
        )
    store.append(home, PURCHASES, pa.Table.from_pylist(out, schema=PURCHASES.schema))


def add_dispensing(home: Path, rows: Iterable[tuple[str, str, str, str, dt.date, str, str, str]]) -> None:
    """Rows of (record_id, institution, department, product, dispensed_on, qty, amount, prescriber)."""
    out = [
        {
            "record_id": record_id,
            "institution_code": inst,
            "region_code": REGION[inst],
            "department_code": dept,
            "dispensed_on": day,
            "product_code": product,
            "qty": Decimal(qty),
            "amount": Decimal(amount),
            "diagnosis_code": "I10",
            "prescriber_code": prescriber or None,
            "patient_key": "p1",
            "import_id": 1,
            "month": month_of(day),
        }
        for record_id, inst, dept, product, day, qty, amount, prescriber in rows
    ]
    store.append(home, DISPENSING, pa.Table.from_pylist(out, schema=DISPENSING.schema))


FORMULARY_PURCHASES = [
    ("L1", HN, SEL, D(2023, 1, 10), "1000", "0.34"),
    ("L2", HN, ORIG, D(2022, 12, 1), "70", "5.60"),
    ("L3", HN, CELOW, D(2023, 2, 1), "100", "0.30"),
    ("L4", HN, CEHIGH, D(2022, 5, 1), "100", "0.50"),  # first day of the window
    ("L5", HN, NCE, D(2023, 4, 30), "100", "0.20"),  # last day of the window
    ("L6", HN, ESS, D(2023, 3, 1), "100", "0.60"),
    ("L7", HN, CE10, D(2023, 3, 1), "100", "0.20"),
    ("L8", HN, OLD, D(2022, 4, 30), "100", "0.30"),  # the day before the window
    ("L9", HN, "XC08CAA014A001010100001", D(2023, 3, 1), "100", "0.20"),  # substitute
    ("L10", HN2, CELOW, D(2023, 3, 1), "999", "9.99"),  # another hospital: not counted
]
FORMULARY_DISPENSING = [
    ("F1", HN, "NK01", DISP, D(2023, 2, 1), "50", "10.00", "D001"),
    ("F2", HN, "NK01", SEL, D(2023, 2, 1), "30", "10.20", "D001"),
]


@pytest.fixture
def formulary_facts(ws: WS, settings: Any) -> WS:
    add_purchases(Path(settings.JICAI_HOME), FORMULARY_PURCHASES)
    add_dispensing(Path(settings.JICAI_HOME), FORMULARY_DISPENSING)
    return ws
