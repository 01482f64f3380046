"""Adverse-reaction clusters, quality-problem routing and clinical comprehensive evaluation (R-J1, R-J2, R-K1).

Pure rules of the quality register; no database, no profile reading. Every number a region may
vary is a parameter with the module's default as a named constant (profile candidates):

**Cluster detection (R-J2, XJ 五(八)2).** The seed asks hospitals to watch adverse reactions of
selected products, "focused on new and serious reactions", and says a cluster event (药品群体不良事件)
"may call for suspending the drug's use". The 2011 ADR regulation (卫生部令第81号, art. 63) defines a
cluster as reactions to *the same drug* (same maker, name, form and strength — one product code)
"in a relatively concentrated time and area" affecting "a certain number" of people; it names no
number. Our defaults: **3 reports** (``DEFAULT_MIN_REPORTS``), or **2 serious reports**
(``DEFAULT_MIN_SERIOUS``), on one product — or on one lot of it — whose event dates (onset, else
report date) fall within **30 days** (``DEFAULT_WINDOW_DAYS``), i.e. in ``[d, d + 29]`` for some
first day ``d``. Serious reports are thus weighted by their own, lower threshold and counted
separately (``serious_count``, ``death_count``). Overlapping qualifying windows of one group chain
into one *episode*; an episode is one signal. A region-wide signal needs reports from at least
``DEFAULT_MIN_INSTITUTIONS_REGION`` (2) institutions, so that one hospital's cluster is not raised
twice.

**Deduplication.** Re-running detection over the same reports gives the same episodes;
``reconcile_signals`` matches each episode with the stored signal of the same product and lot
whose date range overlaps it, so a re-run updates (or leaves alone) instead of duplicating. When
a new report bridges two stored signals, the later is merged into the earlier. A closed signal
that gains reports is reopened.

**Quality problems (R-J1, XJ 五(八)1).** Problems go to the distributor and, "when needed", to the
drug regulator: ``open → with_distributor → with_regulator → resolved / closed`` (``TRANSITIONS``).

**Clinical comprehensive evaluation (R-K1, XJ 五(九)).** Six dimension scores of 0–100 (safety,
efficacy, economy, innovation, suitability, accessibility — the 2021 national guideline's six) are
combined with weights in percent that sum to exactly 100. The seeds give no weights; the default
(``DEFAULT_WEIGHTS``) is ours: safety 25, efficacy 25, economy 20, innovation 10, suitability 10,
accessibility 10. The weighted total is Σ score × weight / 100, rounded half-up to two places
once, at the end. Grades: A ≥ 85, B ≥ 70, C ≥ 60, else D (``DEFAULT_BANDS``), on the rounded total.

**Shortage substitution (R-K1, XJ 五(九)2).** "The evaluation result is the basis for substituting
a VBP drug in shortage": ``rank_substitutes`` orders the available products of an item — other
selected products first, then non-selected products of the same generic, then substitutable drugs
— best evaluated first within each group; unevaluated ones follow the evaluated, unavailable
(in shortage or suspended) ones come last.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

# ------------------------------------------------------------------------------------------------
# Cluster detection (R-J2)

DEFAULT_MIN_REPORTS = 3
"""Reports on one product (or lot) within the window that make a cluster (profile candidate)."""
DEFAULT_MIN_SERIOUS = 2
"""Serious reports within the window that make a cluster on their own (profile candidate)."""
DEFAULT_WINDOW_DAYS = 30
"""Length of the window in calendar days, first day included (profile candidate)."""
DEFAULT_MIN_INSTITUTIONS_REGION = 2
"""Institutions a region-wide cluster must span (profile candidate)."""


class Trigger(StrEnum):
    """Which threshold an episode crossed (both may)."""

    REPORTS = "reports"
    SERIOUS = "serious"


@dataclass(frozen=True, slots=True)
class ClusterParams:
    """Thresholds of cluster detection; see the module docstring for the defaults' reasons."""

    min_reports: int = DEFAULT_MIN_REPORTS
    min_serious: int = DEFAULT_MIN_SERIOUS
    window_days: int = DEFAULT_WINDOW_DAYS
    min_institutions: int = 1

    def __post_init__(self) -> None:
        if self.min_reports < 2:
            raise ValueError("a cluster needs at least 2 reports")
        if self.min_serious < 1:
            raise ValueError("the serious-report threshold must be at least 1")
        if self.window_days < 1:
            raise ValueError("the window must be at least one day")
        if self.min_institutions < 1:
            raise ValueError("a cluster spans at least one institution")


