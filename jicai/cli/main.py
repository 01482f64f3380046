"""The ``jicai`` command: Django's management commands under one name, for data people."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jicai.settings")
    from django.core.management import execute_from_command_line  # noqa: PLC0415 - after the settings env

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or (args[0] in {"-h", "--help", "help"} and len(args) == 1):
        print(USAGE)
        return
    try:
        execute_from_command_line(["jicai", *args])
    except BrokenPipeError:  # output piped into head/less that closed early
        sys.stderr.close()
        os._exit(0)


USAGE = """\
jicai — 集采 (drug volume-based procurement) from award to settlement

Usage: jicai COMMAND [options]     (jicai COMMAND --help for details)

  init                       create or migrate the database in JICAI_HOME (idempotent)
  serve [--port 8000]        serve the web UI and API
  createuser USERNAME        create a user with a role and territory
  import DATASET FILE        import a CSV/XLSX/XLS file (--dry-run, --load-valid, --errors FILE)
  export DATASET             export a dataset (--format csv|xlsx|json, --output FILE)
  datasets                   list the datasets and their columns
  audit verify               check the audit trail's hash chain
  demo                       load the demo data and demo logins
  token create USERNAME      issue an API token

Environment: JICAI_HOME (data directory, default ./var), DATABASE_URL (PostgreSQL), SECRET_KEY, DEBUG.
All Django management commands (migrate, shell, …) are available too.
"""
