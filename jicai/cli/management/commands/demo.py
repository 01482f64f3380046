from __future__ import annotations

import io
import sys
from typing import Any

from django.core.management.base import BaseCommand
from django.utils import translation
from rich.console import Console
from rich.table import Table

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
        table = Table(title=f"演示账号 / demo logins — 密码 / password: {DEMO_PASSWORD}", title_justify="left")
        for header in ("用户名 user", "角色 role", "范围 territory"):
            table.add_column(header)
        for login in logins:
            table.add_row(login.username, str(ROLE_LABELS[login.role]), login.territory or "全部 / all")
        buffer = io.StringIO()
        Console(file=buffer, width=100).print(table)
        self.stdout.write(buffer.getvalue().rstrip("\n"))
        self.stdout.write("用浏览器打开下方 serve 打印的地址并登录 / open the address printed below and log in.")
