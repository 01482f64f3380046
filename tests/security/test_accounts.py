"""Roles and territories (R-H1), account creation rules, password hashing, login throttling, session settings."""

from __future__ import annotations

import importlib
import os
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.hashers import check_password, identify_hasher
from django.core.exceptions import ValidationError
from django.test import Client

from jicai.accounts.actions import do_create_user
from jicai.accounts.models import User
from jicai.accounts.permissions import (
    ROLE_LABELS,
    ROLE_LEVEL,
    ROLE_PERMISSIONS,
    WORKSPACE,
    Resource,
    RoleName,
    Verb,
    vocabulary,
)
from jicai.core.models import AuditEntry
from jicai.core.tenancy import Level, ScopeError
from tests.conftest import PASSWORD

from .conftest import Tenants

SUPPLY = (
    Resource.SUPPLY_INCIDENT,
    Resource.CREDIT,
    Resource.SANCTION,
    Resource.SUPPLY_REPORT,
    Resource.ADVERSE_REACTION,
    Resource.QUALITY_PROBLEM,
    Resource.EVALUATION,
)
QUALITY_IMPORTS = {"adverse_reaction", "quality_problem", "evaluation"}
BUREAU_ROLES = (RoleName.BUREAU_ADMIN, RoleName.BUREAU_ANALYST, RoleName.BUREAU_VIEWER)
HOSPITAL_ROLES = (
    RoleName.VBP_OFFICE,
    RoleName.PHARMACY,
    RoleName.MEDICAL_AFFAIRS,
    RoleName.FINANCE,
    RoleName.PERFORMANCE,
    RoleName.IT,
    RoleName.LEADERSHIP,
)

# --------------------------------------------------------------------------- roles and the permission vocabulary


def test_every_role_has_a_label_a_level_and_permissions() -> None:
    assert set(ROLE_LABELS) == set(ROLE_LEVEL) == set(ROLE_PERMISSIONS) == set(RoleName)


def test_role_levels_follow_r_h1() -> None:
    assert ROLE_LEVEL[RoleName.PLATFORM_ADMIN] is Level.SYSTEM
    assert all(ROLE_LEVEL[r] is Level.REGION for r in BUREAU_ROLES)
    assert all(ROLE_LEVEL[r] is Level.INSTITUTION for r in HOSPITAL_ROLES)
    assert ROLE_LEVEL[RoleName.DEPARTMENT_HEAD] is Level.DEPARTMENT


def test_vocabulary_is_level_resource_verb() -> None:
    vocab = vocabulary()
    assert len(vocab) == 3 * len(Resource) * len(Verb)
    for perm in vocab:
        level, resource, verb = perm.split(":")
        assert level in {"region", "institution", "department"}
        assert resource in {r.value for r in Resource}
        assert verb in {v.value for v in Verb}


@pytest.mark.parametrize("role", list(RoleName))
def test_every_granted_permission_is_in_the_vocabulary_and_at_the_roles_level(role: RoleName) -> None:
    perms = ROLE_PERMISSIONS[role]
    assert perms <= vocabulary()
    level = ROLE_LEVEL[role]
    assert all(p.startswith(f"{level.value}:") for p in perms)


def test_platform_admin_needs_no_grants_because_it_acts_in_the_system_scope() -> None:
    assert ROLE_PERMISSIONS[RoleName.PLATFORM_ADMIN] == frozenset()


