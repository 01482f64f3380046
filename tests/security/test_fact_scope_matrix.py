"""Facts and reports as anonymous, wrong tenant and right tenant: FactQuery, run_report, the API and the CLI.

The facts (purchases, payments, dispensing and the purchases_daily rollup) are imported once per module,
through the real importer, for four hospitals in two provinces and two cities of each (see
``facts_fixtures``); every test reads them under one user's scope and compares the rows with the
hand-written ``VISIBLE_INSTITUTIONS``. Every report name is exercised through every channel.

A report needs ``read`` on what it is computed from (``REPORT_READS``), so a department head
(dispensing and reports only) is refused every report but department-progress: ScopeError from
run_report, 403 from the API, a CLI error. Each refusal is checked beside a permitted user of the same
hospital getting rows, so that it can fail.

Behaviour pinned here as the code defines it, which may deserve a second look:

* A department scope sees its own department's dispensing and nothing of the hospital's purchases,
  payments or purchase rollups (FactQuery's predicate is FALSE for tables without a department), and
  the report layer's ``REPORT_READS`` refuses it the reports computed from them.
* ``batch=`` narrows payables to the lines of products listed in that round bought by institutions
  holding an agreement of it.
* A hospital user naming another institution gets 200 with an empty report, in every channel.
* A scope code must match ``[A-Za-z0-9_]+`` in full (a trailing newline is refused); an unsafe ASCII
  region code raises ValueError (from ``region_prefix``), not ScopeError.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb
import pytest
from deltalake import DeltaTable
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.test import Client, override_settings

from jicai.accounts.actions import do_issue_token
from jicai.accounts.models import ApiToken, User
from jicai.cli.base import EXIT_REJECTED, EXIT_USAGE, UsageError
from jicai.core.tenancy import Level, Scope, ScopeError, system_scope
from jicai.facts.query import FactQuery, scope_predicate
from jicai.facts.schemas import DISPENSING, FACT_TABLES, PAYMENTS, PURCHASES, ROLLUP_TABLES
from jicai.facts.store import snapshot_files, table_path
from jicai.monitoring import reports as reports_module
from jicai.monitoring.reports import REPORT_NAMES, ReportRequest, run_report, table_rows
from jicai.policy.profile import ProfileLibrary
from tests.conftest import PASSWORD

from . import facts_fixtures as ff
from .facts_fixtures import (
    ALL_CODES,
    AS_OF,
    BY_CODE,
    DEPARTMENT_HEAD_REPORTS,
    DEPARTMENT_OF,
    DEPARTMENT_USERS,
    HK,
    HOSPITAL_USERS,
    REGION_USERS,
    SY,
    TC,
    USERS,
    VISIBLE_INSTITUTIONS,
    XA,
    may_read,
)

REPORTS = list(REPORT_NAMES)
ROLLUPS = list(ROLLUP_TABLES)  # purchases_daily (and whatever the cycle derives besides)
VIEWS = [*FACT_TABLES, *ROLLUPS]
# Reports whose rows carry a region code (it must be the row's institution's region).
WITH_REGION = {"progress", "payables", "alerts"}
# Reports computed from the whole hospital's agreements, purchases or payments: refused to department heads.
HOSPITAL_WIDE = [n for n in REPORTS if n not in DEPARTMENT_HEAD_REPORTS]
# The hospitals with agreements in each round (a report filtered by batch holds these, or fewer).
ROUND_OF = {"HN-N7": frozenset({HK, SY}), "SX-N7": frozenset({XA, TC})}
SQLISH = [
    "' OR '1'='1",
    "%",
    "H61011200123; DROP TABLE purchases",
    "') UNION SELECT * FROM read_parquet('*') --",
    "HN-N7' --",
    "$institution",
]


# --------------------------------------------------------------------------- fixtures

# Every test is a database test, also those that use only ``fact_home``: pytest-django creates the test
# database only when a selected test asks for one, and ``fact_home`` writes the seed rows there. Without
# this, running a selection of such tests (``-k unsafe``) errors all of them on a missing table.
pytestmark = pytest.mark.django_db


@dataclasses.dataclass(frozen=True)
class FactStore:
    home: Path
    problems: tuple[str, ...]  # what went wrong building the rollups (see facts_fixtures.import_facts)


@pytest.fixture(scope="module")
def fact_store(tmp_path_factory: pytest.TempPathFactory, django_db_setup: Any, django_db_blocker: Any) -> FactStore:
    """The fact store, written once through the importer and the cycle; the database rows they
    checked codes against are rolled back (each test builds the same ones again).

    An error here would be cached and repeated for every test of the module, so only what every test
    needs (the world and the import) may raise; a failing cycle is one test's failure
    (``test_the_cycle_builds_the_rollups_of_the_matrix``), its rollups then being built directly."""
    home = tmp_path_factory.mktemp("fact_home")
    with django_db_blocker.unblock(), override_settings(JICAI_HOME=home), transaction.atomic():
        try:
            with system_scope("matrix-seed"):
                ff.build_world()
            problems = ff.import_facts(home)
        finally:
            transaction.set_rollback(True)
    return FactStore(home, tuple(problems))


@pytest.fixture(scope="module")
def fact_home(fact_store: FactStore) -> Path:
    return fact_store.home


@pytest.fixture
def facts(world: Any, settings: Any, _jicai_home: None, fact_home: Path) -> Any:
    """``world`` plus the 铜川 hospital, city bureaus, one alert per hospital, and the shared fact store."""
    with system_scope("matrix"):
        for name, row in ff.add_programme(world).items():
            setattr(world, name, row)
        ff.add_users(world)
        ff.add_alerts()
    settings.JICAI_HOME = fact_home
    return world


def home() -> Path:
    return Path(settings.JICAI_HOME)


# --------------------------------------------------------------------------- expectations


def rows_of(table: str, scope: Scope) -> list[dict[str, Any]]:
    with FactQuery(home(), scope) as q:
        return q.rows(f"SELECT * FROM {table}")


def keys(table: str, rows: list[dict[str, Any]]) -> set[str]:
    key = {"purchases": "line_id", "payments": "payment_id", "dispensing": "record_id"}[table]
    return {r[key] for r in rows}


def expected_keys(table: str, user: str) -> set[str]:
    codes = VISIBLE_INSTITUTIONS[user]
    if user in DEPARTMENT_OF and table != "dispensing":
        return set()  # a department reads its own dispensing only
    if table == "purchases":
        return ff.purchase_ids(codes)
    if table == "payments":
        return ff.payment_ids(codes)
    return ff.dispensing_ids(codes, DEPARTMENT_OF.get(user))


def assert_report_rows(name: str, user: str, rows: list[dict[str, Any]]) -> None:
    """``rows`` of report ``name`` are exactly (and non-emptily) ``user``'s territory."""
    codes = VISIBLE_INSTITUTIONS[user]
    assert rows, f"{name} as {user}: no rows, the test could not fail"
    assert {r["institution_code"] for r in rows} == codes, f"{name} as {user}"
    if name == "department-progress":
        dept = DEPARTMENT_OF.get(user)
        expected = {(c, d) for c in codes for d in BY_CODE[c].departments if dept is None or d == dept}
        assert {(r["institution_code"], r["department_code"]) for r in rows} == expected, f"{name} as {user}"
    if name == "payables":
        assert {r["line_id"] for r in rows} == ff.purchase_ids(codes), f"{name} as {user}"
    assert may_read(name, user), f"{name} as {user}: should have been refused"
    if name in WITH_REGION:
        assert all(r["region_code"] == BY_CODE[r["institution_code"]].region_code for r in rows), name


