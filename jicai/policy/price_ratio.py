"""Price-ratio rules (差比价) and the unit comparable price (单位可比价) (R-B1, R-D2).

One generic's strengths, fill volumes, pack sizes and dosage forms compete as one unit, so every
product's price is converted to the terms of a *representative* product (代表品). Rules as summarised
from NDRC 2011 No. 2452 (rule-facts "Price-ratio rules"; the coefficients are **unconfirmed** against
the original, hence all configurable in ``PriceRatioCoefficients``)::

    content        P = P_rep × 1.7 ^ log2(content / content_rep)       (per minimum unit)
    fill volume    P = P_rep × 1.9 ^ log2(volume / volume_rep)         (per minimum unit)
    pack quantity  K = 1.95 ^ log2(packs / packs_rep)  oral solids     (per pack)
                   K = 2.0  ^ log2(packs / packs_rep)  other forms     (= packs / packs_rep)
    dosage form    P = P_rep × factor(form) / factor(form_rep)

The **price factor** ``F`` of a product is its pack price over the representative's pack price when
both are priced alike: the product of the four factors above. Then::

    comparable unit price = pack price / F / representative pack size
    pack price            = representative unit price × representative pack size × F

(``Representative`` bundles the representative's ``Specification`` and pack size.)

Decimal method: ``c ^ log2(r)`` is computed as ``exp(ln(c) × (ln(value) − ln(reference)) / ln(2))`` in a
local decimal context of ``WORK_PRECISION`` (40) significant digits; every intermediate product stays at
that precision. A value leaving this module is first *snapped* to ``PRECISION`` (28) significant digits,
which absorbs the working noise (about 1e-38 relative): a result whose exact value has at most 28
significant digits — e.g. 0.0001 × 14 × 115/14 × 1.7 = 0.01955 — comes out exact, so the final half-up
rounding never falls on the wrong side of a half. Two cases are exact by construction: a ratio that is a
power of two (``r = 2^n``) gives ``c ** n`` (so doubling the content multiplies by exactly 1.7), and a
coefficient of 2 gives ``r`` itself. A ratio of 1 always gives a factor of exactly 1. Prices are then
rounded once, half-up, to 4 places (``money.UNIT_PRICE_PLACES``); pass ``places=None`` to get the snapped,
unrounded value.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

from jicai.policy.money import ONE, UNIT_PRICE_PLACES, ZERO, to_decimal

__all__ = [
    "DEFAULT_COEFFICIENTS",
    "DEFAULT_DOSAGE_FORM_FACTORS",
    "PRECISION",
    "WORK_PRECISION",
    "PriceRatioCoefficients",
    "Representative",
    "Specification",
    "comparable_unit_price",
    "pack_price_from_representative",
    "price_factor",
    "ratio_power",
]

PRECISION = 28
"""Significant digits of every value this module returns (the working value snapped to this)."""

WORK_PRECISION = PRECISION + 12
"""Significant digits of the decimal context used for ln/exp and the products (12 guard digits)."""

TWO = Decimal(2)


@dataclass(frozen=True, slots=True)
class Specification:
    """What the price-ratio rules compare between a product and its representative (R-B1).

    ``content``: active content per minimum unit (any unit, the same for both products).
    ``fill_volume``: volume per minimum unit (injections, solutions), ``None`` where not used — then
    for both products. ``dosage_form``: a key of the coefficients' form factors, ``None`` to skip the
    form adjustment — then for both products. ``oral_solid`` selects the pack-quantity coefficient.
    """

    content: Decimal
    dosage_form: str | None = None
    fill_volume: Decimal | None = None
    oral_solid: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.content, Decimal) or not self.content.is_finite() or self.content <= 0:
            raise ValueError(f"content must be a positive Decimal, got {self.content!r}")
        if self.fill_volume is not None and (not self.fill_volume.is_finite() or self.fill_volume <= 0):
            raise ValueError(f"fill volume must be a positive Decimal, got {self.fill_volume!r}")


@dataclass(frozen=True, slots=True)
class Representative:
    """The representative product (代表品) of a competition unit: its specification and pack size (R-B1)."""

    spec: Specification
    pack_size: int

    def __post_init__(self) -> None:
        if self.pack_size <= 0:
            raise ValueError(f"representative pack size must be positive, got {self.pack_size}")


@dataclass(frozen=True, slots=True)
class PriceRatioCoefficients:
    """Coefficients of the price-ratio rules (R-B1); all *unconfirmed* against NDRC 2011 No. 2452.

    ``dosage_form_factors`` is a tuple of ``(form, factor)`` pairs (immutable and hashable; build it with
    ``tuple(mapping.items())``).
    """

    content: Decimal
    fill_volume: Decimal
    pack_oral_solid: Decimal
    pack_other: Decimal
    dosage_form_factors: tuple[tuple[str, Decimal], ...]

    def __post_init__(self) -> None:
        for name in ("content", "fill_volume", "pack_oral_solid", "pack_other"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
                raise ValueError(f"coefficient {name} must be a positive Decimal, got {value!r}")
        forms = [form for form, _factor in self.dosage_form_factors]
        if len(set(forms)) != len(forms):
            raise ValueError("a dosage form appears twice among the form factors")
        for form, factor in self.dosage_form_factors:
            if not isinstance(factor, Decimal) or not factor.is_finite() or factor <= 0:
                raise ValueError(f"form factor of {form} must be a positive Decimal, got {factor!r}")

    def form_factor(self, form: str) -> Decimal:
        """The factor of dosage form ``form``; ``ValueError`` for an unknown form."""
        for known, factor in self.dosage_form_factors:
            if known == form:
                return factor
        raise ValueError(f"no price-ratio factor for dosage form {form!r}")


DEFAULT_DOSAGE_FORM_FACTORS: tuple[tuple[str, Decimal], ...] = (
    ("tablet", Decimal("1.0")),
    ("chewable_tablet", Decimal("1.05")),
    ("buccal_tablet", Decimal("1.05")),
    ("soluble_tablet", Decimal("1.05")),
    ("enteric_tablet", Decimal("1.1")),
    ("dispersible_tablet", Decimal("1.2")),
    ("effervescent_tablet", Decimal("1.3")),
    ("hard_capsule", Decimal("1.0")),
    ("enteric_capsule", Decimal("1.1")),
    ("soft_capsule", Decimal("1.2")),
)
"""Dosage-form factors seen in one provincial tool (rule-facts; *unconfirmed*): plain tablet 1.0;
chewable / buccal / soluble 1.05; enteric(-coated) tablet 1.1; dispersible 1.2; effervescent 1.3; hard
capsule 1.0; enteric capsule 1.1; soft capsule 1.2."""

DEFAULT_COEFFICIENTS = PriceRatioCoefficients(
    content=Decimal("1.7"),
    fill_volume=Decimal("1.9"),
    pack_oral_solid=Decimal("1.95"),
    pack_other=Decimal("2.0"),
    dosage_form_factors=DEFAULT_DOSAGE_FORM_FACTORS,
)
"""NDRC 2011 No. 2452 as summarised in rule-facts (*unconfirmed*): content 1.7, fill volume 1.9, pack
quantity 1.95 for oral solids and 2.0 elsewhere, plus ``DEFAULT_DOSAGE_FORM_FACTORS``."""


def _power_of_two_exponent(ratio: Fraction) -> int | None:
    """``n`` when ``ratio == 2 ** n`` for an integer ``n``, else ``None``."""
    num, den = ratio.numerator, ratio.denominator
    if den == 1 and num & (num - 1) == 0:
        return num.bit_length() - 1
    if num == 1 and den & (den - 1) == 0:
        return -(den.bit_length() - 1)
    return None


def _snap(value: Decimal) -> Decimal:
    """``value`` rounded (half-even) to ``PRECISION`` significant digits, dropping the working noise."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return +value


