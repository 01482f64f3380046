from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand
from django.utils import translation

from jicai.accounts.permissions import ROLE_LABELS
from jicai.demo.loader import DEMO_PASSWORD, ensure_users, load_fixtures


class Command(BaseCommand):
    help = "Load the demo sample (shipped fixtures, through the importer) and create one login per role."

    def handle(self, *args: Any, **options: Any) -> None:
        translation.activate("zh-hans")
        for result in load_fixtures():
            line = (
                f"  {result.dataset:<13} {result.total_rows:>4} 行：新建 {result.created}，更新 {result.updated}，"
                f"未变 {result.unchanged}，拒绝 {result.rejected}"
            )
            self.stdout.write(line)
            if result.errors:
                self.stderr.write(
                    self.style.ERROR(f"demo fixture {result.dataset} rejected: {result.errors[0].message_zh}")
                )
                sys.exit(1)
        logins = ensure_users()
        self.stdout.write(self.style.SUCCESS("\n演示账号 / demo logins (password for all: " + DEMO_PASSWORD + ")"))
        for login in logins:
            where = login.territory or "全部 / all"
            self.stdout.write(f"  {login.username:<12} {ROLE_LABELS[login.role]!s:<16} {where}")
        self.stdout.write("\nOpen http://127.0.0.1:8000 and log in with one of the accounts above.")
