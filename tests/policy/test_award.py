"""Award rules: validity, qualification, maximum winners, supply regions (R-B1, R-B2)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from jicai.policy.award import (
    BATCH7_QUALIFICATION,
    BATCH9_MAX_WINNERS,
    BATCH10_MAX_WINNERS,
    BATCH10_QUALIFICATION,
    Bid,
    NonWinReason,
    QualificationRules,
    assign_regions,
    award,
    max_winners,
    qualifies,
)
from jicai.policy.volumes import NATIONAL_BATCH7, NATIONAL_SPECIAL_ANTIMICROBIAL, SHANXI_TERMS

D = Decimal


# ---------------------------------------------------------------------------------------------------
# qualification


def test_batch7_routes() -> None:
    # 1.8 x the lowest (the ceiling route would need <= 1.5)
    assert qualifies(D("1.8"), D("1"), D("3"), BATCH7_QUALIFICATION)
    assert not qualifies(D("1.81"), D("1"), D("3"), BATCH7_QUALIFICATION)
    # absolute 0.10 yuan, even far above 1.8 x the lowest (the ceiling route would need <= 0.075)
    assert qualifies(D("0.10"), D("0.01"), D("0.15"), BATCH7_QUALIFICATION)
    assert not qualifies(D("0.1001"), D("0.01"), D("0.15"), BATCH7_QUALIFICATION)
    # 50% below the ceiling, even far above 1.8 x the lowest
    assert qualifies(D("5"), D("1"), D("10"), BATCH7_QUALIFICATION)
    assert not qualifies(D("5.01"), D("1"), D("10"), BATCH7_QUALIFICATION)


def test_batch10_drops_the_ceiling_route() -> None:
    assert qualifies(D("5"), D("1"), D("10"), BATCH7_QUALIFICATION)
    assert not qualifies(D("5"), D("1"), D("10"), BATCH10_QUALIFICATION)
    assert qualifies(D("1.8"), D("1"), D("10"), BATCH10_QUALIFICATION)
    assert qualifies(D("0.1"), D("0.01"), D("10"), BATCH10_QUALIFICATION)


def test_single_route_rules() -> None:
    only_cut = QualificationRules(None, None, D("0.5"))
    assert not qualifies(D("1"), D("1"), D("1.5"), only_cut)
    assert qualifies(D("0.75"), D("0.75"), D("1.5"), only_cut)
    only_ratio = QualificationRules(D("1.8"), None, None)
    assert not qualifies(D("0.1"), D("0.01"), D("1"), only_ratio)


def test_qualifies_rejects_impossible_inputs() -> None:
    with pytest.raises(ValueError, match="lowest valid price"):
        qualifies(D("1"), D("2"), D("10"), BATCH7_QUALIFICATION)
    with pytest.raises(ValueError, match="lowest valid price"):
        qualifies(D("1"), D("0"), D("10"), BATCH7_QUALIFICATION)
    with pytest.raises(ValueError, match="invalid"):
        qualifies(D("11"), D("1"), D("10"), BATCH7_QUALIFICATION)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((None, None, None), "at least one"),
        ((D("0.9"), None, None), "ratio_to_lowest"),
        ((D("Infinity"), None, None), "ratio_to_lowest"),
        ((None, D("0"), None), "absolute_max"),
        ((None, D("NaN"), None), "absolute_max"),
        ((None, None, D("1")), "cut_vs_max_valid"),
        ((None, None, D("0")), "cut_vs_max_valid"),
        ((None, None, D("sNaN")), "cut_vs_max_valid"),
    ],
)
def test_rules_validation(args: tuple[Decimal | None, Decimal | None, Decimal | None], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        QualificationRules(*args)


def test_bid_validation() -> None:
    with pytest.raises(ValueError, match="company name"):
        Bid("", D("1"))
    with pytest.raises(ValueError, match="positive"):
        Bid("A", D("0"))
    with pytest.raises(ValueError, match="positive"):
        Bid("A", D("-1"))
    with pytest.raises(ValueError, match="positive"):
        Bid("A", D("Infinity"))
    with pytest.raises(ValueError, match="positive"):
        Bid("A", 1.0)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------
# maximum winners


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (BATCH9_MAX_WINNERS, [1, 2, 2, 3, 4, 4, 5, 6, 7, 8, 9, 9, 10, 10, 10, 10, 10, 10]),
        (BATCH10_MAX_WINNERS, [1, 2, 2, 3, 3, 3, 4, 5, 6, 6, 7, 8, 8, 9, 9, 10, 10, 10]),
    ],
)
def test_max_winners_tables(table: tuple[int, ...], expected: list[int]) -> None:
    assert [max_winners(n, table) for n in range(1, 19)] == expected
    assert max_winners(0, table) == 0
    assert max_winners(100, table) == 10


def test_max_winners_validation() -> None:
    with pytest.raises(ValueError, match="negative"):
        max_winners(-1, BATCH9_MAX_WINNERS)
    with pytest.raises(ValueError, match="empty"):
        max_winners(1, ())
    with pytest.raises(ValueError, match=r"entry 3 for 2 bidders"):
        max_winners(1, (1, 3))
    with pytest.raises(ValueError, match=r"entry 0 for 1 bidders"):
        max_winners(1, (0,))


# ---------------------------------------------------------------------------------------------------
# supply regions


def test_round_robin_with_preferences() -> None:
    regions = ["BJ", "SH", "GD", "SC", "HN"]
    prefs = {"A": ["GD", "SH"], "B": ["GD", "BJ"], "C": ["HN"]}
    assert assign_regions(["A", "B", "C"], regions, prefs) == {
        "A": ("GD", "SH"),  # round 1: first choice; round 2: GD is taken by A itself, SH free
        "B": ("BJ", "SC"),  # round 1: GD taken, BJ next; round 2: no free preference, first free region
        "C": ("HN",),
    }


def test_winner_without_preferences_takes_first_free_region() -> None:
    assert assign_regions(["A", "B"], ["X", "Y", "Z"], {}) == {"A": ("X", "Z"), "B": ("Y",)}


def test_more_winners_than_regions() -> None:
    assert assign_regions(["A", "B", "C"], ["X", "Y"], {"C": ["X"]}) == {"A": ("X",), "B": ("Y",), "C": ()}


def test_no_regions() -> None:
    assert assign_regions(["A"], [], {}) == {"A": ()}


def test_assign_regions_validation() -> None:
    with pytest.raises(ValueError, match="twice among the winners"):
        assign_regions(["A", "A"], ["X"], {})
    with pytest.raises(ValueError, match="listed twice"):
        assign_regions(["A"], ["X", "X"], {})
    with pytest.raises(ValueError, match="unknown regions: Q"):
        assign_regions(["A"], ["X"], {"A": ["X", "Q"]})
    with pytest.raises(ValueError, match="without winners"):
        assign_regions([], ["X"], {})


# ---------------------------------------------------------------------------------------------------
# award


def _bids(**prices: str) -> list[Bid]:
    return [Bid(company, D(price)) for company, price in prices.items()]


def test_award_full_sequence() -> None:
    bids = _bids(A="1.00", B="1.50", C="1.80", D="2.50", E="6.00", F="12.00", G="1.20")
    result = award(
        bids,
        D("10"),
        BATCH10_QUALIFICATION,
        BATCH10_MAX_WINNERS,
        regions=["R1", "R2", "R3", "R4", "R5"],
        preferences={"B": ["R3"], "A": ["R3", "R1"]},
        shares_by_winners=NATIONAL_BATCH7,
        region_bases={"R1": 101, "R2": 203, "R3": 305, "R4": 407, "R5": 509},
    )
    # F invalid (> ceiling); D and E not qualified (> 1.8); A, G, B, C qualified -> 4 bidders -> 3 winners.
    assert result.lowest_valid_price == D("1.00")
    assert result.qualified_count == 4
    assert result.max_winners == 3
    assert [w.company for w in result.winners] == ["A", "G", "B"]
    assert [w.rank for w in result.winners] == [1, 2, 3]
    assert [w.unit_price for w in result.winners] == [D("1.00"), D("1.20"), D("1.50")]
    assert result.agreed_share == D("0.7")
    assert result.term_years == 2
    # picks: A R3; G R1 (first free); B R2 (preference taken); A R4 (R3 done, R1 taken -> first free); G R5
    assert {w.company: w.regions for w in result.winners} == {"A": ("R3", "R4"), "G": ("R1", "R5"), "B": ("R2",)}
    # agreed volume summed per region: A 305*0.7=213.5->214, 407*0.7=284.9->285; G 70.7->71, 356.3->356
    assert {w.company: w.agreed_qty for w in result.winners} == {"A": D(499), "G": D(427), "B": D(142)}
    assert all(w.agreed_share == D("0.7") for w in result.winners)
    assert [(n.company, n.reason) for n in result.non_winners] == [
        ("C", NonWinReason.BEYOND_MAX_WINNERS),
        ("D", NonWinReason.NOT_QUALIFIED),
        ("E", NonWinReason.NOT_QUALIFIED),
        ("F", NonWinReason.INVALID),
    ]
    assert result.non_winners[0].unit_price == D("1.80")


def test_batch7_ceiling_route_qualifies_more() -> None:
    bids = _bids(A="1.00", B="4.00", C="6.00")
    b7 = award(bids, D("10"), BATCH7_QUALIFICATION, BATCH9_MAX_WINNERS, regions=[], preferences={})
    b10 = award(bids, D("10"), BATCH10_QUALIFICATION, BATCH9_MAX_WINNERS, regions=[], preferences={})
    assert [w.company for w in b7.winners] == ["A", "B"]  # 2 qualified -> 2 winners
    assert [(n.company, n.reason) for n in b7.non_winners] == [("C", NonWinReason.NOT_QUALIFIED)]
    assert [w.company for w in b10.winners] == ["A"]
    assert b7.agreed_share is None
    assert b7.term_years is None
    assert b7.winners[0].regions == ()
    assert b7.winners[0].agreed_qty is None


def test_ties_break_by_company_name() -> None:
    bids = _bids(Zeta="1.00", Alpha="1.00")
    result = award(bids, D("2"), BATCH10_QUALIFICATION, (1,), regions=["X", "Y"], preferences={"Zeta": ["X"]})
    assert [w.company for w in result.winners] == ["Alpha"]
    assert result.winners[0].regions == ("X", "Y")
    assert result.non_winners[0].reason is NonWinReason.BEYOND_MAX_WINNERS


def test_all_bids_invalid() -> None:
    result = award(
        _bids(A="3", B="4"),
        D("2"),
        BATCH7_QUALIFICATION,
        BATCH9_MAX_WINNERS,
        regions=["X"],
        preferences={},
        shares_by_winners=NATIONAL_BATCH7,
    )
    assert result.winners == ()
    assert result.lowest_valid_price is None
    assert result.qualified_count == 0
    assert result.max_winners == 0
    assert result.agreed_share is None
    assert {n.reason for n in result.non_winners} == {NonWinReason.INVALID}


def test_no_bids() -> None:
    result = award([], D("2"), BATCH7_QUALIFICATION, BATCH9_MAX_WINNERS, regions=[], preferences={})
    assert result.winners == ()
    assert result.non_winners == ()


def test_shanxi_table_gives_term_only() -> None:
    result = award(
        _bids(A="1", B="1.1"),
        D("2"),
        BATCH10_QUALIFICATION,
        BATCH9_MAX_WINNERS,
        regions=["X"],
        preferences={},
        shares_by_winners=SHANXI_TERMS,
    )
    assert result.agreed_share is None
    assert result.term_years == 2


def test_published_style_sum_per_region() -> None:
    # One winner of a special antimicrobial supplies every region: its agreed volume is the sum of the
    # per-region rounded volumes, which differs from rounding the national product.
    bases = {"P1": 5, "P2": 5, "P3": 5}
    result = award(
        _bids(A="5"),
        D("10"),
        BATCH7_QUALIFICATION,
        BATCH9_MAX_WINNERS,
        regions=list(bases),
        preferences={},
        shares_by_winners=NATIONAL_SPECIAL_ANTIMICROBIAL,
        region_bases=bases,
    )
    assert result.agreed_share == D("0.3")
    assert result.winners[0].agreed_qty == D(6)  # 1.5 -> 2, three times; 15 x 0.3 = 4.5 -> 5 once


def test_award_validation() -> None:
    bids = _bids(A="1")
    with pytest.raises(ValueError, match="maximum valid bid price"):
        award(bids, D("0"), BATCH7_QUALIFICATION, BATCH9_MAX_WINNERS, regions=[], preferences={})
    with pytest.raises(ValueError, match="maximum valid bid price"):
        award(bids, D("NaN"), BATCH7_QUALIFICATION, BATCH9_MAX_WINNERS, regions=[], preferences={})
    with pytest.raises(ValueError, match="only once"):
        award([*bids, Bid("A", D("2"))], D("5"), BATCH7_QUALIFICATION, BATCH9_MAX_WINNERS, regions=[], preferences={})
    with pytest.raises(ValueError, match="need a winner table"):
        award(
            bids, D("5"), BATCH7_QUALIFICATION, BATCH9_MAX_WINNERS, regions=["X"], preferences={}, region_bases={"X": 1}
        )
    with pytest.raises(ValueError, match="exactly the regions"):
        award(
            bids,
            D("5"),
            BATCH7_QUALIFICATION,
            BATCH9_MAX_WINNERS,
            regions=["X"],
            preferences={},
            shares_by_winners=NATIONAL_BATCH7,
            region_bases={"Y": 1},
        )
    with pytest.raises(ValueError, match="sets no agreed share"):
        award(
            bids,
            D("5"),
            BATCH7_QUALIFICATION,
            BATCH9_MAX_WINNERS,
            regions=["X"],
            preferences={},
            shares_by_winners=SHANXI_TERMS,
            region_bases={"X": 1},
        )
    with pytest.raises(ValueError, match="non-negative"):
        award(
            bids,
            D("5"),
            BATCH7_QUALIFICATION,
            BATCH9_MAX_WINNERS,
            regions=["X"],
            preferences={},
            shares_by_winners=NATIONAL_BATCH7,
            region_bases={"X": -1},
        )


# ---------------------------------------------------------------------------------------------------
# Properties

prices = st.decimals(min_value=D("0.0001"), max_value=D("100"), places=4)
rule_sets = st.sampled_from([BATCH7_QUALIFICATION, BATCH10_QUALIFICATION, QualificationRules(None, None, D("0.3"))])
tables = st.sampled_from([BATCH9_MAX_WINNERS, BATCH10_MAX_WINNERS, (1,), (1, 1, 1, 2)])


@given(values=st.lists(prices, min_size=4, max_size=4), rules=rule_sets)
def test_qualification_monotone_in_price(values: list[Decimal], rules: QualificationRules) -> None:
    lowest, low_price, high_price, ceiling = sorted(values)
    if qualifies(high_price, lowest, ceiling, rules):
        assert qualifies(low_price, lowest, ceiling, rules)


@given(values=st.lists(prices, min_size=2, max_size=2), rules=rule_sets)
def test_lowest_bid_qualifies_under_ratio_rules(values: list[Decimal], rules: QualificationRules) -> None:
    lowest, ceiling = sorted(values)
    assume(rules.ratio_to_lowest is not None)
    assert qualifies(lowest, lowest, ceiling, rules)


@st.composite
def tenders(draw: st.DrawFn) -> tuple[list[Bid], Decimal, list[str], dict[str, list[str]]]:
    companies = draw(st.lists(st.text(alphabet="ABCDEFGHIJ", min_size=1, max_size=3), unique=True, max_size=20))
    bids = [Bid(company, draw(prices)) for company in companies]
    ceiling = draw(prices)
    regions = draw(st.lists(st.sampled_from([f"R{i}" for i in range(12)]), unique=True, max_size=12))
    prefs = {
        company: draw(st.lists(st.sampled_from(regions), unique=True, max_size=4)) if regions else []
        for company in companies
    }
    return bids, ceiling, regions, prefs


@given(tender=tenders(), rules=rule_sets, table=tables)
def test_award_invariants(
    tender: tuple[list[Bid], Decimal, list[str], dict[str, list[str]]],
    rules: QualificationRules,
    table: tuple[int, ...],
) -> None:
    bids, ceiling, regions, prefs = tender
    result = award(bids, ceiling, rules, table, regions=regions, preferences=prefs, shares_by_winners=NATIONAL_BATCH7)
    # winners never exceed the table, and there is a winner whenever someone qualified
    assert len(result.winners) == result.max_winners == max_winners(result.qualified_count, table)
    assert (len(result.winners) > 0) == (result.qualified_count > 0)
    # every bid is accounted for exactly once
    assert len(result.winners) + len(result.non_winners) == len(bids)
    # winners are the cheapest qualified bids, ranked by price then name
    ranked = [(w.unit_price, w.company) for w in result.winners]
    assert ranked == sorted(ranked)
    beyond = [n for n in result.non_winners if n.reason is NonWinReason.BEYOND_MAX_WINNERS]
    assert all(ranked[-1] <= (n.unit_price, n.company) for n in beyond)
    assert all(n.unit_price > ceiling for n in result.non_winners if n.reason is NonWinReason.INVALID)
    # every region assigned exactly once when there is a winner
    if result.winners:
        assigned = [region for w in result.winners for region in w.regions]
        assert sorted(assigned) == sorted(regions)
        counts = [len(w.regions) for w in result.winners]
        assert max(counts) - min(counts) <= 1
        assert counts == sorted(counts, reverse=True)
