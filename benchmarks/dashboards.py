"""Server time of the daily screens on a demo-sized province (printed, not asserted).

    python -m benchmarks.dashboards [--home DIR] [--rows 300000] [--institutions 60] [--items 40]
                                    [--months 36] [--as-of 2025-09-30] [--repeat 15]
    python -m benchmarks.dashboards --demo [--home DIR] [--repeat 15]

Builds (or reuses) a home: facts from ``benchmarks.generate`` (pure pyarrow, Hainan-shaped), the same
reference rows loaded into the database (institutions, departments, products, batches, items,
selected and non-selected products, agreements), one monthly cycle as of ``--as-of``, and one user
per kind of page (bureau, hospital VBP office, department head). Then every page is fetched
``--repeat`` times with Django's test client and the median server time (request → response, in
process: no network), the median CPU time of the process (DuckDB's threads included: what a
request costs when the machine is shared) and the query count of each are printed, with the time
of an "unwarmed" request (nothing cached: the first request after a plain ``jicai cycle``) and of a
"cold" one (the in-process caches emptied, the institutions' on-demand reports on disk: a restart,
or the first request after ``jicai cycle --warm``, which the demo runs). A reused ``--home`` skips
the build. ``--demo`` measures the demo province of ``jicai demo`` instead (``jicai.demo``: the real
importers, ~80 k purchase and ~220 k dispensing lines, 60 institutions), with its logins ``bureau``,
``vbp`` and ``cardiology``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

DEFAULTS = {"rows": 300_000, "institutions": 60, "items": 40, "departments": 12, "months": 36}
BUILT_MARK = "dashboards-built.txt"


def _setup_django(home: Path) -> None:
    os.environ["JICAI_HOME"] = str(home)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jicai.settings")
    import django  # noqa: PLC0415

    django.setup()


def generate_facts(home: Path, *, rows: int, institutions: int, items: int, departments: int, months: int) -> None:
    """The facts and reference Parquet files (before Django: the generator wants a fresh home)."""
    from benchmarks.generate import Params, generate  # noqa: PLC0415

    params = Params(rows=rows, institutions=institutions, items=items, departments=departments, months=months)
    generate(home, params)


def load_reference(home: Path) -> dict[str, int]:
    """Load the generator's reference rows into the database as the operator; returns row counts."""
    import pyarrow.parquet as pq  # noqa: PLC0415
    from django.db import transaction  # noqa: PLC0415

    from jicai.catalog.models import Product  # noqa: PLC0415
    from jicai.core.tenancy import system_scope  # noqa: PLC0415
    from jicai.organizations.models import Company, Department, Institution  # noqa: PLC0415
    from jicai.programme.models import Agreement, Batch, Item, NonSelectedProduct, SelectedProduct  # noqa: PLC0415

    ref = home / "reference"
    institutions = pq.read_table(ref / "institutions.parquet").to_pylist()
    departments = pq.read_table(ref / "departments.parquet").to_pylist()
    products = pq.read_table(ref / "products.parquet").to_pylist()
    item_products = pq.read_table(ref / "item_products.parquet").to_pylist()
    agreements = pq.read_table(ref / "agreements.parquet").to_pylist()
    kinds = {"primary": "primary", "private": "private", "public": "public", "military": "military"}
    with system_scope("benchmark"), transaction.atomic():
        Institution.objects.bulk_create(
            Institution(
                code=r["institution_code"],
                name=r["institution_name"],
                region_code=r["region_code"],
                kind=kinds.get(r["kind"], "public"),
                level=r["level"],
            )
            for r in institutions
        )
        inst = {i.code: i for i in Institution.objects.all()}
        Department.objects.bulk_create(
            Department(institution=inst[r["institution_code"]], code=r["department_code"], name=r["department_name"])
            for r in departments
        )
        by_code = {p["code"]: p for p in products}
        Product.objects.bulk_create(Product(**p) for p in products)
        product = {p.code: p for p in Product.objects.all()}
        makers = sorted({p["manufacturer"] for p in products})
        Company.objects.bulk_create(Company(name=m, role="manufacturer") for m in makers)
        company = {c.name: c for c in Company.objects.all()}
        batch_codes = sorted({r["batch_code"] for r in item_products})
        Batch.objects.bulk_create(
            Batch(
                code=code,
                name=f"{code} 带量采购（模拟）",
                level="alliance" if code.startswith("LM") else "national",
                policy_profile="national",
                region_code="460000",
                start_date=dt.date(2023, 1, 1),
            )
            for code in batch_codes
        )
        batch = {b.code: b for b in Batch.objects.all()}
        item_rows: dict[tuple[str, str], dict[str, Any]] = {}
        for r in item_products:
            key = (r["batch_code"], r["item_code"])
            row = item_rows.setdefault(key, {"generic": "", "unit": "", "winners": 0})
            if r["kind"] == "selected":
                row["winners"] += 1
                if not row["generic"]:
                    row["generic"] = by_code[r["product_code"]]["generic_name"]
                    row["unit"] = by_code[r["product_code"]]["min_unit"]
        Item.objects.bulk_create(
            Item(
                batch=batch[b],
                item_code=i,
                generic_name=v["generic"] or i,
                unit_label=v["unit"] or "片",
                winners=max(v["winners"], 1),
            )
            for (b, i), v in item_rows.items()
        )
        item = {(it.batch.code, it.item_code): it for it in Item.objects.select_related("batch")}
        selected, others = [], []
        for r in item_products:
            p = by_code[r["product_code"]]
            common = {
                "batch": batch[r["batch_code"]],
                "item": item[(r["batch_code"], r["item_code"])],
                "product": product[r["product_code"]],
                "conversion": r["conversion"],
            }
            if r["kind"] == "selected":
                price = (Decimal(r["unit_price"]) * p["pack_size"]).quantize(Decimal("0.01"), ROUND_HALF_UP)
                selected.append(SelectedProduct(winning_price=price, company=company[p["manufacturer"]], **common))
            else:
                others.append(NonSelectedProduct(kind=r["kind"], **common))
        SelectedProduct.objects.bulk_create(selected)
        NonSelectedProduct.objects.bulk_create(others)
        Agreement.objects.bulk_create(
            (
                Agreement(
                    batch=batch[r["batch_code"]],
                    item=item[(r["batch_code"], r["item_code"])],
                    institution=inst[r["institution_code"]],
                    year=r["year"],
                    period_start=r["period_start"],
                    period_end=r["period_end"],
                    agreed_qty=r["agreed_qty"],
                )
                for r in agreements
            ),
            batch_size=2000,
        )
    return {
        "institutions": len(institutions),
        "departments": len(departments),
        "products": len(products),
        "items": len(item_rows),
        "agreements": len(agreements),
    }