def test_read_only_roles_hold_no_write_import_or_manage_permission() -> None:
    def verbs(role: RoleName, *, workspace: bool = False) -> set[str]:
        return {
            p.rsplit(":", 1)[1]
            for p in ROLE_PERMISSIONS[role]
            if (p.split(":")[1] in {r.value for r in (*WORKSPACE, *SUPPLY)}) == workspace
        }

    assert verbs(RoleName.BUREAU_VIEWER) == {"read"}
    assert verbs(RoleName.BUREAU_ANALYST) == {"read", "export"}
    assert verbs(RoleName.DEPARTMENT_HEAD) == {"read"}
    for role in (RoleName.LEADERSHIP, RoleName.PERFORMANCE, RoleName.MEDICAL_AFFAIRS):
        assert verbs(role) == {"read", "export"}, role
    # pharmacy and finance write only the activity data they own (HIS dispensing, supplier payments)
    for role, resource in ((RoleName.PHARMACY, "dispensing"), (RoleName.FINANCE, "payment")):
        writes = {
            p.split(":")[1]
            for p in ROLE_PERMISSIONS[role]
            if p.rsplit(":", 1)[1] in {"write", "import"}
            and p.split(":")[1] not in {r.value for r in (*WORKSPACE, *SUPPLY)}
        }
        assert writes == {resource}, role
    # in the workspace the bureau only reads, a department head reads and comments on demand,
    # and only leadership (and medical affairs for the formulary committee) approves
    for role in (RoleName.BUREAU_VIEWER, RoleName.BUREAU_ANALYST, RoleName.BUREAU_ADMIN):
        assert {p.rsplit(":", 1)[1] for p in ROLE_PERMISSIONS[role] if p.split(":")[1] in WORKSPACE} == {"read"}
    # in the supply registers only the bureau approves incidents and derives the credit file
    deciders = {r for r in RoleName if any(p.endswith(":supply_incident:approve") for p in ROLE_PERMISSIONS[r])}
    assert deciders == {RoleName.BUREAU_ADMIN}
    assert verbs(RoleName.DEPARTMENT_HEAD, workspace=True) == {"read", "comment", "write"}  # write: ADR reports
    approvers = {
        r for r in RoleName if any(p.endswith(":approve") and p.split(":")[1] in WORKSPACE for p in ROLE_PERMISSIONS[r])
    }
    assert approvers == {RoleName.LEADERSHIP, RoleName.MEDICAL_AFFAIRS}
    assert {p for p in ROLE_PERMISSIONS[RoleName.MEDICAL_AFFAIRS] if p.endswith(":approve")} == {
        "institution:formulary:approve"
    }


def test_only_bureau_admin_and_hospital_it_manage_users() -> None:
    managers = {r for r in RoleName if any(p.endswith(":user:manage") for p in ROLE_PERMISSIONS[r])}
    assert managers == {RoleName.BUREAU_ADMIN, RoleName.IT}


def test_hospital_roles_may_not_import_master_or_programme_data_except_departments() -> None:
    # a hospital loads its own departments and its own activity lines, never shared or bureau data
    for role in HOSPITAL_ROLES:
        imports = {p.split(":")[1] for p in ROLE_PERMISSIONS[role] if p.endswith(":import")}
        assert imports <= {"department", "purchase", "payment", "dispensing", "supply_incident", *QUALITY_IMPORTS}, role


def test_user_scopes_carry_the_territory(tenants: Tenants) -> None:
    assert tenants.scope("hn_admin").label == "region:460000"
    assert tenants.scope("sy_admin").region_prefix == "4602"
    assert tenants.scope("hn_vbp").institution_id == tenants.hn_inst.pk
    head = tenants.scope("hn_head")
    assert (head.level, head.institution_id, head.department_id) == (
        Level.DEPARTMENT,
        tenants.hn_inst.pk,
        tenants.hn_dept.pk,
    )
    assert tenants.scope("operator").is_system
    assert not tenants.scope("hn_viewer").can("institution", "write")
    assert tenants.scope("hn_admin").can("institution", "import")
    assert not tenants.scope("hn_admin").can("audit", "write")


# --------------------------------------------------------------------------- User.clean


def _user(**kw: Any) -> User:
    return User(username="new_user", **kw)


@pytest.mark.parametrize("role", BUREAU_ROLES)
@pytest.mark.parametrize("region", ["", "46", "4600000", "46000A", "hainan"])
def test_bureau_role_needs_a_six_digit_region(db: Any, role: RoleName, region: str) -> None:
    with pytest.raises(ValidationError) as exc:
        _user(role=role, region_code=region).clean()
    assert "region_code" in exc.value.message_dict


