"""The workspace landing page links the four workflows of this module by their URL names."""

from __future__ import annotations

import pytest
from django.urls import reverse

from .conftest import WS

pytestmark = pytest.mark.django_db

NAMES = ("hospital:formulary_list", "hospital:surplus_list", "hospital:review_list", "hospital:complaint_list")


def test_landing_page_links_formulary_surplus_and_registers(ws: WS) -> None:
    page = ws.client("hn_finance").get(reverse("hospital:index"))
    assert page.status_code == 200
    for name in NAMES:
        assert f'href="{reverse(name)}"'.encode() in page.content, name


def test_pages_render_in_english(ws: WS) -> None:
    client = ws.client("hn_pharmacy")
    client.cookies["django_language"] = "en"
    for name in NAMES:
        response = client.get(reverse(name))
        assert response.status_code == 200, name
        assert response.headers["Content-Language"] == "en"
