from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError

from jicai.cli.base import EXIT_REJECTED, JicaiCommand, UsageError
from jicai.core.tenancy import ScopeError
from jicai.imports.datasets import DATASETS, get_spec
from jicai.imports.export import FORMATS, write_export


class Command(JicaiCommand):
    help = "Export a dataset in its canonical columns (re-importable as it is)."

    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)
        parser.add_argument("dataset", help=f"one of: {', '.join(DATASETS)}")
        parser.add_argument("--format", choices=FORMATS, default=None, help="default: from --output's suffix, else csv")
        parser.add_argument("--output", "-o", metavar="FILE", help="default: standard output")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            spec = get_spec(options["dataset"])
        except KeyError:
            raise UsageError(f"unknown dataset {options['dataset']!r}; choose one of: {', '.join(DATASETS)}") from None
        output = options.get("output")
        fmt = options.get("format") or (Path(output).suffix.lstrip(".").lower() if output else "csv")
        if fmt not in FORMATS:
            raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        scope = self.acting_scope(options)
        try:
            if output:
                with Path(output).open("wb") as fh:
                    count = write_export(spec, scope, fmt, fh)
                if not options["quiet"]:
                    self.stderr.write(f"{spec.name}: {count} 条 → {output}")
            else:
                count = write_export(spec, scope, fmt, sys.stdout.buffer)
                sys.stdout.flush()
        except ScopeError as exc:
            raise CommandError(f"权限不足 / not allowed: {exc}", returncode=EXIT_REJECTED) from exc
        except ValueError as exc:
            raise UsageError(f"明细数据请用 jicai report 导出 / {exc}") from exc