PROFILES = ProfileLibrary()  # the shipped profiles, loaded once (the store has no profiles of its own)


def report(name: str, scope: Scope, **request: Any) -> list[dict[str, Any]]:
    table = run_report(name, scope, ReportRequest(as_of=AS_OF, **request), home=home(), profiles=PROFILES)
    return table_rows(table)


def api_get(client: Client, name: str, query: str = "", **headers: Any) -> Any:
    return client.get(f"/api/v1/reports/{name}?as_of={AS_OF.isoformat()}{query}", **headers)


def api_rows(client: Client, name: str, query: str = "", **headers: Any) -> list[dict[str, Any]]:
    response = api_get(client, name, query, **headers)
    assert response.status_code == 200, (name, query, response.content[:300])
    data = response.json()
    assert data["count"] == len(data["rows"])  # default limit 1000: the whole report
    assert data["report"] == name
    return data["rows"]  # type: ignore[no-any-return]


def bearer(facts: Any, user: str) -> dict[str, str]:
    key = do_issue_token(acting=facts.scope(user), user=facts.user(user), name="matrix")
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def cli_rows(name: str, tmp_path: Path, *args: str) -> list[dict[str, Any]]:
    out = tmp_path / f"{name}.json"
    call_command("report", name, "--as-of", AS_OF.isoformat(), "--format", "json", "-o", str(out), "--quiet", *args)
    rows = json.loads(out.read_text(encoding="utf-8"))
    out.unlink()  # so that a later refusal is seen to write nothing
    return rows  # type: ignore[no-any-return]


def cli_refused(name: str, tmp_path: Path, *args: str) -> CommandError:
    """The CommandError of ``jicai report name *args``, which must write no file."""
    with pytest.raises(CommandError) as refused:
        cli_rows(name, tmp_path, *args)
    assert not (tmp_path / f"{name}.json").exists(), name
    return refused.value


# (report, user) pairs a user may read, and the ones it is refused.
PERMITTED = [(n, u) for n in REPORTS for u in USERS if may_read(n, u)]
REFUSED = [(n, u) for n in REPORTS for u in USERS if not may_read(n, u)]


def test_the_matrix_covers_every_report_and_tenant_level() -> None:
    assert set(REPORTS) == {
        "progress",
        "department-progress",
        "substitutes",
        "payables",
        "prepayments",
        "settlements",
        "alerts",
    }
    assert set(REGION_USERS) | set(HOSPITAL_USERS) | set(DEPARTMENT_USERS) | {"operator"} == set(USERS)
    assert set(SESSION_USERS) | set(TOKEN_USERS) == set(USERS)  # every user through the API
    assert ROLLUPS
    # the reads each report is computed from are the requirement's (written out in facts_fixtures)
    assert {k: frozenset(v) for k, v in reports_module.REPORT_READS.items()} == ff.REPORT_READS
    assert set(REFUSED) == {(n, u) for n in HOSPITAL_WIDE for u in DEPARTMENT_USERS}
    assert {u for _, u in PERMITTED} == set(USERS)
    # two provinces, two cities in each, two hospitals per province, two departments in one hospital
    assert {c[:2] for c in (b.region_code for b in BY_CODE.values())} == {"46", "61"}
    assert {b.region_code[:4] for b in BY_CODE.values()} == {"4601", "4602", "6101", "6102"}
    assert len(BY_CODE[HK].departments) == 2


# --------------------------------------------------------------------------- FactQuery


def opens_with_rows(home_dir: Path, scope: Scope) -> bool:
    """Whether ``scope`` opens the store and sees rows (the refusals beside can fail): purchases and
    dispensing, or for a department, which reads nothing but its own dispensing, dispensing only."""
    tables = ("dispensing",) if scope.level is Level.DEPARTMENT else ("purchases", "dispensing")
    with FactQuery(home_dir, scope) as q:
        return all(q.rows(f"SELECT * FROM {table}") for table in tables)


def test_the_cycle_builds_the_rollups_of_the_matrix(fact_store: FactStore) -> None:
    assert not fact_store.problems, "\n\n".join(fact_store.problems)
    assert all(DeltaTable.is_deltatable(str(table_path(fact_store.home, t))) for t in ROLLUP_TABLES.values())


def test_fact_query_without_a_scope_raises(fact_home: Path) -> None:
    with pytest.raises(ScopeError):
        FactQuery(fact_home, None)
    assert opens_with_rows(fact_home, Scope.system("test"))


def test_the_import_copied_each_institutions_region_onto_its_facts(facts: Any) -> None:
    system = Scope.system("test")
    for table in VIEWS:
        rows = rows_of(table, system)
        assert {r["institution_code"] for r in rows} == ALL_CODES, table
        assert all(r["region_code"] == BY_CODE[r["institution_code"]].region_code for r in rows), table


