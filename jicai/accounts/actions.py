"""Writes on accounts, each in one transaction with an audit row."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from jicai.accounts.models import ApiToken, User
from jicai.accounts.permissions import ROLE_LEVEL, RoleName
from jicai.core import audit
from jicai.core.tenancy import Level, Scope, ScopeError, region_prefix, use_scope
from jicai.organizations.models import Department, Institution


def _check_grant(acting: Scope, role: RoleName, region_code: str, institution: Institution | None) -> None:
    """The acting user may only hand out roles inside their own territory and below their level."""
    if acting.is_system:
        return
    acting.require("user", "manage")
    level = ROLE_LEVEL[role]
    if level is Level.SYSTEM:
        raise ScopeError("only the operator can create platform administrators")
    if acting.level is Level.REGION:
        code = region_code if level is Level.REGION else (institution.region_code if institution else "")
        if not code.startswith(acting.region_prefix):
            raise ScopeError("the account's territory is outside your region")
        return
    if level is Level.REGION or institution is None or institution.pk != acting.institution_id:
        raise ScopeError("hospital IT can only create accounts of its own institution")


def do_create_user(
    *,
    acting: Scope,
    username: str,
    password: str,
    role: str,
    region_code: str = "",
    institution_code: str = "",
    department_code: str = "",
    display_name: str = "",
    email: str = "",
) -> User:
    try:
        role_name = RoleName(role)
    except ValueError as exc:
        raise ValidationError(f"unknown role {role!r}") from exc
    level = ROLE_LEVEL[role_name]
    institution = department = None
    with use_scope(acting), transaction.atomic():
        if level in (Level.INSTITUTION, Level.DEPARTMENT):
            institution = Institution.objects.filter(code=institution_code).first()
            if institution is None:
                raise ValidationError(f"unknown institution {institution_code!r} (or outside your scope)")
        if level is Level.DEPARTMENT:
            department = Department.objects.filter(institution=institution, code=department_code).first()
            if department is None:
                raise ValidationError(f"unknown department {department_code!r} of {institution_code}")
        if level is Level.REGION:
            try:
                region_prefix(region_code)
            except ValueError as exc:
                raise ValidationError("a bureau role needs --region with a 6-digit code") from exc
        _check_grant(acting, role_name, region_code, institution)
        if User.objects.filter(username=username).exists():
            raise ValidationError(f"user {username!r} exists")
        user = User(
            username=username,
            role=role_name.value,
            region_code=region_code if level is Level.REGION else "",
            institution=institution,
            department=department,
            first_name=display_name,
            email=email,
            is_staff=level in (Level.SYSTEM, Level.REGION) or role_name is RoleName.IT,
            is_superuser=level is Level.SYSTEM,
        )
        user.set_password(password)
        user.full_clean()
        user.save()
        audit.record(
            acting,
            [
                audit.Change(
                    "create",
                    "accounts.User",
                    user.pk,
                    username,
                    None,
                    {"username": username, "role": role_name.value, "territory": user.scope().label},
                )
            ],
        )
    return user


def do_issue_token(*, acting: Scope, user: User, name: str) -> str:
    if not acting.is_system and acting.actor_id != user.pk:
        raise ScopeError("tokens are issued by their owner or the operator")
    with transaction.atomic():
        token, key = ApiToken.issue(user, name)
        audit.record(
            acting,
            [
                audit.Change(
                    "create", "accounts.ApiToken", token.pk, f"{user.username}/{name}", None, {"prefix": token.prefix}
                )
            ],
        )
    return key


def do_change_password(*, acting: Scope, user: User, new_password: str) -> None:
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        audit.record(acting, [audit.Change("password", "accounts.User", user.pk, user.username, None, None)])
