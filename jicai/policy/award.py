"""Award of a tender variety: validity, qualification, winners and supply regions (R-B1, R-B2).

Reading of the national rules (rule-facts "Qualifying to win", "Maximum winners", "Supply regions"):

1. **Valid bids.** A bid whose unit comparable price (单位可比价, yuan per minimum unit, see
   ``jicai.policy.price_ratio``) is above the maximum valid bid price (最高有效申报价, the *ceiling*) is
   invalid.
2. **Qualified bids.** A valid bid qualifies to win if ANY enabled route of ``QualificationRules``
   holds: price ≤ ``ratio_to_lowest`` × the lowest valid price; price ≤ ``absolute_max`` yuan; or price at
   least ``cut_vs_max_valid`` below the ceiling (price ≤ ceiling × (1 − cut)).
3. **Winners.** Qualified bids ranked by price, ties by company name; the first ``max_winners(n)``
   win, where ``n`` is the number of qualified bidders and the table gives the cap for 1, 2, … bidders
   (its last entry applies to every larger count).
4. **Supply regions.** The cheapest winner picks a region first, then each winner in rank order picks
   one remaining region per round until none remain. A pick is the winner's first preference still
   free; with no free preference, the first free region in the order the regions were given.
5. **Agreed share.** With a winner table (``jicai.policy.volumes``) the agreed share for the number
   of winners applies to each region's volume base, and each region is supplied by the one winner
   that picked it, so a winner's agreed volume is the sum over its regions of
   ``agreed_volume(region base, share)`` — the way national figures are built, province by province.
   (The spare-region choice — each winner's backup regions, not its own — is out of scope here.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from jicai.policy.money import ONE, ZERO, to_decimal
from jicai.policy.volumes import WinnerTable, agreed_volume, share_and_term

__all__ = [
    "BATCH7_QUALIFICATION",
    "BATCH9_MAX_WINNERS",
    "BATCH10_MAX_WINNERS",
    "BATCH10_QUALIFICATION",
    "AwardResult",
    "Bid",
    "NonWinReason",
    "NonWinner",
    "QualificationRules",
    "Winner",
    "assign_regions",
    "award",
    "max_winners",
    "qualifies",
]


@dataclass(frozen=True, slots=True)
class Bid:
    """One company's bid for a variety: its unit comparable price in yuan per minimum unit (R-B1)."""

    company: str
    unit_price: Decimal

    def __post_init__(self) -> None:
        if not self.company:
            raise ValueError("a bid needs a company name")
        if not isinstance(self.unit_price, Decimal) or not self.unit_price.is_finite() or self.unit_price <= 0:
            raise ValueError(f"bid of {self.company}: unit price must be a positive Decimal, got {self.unit_price!r}")


@dataclass(frozen=True, slots=True)
class QualificationRules:
    """Routes by which a valid bid qualifies to win (R-B2); ``None`` disables a route.

    ``ratio_to_lowest``: price ≤ this × the lowest valid price (≥ 1). ``absolute_max``: price ≤ this
    many yuan per unit. ``cut_vs_max_valid``: price at least this share below the ceiling (0 < cut < 1).
    At least one route must be enabled.
    """

    ratio_to_lowest: Decimal | None
    absolute_max: Decimal | None
    cut_vs_max_valid: Decimal | None

    def __post_init__(self) -> None:
        if self.ratio_to_lowest is None and self.absolute_max is None and self.cut_vs_max_valid is None:
            raise ValueError("qualification rules need at least one enabled route")
        if self.ratio_to_lowest is not None and not (self.ratio_to_lowest.is_finite() and self.ratio_to_lowest >= ONE):
            raise ValueError(f"ratio_to_lowest must be at least 1, got {self.ratio_to_lowest!r}")
        if self.absolute_max is not None and not (self.absolute_max.is_finite() and self.absolute_max > ZERO):
            raise ValueError(f"absolute_max must be positive, got {self.absolute_max!r}")
        if self.cut_vs_max_valid is not None and not (
            self.cut_vs_max_valid.is_finite() and ZERO < self.cut_vs_max_valid < ONE
        ):
            raise ValueError(f"cut_vs_max_valid must lie strictly between 0 and 1, got {self.cut_vs_max_valid!r}")


BATCH7_QUALIFICATION = QualificationRules(Decimal("1.8"), Decimal("0.10"), Decimal("0.5"))
"""National batch 7: ≤ 1.8 × the lowest; or ≤ 0.10 yuan; or ≥ 50% below the ceiling (rule-facts)."""

