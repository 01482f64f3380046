from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from jicai.accounts.actions import do_issue_token
from jicai.cli.base import JicaiCommand, UsageError


class Command(JicaiCommand):
    help = "Issue an API token for a user (shown once; only its hash is stored)."

    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create")
        create.add_argument("username")
        create.add_argument("--name", default="cli")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"], is_active=True).first()
        if user is None:
            raise UsageError(f"no active user {options['username']!r}")
        key = do_issue_token(acting=self.acting_scope(options), user=user, name=options["name"])
        self.stdout.write(key)