@pytest.mark.parametrize("table", ["purchases", "payments", "dispensing"])
@pytest.mark.parametrize("user", USERS)
def test_fact_views_hold_exactly_the_users_rows(facts: Any, user: str, table: str) -> None:
    rows = rows_of(table, facts.scope(user))
    assert keys(table, rows) == expected_keys(table, user)
    # non-empty (the test can fail): the user's own rows, or its hospital's for a department
    assert keys(table, rows) or keys(table, rows_of(table, facts.scope("hn_vbp")))


def test_every_rollup_holds_rows_of_every_hospital(facts: Any) -> None:
    # so that the scoped reads below can fail
    for table in ROLLUPS:
        assert {r["institution_code"] for r in rows_of(table, Scope.system("test"))} == ALL_CODES, table


@pytest.mark.parametrize("user", USERS)
def test_the_rollup_views_are_scoped_too(facts: Any, user: str) -> None:
    for table in ROLLUPS:
        rows = rows_of(table, facts.scope(user))
        visible = set() if user in DEPARTMENT_OF else VISIBLE_INSTITUTIONS[user]
        assert {r["institution_code"] for r in rows} == visible, table


# Region scopes by GB/T 2260 prefix: a province covers its cities, a city not its sibling.
REGION_CASES = {
    "460000": {HK, SY},
    "460100": {HK},
    "460108": {HK},
    "460200": {SY},
    "610000": {XA, TC},
    "610100": {XA},
    "610112": {XA},
    "610200": {TC},
    "610202": {TC},
    "610113": set(),  # a sibling district of 610112
    "460105": set(),
    "620000": set(),  # Gansu: no hospital here
    "460000 ": {HK, SY},  # surrounding blanks are stripped, not widened
    "460000\n": {HK, SY},  # a trailing newline too (region_prefix strips before the literal check)
}


@pytest.mark.parametrize(("region", "codes"), REGION_CASES.items(), ids=[repr(k) for k in REGION_CASES])
def test_region_scopes_cover_codes_by_prefix(fact_home: Path, region: str, codes: set[str]) -> None:
    scope = Scope(level=Level.REGION, region_code=region)
    with FactQuery(fact_home, scope) as q:
        for table in VIEWS:
            found = {r["institution_code"] for r in q.rows(f"SELECT institution_code FROM {table}")}
            assert found == codes, (region, table)
        # the count agrees with the rows (no aggregate path around the predicate)
        assert q.rows("SELECT count(*) AS n FROM purchases")[0]["n"] == len(ff.ALL_LINES) * len(codes)


def test_institution_scope_sees_its_institution_only(fact_home: Path) -> None:
    scope = Scope(level=Level.INSTITUTION, institution_code=SY, institution_region_code="460200")
    with FactQuery(fact_home, scope) as q:
        assert keys("purchases", q.rows("SELECT * FROM purchases")) == ff.purchase_ids({SY})
        assert keys("payments", q.rows("SELECT * FROM payments")) == ff.payment_ids({SY})
        assert keys("dispensing", q.rows("SELECT * FROM dispensing")) == ff.dispensing_ids({SY})


@pytest.mark.parametrize(("institution", "department"), [(HK, "NK01"), (HK, "SJ01"), (XA, "NK01")])
def test_department_scope_reads_its_own_dispensing_and_nothing_of_the_hospital(
    fact_home: Path, institution: str, department: str
) -> None:
    scope = Scope(level=Level.DEPARTMENT, institution_code=institution, department_code=department)
    with FactQuery(fact_home, scope) as q:
        dispensing = q.rows("SELECT * FROM dispensing")
        # NK01 exists in every hospital: the institution is part of the predicate
        assert keys("dispensing", dispensing) == ff.dispensing_ids({institution}, department)
        # purchases, payments and the rollups have no department: they are the hospital's, not its
        # departments' (scope_predicate is FALSE for them), in rows and in aggregates alike
        assert q.rows("SELECT * FROM purchases") == []
        assert q.rows("SELECT * FROM payments") == []
        assert q.rows("SELECT count(*) AS n, sum(amount) AS total FROM purchases") == [{"n": 0, "total": None}]
        for table in ROLLUPS:
            assert q.rows(f"SELECT * FROM {table}") == [], table
    # the hospital's own scope reads them (the checks above can fail)
    hospital = Scope(level=Level.INSTITUTION, institution_code=institution)
    with FactQuery(fact_home, hospital) as q:
        assert keys("purchases", q.rows("SELECT * FROM purchases")) == ff.purchase_ids({institution})
        assert keys("payments", q.rows("SELECT * FROM payments")) == ff.payment_ids({institution})
        assert keys("dispensing", q.rows("SELECT * FROM dispensing")) == ff.dispensing_ids({institution})
        for table in ROLLUPS:
            assert {r["institution_code"] for r in q.rows(f"SELECT * FROM {table}")} == {institution}, table


@pytest.mark.parametrize("table", [*FACT_TABLES.values(), *ROLLUP_TABLES.values()], ids=lambda t: t.name)
def test_scope_predicate_of_a_department_is_false_where_there_is_no_department_column(table: Any) -> None:
    dept = Scope(level=Level.DEPARTMENT, institution_code=HK, department_code="NK01")
    inst = Scope(level=Level.INSTITUTION, institution_code=HK)
    assert scope_predicate(Scope.system(), table) == "TRUE"
    # the hospital's scope: its institution, every table, no department
    assert scope_predicate(inst, table) == f"institution_code = '{HK}'"
    if "department_code" in table.columns:
        assert scope_predicate(dept, table) == f"institution_code = '{HK}' AND department_code = 'NK01'"
    else:
        assert scope_predicate(dept, table) == "FALSE"
    # the FALSE shortcut still refuses a department scope without a (safe) department code
    for bad in ("", "NK01' OR '1'='1", "NK01\n"):
        with pytest.raises(ScopeError):
            scope_predicate(dataclasses.replace(dept, department_code=bad), table)
    # which tables have a department is the schema's: of the fact tables, dispensing only
    if table.name in FACT_TABLES:
        assert ("department_code" in table.columns) == (table is DISPENSING)
    assert table not in (PURCHASES, PAYMENTS) or "department_code" not in table.columns


