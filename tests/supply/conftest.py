"""Fixtures of the supply tests: the proposed grants patched in, purchase facts through the importer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from jicai.core.tenancy import Scope, system_scope
from jicai.supply.permissions import GRANTS
from tests.conftest import World, csv_bytes

D = dt.date
HN = "H46010800001"  # world.hn_inst, 海口 460108
HN2 = "H46020000002"  # world.hn_inst2, 三亚 460200
SX = "H61011200123"  # world.sx_inst, 西安 610112
SELECTED = "XC10AAA067A001020101187"  # world.product: selected for HN-N7 / A01 (辉瑞制药有限公司)
NON_SELECTED = "XC10AAA067B002020101999"  # same generic, not selected (added by ``supply_world``)
SUBSTITUTE = "XC08CAA014A001010100001"  # world.product2, a substitute of HN-N7 / A01
DISTRIBUTOR = "国药控股海南有限公司"
PURCHASES_HEADER = (
    "line_id,institution_code,product_code,ordered_on,delivered_on,accepted_on,qty,unit_price,distributor"
)


@pytest.fixture(autouse=True)
def supply_grants(monkeypatch: pytest.MonkeyPatch) -> None:
    """ROLE_PERMISSIONS with ``jicai.supply.permissions.GRANTS`` merged, until the lead adds them."""
    from jicai.accounts.permissions import ROLE_LEVEL, ROLE_PERMISSIONS, RoleName

    for role, grants in GRANTS.items():
        name = RoleName(role)
        level = ROLE_LEVEL[name]
        extra = {f"{level}:{resource}:{verb}" for resource, verbs in grants.items() for verb in verbs}
        monkeypatch.setitem(ROLE_PERMISSIONS, name, ROLE_PERMISSIONS[name] | extra)


@pytest.fixture
def supply_world(world: World) -> World:
    """``world`` plus a non-selected same-generic product and a substitute of HN-N7 / A01, and the
    distributor as a company."""
    from jicai.catalog.models import Product
    from jicai.organizations.models import Company
    from jicai.programme.models import NonSelectedProduct

    with system_scope("fixture"):
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
        world.distributor = Company.objects.create(name=DISTRIBUTOR, role="distributor")  # type: ignore[attr-defined]
    return world


def purchase_line(
    line_id: str,
    inst: str,
    product: str,
    *,
    ordered: dt.date | None = None,
    delivered: dt.date | None = None,
    accepted: dt.date | None = None,
    qty: int = 100,
    distributor: str = DISTRIBUTOR,
) -> str:
    day = lambda d: d.isoformat() if d else ""  # noqa: E731
    return f"{line_id},{inst},{product},{day(ordered)},{day(delivered)},{day(accepted)},{qty},0.34,{distributor}"


def import_purchases(lines: Iterable[str]) -> None:
    """Purchase lines written through the real importer (one Delta commit), as the operator."""
    from jicai.imports.datasets import get_spec
    from jicai.imports.engine import run_import

    data = csv_bytes("\n".join([PURCHASES_HEADER, *lines]))
    result = run_import(get_spec("purchases"), data, "purchases.csv", Scope.system("test"))
    assert result.status == "applied", [(i.line, i.column, i.code, i.message_zh) for i in result.errors]


def client_for(world: World, user: str) -> Client:
    client = Client()
    client.force_login(world.user(user))
    return client


def audit_actions(model: str) -> list[str]:
    from jicai.core.models import AuditEntry

    with system_scope("test"):
        return list(AuditEntry.objects.filter(model=model).order_by("seq").values_list("action", flat=True))


@pytest.fixture
def home(settings: Any) -> Iterator[Path]:
    return Path(settings.JICAI_HOME)


Q = Decimal
