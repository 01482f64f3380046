"""Exact money and quantity arithmetic shared by the rules.

All money is ``Decimal``; rounding happens once, at an amount that is paid or reported, half-up
to the fen (分). Unit prices keep four places (semantics.md "Units and money").
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import TypeVar

FEN = Decimal("0.01")
UNIT_PRICE_PLACES = Decimal("0.0001")
ZERO = Decimal(0)
ONE = Decimal(1)

K = TypeVar("K", bound=Hashable)


def to_decimal(value: Decimal | int | str) -> Decimal:
    """Decimal from an int, a Decimal or a decimal string; floats are refused (they carry noise)."""
    if isinstance(value, float):  # pragma: no cover - guarded by typing, kept for callers without it
        raise TypeError("floats are not accepted as money or quantities; pass a string or Decimal")
    return value if isinstance(value, Decimal) else Decimal(value)


def round_fen(amount: Decimal) -> Decimal:
    """Round an amount half-up to 0.01 yuan (分)."""
    return amount.quantize(FEN, rounding=ROUND_HALF_UP)


def unit_price(pack_price: Decimal, pack_size: int) -> Decimal:
    """Price per minimum unit from a price per pack, to four places (semantics.md)."""
    if pack_size <= 0:
        raise ValueError("pack size must be positive")
    return (pack_price / Decimal(pack_size)).quantize(UNIT_PRICE_PLACES, rounding=ROUND_HALF_UP)


def largest_remainder(
    total: Decimal | int,
    weights: Mapping[K, Decimal | int],
    *,
    quantum: Decimal = ONE,
    tie_break: Sequence[K] | None = None,
) -> dict[K, Decimal]:
    """Split ``total`` in proportion to ``weights`` into multiples of ``quantum`` that sum exactly.

    Each key first gets its proportional share rounded down to the quantum; the units left over go
    one each to the largest remainders. Ties go to the larger weight, then to the order of
    ``tie_break`` (default: sorted keys), so the result is deterministic. With all weights zero the
    split is equal. ``total`` must be a multiple of ``quantum``.
    """
    total_d = to_decimal(total)
    if total_d < 0:
        raise ValueError("total must not be negative")
    units_total = total_d / quantum
    if units_total != units_total.to_integral_value():
        raise ValueError("total must be a multiple of the quantum")
    if not weights:
        if total_d == 0:
            return {}
        raise ValueError("cannot allocate a positive total over no keys")
    w = {k: to_decimal(v) for k, v in weights.items()}
    if any(v < 0 for v in w.values()):
        raise ValueError("weights must not be negative")
    order = list(tie_break) if tie_break is not None else sorted(w, key=str)
    rank = {k: i for i, k in enumerate(order)}
    weight_sum = sum(w.values(), ZERO)
    if weight_sum == 0:
        w = dict.fromkeys(w, ONE)
        weight_sum = Decimal(len(w))
    units = int(units_total)
    floors: dict[K, int] = {}
    remainders: dict[K, Decimal] = {}
    for key, weight in w.items():
        exact = Decimal(units) * weight / weight_sum
        floor = int(exact)
        floors[key] = floor
        remainders[key] = exact - floor
    left = units - sum(floors.values())
    winners = sorted(w, key=lambda k: (-remainders[k], -w[k], rank.get(k, len(rank)), str(k)))
    for key in winners[:left]:
        floors[key] += 1
    return {k: Decimal(floors[k]) * quantum for k in w}
