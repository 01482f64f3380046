"""Fixtures for demand reporting (R-H2) and department targets (R-H3).

``ws`` is the shared ``world`` plus the roles these workflows need in 海南省人民医院 (H46010800001):
leadership ``hn_lead``, medical affairs ``hn_med`` (and the world's pharmacy, VBP office and the two
department heads NK01 / SJ01), and pharmacy ``hn2_pharmacy`` in 三亚 (the other hospital).

Demand scenario — a new round HN-N9 starting 2023-01-01, its history read over 2022-01 … 2022-12
(12 months, plan made 2023-01-15):

=====  ==========  =================================================================================
item   generic     the hospital's use in 2022 (item units)
=====  ==========  =================================================================================
B01    瑞舒伐他汀   ROSU0001 (selected) 90 + 10t on the 10th of month t (t = 0 for January) and ROSU0002
                   (same generic, conversion 2) 5 a month = 100 + 10t: 100 … 210; the substitute
                   (world.product2) dispensed too but not counted; 三亚 dispensed 2,000 in March (not ours).
                   Accepted purchases of ROSU0001 every month. Suggestion: 3,300 (trend 100 + 10t at
                   t = 12 … 23).
B02    氨氯地平     AMLO0001 100 a month, except 10 in June; bought in February, May and October only:
                   June is a detected shortage month; the other 11 months give 1,200.
B03    新通用名     no history: 0.
=====  ==========  =================================================================================

Target scenario — round HN-N7, item A01, agreed 10,000 for year 1 (2022-11-01 … 2023-10-31); dispensing
of the selected product in the 12 months before: NK01 300, SJ01 100, and 50 under WK01 (not on the
hospital's department list: reported, not counted); so NK01 7,500 and SJ01 2,500. In the year: NK01
1,000 and SJ01 500 dispensed on 2023-02-01.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from jicai.core.tenancy import Scope, system_scope
from tests.conftest import World
from tests.monitoring import add_dispensing, add_purchases

D = dt.date
HN = "H46010800001"
HN2 = "H46020000002"
ROUND = "HN-N9"
ROSU, ROSU2, AMLO, NEWG = "ROSU0001", "ROSU0002", "AMLO0001", "NEWG0001"
ATOR = "XC10AAA067A001020101187"  # world.product: selected in HN-N7 (A01)
AMLO_SUB = "XC08CAA014A001010100001"  # world.product2: listed as a substitute of B01 here
UNTIL = D(2023, 1, 15)


@dataclass
class WS:
    world: World
    users: dict[str, Any]

    def scope(self, key: str) -> Scope:
        return self.users[key].scope()  # type: ignore[no-any-return]

    def user(self, key: str) -> Any:
        return self.users[key]

    def client(self, key: str | None) -> Client:
        client = Client()
        if key is not None:
            client.force_login(self.users[key])
        return client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.world, name)


@pytest.fixture
def ws(world: World) -> WS:
    from jicai.accounts.models import User

    with system_scope("fixture"):
        users = dict(world.users)
        for username, role, inst in (
            ("hn_lead", "leadership", world.hn_inst),
            ("hn_med", "medical_affairs", world.hn_inst),
            ("hn2_pharmacy", "pharmacy", world.hn_inst2),
        ):
            user = User(username=username, role=role, institution=inst)
            user.set_password("x")
            user.save()
            users[username] = user
    return WS(world, users)


def month(t: int, day: int = 1) -> dt.date:
    """Day ``day`` of month ``t`` of 2022 (t = 0 for January)."""
    return D(2022, t + 1, day)


@pytest.fixture
def demand_round(ws: WS, settings: Any) -> Any:
    """Round HN-N9 with items B01–B03, their products, and the hospital's 2022 history (module docstring)."""
    from jicai.catalog.models import Product
    from jicai.programme.models import Batch, Item, NonSelectedProduct, SelectedProduct

    with system_scope("fixture"):
        batch = Batch.objects.create(
            code=ROUND,
            name="第九批国家集采（海南）",
            level="national",
            policy_profile="national",
            region_code="460000",
            start_date=D(2023, 1, 1),
        )
        products = {}
        for code, generic, form, strength in (
            (ROSU, "瑞舒伐他汀钙片", "片剂", "10mg"),
            (ROSU2, "瑞舒伐他汀钙片", "片剂", "5mg"),
            (AMLO, "苯磺酸氨氯地平片", "片剂", "5mg"),
            (NEWG, "新通用名片", "片剂", "1mg"),
        ):
            products[code] = Product.objects.create(
                code=code, generic_name=generic, dosage_form=form, strength=strength, pack_size=10, min_unit="片"
            )
        items = {
            code: Item.objects.create(batch=batch, item_code=code, generic_name=name, unit_label="片", winners=2)
            for code, name in (("B01", "瑞舒伐他汀钙片"), ("B02", "苯磺酸氨氯地平片"), ("B03", "新通用名片"))
        }
        for item, product in (("B01", ROSU), ("B02", AMLO), ("B03", NEWG)):
            SelectedProduct.objects.create(
                batch=batch,
                product=products[product],
                item=items[item],
                winning_price=Decimal("1.00"),
                company=ws.company,
            )
        NonSelectedProduct.objects.create(
            batch=batch, item=items["B01"], product=products[ROSU2], kind="same_generic", conversion=Decimal(2)
        )
        NonSelectedProduct.objects.create(batch=batch, item=items["B01"], product=ws.product2, kind="substitute")
    home = settings.JICAI_HOME
    dispensing = []
    for t in range(12):
        dispensing += [
            (f"r{t}", HN, "NK01", ROSU, month(t, 10), 90 + 10 * t),
            (f"r2-{t}", HN, "NK01", ROSU2, month(t, 20), 5),
            (f"sub{t}", HN, "NK01", AMLO_SUB, month(t, 15), 777),
            (f"a{t}", HN, "SJ01", AMLO, month(t, 12), 10 if t == 5 else 100),
        ]
    dispensing += [("other", HN2, "NK01", ROSU, month(2, 5), 2000), ("late", HN, "NK01", ROSU, D(2023, 1, 3), 999)]
    add_dispensing(home, dispensing)
    purchases = [(f"p{t}", HN, ROSU, month(t, 2), 300) for t in range(12)]
    purchases += [(f"pa{t}", HN, AMLO, month(t, 3), 300) for t in (1, 4, 9)]
    add_purchases(home, purchases)
    return batch


@pytest.fixture
def target_facts(ws: WS, settings: Any) -> None:
    """Dispensing of A01 (HN-N7) before and in agreement year 1 (module docstring)."""
    add_dispensing(
        settings.JICAI_HOME,
        [
            ("t1", HN, "NK01", ATOR, D(2022, 3, 1), 300),
            ("t2", HN, "SJ01", ATOR, D(2022, 4, 1), 100),
            ("t3", HN, "WK01", ATOR, D(2022, 5, 1), 50),
            ("t4", HN, "NK01", ATOR, D(2021, 10, 31), 9000),  # the day before the window
            ("t5", HN, "NK01", ATOR, D(2023, 2, 1), 1000),
            ("t6", HN, "SJ01", ATOR, D(2023, 2, 1), 500),
        ],
    )
