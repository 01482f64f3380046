"""Small display helpers shared by the feedback and control pages (numbers as the UI shows them)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.utils.translation import gettext_lazy as _

DASH = "—"
Q4 = Decimal("0.0001")

STATUS_ORDER = ("completed", "on_track", "behind", "at_risk")
"""Progress statuses from best to worst (``monitoring.progress``)."""
BEHIND_STATUSES = frozenset({"behind", "at_risk"})
STATUS_LABELS: dict[str, Any] = {
    "completed": _("Completed"),
    "on_track": _("On track"),
    "behind": _("Behind"),
    "at_risk": _("At risk"),
}


def dec(value: Any) -> Decimal | None:
    """A figure as a Decimal (None stays None; strings and ints are read exactly)."""
    if value is None or value == "":
        return None
    if isinstance(value, float):
        value = repr(value)
    return value if isinstance(value, Decimal) else Decimal(str(value))


def ratio4(num: Any, den: Any) -> Decimal | None:
    """num ÷ den to four places, half up; None when undefined."""
    n, d = dec(num), dec(den)
    if n is None or d is None or d == 0:
        return None
    return (n / d).quantize(Q4, rounding=ROUND_HALF_UP)


def qty_text(value: Any) -> str:
    """12345.5000 → 12,345.5; None → —."""
    number = dec(value)
    if number is None:
        return DASH
    text = f"{number.quantize(Q4, rounding=ROUND_HALF_UP):,.4f}".rstrip("0").rstrip(".")
    return "0" if text in {"-0", ""} else text


def pct_text(value: Any) -> str:
    """0.7479 → 74.8%; None → —."""
    number = dec(value)
    if number is None:
        return DASH
    return f"{(number * 100).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP):,.1f}%"


def status_css(status: str | None) -> str:
    return (status or "none").replace("_", "-")


def status_label(status: str | None) -> Any:
    return STATUS_LABELS.get(status or "", DASH)


def worst_status(statuses: list[str | None]) -> str | None:
    """The worst of the given statuses (at risk > behind > on track > completed); None when none known."""
    known = [s for s in statuses if s in STATUS_ORDER]
    return max(known, key=STATUS_ORDER.index) if known else None


def plain(value: Any) -> Any:
    """JSON-safe copy of a figure (Decimals as strings, dates ISO)."""
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


COMPONENT_NAMES: dict[str, Any] = {
    "completion": _("Completion of targets"),
    "selected_share": _("Selected-drug share"),
    "substitute_control": _("Substitute share control"),
}
"""Appraisal components (``policy.appraisal.COMPONENTS``) as the UI names them."""
