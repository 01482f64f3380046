"""Tests for surplus retention and its internal split (R-G1, R-G3, R-G4; XJ 五(七)); pure, no database."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jicai.policy.money import FEN, ZERO
from jicai.policy.surplus import (
    NOT_SHARED,
    SHENZHEN_2024_GRADE_TABLE,
    XJ_INTERNAL_SPLIT,
    GradeBand,
    GradeTable,
    InternalSplit,
    InternalSplitParams,
    OverspendParams,
    RetainedSurplus,
    SurplusBudgetParams,
    SurplusDrug,
    SurplusLine,
    compute_surplus,
    counted_spending,
    distribute_retained,
    equal_weights,
    retained_surplus,
    split_pool,
    split_retained,
    surplus_budget,
)

D = Decimal


def _budget(
    agreed: str = "10000", price: str = "2.50", ratio: str = "0.8", insured: str = "0.9"
) -> SurplusBudgetParams:
    return SurplusBudgetParams(D(agreed), D(price), D(ratio), D(insured))


# --- 1. budget and surplus (R-G1) ----------------------------------------------------------------


def test_budget_is_agreed_base_times_price_ratio_and_insured_share() -> None:
    # 10,000 tablets × 2.50 yuan × 0.8 × 0.9 = 18,000.00
    assert surplus_budget(_budget()) == D("18000.00")
    # 333 × 1.2345 × 0.75 × 0.85 = 262.0747... -> 262.07 (half-up to the fen)
    assert surplus_budget(_budget("333", "1.2345", "0.75", "0.85")) == D("262.07")
    # 1 × 0.0225 × 1 × 0.5 = 0.01125 -> 0.01; 1 × 0.0250 × 1 × 0.5 = 0.0125 -> 0.01; 0.0275 -> 0.014 -> 0.01
    assert surplus_budget(_budget("1", "0.0250", "1", "0.5")) == D("0.01")
    assert surplus_budget(_budget("1", "0.0100", "1", "0.5")) == D("0.01")  # 0.005 rounds half-up


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("agreed_qty", D(-1), "agreed_qty must be a finite non-negative"),
        ("pre_vbp_unit_price", D("NaN"), "pre_vbp_unit_price must be a finite non-negative"),
        ("pre_vbp_unit_price", 3, "pre_vbp_unit_price must be a finite non-negative"),
        ("fund_payment_ratio", D("1.01"), r"fund_payment_ratio must be a Decimal in \[0, 1\]"),
        ("insured_share", D(-0.1), r"insured_share must be a Decimal in \[0, 1\]"),
        ("insured_share", "0.5", r"insured_share must be a Decimal in \[0, 1\]"),
    ],
)
def test_budget_params_refusals(field: str, value: object, message: str) -> None:
    values: dict[str, object] = {
        "agreed_qty": D(1),
        "pre_vbp_unit_price": D(1),
        "fund_payment_ratio": D(1),
        "insured_share": D(1),
        field: value,
    }
    with pytest.raises(ValueError, match=message):
        SurplusBudgetParams(**values)  # type: ignore[arg-type]


def test_surplus_of_one_drug() -> None:
    result = compute_surplus([SurplusDrug("atorvastatin", _budget(), D("6500.00"))])
    assert result.lines == (SurplusLine("atorvastatin", D("18000.00"), D("6500.00"), D("11500.00")),)
    assert (result.budget, result.counted_spending, result.surplus) == (D("18000.00"), D("6500.00"), D("11500.00"))
    assert (result.overspend, result.institution_overspend, result.fund_overspend) == (ZERO, ZERO, ZERO)


def test_purchases_above_the_agreed_volume_are_excluded() -> None:
    # agreed 10,000, bought 12,500: the budget stays on the agreed base; spending counts 10,000/12,500 of 8,000
    drug = SurplusDrug("atorvastatin", _budget(), D("8000.00"), actual_qty=D(12500))
    assert counted_spending(drug) == D("6400.00")
    result = compute_surplus([drug])
    assert (result.budget, result.counted_spending, result.surplus) == (D("18000.00"), D("6400.00"), D("11600.00"))
    # at or below the agreed volume, or without a quantity, the spending counts in full
    assert counted_spending(SurplusDrug("x", _budget(), D("8000.00"), actual_qty=D(10000))) == D("8000.00")
    assert counted_spending(SurplusDrug("x", _budget(), D("8000.00"), actual_qty=D(9000))) == D("8000.00")
    assert counted_spending(SurplusDrug("x", _budget(), D("8000.00"))) == D("8000.00")
    # the cut share is rounded half-up to the fen: 100.00 × 2/3 = 66.666... -> 66.67
    assert counted_spending(SurplusDrug("x", _budget("2"), D("100.00"), actual_qty=D(3))) == D("66.67")


def test_several_drugs_net_before_overspend_sharing() -> None:
    drugs = [
        SurplusDrug("a", _budget(), D("6500.00")),  # +11,500.00
        SurplusDrug("b", _budget("1000", "1.00", "1", "1"), D("13000.00")),  # 1,000.00 − 13,000.00 = −12,000.00
    ]
    result = compute_surplus(drugs)
    assert [line.surplus for line in result.lines] == [D("11500.00"), D("-12000.00")]
    assert (result.budget, result.counted_spending, result.surplus) == (D("19000.00"), D("19500.00"), D("-500.00"))
    assert (result.overspend, result.institution_overspend, result.fund_overspend) == (D("500.00"), ZERO, D("500.00"))
    shared = compute_surplus(drugs, OverspendParams(D("0.333")))
    # 500.00 × 0.333 = 166.50 borne by the institution, the rest by the fund
    assert (shared.institution_overspend, shared.fund_overspend) == (D("166.50"), D("333.50"))
    assert compute_surplus(drugs, OverspendParams(D(1))).institution_overspend == D("500.00")
    # a surplus leaves nothing to share
    assert compute_surplus(drugs[:1], OverspendParams(D("0.5"))).institution_overspend == ZERO


def test_overspend_share_is_rounded_half_up() -> None:
    drugs = [SurplusDrug("a", _budget("0", "1", "1", "1"), D("0.05"))]
    assert compute_surplus(drugs, OverspendParams(D("0.5"))).institution_overspend == D("0.03")  # 0.025 -> 0.03


def test_surplus_defaults_and_refusals() -> None:
    assert OverspendParams(None) == NOT_SHARED
    assert compute_surplus([]).surplus == ZERO
    with pytest.raises(ValueError, match=r"institution_share must be a Decimal in \[0, 1\]"):
        OverspendParams(D("1.5"))
    with pytest.raises(ValueError, match="only once"):
        compute_surplus([SurplusDrug("a", _budget(), D(0)), SurplusDrug("a", _budget(), D(0))])
    with pytest.raises(ValueError, match="item code"):
        SurplusDrug("", _budget(), D(0))
    with pytest.raises(ValueError, match="actual_fund_spending must be a finite non-negative"):
        SurplusDrug("a", _budget(), D("-1.00"))
    with pytest.raises(ValueError, match="whole number of fen"):
        SurplusDrug("a", _budget(), D("1.001"))
    with pytest.raises(ValueError, match="actual_qty must be a finite non-negative"):
        SurplusDrug("a", _budget(), D(1), actual_qty=D(-5))


_money = st.decimals(min_value=0, max_value=10**8, places=2, allow_nan=False, allow_infinity=False)
_share = st.decimals(min_value=0, max_value=1, places=3, allow_nan=False, allow_infinity=False)


@given(
    agreed=st.integers(min_value=0, max_value=10**7),
    price=st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False, allow_infinity=False),
    ratio=_share,
    insured=_share,
    spending=_money,
    actual_qty=st.one_of(st.none(), st.integers(min_value=0, max_value=2 * 10**7)),
    overspend_share=st.one_of(st.none(), _share),
)
def test_surplus_properties(
    agreed: int,
    price: Decimal,
    ratio: Decimal,
    insured: Decimal,
    spending: Decimal,
    actual_qty: int | None,
    overspend_share: Decimal | None,
) -> None:
    params = SurplusBudgetParams(D(agreed), price, ratio, insured)
    qty = None if actual_qty is None else D(actual_qty)
    result = compute_surplus([SurplusDrug("x", params, spending, qty)], OverspendParams(overspend_share))
    exact_budget = Fraction(agreed) * Fraction(price) * Fraction(ratio) * Fraction(insured)
    assert abs(Fraction(result.budget) - exact_budget) <= Fraction(1, 200)
    assert ZERO <= result.counted_spending <= spending
    assert result.surplus == result.budget - result.counted_spending
    assert result.overspend == max(-result.surplus, ZERO)
    assert result.institution_overspend + result.fund_overspend == result.overspend
    assert ZERO <= result.institution_overspend <= result.overspend
    if overspend_share is None:
        assert result.institution_overspend == ZERO
    for amount in (result.budget, result.counted_spending, result.institution_overspend):
        assert amount == amount.quantize(FEN)


# --- 2. retained share by grade (R-G1, R-G4) -----------------------------------------------------


@pytest.mark.parametrize(
    ("points", "grade", "share"),
    [
        (100, "A", "0.50"),
        (D("80.01"), "A", "0.50"),
        (80, "B", "0.40"),  # 80 is B: A needs more than 80
        (D("70.00"), "B", "0.40"),  # 70 is B
        (D("69.99"), "C", "0.30"),
        (60, "C", "0.30"),  # 60 is C
        (D("59.99"), "D", "0"),
        (0, "D", "0"),
    ],
)
def test_shenzhen_grade_boundaries(points: Decimal | int, grade: str, share: str) -> None:
    result = retained_surplus(D("100000.00"), points, SHENZHEN_2024_GRADE_TABLE)
    assert (result.grade, result.share) == (grade, D(share))
    assert result.retained == (D("100000.00") * D(share)).quantize(FEN)


def test_retained_amounts() -> None:
    assert retained_surplus(D("11500.00"), 85) == RetainedSurplus("A", D("0.50"), D("5750.00"))
    # 0.05 × 0.5 = 0.025 -> 0.03 (half-up to the fen)
    assert retained_surplus(D("0.05"), 81).retained == D("0.03")
    # an overspend retains nothing
    assert retained_surplus(D("-500.00"), 95) == RetainedSurplus("A", D("0.50"), D("0.00"))
    assert retained_surplus(D("1234.56"), D("72.5")).grade == "B"


def test_retained_refusals() -> None:
    with pytest.raises(ValueError, match="surplus must be a finite Decimal"):
        retained_surplus(D("NaN"), 80)
    with pytest.raises(ValueError, match="surplus must be a finite Decimal"):
        retained_surplus(100, 80)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="appraisal points"):
        retained_surplus(D(100), -1)
    with pytest.raises(ValueError, match="appraisal points"):
        retained_surplus(D(100), D("Infinity"))


def test_custom_grade_table() -> None:
    # a region whose A band starts at 90 inclusive and whose B band starts just above 75
    table = GradeTable(
        (
            GradeBand("优", D(90), D("0.5")),
            GradeBand("良", D(75), D("0.3"), inclusive=False),
            GradeBand("合格", D(75), D("0.1")),
            GradeBand("不合格", None, D(0)),
        )
    )
    assert retained_surplus(D(1000), 90, table).grade == "优"
    assert retained_surplus(D(1000), D("75.5"), table).grade == "良"
    assert retained_surplus(D(1000), 75, table) == RetainedSurplus("合格", D("0.1"), D("100.0").quantize(FEN))
    assert retained_surplus(D(1000), 10, table).grade == "不合格"
    assert GradeBand("x", None, D(0)).admits(D(-5))


@pytest.mark.parametrize(
    ("bands", "message"),
    [
        ((), "at least one band"),
        ((GradeBand("A", D(80), D("0.5")),), "last grade band must be the catch-all"),
        ((GradeBand("A", None, D("0.5")), GradeBand("D", None, D(0))), "only the last"),
        (
            (GradeBand("A", D(70), D("0.5")), GradeBand("B", D(80), D("0.4")), GradeBand("D", None, D(0))),
            "highest bound down",
        ),
        (
            (GradeBand("A", D(70), D("0.5")), GradeBand("B", D(70), D("0.4")), GradeBand("D", None, D(0))),
            "highest bound down",
        ),
        (
            (
                GradeBand("A", D(70), D("0.5"), inclusive=False),
                GradeBand("B", D(70), D("0.4"), inclusive=False),
                GradeBand("D", None, D(0)),
            ),
            "highest bound down",
        ),
        ((GradeBand("A", D(70), D("0.5")), GradeBand("A", None, D(0))), "distinct"),
    ],
)
def test_grade_table_refusals(bands: tuple[GradeBand, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GradeTable(bands)


def test_grade_band_refusals() -> None:
    with pytest.raises(ValueError, match="grade name"):
        GradeBand("", D(1), D(0))
    with pytest.raises(ValueError, match="min_points must be a finite Decimal"):
        GradeBand("A", D("Infinity"), D(0))
    with pytest.raises(ValueError, match="min_points must be a finite Decimal"):
        GradeBand("A", 80, D(0))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"share of grade A must be a Decimal in \[0, 1\]"):
        GradeBand("A", D(80), D(2))


def test_shenzhen_table_shape() -> None:
    assert [(b.grade, b.min_points, b.inclusive, b.share) for b in SHENZHEN_2024_GRADE_TABLE.bands] == [
        ("A", D(80), False, D("0.50")),
        ("B", D(70), True, D("0.40")),
        ("C", D(60), True, D("0.30")),
        ("D", None, True, D(0)),
    ]


@given(
    points=st.decimals(min_value=0, max_value=100, places=2),
    surplus=st.decimals(min_value=-(10**8), max_value=10**8, places=2),
)
def test_retained_properties(points: Decimal, surplus: Decimal) -> None:
    result = retained_surplus(surplus, points)
    expected = "A" if points > 80 else "B" if points >= 70 else "C" if points >= 60 else "D"
    assert result.grade == expected
    assert ZERO <= result.retained <= max(surplus, ZERO)
    assert abs(Fraction(result.retained) - Fraction(max(surplus, ZERO)) * Fraction(result.share)) <= Fraction(1, 200)


# --- 3. internal split (R-G3; XJ 五(七)) ----------------------------------------------------------


def test_xj_split_shares() -> None:
    assert InternalSplitParams(D("0.60"), D("0.30"), D("0.10")) == XJ_INTERNAL_SPLIT


def test_split_10000_01_yuan() -> None:
    # exact 6,000.006 / 3,000.003 / 1,000.001: floors leave 1 fen, which goes to the largest remainder (.6)
    assert split_retained(D("10000.01")) == InternalSplit(D("6000.01"), D("3000.00"), D("1000.00"))


@pytest.mark.parametrize(
    ("amount", "prescribers", "pharmacy", "institution"),
    [
        ("61974400", "37184640.00", "18592320.00", "6197440.00"),  # Chongqing paid example
        ("51816800", "31090080.00", "15545040.00", "5181680.00"),  # Handan paid example
        ("0.01", "0.01", "0.00", "0.00"),
        ("0.02", "0.01", "0.01", "0.00"),  # remainders .2 / .6 / .2: pharmacy first, then prescribers by share
        ("0.00", "0.00", "0.00", "0.00"),
    ],
)
def test_split_vectors(amount: str, prescribers: str, pharmacy: str, institution: str) -> None:
    split = split_retained(D(amount))
    assert split == InternalSplit(D(prescribers), D(pharmacy), D(institution))
    assert split.prescribers + split.pharmacy + split.institution == D(amount)


def test_split_ties_follow_pool_order() -> None:
    params = InternalSplitParams(D("0.5"), D("0.5"), D(0))
    assert split_retained(D("0.01"), params) == InternalSplit(D("0.01"), D("0.00"), D("0.00"))
    even = InternalSplitParams(D(1) / 3, D(1) / 3, D(1) - 2 * (D(1) / 3))
    assert split_retained(D("0.02"), even).prescribers == D("0.01")


def test_split_refusals() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        InternalSplitParams(D("0.6"), D("0.3"), D("0.2"))
    with pytest.raises(ValueError, match=r"pharmacy share must be a Decimal in \[0, 1\]"):
        InternalSplitParams(D("0.6"), D("-0.1"), D("0.5"))
    with pytest.raises(ValueError, match="retained amount must be a finite non-negative"):
        split_retained(D("-0.01"))
    with pytest.raises(ValueError, match="retained amount must be a finite non-negative"):
        split_retained(100)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="whole number of fen"):
        split_retained(D("100.005"))
    with pytest.raises(ValueError, match="whole number of fen"):
        split_retained(D("1E+30").scaleb(-40))


def test_split_pool_by_weights_and_equally() -> None:
    assert split_pool(D("100.00"), {"Dr Wang": 2, "Dr Li": 1}) == {"Dr Li": D("33.33"), "Dr Wang": D("66.67")}
    # equal weights: the leftover fen goes by code
    assert split_pool(D("100.00"), equal_weights(["p3", "p1", "p2"])) == {
        "p1": D("33.34"),
        "p2": D("33.33"),
        "p3": D("33.33"),
    }
    # ties go to the larger weight first: exact 0.005 / 0.015
    assert split_pool(D("0.02"), {"a": 1, "b": 3}) == {"a": D("0.00"), "b": D("0.02")}
    # all-zero weights split equally; a zero pool among no one is fine
    assert split_pool(D("0.03"), {"b": 0, "a": 0}) == {"a": D("0.02"), "b": D("0.01")}
    assert split_pool(D("0.00"), {}) == {}
    assert equal_weights([]) == {}


def test_split_pool_refusals() -> None:
    with pytest.raises(ValueError, match="among no one"):
        split_pool(D("1.00"), {})
    with pytest.raises(ValueError, match="non-empty strings"):
        split_pool(D("1.00"), {"": 1})
    with pytest.raises(ValueError, match="weight of a must be"):
        split_pool(D("1.00"), {"a": -1})
    with pytest.raises(ValueError, match="weight of a must be"):
        split_pool(D("1.00"), {"a": D("NaN")})
    with pytest.raises(ValueError, match="pool must be a finite non-negative"):
        split_pool(D("-1.00"), {"a": 1})


def test_distribute_retained_two_levels() -> None:
    result = distribute_retained(
        D("10000.01"),
        prescriber_use={"doc-a": 1200, "doc-b": 600, "doc-c": 0},
        pharmacy_weights=equal_weights(["ph-1", "ph-2", "ph-3"]),
    )
    assert result.pools == InternalSplit(D("6000.01"), D("3000.00"), D("1000.00"))
    # 6,000.01 by 2:1 -> 4,000.006..., 2,000.003... -> the leftover fen to doc-a; zero use gets zero
    assert result.prescribers == {"doc-a": D("4000.01"), "doc-b": D("2000.00"), "doc-c": D("0.00")}
    assert result.pharmacy == {"ph-1": D("1000.00"), "ph-2": D("1000.00"), "ph-3": D("1000.00")}


def test_distribute_the_paid_examples() -> None:
    chongqing = distribute_retained(D("61974400"), {"doc-a": D("3.5"), "doc-b": D("1.5")}, {"ph-1": 2, "ph-2": 1})
    assert chongqing.prescribers == {"doc-a": D("26029248.00"), "doc-b": D("11155392.00")}
    assert chongqing.pharmacy == {"ph-1": D("12394880.00"), "ph-2": D("6197440.00")}
    handan = distribute_retained(D("51816800"), {"doc-a": 1, "doc-b": 1, "doc-c": 1}, equal_weights(["ph"]))
    assert handan.prescribers == {"doc-a": D("10363360.00"), "doc-b": D("10363360.00"), "doc-c": D("10363360.00")}
    assert handan.pharmacy == {"ph": D("15545040.00")}
    assert handan.pools.institution == D("5181680.00")


def test_distribute_refusals_and_edges() -> None:
    with pytest.raises(ValueError, match="no prescriber used the selected drugs"):
        distribute_retained(D("100.00"), {"doc-a": 0}, {"ph": 1})
    with pytest.raises(ValueError, match="no prescriber used the selected drugs"):
        distribute_retained(D("100.00"), {}, {"ph": 1})
    with pytest.raises(ValueError, match="among no one"):
        distribute_retained(D("100.00"), {"doc-a": 1}, {})
    # nothing to distribute: no use needed
    empty = distribute_retained(D("0.00"), {}, {})
    assert empty.pools == InternalSplit(D("0.00"), D("0.00"), D("0.00"))
    assert (empty.prescribers, empty.pharmacy) == ({}, {})
    # a region that gives prescribers nothing needs no prescriber use
    params = InternalSplitParams(D(0), D("0.8"), D("0.2"))
    assert distribute_retained(D("10.00"), {}, {"ph": 1}, params).pharmacy == {"ph": D("8.00")}


_people = st.dictionaries(
    st.text(alphabet="abcxyz", min_size=1, max_size=3),
    st.one_of(st.integers(min_value=0, max_value=10**6), st.decimals(min_value=0, max_value=1000, places=2)),
    min_size=1,
    max_size=12,
)
_fen_amount = st.integers(min_value=0, max_value=10**12).map(lambda fen: D(fen) / 100)
_split_params = (
    st.tuples(st.integers(0, 100), st.integers(0, 100))
    .filter(lambda t: t[0] + t[1] <= 100)
    .map(lambda t: InternalSplitParams(D(t[0]) / 100, D(t[1]) / 100, D(100 - t[0] - t[1]) / 100))
)


@given(amount=_fen_amount, params=_split_params)
def test_split_retained_properties(amount: Decimal, params: InternalSplitParams) -> None:
    split = split_retained(amount, params)
    parts = {"prescribers": split.prescribers, "pharmacy": split.pharmacy, "institution": split.institution}
    shares = {"prescribers": params.prescribers, "pharmacy": params.pharmacy, "institution": params.institution}
    assert sum(parts.values(), ZERO) == amount
    for name, part in parts.items():
        assert part >= 0
        assert part == part.quantize(FEN)
        assert abs(Fraction(part) - Fraction(amount) * Fraction(shares[name])) < Fraction(1, 100)


@given(pool=_fen_amount, weights=_people, data=st.data())
def test_split_pool_properties(pool: Decimal, weights: dict[str, Decimal | int], data: st.DataObject) -> None:
    parts = split_pool(pool, weights)
    assert list(parts) == sorted(weights)
    assert sum(parts.values(), ZERO) == pool
    total = sum((Fraction(D(w)) for w in weights.values()), Fraction(0))
    for person, part in parts.items():
        assert part >= 0
        exact = Fraction(pool) * Fraction(D(weights[person])) / total if total else Fraction(pool) / len(weights)
        assert abs(Fraction(part) - exact) < Fraction(1, 100)
    shuffled = dict(data.draw(st.permutations(list(weights.items()))))
    assert split_pool(pool, shuffled) == parts


@given(amount=_fen_amount, prescribers=_people.filter(lambda p: any(p.values())), pharmacy=_people)
def test_distribute_properties(
    amount: Decimal, prescribers: dict[str, Decimal | int], pharmacy: dict[str, Decimal | int]
) -> None:
    result = distribute_retained(amount, prescribers, pharmacy)
    assert sum(result.prescribers.values(), ZERO) == result.pools.prescribers
    assert sum(result.pharmacy.values(), ZERO) == result.pools.pharmacy
    total = sum(result.prescribers.values(), ZERO) + sum(result.pharmacy.values(), ZERO) + result.pools.institution
    assert total == amount
    assert all(part >= 0 for part in (*result.prescribers.values(), *result.pharmacy.values()))
    for person, use in prescribers.items():
        if use == 0:
            assert result.prescribers[person] == 0


def test_huge_amounts_split_without_decimal_errors() -> None:
    amount = D("1E+26")
    split = split_retained(amount)
    assert split.prescribers + split.pharmacy + split.institution == amount