def _ratio_power(coefficient: Decimal, value: Decimal, reference: Decimal) -> Decimal:
    for name, number in (("coefficient", coefficient), ("value", value), ("reference", reference)):
        if not number.is_finite() or number <= 0:
            raise ValueError(f"{name} must be positive, got {number!r}")
    exponent = _power_of_two_exponent(Fraction(value) / Fraction(reference))
    with localcontext() as ctx:
        ctx.prec = WORK_PRECISION
        if exponent is not None:
            return coefficient**exponent if exponent >= 0 else ONE / coefficient**-exponent
        if coefficient == TWO:
            return value / reference
        return (coefficient.ln() * (value.ln() - reference.ln()) / TWO.ln()).exp()


def ratio_power(coefficient: Decimal, value: Decimal, reference: Decimal) -> Decimal:
    """``coefficient ^ log2(value / reference)`` to ``PRECISION`` significant digits (R-B1 price-ratio rules).

    Why: every price-ratio rule scales a price by a coefficient per doubling of content, volume or
    pack quantity. Exact for a ratio of 1, for a power-of-two ratio and for a coefficient of 2;
    otherwise ``exp(ln(c) × log2(r))`` computed at ``WORK_PRECISION`` and snapped.
    """
    return _snap(_ratio_power(coefficient, value, reference))


