"""The demo sample: shipped fixture files loaded through the real importer, plus one login per role.

Until the demo province generator exists, this is what ``make demo`` shows. Loading twice is
harmless: the importer finds every row unchanged and the demo users get their password reset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from jicai.accounts.models import User
from jicai.accounts.permissions import ROLE_LABELS, RoleName
from jicai.core import audit
from jicai.core.tenancy import Scope, use_scope
from jicai.imports.datasets import get_spec
from jicai.imports.engine import ImportResult, run_import
from jicai.organizations.models import Department, Institution

FIXTURES = Path(__file__).parent / "fixtures"
ORDER = (
    "institutions",
    "departments",
    "companies",
    "products",
    "batches",
    "items",
    "selected",
    "non_selected",
    "agreements",
)
DEMO_PASSWORD = "jicai-demo-2026"  # noqa: S105 - printed to the user on purpose
DEMO_REGION = "460000"
DEMO_HOSPITAL = "H46010600001"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: RoleName
    territory: str


DEMO_USERS = (
    DemoLogin("admin", RoleName.PLATFORM_ADMIN, ""),
    DemoLogin("bureau", RoleName.BUREAU_ADMIN, DEMO_REGION),
    DemoLogin("analyst", RoleName.BUREAU_ANALYST, DEMO_REGION),
    DemoLogin("viewer", RoleName.BUREAU_VIEWER, DEMO_REGION),
    DemoLogin("vbp", RoleName.VBP_OFFICE, DEMO_HOSPITAL),
    DemoLogin("pharmacy", RoleName.PHARMACY, DEMO_HOSPITAL),
    DemoLogin("medical", RoleName.MEDICAL_AFFAIRS, DEMO_HOSPITAL),
    DemoLogin("finance", RoleName.FINANCE, DEMO_HOSPITAL),
    DemoLogin("performance", RoleName.PERFORMANCE, DEMO_HOSPITAL),
    DemoLogin("it", RoleName.IT, DEMO_HOSPITAL),
    DemoLogin("leader", RoleName.LEADERSHIP, DEMO_HOSPITAL),
    DemoLogin("cardiology", RoleName.DEPARTMENT_HEAD, f"{DEMO_HOSPITAL}/XNK"),
)


def load_fixtures() -> list[ImportResult]:
    scope = Scope.system("demo")
    results = []
    for name in ORDER:
        path = FIXTURES / f"{name}.csv"
        results.append(run_import(get_spec(name), path.read_bytes(), path.name, scope))
    return results


def ensure_users() -> list[DemoLogin]:
    scope = Scope.system("demo")
    with use_scope(scope), transaction.atomic():
        for login in DEMO_USERS:
            user = User.objects.filter(username=login.username).first() or User(username=login.username)
            user.role = login.role.value
            user.region_code = login.territory if login.territory.isdigit() else ""
            user.institution = None
            user.department = None
            if login.territory.startswith("H"):
                code, _, dept = login.territory.partition("/")
                user.institution = Institution.objects.get(code=code)
                if dept:
                    user.department = Department.objects.get(institution=user.institution, code=dept)
            user.first_name = str(ROLE_LABELS[login.role])
            user.is_staff = login.role in (RoleName.PLATFORM_ADMIN, RoleName.BUREAU_ADMIN, RoleName.IT)
            user.is_superuser = login.role is RoleName.PLATFORM_ADMIN
            user.set_password(DEMO_PASSWORD)
            user.full_clean()
            user.save()
            audit.record(
                scope, [audit.Change("demo-user", "accounts.User", user.pk, user.username, None, {"role": user.role})]
            )
    return list(DEMO_USERS)
