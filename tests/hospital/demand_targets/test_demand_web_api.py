"""Demand reporting pages and API (R-H2): who may see and do what, over HTTP."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from jicai.core.tenancy import system_scope
from jicai.hospital.demand import actions
from jicai.hospital.models import DemandLine, DemandPlan, DemandStatus
from tests.hospital.demand_targets.conftest import ROUND, UNTIL, WS

pytestmark = pytest.mark.django_db
API = "/api/v1/hospital/demand"


def js(client: Any, url: str, data: dict[str, Any] | None = None) -> Any:
    """POST ``data`` as JSON."""
    return client.post(url, data or {}, content_type="application/json")


def make_plan(ws: WS) -> DemandPlan:
    return actions.do_create_plan(ws.scope("hn_pharmacy"), batch_code=ROUND, history_months=12, until=UNTIL)


def b01(plan: DemandPlan) -> DemandLine:
    with system_scope("test"):
        return DemandLine.objects.get(plan=plan, item__item_code="B01")  # type: ignore[no-any-return]


def locked(ws: WS, plan: DemandPlan) -> None:
    actions.do_submit(ws.scope("hn_pharmacy"), plan.pk)
    actions.do_approve(ws.scope("hn_lead"), plan.pk)
    actions.do_lock(ws.scope("hn_vbp"), plan.pk)


def test_anonymous_is_sent_to_log_in(ws: WS, demand_round: Any) -> None:
    plan = make_plan(ws)
    client = ws.client(None)
    assert client.get(reverse("hospital:demand_list")).status_code == 302
    assert client.get(reverse("hospital:demand_detail", args=[plan.pk])).status_code == 302
    assert client.get(f"{API}/").status_code == 401
    assert client.post(f"{API}/{plan.pk}/submit").status_code == 401


def test_pharmacy_creates_and_adjusts_on_the_page(ws: WS, demand_round: Any) -> None:
    client = ws.client("hn_pharmacy")
    page = client.get(reverse("hospital:demand_list"))
    assert page.status_code == 200
    assert ROUND in page.content.decode()
    response = client.post(
        reverse("hospital:demand_create"),
        {"batch": ROUND, "history_months": 12, "source": "dispensing", "until": "2023-01-15", "note": ""},
    )
    with system_scope("test"):
        plan = DemandPlan.objects.get(batch__code=ROUND)
    assert response.status_code == 302
    assert response["Location"] == reverse("hospital:demand_detail", args=[plan.pk])
    detail = client.get(response["Location"])
    html = detail.content.decode()
    assert detail.status_code == 200
    assert 'data-testid="adjust-form"' in html
    assert "<polyline" in html  # the history sparkline
    line = b01(plan)
    response = client.post(
        reverse("hospital:demand_adjust", args=[plan.pk, line.pk]),
        {f"l{line.pk}-qty": "3456", f"l{line.pk}-reason": "insurance", f"l{line.pk}-note": "医保目录调整"},
    )
    assert response.status_code == 302
    assert b01(plan).adjusted_qty == 3456
    # a workflow refusal comes back as a message, not an error page
    response = client.post(
        reverse("hospital:demand_adjust", args=[plan.pk, line.pk]), {f"l{line.pk}-qty": "1"}, follow=True
    )
    assert "请选择调整原因" in response.content.decode()
    client.post(reverse("hospital:demand_shortage", args=[plan.pk, line.pk]), {"months": "2022-06, 2022-07"})
    assert b01(plan).months_excluded == ["2022-06", "2022-07"]


def test_only_leadership_approves_over_the_web(ws: WS, demand_round: Any) -> None:
    plan = make_plan(ws)
    pharmacy = ws.client("hn_pharmacy")
    assert pharmacy.post(reverse("hospital:demand_step", args=[plan.pk, "submit"])).status_code == 302
    assert pharmacy.post(reverse("hospital:demand_step", args=[plan.pk, "approve"])).status_code == 403
    lead = ws.client("hn_lead")
    html = lead.get(reverse("hospital:demand_detail", args=[plan.pk])).content.decode()
    assert 'data-step="approve"' in html
    assert 'data-step="submit"' not in html
    assert 'data-testid="adjust-form"' not in html
    assert lead.post(reverse("hospital:demand_step", args=[plan.pk, "approve"])).status_code == 302
    with system_scope("test"):
        assert DemandPlan.objects.get(pk=plan.pk).status == DemandStatus.APPROVED
    assert lead.post(reverse("hospital:demand_step", args=[plan.pk, "bogus"])).status_code == 404


def test_other_hospitals_and_unlocked_reports_are_not_found(ws: WS, demand_round: Any) -> None:
    plan = make_plan(ws)
    line = b01(plan)
    other = ws.client("hn2_pharmacy")
    assert other.get(reverse("hospital:demand_detail", args=[plan.pk])).status_code == 404
    assert other.get(reverse("hospital:demand_export", args=[plan.pk])).status_code == 404
    assert other.post(reverse("hospital:demand_step", args=[plan.pk, "submit"])).status_code == 404
    assert (
        other.post(reverse("hospital:demand_adjust", args=[plan.pk, line.pk]), {f"l{line.pk}-qty": "1"}).status_code
        == 404
    )
    assert other.get(f"{API}/{plan.pk}").status_code == 404
    assert js(other, f"{API}/{plan.pk}/lines/{line.pk}/adjust", {"qty": 1}).status_code == 404
    bureau = ws.client("hn_admin")
    assert bureau.get(reverse("hospital:demand_detail", args=[plan.pk])).status_code == 404
    locked(ws, plan)
    html = bureau.get(reverse("hospital:demand_detail", args=[plan.pk])).content.decode()
    assert "demand-lines" in html
    assert 'data-testid="export"' not in html
    assert ws.client("sx_admin").get(reverse("hospital:demand_detail", args=[plan.pk])).status_code == 404


def test_bureau_list_of_submissions(ws: WS, demand_round: Any, django_assert_num_queries: Any) -> None:
    plan = make_plan(ws)
    locked(ws, plan)
    client = ws.client("hn_admin")
    client.get(reverse("hospital:demand_list"))  # warm the session and caches
    # session + user, then the plans and their line totals
    with django_assert_num_queries(4):
        page = client.get(reverse("hospital:demand_list"))
    html = page.content.decode()
    assert "海南省人民医院" in html
    assert 'data-testid="demand-create"' not in html


def test_pharmacy_list_query_count_is_pinned(ws: WS, demand_round: Any, django_assert_num_queries: Any) -> None:
    make_plan(ws)
    client = ws.client("hn_pharmacy")
    client.get(reverse("hospital:demand_list"))
    # session, user, its institution (the scope), plans, line totals, rounds already reported, rounds
    with django_assert_num_queries(7):
        assert client.get(reverse("hospital:demand_list")).status_code == 200


def test_export_over_the_web(ws: WS, demand_round: Any) -> None:
    plan = make_plan(ws)
    response = ws.client("hn_vbp").get(reverse("hospital:demand_export", args=[plan.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    assert sheet["A3"].value == "序号"


# --- API ------------------------------------------------------------------------------------------


def test_api_workflow(ws: WS, demand_round: Any) -> None:
    pharmacy = ws.client("hn_pharmacy")
    response = pharmacy.post(
        f"{API}/",
        {"batch": ROUND, "history_months": 12, "until": "2023-01-15"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    plan_id = body["id"]
    by_item = {line["item_code"]: line for line in body["lines"]}
    assert by_item["B01"]["suggested_qty"] == "3300.0000"
    assert body["steps"]["submit"] is True
    line_id = by_item["B01"]["id"]
    bad = pharmacy.post(
        f"{API}/{plan_id}/lines/{line_id}/adjust",
        {"qty": "10.5", "reason": "guideline"},
        content_type="application/json",
    )
    assert bad.status_code == 400
    assert bad.json()["message_zh"].startswith("申报量")
    ok = pharmacy.post(
        f"{API}/{plan_id}/lines/{line_id}/adjust",
        {"qty": "3400", "reason": "guideline"},
        content_type="application/json",
    )
    assert ok.status_code == 200
    assert ok.json()["reported_total"] == "4600.0000"
    shortage = js(pharmacy, f"{API}/{plan_id}/lines/{line_id}/shortage", {"months": ["2022-06"]})
    assert shortage.status_code == 200
    comment = js(ws.client("hn_head"), f"{API}/{plan_id}/lines/{line_id}/comments", {"text": "同意"})
    assert comment.status_code == 200
    assert [c["text"] for c in {x["item_code"]: x for x in comment.json()["lines"]}["B01"]["comments"]] == ["同意"]
    assert pharmacy.post(f"{API}/{plan_id}/submit").status_code == 200
    # wrong role: 403; right role: 200
    denied = js(pharmacy, f"{API}/{plan_id}/approve", {})
    assert denied.status_code == 403
    assert js(ws.client("hn_med"), f"{API}/{plan_id}/return", {"note": "x"}).status_code == 403
    lead = ws.client("hn_lead")
    assert js(lead, f"{API}/{plan_id}/approve", {"note": "同意"}).json()["status"] == "approved"
    assert lead.post(f"{API}/{plan_id}/lock").status_code == 403
    again = js(lead, f"{API}/{plan_id}/approve", {})
    assert again.status_code == 400
    assert ws.client("hn_vbp").post(f"{API}/{plan_id}/lock").json()["status"] == "locked"
    listed = ws.client("hn_admin").get(f"{API}/").json()
    assert [p["id"] for p in listed] == [plan_id]
    assert listed[0]["reported_total"] == "4600.0000"
    export = pharmacy.get(f"{API}/{plan_id}/export")
    assert export.status_code == 200
    assert ws.client("hn_admin").get(f"{API}/{plan_id}/export").status_code == 403
    assert ws.client("hn2_pharmacy").get(f"{API}/{plan_id}/export").status_code == 404


def test_api_create_needs_write_and_a_known_round(ws: WS, demand_round: Any) -> None:
    assert js(ws.client("hn_lead"), f"{API}/", {"batch": ROUND}).status_code == 403
    missing = js(ws.client("hn_pharmacy"), f"{API}/", {"batch": "NOPE"})
    assert missing.status_code == 404