BATCH10_QUALIFICATION = QualificationRules(Decimal("1.8"), Decimal("0.10"), None)
"""National batch 10: as batch 7 without the 50%-below-ceiling route (rule-facts)."""

BATCH9_MAX_WINNERS: tuple[int, ...] = (1, 2, 2, 3, 4, 4, 5, 6, 7, 8, 9, 9, 10, 10, 10, 10)
"""National batch 9: maximum winners for 1…15 qualified bidders, last entry for ≥ 16 (rule-facts)."""

BATCH10_MAX_WINNERS: tuple[int, ...] = (1, 2, 2, 3, 3, 3, 4, 5, 6, 6, 7, 8, 8, 9, 9, 10)
"""National batch 10: maximum winners for 1…15 qualified bidders, last entry for ≥ 16 (rule-facts)."""


class NonWinReason(StrEnum):
    """Why a bid did not win."""

    INVALID = "invalid"  # above the maximum valid bid price
    NOT_QUALIFIED = "not_qualified"  # valid, but no qualification route holds
    BEYOND_MAX_WINNERS = "beyond_max_winners"  # qualified, ranked after the last winner


@dataclass(frozen=True, slots=True)
class Winner:
    """A winning company: rank (1 = cheapest), price, supply regions and its agreed share/volume.

    ``agreed_share`` is the share for the number of winners from the winner table (``None`` without a
    table or where the table sets none); ``agreed_qty`` is the sum over its regions of the region base ×
    share rounded per region (``None`` without region bases).
    """

    company: str
    rank: int
    unit_price: Decimal
    regions: tuple[str, ...]
    agreed_share: Decimal | None
    agreed_qty: Decimal | None


@dataclass(frozen=True, slots=True)
class NonWinner:
    """A bid that did not win, and why."""

    company: str
    unit_price: Decimal
    reason: NonWinReason


@dataclass(frozen=True, slots=True)
class AwardResult:
    """Outcome of ``award``: winners in rank order, non-winners in bid-price order, and the numbers used."""

    winners: tuple[Winner, ...]
    non_winners: tuple[NonWinner, ...]
    lowest_valid_price: Decimal | None
    qualified_count: int
    max_winners: int
    agreed_share: Decimal | None
    term_years: int | None


def qualifies(price: Decimal, lowest: Decimal, ceiling: Decimal, rules: QualificationRules) -> bool:
    """True when a valid bid at ``price`` qualifies to win, given the lowest valid price (R-B2).

    Why: batch rules let a bid win only if it is close enough to the lowest bid, very cheap in
    absolute terms, or deeply cut against the ceiling; any enabled route suffices.
    """
    if not ZERO < lowest <= price:
        raise ValueError(f"the lowest valid price {lowest} must be positive and not above the price {price}")
    if price > ceiling:
        raise ValueError(f"price {price} is above the ceiling {ceiling}: the bid is invalid, not unqualified")
    if rules.ratio_to_lowest is not None and price <= rules.ratio_to_lowest * lowest:
        return True
    if rules.absolute_max is not None and price <= rules.absolute_max:
        return True
    return rules.cut_vs_max_valid is not None and price <= ceiling * (ONE - rules.cut_vs_max_valid)


def max_winners(qualified: int, table: Sequence[int]) -> int:
    """Maximum number of winners for ``qualified`` qualified bidders (R-B2).

    Why: national batches scale the number of winners with competition. ``table[i]`` is the cap for
    ``i + 1`` bidders and the last entry applies to every larger count; no bidders, no winners.
    """
    if qualified < 0:
        raise ValueError(f"number of qualified bidders must not be negative, got {qualified}")
    if not table:
        raise ValueError("the maximum-winners table is empty")
    for index, cap in enumerate(table):
        if not 1 <= cap <= index + 1:
            raise ValueError(f"maximum-winners table entry {cap} for {index + 1} bidders must lie in 1..{index + 1}")
    if qualified == 0:
        return 0
    return table[min(qualified, len(table)) - 1]


