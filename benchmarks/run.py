"""Benchmark: the engine's progress + substitutes against hand-written DuckDB SQL and pandas.

    python -m benchmarks.generate --home /tmp/bench --rows 20000000
    python -m benchmarks.run --home /tmp/bench [--as-of 2025-12-31] [--skip-pandas] [--incremental]

Each contestant runs in its own child process so that its peak memory (RSS) is its own; the floor
(hand-written DuckDB SQL over the same Parquet files) runs in the same benchmark, so the printed
ratios compare like with like on this machine. ``--incremental`` then runs ``jicai cycle`` in full,
appends one more month with the generator, reruns the cycle and prints the ratio of the two.
Nothing here asserts a time: it prints measured figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

TARGET_VS_FLOOR = 1.3
TARGET_VS_PANDAS = 3.0
TARGET_RSS_GIB = 3.0
TARGET_INCREMENTAL = 0.15


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _setup_django(home: Path) -> None:
    os.environ["JICAI_HOME"] = str(home)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jicai.settings")
    import django  # noqa: PLC0415

    django.setup()


def _files(home: Path, name: str) -> list[str]:
    from deltalake import DeltaTable  # noqa: PLC0415

    return list(DeltaTable(str(home / "facts" / name)).file_uris())


def _lines(home: Path) -> int:
    import duckdb  # noqa: PLC0415

    files = _files(home, "purchases")
    return int(duckdb.execute(f"SELECT count(*) FROM read_parquet({files})").fetchall()[0][0])


def run_one(name: str, home: Path, as_of: dt.date) -> dict[str, Any]:
    """Run one contestant in this process and return its figures."""
    ref = home / "reference"
    if name == "floor":
        import duckdb  # noqa: PLC0415

        from benchmarks.floor import floor_progress_and_substitutes  # noqa: PLC0415

        con = duckdb.connect(config={"threads": 2, "memory_limit": "3GB"})
        start = time.perf_counter()
        progress, subs = floor_progress_and_substitutes(
            con, _files(home, "purchases"), str(ref / "agreements.parquet"), str(ref / "item_products.parquet"), as_of
        )
        seconds = time.perf_counter() - start
        counted = sum(Decimal(str(v)) for v in progress.column("counted_qty").to_pylist() if v is not None)
        return {
            "seconds": seconds,
            "progress_rows": progress.num_rows,
            "substitute_rows": subs.num_rows,
            "counted_total": str(counted),
            "peak_rss_mib": _peak_rss_mib(),
        }
    if name == "engine":
        _setup_django(home)
        import pyarrow.parquet as pq  # noqa: PLC0415

        from jicai.core.tenancy import Scope  # noqa: PLC0415
        from jicai.facts.query import FactQuery  # noqa: PLC0415
        from jicai.monitoring.progress import progress  # noqa: PLC0415
        from jicai.monitoring.substitutes import substitutes  # noqa: PLC0415

        start = time.perf_counter()
        with FactQuery(home, Scope.system("benchmark")) as q:
            q.register("agreements", pq.read_table(ref / "agreements.parquet"))
            q.register("item_products", pq.read_table(ref / "item_products.parquet"))
            thresholds = {"national": (Decimal("0.90"), Decimal("0.70"))}
            prog = progress(q, as_of, thresholds=thresholds)
            subs = substitutes(q, as_of, cap_ratio={"national": Decimal(1)})
        seconds = time.perf_counter() - start
        counted = sum(Decimal(str(v)) for v in prog.column("counted_qty").to_pylist() if v is not None)
        return {
            "seconds": seconds,
            "progress_rows": prog.num_rows,
            "substitute_rows": subs.num_rows,
            "counted_total": str(counted),
            "peak_rss_mib": _peak_rss_mib(),
        }
    if name == "pandas":
        from benchmarks.pandas_baseline import pandas_progress_and_substitutes  # noqa: PLC0415

        start = time.perf_counter()
        progress, subs = pandas_progress_and_substitutes(
            _files(home, "purchases"), str(ref / "agreements.parquet"), str(ref / "item_products.parquet"), as_of
        )
        seconds = time.perf_counter() - start
        return {
            "seconds": seconds,
            "progress_rows": len(progress),
            "substitute_rows": len(subs),
            "counted_total": str(round(float(progress["counted_qty"].sum()), 4)),
            "peak_rss_mib": _peak_rss_mib(),
        }
    if name in {"cycle", "cycle-again"}:
        _setup_django(home)
        import pyarrow.parquet as pq  # noqa: PLC0415
        from django.core.management import call_command  # noqa: PLC0415

        from jicai.monitoring.cycle import run_cycle  # noqa: PLC0415
        from jicai.monitoring.reference import Reference  # noqa: PLC0415
        from jicai.policy.profile import ProfileLibrary  # noqa: PLC0415

        call_command("migrate", verbosity=0)
        reference = Reference(
            agreements=pq.read_table(ref / "agreements.parquet"),
            item_products=pq.read_table(ref / "item_products.parquet"),
            institutions=pq.read_table(ref / "institutions.parquet"),
        )
        start = time.perf_counter()
        result = run_cycle(home, as_of, profiles=ProfileLibrary(), reference=reference)
        seconds = time.perf_counter() - start
        return {
            "seconds": seconds,
            "timings": result.timings,
            "counts": result.counts,
            "months": result.months_rebuilt,
            "full": result.full_rebuild,
            "peak_rss_mib": _peak_rss_mib(),
        }
    raise SystemExit(f"unknown contestant {name}")


def _child(name: str, home: Path, as_of: dt.date) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.run", "--one", name, "--home", str(home), "--as-of", as_of.isoformat()]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)  # noqa: S603
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--as-of", default=None, help="default: the last day of the latest month in the data")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=2, help="best of N for engine and floor")
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument("--incremental", action="store_true", help="also measure a full and an incremental cycle")
    parser.add_argument("--only-incremental", action="store_true", help="measure only the full and incremental cycle")
    args = parser.parse_args()
    home = args.home.resolve()
    if args.as_of:
        as_of = dt.date.fromisoformat(args.as_of)
    else:
        import duckdb  # noqa: PLC0415

        last = duckdb.execute(f"SELECT max(accepted_on) FROM read_parquet({_files(home, 'purchases')})").fetchall()
        as_of = last[0][0] if last and last[0][0] else dt.date.today()
    if args.one:
        print(json.dumps(run_one(args.one, home, as_of), default=str))
        return
    lines = _lines(home)
    print(f"data: {home}  purchase lines {lines:,}  as of {as_of}")
    if args.only_incremental:
        _incremental(home, as_of)
        return
    figures: dict[str, dict[str, Any]] = {}
    for name in ("floor", "engine"):
        runs = [_child(name, home, as_of) for _ in range(args.repeat)]
        best = min(runs, key=lambda r: r["seconds"])
        best["peak_rss_mib"] = max(r["peak_rss_mib"] for r in runs)
        figures[name] = best
    if not args.skip_pandas:
        figures["pandas"] = _child("pandas", home, as_of)
    for name, fig in figures.items():
        rate = lines / fig["seconds"]
        print(
            f"{name:<7} {fig['seconds']:8.2f} s  {rate:13,.0f} lines/s  peak RSS {fig['peak_rss_mib']:8.0f} MiB  "
            f"progress rows {fig['progress_rows']:,}  substitute rows {fig['substitute_rows']:,}  "
            f"counted {fig['counted_total']}"
        )
    engine, floor = figures["engine"], figures["floor"]
    vs_floor = engine["seconds"] / floor["seconds"]
    print(f"engine / floor = {vs_floor:.2f}  (target ≤ {TARGET_VS_FLOOR})")
    if "pandas" in figures:
        vs_pandas = figures["pandas"]["seconds"] / engine["seconds"]
        print(f"pandas / engine = {vs_pandas:.2f}  (target ≥ {TARGET_VS_PANDAS})")
    print(f"engine peak RSS = {engine['peak_rss_mib'] / 1024:.2f} GiB  (target ≤ {TARGET_RSS_GIB})")
    same = engine["counted_total"] == floor["counted_total"] and engine["progress_rows"] == floor["progress_rows"]
    print(f"engine and floor agree on counted quantities: {same}")
    if args.incremental:
        _incremental(home, as_of)


def _incremental(home: Path, as_of: dt.date) -> None:
    """A full cycle from scratch, one more month appended, the cycle again; prints the ratio."""
    for stale in ("rollups", "results"):
        shutil.rmtree(home / stale, ignore_errors=True)
    for db in home.glob("jicai.sqlite3*"):
        db.unlink()
    full = _child("cycle", home, as_of)
    print(f"cycle (full)        {full['seconds']:8.2f} s  peak RSS {full['peak_rss_mib'] / 1024:.2f} GiB")
    print(f"  {_steps(full['timings'])}")
    print(f"  {full['counts']}")
    subprocess.run([sys.executable, "-m", "benchmarks.generate", "--home", str(home), "--append-month"], check=True)  # noqa: S603
    next_month_end = (as_of.replace(day=1) + dt.timedelta(days=62)).replace(day=1) - dt.timedelta(days=1)
    again = _child("cycle-again", home, next_month_end)
    print(
        f"cycle (+1 month)    {again['seconds']:8.2f} s  peak RSS {again['peak_rss_mib'] / 1024:.2f} GiB  "
        f"months {again['months']}  full rebuild: {again['full']}"
    )
    print(f"  {_steps(again['timings'])}")
    print(f"  {again['counts']}")
    print(f"incremental / full = {again['seconds'] / full['seconds']:.2f}  (target ≤ {TARGET_INCREMENTAL})")


def _steps(timings: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.2f} s" for k, v in timings.items() if k != "total")


if __name__ == "__main__":
    main()
