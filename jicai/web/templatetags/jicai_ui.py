"""Display helpers for the daily screens: quantities, ratios, money, status badges, sortable headers."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django import template
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from jicai.monitoring.alerts_rules import trigger_zh

register = template.Library()

DASH = "—"
STATUS_LABELS = {
    "completed": _("Completed"),
    "on_track": _("On track"),
    "behind": _("Behind"),
    "at_risk": _("At risk"),
}
SEVERITY_LABELS = {"critical": _("Critical"), "warning": _("Warning"), "info": _("Information")}


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


@register.filter
def qty(value: Any) -> str:
    """A quantity with thousands separators and no trailing zeros (12345.5000 → 12,345.5)."""
    number = _decimal(value)
    if number is None:
        return DASH
    number = number.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    text = f"{number:,.4f}".rstrip("0").rstrip(".")
    return "0" if text in {"-0", ""} else text


@register.filter
def pct(value: Any) -> str:
    """A ratio as a percentage with one decimal (0.7479 → 74.8%)."""
    number = _decimal(value)
    if number is None:
        return DASH
    shown = (number * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{shown:,.1f}%"


@register.filter
def money(value: Any) -> str:
    """Yuan to two decimals with thousands separators (Decimal, never float)."""
    number = _decimal(value)
    if number is None:
        return DASH
    return f"{number.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,.2f}"


@register.filter
def bar_width(value: Any) -> str:
    """A ratio as a CSS width percentage, clipped to [0, 100]."""
    number = _decimal(value)
    if number is None:
        return "0"
    return str(max(Decimal(0), min(Decimal(100), (number * 100).quantize(Decimal("0.1")))))


@register.filter
def status_label(status: str | None) -> str:
    return str(STATUS_LABELS.get(status or "", DASH))


@register.simple_tag
def status_badge(status: str | None) -> SafeString:
    """A coloured badge for a progress status (completed / on track / behind / at risk)."""
    if not status:
        return format_html('<span class="badge status-none">{}</span>', DASH)
    return format_html(
        '<span class="badge status-{}" data-status="{}">{}</span>',
        status.replace("_", "-"),
        status,
        STATUS_LABELS.get(status, status),
    )


@register.simple_tag
def severity_badge(severity: str | None) -> SafeString:
    severity = severity or "info"
    return format_html('<span class="badge severity-{}">{}</span>', severity, SEVERITY_LABELS.get(severity, severity))


@register.simple_tag
def progress_bar(completion: Any, elapsed: Any, status: str | None = None) -> SafeString:
    """Completion as a bar (coloured by ``status``) with the elapsed share as a marker."""
    return format_html(
        '<span class="progress status-{}" title="{} / {}"><span class="fill" style="width:{}%"></span>'
        '<span class="mark" style="left:{}%"></span></span>',
        (status or "none").replace("_", "-") if status else "completed",
        pct(completion),
        pct(elapsed),
        bar_width(completion),
        bar_width(elapsed),
    )


@register.simple_tag(takes_context=True)
def sort_th(context: dict[str, Any], key: str, label: str, css: str = "") -> SafeString:
    """A table header that sorts the list on the server by ``key`` (again: descending)."""
    request: HttpRequest | None = context.get("request")
    current = str(context.get("sort") or "")
    params = request.GET.copy() if request is not None else None
    arrow = ""
    if current == key:
        new, arrow = f"-{key}", " ▲"
    elif current == f"-{key}":
        new, arrow = key, " ▼"
    else:
        new = key
    if params is None:
        return format_html('<th class="{}">{}</th>', css, label)
    params["sort"] = new
    params.pop("page", None)
    return format_html(
        '<th class="{}"><a href="?{}" data-sort="{}">{}{}</a></th>', css, params.urlencode(), key, label, arrow
    )


@register.filter
def trigger_label(trigger: str | None) -> str:
    """A prepayment trigger in words for Chinese pages (``start`` → 协议期开始); the code otherwise."""
    if not trigger:
        return ""
    if not (get_language() or "").startswith("zh"):
        return str(trigger)
    try:
        return trigger_zh(str(trigger))
    except ValueError:
        return str(trigger)
