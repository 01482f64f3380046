from __future__ import annotations

import datetime as dt
import io
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import translation
from rich.console import Console
from rich.table import Table

from jicai.accounts.permissions import ROLE_LABELS
from jicai.cli.base import EXIT_REJECTED, UsageError
from jicai.demo import hainan
from jicai.demo.loader import (
    DEMO_PASSWORD,
    DemoImportError,
    DemoMismatch,
    check_marker,
    ensure_users,
    load_province,
    run_demo_cycle,
    summarise,
)
from jicai.demo.province import (
    DEFAULT_INSTITUTIONS,
    DEFAULT_SEED,
    DEMO_AS_OF,
    EARLIEST_AS_OF,
    LATEST_AS_OF,
    Province,
    generate,
)
from jicai.imports.engine import ImportResult
from jicai.monitoring.dashboard import warm_ondemand

ALERT_LABELS = {
    "behind_schedule": "进度滞后",
    "cap_exceeded": "非中选超限",
    "substitute_growth": "替代药品异常增长",
    "overdue_payment": "回款逾期",
    "tranche_fired": "预付款节点",
}


class Command(BaseCommand):
    help = (
        "Generate the demo province (Hainan, reproducible by --seed), load it through the importers, "
        "run the monthly cycle and create one login per role."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
        parser.add_argument(
            "--as-of",
            default=DEMO_AS_OF.isoformat(),
            help=f"the data run to this date and the cycle runs for it (default {DEMO_AS_OF})",
        )
        parser.add_argument(
            "--institutions",
            type=int,
            default=DEFAULT_INSTITUTIONS,
            help=(
                f"size of the province, {hainan.MIN_INSTITUTIONS}–{len(hainan.ROSTER)} institutions "
                f"(default {DEFAULT_INSTITUTIONS})"
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        translation.activate("zh-hans")
        try:
            as_of = dt.date.fromisoformat(options["as_of"])
        except ValueError as exc:
            raise UsageError(f"--as-of must be a date like 2026-11-30: {exc}") from exc
        if not EARLIEST_AS_OF <= as_of <= LATEST_AS_OF:
            raise UsageError(f"--as-of must lie between {EARLIEST_AS_OF} and {LATEST_AS_OF}")
        size = options["institutions"]
        if not hainan.MIN_INSTITUTIONS <= size <= len(hainan.ROSTER):
            raise UsageError(f"--institutions must be between {hainan.MIN_INSTITUTIONS} and {len(hainan.ROSTER)}")
        started = time.perf_counter()
        province = generate(options["seed"], as_of, size)
        try:
            check_marker(province)
        except DemoMismatch as exc:
            raise UsageError(str(exc)) from exc
        self.stdout.write(
            f"演示省份 / demo province：海南（460000），种子 seed {province.seed}，数据截至 {as_of}，"
            f"{len(province.institutions)} 家医疗机构（生成用时 {time.perf_counter() - started:.1f} 秒）"
        )
        try:
            load_province(province, report=self._line)
        except DemoImportError as exc:
            self.stderr.write(self.style.ERROR(f"demo file rejected: {exc}"))
            sys.exit(EXIT_REJECTED)
        tick = time.perf_counter()
        cycle = run_demo_cycle(as_of)
        self.stdout.write(
            f"  月度监测 cycle --as-of {as_of}：{'全量' if cycle.full_rebuild else '增量'}，"
            f"新增预警 {cycle.counts.get('alerts_created', 0)}（{time.perf_counter() - tick:.1f} 秒）"
        )
        warmed, seconds = warm_ondemand(Path(settings.JICAI_HOME))
        self.stdout.write(f"  页面预热 warm：{warmed} 家医疗机构的预付款节点与科室进度（{seconds:.1f} 秒）")
        self._summary(province)
        self._logins()
        self.stdout.write(f"共用时 / total {time.perf_counter() - started:.0f} 秒")
        self.stdout.write("用浏览器打开下方 serve 打印的地址并登录 / open the address printed below and log in.")

    def _line(self, result: ImportResult) -> None:
        self.stdout.write(
            f"  {result.filename:<20} {result.total_rows:>7} 行：新建 {result.created}，更新 {result.updated}，"
            f"未变 {result.unchanged}，拒绝 {result.rejected}"
        )

    def _summary(self, province: Province) -> None:
        counts = summarise()
        scen = province.scenarios
        lines = "，".join(f"{name} {n:,}" for name, n in counts.lines.items())
        alerts = "，".join(f"{ALERT_LABELS.get(k, k)} {n}" for k, n in sorted(counts.alerts.items())) or "无"
        self.stdout.write(
            f"汇总 / summary：医疗机构 {counts.institutions}，科室 {counts.departments}，品种 {counts.items}，"
            f"约定量 {counts.agreements}；明细 {lines}\n"
            f"  未处理预警 / open alerts：{alerts}\n"
            f"  演示情景 / planted：进度滞后 {'、'.join(scen.lagging)}；非中选超限 {scen.cap_breaker}；"
            f"回款逾期 {scen.late_heavy}、{scen.late_light}；"
            f"供应中断 {scen.interruption.item_code} {scen.interruption.start}–{scen.interruption.end}"
            f"（{len(scen.interruption.institution_codes)} 家）"
        )

    def _logins(self) -> None:
        logins = ensure_users()
        table = Table(title=f"演示账号 / demo logins — 密码 / password: {DEMO_PASSWORD}", title_justify="left")
        for header in ("用户名 user", "角色 role", "范围 territory"):
            table.add_column(header)
        for login in logins:
            table.add_row(login.username, str(ROLE_LABELS[login.role]), login.territory or "全部 / all")
        buffer = io.StringIO()
        Console(file=buffer, width=100).print(table)
        self.stdout.write(buffer.getvalue().rstrip("\n"))
