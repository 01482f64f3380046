"""Insurance-fund prepayment tranches (R-E2; semantics.md "Prepayment tranches").

The fund prepays an institution part of its agreed amount in tranches. Each tranche is a share of
the agreed amount and a trigger saying when it is released. Triggers form a small algebra of frozen
dataclasses with a text form that regional profiles use and that ``str()`` gives back::

    start                                        period start
    volume_share(0.5)                            cumulative counted quantity >= 50% of the agreed quantity
    period_share(0.5)                            elapsed share of the agreement year >= 50%
    any_of(period_share(0.5), volume_share(0.5)) the first of several
    completion                                   cumulative counted quantity >= the agreed quantity
    clearing                                     period end: actual use at the winning price minus what
                                                 the other tranches paid (negative: the institution owes)

Purchases are given as accepted purchase *events* (acceptance date, counted quantity), in any order;
the rule sorts and accumulates them itself. Only events inside the agreement year and on or before the
as-of date count.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from jicai.policy.money import ONE, UNIT_PRICE_PLACES, ZERO, round_fen, to_decimal

# --------------------------------------------------------------------------------------------------
# Triggers


def _check_fraction(value: Decimal, what: str) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or not ZERO < value <= ONE:
        raise ValueError(f"{what} must be a Decimal in (0, 1], got {value!r}")


@dataclass(frozen=True, slots=True)
class Start:
    """Fires on the first day of the agreement year (R-E2: XA, JL, CQ, SX "in advance")."""

    def __str__(self) -> str:
        return "start"


@dataclass(frozen=True, slots=True)
class VolumeShare:
    """Fires on the acceptance date on which cumulative counted quantity first reaches ``share`` × agreed."""

    share: Decimal

    def __post_init__(self) -> None:
        _check_fraction(self.share, "volume_share")

    def __str__(self) -> str:
        return f"volume_share({format(self.share, 'f')})"


@dataclass(frozen=True, slots=True)
class PeriodShare:
    """Fires on the first day whose elapsed share of the agreement year reaches ``share``."""

    share: Decimal

    def __post_init__(self) -> None:
        _check_fraction(self.share, "period_share")

    def __str__(self) -> str:
        return f"period_share({format(self.share, 'f')})"


@dataclass(frozen=True, slots=True)
class Completion:
    """Fires on the acceptance date on which cumulative counted quantity first reaches the agreed quantity."""

    def __str__(self) -> str:
        return "completion"


@dataclass(frozen=True, slots=True)
class Clearing:
    """Fires on the last day of the agreement year, once the as-of date has reached it."""

    def __str__(self) -> str:
        return "clearing"


@dataclass(frozen=True, slots=True)
class AnyOf:
    """Fires on the earliest date any member fires (JL: half the period *or* half the volume)."""

    triggers: tuple[Trigger, ...]

    def __post_init__(self) -> None:
        if not self.triggers:
            raise ValueError("any_of needs at least one trigger")
        if any(isinstance(t, Clearing) for t in self.triggers):
            raise ValueError("clearing cannot be part of any_of: it pays actual use, not a share")

    def __str__(self) -> str:
        return f"any_of({', '.join(str(t) for t in self.triggers)})"


Trigger = Start | VolumeShare | PeriodShare | AnyOf | Completion | Clearing

_WORD = re.compile(r"\s*([A-Za-z_]+)")
_NUMBER = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?|\.[0-9]+)")
_FORMS = "start, completion, clearing, volume_share(x), period_share(x), any_of(trigger, ...)"


class _TriggerParser:
    """Recursive-descent parser over the profile text of a trigger."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, expected: str) -> ValueError:
        return ValueError(
            f"bad prepayment trigger {self.text!r}: expected {expected} at position {self.pos}; known forms: {_FORMS}"
        )

    def punct(self, char: str) -> bool:
        rest = self.text[self.pos :]
        if rest.lstrip().startswith(char):
            self.pos += len(rest) - len(rest.lstrip()) + 1
            return True
        return False

    def expect(self, char: str) -> None:
        if not self.punct(char):
            raise self.fail(repr(char))

    def number(self) -> Decimal:
        match = _NUMBER.match(self.text, self.pos)
        if match is None:
            raise self.fail("a decimal number such as 0.5")
        self.pos = match.end()
        return Decimal(match.group(1))

    def trigger(self) -> Trigger:
        match = _WORD.match(self.text, self.pos)
        if match is None:
            raise self.fail("a trigger name")
        name = match.group(1).lower()
        self.pos = match.end()
        if name in _BARE:
            return _BARE[name]
        if name in ("volume_share", "period_share"):
            self.expect("(")
            share = self.number()
            self.expect(")")
            return VolumeShare(share) if name == "volume_share" else PeriodShare(share)
        if name == "any_of":
            self.expect("(")
            members = [self.trigger()]
            while self.punct(","):
                members.append(self.trigger())
            self.expect(")")
            return AnyOf(tuple(members))
        self.pos = match.start(1)
        raise self.fail("a known trigger name")


