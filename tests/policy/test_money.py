"""Tests for the shared money helpers (semantics.md "Units and money"); pure, no database."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jicai.policy.money import FEN, ONE, UNIT_PRICE_PLACES, ZERO, largest_remainder, round_fen, to_decimal, unit_price

# --- to_decimal / round_fen / unit_price ---------------------------------------------------------


def test_constants() -> None:
    assert (Decimal("0.01"), Decimal("0.0001"), Decimal(0), Decimal(1)) == (FEN, UNIT_PRICE_PLACES, ZERO, ONE)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(7, Decimal(7)), ("12.345", Decimal("12.345")), (Decimal("0.10"), Decimal("0.10"))],
)
def test_to_decimal_accepts_int_str_decimal(value: Decimal | int | str, expected: Decimal) -> None:
    result = to_decimal(value)
    assert result == expected
    assert isinstance(result, Decimal)


def test_to_decimal_returns_the_same_decimal() -> None:
    value = Decimal("1.50")
    assert to_decimal(value) is value


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("0.005", "0.01"),
        ("0.004999", "0.00"),
        ("1.235", "1.24"),
        ("-0.005", "-0.01"),
        ("10000.01", "10000.01"),
    ],
)
def test_round_fen_is_half_up(amount: str, expected: str) -> None:
    assert round_fen(Decimal(amount)) == Decimal(expected)
    assert round_fen(Decimal(amount)).as_tuple().exponent == -2


def test_unit_price_four_places_half_up() -> None:
    # 112.3267 yuan per pack of 7 -> 16.04667... -> 16.0467 (rule-facts afatinib ceiling)
    assert unit_price(Decimal("112.3267"), 7) == Decimal("16.0467")
    assert unit_price(Decimal("0.00005"), 1) == Decimal("0.0001")
    assert unit_price(Decimal("10"), 4) == Decimal("2.5000")


@pytest.mark.parametrize("pack_size", [0, -3])
def test_unit_price_refuses_non_positive_pack(pack_size: int) -> None:
    with pytest.raises(ValueError, match="pack size must be positive"):
        unit_price(Decimal(1), pack_size)


# --- largest_remainder: examples -----------------------------------------------------------------


def test_largest_remainder_example() -> None:
    # 10 over 1:1:1 -> 3.33 each; the one unit left goes to the first key in sorted order
    assert largest_remainder(10, {"b": 1, "a": 1, "c": 1}) == {"b": Decimal(3), "a": Decimal(4), "c": Decimal(3)}


def test_largest_remainder_remainders_decide_first() -> None:
    # exact 4.6, 3.45, 1.95 -> floors 4, 3, 1 (8); two left to remainders .95 and .6
    assert largest_remainder(10, {"a": Decimal("0.46"), "b": Decimal("0.345"), "c": Decimal("0.195")}) == {
        "a": Decimal(5),
        "b": Decimal(3),
        "c": Decimal(2),
    }


def test_largest_remainder_tie_goes_to_larger_weight() -> None:
    # exact 0.5 and 1.5: equal remainders; the unit goes to the larger weight even though "a" sorts first
    assert largest_remainder(2, {"a": 1, "b": 3}) == {"a": Decimal(0), "b": Decimal(2)}


def test_largest_remainder_tie_then_tie_break_order() -> None:
    assert largest_remainder(1, {"a": 1, "b": 1}) == {"a": Decimal(1), "b": Decimal(0)}
    assert largest_remainder(1, {"a": 1, "b": 1}, tie_break=["b", "a"]) == {"a": Decimal(0), "b": Decimal(1)}


def test_largest_remainder_keys_missing_from_tie_break_come_last() -> None:
    assert largest_remainder(1, {"a": 1, "b": 1, "c": 1}, tie_break=["c"]) == {
        "a": Decimal(0),
        "b": Decimal(0),
        "c": Decimal(1),
    }
    assert largest_remainder(2, {"a": 1, "b": 1, "c": 1}, tie_break=["c"]) == {
        "a": Decimal(1),
        "b": Decimal(0),
        "c": Decimal(1),
    }


def test_largest_remainder_all_zero_weights_split_equally() -> None:
    assert largest_remainder(5, {"x": 0, "y": 0}) == {"x": Decimal(3), "y": Decimal(2)}


def test_largest_remainder_in_fen() -> None:
    parts = largest_remainder(Decimal("0.10"), {"a": 1, "b": 1, "c": 1}, quantum=FEN)
    assert parts == {"a": Decimal("0.04"), "b": Decimal("0.03"), "c": Decimal("0.03")}


def test_largest_remainder_empty() -> None:
    assert largest_remainder(0, {}) == {}
    with pytest.raises(ValueError, match="over no keys"):
        largest_remainder(1, {})


def test_largest_remainder_refusals() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        largest_remainder(-1, {"a": 1})
    with pytest.raises(ValueError, match="multiple of the quantum"):
        largest_remainder(Decimal("1.5"), {"a": 1})
    with pytest.raises(ValueError, match="multiple of the quantum"):
        largest_remainder(Decimal("0.005"), {"a": 1}, quantum=FEN)
    with pytest.raises(ValueError, match="weights must not be negative"):
        largest_remainder(1, {"a": 1, "b": -1})


# --- largest_remainder: properties ---------------------------------------------------------------

_weights = st.dictionaries(
    st.text(alphabet="abcdef", min_size=1, max_size=3),
    st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=8,
)


@given(total_units=st.integers(min_value=0, max_value=10**9), weights=_weights, in_fen=st.booleans())
def test_largest_remainder_properties(total_units: int, weights: dict[str, Decimal], in_fen: bool) -> None:
    quantum = FEN if in_fen else ONE
    total = Decimal(total_units) * quantum
    parts = largest_remainder(total, weights, quantum=quantum)
    assert set(parts) == set(weights)
    assert sum(parts.values(), ZERO) == total
    weight_sum = sum(weights.values(), ZERO)
    for key, part in parts.items():
        assert part >= 0
        assert part % quantum == 0
        exact = total * weights[key] / weight_sum if weight_sum else total / len(weights)
        assert abs(part - exact) < quantum
    # deterministic whatever the insertion order
    assert largest_remainder(total, dict(reversed(list(weights.items()))), quantum=quantum) == parts
