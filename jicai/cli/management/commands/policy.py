from __future__ import annotations

import datetime as dt
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from jicai.cli.base import UsageError
from jicai.policy.profile import SETTINGS, ProfileError, ProfileLibrary, parse_profile, to_plain


def library() -> ProfileLibrary:
    return ProfileLibrary([Path(settings.JICAI_HOME) / "profiles"])


class Command(BaseCommand):
    help = "Policy profiles: list, show (resolved on a date, with --explain), check a user-written file."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="the profiles shipped and in JICAI_HOME/profiles")
        show = sub.add_parser("show", help="the rules in force for a profile on a date")
        show.add_argument("name")
        show.add_argument("--as-of", default=None, help="date (YYYY-MM-DD), default today")
        show.add_argument("--explain", action="store_true", help="show which layer, version and source set each value")
        show.add_argument("--format", choices=("table", "json"), default="table")
        check = sub.add_parser("check", help="validate a profile file and its chain")
        check.add_argument("file")
        sub.add_parser("settings", help="every setting a profile may hold")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "list":
            self._list()
        elif action == "show":
            self._show(options)
        elif action == "check":
            self._check(Path(options["file"]))
        else:
            for key, (_, meaning) in sorted(SETTINGS.items()):
                self.stdout.write(f"{key:<40} {meaning}")

    def _list(self) -> None:
        lib = library()
        for profile in sorted(lib.profiles().values(), key=lambda p: (p.level != "national", p.name)):
            versions = ", ".join(v.effective_from.isoformat() for v in profile.versions)
            where = profile.region_code or profile.institution_code or "-"
            self.stdout.write(
                f"{profile.name:<12} {profile.level:<11} parent={profile.parent or '-':<10} "
                f"region={where:<12} versions: {versions}  {profile.label}"
            )
        for path, error in lib.errors.items():
            self.stderr.write(self.style.ERROR(f"invalid profile {path}: {'; '.join(error.problems)}"))

    def _show(self, options: dict[str, Any]) -> None:
        try:
            as_of = dt.date.fromisoformat(options["as_of"]) if options["as_of"] else dt.date.today()
        except ValueError as exc:
            raise UsageError(f"--as-of must be a date like 2026-01-31: {exc}") from exc
        try:
            resolved = library().resolve(options["name"], as_of)
        except ProfileError as exc:
            raise UsageError("; ".join(exc.problems)) from exc
        if options["format"] == "json":
            data: dict[str, Any] = {"name": resolved.name, "as_of": as_of.isoformat(), "chain": list(resolved.chain)}
            data["values"] = {
                key: (
                    {
                        "value": to_plain(v.value),
                        "source": v.source,
                        "confirmed": v.confirmed,
                        "layer": v.layer,
                        "effective_from": v.effective_from.isoformat(),
                    }
                    if options["explain"]
                    else to_plain(v.value)
                )
                for key, v in resolved.explain()
            }
            self.stdout.write(json.dumps(data, ensure_ascii=False, indent=2))
            return
        self.stdout.write(f"{resolved.name} on {as_of}: {' → '.join(resolved.chain)}")
        for key, v in resolved.explain():
            value = json.dumps(to_plain(v.value), ensure_ascii=False)
            self.stdout.write(f"  {key:<38} {value}")
            if options["explain"]:
                mark = "confirmed" if v.confirmed else "UNCONFIRMED"
                self.stdout.write(f"      set by {v.layer} ({v.effective_from}), {mark}: {v.source}")

    def _check(self, path: Path) -> None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            profile = parse_profile(data, str(path))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            self.stderr.write(self.style.ERROR(f"{path}: {exc}"))
            sys.exit(1)
        except ProfileError as exc:
            for problem in exc.problems:
                self.stderr.write(self.style.ERROR(f"{path}: {problem}"))
            sys.exit(1)
        lib = library()
        lib.profiles()[profile.name] = profile
        try:
            lib.chain(profile.name)
        except ProfileError as exc:
            for problem in exc.problems:
                self.stderr.write(self.style.ERROR(f"{path}: {problem}"))
            sys.exit(1)
        count = sum(len(v.settings) for v in profile.versions)
        self.stdout.write(
            self.style.SUCCESS(f"{path}: valid — {profile.level} profile {profile.name!r}, {count} value(s)")
        )
