"""Display helpers of the daily screens: numbers, money, ratios, badges."""

from __future__ import annotations

from decimal import Decimal

import pytest

from jicai.web.templatetags.jicai_ui import bar_width, money, pct, progress_bar, qty, status_badge


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("12345.5000"), "12,345.5"),
        (Decimal("1500.0000"), "1,500"),
        (Decimal("0.00005"), "0.0001"),
        (Decimal("-3.2500"), "-3.25"),
        (Decimal(0), "0"),
        (None, "—"),
        ("", "—"),
        ("not a number", "—"),
    ],
)
def test_quantities(value: object, shown: str) -> None:
    assert qty(value) == shown


def test_money_is_two_decimals_from_decimal_never_float() -> None:
    assert money(Decimal("18316913.305")) == "18,316,913.31"  # half up
    assert money(Decimal(170)) == "170.00"
    assert money(None) == "—"


def test_ratios_are_percentages_with_one_decimal() -> None:
    assert pct(Decimal("0.7479")) == "74.8%"
    assert pct(Decimal("1.0042")) == "100.4%"
    assert pct(Decimal("0.00049")) == "0.0%"
    assert pct(None) == "—"
    assert bar_width(Decimal("1.7")) == "100"
    assert bar_width(Decimal("-0.1")) == "0"


def test_status_badges_are_coloured_and_labelled() -> None:
    assert status_badge("at_risk") == ('<span class="badge status-at-risk" data-status="at_risk">完成风险</span>')
    assert 'class="badge status-none"' in status_badge(None)
    bar = progress_bar(Decimal("0.15"), Decimal("0.4959"), "behind")
    assert 'class="progress status-behind"' in bar
    assert "width:15.0%" in bar
    assert "left:49.6%" in bar


def test_trigger_label_in_chinese_and_the_code_in_english() -> None:
    from django.utils import translation

    from jicai.web.templatetags.jicai_ui import trigger_label

    with translation.override("zh-hans"):
        assert trigger_label("start") == "协议期开始"
        assert trigger_label("clearing") == "协议期结束清算"
        assert trigger_label("") == ""
    with translation.override("en"):
        assert trigger_label("start") == "start"