_BARE: dict[str, Trigger] = {"start": Start(), "completion": Completion(), "clearing": Clearing()}


def parse_trigger(text: str) -> Trigger:
    """Parse a profile's trigger text (R-E2) into a trigger; ``str(trigger)`` gives the text back.

    Names are case-insensitive and spaces are free; anything else raises ``ValueError``.
    """
    parser = _TriggerParser(text)
    trigger = parser.trigger()
    if text[parser.pos :].strip():
        raise parser.fail("end of text")
    return trigger


# --------------------------------------------------------------------------------------------------
# Tranches and regional defaults


@dataclass(frozen=True, slots=True)
class Tranche:
    """One prepayment tranche: a share of the agreed amount released by a trigger (R-E2).

    A ``clearing`` tranche pays actual use, not a share, so its share must be 0.
    """

    share: Decimal
    trigger: Trigger

    def __post_init__(self) -> None:
        if isinstance(self.trigger, Clearing):
            if self.share != ZERO:
                raise ValueError("a clearing tranche pays actual use, so its share must be 0")
        else:
            _check_fraction(self.share, f"share of tranche {self.trigger}")


_HALF = Decimal("0.5")

#: Xi'an (XA 三(三)1): 50% of the agreed amount as working capital at start, 40% more once 50% of the
#: agreed volume is purchased, clearing on actual use after the supply period.
XIAN_TRANCHES = (
    Tranche(Decimal("0.50"), Start()),
    Tranche(Decimal("0.40"), VolumeShare(_HALF)),
    Tranche(ZERO, Clearing()),
)
#: Jilin (JL 三(五)): 50% at start, the remaining 45% when half the period has passed or half the contract
#: volume is done, the last 5% after the contract volume is completed.
JILIN_TRANCHES = (
    Tranche(Decimal("0.50"), Start()),
    Tranche(Decimal("0.45"), AnyOf((PeriodShare(_HALF), VolumeShare(_HALF)))),
    Tranche(Decimal("0.05"), Completion()),
)
#: Chongqing (CQ 二(七)): not less than 50% of the purchase amount in advance (a minimum a profile may
#: raise), then clearing at the year end (CQ 二(八) 年终清算).
CHONGQING_TRANCHES = (Tranche(Decimal("0.50"), Start()), Tranche(ZERO, Clearing()))
#: Shanxi (SX 五(四)): not less than 30% of the annual agreed amount, then clearing at period end.
SHANXI_TRANCHES = (Tranche(Decimal("0.30"), Start()), Tranche(ZERO, Clearing()))
#: National default (2024 notice, rule-facts.md): not less than 30% of the annual agreed amount.
NATIONAL_TRANCHES = (Tranche(Decimal("0.30"), Start()), Tranche(ZERO, Clearing()))


def validate_tranches(tranches: Sequence[Tranche]) -> None:
    """Refuse tranche lists no region could mean (R-E2): empty, over 100%, or clearing not last and alone."""
    if not tranches:
        raise ValueError("a prepayment schedule needs at least one tranche")
    clearing = [i for i, t in enumerate(tranches) if isinstance(t.trigger, Clearing)]
    if len(clearing) > 1:
        raise ValueError("a prepayment schedule may have at most one clearing tranche")
    if clearing and clearing[0] != len(tranches) - 1:
        raise ValueError("the clearing tranche must be the last tranche")
    total = sum((t.share for t in tranches), ZERO)
    if total > ONE:
        raise ValueError(f"tranche shares sum to {total}, more than 100% of the agreed amount")


