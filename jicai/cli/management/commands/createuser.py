from __future__ import annotations

import getpass
import sys
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from jicai.accounts.actions import do_create_user
from jicai.accounts.permissions import ROLE_LABELS, RoleName
from jicai.cli.base import JicaiCommand, UsageError
from jicai.core.tenancy import use_scope


class Command(JicaiCommand):
    help = "Create a user with one role and its territory (region, institution or department)."

    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)
        roles = ", ".join(f"{r.value} ({ROLE_LABELS[r]})" for r in RoleName)
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=[r.value for r in RoleName], help=roles)
        parser.add_argument("--region", default="", help="6-digit region code, for bureau roles")
        parser.add_argument("--institution", default="", help="institution code (H + 11 digits), for hospital roles")
        parser.add_argument("--department", default="", help="department code, for department heads")
        parser.add_argument("--name", default="", help="display name")
        parser.add_argument("--email", default="")
        parser.add_argument("--password-stdin", action="store_true", help="read the password from standard input")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["password_stdin"]:
            password = sys.stdin.readline().rstrip("\n")
        elif sys.stdin.isatty():
            password = getpass.getpass("密码 / password: ")
            if password != getpass.getpass("再次输入 / again: "):
                raise UsageError("passwords differ")
        else:
            raise UsageError("give --password-stdin when not on a terminal")
        scope = self.acting_scope(options)
        with use_scope(scope):
            try:
                validate_password(password)
                user = do_create_user(
                    acting=scope,
                    username=options["username"],
                    password=password,
                    role=options["role"],
                    region_code=options["region"],
                    institution_code=options["institution"],
                    department_code=options["department"],
                    display_name=options["name"],
                    email=options["email"],
                )
            except ValidationError as exc:
                raise UsageError("; ".join(exc.messages)) from exc
        if not options["quiet"]:
            self.stdout.write(self.style.SUCCESS(f"created {user.username} ({user.role}, {user.scope().label})"))
