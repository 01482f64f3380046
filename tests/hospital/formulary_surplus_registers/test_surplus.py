"""Retained surplus distribution (R-G3; XJ 五(七)): the profile's 60/30/10 split, prescribers by their
selected-drug use, pharmacy staff equally or by weight, exact to the fen; approval; export; API."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook

from jicai.core.audit import AuditEntry
from jicai.core.tenancy import ScopeError, system_scope, use_scope
from jicai.hospital.common import WorkflowError
from jicai.hospital.models import SurplusDistribution, SurplusShare
from jicai.hospital.surplus import actions, queries
from jicai.policy.profile import ProfileLibrary, parse_profile
from jicai.policy.surplus import XJ_INTERNAL_SPLIT, InternalSplitParams

from .conftest import HN, HN2, SEL, WS, add_dispensing

D = dt.date
NON_SELECTED = "NCE00001"
STAFF = [("Y001", None), ("Y002", None), ("Y003", None)]

# Selected-drug dispensing in 2023 Q1 by prescriber (amount in yuan): D001 600, D002 300, D003 100.
DISPENSING = [
    ("S1", HN, "NK01", SEL, D(2023, 1, 1), "100", "400.00", "D001"),  # first day of the period
    ("S2", HN, "NK01", SEL, D(2023, 3, 31), "50", "200.00", "D001"),  # last day of the period
    ("S3", HN, "SJ01", SEL, D(2023, 2, 1), "100", "300.00", "D002"),
    ("S4", HN, "SJ01", SEL, D(2023, 2, 2), "10", "100.00", "D003"),
    ("S5", HN, "NK01", NON_SELECTED, D(2023, 2, 1), "999", "999.00", "D004"),  # not a selected drug
    ("S6", HN, "NK01", SEL, D(2023, 2, 1), "5", "50.00", ""),  # no prescriber: not attributable
    ("S7", HN, "NK01", SEL, D(2022, 12, 31), "5", "77.00", "D005"),  # before the period
    ("S8", HN, "NK01", SEL, D(2023, 4, 1), "5", "77.00", "D005"),  # after the period
    ("S9", HN2, "NK01", SEL, D(2023, 2, 1), "5", "88.00", "D009"),  # another hospital
]


@pytest.fixture
def surplus_facts(ws: WS, settings: Any) -> WS:
    add_dispensing(Path(settings.JICAI_HOME), DISPENSING)
    return ws


def _create(ws: WS, user: str = "hn_finance", **kw: Any) -> SurplusDistribution:
    kw.setdefault("period", "2023Q1")
    kw.setdefault("amount", Decimal("1000.01"))
    kw.setdefault("date_from", D(2023, 1, 1))
    kw.setdefault("date_to", D(2023, 3, 31))
    kw.setdefault("pharmacy_staff", STAFF)
    return actions.do_create_distribution(ws.scope(user), **kw)


def _shares(dist: SurplusDistribution) -> dict[tuple[str, str], Decimal]:
    with system_scope("t"):
        return {(s.pool, s.recipient): s.amount for s in SurplusShare.objects.filter(distribution=dist)}


def test_split_60_30_10_exact_to_the_fen(surplus_facts: WS) -> None:
    # Given 1,000.01 yuan retained: pools 600.006 / 300.003 / 100.001 → the spare fen to the largest
    # remainder (prescribers): 600.01 / 300.00 / 100.00
    dist = _create(surplus_facts)
    shares = _shares(dist)
    # prescribers 600.01 by use 600 : 300 : 100 → 360.006, 180.003, 60.001 → 360.01, 180.00, 60.00
    assert shares == {
        ("prescribers", "D001"): Decimal("360.01"),
        ("prescribers", "D002"): Decimal("180.00"),
        ("prescribers", "D003"): Decimal("60.00"),
        ("pharmacy", "Y001"): Decimal("100.00"),
        ("pharmacy", "Y002"): Decimal("100.00"),
        ("pharmacy", "Y003"): Decimal("100.00"),
        ("institution", HN): Decimal("100.00"),
    }
    assert sum(shares.values()) == Decimal("1000.01")
    p = dist.params
    assert p["pools"] == {"prescribers": "600.01", "pharmacy": "300.00", "institution": "100.00"}
    assert p["split"] == {"prescribers": "0.60", "pharmacy": "0.30", "institution": "0.10"}
    # Hainan has no profile of its own: the national layer's value, shown as such
    assert (p["split_source"]["kind"], p["split_source"]["profile"], p["split_source"]["layer"]) == (
        "profile",
        "national",
        "national",
    )
    assert p["use"] == {"prescribers": 3, "total": "1000.00", "unattributed": "50.00"}
    assert (p["basis"], p["pharmacy_mode"], dist.status) == ("amount", "equal", "draft")
    with system_scope("t"):
        assert AuditEntry.objects.filter(action="surplus.share.create").count() == 7


def test_prescribers_by_quantity_and_pharmacy_by_weight(surplus_facts: WS) -> None:
    # quantities 150 / 100 / 10 tablets; 1,300.00 → pools 780 / 390 / 130
    dist = _create(
        surplus_facts,
        amount=Decimal("1300.00"),
        basis="qty",
        pharmacy_staff=[("Y001", Decimal(2)), ("Y002", Decimal(1))],
    )
    shares = _shares(dist)
    # 780 × 150/260 = 450.00, × 100/260 = 300.00, × 10/260 = 30.00
    assert [shares[("prescribers", d)] for d in ("D001", "D002", "D003")] == [
        Decimal("450.00"),
        Decimal("300.00"),
        Decimal("30.00"),
    ]
    assert (shares[("pharmacy", "Y001")], shares[("pharmacy", "Y002")]) == (Decimal("260.00"), Decimal("130.00"))
    assert dist.params["pharmacy_mode"] == "weighted"


def test_split_comes_from_the_institution_profile(surplus_facts: WS, tmp_path: Path) -> None:
    # Given a user profile for Hainan (460000) with 50/40/10
    library = ProfileLibrary()
    profile = parse_profile(
        {
            "name": "hainan",
            "label": "海南",
            "level": "province",
            "parent": "national",
            "region_code": "460000",
            "versions": [
                {
                    "effective_from": "2020-01-01",
                    "surplus": {
                        "internal_split": {
                            "value": {"prescribers": "0.50", "pharmacy": "0.40", "institution": "0.10"},
                            "source": "测试",
                            "confirmed": False,
                        }
                    },
                }
            ],
        }
    )
    library.profiles()["hainan"] = profile
    dist = _create(surplus_facts, amount=Decimal("100.00"), profiles=library)
    assert dist.params["split"] == {"prescribers": "0.50", "pharmacy": "0.40", "institution": "0.10"}
    assert dist.params["split_source"]["profile"] == "hainan"
    assert dist.params["pools"] == {"prescribers": "50.00", "pharmacy": "40.00", "institution": "10.00"}


def test_default_split_when_the_profile_has_none(ws: WS) -> None:
    library = ProfileLibrary()
    national = library.profiles()["national"]
    for version in national.versions:
        version.settings.pop("surplus.internal_split", None)
    with system_scope("t"):
        split = queries.internal_split_for(ws.hn_inst, D(2023, 3, 31), library)
    assert split.params == XJ_INTERNAL_SPLIT
    assert split.source["kind"] == "default"


def test_refusals(surplus_facts: WS) -> None:
    with pytest.raises(WorkflowError, match="精确到分"):
        _create(surplus_facts, amount=Decimal("1.001"))
    with pytest.raises(WorkflowError, match="大于0"):
        _create(surplus_facts, amount=Decimal(0))
    with pytest.raises(WorkflowError, match="药学人员名单有重复"):
        _create(surplus_facts, pharmacy_staff=[("Y1", None), ("Y1", None)])
    with pytest.raises(WorkflowError, match="都不填"):
        _create(surplus_facts, pharmacy_staff=[("Y1", Decimal(1)), ("Y2", None)])
    with pytest.raises(WorkflowError, match="请填写药学人员名单"):
        _create(surplus_facts, pharmacy_staff=[])
    with pytest.raises(WorkflowError, match="没有医师使用中选药品"):
        _create(surplus_facts, date_from=D(2021, 1, 1), date_to=D(2021, 12, 31))
    with pytest.raises(WorkflowError, match="开始日期不能晚于"):
        _create(surplus_facts, date_from=D(2023, 4, 1), date_to=D(2023, 3, 31))
    _create(surplus_facts)
    with pytest.raises(WorkflowError, match="已有分配方案"):
        _create(surplus_facts)


def test_draft_is_revised_and_approved_distribution_is_read_only(surplus_facts: WS) -> None:
    dist = _create(surplus_facts)
    dist = actions.do_update_distribution(surplus_facts.scope("hn_finance"), dist, amount=Decimal("100.00"))
    assert sum(_shares(dist).values()) == Decimal("100.00")
    assert _shares(dist)[("institution", HN)] == Decimal("10.00")
    with pytest.raises(ScopeError):  # finance does not approve
        actions.do_approve_distribution(surplus_facts.scope("hn_finance"), dist)
    approved = actions.do_approve_distribution(surplus_facts.scope("hn_leader"), dist)
    assert (approved.status, approved.approved_by_id) == ("approved", surplus_facts.users["hn_leader"].pk)
    with pytest.raises(WorkflowError, match="只读"):
        actions.do_update_distribution(surplus_facts.scope("hn_finance"), dist, amount=Decimal("200.00"))
    with pytest.raises(WorkflowError, match="只读"):
        actions.do_delete_distribution(surplus_facts.scope("hn_finance"), dist)
    with pytest.raises(WorkflowError, match="只读"):
        actions.do_approve_distribution(surplus_facts.scope("hn_leader"), dist)
    with system_scope("t"):
        entry = AuditEntry.objects.get(action="surplus.distribution.approve")
    assert (entry.actor_name, entry.old["status"], entry.new["status"]) == ("hn_leader", "draft", "approved")


@pytest.mark.parametrize("user", ["hn_pharmacy", "hn_vbp", "hn_leader", "hn_head", "hn_admin"])
def test_only_finance_drafts(surplus_facts: WS, user: str) -> None:
    with pytest.raises(ScopeError):
        _create(surplus_facts, user=user)


def test_other_hospitals_neither_see_nor_approve(surplus_facts: WS) -> None:
    dist = _create(surplus_facts)
    with pytest.raises(ScopeError):
        actions.do_approve_distribution(surplus_facts.scope("hn2_leader"), dist)
    with pytest.raises(ScopeError):
        actions.do_update_distribution(surplus_facts.scope("hn2_finance"), dist, amount=Decimal(1))
    with use_scope(surplus_facts.scope("hn2_finance")):
        assert not SurplusDistribution.objects.filter(pk=dist.pk).exists()


def test_delete_draft(surplus_facts: WS) -> None:
    dist = _create(surplus_facts)
    actions.do_delete_distribution(surplus_facts.scope("hn_finance"), dist)
    with system_scope("t"):
        assert not SurplusDistribution.objects.exists()
        assert not SurplusShare.objects.exists()
        assert AuditEntry.objects.filter(action="surplus.share.delete").count() == 7


# --------------------------------------------------------------------------------------------------
# Exactness (property): the shares sum exactly to the amount, the pools to the split


amounts = st.integers(min_value=1, max_value=10**10).map(lambda fen: Decimal(fen).scaleb(-2))
uses = st.dictionaries(
    st.text("ABCDEFGHIJ", min_size=1, max_size=4),
    st.integers(min_value=1, max_value=10**6).map(Decimal),
    min_size=1,
    max_size=12,
)
staffs = st.dictionaries(
    st.text("xyz0123", min_size=1, max_size=4),
    st.integers(min_value=0, max_value=50).map(Decimal),
    min_size=1,
    max_size=8,
)
splits = st.sampled_from(
    [
        XJ_INTERNAL_SPLIT,
        InternalSplitParams(Decimal("0.5"), Decimal("0.4"), Decimal("0.1")),
        InternalSplitParams(Decimal("0.333"), Decimal("0.333"), Decimal("0.334")),
    ]
)


@given(amount=amounts, use=uses, staff=staffs, split=splits)
def test_property_shares_sum_exactly_to_the_amount(
    amount: Decimal, use: dict[str, Decimal], staff: dict[str, Decimal], split: InternalSplitParams
) -> None:
    rows = queries.share_rows(amount, split, use, staff, HN)
    assert sum(r.amount for r in rows) == amount
    assert all(r.amount == r.amount.quantize(Decimal("0.01")) and r.amount >= 0 for r in rows)
    pools = queries.pool_totals(rows)
    for pool in queries.POOLS:  # each pool within a fen of its exact share
        assert abs(pools[pool] - amount * getattr(split, pool)) < Decimal("0.01")
    # a prescriber who used more never gets less
    ranked = sorted((use[r.recipient], r.amount) for r in rows if r.pool == "prescribers")
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(ranked) if a[0] < b[0])


# --------------------------------------------------------------------------------------------------
# Pages, export, API


def test_pages_draft_approve_export(surplus_facts: WS) -> None:
    finance = surplus_facts.client("hn_finance")
    assert b'data-testid="create-distribution"' in finance.get(reverse("hospital:surplus_list")).content
    response = finance.post(
        reverse("hospital:surplus_create"),
        {
            "period": "2023Q1",
            "amount": "1000.01",
            "date_from": "2023-01-01",
            "date_to": "2023-03-31",
            "basis": "amount",
            "pharmacy_staff": "Y001\nY002\nY003",
        },
    )
    assert response.status_code == 302
    with system_scope("t"):
        dist = SurplusDistribution.objects.get()
    page = finance.get(reverse("hospital:surplus_detail", args=[dist.pk]))
    assert b'data-testid="total">1000.01<' in page.content
    assert b'data-testid="approve"' not in page.content
    leader = surplus_facts.client("hn_leader")
    assert b'data-testid="approve"' in leader.get(reverse("hospital:surplus_detail", args=[dist.pk])).content
    assert finance.post(reverse("hospital:surplus_approve", args=[dist.pk])).status_code == 403
    assert leader.post(reverse("hospital:surplus_approve", args=[dist.pk])).status_code == 302
    page = finance.get(reverse("hospital:surplus_detail", args=[dist.pk]))
    assert b"surplus_update" not in page.content
    assert reverse("hospital:surplus_update", args=[dist.pk]).encode() not in page.content  # read-only now
    # the export for finance: the pools, each recipient, subtotals and the total
    export = finance.get(reverse("hospital:surplus_export", args=[dist.pk]))
    book = load_workbook(io.BytesIO(export.content))
    summary = [[c.value for c in r] for r in book["分配汇总"].iter_rows()]
    assert ["合计", "1", 1000.01, 7] in summary
    assert ["集采药品使用人员", "0.60", 600.01, 3] in summary
    detail = [[c.value for c in r] for r in book["分配明细"].iter_rows()]
    assert detail[0] == ["分配池", "领取人（工号）", "使用量/权重", "金额（元）"]
    assert ["集采药品使用人员", "D001", 600, 360.01] in detail
    assert ["药学工作人员 小计", None, None, 300] in detail
    assert detail[-1] == ["合计", None, None, 1000.01]


@pytest.mark.parametrize(
    ("user", "status"),
    [(None, 302), ("hn_head", 404), ("hn2_finance", 404), ("hn_pharmacy", 200), ("hn_admin", 200)],
)
def test_detail_permissions(surplus_facts: WS, user: str | None, status: int) -> None:
    dist = _create(surplus_facts)
    assert surplus_facts.client(user).get(reverse("hospital:surplus_detail", args=[dist.pk])).status_code == status


def test_list_page_query_count(surplus_facts: WS, django_assert_num_queries: Any) -> None:
    for period in ("2023Q1", "2023Q2", "2023Q3"):
        _create(surplus_facts, period=period)
    client = surplus_facts.client("hn_finance")
    client.get(reverse("hospital:surplus_list"))
    # session, user, the user's institution (scope), count, page (institution, creator, approver joined)
    with django_assert_num_queries(5):
        response = client.get(reverse("hospital:surplus_list"))
    assert response.content.count(b"<tr data-id=") == 3


def test_api(surplus_facts: WS) -> None:
    finance = surplus_facts.client("hn_finance")
    body = {
        "period": "2023Q1",
        "amount": "1000.01",
        "date_from": "2023-01-01",
        "date_to": "2023-03-31",
        "pharmacy_staff": [{"name": "Y001"}, {"name": "Y002"}, {"name": "Y003"}],
    }
    created = finance.post("/api/v1/hospital/surplus/distributions", json.dumps(body), content_type="application/json")
    assert created.status_code == 201, created.content
    data = created.json()
    assert Decimal(data["pools"]["prescribers"]) == Decimal("600.01")
    assert sum(Decimal(s["amount"]) for s in data["shares"]) == Decimal("1000.01")
    dist_id = data["id"]
    again = finance.post("/api/v1/hospital/surplus/distributions", json.dumps(body), content_type="application/json")
    assert again.status_code == 400
    assert "已有分配方案" in again.json()["message_zh"]
    patched = finance.patch(
        f"/api/v1/hospital/surplus/distributions/{dist_id}",
        json.dumps({"amount": "10.00"}),
        content_type="application/json",
    )
    assert patched.status_code == 200
    assert Decimal(patched.json()["amount"]) == Decimal("10.00")
    assert finance.post(f"/api/v1/hospital/surplus/distributions/{dist_id}/approve").status_code == 403
    leader = surplus_facts.client("hn_leader")
    assert leader.post(f"/api/v1/hospital/surplus/distributions/{dist_id}/approve").json()["status"] == "approved"
    assert finance.delete(f"/api/v1/hospital/surplus/distributions/{dist_id}").status_code == 400
    preview = finance.get("/api/v1/hospital/surplus/preview?date_from=2023-01-01&date_to=2023-03-31").json()
    assert {k: Decimal(v) for k, v in preview["prescribers"].items()} == {
        "D001": Decimal(600),
        "D002": Decimal(300),
        "D003": Decimal(100),
    }
    assert Decimal(preview["unattributed"]) == Decimal(50)
    assert (
        surplus_facts.client("hn2_finance").get(f"/api/v1/hospital/surplus/distributions/{dist_id}").status_code == 404
    )
    assert surplus_facts.client("hn_head").get("/api/v1/hospital/surplus/distributions").status_code == 404
    listing = surplus_facts.client("hn_vbp").get("/api/v1/hospital/surplus/distributions").json()
    assert listing["count"] == 1
    export = finance.get(f"/api/v1/hospital/surplus/distributions/{dist_id}/export")
    assert export.status_code == 200
