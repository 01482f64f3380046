from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand

from jicai.core.audit import verify
from jicai.core.models import AuditEntry


class Command(BaseCommand):
    help = "Audit trail tools: 'verify' recomputes the hash chain; 'tail' shows the latest entries."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("verify", help="check that no entry was edited, removed or reordered")
        tail = sub.add_parser("tail", help="show the latest entries")
        tail.add_argument("-n", type=int, default=20)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "tail":
            for entry in AuditEntry.objects.order_by("-seq")[: options["n"]]:
                when = f"{entry.at:%Y-%m-%d %H:%M:%S}"
                self.stdout.write(
                    f"#{entry.seq} {when} {entry.actor_name} {entry.action} {entry.model} {entry.object_key}"
                )
            return
        problems = list(verify())
        total = AuditEntry.objects.count()
        if problems:
            for p in problems[:50]:
                self.stderr.write(f"entry #{p.seq}: {p.reason}")
            self.stderr.write(
                self.style.ERROR(f"审计链校验失败 / audit chain BROKEN: {len(problems)} problem(s) in {total} entries")
            )
            sys.exit(1)
        self.stdout.write(self.style.SUCCESS(f"审计链完整 / audit chain intact: {total} entries verified"))
