from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create or migrate the database in JICAI_HOME (safe to run again)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--quiet", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = 0 if options["quiet"] else 1
        call_command("migrate", interactive=False, verbosity=verbosity)
        db = settings.DATABASES["default"]
        if not options["quiet"]:
            where = db["NAME"] if db["ENGINE"].endswith("sqlite3") else f"{db.get('HOST')}/{db['NAME']}"
            self.stdout.write(self.style.SUCCESS(f"Database ready: {where}  (JICAI_HOME={settings.JICAI_HOME})"))