def assign_regions(
    ranked_winners: Sequence[str], regions: Sequence[str], preferences: Mapping[str, Sequence[str]]
) -> dict[str, tuple[str, ...]]:
    """Supply regions per winner by round-robin picking in rank order (R-B2; rule-facts "Supply regions").

    Why: the cheapest winner chooses first and each winner in turn takes one remaining region per
    round until none remain. A pick is the winner's first free preference, else the first free region
    in ``regions`` order. Returns each winner's regions in the order picked.
    """
    if len(set(ranked_winners)) != len(ranked_winners):
        raise ValueError("a company appears twice among the winners")
    if len(set(regions)) != len(regions):
        raise ValueError("a region is listed twice")
    known = set(regions)
    for company, wanted in preferences.items():
        unknown = [region for region in wanted if region not in known]
        if unknown:
            raise ValueError(f"preferences of {company} name unknown regions: {', '.join(unknown)}")
    if regions and not ranked_winners:
        raise ValueError("regions cannot be assigned without winners")
    free = list(regions)
    picked: dict[str, list[str]] = {company: [] for company in ranked_winners}
    while free:
        for company in ranked_winners:
            if not free:
                break
            choice = next((region for region in preferences.get(company, ()) if region in free), free[0])
            free.remove(choice)
            picked[company].append(choice)
    return {company: tuple(chosen) for company, chosen in picked.items()}


def award(
    bids: Sequence[Bid],
    ceiling: Decimal,
    rules: QualificationRules,
    max_winners_table: Sequence[int],
    *,
    regions: Sequence[str],
    preferences: Mapping[str, Sequence[str]],
    shares_by_winners: WinnerTable | None = None,
    region_bases: Mapping[str, Decimal | int] | None = None,
) -> AwardResult:
    """Award a variety: winners ranked by price, their regions and agreed shares, and why others lost (R-B1, R-B2).

    Why: implements the batch award sequence (ceiling → qualification → cap on winners → region
    picking). ``shares_by_winners`` gives the agreed share and term for the number of winners;
    ``region_bases`` (volume base per region, needs the table) gives each winner's agreed volume as
    the sum of its regions' per-region rounded agreed volumes.
    """
    ceiling = to_decimal(ceiling)
    if not ceiling.is_finite() or ceiling <= 0:
        raise ValueError(f"the maximum valid bid price must be positive, got {ceiling!r}")
    companies = [bid.company for bid in bids]
    if len(set(companies)) != len(companies):
        raise ValueError("a company may bid only once per variety")
    if region_bases is not None:
        if shares_by_winners is None:
            raise ValueError("region bases need a winner table to give the agreed share")
        if set(region_bases) != set(regions):
            raise ValueError("region bases must name exactly the regions to assign")

    ordered = sorted(bids, key=lambda bid: (bid.unit_price, bid.company))
    valid = [bid for bid in ordered if bid.unit_price <= ceiling]
    lowest = valid[0].unit_price if valid else None
    qualified = [bid for bid in valid if qualifies(bid.unit_price, valid[0].unit_price, ceiling, rules)]
    cap = max_winners(len(qualified), max_winners_table)
    winning = qualified[:cap]
    winning_names = {bid.company for bid in winning}
    qualified_names = {bid.company for bid in qualified}

    non_winners = []
    for bid in ordered:
        if bid.company in winning_names:
            continue
        if bid.unit_price > ceiling:
            reason = NonWinReason.INVALID
        elif bid.company not in qualified_names:
            reason = NonWinReason.NOT_QUALIFIED
        else:
            reason = NonWinReason.BEYOND_MAX_WINNERS
        non_winners.append(NonWinner(bid.company, bid.unit_price, reason))

    share: Decimal | None = None
    term: int | None = None
    if winning and shares_by_winners is not None:
        share, term = share_and_term(len(winning), shares_by_winners)
        if region_bases is not None and share is None:
            raise ValueError("the winner table sets no agreed share, so region bases cannot be converted")

    volume_share = share if region_bases is not None else None
    assigned = assign_regions([bid.company for bid in winning], regions, preferences) if winning else {}
    winners = []
    for rank, bid in enumerate(winning, start=1):
        own = assigned[bid.company]
        qty: Decimal | None = None
        if region_bases is not None and volume_share is not None:
            qty = sum((agreed_volume(region_bases[region], volume_share, None) for region in own), ZERO)
        winners.append(Winner(bid.company, rank, bid.unit_price, own, share, qty))

    return AwardResult(
        winners=tuple(winners),
        non_winners=tuple(non_winners),
        lowest_valid_price=lowest,
        qualified_count=len(qualified),
        max_winners=cap,
        agreed_share=share,
        term_years=term,
    )
