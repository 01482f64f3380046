"""The quality API under /api/v1/quality/: list, detail, create, actions, export, import — as anonymous,
wrong tenant, wrong role and right role."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.test import Client

from jicai.core.tenancy import system_scope
from jicai.quality.models import ClusterSignal
from tests.conftest import csv_bytes
from tests.quality.conftest import HK, P1, P3, Quality, reaction

pytestmark = pytest.mark.django_db
BASE = "/api/v1/quality"


def post(client: Client, path: str, body: dict[str, Any]) -> Any:
    return client.post(BASE + path, data=json.dumps(body), content_type="application/json")


def put(client: Client, path: str, body: dict[str, Any]) -> Any:
    return client.put(BASE + path, data=json.dumps(body), content_type="application/json")


REPORT = {"report_date": "2025-03-05", "product_code": P1, "reaction": "皮疹", "reporter": "张医生", "lot_number": "L1"}


@pytest.mark.parametrize(
    "path",
    [
        "/adverse-reactions",
        "/signals",
        "/suspensions",
        "/problems",
        "/evaluations",
        "/evaluation-schemes",
        "/evaluations/lookup?products=X",
    ],
)
def test_anonymous_calls_are_refused(q: Quality, path: str) -> None:
    assert q.client(None).get(BASE + path).status_code == 401


def test_create_list_detail_update_of_a_report(q: Quality) -> None:
    client = q.client("hn_pharmacy")
    created = post(client, "/adverse-reactions", REPORT)
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["report_no"], body["is_selected"], body["institution_code"]) == ("ADR20250305-001", True, HK)
    listing = client.get(BASE + "/adverse-reactions", {"lot": "L1", "page_size": 10}).json()
    assert (listing["count"], listing["filters"]) == (1, {"lot": "L1"})
    detail = client.get(f"{BASE}/adverse-reactions/{body['id']}").json()
    assert detail["signals"] == []
    changed = put(client, f"/adverse-reactions/{body['id']}", {**REPORT, "is_serious": True})
    assert changed.status_code == 200
    assert changed.json()["is_serious"] is True


def test_a_refused_step_says_why_in_chinese_and_english(q: Quality) -> None:
    response = post(q.client("hn_pharmacy"), "/adverse-reactions", {**REPORT, "onset_date": "2025-03-09"})
    assert response.status_code == 400
    assert response.json() == {
        "code": "workflow",
        "field": "onset_date",
        "message_zh": "发生日期不能晚于报告日期",
        "message_en": "the onset date is after the report date",
    }


def test_wrong_tenant_and_wrong_role(q: Quality) -> None:
    report = reaction(q.scope("hn_pharmacy"), 5)
    assert q.client("hn2_pharmacy").get(f"{BASE}/adverse-reactions/{report.pk}").status_code == 404
    assert q.client("sx_pharmacy").get(BASE + "/adverse-reactions").json()["count"] == 0
    assert q.client("hn_admin").get(f"{BASE}/adverse-reactions/{report.pk}").status_code == 200
    assert post(q.client("hn_vbp"), "/adverse-reactions", REPORT).status_code == 403  # reads, may not write
    assert post(q.client("hn_admin"), "/adverse-reactions", REPORT).status_code == 403
    assert q.client("hn_head").get(BASE + "/problems").status_code == 404  # no grant at all
    assert q.client("hn_viewer").get(BASE + "/adverse-reactions/export").status_code == 403


def test_signals_detect_close_and_suspend(q: Quality) -> None:
    for n in (1, 2, 3):
        reaction(q.scope("hn_pharmacy"), n)
    client = q.client("hn_pharmacy")
    signals = client.get(BASE + "/signals").json()
    assert signals["count"] == 1
    signal = signals["results"][0]
    assert (signal["report_count"], signal["regional"], signal["triggers"]) == (3, False, ["reports"])
    again = post(client, "/signals/detect", {})
    assert again.json() == {"created": 0, "updated": 0, "reopened": 0, "merged": 0, "unchanged": 1}
    detail = client.get(f"{BASE}/signals/{signal['id']}").json()
    assert len(detail["reports"]) == 3
    proposal = post(client, "/suspensions", {"signal": signal["id"], "reason": "群体", "effective_from": "2025-03-05"})
    assert proposal.status_code == 201
    sid = proposal.json()["id"]
    assert post(client, f"/suspensions/{sid}/approve", {}).status_code == 403
    approved = post(q.client("hn_leader"), f"/suspensions/{sid}/approve", {"note": "同意"})
    assert approved.json()["status"] == "approved"
    assert post(q.client("hn_leader"), f"/suspensions/{sid}/bogus", {}).status_code == 404
    closed = post(client, f"/signals/{signal['id']}/close", {"conclusion": "已排查"})
    assert closed.json()["status"] == "closed"
    assert post(q.client("hn2_pharmacy"), f"/signals/{signal['id']}/close", {"conclusion": "x"}).status_code == 404
    assert client.get(BASE + "/suspensions", {"in_effect_on": "2025-03-06"}).json()["count"] == 1
    assert client.get(BASE + "/suspensions", {"in_effect_on": "2025-03-04"}).json()["count"] == 0


def test_problems_through_the_api(q: Quality) -> None:
    client = q.client("hn_pharmacy")
    created = post(
        client,
        "/problems",
        {
            "product_code": P1,
            "description": "破损",
            "found_on": "2025-03-10",
            "reported_by": "李药师",
            "distributor": "甲配送",
        },
    )
    assert created.status_code == 201
    pid = created.json()["id"]
    step = post(client, f"/problems/{pid}/route-distributor", {"on": "2025-03-11"})
    assert (step.json()["status"], step.json()["distributor_notified_on"]) == ("with_distributor", "2025-03-11")
    refused = post(client, f"/problems/{pid}/route-regulator", {})
    assert refused.status_code == 400
    assert refused.json()["field"] == "reference"
    done = post(client, f"/problems/{pid}/resolve", {"resolution": "退货"})
    assert done.json()["status"] == "resolved"
    assert post(client, f"/problems/{pid}/nonsense", {}).status_code == 404
    assert q.client("hn_admin").get(f"{BASE}/problems/{pid}").status_code == 200
    assert q.client("sy_admin").get(f"{BASE}/problems/{pid}").status_code == 404


def test_evaluations_and_lookup(q: Quality) -> None:
    client = q.client("hn_pharmacy")
    scores = {"safety": 90, "efficacy": 80, "economy": 95, "innovation": 40, "suitability": 70, "accessibility": 100}
    created = post(
        client,
        "/evaluations",
        {"product_code": P3, "evaluated_on": "2025-03-10", "scores": scores, "evaluator": "药学部"},
    )
    assert created.status_code == 201
    assert (created.json()["total"], created.json()["grade"]) == ("82.50", "B")
    partial = post(
        client,
        "/evaluations",
        {"product_code": P1, "evaluated_on": "2025-03-10", "scores": {"safety": 1}, "evaluator": "x"},
    )
    assert partial.status_code == 400
    lookup = client.get(BASE + "/evaluations/lookup", {"products": f"{P3},{P1}", "as_of": "2025-03-31"}).json()
    assert list(lookup["results"]) == [P3]
    assert lookup["results"][P3]["grade"] == "B"
    scheme = post(
        client, "/evaluation-schemes", {"name": "等权", "weights": dict.fromkeys(scores, "16.66") | {"safety": "16.70"}}
    )
    assert scheme.status_code == 201
    bad = post(client, "/evaluation-schemes", {"name": "错", "weights": dict.fromkeys(scores, 20)})
    assert (bad.status_code, bad.json()["code"]) == (400, "weights.invalid")
    ranked = client.get(f"{BASE}/substitution/{q.world.hn_item.pk}", {"as_of": "2025-03-31"}).json()
    assert [(c["product_code"], c["rank"], c["grade"]) for c in ranked["choices"]][:2] == [(P1, 1, None), (P3, 2, "B")]
    assert q.client("sx_pharmacy").get(f"{BASE}/substitution/{q.world.hn_item.pk}").status_code == 404


def test_export_and_import(q: Quality) -> None:
    client = q.client("hn_pharmacy")
    data = csv_bytes(
        f"报告编号,报告日期,药品编码,不良反应描述,报告人\nR-1,2025-03-02,{P1},皮疹,张医生\nR-2,2025-03-32,{P1},皮疹,张医生"
    )
    upload = io.BytesIO(data)
    upload.name = "adr.csv"
    rejected = client.post(BASE + "/adverse-reactions/import", {"file": upload})
    assert rejected.status_code == 200
    body = rejected.json()
    assert (body["status"], body["created"]) == ("rejected", 0)
    assert [(i["line"], i["column"]) for i in body["issues"]] == [(3, "report_date")]
    upload = io.BytesIO(data.replace(b"2025-03-32", b"2025-03-03"))
    upload.name = "adr.csv"
    applied = client.post(BASE + "/adverse-reactions/import", {"file": upload}).json()
    assert (applied["status"], applied["created"]) == ("applied", 2)
    exported = client.get(BASE + "/adverse-reactions/export", {"format": "csv"})
    assert exported.status_code == 200
    lines = exported.content.decode("utf-8-sig").splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("报告编号,")
    upload = io.BytesIO(b"x")
    upload.name = "x.csv"
    assert q.client("hn_vbp").post(BASE + "/adverse-reactions/import", {"file": upload}).status_code == 403
    assert client.get(BASE + "/signals/export", {"format": "pdf"}).status_code == 400
    with system_scope("t"):
        assert ClusterSignal.objects.count() == 0
