from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError

from jicai.cli.base import EXIT_REJECTED, JicaiCommand, UsageError
from jicai.core.tenancy import ScopeError
from jicai.monitoring.reports import FORMATS, REPORT_NAMES, ReportRequest, run_report, write_report
from jicai.policy.profile import ProfileLibrary

TABLE_LIMIT = 200


class Command(JicaiCommand):
    help = "Compute a report under your scope: " + ", ".join(REPORT_NAMES) + "."

    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)
        parser.add_argument("name", choices=REPORT_NAMES)
        parser.add_argument("--as-of", default=None, help="date (YYYY-MM-DD), default today")
        parser.add_argument("--batch", default=None, help="batch code")
        parser.add_argument("--institution", default=None, help="institution code")
        parser.add_argument("--format", choices=FORMATS, default=None, help="default: from --output, else table")
        parser.add_argument("--output", "-o", default=None, help="file to write (default: standard output)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            as_of = dt.date.fromisoformat(options["as_of"]) if options["as_of"] else dt.date.today()
        except ValueError as exc:
            raise UsageError(f"--as-of must be a date like 2026-01-31: {exc}") from exc
        output = options.get("output")
        fmt = options.get("format") or (Path(output).suffix.lstrip(".").lower() if output else "table")
        if fmt not in FORMATS:
            raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        scope = self.acting_scope(options)
        home = Path(settings.JICAI_HOME)
        request = ReportRequest(as_of=as_of, batch=options.get("batch"), institution=options.get("institution"))
        try:
            table = run_report(options["name"], scope, request, home=home, profiles=ProfileLibrary([home / "profiles"]))
        except ScopeError as exc:
            raise CommandError(f"权限不足 / not allowed: {exc}", returncode=EXIT_REJECTED) from exc
        limit = TABLE_LIMIT if fmt == "table" and not output else None
        if output:
            with Path(output).open("wb") as fh:
                write_report(table, fmt, fh, title=options["name"])
            if not options["quiet"]:
                self.stderr.write(f"{options['name']}: {table.num_rows} rows → {output}")
        else:
            write_report(table, fmt, sys.stdout.buffer, title=options["name"], limit=limit)
            sys.stdout.flush()