INSTITUTION_CLUSTERS = ClusterParams()
"""Defaults for one institution's reports."""
REGION_CLUSTERS = ClusterParams(min_institutions=DEFAULT_MIN_INSTITUTIONS_REGION)
"""Defaults for a region's reports: the same thresholds, across at least two institutions."""


@dataclass(frozen=True, slots=True)
class ReactionReport:
    """What detection needs of one adverse-reaction report; ``event_date`` is onset, else report date."""

    report_id: int
    product_code: str
    lot_number: str
    event_date: dt.date
    institution_code: str
    serious: bool = False
    new: bool = False
    death: bool = False


@dataclass(frozen=True, slots=True)
class Cluster:
    """One episode: reports of one product (``lot_number`` "" = any lot) chained by qualifying windows."""

    product_code: str
    lot_number: str
    first_date: dt.date
    last_date: dt.date
    report_ids: tuple[int, ...]
    serious_count: int
    new_count: int
    death_count: int
    institutions: tuple[str, ...]
    triggers: tuple[Trigger, ...]

    @property
    def report_count(self) -> int:
        return len(self.report_ids)

    @property
    def group(self) -> tuple[str, str]:
        return (self.product_code, self.lot_number)

    @property
    def digest(self) -> tuple[object, ...]:
        """Everything a stored signal records of the episode: equal digests mean nothing changed."""
        return (
            self.first_date,
            self.last_date,
            self.report_ids,
            self.serious_count,
            self.new_count,
            self.death_count,
            self.institutions,
            self.triggers,
        )


def _episodes(reports: Sequence[ReactionReport], params: ClusterParams) -> list[list[ReactionReport]]:
    """Chains of qualifying windows over one group's reports, sorted by date then id."""
    ordered = sorted(reports, key=lambda r: (r.event_date, r.report_id))
    span = dt.timedelta(days=params.window_days - 1)
    episodes: list[list[ReactionReport]] = []
    start_of_current = -1
    end_of_current = -1  # last index (inclusive) covered by the current episode
    end = 0
    serious = [0]
    for report in ordered:
        serious.append(serious[-1] + int(report.serious))
    for i, first in enumerate(ordered):
        end = max(end, i)
        while end + 1 < len(ordered) and ordered[end + 1].event_date <= first.event_date + span:
            end += 1
        count = end - i + 1
        serious_in = serious[end + 1] - serious[i]
        if count < params.min_reports and serious_in < params.min_serious:
            continue
        if start_of_current >= 0 and i <= end_of_current:
            end_of_current = max(end_of_current, end)
            continue
        if start_of_current >= 0:
            episodes.append(ordered[start_of_current : end_of_current + 1])
        start_of_current, end_of_current = i, end
    if start_of_current >= 0:
        episodes.append(ordered[start_of_current : end_of_current + 1])
    return episodes


def _triggers(members: Sequence[ReactionReport], params: ClusterParams) -> tuple[Trigger, ...]:
    """Thresholds crossed by some window of the episode (each window starts at a member)."""
    span = dt.timedelta(days=params.window_days - 1)
    found: set[Trigger] = set()
    for i, first in enumerate(members):
        window = [r for r in members[i:] if r.event_date <= first.event_date + span]
        if len(window) >= params.min_reports:
            found.add(Trigger.REPORTS)
        if sum(r.serious for r in window) >= params.min_serious:
            found.add(Trigger.SERIOUS)
    return tuple(t for t in Trigger if t in found)


def _cluster(product: str, lot: str, members: Sequence[ReactionReport], params: ClusterParams) -> Cluster:
    return Cluster(
        product_code=product,
        lot_number=lot,
        first_date=members[0].event_date,
        last_date=members[-1].event_date,
        report_ids=tuple(sorted(r.report_id for r in members)),
        serious_count=sum(r.serious for r in members),
        new_count=sum(r.new for r in members),
        death_count=sum(r.death for r in members),
        institutions=tuple(sorted({r.institution_code for r in members})),
        triggers=_triggers(members, params),
    )


