"""Small helpers shared by the import/export tests."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

from jicai.core.models import AuditEntry
from jicai.core.tenancy import Scope, use_scope
from jicai.imports.datasets import DATASETS
from jicai.imports.engine import ImportResult, run_import
from jicai.imports.export import write_export

CJK = re.compile(r"[\u4e00-\u9fff]")


def operator() -> Scope:
    return Scope.system("operator")


def do_import(dataset: str, data: bytes, filename: str, scope: Scope | None = None, **kwargs: Any) -> ImportResult:
    return run_import(DATASETS[dataset], data, filename, scope or operator(), **kwargs)


def export_bytes(dataset: str, fmt: str = "csv", scope: Scope | None = None) -> bytes:
    out = io.BytesIO()
    write_export(DATASETS[dataset], scope or operator(), fmt, out)
    return out.getvalue()


def csv_from_rows(rows: Iterable[Sequence[object]], encoding: str = "utf-8") -> bytes:
    buf = io.StringIO(newline="")
    csv.writer(buf).writerows(rows)
    return buf.getvalue().encode(encoding)


def read_csv_bytes(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def data_counts() -> dict[str, int]:
    """Row counts of every table an import can write, plus the audit trail."""
    from jicai.catalog.models import PriceList, PriceListEntry, Product
    from jicai.organizations.models import Company, Department, Institution
    from jicai.programme.models import Agreement, Batch, Item, NonSelectedProduct, SelectedProduct

    models = (
        Institution,
        Department,
        Company,
        Product,
        PriceList,
        PriceListEntry,
        Batch,
        Item,
        SelectedProduct,
        NonSelectedProduct,
        Agreement,
    )
    with use_scope(operator()):
        counts = {m._meta.label: m.objects.count() for m in models}
    counts["core.AuditEntry"] = AuditEntry.objects.count()
    return counts


def has_chinese(text: str) -> bool:
    return bool(CJK.search(text))


def snapshot() -> dict[str, bytes]:
    """Every dataset as exported CSV: equal snapshots mean no stored value changed."""
    return {name: export_bytes(name) for name in DATASETS}
