from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve the web UI and API with waitress (production-grade, no internet needed)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--threads", type=int, default=8)

    def handle(self, *args: Any, **options: Any) -> None:
        from waitress import serve  # noqa: PLC0415 - only this command needs the server

        from jicai.wsgi import application  # noqa: PLC0415 - builds the app once settings are loaded

        url = f"http://{options['host']}:{options['port']}"
        self.stdout.write(
            self.style.SUCCESS(f"Jicai serving on {url}  (JICAI_HOME={settings.JICAI_HOME}; Ctrl+C to stop)")
        )
        serve(  # type: ignore[no-untyped-call]
            application, host=options["host"], port=options["port"], threads=options["threads"], ident="jicai"
        )