def detect_clusters(
    reports: Iterable[ReactionReport], params: ClusterParams = INSTITUTION_CLUSTERS
) -> tuple[Cluster, ...]:
    """Episodes of several reports on one product, and on one lot, within the window (R-J2).

    Each product is one group (all its reports) and each non-blank lot of it another, so a lot
    cluster is also counted in its product's cluster. Result sorted by product, lot ("" first), date.
    Report ids must be unique.
    """
    items = list(reports)
    ids = [r.report_id for r in items]
    if len(set(ids)) != len(ids):
        raise ValueError("report ids must be unique")
    groups: dict[tuple[str, str], list[ReactionReport]] = defaultdict(list)
    for report in items:
        groups[(report.product_code, "")].append(report)
        lot = report.lot_number.strip()
        if lot:
            groups[(report.product_code, lot)].append(report)
    out: list[Cluster] = []
    for (product, lot), members in sorted(groups.items()):
        for episode in _episodes(members, params):
            cluster = _cluster(product, lot, episode, params)
            if len(cluster.institutions) >= params.min_institutions:
                out.append(cluster)
    return tuple(out)


# ------------------------------------------------------------------------------------------------
# Reconciling detected episodes with stored signals (deduplication)


@dataclass(frozen=True, slots=True)
class KnownSignal:
    """A stored signal as reconciliation sees it (merged signals are not passed in)."""

    signal_id: int
    product_code: str
    lot_number: str
    first_date: dt.date
    last_date: dt.date
    report_ids: frozenset[int]
    digest: tuple[object, ...]
    closed: bool = False

    def overlaps(self, cluster: Cluster) -> bool:
        return (
            (self.product_code, self.lot_number) == cluster.group
            and self.first_date <= cluster.last_date
            and cluster.first_date <= self.last_date
        )


@dataclass(frozen=True, slots=True)
class SignalUpdate:
    signal_id: int
    cluster: Cluster
    reopen: bool


@dataclass(frozen=True, slots=True)
class SignalPlan:
    """What to write: new signals, changed ones, merges (``(merged, into)``) and unchanged ids."""

    creates: tuple[Cluster, ...] = ()
    updates: tuple[SignalUpdate, ...] = ()
    merges: tuple[tuple[int, int], ...] = ()
    unchanged: tuple[int, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.creates or self.updates or self.merges)


def reconcile_signals(known: Iterable[KnownSignal], detected: Iterable[Cluster]) -> SignalPlan:
    """Match episodes with stored signals of the same product and lot whose dates overlap.

    Episodes are taken by date; each takes the earliest unused overlapping signal (then lowest id)
    and merges any other overlapping unused ones into it. A stored signal matched by no episode is
    left as it is (it stays on record until someone closes it).
    """
    pool = sorted(known, key=lambda s: (s.first_date, s.signal_id))
    used: set[int] = set()
    creates: list[Cluster] = []
    updates: list[SignalUpdate] = []
    merges: list[tuple[int, int]] = []
    unchanged: list[int] = []
    for cluster in sorted(detected, key=lambda c: (c.group, c.first_date)):
        matches = [s for s in pool if s.signal_id not in used and s.overlaps(cluster)]
        if not matches:
            creates.append(cluster)
            continue
        keep, *rest = matches
        used.update(s.signal_id for s in matches)
        merges.extend((s.signal_id, keep.signal_id) for s in rest)
        gained = bool(set(cluster.report_ids) - keep.report_ids) or bool(rest)
        if keep.digest == cluster.digest and not rest:
            unchanged.append(keep.signal_id)
        else:
            updates.append(SignalUpdate(keep.signal_id, cluster, reopen=keep.closed and gained))
    return SignalPlan(tuple(creates), tuple(updates), tuple(merges), tuple(unchanged))


# ------------------------------------------------------------------------------------------------
# Suspension of use


def suspension_in_effect(
    *, approved: bool, effective_from: dt.date, until: dt.date | None, lifted_on: dt.date | None, on: dt.date
) -> bool:
    """Whether an approved suspension applies on ``on``: from its first day to ``until`` inclusive,
    and up to the day before it was lifted."""
    if not approved or on < effective_from:
        return False
    if until is not None and on > until:
        return False
    return lifted_on is None or on < lifted_on


# ------------------------------------------------------------------------------------------------
# Quality problems (R-J1)


