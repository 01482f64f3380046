"""The daily screens in a real browser over a small demo province (issue 5): every role logs in and
sees its menu, the bureau overview draws its charts with data, a drill-down from the region to a
department, and a department head kept to their own department. With JICAI_SCREENSHOTS=1 the
tests write the screenshots in docs/screenshots/."""

from __future__ import annotations

import importlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from jicai.demo.loader import DEMO_HOSPITAL, DEMO_PASSWORD, DEMO_USERS, ensure_users, load_province, run_demo_cycle
from jicai.demo.province import generate

_GUARD = importlib.import_module("jicai.core.migrations.0002_audit_append_only")
SQLITE, SQLITE_DROP = _GUARD.SQLITE, _GUARD.SQLITE_DROP
CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SMALL = 8

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        shutil.which(CHROMIUM) is None, reason="Debian chromium not installed (apt-get install chromium)"
    ),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's loop runs in the test thread
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        yield b
        b.close()


@pytest.fixture
def demo(transactional_db: Any, settings: Any) -> Iterator[None]:
    """A small demo province (8 institutions), loaded through the importers, with the cycle run.

    Loading writes audit entries, which SQLite's append-only trigger keeps Django's between-test flush
    (DELETE) from removing: the guard is lifted for the flush and put back for the next test.
    """
    _audit_guard(on=True)
    home = Path(settings.JICAI_HOME)
    load_province(generate(institutions=SMALL), home=home)
    ensure_users()
    run_demo_cycle(home=home)
    yield
    _audit_guard(on=False)


def _audit_guard(*, on: bool) -> None:
    if connection.vendor != "sqlite":
        return  # PostgreSQL's flush truncates, which the trigger allows
    with connection.cursor() as cur:
        for sql in SQLITE if on else SQLITE_DROP:
            cur.execute(sql)


def _login(browser: Any, live_server: Any, username: str, *, locale: str = "zh-CN") -> Any:
    page = browser.new_page(viewport={"width": 1366, "height": 900}, locale=locale)
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    return page


def _shot(page: Any, name: str) -> None:
    if os.environ.get("JICAI_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / name), full_page=True)


def _chart_drawn(page: Any, testid: str) -> None:
    """ECharts draws into a canvas inside the chart's element; wait for it and check it has a size."""
    canvas = page.locator(f"[data-testid={testid}] canvas").first
    canvas.wait_for(state="attached", timeout=10_000)
    box = canvas.bounding_box()
    assert box is not None, testid
    assert box["width"] > 100, testid
    assert box["height"] > 100, testid


def test_every_demo_role_logs_in_and_sees_only_its_menu(browser: Any, live_server: Any, demo: None) -> None:
    menus: dict[str, str] = {}
    for login in DEMO_USERS:
        page = _login(browser, live_server, login.username)
        menus[login.username] = page.inner_text("[data-testid=nav]")
        assert login.username in page.inner_text("header")
        page.click("header form.inline button")  # log out
        page.wait_for_url(re.compile(r".*/(login/)?(\?.*)?$"))
        page.close()
    # the bureau sees the region overview, a hospital its institution, a department head its department
    assert "区域总览" in menus["bureau"]
    assert "本院概览" in menus["vbp"]
    assert "区域总览" not in menus["vbp"]
    assert "本科室" in menus["cardiology"]
    assert "区域总览" not in menus["cardiology"]
    assert "导入记录" not in menus["viewer"]


def test_bureau_overview_draws_its_charts_with_data(browser: Any, live_server: Any, demo: None) -> None:
    page = _login(browser, live_server, "bureau")
    page.goto(f"{live_server.url}/overview/")
    for chart in ("chart-trend", "chart-heatmap", "chart-mix"):
        _chart_drawn(page, chart)
    agreements = page.inner_text("[data-testid=kpi-agreements]")
    assert re.search(r"[1-9]", agreements), agreements
    assert page.locator("[data-testid=table-institutions] tbody tr").count() >= 2
    assert "数据截至" in page.inner_text("[data-testid=as-of]")
    _shot(page, "overview.png")
    page.close()


def test_drill_down_from_the_region_to_a_department(browser: Any, live_server: Any, demo: None) -> None:
    page = _login(browser, live_server, "bureau")
    page.goto(f"{live_server.url}/overview/")
    # region → institution
    page.locator(f"[data-testid=table-institutions] a[href*='/institutions/{DEMO_HOSPITAL}/']").first.click()
    page.wait_for_selector("[data-testid=institution-name]")
    assert DEMO_HOSPITAL in page.url
    _chart_drawn(page, "chart-trend")
    _shot(page, "institution.png")
    # institution → item
    page.locator("[data-testid=table-institution-items] a[href*='/items/']").first.click()
    page.wait_for_selector("[data-testid=table-departments]")
    _shot(page, "institution-item.png")
    # item → department
    page.locator("[data-testid=table-departments] a[href*='/departments/']").first.click()
    page.wait_for_selector("[data-testid=department-name]")
    assert "/departments/" in page.url
    _shot(page, "department.png")
    # a number links to the lines behind it
    page.goto(f"{live_server.url}/institutions/{DEMO_HOSPITAL}/")
    page.locator("[data-testid=counted] a, a[data-testid=counted]").first.click()
    page.wait_for_selector("[data-testid=table-lines]")
    assert page.locator("[data-testid=table-lines] tbody tr").count() >= 1
    page.close()


def test_department_head_cannot_open_another_department(browser: Any, live_server: Any, demo: None) -> None:
    page = _login(browser, live_server, "cardiology")
    mine = page.goto(f"{live_server.url}/institutions/{DEMO_HOSPITAL}/departments/XNK/")
    assert mine is not None
    assert mine.status == 200
    assert "心血管内科" in page.inner_text("[data-testid=department-name]")
    _shot(page, "my-department.png")
    other = page.goto(f"{live_server.url}/institutions/{DEMO_HOSPITAL}/departments/SJNK/")
    assert other is not None
    assert other.status == 404
    elsewhere = page.goto(f"{live_server.url}/institutions/H46010500002/")
    assert elsewhere is not None
    assert elsewhere.status == 404
    page.close()


def test_the_english_switch_translates_the_overview(browser: Any, live_server: Any, demo: None) -> None:
    page = _login(browser, live_server, "bureau")
    page.goto(f"{live_server.url}/overview/")
    with page.expect_navigation():
        page.select_option("header select[name=language]", "en")
    assert "Region overview" in page.inner_text("[data-testid=nav]")
    page.close()
