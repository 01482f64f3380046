"""Importing a register from CSV/XLSX: the dataset framework's engine with the supply specs.

All-or-nothing (a file with a rejected row changes nothing), per-row Chinese errors with line and
column, an ``ImportRun`` with its Excel report, and one audit row per created or updated record.
"""

from __future__ import annotations

from jicai.core.tenancy import Scope
from jicai.imports.engine import ImportResult, run_import


def do_import(acting: Scope, register: str, data: bytes, filename: str, *, dry_run: bool = False) -> ImportResult:
    """Import ``data`` into ``register`` (``supply_incidents``, ``credit_events``, ``sanctions``,
    ``supply_reports``) as ``acting``; raises ``ImportDenied`` without the import permission."""
    from jicai.supply.datasets import SPECS  # noqa: PLC0415 - the specs use the actions' resolvers

    return run_import(SPECS[register], data, filename, acting, dry_run=dry_run)
