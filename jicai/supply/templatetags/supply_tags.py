"""Small display filters of the supply pages."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django import template

register = template.Library()


@register.filter
def percent(value: Decimal | None) -> str:
    """A rate (0.6667) as a percentage to two places (66.67%); a dash when unknown."""
    if value is None:
        return "—"
    return f"{(Decimal(value) * 100).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)}%"


@register.filter
def qty(value: Decimal | None) -> str:
    """A quantity as counted (1200, 0.5) without trailing zeros; a dash when unknown."""
    if value is None:
        return "—"
    text = format(Decimal(value), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
