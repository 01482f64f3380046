"""Real-browser checks (Playwright driving Debian's chromium): login, a broken upload, an export."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from jicai.core.tenancy import system_scope
from tests.conftest import PASSWORD, World, _make_world

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        shutil.which(CHROMIUM) is None, reason="Debian chromium not installed (apt-get install chromium)"
    ),
]


@pytest.fixture
def browser_world(transactional_db: Any) -> World:
    with system_scope("fixture"):
        return _make_world()


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


def _login(browser: Any, live_server: Any, username: str) -> Any:
    page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="en-US")
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    return page


def _shot(page: Any, name: str) -> None:
    if os.environ.get("JICAI_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / name), full_page=True)


def test_login_page_is_chinese_even_for_an_english_browser(
    browser: Any, live_server: Any, browser_world: World
) -> None:
    page = browser.new_page(locale="en-US")
    page.goto(f"{live_server.url}/")
    assert "/login/" in page.url
    assert page.locator("h1").inner_text() == "登录"
    _shot(page, "login.png")
    page.close()


def test_bureau_admin_logs_in_and_sees_only_its_region(browser: Any, live_server: Any, browser_world: World) -> None:
    page = _login(browser, live_server, "hn_admin")
    assert "region:460000" in page.inner_text("header")
    page.goto(f"{live_server.url}/data/institutions/")
    text = page.inner_text("table.grid")
    assert "H46010800001" in text
    assert "H61011200123" not in text
    _shot(page, "institutions.png")
    page.close()


def test_broken_upload_shows_row_errors_in_chinese_and_changes_nothing(
    browser: Any, live_server: Any, browser_world: World
) -> None:
    page = _login(browser, live_server, "hn_admin")
    page.goto(f"{live_server.url}/data/agreements/import/")
    broken = (
        "批次编码,品种编码,医疗机构编码,协议年度,协议开始日期,协议结束日期,约定采购量\n"
        "HN-N7,A01,H46010800001,2,2023-13-01,2024-10-31,100\n"
        "HN-N7,A01,H46010800001,3,2024-11-01,2025-10-31,-5\n"
    )
    page.set_input_files(
        "input[name=file]", files=[{"name": "坏文件.csv", "mimeType": "text/csv", "buffer": broken.encode()}]
    )
    page.click("form.upload button[type=submit]")
    page.wait_for_selector("#result")
    rows = page.inner_text("table.issues")
    assert "不是有效日期" in rows or "日期" in rows
    assert "负" in rows
    assert "数据库未" in page.inner_text("#result") or "未做任何修改" in page.inner_text("#result")
    _shot(page, "import-errors.png")
    with system_scope("check"):
        from jicai.programme.models import Agreement

        assert Agreement.objects.count() == 2
    page.close()


def test_excel_export_downloads_a_valid_workbook(browser: Any, live_server: Any, browser_world: World) -> None:
    page = _login(browser, live_server, "hn_admin")
    page.goto(f"{live_server.url}/data/institutions/")
    with page.expect_download() as info:
        page.click("text=XLSX")
    data = Path(info.value.path()).read_bytes()
    ws = load_workbook(io.BytesIO(data)).active
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:2] == ("code", "name")
    assert {r[0] for r in rows[1:]} == {"H46010800001", "H46020000002"}
    page.close()


def test_department_head_sees_only_its_department(browser: Any, live_server: Any, browser_world: World) -> None:
    page = _login(browser, live_server, "hn_head")
    page.goto(f"{live_server.url}/data/departments/")
    text = page.inner_text("table.grid")
    assert "NK01" in text
    assert "SJ01" not in text
    response = page.goto(f"{live_server.url}/data/agreements/")
    assert response.status == 404
    page.close()
