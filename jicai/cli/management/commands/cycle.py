from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from jicai.cli.base import UsageError
from jicai.monitoring.cycle import run_cycle
from jicai.policy.profile import ProfileLibrary


class Command(BaseCommand):
    help = "Run the monthly cycle as of a date: incremental rollups, progress, substitutes, payables, alerts."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--as-of", default=None, help="date (YYYY-MM-DD), default today")
        parser.add_argument("--quiet", action="store_true")
        parser.add_argument(
            "--warm",
            action="store_true",
            help="then compute every institution's tranche schedule and department progress for the screens",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            as_of = dt.date.fromisoformat(options["as_of"]) if options["as_of"] else dt.date.today()
        except ValueError as exc:
            raise UsageError(f"--as-of must be a date like 2026-01-31: {exc}") from exc
        home = Path(settings.JICAI_HOME)
        profiles = ProfileLibrary([home / "profiles"])
        log = None if options["quiet"] else self.stdout.write
        result = run_cycle(home, as_of, profiles=profiles, log=log)
        if not options["quiet"]:
            timings = ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items())
            counts = ", ".join(f"{k} {v}" for k, v in result.counts.items())
            self.stdout.write(self.style.SUCCESS(f"cycle {as_of} done (run {result.run_id}): {counts}"))
            self.stdout.write(f"  {timings}")
        if options["warm"]:
            from jicai.monitoring.dashboard import warm_ondemand  # noqa: PLC0415

            count, seconds = warm_ondemand(home)
            if not options["quiet"]:
                self.stdout.write(f"  screens warmed for {count} institutions in {seconds:.1f}s")