class ProblemStatus(StrEnum):
    OPEN = "open"
    WITH_DISTRIBUTOR = "with_distributor"
    WITH_REGULATOR = "with_regulator"
    RESOLVED = "resolved"
    CLOSED = "closed"


TRANSITIONS: Mapping[ProblemStatus, frozenset[ProblemStatus]] = {
    ProblemStatus.OPEN: frozenset(
        {ProblemStatus.WITH_DISTRIBUTOR, ProblemStatus.WITH_REGULATOR, ProblemStatus.RESOLVED, ProblemStatus.CLOSED}
    ),
    ProblemStatus.WITH_DISTRIBUTOR: frozenset(
        {ProblemStatus.WITH_REGULATOR, ProblemStatus.RESOLVED, ProblemStatus.CLOSED}
    ),
    ProblemStatus.WITH_REGULATOR: frozenset({ProblemStatus.RESOLVED, ProblemStatus.CLOSED}),
    ProblemStatus.RESOLVED: frozenset(),
    ProblemStatus.CLOSED: frozenset(),
}
"""Allowed moves: routing goes forward only; resolved and closed are final."""


def can_move(current: ProblemStatus | str, target: ProblemStatus | str) -> bool:
    """Whether a quality problem may go from ``current`` to ``target``."""
    return ProblemStatus(target) in TRANSITIONS[ProblemStatus(current)]


def is_final(status: ProblemStatus | str) -> bool:
    return not TRANSITIONS[ProblemStatus(status)]


# ------------------------------------------------------------------------------------------------
# Clinical comprehensive evaluation (R-K1)


class Dimension(StrEnum):
    SAFETY = "safety"
    EFFICACY = "efficacy"
    ECONOMY = "economy"
    INNOVATION = "innovation"
    SUITABILITY = "suitability"
    ACCESSIBILITY = "accessibility"


DIMENSIONS: tuple[Dimension, ...] = tuple(Dimension)
HUNDRED = Decimal(100)
SCORE_PLACES = Decimal("0.01")
MAX_SCORE = HUNDRED


@dataclass(frozen=True, slots=True)
class Weights:
    """Weight of each dimension in percent (up to two places); they must sum to exactly 100."""

    safety: Decimal
    efficacy: Decimal
    economy: Decimal
    innovation: Decimal
    suitability: Decimal
    accessibility: Decimal

    def __post_init__(self) -> None:
        for dim in DIMENSIONS:
            value = self.of(dim)
            if not isinstance(value, Decimal):
                raise TypeError(f"weight of {dim} must be a Decimal")
            if value < 0:
                raise ValueError(f"weight of {dim} must not be negative")
            if value != value.quantize(SCORE_PLACES):
                raise ValueError(f"weight of {dim} has more than two decimal places")
        if self.total != HUNDRED:
            raise ValueError(f"weights must sum to 100%, not {self.total}%")

    def of(self, dimension: Dimension | str) -> Decimal:
        value: Decimal = getattr(self, Dimension(dimension).value)
        return value

    @property
    def total(self) -> Decimal:
        return sum((self.of(d) for d in DIMENSIONS), Decimal(0))

    def as_dict(self) -> dict[str, Decimal]:
        return {d.value: self.of(d) for d in DIMENSIONS}

    @classmethod
    def from_mapping(cls, values: Mapping[str, Decimal | int | str]) -> Weights:
        """Weights from a mapping by dimension name; every dimension must be present."""
        missing = [d.value for d in DIMENSIONS if d.value not in values]
        if missing:
            raise ValueError(f"weights missing for {', '.join(missing)}")
        return cls(**{d.value: Decimal(str(values[d.value])) for d in DIMENSIONS})


DEFAULT_WEIGHTS = Weights(
    safety=Decimal(25),
    efficacy=Decimal(25),
    economy=Decimal(20),
    innovation=Decimal(10),
    suitability=Decimal(10),
    accessibility=Decimal(10),
)
"""Project default (the seeds name the six dimensions but no weights): profile candidate."""


@dataclass(frozen=True, slots=True)
class GradeBands:
    """Lower bounds (inclusive) of grades A, B and C on the rounded total; below C is D."""

    a: Decimal = Decimal(85)
    b: Decimal = Decimal(70)
    c: Decimal = Decimal(60)

    def __post_init__(self) -> None:
        if not (HUNDRED >= self.a > self.b > self.c > 0):
            raise ValueError("grade bands must satisfy 100 ≥ A > B > C > 0")


