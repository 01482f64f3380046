"""Shared fixtures: an isolated JICAI_HOME, two provinces of tenants, one user per role."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from jicai.core.tenancy import Scope, system_scope, use_scope

SHARED_REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
PASSWORD = "Correct-Horse-9-Battery"


def real_file(name: str) -> Path:
    path = SHARED_REAL / name
    if not path.is_file():
        pytest.skip(f"shared real data absent: {path} (tests read ../shared/data/real beside the project)")
    return path


@pytest.fixture(autouse=True)
def _jicai_home(tmp_path: Path, settings: Any) -> None:
    settings.JICAI_HOME = tmp_path
    (tmp_path / "reports").mkdir()
    (tmp_path / "mappings").mkdir()


@pytest.fixture(autouse=True)
def _fast_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def system() -> Iterator[Scope | None]:
    with system_scope("test") as scope:
        yield scope


@dataclass
class World:
    """Two provinces (Hainan 460000, Shaanxi 610000), each with hospitals, departments and a batch."""

    hn_inst: Any
    hn_inst2: Any
    sx_inst: Any
    hn_dept: Any
    hn_dept2: Any
    sx_dept: Any
    hn_batch: Any
    sx_batch: Any
    hn_item: Any
    sx_item: Any
    product: Any
    product2: Any
    company: Any
    hn_agreement: Any
    sx_agreement: Any
    users: dict[str, Any]

    def user(self, key: str) -> Any:
        return self.users[key]

    def scope(self, key: str) -> Scope:
        return self.users[key].scope()  # type: ignore[no-any-return]


def _make_world() -> World:
    from jicai.accounts.models import User
    from jicai.catalog.models import Product
    from jicai.organizations.models import Company, Department, Institution
    from jicai.programme.models import Agreement, Batch, Item, SelectedProduct

    hn_inst = Institution.objects.create(
        code="H46010800001", name="海南省人民医院", region_code="460108", kind="public", level=3
    )
    hn_inst2 = Institution.objects.create(
        code="H46020000002", name="三亚市人民医院", region_code="460200", kind="public", level=3
    )
    sx_inst = Institution.objects.create(
        code="H61011200123", name="西安市第一医院", region_code="610112", kind="public", level=3
    )
    hn_dept = Department.objects.create(institution=hn_inst, code="NK01", name="心内科")
    hn_dept2 = Department.objects.create(institution=hn_inst, code="SJ01", name="神经内科")
    sx_dept = Department.objects.create(institution=sx_inst, code="NK01", name="心内科")
    company = Company.objects.create(name="辉瑞制药有限公司", role="manufacturer")
    product = Product.objects.create(
        code="XC10AAA067A001020101187",
        generic_name="阿托伐他汀钙片",
        dosage_form="片剂",
        strength="20mg",
        pack="20mg*7片/盒",
        pack_size=7,
        min_unit="片",
        manufacturer="辉瑞制药有限公司",
        listed_price=Decimal("42.77"),
    )
    product2 = Product.objects.create(
        code="XC08CAA014A001010100001",
        generic_name="苯磺酸氨氯地平片",
        dosage_form="片剂",
        strength="5mg",
        pack="5mg*14片/盒",
        pack_size=14,
        min_unit="片",
        listed_price=Decimal("2.80"),
    )
    hn_batch = Batch.objects.create(
        code="HN-N7",
        name="第七批国家集采（海南）",
        level="national",
        policy_profile="national",
        region_code="460000",
        start_date=dt.date(2022, 11, 1),
    )
    sx_batch = Batch.objects.create(
        code="SX-N7",
        name="第七批国家集采（陕西）",
        level="national",
        policy_profile="shanxi",
        region_code="610000",
        start_date=dt.date(2022, 11, 1),
    )
    hn_item = Item.objects.create(
        batch=hn_batch, item_code="A01", generic_name="阿托伐他汀钙片", unit_label="片", winners=3
    )
    sx_item = Item.objects.create(
        batch=sx_batch, item_code="A01", generic_name="阿托伐他汀钙片", unit_label="片", winners=3
    )
    SelectedProduct.objects.create(
        batch=hn_batch, product=product, item=hn_item, winning_price=Decimal("2.38"), company=company
    )
    period = {"period_start": dt.date(2022, 11, 1), "period_end": dt.date(2023, 10, 31)}
    hn_agreement = Agreement.objects.create(
        batch=hn_batch, item=hn_item, institution=hn_inst, year=1, agreed_qty=Decimal(10000), **period
    )
    sx_agreement = Agreement.objects.create(
        batch=sx_batch, item=sx_item, institution=sx_inst, year=1, agreed_qty=Decimal(20000), **period
    )

    def user(username: str, role: str, **kw: Any) -> Any:
        u = User(username=username, role=role, **kw)
        u.set_password(PASSWORD)
        u.is_staff = role in {"platform_admin", "bureau_admin", "bureau_analyst", "bureau_viewer", "it"}
        u.is_superuser = role == "platform_admin"
        u.save()
        return u

    users = {
        "operator": user("operator", "platform_admin"),
        "hn_admin": user("hn_admin", "bureau_admin", region_code="460000"),
        "hn_analyst": user("hn_analyst", "bureau_analyst", region_code="460000"),
        "hn_viewer": user("hn_viewer", "bureau_viewer", region_code="460000"),
        "sy_admin": user("sy_admin", "bureau_admin", region_code="460200"),
        "sx_admin": user("sx_admin", "bureau_admin", region_code="610000"),
        "hn_vbp": user("hn_vbp", "vbp_office", institution=hn_inst),
        "hn_pharmacy": user("hn_pharmacy", "pharmacy", institution=hn_inst),
        "hn_it": user("hn_it", "it", institution=hn_inst),
        "hn2_vbp": user("hn2_vbp", "vbp_office", institution=hn_inst2),
        "sx_vbp": user("sx_vbp", "vbp_office", institution=sx_inst),
        "hn_head": user("hn_head", "department_head", institution=hn_inst, department=hn_dept),
        "hn_head2": user("hn_head2", "department_head", institution=hn_inst, department=hn_dept2),
    }
    return World(
        hn_inst=hn_inst,
        hn_inst2=hn_inst2,
        sx_inst=sx_inst,
        hn_dept=hn_dept,
        hn_dept2=hn_dept2,
        sx_dept=sx_dept,
        hn_batch=hn_batch,
        sx_batch=sx_batch,
        hn_item=hn_item,
        sx_item=sx_item,
        product=product,
        product2=product2,
        company=company,
        hn_agreement=hn_agreement,
        sx_agreement=sx_agreement,
        users=users,
    )


@pytest.fixture
def world(db: Any) -> World:
    with system_scope("fixture"):
        return _make_world()


def run_as(scope: Scope | None) -> Any:
    """Context manager: ORM access as ``scope`` (None = no scope, which must fail closed)."""
    return use_scope(scope)


def csv_bytes(text: str, encoding: str = "utf-8") -> bytes:
    return text.strip("\n").replace("\n", "\r\n").encode(encoding) + b"\r\n"