def tranche_amounts(agreed_amount: Decimal, tranches: Sequence[Tranche]) -> tuple[Decimal, ...]:
    """Scheduled amount of each tranche, each rounded half-up to the fen (R-E2; semantics.md).

    When the shares sum to exactly 100%, the last non-clearing tranche takes the remainder, so the
    tranches pay exactly the agreed amount. A clearing tranche is scheduled at 0 (it depends on use).
    Only for agreed amounts of a few fen split many ways can the remainder go below 0 (four 25%
    tranches of 0.02 yuan: 0.01, 0.01, 0.01, −0.01); the rule is kept as written rather than bent.
    """
    validate_tranches(tranches)
    amounts = [round_fen(agreed_amount * t.share) for t in tranches]
    if sum((t.share for t in tranches), ZERO) == ONE:
        last = max(i for i, t in enumerate(tranches) if not isinstance(t.trigger, Clearing))
        amounts[last] = agreed_amount - sum(amounts[:last], ZERO) - sum(amounts[last + 1 :], ZERO)
    return tuple(amounts)


# --------------------------------------------------------------------------------------------------
# Inputs and outputs


@dataclass(frozen=True, slots=True)
class PrepaymentAgreement:
    """The numbers of an agreement the prepayment reads (R-E2): year (both ends inclusive), volume, price."""

    period_start: dt.date
    period_end: dt.date
    agreed_qty: Decimal
    unit_price: Decimal

    def __post_init__(self) -> None:
        if self.period_end < self.period_start:
            raise ValueError(f"period_end {self.period_end} is before period_start {self.period_start}")
        if not self.agreed_qty.is_finite() or self.agreed_qty <= ZERO:
            raise ValueError(f"agreed quantity must be positive, got {self.agreed_qty}")
        if not self.unit_price.is_finite() or self.unit_price <= ZERO:
            raise ValueError(f"winning unit price must be positive, got {self.unit_price}")
        if self.unit_price != self.unit_price.quantize(UNIT_PRICE_PLACES):
            raise ValueError(f"winning unit price {self.unit_price} has more than 4 decimal places")

    @property
    def agreed_amount(self) -> Decimal:
        """Agreed quantity × winning unit price, rounded half-up to the fen."""
        return round_fen(self.agreed_qty * self.unit_price)


@dataclass(frozen=True, slots=True)
class Acceptance:
    """An accepted purchase: its acceptance date and counted quantity (item units, after conversion)."""

    accepted_on: dt.date
    quantity: Decimal

    def __post_init__(self) -> None:
        if not self.quantity.is_finite() or self.quantity < ZERO:
            raise ValueError(f"accepted quantity must not be negative, got {self.quantity} on {self.accepted_on}")


@dataclass(frozen=True, slots=True)
class TrancheResult:
    """What one tranche pays and whether it has fired by the as-of date, with the reason in words."""

    index: int  # position in the given tranches, from 0
    share: Decimal
    trigger: str
    amount: Decimal
    fired_on: dt.date | None
    reason: str

    @property
    def fired(self) -> bool:
        """True once the trigger has fired by the as-of date."""
        return self.fired_on is not None


@dataclass(frozen=True, slots=True)
class PrepaymentStatus:
    """All tranches of one agreement as of a date (R-E2)."""

    as_of: dt.date
    agreed_amount: Decimal
    counted_qty: Decimal  # counted purchases inside the year, up to the as-of date
    tranches: tuple[TrancheResult, ...]

    @property
    def released(self) -> Decimal:
        """Sum of the amounts of the tranches that have fired (negative clearing included)."""
        return sum((t.amount for t in self.tranches if t.fired), ZERO)


# --------------------------------------------------------------------------------------------------
# Evaluation


@dataclass(frozen=True, slots=True)
class _Context:
    agreement: PrepaymentAgreement
    as_of: dt.date
    cumulative: tuple[tuple[dt.date, Decimal], ...]  # (acceptance date, cumulative counted qty), sorted


def _qty(value: Decimal) -> str:
    return format(value.normalize(), ",f")


def _money(value: Decimal) -> str:
    return format(value, ",f")


def _volume(ctx: _Context, share: Decimal, label: str) -> tuple[dt.date | None, str]:
    threshold = share * ctx.agreement.agreed_qty
    for day, cumulative in ctx.cumulative:
        if cumulative >= threshold:
            return day, f"{label}: cumulative {_qty(cumulative)} reached {_qty(threshold)} on {day}"
    done = ctx.cumulative[-1][1] if ctx.cumulative else ZERO
    return None, f"{label}: cumulative {_qty(done)} of {_qty(threshold)} by {ctx.as_of}"


