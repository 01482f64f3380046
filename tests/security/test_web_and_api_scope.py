"""Every dataset through the web pages, the API and the admin, as anonymous, wrong tenant and right tenant."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from jicai.accounts.actions import do_issue_token
from jicai.accounts.models import ApiToken, User
from jicai.core.tenancy import ScopeError
from jicai.imports.datasets import DATASETS
from tests.conftest import PASSWORD, csv_bytes

from .conftest import HEAD_FORBIDDEN, TENANT_DATASETS, VISIBLE, Tenants
from .helpers import IMPORT_ROWS, csv_keys, expected_keys, hidden_keys, imported, key_of, snapshot_all

DATASET_NAMES = list(DATASETS)


def test_every_dataset_is_covered() -> None:
    assert set(DATASET_NAMES) == set(VISIBLE["hn_admin"])


# --------------------------------------------------------------------------- helpers


def body(response: Any) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return bytes(response.content)


def json_keys(dataset: str, data: bytes) -> set[tuple[str, ...]]:
    return {key_of(dataset, row) for row in json.loads(data)}


def page_keys(dataset: str, response: Any) -> set[tuple[str, ...]]:
    names = [c.name for c in DATASETS[dataset].columns]
    return {key_of(dataset, dict(zip(names, row, strict=True))) for row in response.context["rows"]}


def upload(data: bytes, name: str = "upload.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="text/csv")


def login(client: Client, t: Tenants, user: str) -> Client:
    client.force_login(t.user(user))
    return client


READ_CASES = [pytest.param(u, d, id=f"{u}-{d}") for u in VISIBLE for d in DATASET_NAMES if d in VISIBLE[u]]


# --------------------------------------------------------------------------- anonymous


@pytest.mark.parametrize("dataset", DATASET_NAMES)
def test_anonymous_is_sent_to_login_on_the_web_and_refused_by_the_api(
    tenants: Tenants, client: Client, dataset: str
) -> None:
    record = tenants.visible("hn_admin", dataset)[0]
    data = csv_bytes("code,name\nX,Y")
    web = {
        "list": client.get(f"/data/{dataset}/"),
        "export": client.get(f"/data/{dataset}/export/?format=csv"),
        "import GET": client.get(f"/data/{dataset}/import/"),
        "import POST": client.post(f"/data/{dataset}/import/", {"file": upload(data)}),
    }
    for what, r in web.items():
        assert r.status_code == 302, what
        assert r["Location"].startswith("/login/"), what
    api = {
        "records": client.get(f"/api/v1/datasets/{dataset}/records"),
        "detail": client.get(f"/api/v1/datasets/{dataset}/records/{record.pk}"),
        "export": client.get(f"/api/v1/datasets/{dataset}/export?format=json"),
        "import": client.post(f"/api/v1/datasets/{dataset}/import", {"file": upload(data)}),
    }
    for what, r in api.items():
        assert r.status_code == 401, what
        assert "H46010800001" not in body(r).decode(), what


def test_anonymous_gets_nothing_from_the_dataset_index(client: Client, tenants: Tenants) -> None:
    assert client.get("/api/v1/datasets").status_code == 401
    r = client.get("/data/")
    assert r.status_code == 302
    assert r["Location"].startswith("/login/")


# --------------------------------------------------------------------------- right and wrong tenant, read


@pytest.mark.parametrize(("user", "dataset"), READ_CASES)
def test_web_list_and_export_show_exactly_the_tenants_rows(
    tenants: Tenants, client: Client, user: str, dataset: str
) -> None:
    # Given the rows this user must see, and rows of other tenants it must not
    expected = expected_keys(tenants, user, dataset)
    hidden = hidden_keys(tenants, user, dataset)
    if dataset in TENANT_DATASETS:
        assert hidden, "another tenant's rows must exist, or the test proves nothing"
    login(client, tenants, user)
    # When it opens the list page
    page = client.get(f"/data/{dataset}/")
    # Then it sees exactly its rows
    assert page.status_code == 200
    assert page_keys(dataset, page) == expected
    # And the export holds exactly the same rows (when the role may export)
    export = client.get(f"/data/{dataset}/export/?format=csv")
    if tenants.scope(user).can(DATASETS[dataset].resource, "export"):
        assert export.status_code == 200
        assert csv_keys(dataset, body(export)) == expected
    else:
        assert export.status_code == 404


@pytest.mark.parametrize(("user", "dataset"), READ_CASES)
def test_api_records_detail_and_export_show_exactly_the_tenants_rows(
    tenants: Tenants, client: Client, user: str, dataset: str
) -> None:
    visible = tenants.visible(user, dataset)
    hidden = tenants.hidden(user, dataset)
    login(client, tenants, user)
    # list
    r = client.get(f"/api/v1/datasets/{dataset}/records?page_size=500")
    assert r.status_code == 200
    payload = r.json()
    assert {rec["id"] for rec in payload["results"]} == {o.pk for o in visible}
    assert payload["count"] == len(visible)
    # detail: own rows are there, other tenants' rows do not exist
    for obj in visible:
        r = client.get(f"/api/v1/datasets/{dataset}/records/{obj.pk}")
        assert r.status_code == 200
        assert r.json()["id"] == obj.pk
    for obj in hidden:
        r = client.get(f"/api/v1/datasets/{dataset}/records/{obj.pk}")
        assert r.status_code == 404, f"{user} reached {dataset} #{obj.pk}"
    # export
    r = client.get(f"/api/v1/datasets/{dataset}/export?format=json")
    if tenants.scope(user).can(DATASETS[dataset].resource, "export"):
        assert r.status_code == 200
        assert json_keys(dataset, body(r)) == expected_keys(tenants, user, dataset)
    else:
        assert r.status_code == 404


@pytest.mark.parametrize("dataset", TENANT_DATASETS)
def test_other_provinces_codes_never_appear_in_pages_or_exports(tenants: Tenants, client: Client, dataset: str) -> None:
    for user, markers in (("sx_admin", ("H4601080", "H4602000", "HN-N7")), ("hn_admin", ("H6101120", "SX-N7"))):
        login(client, tenants, user)
        for url in (
            f"/data/{dataset}/",
            f"/data/{dataset}/export/?format=csv",
            f"/api/v1/datasets/{dataset}/records",
            f"/api/v1/datasets/{dataset}/export?format=json",
        ):
            r = client.get(url)
            assert r.status_code == 200, url
            text = body(r).decode("utf-8-sig")
            for marker in markers:
                assert marker not in text, (user, url, marker)


def test_department_head_cannot_see_the_other_department(tenants: Tenants, client: Client) -> None:
    login(client, tenants, "hn_head")
    page = client.get("/data/departments/")
    assert page.status_code == 200
    assert [row[1] for row in page.context["rows"]] == ["NK01"]
    assert "SJ01" not in page.content.decode()
    assert client.get("/data/departments/", {"q": "SJ01"}).context["rows"] == []
    assert client.get("/data/departments/", {"q": "神经内科"}).context["rows"] == []
    r = client.get("/api/v1/datasets/departments/records")
    assert [rec["code"] for rec in r.json()["results"]] == ["NK01"]
    assert client.get(f"/api/v1/datasets/departments/records/{tenants.hn_dept2.pk}").status_code == 404
    assert client.get(f"/api/v1/datasets/departments/records/{tenants.hn_dept.pk}").status_code == 200


@pytest.mark.parametrize("dataset", HEAD_FORBIDDEN)
def test_department_head_has_no_access_to_datasets_outside_its_role(
    tenants: Tenants, client: Client, dataset: str
) -> None:
    login(client, tenants, "hn_head")
    record = tenants.visible("hn_admin", dataset)[0]
    for url in (
        f"/data/{dataset}/",
        f"/data/{dataset}/export/?format=csv",
        f"/data/{dataset}/import/",
        f"/api/v1/datasets/{dataset}/records",
        f"/api/v1/datasets/{dataset}/records/{record.pk}",
        f"/api/v1/datasets/{dataset}/export?format=json",
    ):
        assert client.get(url).status_code == 404, url


def test_search_cannot_reach_other_tenants_rows(tenants: Tenants, client: Client) -> None:
    login(client, tenants, "sx_admin")
    for q in ("H46010800001", "海南", "三亚"):
        page = client.get("/data/institutions/", {"q": q})
        assert page.context["rows"] == [], q
    page = client.get("/data/agreements/", {"q": "H4601"})
    assert page.context["rows"] == []


# --------------------------------------------------------------------------- imports


def web_import(client: Client, dataset: str) -> Any:
    return client.post(f"/data/{dataset}/import/", {"file": upload(csv_bytes(IMPORT_ROWS[dataset][0]))})


def api_import(client: Client, dataset: str, **headers: str) -> Any:
    data = {"file": upload(csv_bytes(IMPORT_ROWS[dataset][0]))}
    return client.post(f"/api/v1/datasets/{dataset}/import", data, **headers)


@pytest.mark.parametrize("channel", ["web", "api"])
@pytest.mark.parametrize("dataset", DATASET_NAMES)
def test_right_tenant_imports_its_rows(tenants: Tenants, client: Client, dataset: str, channel: str) -> None:
    # Given the Hainan bureau administrator and a valid Hainan row
    login(client, tenants, "hn_admin")
    assert not imported(dataset)
    # When it uploads the file
    if channel == "web":
        assert client.get(f"/data/{dataset}/import/").status_code == 200
        r = web_import(client, dataset)
        assert r.status_code == 200
        status = r.context["result"].status
    else:
        r = api_import(client, dataset)
        assert r.status_code == 200
        status = r.json()["status"]
    # Then the row is loaded
    assert status == "applied"
    assert imported(dataset)


@pytest.mark.parametrize("channel", ["web", "api"])
@pytest.mark.parametrize("dataset", TENANT_DATASETS)
def test_wrong_tenant_cannot_import_into_another_province(
    tenants: Tenants, client: Client, dataset: str, channel: str
) -> None:
    # Given the Shaanxi bureau administrator and a file of Hainan rows
    login(client, tenants, "sx_admin")
    before = snapshot_all()
    # When it uploads the file
    if channel == "web":
        r = web_import(client, dataset)
        assert r.status_code == 200
        result = r.context["result"]
        status, codes = result.status, {i.code for i in result.issues}
    else:
        r = api_import(client, dataset)
        assert r.status_code == 200
        status, codes = r.json()["status"], {i["code"] for i in r.json()["issues"]}
    # Then every row is rejected and nothing changed
    assert status == "rejected"
    assert codes & {"region.outside", "reference.unknown", "scope.row"}
    assert not imported(dataset)
    assert snapshot_all() == before


@pytest.mark.parametrize("channel", ["web", "api"])
def test_wrong_tenant_cannot_overwrite_another_provinces_record_by_its_key(
    tenants: Tenants, client: Client, channel: str
) -> None:
    # Given a Shaanxi row that reuses the code of 海南省人民医院
    login(client, tenants, "sx_admin")
    data = {"file": upload(csv_bytes("code,name,region_code,kind,level\nH46010800001,PWNED,610112,public,3"))}
    before = snapshot_all()
    if channel == "web":
        r = client.post("/data/institutions/import/", data)
        status = r.context["result"].status
    else:
        r = client.post("/api/v1/datasets/institutions/import", data)
        status = r.json()["status"]
    assert status == "rejected"
    assert snapshot_all() == before


@pytest.mark.parametrize("channel", ["web", "api"])
def test_other_hospital_cannot_import_departments_of_a_hospital(tenants: Tenants, client: Client, channel: str) -> None:
    login(client, tenants, "hn2_vbp")  # 三亚市人民医院 uploading departments of 海南省人民医院
    before = snapshot_all()
    if channel == "web":
        status = web_import(client, "departments").context["result"].status
    else:
        status = api_import(client, "departments").json()["status"]
    assert status == "rejected"
    assert snapshot_all() == before


@pytest.mark.parametrize("channel", ["web", "api"])
def test_hospital_office_imports_its_own_departments(tenants: Tenants, client: Client, channel: str) -> None:
    login(client, tenants, "hn_vbp")
    if channel == "web":
        r = web_import(client, "departments")
        assert r.status_code == 200
        status = r.context["result"].status
    else:
        r = api_import(client, "departments")
        assert r.status_code == 200
        status = r.json()["status"]
    assert status == "applied"
    assert imported("departments")


@pytest.mark.parametrize("dataset", ["institutions", "agreements"])
@pytest.mark.parametrize("user", ["hn_vbp", "hn_pharmacy", "hn_it", "hn_head"])
def test_hospital_roles_cannot_import_institutions_or_agreements(
    tenants: Tenants, client: Client, user: str, dataset: str
) -> None:
    login(client, tenants, user)
    before = snapshot_all()
    assert client.get(f"/data/{dataset}/import/").status_code == 404
    assert web_import(client, dataset).status_code == 404
    assert api_import(client, dataset).status_code == 404
    assert snapshot_all() == before


@pytest.mark.parametrize("user", ["hn_viewer", "hn_analyst"])
def test_read_only_bureau_roles_cannot_import(tenants: Tenants, client: Client, user: str) -> None:
    login(client, tenants, user)
    before = snapshot_all()
    for dataset in DATASET_NAMES:
        assert web_import(client, dataset).status_code == 404, dataset
        assert api_import(client, dataset).status_code == 404, dataset
    assert snapshot_all() == before


# --------------------------------------------------------------------------- real login and API tokens


def test_real_login_then_list_shows_only_own_institution(tenants: Tenants, client: Client) -> None:
    r = client.post("/login/", {"username": "hn_vbp", "password": PASSWORD})
    assert r.status_code == 302
    page = client.get("/data/institutions/")
    assert page_keys("institutions", page) == {("H46010800001",)}


def test_bearer_token_acts_in_its_owners_scope(tenants: Tenants, client: Client) -> None:
    key = do_issue_token(acting=tenants.scope("hn_vbp"), user=tenants.user("hn_vbp"), name="script")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    r = client.get("/api/v1/datasets/institutions/records", **auth)
    assert r.status_code == 200
    assert [rec["code"] for rec in r.json()["results"]] == ["H46010800001"]
    assert client.get(f"/api/v1/datasets/institutions/records/{tenants.sx_inst.pk}", **auth).status_code == 404
    assert client.get(f"/api/v1/datasets/institutions/records/{tenants.hn_inst2.pk}", **auth).status_code == 404
    export = client.get("/api/v1/datasets/agreements/export?format=json", **auth)
    assert json_keys("agreements", body(export)) == expected_keys(tenants, "hn_vbp", "agreements")
    assert api_import(client, "institutions", **auth).status_code == 404


def test_bearer_token_scope_wins_over_a_session_of_another_user(tenants: Tenants, client: Client) -> None:
    # Given a browser session of the Hainan bureau and a token of the Shaanxi hospital
    login(client, tenants, "hn_admin")
    key = do_issue_token(acting=tenants.scope("sx_vbp"), user=tenants.user("sx_vbp"), name="script")
    r = client.get("/api/v1/datasets/institutions/records", HTTP_AUTHORIZATION=f"Bearer {key}")
    # Then the request acts as the token's owner only
    assert [rec["code"] for rec in r.json()["results"]] == ["H61011200123"]


def test_revoked_token_is_refused(tenants: Tenants, client: Client) -> None:
    key = do_issue_token(acting=tenants.scope("hn_vbp"), user=tenants.user("hn_vbp"), name="script")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    assert client.get("/api/v1/datasets/institutions/records", **auth).status_code == 200
    ApiToken.objects.filter(user=tenants.user("hn_vbp")).update(revoked=True)
    assert client.get("/api/v1/datasets/institutions/records", **auth).status_code == 401
    assert client.get("/api/v1/datasets/institutions/export?format=csv", **auth).status_code == 401
    assert api_import(client, "departments", **auth).status_code == 401


def test_token_of_a_deactivated_user_is_refused(tenants: Tenants, client: Client) -> None:
    user = tenants.user("hn_vbp")
    key = do_issue_token(acting=tenants.scope("hn_vbp"), user=user, name="script")
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    r = client.get("/api/v1/datasets/institutions/records", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert r.status_code == 401


@pytest.mark.parametrize("header", ["Bearer jc_not-a-real-token", "Token abc", "Bearer ", "jc_abc"])
def test_unknown_or_malformed_tokens_are_refused(tenants: Tenants, client: Client, header: str) -> None:
    assert client.get("/api/v1/datasets/institutions/records", HTTP_AUTHORIZATION=header).status_code == 401


def test_tokens_are_issued_only_by_their_owner_or_the_operator(tenants: Tenants) -> None:
    with pytest.raises(ScopeError):
        do_issue_token(acting=tenants.scope("hn_admin"), user=tenants.user("hn_vbp"), name="x")
    assert do_issue_token(acting=tenants.scope("operator"), user=tenants.user("hn_vbp"), name="x").startswith("jc_")


# --------------------------------------------------------------------------- admin

ADMIN_OBJECTS = [
    ("organizations/institution", "hn_inst"),
    ("organizations/department", "hn_dept"),
    ("programme/batch", "hn_batch"),
    ("programme/item", "hn_item"),
    ("programme/selectedproduct", "hn_sel"),
    ("programme/nonselectedproduct", "hn_ns"),
    ("programme/agreement", "hn_agreement"),
    ("imports/importrun", "run_hn"),
]
HAINAN_MARKERS = ("海南省人民医院", "三亚市人民医院", "H46010800001", "H46020000002", "HN-N7")
SHAANXI_MARKERS = ("西安市第一医院", "H61011200123", "SX-N7")


def test_admin_institution_list_of_other_province_shows_no_hainan_institution(tenants: Tenants, client: Client) -> None:
    login(client, tenants, "sx_admin")
    r = client.get("/admin/organizations/institution/")
    assert r.status_code == 200
    text = r.content.decode()
    assert "西安市第一医院" in text
    for marker in HAINAN_MARKERS:
        assert marker not in text


@pytest.mark.parametrize(("path", "_attr"), ADMIN_OBJECTS, ids=[p for p, _ in ADMIN_OBJECTS])
@pytest.mark.parametrize(("user", "markers"), [("sx_admin", HAINAN_MARKERS), ("hn_admin", SHAANXI_MARKERS)])
def test_admin_changelists_show_no_other_province_rows(
    tenants: Tenants, client: Client, path: str, _attr: str, user: str, markers: tuple[str, ...]
) -> None:
    login(client, tenants, user)
    r = client.get(f"/admin/{path}/")
    assert r.status_code == 200
    text = r.content.decode()
    for marker in markers:
        assert marker not in text, marker


@pytest.mark.parametrize(("path", "attr"), ADMIN_OBJECTS, ids=[p for p, _ in ADMIN_OBJECTS])
def test_admin_pages_of_another_provinces_record_are_not_reachable(
    tenants: Tenants, client: Client, path: str, attr: str
) -> None:
    login(client, tenants, "sx_admin")
    obj = getattr(tenants, attr)
    for page in ("change", "delete", "history"):
        r = client.get(f"/admin/{path}/{obj.pk}/{page}/")
        assert r.status_code in (302, 403, 404), page
        if r.status_code == 302:
            assert r["Location"] == "/admin/", page
        for marker in HAINAN_MARKERS:
            assert marker not in r.content.decode(), page


def test_admin_post_to_another_provinces_record_changes_nothing(tenants: Tenants, client: Client) -> None:
    login(client, tenants, "sx_admin")
    before = snapshot_all()
    pk = tenants.hn_inst.pk
    form = {"code": "H46010800001", "name": "PWNED", "region_code": "610112", "kind": "public", "level": "3"}
    r = client.post(f"/admin/organizations/institution/{pk}/change/", form)
    assert r.status_code in (302, 403, 404)
    r = client.post(f"/admin/organizations/institution/{pk}/delete/", {"post": "yes"})
    assert r.status_code in (302, 403, 404)
    assert snapshot_all() == before


def test_admin_cannot_add_an_institution_outside_the_region(tenants: Tenants, client: Client) -> None:
    login(client, tenants, "sx_admin")
    before = snapshot_all()
    form = {
        "code": "H46010800099",
        "name": "越界医院",
        "region_code": "460108",
        "kind": "public",
        "level": "3",
        "participating": "on",
    }
    r = client.post("/admin/organizations/institution/add/", form)
    assert r.status_code in (200, 403)  # refused (re-shown form or permission denied), never saved
    assert snapshot_all() == before


def test_admin_for_hospital_it_shows_only_its_departments(tenants: Tenants, client: Client) -> None:
    login(client, tenants, "hn_it")
    r = client.get("/admin/organizations/department/")
    assert r.status_code == 200
    text = r.content.decode()
    assert "海南省人民医院" in text
    for marker in ("三亚市人民医院", "西安市第一医院"):
        assert marker not in text
    assert client.get(f"/admin/organizations/department/{tenants.hn2_dept.pk}/change/").status_code in (302, 404)


@pytest.mark.parametrize("user", ["hn_vbp", "hn_head", None])
def test_admin_sends_non_staff_and_anonymous_to_the_admin_login(
    tenants: Tenants, client: Client, user: str | None
) -> None:
    if user:
        login(client, tenants, user)
    for url in (
        "/admin/",
        "/admin/organizations/institution/",
        f"/admin/organizations/institution/{tenants.hn_inst.pk}/change/",
    ):
        r = client.get(url)
        assert r.status_code == 302, url
        assert r["Location"].startswith("/admin/login/"), url


# --------------------------------------------------------------------------- import history, reports, users


def test_import_history_lists_only_the_tenants_runs(tenants: Tenants, client: Client) -> None:
    expected = {
        "hn_admin": {tenants.run_hn.pk, tenants.run_hn2.pk},
        "sy_admin": {tenants.run_hn2.pk},
        "sx_admin": {tenants.run_sx.pk},
        "hn_vbp": {tenants.run_hn.pk},
        "hn2_vbp": {tenants.run_hn2.pk},
    }
    for user, runs in expected.items():
        login(client, tenants, user)
        page = client.get("/imports/")
        assert page.status_code == 200
        assert {run.pk for run in page.context["page"].object_list} == runs, user
    login(client, tenants, "hn_pharmacy")  # no import_run:read
    assert client.get("/imports/").status_code == 404


def test_import_report_of_another_tenant_cannot_be_downloaded(tenants: Tenants, client: Client) -> None:
    # Given a rejected import by the Hainan bureau, which leaves an error report
    login(client, tenants, "hn_admin")
    bad = csv_bytes("code,name,region_code,kind,level\nH46010800010,坏行,460108,public,9")
    result = client.post("/data/institutions/import/", {"file": upload(bad)}).context["result"]
    assert result.status == "rejected"
    assert result.run_id is not None
    url = f"/imports/{result.run_id}/report/"
    assert client.get(url).status_code == 200
    # When users of other territories ask for it, Then it does not exist for them
    for user in ("sx_admin", "sy_admin", "hn_vbp", "sx_vbp"):
        login(client, tenants, user)
        assert client.get(url).status_code == 404, user
    client.logout()
    r = client.get(url)
    assert r.status_code == 302
    assert r["Location"].startswith("/login/")


@pytest.mark.parametrize(
    ("user", "present", "absent"),
    [
        ("sx_admin", {"sx_vbp"}, {"hn_admin", "hn_vbp", "hn2_vbp", "sy_admin", "hn_head", "operator"}),
        ("sy_admin", {"hn2_vbp"}, {"hn_admin", "hn_vbp", "sx_vbp", "sx_admin", "operator"}),
        ("hn_it", {"hn_vbp", "hn_pharmacy", "hn_head"}, {"hn2_vbp", "sx_vbp", "hn_admin", "sy_admin", "operator"}),
    ],
)
def test_user_admin_lists_only_accounts_of_the_territory(
    tenants: Tenants, client: Client, user: str, present: set[str], absent: set[str]
) -> None:
    login(client, tenants, user)
    r = client.get("/admin/accounts/user/")
    assert r.status_code == 200
    shown = {u.username for u in r.context["cl"].result_list}
    assert present <= shown
    assert not (absent & shown)
    other = tenants.user(sorted(absent)[0])
    r = client.get(f"/admin/accounts/user/{other.pk}/change/")
    assert r.status_code in (302, 403, 404)


def test_account_without_a_valid_territory_gets_no_data(tenants: Tenants, client: Client) -> None:
    # Given a hospital role saved without its institution (a misconfigured account)
    broken = User.objects.create_user("broken", password=PASSWORD, role="vbp_office")
    client.force_login(broken)
    # Then it is refused everywhere instead of seeing data or crashing
    for url in ("/data/institutions/", "/data/institutions/export/?format=csv"):
        assert client.get(url).status_code == 403, url
    for url in ("/api/v1/datasets/institutions/records", "/api/v1/datasets/institutions/export?format=csv"):
        assert client.get(url).status_code == 403, url


@pytest.mark.parametrize(
    ("user", "institution"), [("hn_it", "hn_inst2"), ("hn_it", "sx_inst"), ("sx_admin", "hn_inst")]
)
def test_admin_cannot_add_a_department_to_an_institution_outside_the_scope(
    tenants: Tenants, client: Client, user: str, institution: str
) -> None:
    login(client, tenants, user)
    before = snapshot_all()
    form = {"institution": str(getattr(tenants, institution).pk), "code": "XX99", "name": "越界科室"}
    r = client.post("/admin/organizations/department/add/", form)
    assert r.status_code in (200, 403)  # the form refuses the choice, or the write is denied
    if r.status_code == 200:
        assert "institution" in r.context["adminform"].form.errors
    assert snapshot_all() == before


def test_admin_add_department_offers_only_institutions_in_scope(tenants: Tenants, client: Client) -> None:
    login(client, tenants, "hn_it")
    r = client.get("/admin/organizations/department/add/")
    assert r.status_code == 200
    choices = r.context["adminform"].form.fields["institution"].queryset
    assert {i.pk for i in choices} == {tenants.hn_inst.pk}


# --------------------------------------------------------------------------- daily screens (issue 5)

SCREEN_URLS = (
    "/overview/",
    "/overview/institutions/",
    "/overview/items/",
    "/progress/",
    "/alerts/",
    "/institutions/H46010800001/",
    "/institutions/H46010800001/items/HN-N7/A01/",
    "/institutions/H46010800001/departments/NK01/",
    "/lines/purchases/",
    "/lines/dispensing/",
    "/lines/payables/",
)


@pytest.mark.parametrize("url", SCREEN_URLS)
def test_anonymous_is_sent_to_login_from_the_daily_screens(tenants: Tenants, client: Client, url: str) -> None:
    r = client.get(url)
    assert r.status_code == 302
    assert r["Location"].startswith("/login/")


@pytest.mark.parametrize(
    ("user", "url", "status"),
    [
        # right tenant (no facts imported yet: the screens compute on the empty store and show nothing)
        ("hn_admin", "/overview/", 200),
        ("hn_admin", "/institutions/H46010800001/", 200),
        ("hn_vbp", "/institutions/H46010800001/", 200),
        ("hn_head", "/institutions/H46010800001/departments/NK01/", 200),
        # wrong tenant: another province, city, hospital or department; or a role without the page
        ("sx_admin", "/institutions/H46010800001/", 404),
        ("sx_admin", "/institutions/H46010800001/items/HN-N7/A01/", 404),
        ("sx_admin", "/institutions/H46010800001/departments/NK01/", 404),
        ("sy_admin", "/institutions/H46010800001/", 404),
        ("hn2_vbp", "/institutions/H46010800001/", 404),
        ("hn_vbp", "/institutions/H46020000002/", 404),
        ("hn_vbp", "/overview/", 404),
        ("hn_head", "/overview/", 404),
        ("hn_head", "/institutions/H46010800001/", 404),
        ("hn_head", "/institutions/H46010800001/departments/SJ01/", 404),
        ("hn_head2", "/institutions/H46010800001/departments/NK01/", 404),
        ("hn_head", "/alerts/", 404),
        ("hn_head", "/lines/purchases/", 404),
        ("hn_vbp", "/lines/purchases/?institution=H46020000002", 404),
        ("sx_admin", "/lines/payables/?institution=H46010800001", 404),
        ("hn_head", "/lines/dispensing/?department=SJ01", 404),
    ],
)
def test_daily_screens_answer_only_the_right_tenant(
    tenants: Tenants, client: Client, user: str, url: str, status: int
) -> None:
    login(client, tenants, user)
    r = client.get(url)
    assert r.status_code == status, (user, url)
    if user.startswith("sx_"):
        for marker in ("海南省人民医院", "H46010800001"):
            assert marker not in r.content.decode()