@pytest.mark.parametrize("role", BUREAU_ROLES)
def test_bureau_role_with_a_region_is_valid(db: Any, role: RoleName) -> None:
    _user(role=role, region_code="460000").clean()


@pytest.mark.parametrize("role", [*HOSPITAL_ROLES, RoleName.DEPARTMENT_HEAD])
def test_hospital_role_needs_an_institution(db: Any, role: RoleName) -> None:
    with pytest.raises(ValidationError) as exc:
        _user(role=role).clean()
    assert "institution" in exc.value.message_dict


def test_department_head_needs_a_department(tenants: Tenants) -> None:
    with pytest.raises(ValidationError) as exc:
        _user(role=RoleName.DEPARTMENT_HEAD, institution=tenants.hn_inst).clean()
    assert "department" in exc.value.message_dict


@pytest.mark.parametrize("dept", ["sx_dept", "hn2_dept"])
def test_department_head_of_another_institutions_department_is_rejected(tenants: Tenants, dept: str) -> None:
    user = _user(role=RoleName.DEPARTMENT_HEAD, institution=tenants.hn_inst, department=getattr(tenants, dept))
    with pytest.raises(ValidationError) as exc:
        user.clean()
    assert "department" in exc.value.message_dict
    with pytest.raises(ValidationError):
        user.scope()  # a misconfigured account gets no scope either


def test_department_head_of_its_own_department_is_valid(tenants: Tenants) -> None:
    user = _user(role=RoleName.DEPARTMENT_HEAD, institution=tenants.hn_inst, department=tenants.hn_dept)
    user.clean()
    assert user.scope().department_id == tenants.hn_dept.pk


# --------------------------------------------------------------------------- do_create_user


def _create(t: Tenants, acting: str, **kw: Any) -> User:
    return do_create_user(acting=t.scope(acting), username="new_user", password=PASSWORD, **kw)


@pytest.mark.parametrize(
    ("acting", "kwargs"),
    [
        ("hn_admin", {"role": "bureau_admin", "region_code": "610000"}),  # another province
        ("hn_admin", {"role": "bureau_viewer", "region_code": "000000"}),  # the whole country
        ("hn_admin", {"role": "platform_admin"}),  # above every bureau
        ("sy_admin", {"role": "bureau_admin", "region_code": "460000"}),  # the city's own province
        ("sy_admin", {"role": "bureau_viewer", "region_code": "460100"}),  # a sibling city
        ("hn_it", {"role": "bureau_viewer", "region_code": "460000"}),  # hospital IT granting a bureau role
        ("hn_it", {"role": "platform_admin"}),
        ("hn_analyst", {"role": "pharmacy", "institution_code": "H46010800001"}),  # no user:manage
        ("hn_vbp", {"role": "pharmacy", "institution_code": "H46010800001"}),  # no user:manage
        ("hn_head", {"role": "pharmacy", "institution_code": "H46010800001"}),
    ],
)
def test_grants_outside_the_acting_users_territory_are_refused(
    tenants: Tenants, acting: str, kwargs: dict[str, str]
) -> None:
    before = User.objects.count()
    audit_before = AuditEntry.objects.count()
    with pytest.raises(ScopeError):
        _create(tenants, acting, **kwargs)
    assert User.objects.count() == before
    assert AuditEntry.objects.count() == audit_before


@pytest.mark.parametrize(
    ("acting", "kwargs"),
    [
        ("hn_admin", {"role": "pharmacy", "institution_code": "H61011200123"}),  # Shaanxi hospital
        ("sy_admin", {"role": "pharmacy", "institution_code": "H46010800001"}),  # Haikou hospital
        ("hn_it", {"role": "pharmacy", "institution_code": "H46020000002"}),  # another hospital
        ("hn_it", {"role": "department_head", "institution_code": "H61011200123", "department_code": "NK01"}),
    ],
)
def test_institutions_outside_the_acting_users_territory_cannot_be_named(
    tenants: Tenants, acting: str, kwargs: dict[str, str]
) -> None:
    before = User.objects.count()
    with pytest.raises((ValidationError, ScopeError)):
        _create(tenants, acting, **kwargs)
    assert User.objects.count() == before


