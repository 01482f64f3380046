"""The supply API under /api/v1/supply: list, detail, create, decisions, proof upload, engine inputs,
credit scores and derivation, scorecard, exports and imports — under the caller's scope."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from jicai.core.tenancy import system_scope
from tests.conftest import World, csv_bytes

from .conftest import HN, SELECTED, D, import_purchases, purchase_line

pytestmark = pytest.mark.django_db

API = "/api/v1/supply"


def bearer(world: World, user: str) -> dict[str, str]:
    from jicai.accounts.models import ApiToken

    with system_scope("test"):
        _, key = ApiToken.issue(world.user(user), "tests")
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def post(client: Client, url: str, body: dict[str, Any], auth: dict[str, str]) -> Any:
    return client.post(url, json.dumps(body), content_type="application/json", **auth)


INCIDENT = {
    "batch_code": "HN-N7",
    "item_code": "A01",
    "kind": "interruption",
    "start_on": "2022-11-15",
    "cause": "企业停产",
    "product_code": SELECTED,
}


def test_an_incident_through_the_api_from_report_to_close(world: World, client: Client) -> None:
    vbp, admin = bearer(world, "hn_vbp"), bearer(world, "hn_admin")
    created = post(client, f"{API}/incidents", INCIDENT, vbp)
    assert created.status_code == 201
    body = created.json()
    assert (body["institution_code"], body["status"], body["company"]) == (HN, "reported", world.company.name)
    pk = body["id"]
    # a refused report answers 400 with the Chinese reason and the field
    refused = post(client, f"{API}/incidents", {**INCIDENT, "item_code": "Z9"}, vbp)
    assert refused.status_code == 400
    assert (refused.json()["field"], refused.json()["code"]) == ("item_code", "reference.unknown")
    assert "Z9" in refused.json()["message_zh"]
    # the hospital flags it, may not confirm; the bureau confirms and closes
    assert post(client, f"{API}/incidents/{pk}/flag", {"reason": "有货不送"}, vbp).json()["malicious"] is True
    assert post(client, f"{API}/incidents/{pk}/confirm", {}, vbp).status_code == 403
    assert post(client, f"{API}/incidents/{pk}/confirm", {"note": "已核实"}, admin).json()["status"] == "confirmed"
    assert post(client, f"{API}/incidents/{pk}/reject", {"note": "x"}, admin).status_code == 400
    closed = post(client, f"{API}/incidents/{pk}/close", {"end_on": "2022-11-30"}, admin).json()
    assert (closed["status"], closed["end_on"]) == ("closed", "2022-11-30")
    assert post(client, f"{API}/incidents/{pk}/bogus", {}, admin).status_code == 404
    # list, detail, flagged list, the engine's input
    listed = client.get(f"{API}/incidents?status=closed", **admin).json()
    assert (listed["count"], listed["results"][0]["id"]) == (1, pk)
    assert client.get(f"{API}/incidents/{pk}", **vbp).json()["proofs"] == []
    assert client.get(f"{API}/incidents/flagged", **admin).json()["count"] == 1
    rows = client.get(f"{API}/interruptions?as_of=2022-12-31", **admin).json()
    assert rows == [
        {"batch_code": "HN-N7", "item_code": "A01", "institution_code": HN, "start": "2022-11-15", "end": "2022-11-30"}
    ]
    affected = client.get(f"{API}/affected-days?as_of=2022-12-31", **admin).json()
    assert [(r["start_on"], r["end_on"], r["days"]) for r in affected] == [("2022-11-15", "2022-11-30", 16)]


def test_the_api_keeps_to_the_callers_territory(world: World, client: Client) -> None:
    pk = post(client, f"{API}/incidents", INCIDENT, bearer(world, "hn_vbp")).json()["id"]
    sx = bearer(world, "sx_admin")
    assert client.get(f"{API}/incidents/{pk}", **sx).status_code == 404
    assert post(client, f"{API}/incidents/{pk}/confirm", {}, sx).status_code == 404
    assert client.get(f"{API}/incidents", **sx).json()["count"] == 0
    assert client.get(f"{API}/incidents", **bearer(world, "hn_it")).status_code == 403
    assert client.get(f"{API}/incidents").status_code == 401


def test_proof_upload_through_the_api(world: World, client: Client) -> None:
    vbp = bearer(world, "hn_vbp")
    pk = post(client, f"{API}/incidents", INCIDENT, vbp).json()["id"]
    good = client.post(f"{API}/incidents/{pk}/proofs", {"file": SimpleUploadedFile("p.pdf", b"%PDF-1.4\n")}, **vbp)
    assert good.status_code == 201, good.content.decode()
    assert good.json()["content_type"] == "application/pdf"
    bad = client.post(f"{API}/incidents/{pk}/proofs", {"file": SimpleUploadedFile("p.pdf", b"<html>")}, **vbp)
    assert (bad.status_code, bad.json()["code"]) == (400, "proof.type")
    assert len(client.get(f"{API}/incidents/{pk}", **vbp).json()["proofs"]) == 1


def test_credit_events_scores_derivation_and_scorecard(supply_world: World, client: Client) -> None:
    world = supply_world
    import_purchases(
        [purchase_line("L1", HN, SELECTED, ordered=D(2022, 11, 1), delivered=D(2022, 11, 9), accepted=D(2022, 11, 9))]
    )
    admin, pharmacy = bearer(world, "hn_admin"), bearer(world, "hn_pharmacy")
    event = post(
        client,
        f"{API}/credit/events",
        {"company": world.company.name, "kind": "unsuitable_pack", "occurred_on": "2022-11-20", "severity": "minor"},
        pharmacy,
    )
    assert event.status_code == 201
    assert client.get(f"{API}/credit/events/{event.json()['id']}", **pharmacy).json()["source"] == "manual"
    assert (
        post(client, f"{API}/credit/derive", {"period": "2022Q4", "as_of": "2023-01-31"}, pharmacy).status_code == 403
    )
    derived = post(client, f"{API}/credit/derive", {"period": "2022Q4", "as_of": "2023-01-31"}, admin).json()
    assert (derived["late_delivery"], derived["shortage"]) == (1, 0)  # 8 days late: > 2 × 2, not > 4 × 2: major
    assert post(client, f"{API}/credit/derive", {"period": "Q4"}, admin).status_code == 400
    scores = {r["company"]: r for r in client.get(f"{API}/credit/scores?period=2022Q4", **admin).json()}
    assert (scores[world.company.name]["score"], scores[world.company.name]["standing"]) == ("98", "A")
    assert (scores["国药控股海南有限公司"]["score"], scores["国药控股海南有限公司"]["deductions"]) == (
        "96",
        {"late_delivery": "4"},
    )
    assert client.get(f"{API}/credit/scores?period=bad", **admin).status_code == 400
    card = client.get(f"{API}/distributors?period=2022Q4", **admin).json()
    assert card["count"] == 1
    assert (card["results"][0]["on_time_rate"], card["results"][0]["fill_rate"]) == ("0", "1")
    assert client.get(f"{API}/credit/events?source=derived", **admin).json()["count"] == 1


def test_sanctions_and_supply_reports_through_the_api(world: World, client: Client) -> None:
    admin, vbp = bearer(world, "hn_admin"), bearer(world, "hn_vbp")
    sanction = post(
        client,
        f"{API}/sanctions",
        {"company": world.company.name, "kind": "warning", "decided_on": "2023-01-05"},
        admin,
    )
    assert sanction.status_code == 201
    assert (
        post(
            client,
            f"{API}/sanctions",
            {"company": world.company.name, "kind": "warning", "decided_on": "2023-01-05"},
            vbp,
        ).status_code
        == 403
    )
    assert client.get(f"{API}/sanctions/{sanction.json()['id']}", **vbp).json()["kind"] == "warning"
    report = post(
        client,
        f"{API}/reports",
        {
            "company": world.company.name,
            "batch_code": "HN-N7",
            "item_code": "A01",
            "report_date": "2023-01-15",
            "stock_on_hand": "500",
        },
        admin,
    )
    assert report.status_code == 201
    assert (report.json()["monthly_demand"], report.json()["stock_cover"]) == ("833.3333", "0.6")
    alerts = client.get(f"{API}/reports/alerts", **vbp).json()
    assert [r["id"] for r in alerts["results"]] == [report.json()["id"]]
    assert client.get(f"{API}/reports/alerts?threshold=0.5", **vbp).json()["count"] == 0
    assert client.get(f"{API}/reports/{report.json()['id']}", **bearer(world, "sx_admin")).status_code == 404
    bad = post(
        client,
        f"{API}/reports",
        {"company": "无", "batch_code": "HN-N7", "item_code": "A01", "report_date": "2023-01-15", "stock_on_hand": "5"},
        admin,
    )
    assert (bad.status_code, bad.json()["field"]) == (400, "company")


def test_exports_and_imports_through_the_api(world: World, client: Client) -> None:
    admin = bearer(world, "hn_admin")
    data = csv_bytes(
        "batch_code,item_code,kind,start_on,cause\nHN-N7,A01,shortage,2022-12-01,短缺\nHN-N7,Z9,shortage,2022-12-01,x"
    )
    rejected = client.post(f"{API}/incidents/import", {"file": SimpleUploadedFile("x.csv", data)}, **admin).json()
    assert (rejected["status"], rejected["created"]) == ("rejected", 0)
    assert [(i["line"], i["column"]) for i in rejected["issues"]] == [(3, "item_code")]
    good = data.rsplit(b"\r\nHN-N7,Z9", 1)[0] + b"\r\n"
    dry = client.post(
        f"{API}/incidents/import", {"file": SimpleUploadedFile("x.csv", good), "dry_run": "true"}, **admin
    ).json()
    assert (dry["status"], dry["created"]) == ("dry_run", 1)
    applied = client.post(f"{API}/incidents/import", {"file": SimpleUploadedFile("x.csv", good)}, **admin).json()
    assert (applied["status"], applied["created"]) == ("applied", 1)
    for url in ("incidents/export", "credit/events/export", "sanctions/export", "reports/export"):
        response = client.get(f"{API}/{url}", **admin)
        assert response.status_code == 200, url
        assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert client.get(f"{API}/incidents/export", **bearer(world, "hn_viewer")).status_code == 403
    assert (
        client.post(
            f"{API}/reports/import", {"file": SimpleUploadedFile("x.csv", good)}, **bearer(world, "hn_vbp")
        ).status_code
        == 403
    )
