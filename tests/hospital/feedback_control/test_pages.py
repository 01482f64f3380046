"""The pages and API of progress feedback (R-H4, R-H5) and substitute control (R-H7–H9): who sees what,
who may act (anonymous → login / 401, other hospital → 404, wrong role → 403 or 404), query counts."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from openpyxl import load_workbook

from jicai.accounts.actions import do_issue_token
from jicai.core.tenancy import system_scope
from jicai.hospital.control import actions as control
from jicai.hospital.feedback import actions as feedback
from jicai.hospital.models import ControlMeasure, Notification

from .conftest import AS_OF, CEF_NS, NS, D

pytestmark = pytest.mark.django_db

PAGES = (
    "hospital:feedback_board",
    "hospital:feedback_inbox",
    "hospital:feedback_sheets",
    "hospital:appraisal_schemes",
    "hospital:appraisal_scores",
    "hospital:control_board",
    "hospital:control_exceptions",
    "hospital:control_measures",
)
WEIGHTS = {"completion": "60", "selected_share": "25", "substitute_control": "15"}


def as_user(client: Client, world: Any, key: str) -> Client:
    client.force_login(world.user(key))
    return client


def bearer(world: Any, key: str) -> dict[str, str]:
    token = do_issue_token(acting=world.scope(key), user=world.user(key), name="t")
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_the_workspace_lists_both_workflows(hospital: Any, client: Client) -> None:
    r = as_user(client, hospital, "hn_vbp").get(reverse("hospital:index"))
    assert reverse("hospital:feedback_board") in r.content.decode()
    assert reverse("hospital:control_board") in r.content.decode()


@pytest.mark.parametrize("name", PAGES)
def test_anonymous_users_go_to_the_login(hospital: Any, client: Client, name: str) -> None:
    r = client.get(reverse(name))
    assert r.status_code == 302
    assert "login" in r["Location"]


def test_anonymous_api_is_refused(hospital: Any, client: Client) -> None:
    assert client.get("/api/v1/hospital/feedback/board").status_code == 401
    assert client.get("/api/v1/hospital/control/board").status_code == 401


# ------------------------------------------------------------------------------------- feedback


def test_board_page_for_the_vbp_office(hospital: Any, client: Client) -> None:
    r = as_user(client, hospital, "hn_vbp").get(reverse("hospital:feedback_board"), {"as_of": "2023-04-30"})
    assert r.status_code == 200
    html = r.content.decode()
    assert html.index('data-dept="SJ01"') < html.index('data-dept="NK01"')
    assert 'data-testid="remind-link"' in html
    assert 'data-testid="publish-sheet"' in html
    assert 'data-status="at_risk"' in html
    assert "48.6%" in html  # SJ01's weighted completion


def test_board_page_for_a_department_head(hospital: Any, client: Client) -> None:
    r = as_user(client, hospital, "hn_head").get(reverse("hospital:feedback_board"), {"as_of": "2023-04-30"})
    html = r.content.decode()
    assert r.status_code == 200
    assert 'data-dept="NK01"' in html
    assert 'data-dept="SJ01"' not in html
    assert 'data-testid="remind-link"' not in html


def test_board_page_for_a_bureau_names_the_institution(hospital: Any, client: Client) -> None:
    c = as_user(client, hospital, "hn_admin")
    assert 'name="institution"' in c.get(reverse("hospital:feedback_board")).content.decode()
    r = c.get(reverse("hospital:feedback_board"), {"institution": "H46010800001", "as_of": "2023-04-30"})
    assert r.status_code == 200
    assert 'data-dept="NK01"' in r.content.decode()
    # an institution outside the bureau's region is unknown
    assert c.get(reverse("hospital:feedback_board"), {"institution": "H61011200123"}).status_code == 403


def test_send_reminders_from_the_page(hospital: Any, client: Client) -> None:
    c = as_user(client, hospital, "hn_medical")
    form = c.get(reverse("hospital:feedback_remind"), {"as_of": "2023-04-30"})
    assert form.status_code == 200
    assert 'value="NK01"' in form.content.decode()
    r = c.post(reverse("hospital:feedback_remind"), {"as_of": "2023-04-30", "departments": ["NK01"]})
    assert r.status_code == 302
    assert r["Location"] == reverse("hospital:feedback_inbox")
    with system_scope("t"):
        assert list(Notification.objects.values_list("department__code", flat=True)) == ["NK01"]


def test_roles_without_write_get_no_reminder_page(hospital: Any, client: Client) -> None:
    c = as_user(client, hospital, "hn_pharmacy")
    assert c.get(reverse("hospital:feedback_remind")).status_code == 404
    assert c.post(reverse("hospital:feedback_remind"), {"as_of": "2023-04-30"}).status_code == 404


def test_inbox_and_mark_read(hospital: Any, client: Client) -> None:
    sent = feedback.do_send_reminders(hospital.scope("hn_vbp"), as_of=AS_OF)
    nk = next(n for n in sent if n.department.code == "NK01")
    sj = next(n for n in sent if n.department.code == "SJ01")
    c = as_user(client, hospital, "hn_head")
    html = c.get(reverse("hospital:feedback_inbox")).content.decode()
    assert f'data-id="{nk.pk}"' in html
    assert f'data-id="{sj.pk}"' not in html
    assert c.post(reverse("hospital:feedback_mark_read", args=[sj.pk])).status_code == 404
    assert c.post(reverse("hospital:feedback_mark_read", args=[nk.pk])).status_code == 302
    with system_scope("t"):
        assert Notification.objects.get(pk=nk.pk).read_at is not None
        assert Notification.objects.get(pk=sj.pk).read_at is None


def test_inbox_query_count_does_not_grow_with_rows(
    hospital: Any, client: Client, django_assert_num_queries: Any
) -> None:
    feedback.do_send_reminders(hospital.scope("hn_vbp"), as_of=AS_OF)
    c = as_user(client, hospital, "hn_vbp")
    # session, user, the user's institution (its scope), the page's count and rows
    with django_assert_num_queries(5):
        assert c.get(reverse("hospital:feedback_inbox")).status_code == 200
    feedback.do_send_reminders(hospital.scope("hn_vbp"), as_of=AS_OF)
    with django_assert_num_queries(5):
        assert c.get(reverse("hospital:feedback_inbox")).status_code == 200


def test_publish_view_and_export_a_sheet(hospital: Any, client: Client) -> None:
    c = as_user(client, hospital, "hn_vbp")
    r = c.post(reverse("hospital:feedback_sheets"), {"as_of": "2023-04-30"})
    assert r.status_code == 302
    pk = int(r["Location"].rstrip("/").split("/")[-1])
    assert "心内科" in c.get(r["Location"]).content.decode()
    x = c.get(reverse("hospital:feedback_sheet_export", args=[pk]))
    assert x["Content-Type"].startswith("application/vnd.openxmlformats")
    assert load_workbook(io.BytesIO(x.content)).active["C3"].value == "神经内科"
    # departments read it but may not export; another hospital does not know it
    head = as_user(Client(), hospital, "hn_head")
    assert head.get(reverse("hospital:feedback_sheet", args=[pk])).status_code == 200
    assert head.get(reverse("hospital:feedback_sheet_export", args=[pk])).status_code == 403
    other = as_user(Client(), hospital, "hn2_vbp")
    assert other.get(reverse("hospital:feedback_sheet", args=[pk])).status_code == 404
    # medical affairs may write feedback but not publish
    medical = as_user(Client(), hospital, "hn_medical")
    assert medical.post(reverse("hospital:feedback_sheets"), {"as_of": "2023-04-30"}).status_code == 403


def test_sheets_list_query_count(hospital: Any, client: Client, django_assert_num_queries: Any) -> None:
    feedback.do_publish_sheet(hospital.scope("hn_vbp"), as_of=AS_OF)
    feedback.do_publish_sheet(hospital.scope("hn_vbp"), as_of=D(2023, 3, 31))
    c = as_user(client, hospital, "hn_head")
    with django_assert_num_queries(7):  # a head's scope also reads its department, and the unread badge
        assert c.get(reverse("hospital:feedback_sheets")).status_code == 200


def test_appraisal_pages(hospital: Any, client: Client, django_assert_num_queries: Any) -> None:
    c = as_user(client, hospital, "hn_perf")
    bad = c.post(
        reverse("hospital:appraisal_schemes"),
        {"name": "A", "completion": "60", "selected_share": "30", "substitute_control": "15", "active": "on"},
    )
    assert bad.status_code == 400
    assert "各项权重之和须为 100%（现为 105%）" in bad.content.decode()
    r = c.post(reverse("hospital:appraisal_schemes"), {"name": "2023", **WEIGHTS, "active": "on"})
    assert r.status_code == 302
    page = r["Location"]
    assert c.post(page, {"step": "compute", "period": "2023-04"}).status_code == 302
    assert "70.55" in c.get(page).content.decode()
    head = as_user(Client(), hospital, "hn_head")
    assert "70.55" not in head.get(reverse("hospital:appraisal_scores")).content.decode()
    assert c.post(page, {"step": "publish", "period": "2023-04"}).status_code == 302
    with django_assert_num_queries(6):  # session, user, its institution and department, unread badge, scores
        html = head.get(reverse("hospital:appraisal_scores")).content.decode()
    assert "70.55" in html
    assert "98.77" not in html  # SJ01's score is not the head's
    with django_assert_num_queries(4):
        assert c.get(reverse("hospital:appraisal_schemes")).status_code == 200
    # the pharmacy reads but may not compute
    pharmacy = as_user(Client(), hospital, "hn_pharmacy")
    assert pharmacy.post(page, {"step": "compute", "period": "2023-04"}).status_code == 403


# -------------------------------------------------------------------------------------- control


def test_control_board_page(hospital: Any, client: Client) -> None:
    c = as_user(client, hospital, "hn_pharmacy")
    r = c.get(reverse("hospital:control_board"), {"month_from": "2023-02", "month_to": "2023-04"})
    assert r.status_code == 200
    html = r.content.decode()
    assert f'data-product="{NS}" data-level="department" data-unit="NK01"' in html
    assert 'data-reason="diagnosis"' in html
    assert 'data-testid="keep-essential"' in html
    assert "基本药物，予以保留" in html
    assert 'data-testid="mix-NK01-A01"' in html
    assert 'data-testid="propose"' in html
    # the proposal link carries the anomaly into the measures form
    link = html.split('data-testid="propose"')[0].rsplit('href="', 1)[1].split('"')[0]
    form = c.get(link.replace("&amp;", "&")).content.decode()
    assert f'value="{NS}" selected' in form


def test_control_pages_are_not_for_department_heads(hospital: Any, client: Client) -> None:
    c = as_user(client, hospital, "hn_head")
    for name in ("hospital:control_board", "hospital:control_exceptions", "hospital:control_measures"):
        assert c.get(reverse(name)).status_code == 404


def test_record_an_exception_from_the_page(hospital: Any, client: Client) -> None:
    c = as_user(client, hospital, "hn_medical")
    data = {
        "product_code": CEF_NS,
        "department": "NK01",
        "patient_key": "P1",
        "reason": "failed_therapy",
        "valid_from": "2023-04-01",
        "valid_until": "2023-04-30",
    }
    assert c.post(reverse("hospital:control_exceptions"), data).status_code == 302
    bad = c.post(reverse("hospital:control_exceptions"), {**data, "patient_key": ""})
    assert bad.status_code == 400
    assert "请填写患者标识或处方医师" in bad.content.decode()
    leader = as_user(Client(), hospital, "hn_leader")
    assert 'data-testid="exception-form"' not in leader.get(reverse("hospital:control_exceptions")).content.decode()
    assert leader.post(reverse("hospital:control_exceptions"), data).status_code == 403


def test_measures_from_proposal_to_decision(hospital: Any, client: Client) -> None:
    c = as_user(client, hospital, "hn_pharmacy")
    data = {
        "product_code": NS,
        "kind": "limit_quantity",
        "limit_qty": "500",
        "department": "NK01",
        "reason": "环比增长过快",
        "effective_from": "2023-04-01",
        "expires_on": "2099-12-31",
        "anomaly": json.dumps({"product_code": NS}),
    }
    assert c.post(reverse("hospital:control_measures"), data).status_code == 302
    with system_scope("t"):
        m = ControlMeasure.objects.get()
    assert m.anomaly == {"product_code": NS}
    # the pharmacy may not approve; another hospital's leader does not know it
    assert c.post(reverse("hospital:control_measure_decide", args=[m.pk]), {"decision": "approve"}).status_code == 403
    other = as_user(Client(), hospital, "hn2_leader")
    assert (
        other.post(reverse("hospital:control_measure_decide", args=[m.pk]), {"decision": "approve"}).status_code == 404
    )
    leader = as_user(Client(), hospital, "hn_leader")
    assert (
        leader.post(reverse("hospital:control_measure_decide", args=[m.pk]), {"decision": "approve"}).status_code == 302
    )
    with system_scope("t"):
        assert ControlMeasure.objects.get().status == "approved"
    board = c.get(reverse("hospital:control_board"), {"month_from": "2023-02", "month_to": "2023-04"})
    assert 'data-testid="over-limit"' in board.content.decode()
    assert leader.post(reverse("hospital:control_measure_revoke", args=[m.pk])).status_code == 302
    with system_scope("t"):
        assert ControlMeasure.objects.get().status == "revoked"


def test_a_refused_measure_shows_the_chinese_reason(hospital: Any, client: Client) -> None:
    c = as_user(client, hospital, "hn_pharmacy")
    r = c.post(
        reverse("hospital:control_measures"),
        {
            "product_code": "XC10AAX001A001010100001",
            "kind": "suspend_purchase",
            "reason": "增长过快",
            "effective_from": "2023-04-01",
            "expires_on": "2099-12-31",
        },
    )
    assert r.status_code == 400
    assert "基本药物，予以保留" in r.content.decode()


def test_register_query_counts(hospital: Any, client: Client, django_assert_num_queries: Any) -> None:
    for _ in range(3):
        control.do_propose_measure(
            hospital.scope("hn_pharmacy"),
            product_code=NS,
            kind="limit_quantity",
            limit_qty="500",
            reason="r",
            effective_from=D(2023, 4, 1),
            expires_on=D(2099, 12, 31),
        )
        control.do_record_exception(
            hospital.scope("hn_medical"),
            product_code=CEF_NS,
            department_code="NK01",
            patient_key="P1",
            reason="consultation",
            valid_from=D(2023, 4, 1),
            valid_until=D(2023, 4, 30),
        )
    c = as_user(client, hospital, "hn_leader")  # reads only: no form choices to load
    with django_assert_num_queries(5):
        assert c.get(reverse("hospital:control_measures")).status_code == 200
    with django_assert_num_queries(5):
        assert c.get(reverse("hospital:control_exceptions")).status_code == 200


# ------------------------------------------------------------------------------------------- API


def test_feedback_api(hospital: Any, client: Client) -> None:
    vbp = bearer(hospital, "hn_vbp")
    r = client.get("/api/v1/hospital/feedback/board?as_of=2023-04-30", **vbp)
    assert r.status_code == 200
    assert [d["department_code"] for d in r.json()["departments"]] == ["SJ01", "NK01"]
    sent = client.post(
        "/api/v1/hospital/feedback/reminders", {"as_of": "2023-04-30"}, content_type="application/json", **vbp
    )
    assert sent.status_code == 200
    assert len(sent.json()) == 2
    head = bearer(hospital, "hn_head")
    assert client.get("/api/v1/hospital/feedback/notifications/unread-count", **head).json() == {"unread": 1}
    mine = client.get("/api/v1/hospital/feedback/notifications", **head).json()
    assert [n["department_code"] for n in mine] == ["NK01"]
    assert client.post(f"/api/v1/hospital/feedback/notifications/{mine[0]['id']}/read", **head).status_code == 200
    other = next(n for n in sent.json() if n["department_code"] == "SJ01")
    assert client.post(f"/api/v1/hospital/feedback/notifications/{other['id']}/read", **head).status_code == 404
    sheet = client.post(
        "/api/v1/hospital/feedback/sheets", {"as_of": "2023-04-30"}, content_type="application/json", **vbp
    )
    assert sheet.status_code == 200
    sid = sheet.json()["id"]
    assert client.get(f"/api/v1/hospital/feedback/sheets/{sid}", **head).json()["departments"] == 2
    assert client.get(f"/api/v1/hospital/feedback/sheets/{sid}/export", **vbp).status_code == 200
    assert client.get(f"/api/v1/hospital/feedback/sheets/{sid}", **bearer(hospital, "hn2_vbp")).status_code == 404
    medical = bearer(hospital, "hn_medical")
    denied = client.post(
        "/api/v1/hospital/feedback/sheets", {"as_of": "2023-04-30"}, content_type="application/json", **medical
    )
    assert denied.status_code == 403


def test_appraisal_api(hospital: Any, client: Client) -> None:
    perf = bearer(hospital, "hn_perf")
    bad = client.post(
        "/api/v1/hospital/feedback/schemes",
        {"name": "A", "weights": {"completion": "50"}},
        content_type="application/json",
        **perf,
    )
    assert bad.status_code == 400
    assert bad.json()["message_zh"] == "各项权重之和须为 100%（现为 50%）"
    made = client.post(
        "/api/v1/hospital/feedback/schemes",
        {"name": "2023", "weights": WEIGHTS},
        content_type="application/json",
        **perf,
    ).json()
    scores = client.post(
        f"/api/v1/hospital/feedback/schemes/{made['id']}/scores",
        {"period": "2023-04"},
        content_type="application/json",
        **perf,
    )
    assert {s["department_code"]: s["score"] for s in scores.json()["scores"]} == {"NK01": "70.55", "SJ01": "98.77"}
    published = client.post(
        f"/api/v1/hospital/feedback/schemes/{made['id']}/publish",
        {"period": "2023-04"},
        content_type="application/json",
        **perf,
    )
    assert published.json() == {"published": 2}
    head_scores = client.get("/api/v1/hospital/feedback/scores", **bearer(hospital, "hn_head")).json()
    assert [(s["department_code"], s["score"]) for s in head_scores] == [("NK01", "70.55")]
    updated = client.put(
        f"/api/v1/hospital/feedback/schemes/{made['id']}", {"active": False}, content_type="application/json", **perf
    )
    assert updated.json()["active"] is False
    assert client.get("/api/v1/hospital/feedback/schemes", **perf).json()[0]["active"] is False


def test_control_api(hospital: Any, client: Client) -> None:
    pharmacy = bearer(hospital, "hn_pharmacy")
    b = client.get("/api/v1/hospital/control/board?month_from=2023-02&month_to=2023-04", **pharmacy).json()
    keys = {(a["level"], a["unit"], a["product_code"]) for a in b["anomalies"]}
    assert ("department", "NK01", NS) in keys
    assert b["thresholds"]["HN-N7/A01"]["growth"] == "0.5"
    assert client.get("/api/v1/hospital/control/board?month_from=2023-13", **pharmacy).status_code == 400
    e = client.post(
        "/api/v1/hospital/control/exceptions",
        {
            "product_code": CEF_NS,
            "department_code": "NK01",
            "patient_key": "P1",
            "reason": "consultation",
            "valid_from": "2023-04-01",
            "valid_until": "2099-12-31",
        },
        content_type="application/json",
        **pharmacy,
    )
    assert e.status_code == 200
    refused = client.post(
        "/api/v1/hospital/control/measures",
        {
            "product_code": CEF_NS,
            "kind": "suspend_purchase",
            "reason": "r",
            "effective_from": "2023-04-01",
            "expires_on": "2099-12-31",
        },
        content_type="application/json",
        **pharmacy,
    )
    assert refused.status_code == 400
    assert refused.json()["code"] == "only_supply"
    m = client.post(
        "/api/v1/hospital/control/measures",
        {
            "product_code": NS,
            "kind": "limit_quantity",
            "limit_qty": "500",
            "reason": "r",
            "effective_from": "2023-04-01",
            "expires_on": "2099-12-31",
        },
        content_type="application/json",
        **pharmacy,
    ).json()
    decide = f"/api/v1/hospital/control/measures/{m['id']}/decide"
    body = {"approve": True}
    assert client.post(decide, body, content_type="application/json", **pharmacy).status_code == 403
    assert (
        client.post(decide, body, content_type="application/json", **bearer(hospital, "hn2_leader")).status_code == 404
    )
    ok = client.post(decide, body, content_type="application/json", **bearer(hospital, "hn_leader"))
    assert ok.json()["state"] == "active"
    assert [x["id"] for x in client.get("/api/v1/hospital/control/measures", **pharmacy).json()] == [m["id"]]
    assert len(client.get("/api/v1/hospital/control/exceptions", **pharmacy).json()) == 1
    ended = client.post(
        f"/api/v1/hospital/control/exceptions/{e.json()['id']}/end",
        {"on": "2023-04-08"},
        content_type="application/json",
        **pharmacy,
    )
    assert ended.json()["valid_until"] == "2023-04-08"
    revoke = f"/api/v1/hospital/control/measures/{m['id']}/revoke"
    assert client.post(revoke, {}, content_type="application/json", **pharmacy).status_code == 403
    assert client.post(revoke, {}, content_type="application/json", **bearer(hospital, "hn_leader")).status_code == 200
    assert client.get("/api/v1/hospital/control/board", **bearer(hospital, "hn_head")).status_code == 404
