"""The supply pages: who may open what (anonymous, wrong role, wrong tenant, right role), forms and
decisions through the browser's requests, proof upload and download, export, import, query counts."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from openpyxl import load_workbook

from jicai.core.tenancy import system_scope
from jicai.supply.actions import (
    CreditInput,
    IncidentInput,
    ReportInput,
    SanctionInput,
    do_confirm_incident,
    do_flag_malicious,
    do_record_credit_event,
    do_record_sanction,
    do_record_supply_report,
    do_report_incident,
)
from jicai.supply.models import IncidentProof, SupplyIncident
from tests.conftest import World, csv_bytes

from .conftest import SELECTED, D, client_for

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n%%EOF\n"
LISTS = [
    "/supply/",
    "/supply/incidents/",
    "/supply/incidents/flagged/",
    "/supply/credit/",
    "/supply/credit/ranking/",
    "/supply/sanctions/",
    "/supply/distributors/",
    "/supply/reports/",
    "/supply/reports/alerts/",
]


@pytest.fixture
def site(world: World) -> World:
    """One incident of 海口 (flagged malicious, confirmed), a credit event, a sanction, a supply report."""
    incident = do_report_incident(
        world.scope("hn_vbp"),
        IncidentInput("HN-N7", "A01", "interruption", D(2022, 11, 15), "配送中断", product_code=SELECTED),
    )
    do_flag_malicious(world.scope("hn_vbp"), incident.pk, "有货不送")
    do_confirm_incident(world.scope("hn_admin"), incident.pk)
    world.incident = incident  # type: ignore[attr-defined]
    world.event = do_record_credit_event(  # type: ignore[attr-defined]
        world.scope("hn_pharmacy"), CreditInput(world.company.name, "near_expiry", D(2022, 11, 20))
    )
    world.sanction = do_record_sanction(  # type: ignore[attr-defined]
        world.scope("hn_admin"), SanctionInput(world.company.name, "warning", D(2022, 12, 1), "约谈")
    )
    world.report = do_record_supply_report(  # type: ignore[attr-defined]
        world.scope("hn_admin"), ReportInput(world.company.name, "HN-N7", "A01", D(2023, 1, 15), Decimal(500))
    )
    return world


def text(response: Any) -> str:
    return response.content.decode()


# --------------------------------------------------------------------------- who may open what


@pytest.mark.parametrize("url", LISTS)
def test_anonymous_is_sent_to_login(site: World, client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize("url", LISTS[1:])
def test_a_role_without_the_register_is_refused(site: World, url: str) -> None:
    assert client_for(site, "hn_it").get(url).status_code == 403
    assert client_for(site, "hn_head").get(url).status_code == 403


@pytest.mark.parametrize("user", ["hn_admin", "hn_viewer", "hn_vbp", "operator"])
@pytest.mark.parametrize("url", LISTS)
def test_the_right_roles_open_the_lists(site: World, user: str, url: str) -> None:
    assert client_for(site, user).get(url).status_code == 200


def test_records_outside_the_territory_are_not_found(site: World) -> None:
    incident, event, sanction, report = site.incident, site.event, site.sanction, site.report  # type: ignore[attr-defined]
    for user in ("sx_admin", "sx_vbp"):
        client = client_for(site, user)
        for url in (
            f"/supply/incidents/{incident.pk}/",
            f"/supply/incidents/{incident.pk}/edit/",
            f"/supply/credit/{event.pk}/",
            f"/supply/sanctions/{sanction.pk}/",
            f"/supply/reports/{report.pk}/",
        ):
            assert client.get(url).status_code in (403, 404), (user, url)
        assert client.get(f"/supply/incidents/{incident.pk}/").status_code == 404
    # 三亚's hospital does not see 海口's incident or its credit event
    assert client_for(site, "hn2_vbp").get(f"/supply/incidents/{incident.pk}/").status_code == 404
    assert client_for(site, "hn2_vbp").get(f"/supply/credit/{event.pk}/").status_code == 404
    # a bureau of another province cannot decide on it either
    response = client_for(site, "sx_admin").post(f"/supply/incidents/{incident.pk}/close/", {"note": ""})
    assert response.status_code == 404


def test_lists_show_only_the_territorys_rows(site: World) -> None:
    assert "有货不送" in text(client_for(site, "hn_admin").get("/supply/incidents/flagged/"))
    assert "有货不送" not in text(client_for(site, "sx_admin").get("/supply/incidents/flagged/"))
    admin_list = text(client_for(site, "hn_admin").get("/supply/incidents/"))
    assert 'data-testid="malicious"' in admin_list
    assert 'data-testid="malicious"' not in text(client_for(site, "sx_admin").get("/supply/incidents/"))


# --------------------------------------------------------------------------- forms and decisions


def test_a_hospital_reports_through_the_form_and_the_bureau_decides(world: World) -> None:
    vbp = client_for(world, "hn_vbp")
    form = vbp.get("/supply/incidents/new/")
    assert form.status_code == 200
    assert 'name="institution_code"' not in text(form)  # a hospital reports for itself
    bad = vbp.post(
        "/supply/incidents/new/",
        {"batch_code": "HN-N7", "item_code": "Z9", "kind": "shortage", "start_on": "2022-11-15", "cause": "x"},
    )
    assert bad.status_code == 200
    assert "没有品种" in text(bad)
    response = vbp.post(
        "/supply/incidents/new/",
        {
            "batch_code": "HN-N7",
            "item_code": "A01",
            "kind": "interruption",
            "start_on": "2022-11-15",
            "cause": "企业停产",
            "product_code": SELECTED,
        },
    )
    assert response.status_code == 302
    with system_scope("test"):
        incident = SupplyIncident.objects.get()
    assert response["Location"] == f"/supply/incidents/{incident.pk}/"
    # the hospital may not confirm
    assert vbp.post(f"/supply/incidents/{incident.pk}/confirm/", {"note": ""}).status_code == 403
    admin = client_for(world, "hn_admin")
    detail = text(admin.get(f"/supply/incidents/{incident.pk}/"))
    assert f"/supply/incidents/{incident.pk}/confirm/" in detail
    assert admin.post(f"/supply/incidents/{incident.pk}/confirm/", {"note": "已核实"}).status_code == 302
    assert (
        admin.post(f"/supply/incidents/{incident.pk}/close/", {"end_on": "2022-11-30", "note": ""}).status_code == 302
    )
    with system_scope("test"):
        incident.refresh_from_db()
    assert (incident.status, incident.end_on) == ("closed", D(2022, 11, 30))
    # a refused step comes back as a message, nothing changes
    admin.post(f"/supply/incidents/{incident.pk}/reject/", {"note": "晚了"})
    with system_scope("test"):
        incident.refresh_from_db()
    assert incident.status == "closed"
    assert admin.post(f"/supply/incidents/{incident.pk}/nonsense/", {}).status_code == 404
    assert admin.get(f"/supply/incidents/{incident.pk}/confirm/").status_code == 405


def test_proof_upload_and_download(site: World) -> None:
    incident = site.incident  # type: ignore[attr-defined]
    vbp = client_for(site, "hn_vbp")
    bad = vbp.post(f"/supply/incidents/{incident.pk}/proofs/", {"file": _upload(b"MZ\x90\x00", "x.pdf")}, follow=True)
    assert "只接受 PDF、JPEG 或 PNG" in text(bad)
    vbp.post(f"/supply/incidents/{incident.pk}/proofs/", {"file": _upload(PDF, "断供证明.pdf")})
    with system_scope("test"):
        proof = IncidentProof.objects.get()
    url = f"/supply/incidents/{incident.pk}/proofs/{proof.pk}/"
    response = client_for(site, "hn_admin").get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content) == PDF  # type: ignore[attr-defined]
    assert client_for(site, "sx_admin").get(url).status_code == 404
    assert client_for(site, "hn2_vbp").get(url).status_code == 404


def _upload(data: bytes, name: str) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data)


def test_the_credit_sanction_and_report_forms(site: World) -> None:
    admin = client_for(site, "hn_admin")
    assert (
        admin.post(
            "/supply/credit/new/",
            {
                "company": site.company.name,
                "kind": "quality_problem",
                "occurred_on": "2022-12-01",
                "severity": "severe",
            },
        ).status_code
        == 302
    )
    assert (
        admin.post(
            "/supply/sanctions/new/", {"company": site.company.name, "kind": "exit", "decided_on": "2023-01-01"}
        ).status_code
        == 302
    )
    response = admin.post(
        "/supply/reports/new/",
        {
            "company": site.company.name,
            "batch_code": "HN-N7",
            "item_code": "A01",
            "report_date": "2023-02-01",
            "stock_on_hand": "100",
        },
    )
    assert response.status_code == 302
    detail = text(admin.get(response["Location"]))
    assert "0.12" in detail  # 100 ÷ (10 000 ÷ 12)
    # the hospital may not enter sanctions or supply reports
    vbp = client_for(site, "hn_vbp")
    assert vbp.get("/supply/sanctions/new/").status_code == 403
    assert vbp.get("/supply/reports/new/").status_code == 403
    assert vbp.get(f"/supply/credit/{site.event.pk}/edit/").status_code == 200  # type: ignore[attr-defined]


def test_the_ranking_company_file_and_scorecard_pages(site: World) -> None:
    admin = client_for(site, "hn_admin")
    ranking = text(admin.get("/supply/credit/ranking/?period=2022Q4"))
    assert site.company.name in ranking
    # 100 − the confirmed malicious interruption (20 × 3) − near-expiry minor (3) = 37: standing D
    assert ">37<" in ranking
    assert "standing-D" in ranking
    company = text(admin.get(f"/supply/credit/companies/{site.company.pk}/?period=2022"))
    assert "约谈" in company
    assert admin.get("/supply/credit/ranking/?period=garbage").status_code == 200
    assert admin.get("/supply/distributors/?period=2022Q4&sort=fill_rate").status_code == 200
    assert admin.get("/supply/distributors/detail/?name=x&period=2022").status_code == 200
    assert admin.get("/supply/credit/derive/").status_code == 200
    assert client_for(site, "hn_vbp").get("/supply/credit/derive/").status_code == 403


# --------------------------------------------------------------------------- export and import


def test_exports_are_excel_with_chinese_headers_and_the_lists_filters(site: World) -> None:
    admin = client_for(site, "hn_admin")
    response = admin.get("/supply/incidents/export/?status=confirmed")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content))).active  # type: ignore[attr-defined]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:2] == ("批次编码", "品种编码")
    assert len(rows) == 2
    empty = admin.get("/supply/incidents/export/?status=rejected")
    assert len(list(load_workbook(io.BytesIO(b"".join(empty.streaming_content))).active.iter_rows())) == 1  # type: ignore[attr-defined]
    for url in ("/supply/credit/export/", "/supply/sanctions/export/", "/supply/reports/export/"):
        assert admin.get(url).status_code == 200
    assert client_for(site, "hn_viewer").get("/supply/incidents/export/").status_code == 403


def test_the_import_page_lists_each_problem_and_changes_nothing(site: World) -> None:
    data = csv_bytes(
        "batch_code,item_code,kind,start_on,cause\nHN-N7,A01,断供,2022-12-01,停产\nHN-N7,Z9,短缺,2022-12-01,无"
    )
    response = client_for(site, "hn_vbp").post("/supply/incidents/import/", {"file": _upload(data, "x.csv")})
    page = text(response)
    assert response.status_code == 200
    assert "品种编码（item_code）" in page
    assert "Z9" in page
    with system_scope("test"):
        assert SupplyIncident.objects.count() == 1
    assert client_for(site, "hn_viewer").get("/supply/incidents/import/").status_code == 403


# --------------------------------------------------------------------------- query counts


@pytest.mark.parametrize(
    ("user", "url", "queries"),
    [
        # session + user, then count + page (rows with their batch, item, institution, company in one join)
        ("hn_admin", "/supply/incidents/", 2 + 2),
        ("hn_admin", "/supply/incidents/flagged/", 2 + 2),
        ("hn_vbp", "/supply/credit/", 3 + 2),  # a hospital user's scope reads its institution
        ("hn_admin", "/supply/sanctions/", 2 + 2),
        ("hn_admin", "/supply/reports/", 2 + 2),
        ("hn_admin", "/supply/reports/alerts/", 2 + 2),
        # + event counts, sanction counts, selected companies, companies
        ("hn_admin", "/supply/credit/ranking/", 2 + 4),
    ],
)
def test_query_counts_are_pinned(
    site: World, django_assert_num_queries: Any, user: str, url: str, queries: int
) -> None:
    # more rows do not mean more queries
    for day in (16, 17, 18):
        do_report_incident(site.scope("hn_admin"), IncidentInput("HN-N7", "A01", "shortage", D(2022, 11, day), "短缺"))
        do_record_supply_report(
            site.scope("hn_admin"), ReportInput(site.company.name, "HN-N7", "A01", D(2023, 1, day), Decimal(10))
        )
    client = client_for(site, user)
    with django_assert_num_queries(queries):
        response = client.get(url)
    assert response.status_code == 200
