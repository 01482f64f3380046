"""Load the demo province through the real importers, run its monthly cycle, create one login per role.

The files come from ``jicai.demo.province`` (generated in memory, nothing read from disk) and go
through ``run_import`` exactly as ``jicai import DATASET FILE`` sends them, so the demo exercises
validation, audit and the Delta fact store. Loading twice is harmless: master rows are found
unchanged, fact lines are merged by their natural keys, the cycle finds nothing new and the demo
users get their password reset. A different seed, as-of date or size over an earlier demo would mix
two provinces, so it is refused (``DemoMismatch``); use a fresh ``JICAI_HOME``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Count

from jicai.accounts.models import User
from jicai.accounts.permissions import ROLE_LABELS, RoleName
from jicai.core import audit
from jicai.core.tenancy import Scope, use_scope
from jicai.demo.province import DEMO_AS_OF, Province
from jicai.facts.query import FactQuery
from jicai.facts.schemas import FACT_TABLES
from jicai.imports.datasets import get_spec
from jicai.imports.engine import ImportResult, run_import
from jicai.monitoring.cycle import CycleResult, run_cycle
from jicai.monitoring.models import Alert, AlertStatus
from jicai.organizations.models import Department, Institution
from jicai.policy.profile import ProfileLibrary
from jicai.programme.models import Agreement, Item

DEMO_PASSWORD = "jicai-demo-2026"  # noqa: S105 - printed to the user on purpose
DEMO_REGION = "460000"
DEMO_HOSPITAL = "H46010600001"
MARKER = "demo.json"
"""Written into JICAI_HOME after a load: which province it holds (seed, as-of date, size)."""


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


class DemoMismatch(Exception):
    """JICAI_HOME already holds a demo province generated with other settings."""


class DemoImportError(Exception):
    """A generated file was rejected by the importer (a bug in the generator)."""

    def __init__(self, result: ImportResult) -> None:
        first = result.errors[0]
        super().__init__(f"{result.filename}: line {first.line}, {first.column}: {first.message_en}")
        self.result = result


def _home(home: Path | None) -> Path:
    return Path(home) if home is not None else Path(settings.JICAI_HOME)


def _settings(province: Province) -> dict[str, object]:
    return {"seed": province.seed, "as_of": province.as_of.isoformat(), "institutions": len(province.institutions)}


def check_marker(province: Province, home: Path | None = None) -> None:
    """Refuse to load a province over a different one (they would mix)."""
    path = _home(home) / MARKER
    if not path.is_file():
        return
    stored = json.loads(path.read_text(encoding="utf-8"))
    wanted = _settings(province)
    if {k: stored.get(k) for k in wanted} != wanted:
        raise DemoMismatch(
            f"JICAI_HOME 已有另一套演示数据（{stored}），再载入 {wanted} 会混在一起；请换一个空的 JICAI_HOME。"
            f" / JICAI_HOME holds another demo province ({stored}); loading {wanted} over it would mix them:"
            " use an empty JICAI_HOME."
        )


def load_province(
    province: Province, *, home: Path | None = None, report: Callable[[ImportResult], None] | None = None
) -> list[ImportResult]:
    """Import every file of ``province`` as the operator, in dependency order; stop at a rejected file."""
    check_marker(province, home)
    scope = Scope.system("demo")
    results = []
    for file in province.files:
        result = run_import(get_spec(file.dataset), file.data, file.filename, scope)
        results.append(result)
        if report is not None:
            report(result)
        if result.errors:
            raise DemoImportError(result)
    path = _home(home) / MARKER
    path.write_text(json.dumps(_settings(province), indent=1), encoding="utf-8")
    return results


def run_demo_cycle(as_of: dt.date = DEMO_AS_OF, *, home: Path | None = None) -> CycleResult:
    """The monthly cycle for the demo's as-of date, as ``jicai cycle --as-of DATE`` runs it."""
    where = _home(home)
    return run_cycle(where, as_of, profiles=ProfileLibrary([where / "profiles"]))


@dataclass
class DemoSummary:
    institutions: int
    departments: int
    items: int
    agreements: int
    lines: dict[str, int]
    alerts: dict[str, int] = field(default_factory=dict)


def summarise(home: Path | None = None) -> DemoSummary:
    """What the demo holds: master counts, fact lines per table, open alerts per kind."""
    scope = Scope.system("demo")
    with use_scope(scope):
        counts = DemoSummary(
            institutions=Institution.objects.count(),
            departments=Department.objects.count(),
            items=Item.objects.count(),
            agreements=Agreement.objects.count(),
            lines={},
        )
        kinds = Alert.objects.filter(status=AlertStatus.OPEN).values_list("kind").annotate(n=Count("pk"))
        counts.alerts = dict(kinds)
    with FactQuery(_home(home), scope) as q:
        for name in FACT_TABLES:
            sql = f"SELECT count(*) AS n FROM {name}"  # noqa: S608 - our own table names
            counts.lines[name] = int(q.rows(sql)[0]["n"])
    return counts


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