def test_hospital_it_creates_a_pharmacy_user_in_its_own_hospital(tenants: Tenants) -> None:
    # Given hospital IT of 海南省人民医院
    audit_before = AuditEntry.objects.count()
    # When it creates a pharmacy account there
    user = _create(tenants, "hn_it", role="pharmacy", institution_code="H46010800001")
    # Then the account is bound to that hospital, not staff, and the creation is audited
    user.refresh_from_db()
    assert (user.role, user.institution_id, user.region_code) == ("pharmacy", tenants.hn_inst.pk, "")
    assert not user.is_staff
    assert not user.is_superuser
    assert user.scope().institution_id == tenants.hn_inst.pk
    assert AuditEntry.objects.count() == audit_before + 1
    entry = AuditEntry.objects.get(model="accounts.User", object_pk=str(user.pk))
    assert (entry.action, entry.actor_name, entry.scope) == ("create", "hn_it", "institution:H46010800001")
    assert entry.new["territory"] == "institution:H46010800001"


def test_hospital_it_creates_a_department_head_of_its_own_department(tenants: Tenants) -> None:
    user = _create(tenants, "hn_it", role="department_head", institution_code="H46010800001", department_code="SJ01")
    assert user.scope().department_id == tenants.hn_dept2.pk


@pytest.mark.parametrize(
    ("acting", "kwargs", "label"),
    [
        ("hn_admin", {"role": "bureau_analyst", "region_code": "460200"}, "region:460200"),
        ("hn_admin", {"role": "vbp_office", "institution_code": "H46020000002"}, "institution:H46020000002"),
        ("sy_admin", {"role": "finance", "institution_code": "H46020000002"}, "institution:H46020000002"),
        ("operator", {"role": "bureau_admin", "region_code": "610000"}, "region:610000"),
    ],
)
def test_grants_inside_the_territory_are_allowed_and_audited(
    tenants: Tenants, acting: str, kwargs: dict[str, str], label: str
) -> None:
    user = _create(tenants, acting, **kwargs)
    assert user.scope().label == label
    entry = AuditEntry.objects.get(model="accounts.User", object_pk=str(user.pk))
    assert entry.actor_name == acting


def test_existing_username_is_refused(tenants: Tenants) -> None:
    with pytest.raises(ValidationError):
        do_create_user(
            acting=tenants.scope("hn_it"),
            username="hn_pharmacy",
            password=PASSWORD,
            role="pharmacy",
            institution_code="H46010800001",
        )


# --------------------------------------------------------------------------- password hashing


def _configured_hashers() -> list[str]:
    """PASSWORD_HASHERS exactly as written in jicai/settings.py (the test suite swaps in a fast hasher)."""
    module = importlib.import_module(os.environ.get("DJANGO_SETTINGS_MODULE", "jicai.settings"))
    return list(module.PASSWORD_HASHERS)


