"""Shared plumbing for the CLI: the acting scope, exit codes, quiet/progress handling."""

from __future__ import annotations

import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from jicai.core.tenancy import Scope

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2


class UsageError(CommandError):
    def __init__(self, message: str) -> None:
        super().__init__(message, returncode=EXIT_USAGE)


class JicaiCommand(BaseCommand):
    """Commands act as a named user (``--as USERNAME``) or, by default, as the operator."""

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--as",
            dest="as_user",
            metavar="USERNAME",
            help="act as this user, within the user's role and territory (default: operator, unrestricted)",
        )
        parser.add_argument("--quiet", action="store_true", help="print nothing but errors")

    def acting_scope(self, options: dict[str, Any]) -> Scope:
        username = options.get("as_user")
        if not username:
            return Scope.system("cli")
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise UsageError(f"no active user {username!r}")
        try:
            return user.scope()
        except (ValueError, ValidationError) as exc:  # an account without a valid territory acts nowhere
            raise UsageError(f"user {username!r} has no valid territory: {exc}") from exc

    @staticmethod
    def interactive() -> bool:
        return sys.stderr.isatty()
