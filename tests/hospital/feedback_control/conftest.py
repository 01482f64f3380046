"""A hospital with two departments, two VBP items and a year of dispensing, for feedback and control.

``tests.conftest.world`` plus (all in 海南省人民医院 H46010800001, round HN-N7, year 2022-11-01 … 2023-10-31):

* item A01 阿托伐他汀钙片 (agreed 10,000): selected ``SEL`` (world.product), non-selected same generic
  ``NS``, substitute ``ROSU`` (瑞舒伐他汀, an essential medicine — the selected product is not one);
* item A02 头孢呋辛酯片 (agreed 2,000): selected ``CEF_SEL`` and non-selected ``CEF_NS``, both
  antimicrobials.

Dispensing (item units, conversion 1), hand-checkable:

history (2022-06, the targets' window): NK01 SEL 300, SJ01 SEL 100, NK01 CEF_SEL 100, SJ01 CEF_SEL 100
→ targets A01 NK01 7,500 / SJ01 2,500, A02 NK01 1,000 / SJ01 1,000.

agreement year up to 2023-04-30 (elapsed 181/365 = 49.59 %):

====  =====  =======================================  ==========================================
dept  item   selected                                 non-selected / substitute
====  =====  =======================================  ==========================================
NK01  A01    SEL 1,800 (2022-12) + 400 × 2023-02/03/04  NS 200 / 400 / 900 (2023-02/03/04, E78.5)
             = 3,000 → 40 % of 7,500: behind          ROSU 100 / 200 (2023-03/04, I25.1)
SJ01  A01    SEL 900 (2022-12) + 200 × 2023-02/03/04    —
             = 1,500 → 60 %: on track
NK01  A02    CEF_SEL 300 (2023-01) + 300 (2023-03)    CEF_NS 2023-04: 250 patient P1 (exception)
             = 600 → 60 %: on track                   + 150 patient P2
SJ01  A02    CEF_SEL 200 (2022-12) → 20 %: at risk    —
====  =====  =======================================  ==========================================

Prescribers: NK01's SEL and NS by D01, ROSU by D03, CEF_NS by D02; SJ01 by D05. Diagnoses: SEL I10,
CEF J18.9.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from django.test import Client

from jicai.core.tenancy import system_scope
from jicai.facts import store
from jicai.facts.schemas import DISPENSING
from tests.conftest import PASSWORD

D = dt.date
HK = "H46010800001"
SEL = "XC10AAA067A001020101187"
NS = "XC10AAA067B002020101999"
ROSU = "XC10AAX001A001010100001"
CEF_SEL = "XJ01DCB001A001010100001"
CEF_NS = "XJ01DCB001B002010100002"
AS_OF = D(2023, 4, 30)


def line(
    rid: str,
    dept: str,
    product: str,
    day: dt.date,
    qty: int | str,
    *,
    prescriber: str = "D01",
    diagnosis: str = "I10",
    patient: str = "p1",
    inst: str = HK,
) -> dict[str, Any]:
    return {
        "record_id": rid,
        "institution_code": inst,
        "region_code": "460108" if inst == HK else "460200",
        "department_code": dept,
        "dispensed_on": day,
        "product_code": product,
        "qty": Decimal(qty),
        "amount": Decimal("1.00"),
        "diagnosis_code": diagnosis,
        "prescriber_code": prescriber,
        "patient_key": patient,
        "import_id": 1,
        "month": f"{day.year:04d}-{day.month:02d}",
    }


def hospital_lines() -> list[dict[str, Any]]:
    rows = [
        # history: the targets' weights
        line("h1", "NK01", SEL, D(2022, 6, 10), 300),
        line("h2", "SJ01", SEL, D(2022, 6, 10), 100, prescriber="D05"),
        line("h3", "NK01", CEF_SEL, D(2022, 6, 10), 100, prescriber="D02", diagnosis="J18.9"),
        line("h4", "SJ01", CEF_SEL, D(2022, 6, 10), 100, prescriber="D05", diagnosis="J18.9"),
        # the agreement year
        line("s1", "NK01", SEL, D(2022, 12, 5), 1800),
        line("s2", "SJ01", SEL, D(2022, 12, 5), 900, prescriber="D05"),
        line("c1", "NK01", CEF_SEL, D(2023, 1, 5), 300, prescriber="D02", diagnosis="J18.9"),
        line("c2", "NK01", CEF_SEL, D(2023, 3, 5), 300, prescriber="D02", diagnosis="J18.9"),
        line("c3", "SJ01", CEF_SEL, D(2022, 12, 5), 200, prescriber="D05", diagnosis="J18.9"),
        line("x1", "NK01", CEF_NS, D(2023, 4, 8), 250, prescriber="D02", diagnosis="J18.9", patient="P1"),
        line("x2", "NK01", CEF_NS, D(2023, 4, 9), 150, prescriber="D02", diagnosis="J18.9", patient="P2"),
    ]
    for month, ns in ((2, 200), (3, 400), (4, 900)):
        rows.append(line(f"a{month}", "NK01", SEL, D(2023, month, 10), 400))
        rows.append(line(f"b{month}", "SJ01", SEL, D(2023, month, 10), 200, prescriber="D05"))
        rows.append(line(f"n{month}", "NK01", NS, D(2023, month, 12), ns, diagnosis="E78.5"))
    rows.append(line("r3", "NK01", ROSU, D(2023, 3, 15), 100, prescriber="D03", diagnosis="I25.1"))
    rows.append(line("r4", "NK01", ROSU, D(2023, 4, 15), 200, prescriber="D03", diagnosis="I25.1"))
    # another hospital's line of the same product: never in 海南省人民医院's figures
    rows.append(line("o1", "NK01", NS, D(2023, 4, 12), 5000, inst="H46020000002"))
    return rows


def write_lines(home: Path, rows: list[dict[str, Any]]) -> None:
    store.append(home, DISPENSING, pa.Table.from_pylist(rows, schema=DISPENSING.schema))


def _user(username: str, role: str, **kw: Any) -> Any:
    from jicai.accounts.models import User

    u = User(username=username, role=role, **kw)
    u.set_password(PASSWORD)
    u.save()
    return u


@pytest.fixture
def hospital(world: Any, settings: Any) -> Any:
    """``world`` with the items, products, agreements, extra users and dispensing above."""
    from jicai.catalog.models import Product
    from jicai.programme.models import Agreement, Item, NonSelectedProduct, SelectedProduct

    with system_scope("fixture"):
        ns = Product.objects.create(
            code=NS, generic_name="阿托伐他汀钙片", strength="20mg", pack="20mg*14片/盒", pack_size=14, min_unit="片"
        )
        rosu = Product.objects.create(
            code=ROSU,
            generic_name="瑞舒伐他汀钙片",
            strength="10mg",
            pack="10mg*7片/盒",
            pack_size=7,
            min_unit="片",
            is_essential=True,
        )
        cef_sel = Product.objects.create(
            code=CEF_SEL,
            generic_name="头孢呋辛酯片",
            pack="0.25g*12片/盒",
            pack_size=12,
            antimicrobial_class="restricted",
        )
        cef_ns = Product.objects.create(
            code=CEF_NS,
            generic_name="头孢呋辛酯片",
            pack="0.25g*6片/盒",
            pack_size=6,
            antimicrobial_class="restricted",
            is_originator=True,
        )
        NonSelectedProduct.objects.create(batch=world.hn_batch, item=world.hn_item, product=ns, kind="same_generic")
        NonSelectedProduct.objects.create(batch=world.hn_batch, item=world.hn_item, product=rosu, kind="substitute")
        cef = Item.objects.create(
            batch=world.hn_batch, item_code="A02", generic_name="头孢呋辛酯片", unit_label="片", winners=2
        )
        SelectedProduct.objects.create(
            batch=world.hn_batch, product=cef_sel, item=cef, winning_price=Decimal("6.00"), company=world.company
        )
        NonSelectedProduct.objects.create(batch=world.hn_batch, item=cef, product=cef_ns, kind="same_generic")
        Agreement.objects.create(
            batch=world.hn_batch,
            item=cef,
            institution=world.hn_inst,
            year=1,
            agreed_qty=Decimal(2000),
            period_start=D(2022, 11, 1),
            period_end=D(2023, 10, 31),
        )
        world.users["hn_medical"] = _user("hn_medical", "medical_affairs", institution=world.hn_inst)
        world.users["hn_leader"] = _user("hn_leader", "leadership", institution=world.hn_inst)
        world.users["hn_perf"] = _user("hn_perf", "performance", institution=world.hn_inst)
        world.users["hn2_leader"] = _user("hn2_leader", "leadership", institution=world.hn_inst2)
        world.users["hn2_pharmacy"] = _user("hn2_pharmacy", "pharmacy", institution=world.hn_inst2)
        world.cef_item = cef
        world.ns, world.rosu, world.cef_sel, world.cef_ns = ns, rosu, cef_sel, cef_ns
    write_lines(Path(settings.JICAI_HOME), hospital_lines())
    return world


@pytest.fixture
def login(client: Client) -> Any:
    """``login(world, "hn_vbp")`` → a client logged in as that user."""

    def _login(world: Any, key: str) -> Client:
        client.force_login(world.user(key))
        return client

    return _login
