from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from jicai.facts.schemas import FACT_TABLES
from jicai.facts.store import compact, open_table


class Command(BaseCommand):
    help = "Fact store maintenance: 'status' shows versions and files; 'compact' merges small files."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("status")
        comp = sub.add_parser("compact")
        comp.add_argument(
            "--vacuum-hours", type=int, default=None, help="also delete unreferenced files older than this (hours)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        home = Path(settings.JICAI_HOME)
        if options["action"] == "status":
            for name, table in FACT_TABLES.items():
                dt_ = open_table(home, table)
                if dt_ is None:
                    self.stdout.write(f"{name:<12} (empty)")
                    continue
                files = dt_.file_uris()
                self.stdout.write(f"{name:<12} version {dt_.version():<5} files {len(files)}")
            return
        report = compact(home, vacuum_hours=options.get("vacuum_hours"))
        self.stdout.write(json.dumps(report, ensure_ascii=False, indent=1))