def busiest(home: Path) -> tuple[str, str]:
    """The institution with the most purchase lines and its department with the most dispensing."""
    import duckdb  # noqa: PLC0415
    from deltalake import DeltaTable  # noqa: PLC0415

    con = duckdb.connect()
    try:
        purchases = list(DeltaTable(str(home / "facts" / "purchases")).file_uris())
        dispensing = list(DeltaTable(str(home / "facts" / "dispensing")).file_uris())
        inst = con.sql(
            f"SELECT institution_code FROM read_parquet({purchases!r}) GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        ).fetchall()[0][0]
        dept = con.sql(
            f"SELECT department_code FROM read_parquet({dispensing!r}) WHERE institution_code = '{inst}' "
            "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        ).fetchall()[0][0]
    finally:
        con.close()
    return str(inst), str(dept)


def ensure_users(institution: str, department: str) -> None:
    from jicai.accounts.models import User  # noqa: PLC0415
    from jicai.core.tenancy import system_scope  # noqa: PLC0415
    from jicai.organizations.models import Department, Institution  # noqa: PLC0415

    with system_scope("benchmark"):
        inst = Institution.objects.get(code=institution)
        dept = Department.objects.get(institution=inst, code=department)
        for username, role, kw in (
            ("bureau", "bureau_admin", {"region_code": "460000"}),
            ("vbp", "vbp_office", {"institution": inst}),
            ("head", "department_head", {"institution": inst, "department": dept}),
        ):
            User.objects.update_or_create(username=username, defaults={"role": role, **kw})


def build(home: Path, args: argparse.Namespace) -> None:
    from django.core.management import call_command  # noqa: PLC0415

    from jicai.monitoring.cycle import run_cycle  # noqa: PLC0415
    from jicai.policy.profile import ProfileLibrary  # noqa: PLC0415

    call_command("migrate", verbosity=0)
    tick = time.perf_counter()
    counts = load_reference(home)
    print(f"reference loaded in {time.perf_counter() - tick:.1f} s: {counts}")
    tick = time.perf_counter()
    result = run_cycle(home, args.as_of, profiles=ProfileLibrary())
    print(f"cycle as of {args.as_of} in {time.perf_counter() - tick:.1f} s: {result.counts}")
    inst, dept = busiest(home)
    ensure_users(inst, dept)
    (home / BUILT_MARK).write_text(f"{inst} {dept} {args.as_of.isoformat()}\n")


ROLES = {"bureau": "bureau", "vbp": "vbp", "head": "head"}
"""Page user → username (``--demo`` uses the demo's logins)."""


def build_demo(home: Path) -> tuple[str, str]:
    """The demo province in ``home`` (loaded once by ``jicai demo``); returns its hospital and department."""
    from django.core.management import call_command  # noqa: PLC0415

    from jicai.demo import loader  # noqa: PLC0415

    if not (home / loader.MARKER).exists():
        call_command("migrate", verbosity=0)
        tick = time.perf_counter()
        call_command("demo")
        print(f"demo province loaded in {time.perf_counter() - tick:.1f} s")
    ROLES["head"] = "cardiology"
    login = next(u for u in loader.DEMO_USERS if u.username == "cardiology")
    institution, department = login.territory.split("/")
    return institution, department


def pages(institution: str, department: str) -> list[tuple[str, str, str]]:
    """(label, user, URL) of every page measured."""
    from django.urls import reverse  # noqa: PLC0415

    from jicai.core.tenancy import system_scope  # noqa: PLC0415
    from jicai.programme.models import Agreement  # noqa: PLC0415

    with system_scope("benchmark"):
        ag = (
            Agreement.objects.filter(institution__code=institution)
            .select_related("batch", "item")
            .order_by("-agreed_qty")
            .first()
        )
    assert ag is not None
    batch, item = ag.batch.code, ag.item.item_code
    inst_url = reverse("web:institution", args=[institution])
    lines = reverse("web:purchase_lines")
    return [
        ("bureau overview", "bureau", reverse("web:overview")),
        ("institution ranking", "bureau", reverse("web:institution_ranking")),
        ("item ranking", "bureau", reverse("web:item_ranking")),
        ("progress list (region)", "bureau", reverse("web:progress") + "?status=at_risk"),
        ("institution view (bureau)", "bureau", inst_url),
        ("institution view (hospital)", "vbp", inst_url),
        ("item in institution", "vbp", reverse("web:institution_item", args=[institution, batch, item])),
        ("department view (head)", "head", reverse("web:department", args=[institution, department])),
        ("department view (hospital)", "vbp", reverse("web:department", args=[institution, department])),
        ("alerts (region)", "bureau", reverse("web:alerts")),
        ("purchase lines (hospital item)", "vbp", f"{lines}?institution={institution}&item={item}&batch={batch}"),
        ("purchase lines (region, page 50)", "bureau", f"{lines}?page=50"),
        ("payable lines (overdue)", "vbp", reverse("web:payable_lines") + f"?institution={institution}&overdue=1"),
        ("dispensing lines (head)", "head", reverse("web:dispensing_lines")),
    ]


def measure(institution: str, department: str, repeat: int) -> None:
    from django.conf import settings  # noqa: PLC0415
    from django.db import connection  # noqa: PLC0415
    from django.test import Client  # noqa: PLC0415
    from django.test.utils import CaptureQueriesContext  # noqa: PLC0415

    from jicai.accounts.models import User  # noqa: PLC0415
    from jicai.monitoring.dashboard import CACHE, RESULTS, STORED, results_root  # noqa: PLC0415

    clients: dict[str, Client] = {}
    for role, username in ROLES.items():
        client = Client()
        client.force_login(User.objects.get(username=username))
        clients[role] = client
    heads = ("unwarmed", "cold", "median", "min", "max", "cpu")
    print(f"\n{'page':36} " + " ".join(f"{h:>9}" for h in heads) + f" {'queries':>8}  status")
    for label, user, url in pages(institution, department):
        client = clients[user]
        client.get(url)  # templates, translations and imports loaded
        CACHE.clear()
        RESULTS.clear()
        STORED.clear()
        shutil.rmtree(results_root(Path(settings.JICAI_HOME)) / "ondemand", ignore_errors=True)
        tick = time.perf_counter()
        client.get(url)  # unwarmed: nothing cached in the process, no on-demand report on disk
        unwarmed = (time.perf_counter() - tick) * 1000
        CACHE.clear()
        RESULTS.clear()
        STORED.clear()
        tick = time.perf_counter()
        client.get(url)  # cold: a restart, or the first page after `jicai cycle --warm` (reports on disk)
        cold = (time.perf_counter() - tick) * 1000
        times = []
        cpu = []
        status = 0
        with CaptureQueriesContext(connection) as ctx:
            client.get(url)
        queries = len(ctx.captured_queries)
        for _ in range(repeat):
            tick, ticks = time.perf_counter(), time.process_time()
            response = client.get(url)
            times.append((time.perf_counter() - tick) * 1000)
            cpu.append((time.process_time() - ticks) * 1000)
            status = response.status_code
        print(
            f"{label:36} {unwarmed:7.1f}ms {cold:7.1f}ms {statistics.median(times):7.1f}ms {min(times):7.1f}ms "
            f"{max(times):7.1f}ms {statistics.median(cpu):7.1f}ms {queries:8d}  {status}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, help="reuse or build this home (default: a fresh temporary one)")
    for name, value in DEFAULTS.items():
        parser.add_argument(f"--{name}", type=int, default=value)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(2025, 9, 30))
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--demo", action="store_true", help="measure the demo province of `jicai demo`")
    args = parser.parse_args(argv)
    home: Path = (args.home or Path(tempfile.mkdtemp(prefix="jicai-dash-"))).resolve()
    if args.demo:
        _setup_django(home)
        institution, department = build_demo(home)
        print(f"home {home}: demo province, institution {institution}, department {department}")
        measure(institution, department, args.repeat)
        return
    mark = home / BUILT_MARK
    if not mark.exists():
        if (home / "facts").exists():
            sys.exit(f"{home} holds facts but no {BUILT_MARK}: use a fresh directory")
        tick = time.perf_counter()
        generate_facts(
            home,
            rows=args.rows,
            institutions=args.institutions,
            items=args.items,
            departments=args.departments,
            months=args.months,
        )
        print(f"facts generated in {time.perf_counter() - tick:.1f} s into {home}")
    _setup_django(home)
    if not mark.exists():
        build(home, args)
    institution, department, as_of = mark.read_text().split()
    print(f"home {home}: institution {institution}, department {department}, cycle as of {as_of}")
    measure(institution, department, args.repeat)


if __name__ == "__main__":
    main()