# Each scope without a territory, beside the same scope completed (which opens and sees rows).
INCOMPLETE_SCOPES = {
    "region-no-code": (Scope(level=Level.REGION), {"region_code": "460000"}),
    "institution-no-code": (Scope(level=Level.INSTITUTION), {"institution_code": HK}),
    # a region code does not stand in for an institution
    "institution-region-only": (Scope(level=Level.INSTITUTION, region_code="460000"), {"institution_code": HK}),
    "department-no-inst": (Scope(level=Level.DEPARTMENT, department_code="NK01"), {"institution_code": HK}),
    # no department: refused outright, also on the tables a department reads nothing of
    "department-no-dept": (Scope(level=Level.DEPARTMENT, institution_code=HK), {"department_code": "NK01"}),
}
INCOMPLETE_ERRORS = {
    "region-no-code": "region scope without a region code",
    "institution-no-code": "hospital scope without an institution",
    "institution-region-only": "hospital scope without an institution",
    "department-no-inst": "hospital scope without an institution",
    "department-no-dept": "department scope without a department",
}


@pytest.mark.parametrize(
    ("case", "scope", "completion"), [(k, *v) for k, v in INCOMPLETE_SCOPES.items()], ids=list(INCOMPLETE_SCOPES)
)
def test_scopes_without_a_territory_fail_closed(
    fact_home: Path, case: str, scope: Scope, completion: dict[str, str]
) -> None:
    with pytest.raises(ScopeError, match=INCOMPLETE_ERRORS[case]):
        FactQuery(fact_home, scope)
    assert opens_with_rows(fact_home, dataclasses.replace(scope, **completion))


UNSAFE = [
    "H46010800001' OR '1'='1",
    "H1'; DROP VIEW purchases; --",
    "H1;",
    'H1"',
    "H1 OR 1=1",
    "H1%",
    "H1\r",
    "H1\x00",
    "",
]


@pytest.mark.parametrize("value", UNSAFE, ids=repr)
def test_unsafe_institution_and_department_codes_raise_scope_error(fact_home: Path, value: str) -> None:
    with pytest.raises(ScopeError):
        FactQuery(fact_home, Scope(level=Level.INSTITUTION, institution_code=value))
    with pytest.raises(ScopeError):
        FactQuery(fact_home, Scope(level=Level.DEPARTMENT, institution_code=value, department_code="NK01"))
    with pytest.raises(ScopeError):
        FactQuery(fact_home, Scope(level=Level.DEPARTMENT, institution_code=HK, department_code=value))
    # the safe codes open and see rows (the checks above can fail)
    assert opens_with_rows(fact_home, Scope(level=Level.INSTITUTION, institution_code=HK))
    assert opens_with_rows(fact_home, Scope(level=Level.DEPARTMENT, institution_code=HK, department_code="NK01"))


# Refused scopes, each by a different check of FactQuery's constructor.
REFUSED_SCOPES = {
    "unsafe-institution": (Scope(level=Level.INSTITUTION, institution_code="H1'"), ScopeError),
    "department-without-department": (Scope(level=Level.DEPARTMENT, institution_code=HK), ScopeError),
    "unsafe-department": (Scope(level=Level.DEPARTMENT, institution_code=HK, department_code="NK01\n"), ScopeError),
    "region-without-code": (Scope(level=Level.REGION), ScopeError),
    "unicode-region": (Scope(level=Level.REGION, region_code="４６００００"), ScopeError),
    "ascii-unsafe-region": (Scope(level=Level.REGION, region_code="46;"), ValueError),
}