def _period(ctx: _Context, share: Decimal, label: str) -> tuple[dt.date | None, str]:
    start, end = ctx.agreement.period_start, ctx.agreement.period_end
    days = (end - start).days + 1
    # first day d with (d - start + 1) / days >= share, i.e. the ceil(share × days)-th day (>= 1, <= days)
    day = start + dt.timedelta(days=int((share * days).to_integral_value(rounding=ROUND_CEILING)) - 1)
    if day <= ctx.as_of:
        return day, f"{label}: elapsed share reached {format(share, 'f')} on {day}"
    return None, f"{label}: elapsed share reaches {format(share, 'f')} on {day}, after {ctx.as_of}"


def _fire(trigger: Trigger, ctx: _Context) -> tuple[dt.date | None, str]:
    """Date the trigger fires on or before the as-of date (None if not yet) and why."""
    label = str(trigger)
    if isinstance(trigger, VolumeShare):
        return _volume(ctx, trigger.share, label)
    if isinstance(trigger, Completion):
        return _volume(ctx, ONE, label)
    if isinstance(trigger, PeriodShare):
        return _period(ctx, trigger.share, label)
    if isinstance(trigger, AnyOf):
        results = [_fire(member, ctx) for member in trigger.triggers]
        fired = [(day, i) for i, (day, _) in enumerate(results) if day is not None]
        if fired:
            return min(fired)[0], f"first of any_of: {results[min(fired)[1]][1]}"
        return None, "none of any_of yet: " + "; ".join(reason for _, reason in results)
    day = ctx.agreement.period_start if isinstance(trigger, Start) else ctx.agreement.period_end
    what = "period start" if isinstance(trigger, Start) else "period end"
    if day <= ctx.as_of:
        return day, f"{label}: {what} {day}"
    return None, f"{label}: {what} {day} is after {ctx.as_of}"


def _cumulative(
    agreement: PrepaymentAgreement,
    purchases: Iterable[Acceptance | tuple[dt.date, Decimal | int]],
    as_of: dt.date,
) -> tuple[tuple[dt.date, Decimal], ...]:
    per_day: dict[dt.date, Decimal] = {}
    for item in purchases:
        event = item if isinstance(item, Acceptance) else Acceptance(item[0], to_decimal(item[1]))
        if agreement.period_start <= event.accepted_on <= min(agreement.period_end, as_of):
            per_day[event.accepted_on] = per_day.get(event.accepted_on, ZERO) + event.quantity
    running = ZERO
    points = []
    for day in sorted(per_day):
        running += per_day[day]
        points.append((day, running))
    return tuple(points)


def evaluate_prepayment(
    agreement: PrepaymentAgreement,
    tranches: Sequence[Tranche],
    purchases: Iterable[Acceptance | tuple[dt.date, Decimal | int]],
    as_of: dt.date,
) -> PrepaymentStatus:
    """Which prepayment tranches have fired by ``as_of`` and what each pays (R-E2, R-E3 year-end clearing).

    ``purchases`` are accepted purchase events ``(accepted_on, counted quantity)`` or ``Acceptance``
    rows, in any order; events outside the agreement year or after ``as_of`` do not count. Share
    tranches report their scheduled amount whether fired or not (``fired_on`` says which). A clearing
    tranche fires at period end once ``as_of`` reaches it and pays round_fen(counted qty × unit price)
    minus what the fired share tranches paid (negative: the institution owes the fund); before that
    its amount is the same sum on the purchases so far, marked provisional. A ``completion`` tranche
    whose volume is never completed never fires (JL's last 5% stays with the fund).
    """
    amounts = tranche_amounts(agreement.agreed_amount, tranches)
    ctx = _Context(agreement, as_of, _cumulative(agreement, purchases, as_of))
    counted = ctx.cumulative[-1][1] if ctx.cumulative else ZERO
    results: list[TrancheResult] = []
    for index, (tranche, scheduled) in enumerate(zip(tranches, amounts, strict=True)):
        fired_on, reason = _fire(tranche.trigger, ctx)
        amount = scheduled
        if isinstance(tranche.trigger, Clearing):
            actual = round_fen(counted * agreement.unit_price)
            prepaid = sum((r.amount for r in results if r.fired), ZERO)
            amount = actual - prepaid
            basis = (
                f"actual {_qty(counted)} × {agreement.unit_price} = {_money(actual)} minus prepaid {_money(prepaid)}"
            )
            reason = f"{reason}; {basis}" if fired_on is not None else f"provisional, {reason}; {basis} so far"
        results.append(TrancheResult(index, tranche.share, str(tranche.trigger), amount, fired_on, reason))
    return PrepaymentStatus(as_of, agreement.agreed_amount, counted, tuple(results))
