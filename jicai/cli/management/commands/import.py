from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table as RichTable

from jicai.cli.base import EXIT_REJECTED, JicaiCommand, UsageError
from jicai.core.tenancy import ScopeError
from jicai.imports.datasets import DATASETS, get_spec
from jicai.imports.engine import ImportResult, run_import
from jicai.imports.mappings import MappingError, resolve_mapping
from jicai.imports.report import write_report

SHOWN_ISSUES = 20


class Command(JicaiCommand):
    help = "Import a CSV/XLSX/XLS file into a dataset. Exit 0: loaded; 1: rows rejected; 2: usage error."

    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)
        parser.add_argument("dataset", help=f"one of: {', '.join(DATASETS)}, purchases, payments, dispensing")
        parser.add_argument("file", help="CSV (UTF-8 / GB18030), XLSX or XLS")
        parser.add_argument("--dry-run", action="store_true", help="check and report, change nothing")
        parser.add_argument("--load-valid", action="store_true", help="load the valid rows even when some are rejected")
        parser.add_argument("--errors", metavar="FILE", help="write the error report here (.csv or .xlsx)")
        parser.add_argument(
            "--mapping", metavar="NAME|FILE", help="header mapping (e.g. hainan-listing), detected when omitted"
        )
        parser.add_argument("--list", dest="price_list", metavar="CODE", help="price list code for the prices dataset")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            spec = get_spec(options["dataset"])
        except KeyError:
            raise UsageError(f"unknown dataset {options['dataset']!r}; choose one of: {', '.join(DATASETS)}") from None
        path = Path(options["file"])
        if not path.is_file():
            raise UsageError(f"no such file: {path}")
        mapping = None
        if options.get("mapping"):
            try:
                mapping = resolve_mapping(options["mapping"])
            except MappingError as exc:
                raise UsageError(str(exc)) from exc
        scope = self.acting_scope(options)
        quiet = options["quiet"]
        console = Console(stderr=True)
        extra = {"list": options["price_list"]} if options.get("price_list") else {}
        try:
            if not quiet and self.interactive():
                with Progress(
                    TextColumn("[bold]{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeRemainingColumn(),
                    console=console,
                ) as bar:
                    task = bar.add_task(f"检查 {path.name}", total=None)
                    result = run_import(
                        spec,
                        path.read_bytes(),
                        path.name,
                        scope,
                        dry_run=options["dry_run"],
                        load_valid=options["load_valid"],
                        mapping=mapping,
                        options=extra,
                        progress=lambda done, total: bar.update(task, completed=done, total=total),
                    )
            else:
                result = run_import(
                    spec,
                    path.read_bytes(),
                    path.name,
                    scope,
                    dry_run=options["dry_run"],
                    load_valid=options["load_valid"],
                    mapping=mapping,
                    options=extra,
                )
        except ScopeError as exc:
            raise CommandError(f"权限不足 / not allowed: {exc}", returncode=EXIT_REJECTED) from exc
        if options.get("errors") and result.issues:
            write_report(result.issues, Path(options["errors"]), labels=result.labels)
        if not quiet:
            self._summary(result, options, console)
        if result.errors:
            sys.exit(EXIT_REJECTED)

    def _summary(self, result: ImportResult, options: dict[str, Any], console: Console) -> None:
        mode = "（试运行，未写入）" if options["dry_run"] else ""
        mapping = f"，表头映射 {result.mapping}" if result.mapping else ""
        self.stdout.write(
            f"{result.dataset} ← {result.filename}{mode}{mapping}：共 {result.total_rows} 行，"
            f"新建 {result.created}，更新 {result.updated}，未变 {result.unchanged}，"
            f"拒绝 {result.rejected}，提示 {len(result.warnings)}  [status: {result.status}]"
        )
        if result.errors and not options["load_valid"] and not options["dry_run"]:
            self.stdout.write("有被拒绝的行，数据库未做任何修改；修正后重新导入，或加 --load-valid 只导入有效行。")
        if result.issues:
            table = RichTable("行号", "列", "值", "级别", "原因", show_lines=False)
            for issue in result.issues[:SHOWN_ISSUES]:
                table.add_row(
                    str(issue.line),
                    result.column_label(issue.column),
                    issue.value[:40],
                    "错误" if issue.severity == "error" else "提示",
                    issue.message_zh,
                )
            console.print(table)
            if len(result.issues) > SHOWN_ISSUES:
                console.print(f"… 另有 {len(result.issues) - SHOWN_ISSUES} 条")
            where = options.get("errors") or result.report_path
            console.print(f"完整报告 / full report: {where}")