DEFAULT_BANDS = GradeBands()
"""A ≥ 85, B ≥ 70, C ≥ 60, D below (profile candidate)."""

GRADES = ("A", "B", "C", "D")


def check_score(dimension: Dimension | str, score: Decimal) -> Decimal:
    """A dimension score: 0–100 with at most two decimal places."""
    if not isinstance(score, Decimal):
        raise TypeError(f"score of {dimension} must be a Decimal")
    if not Decimal(0) <= score <= MAX_SCORE:
        raise ValueError(f"score of {dimension} must be between 0 and 100")
    if score != score.quantize(SCORE_PLACES):
        raise ValueError(f"score of {dimension} has more than two decimal places")
    return score


def weighted_total(scores: Mapping[str, Decimal], weights: Weights = DEFAULT_WEIGHTS) -> Decimal:
    """Σ score × weight / 100 over the six dimensions, rounded half-up to 0.01 once at the end."""
    missing = [d.value for d in DIMENSIONS if d.value not in scores]
    if missing:
        raise ValueError(f"scores missing for {', '.join(missing)}")
    exact = sum((check_score(d, scores[d.value]) * weights.of(d) for d in DIMENSIONS), Decimal(0)) / HUNDRED
    return exact.quantize(SCORE_PLACES, rounding=ROUND_HALF_UP)


def grade(total: Decimal, bands: GradeBands = DEFAULT_BANDS) -> str:
    """Grade of a (rounded) total: A, B, C or D."""
    if total >= bands.a:
        return "A"
    if total >= bands.b:
        return "B"
    if total >= bands.c:
        return "C"
    return "D"


@dataclass(frozen=True, slots=True)
class EvaluationOutcome:
    total: Decimal
    grade: str
    contributions: dict[str, Decimal] = field(default_factory=dict)


def evaluate(
    scores: Mapping[str, Decimal], weights: Weights = DEFAULT_WEIGHTS, bands: GradeBands = DEFAULT_BANDS
) -> EvaluationOutcome:
    """Total, grade and each dimension's exact contribution (score × weight / 100, unrounded)."""
    total = weighted_total(scores, weights)
    contributions = {d.value: scores[d.value] * weights.of(d) / HUNDRED for d in DIMENSIONS}
    return EvaluationOutcome(total=total, grade=grade(total, bands), contributions=contributions)


# ------------------------------------------------------------------------------------------------
# Shortage substitution choices (R-K1)


class CandidateKind(StrEnum):
    """How a candidate relates to the item in shortage, in order of preference."""

    SELECTED = "selected"  # another winning product of the item
    SAME_GENERIC = "same_generic"  # non-selected product of the same generic
    SUBSTITUTE = "substitute"  # another generic for the same use


_KIND_ORDER = {CandidateKind.SELECTED: 0, CandidateKind.SAME_GENERIC: 1, CandidateKind.SUBSTITUTE: 2}


@dataclass(frozen=True, slots=True)
class Candidate:
    """A product that could stand in; ``total`` None = not evaluated; ``unavailable`` says why not."""

    product_code: str
    kind: CandidateKind
    total: Decimal | None = None
    unavailable: str = ""


@dataclass(frozen=True, slots=True)
class RankedCandidate:
    """A candidate with its rank among the available ones (None when unavailable)."""

    candidate: Candidate
    rank: int | None


def rank_substitutes(candidates: Iterable[Candidate]) -> tuple[RankedCandidate, ...]:
    """Available before unavailable; by kind (selected, same generic, substitute); evaluated before
    unevaluated; higher total first; then product code. Product codes must be unique."""
    items = list(candidates)
    codes = [c.product_code for c in items]
    if len(set(codes)) != len(codes):
        raise ValueError("product codes must be unique")

    def key(c: Candidate) -> tuple[bool, int, bool, Decimal, str]:
        total = c.total if c.total is not None else Decimal(0)
        return (bool(c.unavailable), _KIND_ORDER[c.kind], c.total is None, -total, c.product_code)

    out: list[RankedCandidate] = []
    rank = 0
    for c in sorted(items, key=key):
        if c.unavailable:
            out.append(RankedCandidate(c, None))
        else:
            rank += 1
            out.append(RankedCandidate(c, rank))
    return tuple(out)
