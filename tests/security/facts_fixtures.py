"""Facts for the fact/report scope matrix: four hospitals in two provinces, written through the importer.

Territory (GB/T 2260): Hainan 460000 with 海口 (460100: 460108) and 三亚 (460200); Shaanxi 610000 with
西安 (610100: 610112) and 铜川 (610200: 610202). Two institutions in each province, two departments
(NK01, SJ01) in 海南省人民医院, and a department NK01 in every hospital, so a department code alone
never identifies a tenant.

Every hospital gets the same shape of data, tagged in its keys (``HK-L1``, ``SY-NK01-D1`` …), so that a
report row or a fact row always tells whose it is. Purchase lines 1–3 are of products listed in both
rounds (HN-N7 and SX-N7), bought by every hospital, but each hospital holds agreements of its own
province's round only; line 4 is of a product listed in no round. So ``batch=`` visibly narrows payables
both ways: by product (line 4 goes) and by agreement holder (the other province's lines go).
``VISIBLE_INSTITUTIONS``, ``REPORT_READS`` and ``DEPARTMENT_HEAD_REPORTS`` are the expected
answers, written out by hand from the requirement (not computed by the code under test).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.conftest import csv_bytes

P_SELECTED = "XC10AAA067A001020101187"  # selected in HN-N7 and SX-N7 (pack of 7)
P_OTHER = "XC08CAA014A001010100001"  # substitute in HN-N7, same generic in SX-N7
P_PLAIN = "XC01AAA001A001010100009"  # listed in no round (bought outside the programme)
AS_OF = dt.date(2023, 4, 30)
PERIOD = {"period_start": dt.date(2022, 11, 1), "period_end": dt.date(2023, 10, 31)}


@dataclass(frozen=True)
class Hospital:
    tag: str
    code: str
    region_code: str
    batch: str
    departments: tuple[str, ...]


HOSPITALS: dict[str, Hospital] = {
    "HK": Hospital("HK", "H46010800001", "460108", "HN-N7", ("NK01", "SJ01")),  # world.hn_inst
    "SY": Hospital("SY", "H46020000002", "460200", "HN-N7", ("NK01",)),  # world.hn_inst2
    "XA": Hospital("XA", "H61011200123", "610112", "SX-N7", ("NK01",)),  # world.sx_inst
    "TC": Hospital("TC", "H61020200001", "610202", "SX-N7", ("NK01",)),  # added here
}
BY_CODE = {h.code: h for h in HOSPITALS.values()}
ALL_CODES = frozenset(BY_CODE)
HK, SY, XA, TC = (HOSPITALS[t].code for t in ("HK", "SY", "XA", "TC"))

# Which hospitals' rows each user must see (facts and reports alike).
VISIBLE_INSTITUTIONS: dict[str, frozenset[str]] = {
    "operator": ALL_CODES,
    "hn_admin": frozenset({HK, SY}),  # province 460000 covers 4601xx and 4602xx
    "hn_viewer": frozenset({HK, SY}),
    "sy_admin": frozenset({SY}),  # city 460200 does not cover 460108
    "sx_admin": frozenset({XA, TC}),  # province 610000 covers 6101xx and 6102xx
    "xa_admin": frozenset({XA}),  # city 610100 does not cover 610202
    "tc_admin": frozenset({TC}),  # city 610200 does not cover 610112
    "hn_vbp": frozenset({HK}),
    "hn2_vbp": frozenset({SY}),
    "sx_vbp": frozenset({XA}),
    "tc_vbp": frozenset({TC}),
    "hn_head": frozenset({HK}),  # department NK01 of 海南省人民医院
    "hn_head2": frozenset({HK}),  # department SJ01 of 海南省人民医院
}
# The department a department head's dispensing is limited to.
DEPARTMENT_OF = {"hn_head": "NK01", "hn_head2": "SJ01"}
USERS = tuple(VISIBLE_INSTITUTIONS)
REGION_USERS = ("hn_admin", "hn_viewer", "sy_admin", "sx_admin", "xa_admin", "tc_admin")
HOSPITAL_USERS = ("hn_vbp", "hn2_vbp", "sx_vbp", "tc_vbp")
DEPARTMENT_USERS = ("hn_head", "hn_head2")

# What each report is computed from: reading it needs ``read`` on each of these besides ``report``.
REPORT_READS: dict[str, frozenset[str]] = {
    "progress": frozenset({"agreement", "purchase"}),
    "department-progress": frozenset({"dispensing"}),
    "substitutes": frozenset({"agreement", "purchase"}),
    "payables": frozenset({"purchase", "payment"}),
    "prepayments": frozenset({"agreement", "purchase"}),
    "settlements": frozenset({"agreement", "purchase"}),
    "alerts": frozenset({"agreement"}),
}
# A department head reads dispensing (and reports) only: the one report it may read. Every other
# report is computed from the whole hospital's agreements, purchases or payments and is refused.
DEPARTMENT_HEAD_REPORTS = frozenset({"department-progress"})


def may_read(report: str, user: str) -> bool:
    """Whether ``user`` may read ``report`` at all (otherwise: ScopeError, HTTP 403, CLI error)."""
    return user not in DEPARTMENT_USERS or report in DEPARTMENT_HEAD_REPORTS


PROGRAMME_LINES = (1, 2, 3)  # purchase lines of products listed in both rounds
ALL_LINES = (*PROGRAMME_LINES, 4)  # line 4: P_PLAIN, in no round


def purchase_ids(codes: frozenset[str] | set[str], lines: tuple[int, ...] = ALL_LINES) -> set[str]:
    return {f"{BY_CODE[c].tag}-L{n}" for c in codes for n in lines}


def payment_ids(codes: frozenset[str] | set[str]) -> set[str]:
    return {f"{BY_CODE[c].tag}-PAY1" for c in codes}


def dispensing_ids(codes: frozenset[str] | set[str], department: str | None = None) -> set[str]:
    return {
        f"{BY_CODE[c].tag}-{d}-D{n}"
        for c in codes
        for d in BY_CODE[c].departments
        if department is None or d == department
        for n in (0, 1)
    }


# --------------------------------------------------------------------------- the files imported


def purchases_file() -> bytes:
    lines = ["line_id,institution_code,product_code,ordered_on,accepted_on,qty,unit_price,amount"]
    for h in HOSPITALS.values():
        lines += [
            f"{h.tag}-L1,{h.code},{P_SELECTED},2022-11-10,2022-11-15,1000,0.34,340.00",
            f"{h.tag}-L2,{h.code},{P_SELECTED},2023-02-10,2023-02-15,500,0.34,170.00",
            f"{h.tag}-L3,{h.code},{P_OTHER},2023-03-05,2023-03-10,300,0.20,60.00",
            f"{h.tag}-L4,{h.code},{P_PLAIN},2023-03-20,2023-03-25,50,1.00,50.00",
        ]
    return csv_bytes("\n".join(lines))


def payments_file() -> bytes:
    lines = ["payment_id,line_id,institution_code,paid_on,amount"]
    lines += [f"{h.tag}-PAY1,{h.tag}-L1,{h.code},2022-12-20,340.00" for h in HOSPITALS.values()]
    return csv_bytes("\n".join(lines))


def dispensing_file() -> bytes:
    lines = ["record_id,institution_code,department_code,dispensed_on,product_code,qty,amount"]
    for h in HOSPITALS.values():
        for dept in h.departments:
            # one line in the reference window before the agreement year, one inside it
            lines += [
                f"{h.tag}-{dept}-D0,{h.code},{dept},2022-06-10,{P_SELECTED},100,34.00",
                f"{h.tag}-{dept}-D1,{h.code},{dept},2023-01-10,{P_SELECTED},80,27.20",
            ]
    return csv_bytes("\n".join(lines))


# --------------------------------------------------------------------------- database rows


def add_programme(world: Any) -> dict[str, Any]:
    """Rows beyond ``world``: the 铜川 hospital, a department NK01 in 三亚, agreements of all four
    hospitals, the selected product of SX-N7, the non-selected product of both rounds and a product
    listed in no round."""
    from jicai.catalog.models import Product
    from jicai.organizations.models import Department, Institution
    from jicai.programme.models import Agreement, NonSelectedProduct, SelectedProduct

    Product.objects.create(
        code=P_PLAIN, generic_name="维生素C片", dosage_form="片剂", strength="100mg", pack_size=100, min_unit="片"
    )

    tc_inst = Institution.objects.create(
        code=TC, name="铜川市人民医院", region_code=HOSPITALS["TC"].region_code, kind="public", level=3
    )
    rows = {
        "tc_inst": tc_inst,
        "tc_dept": Department.objects.create(institution=tc_inst, code="NK01", name="心内科"),
        "hn2_dept": Department.objects.create(institution=world.hn_inst2, code="NK01", name="心内科"),
        "hn2_agreement": Agreement.objects.create(
            batch=world.hn_batch, item=world.hn_item, institution=world.hn_inst2, year=1, agreed_qty=5000, **PERIOD
        ),
        "tc_agreement": Agreement.objects.create(
            batch=world.sx_batch, item=world.sx_item, institution=tc_inst, year=1, agreed_qty=8000, **PERIOD
        ),
        "sx_sel": SelectedProduct.objects.create(
            batch=world.sx_batch,
            product=world.product,
            item=world.sx_item,
            winning_price=Decimal("2.45"),
            company=world.company,
        ),
    }
    NonSelectedProduct.objects.create(
        batch=world.hn_batch, product=world.product2, item=world.hn_item, kind="substitute"
    )
    NonSelectedProduct.objects.create(
        batch=world.sx_batch, product=world.product2, item=world.sx_item, kind="same_generic"
    )
    return rows


def add_users(world: Any) -> None:
    """City bureaus of 西安 and 铜川 and the 铜川 hospital's VBP office, beside ``world``'s users."""
    from jicai.accounts.models import User
    from tests.conftest import PASSWORD

    for username, role, kw in (
        ("xa_admin", "bureau_admin", {"region_code": "610100"}),
        ("tc_admin", "bureau_admin", {"region_code": "610200"}),
        ("tc_vbp", "vbp_office", {"institution": world.tc_inst}),
    ):
        user = User(username=username, role=role, is_staff=role.startswith("bureau"), **kw)
        user.set_password(PASSWORD)
        user.save()
        world.users[username] = user


def add_alerts() -> None:
    """One open alert per hospital (alerts are database rows, scoped by institution and region code)."""
    from jicai.monitoring.models import Alert

    for h in HOSPITALS.values():
        Alert.objects.create(
            key=f"matrix:{h.tag}",
            kind="behind_schedule",
            institution_code=h.code,
            region_code=h.region_code,
            batch_code=h.batch,
            item_code="A01",
            message_zh=f"{h.tag} 进度滞后",
            message_en=f"{h.tag} behind",
            first_seen=AS_OF,
            last_seen=AS_OF,
        )


def build_world() -> Any:
    """``tests.conftest`` world plus ``add_programme`` (call inside the system scope)."""
    from tests.conftest import _make_world

    world = _make_world()
    for name, row in add_programme(world).items():
        setattr(world, name, row)
    return world


def import_facts(home: Path) -> list[str]:
    """Import the three fact files as the operator into ``home``, then run the cycle (rollups).

    The facts are the ground every test stands on: an import that is not applied raises. The cycle
    is only here for its rollups, and it changes often: when it raises, its error is returned (one
    test reports it) and the rollups are built directly instead, so that a broken cycle fails that
    test and the rollup checks, not every test of the module. Call inside a transaction: the cycle
    runs in a savepoint, so a database error of its own does not poison what follows.
    """
    import traceback

    from django.db import transaction

    from jicai.core.tenancy import Scope
    from jicai.imports.datasets import get_spec
    from jicai.imports.engine import run_import
    from jicai.monitoring.cycle import run_cycle
    from jicai.policy.profile import ProfileLibrary

    files = {"purchases": purchases_file(), "payments": payments_file(), "dispensing": dispensing_file()}
    for name, data in files.items():
        result = run_import(get_spec(name), data, f"{name}.csv", Scope.system("matrix"))
        assert result.status == "applied", (name, [(i.line, i.column, i.code) for i in result.issues])
    problems = []
    try:
        with transaction.atomic():
            run_cycle(home, AS_OF, profiles=ProfileLibrary())
    except Exception:  # reported by test_the_cycle_builds_the_rollups_of_the_matrix
        problems.append("run_cycle raised:\n" + traceback.format_exc())
    problems += fill_missing_rollups(home)
    return problems


def fill_missing_rollups(home: Path) -> list[str]:
    """Write each rollup the cycle did not (``purchases_daily``, ``pair_monthly``); returns what failed.

    FactQuery opens a scoped view over every table of ROLLUP_TABLES, so the matrix needs rows in each:
    the daily rollup is summed here from the operator's purchases (as the cycle used to), the
    pair-month one written by ``build_pair_monthly`` (as the cycle does). A rollup of another name is
    left to the cycle; the matrix then reports it empty.
    """
    import traceback

    from deltalake import DeltaTable, write_deltalake

    from jicai.core.tenancy import Scope
    from jicai.facts.query import FactQuery
    from jicai.facts.schemas import ROLLUP_TABLES
    from jicai.facts.store import table_path
    from jicai.monitoring.monthly import build_pair_monthly
    from jicai.monitoring.reference import load_reference

    def missing(name: str) -> bool:
        table = ROLLUP_TABLES.get(name)
        return table is not None and not DeltaTable.is_deltatable(str(table_path(home, table)))

    problems = []
    if missing("purchases_daily"):
        daily = ROLLUP_TABLES["purchases_daily"]
        try:
            with FactQuery(home, Scope.system("matrix")) as q:
                data = q.arrow(
                    "SELECT institution_code, region_code, product_code, accepted_on, "
                    "sum(qty)::DECIMAL(18,4) AS qty, sum(amount)::DECIMAL(18,2) AS amount, "
                    "count(*)::BIGINT AS lines, strftime(accepted_on, '%Y-%m') AS month "
                    "FROM purchases WHERE accepted_on IS NOT NULL GROUP BY ALL"
                ).cast(daily.schema)
            path = table_path(home, daily)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_deltalake(str(path), data, partition_by=["month"], mode="overwrite")
        except Exception:
            problems.append("purchases_daily could not be built:\n" + traceback.format_exc())
    if missing("pair_monthly"):
        try:
            with FactQuery(home, Scope.system("matrix")) as q:
                q.register("item_products", load_reference(Scope.system("matrix")).item_products)
                build_pair_monthly(q, home, None)
        except Exception:
            problems.append("pair_monthly could not be built:\n" + traceback.format_exc())
    return problems
