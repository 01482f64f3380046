"""Fixtures of the quality tests: the shared ``world`` plus quality roles, a second product of the item
(same generic, not selected) and a substitute, and the proposed GRANTS patched into the role table.

Territory: 海南省人民医院 (HK, 460108) and 三亚市人民医院 (SY, 460200) in Hainan 460000; 西安市第一医院
(XA, 610112) in Shaanxi. Item HN-N7/A01 (阿托伐他汀钙片) has the selected product P1 (world.product);
here it gains P3 (same generic, not selected) and P2 (world.product2, a substitute).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from jicai.core.tenancy import Scope, system_scope
from tests.conftest import PASSWORD, World

P1 = "XC10AAA067A001020101187"  # selected in HN-N7 / A01
P2 = "XC08CAA014A001010100001"  # substitute in HN-N7 / A01
P3 = "XC10AAA067A001020109999"  # same generic, not selected in HN-N7 / A01
HK, SY, XA = "H46010800001", "H46020000002", "H61011200123"


def day(n: int) -> dt.date:
    """Day ``n`` of March 2025 (a past month: reports may not be dated in the future)."""
    return dt.date(2025, 3, 1) + dt.timedelta(days=n - 1)


@pytest.fixture(autouse=True)
def quality_grants(monkeypatch: pytest.MonkeyPatch) -> None:
    """The quality GRANTS (jicai.quality.permissions) added to every role until the lead merges them."""
    from jicai.accounts import permissions
    from jicai.quality.permissions import permission_strings

    extra = permission_strings()
    for role, perms in list(permissions.ROLE_PERMISSIONS.items()):
        monkeypatch.setitem(permissions.ROLE_PERMISSIONS, role, perms | extra.get(role.value, frozenset()))


@dataclass
class Quality:
    world: World
    p3: Any

    def scope(self, user: str) -> Scope:
        return self.world.scope(user)

    def user(self, user: str) -> Any:
        return self.world.user(user)

    def client(self, user: str | None) -> Client:
        client = Client()
        if user is not None:
            client.force_login(self.world.user(user))
        return client


@pytest.fixture
def q(world: World) -> Quality:
    from jicai.accounts.models import User
    from jicai.catalog.models import Product
    from jicai.programme.models import NonSelectedProduct

    with system_scope("quality-fixture"):
        p3 = Product.objects.create(
            code=P3,
            generic_name="阿托伐他汀钙片",
            dosage_form="片剂",
            strength="20mg",
            pack="20mg*14片/盒",
            pack_size=14,
            min_unit="片",
            manufacturer="某某制药有限公司",
            ce_passed=True,
            listed_price=Decimal("9.80"),
        )
        NonSelectedProduct.objects.create(batch=world.hn_batch, product=p3, item=world.hn_item, kind="same_generic")
        NonSelectedProduct.objects.create(
            batch=world.hn_batch, product=world.product2, item=world.hn_item, kind="substitute"
        )
        for username, role, kw in (
            ("hn_medical", "medical_affairs", {"institution": world.hn_inst}),
            ("hn_leader", "leadership", {"institution": world.hn_inst}),
            ("hn_finance", "finance", {"institution": world.hn_inst}),
            ("hn2_pharmacy", "pharmacy", {"institution": world.hn_inst2}),
            ("hn2_leader", "leadership", {"institution": world.hn_inst2}),
            ("sx_pharmacy", "pharmacy", {"institution": world.sx_inst}),
        ):
            user = User(username=username, role=role, **kw)
            user.set_password(PASSWORD)
            user.save()
            world.users[username] = user
    return Quality(world=world, p3=p3)


def reaction(scope: Scope, on: int, *, product: str = P1, lot: str = "", **kw: Any) -> Any:
    """Record a report as ``scope`` with onset and report date on day ``on`` of March 2025."""
    from jicai.quality.actions import ReactionInput, do_create_reaction

    kw.setdefault("reaction", "皮疹")
    kw.setdefault("reporter", "张医生")
    return do_create_reaction(
        scope, ReactionInput(report_date=day(on), onset_date=day(on), product_code=product, lot_number=lot, **kw)
    )