def _price_factor(
    spec: Specification, pack_size: int, representative: Representative, coefficients: PriceRatioCoefficients
) -> Decimal:
    rep = representative.spec
    if pack_size <= 0:
        raise ValueError(f"pack size must be positive, got {pack_size}")
    if spec.oral_solid != rep.oral_solid:
        raise ValueError("a product and its representative must both be oral solids or both not")
    if (spec.fill_volume is None) != (rep.fill_volume is None):
        raise ValueError("give a fill volume for both the product and its representative, or for neither")
    if (spec.dosage_form is None) != (rep.dosage_form is None):
        raise ValueError("give a dosage form for both the product and its representative, or for neither")
    pack_coefficient = coefficients.pack_oral_solid if spec.oral_solid else coefficients.pack_other
    with localcontext() as ctx:
        ctx.prec = WORK_PRECISION
        factor = _ratio_power(coefficients.content, spec.content, rep.content)
        if spec.fill_volume is not None and rep.fill_volume is not None:
            factor *= _ratio_power(coefficients.fill_volume, spec.fill_volume, rep.fill_volume)
        factor *= _ratio_power(pack_coefficient, Decimal(pack_size), Decimal(representative.pack_size))
        if spec.dosage_form is not None and rep.dosage_form is not None:
            factor *= coefficients.form_factor(spec.dosage_form) / coefficients.form_factor(rep.dosage_form)
        return factor


def price_factor(
    spec: Specification, pack_size: int, representative: Representative, coefficients: PriceRatioCoefficients
) -> Decimal:
    """Pack price of ``spec`` × ``pack_size`` over the representative's pack price (R-B1).

    Why: the price-ratio relation merges strengths, volumes, packs and forms of one generic into one
    competition unit (SX 四(一)1) and converts non-selected quantities (R-D2). The factor is the
    product of the content, fill-volume, pack-quantity and dosage-form factors, to ``PRECISION``
    significant digits; exactly 1 for the representative itself.
    """
    return _snap(_price_factor(spec, pack_size, representative, coefficients))


def _round(value: Decimal, places: Decimal | None) -> Decimal:
    return value if places is None else value.quantize(places, rounding=ROUND_HALF_UP)


def comparable_unit_price(
    pack_price: Decimal | int | str,
    pack_size: int,
    spec: Specification,
    representative: Representative,
    coefficients: PriceRatioCoefficients,
    *,
    places: Decimal | None = UNIT_PRICE_PLACES,
) -> Decimal:
    """Unit comparable price: a product's pack price in the representative's terms, per minimum unit (R-B1).

    Why: bids on different strengths and packs of one generic are ranked and qualified on this price
    (R-B2). = pack price ÷ price factor ÷ representative pack size, rounded half-up to ``places``
    (default 4; ``None``: unrounded, to ``PRECISION`` significant digits).
    """
    price = to_decimal(pack_price)
    if not price.is_finite() or price < ZERO:
        raise ValueError(f"pack price must be a non-negative number, got {pack_price!r}")
    factor = _price_factor(spec, pack_size, representative, coefficients)
    with localcontext() as ctx:
        ctx.prec = WORK_PRECISION
        unrounded = price / (factor * Decimal(representative.pack_size))
    return _round(_snap(unrounded), places)


def pack_price_from_representative(
    representative_unit_price: Decimal | int | str,
    pack_size: int,
    spec: Specification,
    representative: Representative,
    coefficients: PriceRatioCoefficients,
    *,
    places: Decimal | None = UNIT_PRICE_PLACES,
) -> Decimal:
    """Pack price of a product derived from the representative's unit price (inverse of the above) (R-B1).

    Why: a winning price set on the representative extends to the generic's other strengths and packs
    by the price-ratio relation. = representative unit price × representative pack size × price factor,
    rounded half-up to ``places`` (default 4; ``None``: unrounded, to ``PRECISION`` significant digits);
    round to fen where it is paid.
    """
    price = to_decimal(representative_unit_price)
    if not price.is_finite() or price < ZERO:
        raise ValueError(f"representative unit price must be a non-negative number, got {representative_unit_price!r}")
    factor = _price_factor(spec, pack_size, representative, coefficients)
    with localcontext() as ctx:
        ctx.prec = WORK_PRECISION
        unrounded = price * Decimal(representative.pack_size) * factor
    return _round(_snap(unrounded), places)
