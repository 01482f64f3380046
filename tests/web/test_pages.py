"""The daily screens through the web: who sees which page, what it shows, links and query counts."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from .conftest import AS_OF, HK, SY, TC, XA, client_for

pytestmark = pytest.mark.django_db

OVERVIEW = "/overview/"
INSTITUTION = "/institutions/{}/"
ITEM_URL = "/institutions/{}/items/{}/A01/"
DEPARTMENT = "/institutions/{}/departments/{}/"
PAGES = [
    OVERVIEW,
    "/overview/institutions/",
    "/overview/items/",
    "/progress/",
    INSTITUTION.format(HK),
    ITEM_URL.format(HK, "HN-N7"),
    DEPARTMENT.format(HK, "NK01"),
    "/alerts/",
    "/lines/purchases/",
    "/lines/dispensing/",
    "/lines/payables/",
]


def text(response: Any) -> str:
    return response.content.decode()


def chart_data(response: Any, element: str) -> Any:
    found = re.search(rf'<script id="{element}" type="application/json">(.*?)</script>', text(response), re.S)
    assert found, element
    return json.loads(found.group(1))


# --------------------------------------------------------------------------- who may see what


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_is_sent_to_login(site: Any, client: Client, url: str) -> None:
    r = client.get(url)
    assert r.status_code == 302
    assert r["Location"].startswith("/login/")


def test_resolving_an_alert_needs_a_login(site: Any, client: Client) -> None:
    r = client.post(f"/alerts/{site.tranche_alert.pk}/resolve/")
    assert r.status_code == 302
    assert r["Location"].startswith("/login/")


@pytest.mark.parametrize(
    ("user", "status"),
    [("hn_admin", 200), ("hn_viewer", 200), ("sy_admin", 200), ("operator", 200)]
    + [(u, 404) for u in ("hn_vbp", "hn_pharmacy", "hn_it", "hn_head")],
)
def test_the_bureau_pages_are_for_bureau_roles(site: Any, user: str, status: int) -> None:
    client = client_for(site, user)
    for url in (OVERVIEW, "/overview/institutions/", "/overview/items/"):
        assert client.get(url).status_code == status, (user, url)


@pytest.mark.parametrize(
    ("user", "code", "status"),
    [
        ("hn_vbp", HK, 200),
        ("hn_pharmacy", HK, 200),
        ("hn_vbp", SY, 404),  # another hospital
        ("hn2_vbp", HK, 404),
        ("hn_admin", HK, 200),
        ("hn_admin", SY, 200),
        ("sy_admin", HK, 404),  # a city bureau of another city
        ("sx_admin", HK, 404),  # another province
        ("hn_admin", XA, 404),
        ("hn_head", HK, 404),  # a department head has no purchase figures
        ("operator", TC, 200),
        ("hn_admin", "H99999999999", 404),
    ],
)
def test_an_institution_is_seen_by_itself_and_its_bureaus_only(site: Any, user: str, code: str, status: int) -> None:
    client = client_for(site, user)
    assert client.get(INSTITUTION.format(code)).status_code == status
    batch = "SX-N7" if code in {XA, TC} else "HN-N7"
    assert client.get(ITEM_URL.format(code, batch)).status_code == status


def test_an_item_without_an_agreement_is_not_found(site: Any) -> None:
    client = client_for(site, "hn_vbp")
    assert client.get(ITEM_URL.format(HK, "SX-N7")).status_code == 404
    assert client.get(f"/institutions/{HK}/items/HN-N7/B99/").status_code == 404


@pytest.mark.parametrize(
    ("user", "code", "dept", "status"),
    [
        ("hn_head", HK, "NK01", 200),
        ("hn_head", HK, "SJ01", 404),  # the other department of its hospital
        ("hn_head2", HK, "NK01", 404),
        ("hn_head", SY, "NK01", 404),  # the same department code in another hospital
        ("hn_vbp", HK, "NK01", 200),
        ("hn_vbp", HK, "SJ01", 200),
        ("hn_vbp", SY, "NK01", 404),
        ("hn2_vbp", SY, "NK01", 200),
        ("hn_admin", HK, "SJ01", 200),
        ("sy_admin", HK, "NK01", 404),
        ("sx_admin", HK, "NK01", 404),
        ("hn_vbp", HK, "ZZ99", 404),
    ],
)
def test_a_department_is_seen_by_its_head_its_hospital_and_its_bureau(
    site: Any, user: str, code: str, dept: str, status: int
) -> None:
    assert client_for(site, user).get(DEPARTMENT.format(code, dept)).status_code == status


@pytest.mark.parametrize(("user", "status"), [("hn_vbp", 200), ("hn_admin", 200), ("hn_head", 404)])
def test_progress_and_alert_lists_need_purchase_figures(site: Any, user: str, status: int) -> None:
    client = client_for(site, user)
    assert client.get("/progress/").status_code == status
    assert client.get("/alerts/").status_code == status


# --------------------------------------------------------------------------- what the pages show


def test_the_overview_shows_the_region_with_its_date(site: Any) -> None:
    r = client_for(site, "hn_admin").get(OVERVIEW)
    body = text(r)
    assert r.status_code == 200
    assert f"数据截至 {AS_OF.isoformat()}" in body
    for marker in ("海南省人民医院", "三亚市人民医院", HK, SY):
        assert marker in body
    for marker in ("西安市第一医院", "铜川市人民医院", XA, TC, "SX-N7"):
        assert marker not in body, marker
    for element in ("chart-mix", "chart-trend", "chart-heatmap", "table-institutions", "table-items", "table-behind"):
        assert f'id="{element}"' in body
        assert f'data-testid="{element}"' in body
    heat = chart_data(r, "data-heatmap")
    assert {i["code"] for i in heat["institutions"]} == {HK, SY}
    assert heat["url"] == "/institutions/__INST__/items/__BATCH__/__ITEM__/"
    trend = chart_data(r, "data-trend")
    assert trend["months"][-1] == "2023-04"
    assert trend["labels"]["completion"] == "完成率"
    assert r.context["kpi"]["overdue_amount"] == Decimal("340.00")
    assert [t["institution_code"] for t in r.context["tranches"]] == [HK]
    assert r.context["tranches"][0]["this_month"]
    assert '<span class="badge status-at-risk" data-status="at_risk">' in body


def test_a_city_bureau_sees_its_city_only(site: Any) -> None:
    r = client_for(site, "sy_admin").get(OVERVIEW)
    body = text(r)
    assert SY in body
    assert HK not in body
    assert "海南省人民医院" not in body


def test_the_institution_view_of_a_hospital(site: Any) -> None:
    r = client_for(site, "hn_vbp").get(INSTITUTION.format(HK))
    body = text(r)
    assert r.status_code == 200
    (item,) = r.context["items"]
    assert item["counted_qty"] == Decimal(1500)
    assert item["status"] == "at_risk"
    assert r.context["payables"]["overdue_amount"] == Decimal("170.00")
    assert r.context["tranches"]  # the national profile's tranches of the agreement
    assert all(t["institution_code"] == HK for t in r.context["tranches"])
    assert [a.institution_code for a in r.context["alerts"]] == [HK, HK]
    assert r.context["can_resolve"]  # the VBP office marks its own alerts handled
    assert {d.code for d in r.context["departments"]} == {"NK01", "SJ01"}
    assert "170.00" in body
    for marker in (SY, XA, "三亚市人民医院"):
        assert marker not in body


def test_the_item_view_lists_years_months_and_departments(site: Any) -> None:
    r = client_for(site, "hn_vbp").get(ITEM_URL.format(HK, "HN-N7"))
    assert r.status_code == 200
    assert [y["year"] for y in r.context["years"]] == [1]
    assert [m["month"] for m in r.context["months"]] == ["2023-03", "2023-02", "2022-11"]
    assert {d["department_code"]: d["target_qty"] for d in r.context["departments"]} == {
        "NK01": Decimal(5000),
        "SJ01": Decimal(5000),
    }


def test_the_department_view_of_its_head_and_of_its_hospital(site: Any) -> None:
    head = client_for(site, "hn_head").get(DEPARTMENT.format(HK, "NK01"))
    assert head.status_code == 200
    (row,) = head.context["rows"]
    assert row["dispensed_qty"] == Decimal(80)
    assert row["target_qty"] is None
    assert not head.context["targets_known"]
    assert 'data-testid="no-targets"' in text(head)
    assert "links" in row
    assert "item" not in row["links"]  # no way into the hospital's purchase figures
    assert head.context["siblings"] == []
    office = client_for(site, "hn_vbp").get(DEPARTMENT.format(HK, "NK01"))
    (row,) = office.context["rows"]
    assert row["target_qty"] == Decimal(5000)
    assert office.context["targets_known"]
    assert {d.code for d in office.context["siblings"]} == {"NK01", "SJ01"}
    assert chart_data(office, "data-department")["mode"] == "completion"


def test_progress_list_filters_sorts_and_stays_in_scope(site: Any) -> None:
    client = client_for(site, "hn_admin")
    r = client.get("/progress/")
    assert [x["institution_code"] for x in r.context["page"].object_list] == [HK, SY]
    r = client.get("/progress/", {"sort": "-completion"})
    assert [x["institution_code"] for x in r.context["page"].object_list] == [SY, HK]
    r = client.get("/progress/", {"status": "at_risk"})  # 15 % and 30 % of the volume at 50 % of the year
    assert [x["institution_code"] for x in r.context["page"].object_list] == [HK, SY]
    r = client.get("/progress/", {"status": "completed"})
    assert r.context["page"].object_list == []
    r = client.get("/progress/", {"institution": XA})
    assert r.status_code == 404
    own = client_for(site, "hn_vbp").get("/progress/", {"institution": SY})
    assert own.status_code == 200
    assert [x["institution_code"] for x in own.context["page"].object_list] == [HK]  # always its own


def test_rankings_sort_and_search_on_the_server(site: Any) -> None:
    client = client_for(site, "hn_admin")
    r = client.get("/overview/institutions/", {"sort": "-completion"})
    assert [x["institution_code"] for x in r.context["page"].object_list] == [SY, HK]
    r = client.get("/overview/institutions/", {"q": "三亚"})
    assert [x["institution_code"] for x in r.context["page"].object_list] == [SY]
    r = client.get("/overview/items/", {"q": "A01"})
    assert len(r.context["page"].object_list) == 1


def test_the_pages_switch_to_english(site: Any) -> None:
    client = client_for(site, "hn_admin")
    client.cookies["django_language"] = "en"
    body = text(client.get(OVERVIEW))
    assert f"Data as of {AS_OF.isoformat()}" in body
    assert "Region overview" in body


# --------------------------------------------------------------------------- drill-down


def follow(client: Client, url: str) -> Any:
    r = client.get(url)
    assert r.status_code == 200, url
    return r


def test_drill_down_from_region_to_department(site: Any) -> None:
    client = client_for(site, "hn_admin")
    overview = follow(client, OVERVIEW)
    hk = next(r for r in overview.context["institutions"] if r["institution_code"] == HK)
    institution = follow(client, hk["links"]["institution"])
    (item,) = institution.context["items"]
    detail = follow(client, item["links"]["item"])
    dept = next(d for d in detail.context["departments"] if d["department_code"] == "NK01")
    department = follow(client, dept["links"]["department"])
    assert department.context["department"].code == "NK01"
    # the heat map's cell link leads to the same item page
    heat = chart_data(overview, "data-heatmap")
    assert (
        heat["url"].replace("__INST__", HK).replace("__BATCH__", "HN-N7").replace("__ITEM__", "A01")
        == (item["links"]["item"])
    )


def test_the_counted_quantity_links_to_exactly_its_lines(site: Any) -> None:
    client = client_for(site, "hn_vbp")
    (item,) = client.get(INSTITUTION.format(HK)).context["items"]
    query = parse_qs(urlsplit(item["links"]["counted"]).query)
    assert query["kind"] == ["selected"]
    r = follow(client, item["links"]["counted"])
    assert r.context["totals"]["item_qty"] == item["counted_qty"]
    assert [x["line_id"] for x in r.context["page"].object_list] == ["HK-L1", "HK-L2"]


def test_the_overdue_amount_links_to_its_lines(site: Any) -> None:
    client = client_for(site, "hn_admin")
    overview = client.get(OVERVIEW)
    hk = next(r for r in overview.context["overdue"] if r["institution_code"] == HK)
    r = follow(client, hk["links"]["overdue"])
    assert r.context["totals"]["outstanding"] == hk["overdue_amount"]
    assert [x["line_id"] for x in r.context["page"].object_list] == ["HK-L2"]


def test_the_dispensed_quantity_links_to_its_lines(site: Any) -> None:
    client = client_for(site, "hn_head")
    (row,) = client.get(DEPARTMENT.format(HK, "NK01")).context["rows"]
    r = follow(client, row["links"]["dispensed"])
    assert r.context["totals"]["item_qty"] == row["dispensed_qty"]
    assert [x["record_id"] for x in r.context["page"].object_list] == ["HK-NK01-D1"]


# --------------------------------------------------------------------------- menus


@pytest.mark.parametrize(
    ("user", "present", "absent"),
    [
        ("hn_admin", {"/overview/", "/progress/", "/alerts/"}, {INSTITUTION.format(HK)}),
        ("hn_vbp", {INSTITUTION.format(HK), "/progress/", "/alerts/"}, {"/overview/"}),
        ("hn_head", {DEPARTMENT.format(HK, "NK01")}, {"/overview/", "/progress/", "/alerts/", INSTITUTION.format(HK)}),
    ],
)
def test_menus_show_what_the_role_may_use(site: Any, user: str, present: set[str], absent: set[str]) -> None:
    r = client_for(site, user).get(reverse("web:home"))
    urls = {url for _label, url in r.context["nav"]}
    assert present <= urls
    assert not (absent & urls)


# --------------------------------------------------------------------------- query counts


# Every request: the session and the user (a hospital user: + its institution, a department head:
# + its department, for the scope). Then the page's own: the scope's institutions and items (names);
# for the on-demand parts (cold here: the fixture empties the caches) the fingerprint of what they
# are computed from (the institution's agreements, the selected and non-selected products: 3) and
# the reference rows (selected, non-selected, agreements, institutions: 4); alerts. None grows with
# the number of rows shown.
@pytest.mark.parametrize(
    ("user", "url", "queries"),
    [
        ("hn_admin", OVERVIEW, 2 + 2 + 2),  # + open alerts per kind, open tranches
        ("hn_admin", "/overview/institutions/", 2 + 2),
        ("hn_admin", "/overview/items/", 2 + 2),
        ("hn_admin", "/progress/", 2 + 2),
        # + the institution (404 check), fingerprint, reference, alert counts, last alerts, departments
        ("hn_vbp", INSTITUTION.format(HK), 3 + 1 + 2 + 3 + 4 + 3),
        # + the institution, published department targets (for the cache key, then in the report),
        # fingerprint, reference, department names
        ("hn_vbp", ITEM_URL.format(HK, "HN-N7"), 3 + 1 + 2 + 2 + 3 + 4 + 1),
        # + the unread-messages badge, the department (404 check), published department targets,
        # fingerprint, reference
        ("hn_head", DEPARTMENT.format(HK, "NK01"), 4 + 1 + 1 + 2 + 2 + 3 + 4),
        ("hn_admin", "/alerts/", 2 + 2),  # + count and page
        # + the item's selected and non-selected products
        ("hn_vbp", "/lines/purchases/?institution=" + HK + "&batch=HN-N7&item=A01", 3 + 2 + 2),
        # + the institution (404 check)
        ("hn_vbp", "/lines/payables/?institution=" + HK, 3 + 1 + 2),
    ],
)
def test_query_counts_are_pinned(site: Any, django_assert_num_queries: Any, user: str, url: str, queries: int) -> None:
    client = client_for(site, user)
    with django_assert_num_queries(queries):
        r = client.get(url)
    assert r.status_code == 200


def test_a_second_view_reuses_the_figures_computed_on_demand(site: Any, django_assert_num_queries: Any) -> None:
    client = client_for(site, "hn_vbp")
    first = client.get(INSTITUTION.format(HK))
    # warm: the fingerprint is checked, the reference is not loaded again
    with django_assert_num_queries(3 + 1 + 2 + 3 + 3):
        second = client.get(INSTITUTION.format(HK))
    assert second.context["tranches"] == first.context["tranches"]


def test_a_changed_agreement_is_computed_afresh(site: Any) -> None:
    from jicai.core.tenancy import system_scope

    client = client_for(site, "hn_vbp")
    before = {t["tranche"]: t["agreed_amount"] for t in client.get(INSTITUTION.format(HK)).context["tranches"]}
    with system_scope("test"):
        site.hn_agreement.agreed_qty = Decimal(20000)
        site.hn_agreement.save()
    after = {t["tranche"]: t["agreed_amount"] for t in client.get(INSTITUTION.format(HK)).context["tranches"]}
    assert set(after.values()) == {before[1] * 2}  # 20,000 × 0.34 instead of 10,000 × 0.34