def test_configured_hashers_start_with_argon2() -> None:
    hashers = _configured_hashers()
    assert hashers[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    assert not any("MD5" in h or "SHA1" in h or "Unsalted" in h for h in hashers)


def test_new_users_password_is_hashed_with_argon2(tenants: Tenants, settings: Any) -> None:
    # Given the project's own hasher list (not the suite's fast MD5 one)
    settings.PASSWORD_HASHERS = _configured_hashers()
    # When an account is created
    user = _create(tenants, "hn_it", role="pharmacy", institution_code="H46010800001")
    user.refresh_from_db()
    # Then its password is stored as an Argon2 hash that verifies, and never in clear
    assert user.password.startswith("argon2")
    assert identify_hasher(user.password).algorithm == "argon2"
    assert PASSWORD not in user.password
    assert check_password(PASSWORD, user.password)
    assert not check_password("wrong-password", user.password)


def test_real_login_works_with_argon2(tenants: Tenants, settings: Any, client: Client) -> None:
    settings.PASSWORD_HASHERS = _configured_hashers()
    user = tenants.user("hn_vbp")
    user.set_password(PASSWORD)
    user.save()
    assert user.password.startswith("argon2")
    r = client.post("/login/", {"username": "hn_vbp", "password": PASSWORD})
    assert r.status_code == 302
    assert r["Location"] == "/"


# --------------------------------------------------------------------------- login throttling


def _fail(client: Client, username: str, times: int) -> None:
    for _ in range(times):
        r = client.post("/login/", {"username": username, "password": "not-the-password"})
        assert r.status_code in (200, 429)  # never a redirect into the site


def _is_locked_out(response: Any) -> bool:
    text = response.content.decode()
    return response.status_code == 429 and ("账户已暂时锁定" in text or "Account temporarily locked" in text)


def test_failure_limit_is_five() -> None:
    assert django_settings.AXES_FAILURE_LIMIT == 5
    assert "axes.middleware.AxesMiddleware" in django_settings.MIDDLEWARE
    assert django_settings.AUTHENTICATION_BACKENDS[0].startswith("axes.backends.")


def test_five_wrong_passwords_lock_the_account(tenants: Tenants, client: Client) -> None:
    # Given five failed log-ins for hn_vbp
    _fail(client, "hn_vbp", 5)
    # When the right password follows
    r = client.post("/login/", {"username": "hn_vbp", "password": PASSWORD})
    # Then the user is not let in: the locked-out page is shown instead of a redirect home
    assert r.status_code != 302
    assert _is_locked_out(r)
    home = client.get("/")
    assert home.status_code == 302
    assert home["Location"].startswith("/login/")


def test_four_wrong_passwords_do_not_lock(tenants: Tenants, client: Client) -> None:
    _fail(client, "hn_vbp", 4)
    r = client.post("/login/", {"username": "hn_vbp", "password": PASSWORD})
    assert r.status_code == 302
    assert r["Location"] == "/"


def test_lockout_is_per_user_and_does_not_block_others(tenants: Tenants, client: Client) -> None:
    _fail(client, "hn_vbp", 5)
    other = Client()
    r = other.post("/login/", {"username": "sx_vbp", "password": PASSWORD})
    assert r.status_code == 302


def test_locked_out_user_cannot_get_an_api_session(tenants: Tenants, client: Client) -> None:
    _fail(client, "hn_vbp", 5)
    client.post("/login/", {"username": "hn_vbp", "password": PASSWORD})
    assert client.get("/api/v1/datasets/institutions/records").status_code == 401


# --------------------------------------------------------------------------- session and cookie settings


def test_session_and_cookie_security_settings() -> None:
    s = django_settings
    assert s.SESSION_COOKIE_HTTPONLY is True
    assert s.CSRF_COOKIE_HTTPONLY is True
    assert s.X_FRAME_OPTIONS == "DENY"
    assert s.SESSION_EXPIRE_AT_BROWSER_CLOSE is True
    assert s.SESSION_COOKIE_AGE <= 12 * 60 * 60
    assert s.SESSION_COOKIE_SAMESITE in ("Lax", "Strict")
    assert s.SECURE_CONTENT_TYPE_NOSNIFF is True
    assert "django.middleware.clickjacking.XFrameOptionsMiddleware" in s.MIDDLEWARE
    assert "django.middleware.csrf.CsrfViewMiddleware" in s.MIDDLEWARE


def test_login_response_sets_hardened_cookies_and_headers(tenants: Tenants, client: Client) -> None:
    page = client.get("/login/")
    assert page["X-Frame-Options"] == "DENY"
    assert page["X-Content-Type-Options"] == "nosniff"
    r = client.post("/login/", {"username": "hn_vbp", "password": PASSWORD})
    cookie = r.cookies[django_settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"]
    assert not cookie["expires"]  # a browser-session cookie
    assert not cookie["max-age"]
    assert cookie["samesite"] in ("Lax", "Strict")