@pytest.mark.parametrize(("scope", "error"), REFUSED_SCOPES.values(), ids=list(REFUSED_SCOPES))
def test_a_refused_scope_closes_its_connection(
    fact_home: Path, monkeypatch: pytest.MonkeyPatch, scope: Scope, error: type[Exception]
) -> None:
    opened: list[Any] = []
    connect = duckdb.connect

    def recording_connect(*args: Any, **kwargs: Any) -> Any:
        opened.append(connect(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(duckdb, "connect", recording_connect)
    with pytest.raises(error):
        FactQuery(fact_home, scope)
    assert len(opened) == 1
    with pytest.raises(duckdb.ConnectionException):
        opened[0].execute("SELECT 1")
    # a permitted scope's connection is open (and reads rows) until the query is closed
    with FactQuery(fact_home, Scope(level=Level.INSTITUTION, institution_code=HK)) as q:
        assert q.con is opened[1]
        assert opened[1].execute("SELECT count(*) FROM purchases").fetchall() == [(len(ff.ALL_LINES),)]
    with pytest.raises(duckdb.ConnectionException):
        opened[1].execute("SELECT 1")


def test_a_code_with_a_newline_is_refused(facts: Any) -> None:
    # the literal check matches the whole code: "$" alone would let a final "\n" through
    for scope in (
        Scope(level=Level.INSTITUTION, institution_code=f"{HK}\n"),
        Scope(level=Level.DEPARTMENT, institution_code=f"{HK}\n", department_code="NK01"),
        Scope(level=Level.DEPARTMENT, institution_code=HK, department_code="NK01\n"),
        Scope(level=Level.INSTITUTION, institution_code=f"{HK}\n\n"),
        Scope(level=Level.INSTITUTION, institution_code="H4601\n0800001"),
    ):
        with pytest.raises(ScopeError):
            FactQuery(home(), scope)
    # the same scopes without the newline do see rows (the checks above can fail)
    with FactQuery(home(), Scope(level=Level.DEPARTMENT, institution_code=HK, department_code="NK01")) as q:
        assert keys("dispensing", q.rows("SELECT * FROM dispensing")) == ff.dispensing_ids({HK}, "NK01")
    with FactQuery(home(), Scope(level=Level.INSTITUTION, institution_code=HK)) as q:
        assert keys("purchases", q.rows("SELECT * FROM purchases")) == ff.purchase_ids({HK})


@pytest.mark.parametrize("value", ["46' OR '1'='1", "46;", "46%", "4600'0", "46_000", "46 000", "46000O"], ids=repr)
def test_unsafe_ascii_region_codes_raise_value_error_before_sql(fact_home: Path, value: str) -> None:
    # region_prefix() refuses anything but six digits with a ValueError (module docstring)
    with pytest.raises(ValueError, match="not a 6-digit region code"):
        FactQuery(fact_home, Scope(level=Level.REGION, region_code=value))
    assert opens_with_rows(fact_home, Scope(level=Level.REGION, region_code="460000"))


@pytest.mark.parametrize("value", ["４６００００", "٤٦٠٠٠٠"], ids=repr)
def test_unicode_digit_region_codes_fail_the_literal_check(fact_home: Path, value: str) -> None:
    # str.isdigit() accepts them, so region_prefix() passes; the ASCII-only literal check refuses them
    assert value.isdigit()
    with pytest.raises(ScopeError, match="unsafe scope value"):
        FactQuery(fact_home, Scope(level=Level.REGION, region_code=value))
    assert opens_with_rows(fact_home, Scope(level=Level.REGION, region_code="460000"))


def test_reference_relations_cannot_replace_the_scoped_views(fact_home: Path) -> None:
    with FactQuery(fact_home, Scope(level=Level.INSTITUTION, institution_code=SY)) as q:
        for name in (*VIEWS, "x; DROP VIEW purchases"):
            with pytest.raises(ValueError, match="bad relation name"):
                q.register(name, [{"institution_code": HK}])
        assert {r["institution_code"] for r in q.rows("SELECT * FROM purchases")} == {SY}


@pytest.mark.parametrize("user", ["sy_admin", "xa_admin", "tc_vbp", "hn_head2"])
def test_views_over_chosen_files_are_scoped_too(facts: Any, user: str) -> None:
    # The incremental computations read just the files a commit added (FactQuery.files_view).
    if not hasattr(FactQuery, "files_view"):
        pytest.skip("FactQuery.files_view is not part of this version")
    with FactQuery(home(), facts.scope(user)) as q, FactQuery(home(), facts.scope("operator")) as everything:
        for table in FACT_TABLES.values():
            _, files = snapshot_files(home(), table)
            q.files_view("chosen", table.name, files)
            rows = q.rows("SELECT * FROM chosen")
            assert keys(table.name, rows) == expected_keys(table.name, user), table.name
            # the same files hold rows of every hospital (the check above can fail, also when it is empty)
            everything.files_view("chosen", table.name, files)
            assert {r["institution_code"] for r in everything.rows("SELECT * FROM chosen")} == ALL_CODES
        for bad in ("purchases", "x; DROP VIEW purchases"):
            with pytest.raises(ValueError, match="bad view name"):
                q.files_view(bad, "purchases", [])
        with pytest.raises(ValueError, match="unknown fact table"):
            q.files_view("chosen", "read_parquet('*')", [])


def test_an_empty_store_is_scoped_and_fails_closed_too(tmp_path: Path) -> None:
    with pytest.raises(ScopeError):
        FactQuery(tmp_path, None)
    with pytest.raises(ScopeError):
        FactQuery(tmp_path, Scope(level=Level.REGION))
    with FactQuery(tmp_path, Scope(level=Level.REGION, region_code="460000")) as q:
        assert q.rows("SELECT count(*) AS n FROM purchases")[0]["n"] == 0


# --------------------------------------------------------------------------- run_report

# Wrong-tenant requests: each user names institutions outside its territory, one nearby (same
# province or city) and one in the other province where there is one.
FOREIGN: dict[str, tuple[str, ...]] = {
    "hn_vbp": (SY, XA),
    "hn_head2": (TC,),
    "sy_admin": (HK,),
    "xa_admin": (TC,),
}


def pair_ids(pairs: list[tuple[str, str]]) -> list[str]:
    return [f"{name}-{user}" for name, user in pairs]


def without(scope: Scope, resource: str) -> Scope:
    """``scope`` less ``read`` on ``resource`` (which it must hold, else removing it would prove nothing)."""
    permission = f"{scope.level.value}:{resource}:read"
    assert permission in scope.permissions, permission
    return dataclasses.replace(scope, permissions=scope.permissions - {permission})


def refusal_pattern(name: str, scope: Scope) -> str:
    """The ScopeError message for ``scope`` reading report ``name``: it names a read the scope lacks."""
    lacking = sorted(r for r in ff.REPORT_READS[name] if not scope.can(r, "read"))
    assert lacking, name
    return rf"may not read ({'|'.join(lacking)}), which report {name} is computed from"


def assert_batch_rows(name: str, user: str, batch: str, rows: list[dict[str, Any]]) -> None:
    """``rows`` of report ``name`` for ``batch`` (a round ``user`` has all its hospitals in)."""
    assert rows, f"{name} as {user} for {batch}: no rows, the test could not fail"
    codes = VISIBLE_INSTITUTIONS[user] & ROUND_OF[batch]
    assert {r["institution_code"] for r in rows} == codes, (name, user, batch)
    if name == "payables":  # the round's products (not the plain one, line 4) bought by its agreement holders
        assert {r["line_id"] for r in rows} == ff.purchase_ids(codes, ff.PROGRAMME_LINES), (user, batch)
    if "batch_code" in rows[0]:
        assert {r["batch_code"] for r in rows} == {batch}, (name, user)


@pytest.mark.parametrize(("name", "user"), PERMITTED, ids=pair_ids(PERMITTED))
def test_run_report_holds_exactly_the_users_territory(facts: Any, name: str, user: str) -> None:
    assert_report_rows(name, user, report(name, facts.scope(user)))


@pytest.mark.parametrize("name", REPORTS)
def test_run_report_refuses_a_scope_without_report_permission(facts: Any, name: str) -> None:
    bare = Scope(level=Level.INSTITUTION, institution_code=HK, institution_id=facts.hn_inst.pk)
    with pytest.raises(ScopeError, match="may not read reports"):
        report(name, bare)
    vbp = facts.scope("hn_vbp")
    with pytest.raises(ScopeError, match="may not read reports"):
        report(name, without(vbp, "report"))
    assert_report_rows(name, "hn_vbp", report(name, vbp))  # with it: the report (the checks above can fail)


@pytest.mark.parametrize("user", ["operator", "hn_admin", "sy_admin", "hn_vbp", "tc_vbp"])
@pytest.mark.parametrize("name", REPORTS)
def test_run_report_needs_read_on_what_the_report_is_computed_from(facts: Any, name: str, user: str) -> None:
    scope = facts.scope(user)
    assert_report_rows(name, user, report(name, scope))  # every read held: the report
    if scope.is_system:  # the operator holds every permission implicitly; there is nothing to take away
        return
    for resource in ff.REPORT_READS[name]:
        with pytest.raises(ScopeError, match=rf"may not read {resource}, which report {name} is computed from"):
            report(name, without(scope, resource))
    # an activity the report is not computed from is not needed for it
    for resource in {"agreement", "purchase", "payment", "dispensing"} - ff.REPORT_READS[name]:
        assert report(name, without(scope, resource)), (name, user, resource)


@pytest.mark.parametrize(("name", "user"), REFUSED, ids=pair_ids(REFUSED))
def test_department_heads_are_refused_every_hospital_wide_report(
    facts: Any, client: Client, tmp_path: Path, name: str, user: str
) -> None:
    head = facts.scope(user)
    assert head.can("report", "read")
    assert head.can("dispensing", "read")
    pattern = refusal_pattern(name, head)
    # run_report, also when the request names the head's own hospital or round
    for request in ({}, {"institution": HK}, {"batch": ff.HOSPITALS["HK"].batch}):
        with pytest.raises(ScopeError, match=pattern):
            report(name, head, **request)
    # the API, by token and by session
    for query in ("", f"&institution={HK}"):
        response = api_get(client, name, query, **bearer(facts, user))
        assert response.status_code == 403, (name, user, query)
        assert response.json()["code"] == "scope.denied"
        assert "rows" not in response.json()
    login(client, user)
    assert api_get(client, name).status_code == 403
    # the CLI: a "not allowed" error, no file
    error = cli_refused(name, tmp_path, "--as", user)
    assert error.returncode == EXIT_REJECTED
    assert "not allowed" in str(error)
    assert re.search(pattern, str(error)), str(error)
    # the VBP office of the same hospital gets the report in each channel (the refusals above can fail)
    assert_report_rows(name, "hn_vbp", report(name, facts.scope("hn_vbp")))
    assert_report_rows(name, "hn_vbp", api_rows(client, name, **bearer(facts, "hn_vbp")))
    assert_report_rows(name, "hn_vbp", cli_rows(name, tmp_path, "--as", "hn_vbp"))


@pytest.mark.parametrize("user", DEPARTMENT_USERS)
def test_department_heads_get_their_own_department_in_department_progress(
    facts: Any, client: Client, tmp_path: Path, user: str
) -> None:
    name = "department-progress"
    head = facts.scope(user)
    login(client, user)
    channels = {
        "run_report": report(name, head),
        "api session": api_rows(client, name),
        "api token": api_rows(client, name, **bearer(facts, user)),
        "cli": cli_rows(name, tmp_path, "--as", user),
    }
    for channel, rows in channels.items():
        assert_report_rows(name, user, rows)  # exactly (海南省人民医院, its department), non-empty
        assert {r["department_code"] for r in rows} == {DEPARTMENT_OF[user]}, channel
        assert rows == channels["run_report"], channel  # the same report in every channel
        # a department's own target is not derived for it (it would see only its own history)
        assert {r["target_qty"] for r in rows} == {None}, channel
    # its own round narrows nothing away; another hospital or round is empty
    assert report(name, head, batch=ff.HOSPITALS["HK"].batch) == channels["run_report"]
    assert report(name, head, institution=SY) == []
    assert report(name, head, batch="SX-N7") == []
    # the hospital's VBP office sees both departments: the limit is the head's scope
    both = {(r["institution_code"], r["department_code"]) for r in report(name, facts.scope("hn_vbp"))}
    assert both == {(HK, "NK01"), (HK, "SJ01")}


@pytest.mark.parametrize("name", REPORTS)
def test_run_report_asking_for_a_foreign_institution_gets_nothing(facts: Any, name: str) -> None:
    for user, codes in FOREIGN.items():
        for code in codes:
            if may_read(name, user):
                assert report(name, facts.scope(user), institution=code) == [], (name, user, code)
            else:  # refused before any filter
                with pytest.raises(ScopeError):
                    report(name, facts.scope(user), institution=code)
    # naming one's own institution narrows, it does not blank (so the checks above can fail)
    assert_report_rows(name, "hn_vbp", report(name, facts.scope("hn_vbp"), institution=HK))
    assert {r["institution_code"] for r in report(name, facts.scope("sx_admin"), institution=TC)} == {TC}


@pytest.mark.parametrize("name", REPORTS)
def test_run_report_filters_with_sql_or_unknown_values_are_empty(facts: Any, name: str) -> None:
    # As the operator, whose unfiltered report holds every row: a value spliced into SQL would show.
    operator = facts.scope("operator")
    for value in [*SQLISH[:4], "XX-N9", "H99999999999"]:
        assert report(name, operator, institution=value) == [], (name, value)
        assert report(name, operator, batch=value) == [], (name, value)
    assert_report_rows(name, "operator", report(name, operator))  # unfiltered: rows (the checks can fail)


@pytest.mark.parametrize("name", REPORTS)
def test_run_report_a_real_batch_narrows_and_does_not_blank(facts: Any, name: str) -> None:
    operator = facts.scope("operator")
    if name == "payables":  # unfiltered: every hospital's lines, the plain product's too
        assert {r["line_id"] for r in report(name, operator)} == ff.purchase_ids(ALL_CODES)
    for batch, codes in ROUND_OF.items():
        rows = report(name, operator, batch=batch)
        assert rows, (name, batch)
        assert {r["institution_code"] for r in rows} == codes, (name, batch)
        if name == "payables":
            # the round's products (not line 4) bought by the round's agreement holders: every hospital
            # buys the same products, but the other province's hospitals hold no agreement of the round
            assert {r["line_id"] for r in rows} == ff.purchase_ids(codes, ff.PROGRAMME_LINES), batch
        if "batch_code" in rows[0]:
            assert {r["batch_code"] for r in rows} == {batch}, (name, batch)
    # a scoped user: its own round keeps its rows (all its hospitals are in it), another round blanks
    rounds = (("hn_admin", "HN-N7", "SX-N7"), ("hn_vbp", "HN-N7", "SX-N7"), ("tc_vbp", "SX-N7", "HN-N7"))
    for user, own, other in rounds:
        assert_batch_rows(name, user, own, report(name, facts.scope(user), batch=own))
        assert report(name, facts.scope(user), batch=other) == [], (name, user, other)


# --------------------------------------------------------------------------- API


def login(client: Client, user: str) -> None:
    response = client.post("/login/", {"username": user, "password": PASSWORD})
    assert response.status_code == 302, user


@pytest.mark.parametrize("name", [*REPORTS, "nonsense"])
def test_api_reports_refuse_anonymous_and_bad_credentials(facts: Any, client: Client, name: str) -> None:
    assert api_get(client, name).status_code == 401
    for header in ("Bearer jc_not-a-real-token", "Bearer ", "Token abc", "jc_abc"):
        assert api_get(client, name, HTTP_AUTHORIZATION=header).status_code == 401, header
    # a revoked token and a deactivated owner's token are refused as well; valid before (the checks can fail)
    known = 200 if name in REPORTS else 404
    auth = bearer(facts, "hn_vbp")
    assert api_get(client, name, **auth).status_code == known
    ApiToken.objects.filter(user=facts.user("hn_vbp")).update(revoked=True)
    assert api_get(client, name, **auth).status_code == 401
    auth = bearer(facts, "sx_vbp")
    assert api_get(client, name, **auth).status_code == known
    User.objects.filter(username="sx_vbp").update(is_active=False)
    assert api_get(client, name, **auth).status_code == 401


@pytest.mark.parametrize("name", REPORTS)
def test_api_session_of_a_deactivated_user_is_refused(facts: Any, client: Client, name: str) -> None:
    login(client, "sy_admin")
    assert_report_rows(name, "sy_admin", api_rows(client, name))
    User.objects.filter(username="sy_admin").update(is_active=False)
    assert api_get(client, name).status_code == 401


# Every user through the API, by session or by token (some by both); run_report covers each one already.
SESSION_USERS = ("operator", "hn_admin", "hn_viewer", "sy_admin", "sx_admin", "hn_vbp", "sx_vbp", "hn_head")
TOKEN_USERS = ("hn_admin", "xa_admin", "tc_admin", "hn2_vbp", "tc_vbp", "hn_head2")
SESSION_PAIRS = [(n, u) for n, u in PERMITTED if u in SESSION_USERS]
TOKEN_PAIRS = [(n, u) for n, u in PERMITTED if u in TOKEN_USERS]


@pytest.mark.parametrize(("name", "user"), SESSION_PAIRS, ids=pair_ids(SESSION_PAIRS))
def test_api_session_login_sees_exactly_its_territory(facts: Any, client: Client, name: str, user: str) -> None:
    login(client, user)
    assert_report_rows(name, user, api_rows(client, name))


@pytest.mark.parametrize(("name", "user"), TOKEN_PAIRS, ids=pair_ids(TOKEN_PAIRS))
def test_api_bearer_token_sees_exactly_its_owners_territory(facts: Any, client: Client, name: str, user: str) -> None:
    assert_report_rows(name, user, api_rows(client, name, **bearer(facts, user)))


@pytest.mark.parametrize("name", REPORTS)
def test_api_bearer_token_wins_over_a_session_of_another_tenant(facts: Any, client: Client, name: str) -> None:
    login(client, "hn_admin")
    assert_report_rows(name, "sx_vbp", api_rows(client, name, **bearer(facts, "sx_vbp")))


@pytest.mark.parametrize("name", REPORTS)
def test_api_asking_for_a_foreign_institution_or_round_gets_an_empty_report(
    facts: Any, client: Client, name: str
) -> None:
    for user, codes in FOREIGN.items():
        auth = bearer(facts, user)
        for code in codes:
            response = api_get(client, name, f"&institution={code}", **auth)
            if not may_read(name, user):  # refused before any filter
                assert response.status_code == 403, (name, user, code)
                continue
            assert response.status_code == 200, (name, user, code)
            assert response.json()["count"] == 0, (name, user, code)
            assert response.json()["rows"] == [], (name, user, code)
    # a foreign round is empty too; the own institution and round have rows (the checks above can fail)
    auth = bearer(facts, "hn_vbp")
    assert api_rows(client, name, "&batch=SX-N7", **auth) == [], name
    assert_report_rows(name, "hn_vbp", api_rows(client, name, f"&institution={HK}", **auth))
    assert_batch_rows(name, "hn_vbp", "HN-N7", api_rows(client, name, "&batch=HN-N7", **auth))


@pytest.mark.parametrize("name", REPORTS)
def test_api_filters_with_sql_values_cannot_widen_the_scope(facts: Any, client: Client, name: str) -> None:
    auth = bearer(facts, "hn_vbp")
    for value in SQLISH[3:]:
        assert api_rows(client, name, f"&institution={quote(value)}", **auth) == [], value
        assert api_rows(client, name, f"&batch={quote(value)}", **auth) == [], value
    for bad in ("2023-04-30' OR '1'='1", "2023-04-30;", "yesterday"):
        assert client.get(f"/api/v1/reports/{name}?as_of={quote(bad)}", **auth).status_code == 400, bad
    # paging slices the scoped table; it cannot reach past it
    response = api_get(client, name, "&limit=100000&offset=-5", **auth)
    assert response.status_code == 200
    assert_report_rows(name, "hn_vbp", response.json()["rows"])
    # and the store is untouched afterwards
    assert keys("purchases", rows_of("purchases", Scope.system("check"))) == ff.purchase_ids(ALL_CODES)


def test_api_unknown_report_is_404_for_everyone_signed_in(facts: Any, client: Client) -> None:
    auth = bearer(facts, "hn_vbp")
    for name in ("nonsense", "purchases", "alerts%27%20OR%201%3D1"):
        assert api_get(client, name, **auth).status_code == 404, name
    assert api_get(client, "alerts", **auth).status_code == 200  # a known one is found (the checks can fail)


def test_api_account_without_a_territory_gets_403(facts: Any, client: Client) -> None:
    with system_scope("test"):
        broken = User(username="broken", role="bureau_admin", region_code="")
        broken.set_password(PASSWORD)
        broken.save()
    client.force_login(broken)
    for name in REPORTS:
        assert api_get(client, name).status_code == 403, name
    client.force_login(facts.user("hn_admin"))  # the same role with a territory gets its reports
    for name in REPORTS:
        assert_report_rows(name, "hn_admin", api_rows(client, name))


# --------------------------------------------------------------------------- CLI

CLI_USERS = ("operator", "sy_admin", "sx_admin", "xa_admin", "hn_vbp", "tc_vbp", "hn_head2")
CLI_PAIRS = [(n, u) for n, u in PERMITTED if u in CLI_USERS]


@pytest.mark.parametrize(("name", "user"), CLI_PAIRS, ids=pair_ids(CLI_PAIRS))
def test_cli_report_as_a_user_holds_exactly_its_territory(facts: Any, tmp_path: Path, name: str, user: str) -> None:
    args = () if user == "operator" else ("--as", user)  # no --as: the operator
    assert_report_rows(name, user, cli_rows(name, tmp_path, *args))


@pytest.mark.parametrize("name", REPORTS)
def test_cli_report_for_a_foreign_institution_round_or_sql_value_is_empty(
    facts: Any, tmp_path: Path, name: str
) -> None:
    assert cli_rows(name, tmp_path, "--as", "hn_vbp", "--institution", SY) == []
    assert cli_rows(name, tmp_path, "--as", "xa_admin", "--institution", TC) == []
    assert cli_rows(name, tmp_path, "--as", "hn_vbp", "--batch", "SX-N7") == []
    for value in ("' OR '1'='1", "XX-N9"):
        assert cli_rows(name, tmp_path, "--as", "hn_vbp", "--institution", value) == [], value
        assert cli_rows(name, tmp_path, "--as", "hn_vbp", "--batch", value) == [], value
    # the user's own institution and round have rows (the checks above can fail)
    assert_report_rows(name, "hn_vbp", cli_rows(name, tmp_path, "--as", "hn_vbp", "--institution", HK))
    assert_batch_rows(name, "hn_vbp", "HN-N7", cli_rows(name, tmp_path, "--as", "hn_vbp", "--batch", "HN-N7"))


def test_cli_report_to_standard_output_is_scoped_too(facts: Any, capsysbinary: Any) -> None:
    for name in REPORTS:
        call_command("report", name, "--as", "tc_vbp", "--as-of", AS_OF.isoformat(), "--format", "json")
        assert_report_rows(name, "tc_vbp", json.loads(capsysbinary.readouterr().out))
    call_command("report", "payables", "--as", "tc_vbp", "--as-of", AS_OF.isoformat(), "--format", "csv")
    text = capsysbinary.readouterr().out.decode("utf-8-sig")
    assert "TC-L1" in text
    assert not any(f"{tag}-L" in text for tag in ("HK", "SY", "XA"))


@pytest.mark.parametrize("name", REPORTS)
def test_cli_refuses_unknown_and_inactive_users(facts: Any, tmp_path: Path, name: str) -> None:
    unknown = cli_refused(name, tmp_path, "--as", "nobody")
    assert isinstance(unknown, UsageError)
    assert unknown.returncode == EXIT_USAGE
    assert "no active user 'nobody'" in str(unknown)
    assert_report_rows(name, "hn_vbp", cli_rows(name, tmp_path, "--as", "hn_vbp"))  # active: the report
    User.objects.filter(username="hn_vbp").update(is_active=False)
    inactive = cli_refused(name, tmp_path, "--as", "hn_vbp")
    assert inactive.returncode == EXIT_USAGE
    assert "no active user 'hn_vbp'" in str(inactive)


def test_cli_account_without_a_territory_is_a_usage_error(facts: Any, tmp_path: Path) -> None:
    with system_scope("test"):
        for username, region in (("broken", ""), ("broken46", "46"), ("brokenxx", "46000X")):
            User(username=username, role="bureau_admin", region_code=region).save()
    for name in REPORTS:
        for username in ("broken", "broken46", "brokenxx"):
            error = cli_refused(name, tmp_path, "--as", username)
            assert isinstance(error, UsageError), (name, username)
            assert error.returncode == EXIT_USAGE
            assert f"user {username!r} has no valid territory" in str(error)
    # the same role with a territory gets its reports (the checks above can fail)
    for name in REPORTS:
        assert_report_rows(name, "hn_admin", cli_rows(name, tmp_path, "--as", "hn_admin"))


# Hospital accounts whose User.scope() raises ValidationError: (role, department of, report, a working
# account of the role). A department of 三亚's hospital does not make a head of 海南省人民医院.
BROKEN_HOSPITAL_ACCOUNTS = {
    "vbp-without-institution": ("vbp_office", None, "progress", "hn_vbp"),
    "head-without-department": ("department_head", None, "department-progress", "hn_head2"),
    "head-of-another-hospitals-department": ("department_head", "hn2_dept", "department-progress", "hn_head2"),
}


@pytest.mark.parametrize(
    ("role", "department", "name", "working"), BROKEN_HOSPITAL_ACCOUNTS.values(), ids=list(BROKEN_HOSPITAL_ACCOUNTS)
)
def test_cli_hospital_account_without_a_territory_is_a_usage_error(
    facts: Any, tmp_path: Path, role: str, department: str | None, name: str, working: str
) -> None:
    with system_scope("test"):
        User(
            username="nowhere",
            role=role,
            institution=facts.hn_inst if role == "department_head" else None,
            department=getattr(facts, department) if department else None,
        ).save()
    error = cli_refused(name, tmp_path, "--as", "nowhere")
    assert isinstance(error, UsageError)
    assert error.returncode == EXIT_USAGE
    assert "user 'nowhere' has no valid territory" in str(error)
    # an account of the same role with a territory gets the report (the check above can fail)
    assert_report_rows(name, working, cli_rows(name, tmp_path, "--as", working))
