"""Agreed share, agreed volume and contract term (R-B3, R-C1)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jicai.policy.volumes import (
    CHONGQING_RATIO_RANGE,
    NATIONAL_BATCH7,
    NATIONAL_SPECIAL_ANTIMICROBIAL,
    SHANXI_MAX_EXTENSION_YEARS,
    SHANXI_RATIO_RANGE,
    SHANXI_TERMS,
    RatioRange,
    WinnerBand,
    WinnerTable,
    agreed_volume,
    contract_term,
    share_and_term,
)

D = Decimal

# Provincial-level regions in a national round: 31 provinces plus the Xinjiang Production and
# Construction Corps. Summing per-region rounded volumes can drift from one rounding of the national
# product by at most half a unit per region.
NATIONAL_REGIONS = 32


# ---------------------------------------------------------------------------------------------------
# share_and_term


@pytest.mark.parametrize(
    ("winners", "share", "years"),
    [(1, "0.5", 1), (2, "0.6", 1), (3, "0.7", 2), (4, "0.8", 3), (5, "0.8", 3), (40, "0.8", 3)],
)
def test_batch7_share_and_term(winners: int, share: str, years: int) -> None:
    assert share_and_term(winners, NATIONAL_BATCH7) == (D(share), years)


@pytest.mark.parametrize(("winners", "share", "years"), [(1, "0.3", 1), (2, "0.4", 1), (3, "0.5", 2), (8, "0.5", 2)])
def test_special_antimicrobial_share_and_term(winners: int, share: str, years: int) -> None:
    assert share_and_term(winners, NATIONAL_SPECIAL_ANTIMICROBIAL) == (D(share), years)


def test_shanxi_terms() -> None:
    assert share_and_term(1, SHANXI_TERMS) == (None, 1)
    assert share_and_term(2, SHANXI_TERMS) == (None, 2)
    assert share_and_term(3, SHANXI_TERMS) == (None, 2)


def test_shanxi_says_nothing_about_four_winners() -> None:
    with pytest.raises(ValueError, match="no row for 4 winners"):
        share_and_term(4, SHANXI_TERMS)


def test_zero_winners_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        share_and_term(0, NATIONAL_BATCH7)


# ---------------------------------------------------------------------------------------------------
# table validation


def test_band_covers() -> None:
    band = WinnerBand(2, 3, None, 2)
    assert [band.covers(n) for n in (1, 2, 3, 4)] == [False, True, True, False]
    assert WinnerBand(4, None, D("0.8"), 3).covers(1000)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 1, None, 1), "min_winners"),
        ((3, 2, None, 1), "below min_winners"),
        ((1, 1, D("0"), 1), "share"),
        ((1, 1, D("1.2"), 1), "share"),
        ((1, 1, D("NaN"), 1), "share"),
        ((1, 1, None, 0), "term_years"),
    ],
)
def test_band_validation(args: tuple[int, int | None, Decimal | None, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WinnerBand(*args)


def test_share_must_be_decimal() -> None:
    with pytest.raises(ValueError, match="share"):
        WinnerBand(1, 1, 0.5, 1)  # type: ignore[arg-type]


def test_table_validation() -> None:
    with pytest.raises(ValueError, match="at least one row"):
        WinnerTable(())
    with pytest.raises(ValueError, match="contiguous"):
        WinnerTable((WinnerBand(2, None, None, 1),))
    with pytest.raises(ValueError, match="contiguous"):
        WinnerTable((WinnerBand(1, 1, None, 1), WinnerBand(3, None, None, 2)))
    with pytest.raises(ValueError, match="contiguous"):
        WinnerTable((WinnerBand(1, 2, None, 1), WinnerBand(2, None, None, 2)))
    with pytest.raises(ValueError, match="open-ended"):
        WinnerTable((WinnerBand(1, None, None, 1), WinnerBand(2, None, None, 2)))


def test_ratio_range_validation_and_text() -> None:
    with pytest.raises(ValueError, match="above high"):
        RatioRange(D("0.8"), D("0.5"))
    with pytest.raises(ValueError, match="low"):
        RatioRange(D("0"), D("0.5"))
    assert str(SHANXI_RATIO_RANGE) == "50%–80%"
    assert D("0.5") in SHANXI_RATIO_RANGE
    assert D("0.8") in SHANXI_RATIO_RANGE
    assert D("0.81") not in SHANXI_RATIO_RANGE
    assert 0.6 not in SHANXI_RATIO_RANGE  # floats are never in range


# ---------------------------------------------------------------------------------------------------
# agreed_volume


def test_agreed_volume_rounds_half_up() -> None:
    assert agreed_volume(3, D("0.5"), None) == D(2)  # 1.5 -> 2
    assert agreed_volume(5, D("0.5"), SHANXI_RATIO_RANGE) == D(3)  # 2.5 -> 3
    assert agreed_volume(D("1001"), D("0.6"), CHONGQING_RATIO_RANGE) == D(601)  # 600.6 -> 601
    assert agreed_volume("1000", D("0.65"), CHONGQING_RATIO_RANGE) == D(650)
    assert agreed_volume(0, D("0.5"), None) == D(0)


def test_agreed_volume_range_errors_name_the_range() -> None:
    with pytest.raises(ValueError, match=r"outside the allowed range 50%–80%"):
        agreed_volume(1000, D("0.9"), SHANXI_RATIO_RANGE)
    with pytest.raises(ValueError, match=r"45% lies outside the allowed range 50%–80%"):
        agreed_volume(1000, D("0.45"), SHANXI_RATIO_RANGE)
    with pytest.raises(ValueError, match=r"60%–70%"):
        agreed_volume(1000, D("0.8"), CHONGQING_RATIO_RANGE)


def test_agreed_volume_jilin_uses_national_ratio_without_range() -> None:
    share, _years = share_and_term(2, NATIONAL_BATCH7)
    assert share is not None
    assert agreed_volume(12_345, share, None) == D(7407)  # 7407.0


@pytest.mark.parametrize(
    ("base", "ratio", "message"),
    [(-1, D("0.5"), "non-negative"), ("NaN", D("0.5"), "non-negative"), (10, D("0"), "ratio"), (10, D("1.5"), "ratio")],
)
def test_agreed_volume_impossible_inputs(base: int | str, ratio: Decimal, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        agreed_volume(base, ratio, None)


# ---------------------------------------------------------------------------------------------------
# Published national vectors (rule-facts). They were summed per province, so they are NOT asserted as
# the national total × ratio; these tests show why, and how close a single rounding comes.

AFATINIB_TOTAL = 596_327
AFATINIB_PUBLISHED = {1: 298_170, 2: 357_795}
MEROPENEM_TOTAL = 7_286_887
MEROPENEM_PUBLISHED = {1: 2_186_064, 2: 2_914_753, 3: 3_643_450}


def test_sum_of_per_region_rounding_differs_from_rounding_the_total() -> None:
    # Three regions each at a half unit: rounding each region half-up gains 0.5 per region.
    bases = [1, 1, 1]
    per_region = sum(agreed_volume(base, D("0.5"), None) for base in bases)
    total = agreed_volume(sum(bases), D("0.5"), None)
    assert per_region == D(3)
    assert total == D(2)  # 1.5 -> 2
    assert per_region != total


def test_per_region_sum_never_drifts_more_than_half_a_unit_per_region() -> None:
    bases = [10_003, 20_007, 7, 99_999, 1]
    for ratio in (D("0.3"), D("0.5"), D("0.7")):
        per_region = sum(agreed_volume(base, ratio, None) for base in bases)
        exact = sum(bases) * ratio
        assert abs(per_region - exact) <= D("0.5") * len(bases)


@pytest.mark.parametrize(("winners", "published"), sorted(AFATINIB_PUBLISHED.items()))
def test_afatinib_published_close_to_plain_rounding(winners: int, published: int) -> None:
    share, _years = share_and_term(winners, NATIONAL_BATCH7)
    assert share is not None
    plain = agreed_volume(AFATINIB_TOTAL, share, None)
    assert abs(plain - published) <= NATIONAL_REGIONS // 2
    assert plain in {D(298_164), D(357_796)}  # what one rounding of the national product gives


@pytest.mark.parametrize(("winners", "published"), sorted(MEROPENEM_PUBLISHED.items()))
def test_meropenem_published_close_to_plain_rounding(winners: int, published: int) -> None:
    share, _years = share_and_term(winners, NATIONAL_SPECIAL_ANTIMICROBIAL)
    assert share is not None
    plain = agreed_volume(MEROPENEM_TOTAL, share, None)
    assert abs(plain - published) <= NATIONAL_REGIONS // 2
    assert plain in {D(2_186_066), D(2_914_755), D(3_643_444)}


# ---------------------------------------------------------------------------------------------------
# contract_term


def test_contract_term_shanxi() -> None:
    assert contract_term(1, SHANXI_TERMS, False, SHANXI_MAX_EXTENSION_YEARS) == 1
    assert contract_term(1, SHANXI_TERMS, True, SHANXI_MAX_EXTENSION_YEARS) == 2
    assert contract_term(2, SHANXI_TERMS, False, SHANXI_MAX_EXTENSION_YEARS) == 2
    assert contract_term(3, SHANXI_TERMS, True, SHANXI_MAX_EXTENSION_YEARS) == 3


def test_contract_term_national() -> None:
    assert contract_term(4, NATIONAL_BATCH7, False, 0) == 3


def test_contract_term_errors() -> None:
    with pytest.raises(ValueError, match="allows none"):
        contract_term(1, NATIONAL_BATCH7, True, 0)
    with pytest.raises(ValueError, match="negative"):
        contract_term(1, SHANXI_TERMS, False, -1)
    with pytest.raises(ValueError, match="no row"):
        contract_term(4, SHANXI_TERMS, True, SHANXI_MAX_EXTENSION_YEARS)


# ---------------------------------------------------------------------------------------------------
# Properties

bases = st.integers(min_value=0, max_value=10**9)
ratios = st.decimals(min_value=D("0.01"), max_value=D("1"), places=3)
ranges = st.sampled_from([None, SHANXI_RATIO_RANGE, CHONGQING_RATIO_RANGE])


@given(base=bases, extra=st.integers(min_value=0, max_value=10**6), ratio=ratios)
def test_agreed_volume_monotone_in_base(base: int, extra: int, ratio: Decimal) -> None:
    assert agreed_volume(base, ratio, None) <= agreed_volume(base + extra, ratio, None)


@given(base=bases, r1=ratios, r2=ratios)
def test_agreed_volume_monotone_in_ratio(base: int, r1: Decimal, r2: Decimal) -> None:
    low, high = sorted((r1, r2))
    assert agreed_volume(base, low, None) <= agreed_volume(base, high, None)


@given(base=bases, ratio=ratios, allowed=ranges)
def test_agreed_volume_within_range_or_raises(base: int, ratio: Decimal, allowed: RatioRange | None) -> None:
    try:
        qty = agreed_volume(base, ratio, allowed)
    except ValueError as error:
        assert allowed is not None
        assert ratio not in allowed
        assert str(allowed) in str(error)
        return
    assert allowed is None or ratio in allowed
    low = allowed.low if allowed is not None else D(0)
    high = allowed.high if allowed is not None else D(1)
    assert (base * low).quantize(D(1), rounding=ROUND_HALF_UP) <= qty
    assert qty <= (base * high).quantize(D(1), rounding=ROUND_HALF_UP)
    assert abs(qty - base * ratio) <= D("0.5")
    assert qty == qty.to_integral_value()
