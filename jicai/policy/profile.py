"""Regional policy profiles: every number a region may set, with its source, layered and dated.

A profile is a TOML file (shipped in ``jicai/policy/profiles/`` or added by users in
``JICAI_HOME/profiles/``). It names its level (national, province, city, institution) and its
parent, and holds one or more *versions*, each effective from a date. Every setting is a table
with ``value``, ``source`` (seed file and requirement ID, or a public source) and ``confirmed``::

    name = "jilin"
    label = "吉林省"
    level = "province"
    parent = "national"
    region_code = "220000"

    [[versions]]
    effective_from = "2019-12-01"

    [versions.prepayment.tranches]
    value = [{share = "0.50", trigger = "start"}, ...]
    source = "JL 三(五); R-E2"
    confirmed = true

Resolving a profile on a date walks the chain national → province → city → institution, applies
each layer's versions that have started by that date in date order, and lets the lower layer win
key by key; the result records which layer and version set each value (``explain``).
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from jicai.policy.prepayment import Tranche, parse_trigger, validate_tranches

SHIPPED_DIR = Path(__file__).parent / "profiles"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class ProfileError(ValueError):
    """A profile file or chain is invalid; ``problems`` lists each problem with its location."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(f"{source}: " + "; ".join(self.problems))


class Level(StrEnum):
    NATIONAL = "national"
    PROVINCE = "province"
    CITY = "city"
    INSTITUTION = "institution"


LEVEL_ORDER = (Level.NATIONAL, Level.PROVINCE, Level.CITY, Level.INSTITUTION)

Share = Annotated[Decimal, Field(ge=0, le=1)]
PositiveDecimal = Annotated[Decimal, Field(gt=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WinnersRow(_Strict):
    """One row of a share/term table by number of winners (R-C1)."""

    min_winners: int = Field(ge=1)
    max_winners: int | None = Field(default=None, ge=1)
    share: Share
    term_years: int = Field(ge=1, le=5)

    @model_validator(mode="after")
    def _ordered(self) -> WinnersRow:
        if self.max_winners is not None and self.max_winners < self.min_winners:
            raise ValueError("max_winners is below min_winners")
        return self


class RatioRange(_Strict):
    min: Share
    max: Share

    @model_validator(mode="after")
    def _ordered(self) -> RatioRange:
        if self.max < self.min:
            raise ValueError("max is below min")
        return self


class TrancheSpec(_Strict):
    share: Share
    trigger: str

    @field_validator("trigger")
    @classmethod
    def _trigger(cls, text: str) -> str:
        parse_trigger(text)
        return text

    def to_tranche(self) -> Tranche:
        return Tranche(share=self.share, trigger=parse_trigger(self.trigger))


def _check_tranches(specs: list[TrancheSpec]) -> list[TrancheSpec]:
    validate_tranches([s.to_tranche() for s in specs])
    return specs


class EndOfNextMonth(_Strict):
    kind: Literal["end_of_next_month"]


class DaysAfterAcceptance(_Strict):
    kind: Literal["days_after_acceptance"]
    days: int = Field(ge=1, le=366)


class GradeRow(_Strict):
    """Points at or above (inclusive) or strictly above ``min_points``; no minimum = catch-all."""

    grade: str = Field(min_length=1, max_length=4)
    min_points: Decimal | None = None
    inclusive: bool = True
    share: Share


class InternalSplit(_Strict):
    prescribers: Share
    pharmacy: Share
    institution: Share

    @model_validator(mode="after")
    def _whole(self) -> InternalSplit:
        if self.prescribers + self.pharmacy + self.institution != 1:
            raise ValueError("the three shares must sum to 1")
        return self


class Qualification(_Strict):
    ratio_to_lowest: PositiveDecimal | None = None
    absolute_max: PositiveDecimal | None = None
    cut_vs_max_valid: Share | None = None


FormularyAction = Literal["keep", "suspend", "drop"]

# Every setting the system knows: key → (value type, what it means). Unknown keys are errors,
# so a typo in a user's profile is caught instead of silently ignored.
SETTINGS: dict[str, tuple[Any, str]] = {
    "agreement.share_by_winners": (list[WinnersRow], "agreed share and term by number of winners (R-C1, R-B3)"),
    "agreement.special_share_by_winners": (
        list[WinnersRow],
        "agreed share and term for special antibiotics/antifungals",
    ),
    "agreement.ratio_range": (RatioRange, "allowed agreed ratio of the volume base (R-B3)"),
    "agreement.term_extension_years": (Annotated[int, Field(ge=0, le=3)], "extension allowed after the term (R-C1)"),
    "prepayment.tranches": (
        Annotated[list[TrancheSpec], AfterValidator(_check_tranches)],
        "insurance-fund prepayment tranches and triggers (R-E2)",
    ),
    "prepayment.start_share_is_minimum": (bool, "the start tranche is a floor a region may raise (R-E2)"),
    "supplier_payment.rule": (
        Annotated[EndOfNextMonth | DaysAfterAcceptance, Field(discriminator="kind")],
        "deadline for paying suppliers after acceptance (R-E1)",
    ),
    "settlement.monitoring_months": (Literal[1, 3, 6, 12], "monitoring period length in months (R-E3)"),
    "settlement.settlement_months": (Literal[1, 3, 6, 12], "settlement period length in months (R-E3)"),
    "settlement.reserve_share": (Share, "share held back as reserve until clearing (预留金, R-E3)"),
    "payment_standard.threshold_multiple": (PositiveDecimal, "non-selected above this × winning price (R-F3)"),
    "payment_standard.first_year_cut": (Share, "first-year cut of a high-priced non-selected product (R-F3)"),
    "payment_standard.transition_years": (Annotated[int, Field(ge=1, le=3)], "years to reach the standard (R-F3)"),
    "payment_standard.non_ce_cap": (bool, "non-CE generics capped at the winning price at once (R-F4)"),
    "non_selected_cap.enabled": (bool, "non-selected quantity capped by selected quantity (R-D2)"),
    "non_selected_cap.ratio": (PositiveDecimal, "non-selected ≤ ratio × selected, converted (R-D2)"),
    "non_selected_cap.substitutes_capped": (bool, "substitutes count toward the cap too (R-H7)"),
    "progress.behind_ratio": (Share, "completion ÷ elapsed below this is 'behind' (R-L1)"),
    "progress.at_risk_ratio": (Share, "completion ÷ elapsed below this is 'at risk' (R-L1)"),
    "department_targets.reference_months": (Annotated[int, Field(ge=1, le=36)], "history window (R-H3)"),
    "department_targets.granularity": (Literal["month", "quarter", "half_year"], "target slices (R-H3)"),
    "surplus.grade_table": (list[GradeRow], "retained share by appraisal grade (R-G1)"),
    "surplus.overspend_institution_share": (
        Share | None,
        "institution's share of a reasonable overspend (合理超支分担, R-G1); none = not shared",
    ),
    "surplus.internal_split": (InternalSplit, "split of retained funds inside a hospital (R-G3)"),
    "surplus.fund_payment_ratio": (Share, "fund's payment ratio in the surplus budget (R-G1)"),
    "surplus.insured_share": (Share, "share of insured patients in the surplus budget (R-G1)"),
    "price_ratio.content_factor": (PositiveDecimal, "price ratio per doubling of content (差比价, R-B1)"),
    "price_ratio.fill_factor": (PositiveDecimal, "price ratio per doubling of fill volume (R-B1)"),
    "price_ratio.pack_factor_oral": (PositiveDecimal, "price ratio per doubling of pack count, oral solids"),
    "price_ratio.pack_factor_other": (PositiveDecimal, "price ratio per doubling of pack count, other forms"),
    "price_ratio.dosage_form_factors": (dict[str, PositiveDecimal], "dosage-form factors (R-B1)"),
    "award.qualification": (Qualification, "routes to qualify as a winner (R-B2)"),
    "award.max_winners": (
        Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=16, max_length=16)],
        "maximum winners for 1…15 and ≥16 qualified bidders (R-B2)",
    ),
    "formulary.non_ce_action": (FormularyAction, "what to advise for non-CE generics (R-H6)"),
    "formulary.pricier_action": (FormularyAction, "what to advise for generics priced above the winner (R-H6)"),
    "formulary.keep_essential": (bool, "keep essential medicines when the winner is not one (R-H9)"),
}
_ADAPTERS: dict[str, TypeAdapter[Any]] = {key: TypeAdapter(spec[0]) for key, spec in SETTINGS.items()}


@dataclass(frozen=True, slots=True)
class Setting:
    """One value with where it comes from."""

    value: Any
    source: str
    confirmed: bool


@dataclass(frozen=True, slots=True)
class Version:
    effective_from: dt.date
    note: str
    settings: Mapping[str, Setting]


@dataclass(frozen=True, slots=True)
class Profile:
    """One file: a layer of rules for a region or institution, in dated versions."""

    name: str
    label: str
    level: Level
    parent: str | None
    region_code: str
    institution_code: str
    versions: tuple[Version, ...]
    path: str

    def versions_until(self, as_of: dt.date) -> list[Version]:
        """Versions that have started by ``as_of``, oldest first.

        A version lists what changed on its date; values it does not mention stay as the earlier
        versions set them, so a new rule needs one entry, not a copy of the whole profile.
        """
        return [v for v in self.versions if v.effective_from <= as_of]


@dataclass(frozen=True, slots=True)
class ResolvedValue:
    value: Any
    source: str
    confirmed: bool
    layer: str
    effective_from: dt.date


@dataclass(frozen=True, slots=True)
class ResolvedProfile:
    """The rules in force for a profile on a date, with the trail of who set what."""

    name: str
    as_of: dt.date
    chain: tuple[str, ...]
    values: Mapping[str, ResolvedValue]

    def get(self, key: str) -> Any:
        if key not in SETTINGS:
            raise KeyError(f"unknown setting {key!r}")
        if key not in self.values:
            raise KeyError(f"setting {key!r} is not set by {' → '.join(self.chain)} on {self.as_of}")
        return self.values[key].value

    def get_or(self, key: str, default: Any) -> Any:
        return self.values[key].value if key in self.values else default

    def explain(self) -> list[tuple[str, ResolvedValue]]:
        return sorted(self.values.items())


def _date(value: Any, where: str, problems: list[str]) -> dt.date | None:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    problems.append(f"{where}: expected a date like 2026-01-01, got {value!r}")
    return None


def _format_validation(where: str, exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        out.append(f"{where}{'.' + loc if loc else ''}: {err['msg']}")
    return out


def _parse_settings(raw: Mapping[str, Any], where: str, problems: list[str]) -> dict[str, Setting]:
    settings: dict[str, Setting] = {}
    for section, entries in raw.items():
        if not isinstance(entries, Mapping):
            problems.append(f"{where}.{section}: expected a table of settings")
            continue
        for name, entry in entries.items():
            key = f"{section}.{name}"
            at = f"{where}.{key}"
            if key not in SETTINGS:
                problems.append(f"{at}: unknown setting (known: {', '.join(sorted(SETTINGS))})")
                continue
            if not isinstance(entry, Mapping) or "value" not in entry:
                problems.append(f"{at}: expected a table with value, source and confirmed")
                continue
            extra = set(entry) - {"value", "source", "confirmed"}
            if extra:
                problems.append(f"{at}: unexpected field(s) {', '.join(sorted(extra))}")
            source = entry.get("source")
            if not isinstance(source, str) or not source.strip():
                problems.append(f"{at}.source: every value must name its source (seed and requirement ID)")
                source = ""
            confirmed = entry.get("confirmed")
            if not isinstance(confirmed, bool):
                problems.append(f"{at}.confirmed: must be true or false")
                confirmed = False
            try:
                value = _ADAPTERS[key].validate_python(entry["value"])
            except ValidationError as exc:
                problems.extend(_format_validation(f"{at}.value", exc))
                continue
            settings[key] = Setting(value=value, source=source, confirmed=confirmed)
    return settings


def parse_profile(data: Mapping[str, Any], path: str = "<profile>") -> Profile:
    """Validate a profile's TOML data; raises ProfileError listing every problem found."""
    problems: list[str] = []
    allowed = {"name", "label", "level", "parent", "region_code", "institution_code", "versions", "description"}
    for key in sorted(set(data) - allowed):
        problems.append(f"{key}: unknown top-level key (allowed: {', '.join(sorted(allowed))})")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        problems.append("name: required; lower-case letters, digits, '-', '_' or '.'")
        name = str(name)
    try:
        level = Level(data.get("level", ""))
    except ValueError:
        problems.append(f"level: one of {', '.join(LEVEL_ORDER)}")
        level = Level.NATIONAL
    parent = data.get("parent")
    if level is Level.NATIONAL and parent is not None:
        problems.append("parent: a national profile has no parent")
    if level is not Level.NATIONAL and not isinstance(parent, str):
        problems.append("parent: required for a province, city or institution profile")
    region_code = str(data.get("region_code", ""))
    if level in (Level.PROVINCE, Level.CITY) and not re.fullmatch(r"\d{6}", region_code):
        problems.append("region_code: a 6-digit GB/T 2260 code is required for province and city profiles")
    institution_code = str(data.get("institution_code", ""))
    if level is Level.INSTITUTION and not re.fullmatch(r"H\d{11}", institution_code):
        problems.append("institution_code: H followed by 11 digits is required for an institution profile")
    raw_versions = data.get("versions")
    versions: list[Version] = []
    if not isinstance(raw_versions, list) or not raw_versions:
        problems.append("versions: at least one [[versions]] table is required")
        raw_versions = []
    for index, raw in enumerate(raw_versions):
        where = f"versions[{index}]"
        if not isinstance(raw, Mapping):
            problems.append(f"{where}: expected a table")
            continue
        effective = _date(raw.get("effective_from"), f"{where}.effective_from", problems)
        note = str(raw.get("note", ""))
        sections = {k: v for k, v in raw.items() if k not in {"effective_from", "note"}}
        settings = _parse_settings(sections, where, problems)
        if effective is not None:
            versions.append(Version(effective_from=effective, note=note, settings=settings))
    dates = [v.effective_from for v in versions]
    if len(set(dates)) != len(dates):
        problems.append("versions: two versions share an effective_from date")
    if problems:
        raise ProfileError(path, problems)
    return Profile(
        name=name,
        label=str(data.get("label", name)),
        level=level,
        parent=parent if isinstance(parent, str) else None,
        region_code=region_code,
        institution_code=institution_code,
        versions=tuple(sorted(versions, key=lambda v: v.effective_from)),
        path=path,
    )


def load_profile(path: Path) -> Profile:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(str(path), [f"cannot read: {exc}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(str(path), [f"not valid TOML: {exc}"]) from exc
    profile = parse_profile(data, str(path))
    if profile.name != path.stem:
        raise ProfileError(str(path), [f"name {profile.name!r} must match the file name {path.stem!r}"])
    return profile


class ProfileLibrary:
    """The shipped profiles plus users' own directories (later directories override by name)."""

    def __init__(self, extra_dirs: Iterable[Path] = ()) -> None:
        self.dirs = [SHIPPED_DIR, *extra_dirs]
        self._profiles: dict[str, Profile] | None = None
        self.errors: dict[str, ProfileError] = {}

    def profiles(self) -> dict[str, Profile]:
        if self._profiles is None:
            found: dict[str, Profile] = {}
            for folder in self.dirs:
                if not folder.is_dir():
                    continue
                for path in sorted(folder.glob("*.toml")):
                    try:
                        profile = load_profile(path)
                    except ProfileError as exc:
                        self.errors[str(path)] = exc
                        continue
                    found[profile.name] = profile
            self._profiles = found
        return self._profiles

    def get(self, name: str) -> Profile:
        profiles = self.profiles()
        if name not in profiles:
            known = ", ".join(sorted(profiles)) or "-"
            raise ProfileError(name, [f"unknown profile {name!r} (known: {known})"])
        return profiles[name]

    def chain(self, name: str) -> list[Profile]:
        """The layers from national down to ``name``; checks order and loops."""
        chain: list[Profile] = []
        seen: set[str] = set()
        current: str | None = name
        while current is not None:
            if current in seen:
                raise ProfileError(name, [f"parent loop through {current!r}"])
            seen.add(current)
            profile = self.get(current)
            chain.append(profile)
            current = profile.parent
        chain.reverse()
        for upper, lower in itertools.pairwise(chain):
            if LEVEL_ORDER.index(lower.level) <= LEVEL_ORDER.index(upper.level):
                raise ProfileError(
                    name, [f"{lower.name} ({lower.level}) cannot sit below {upper.name} ({upper.level})"]
                )
        if chain[0].level is not Level.NATIONAL:
            raise ProfileError(name, [f"the chain must start at a national profile, not {chain[0].name}"])
        return chain

    def resolve(self, name: str, as_of: dt.date) -> ResolvedProfile:
        """The rules in force for ``name`` on ``as_of``: lower layers override higher ones."""
        values: dict[str, ResolvedValue] = {}
        chain = self.chain(name)
        for layer in chain:
            for version in layer.versions_until(as_of):
                self._apply(values, layer, version)
        return ResolvedProfile(name=name, as_of=as_of, chain=tuple(p.name for p in chain), values=values)

    @staticmethod
    def _apply(values: dict[str, ResolvedValue], layer: Profile, version: Version) -> None:
        for key, setting in version.settings.items():
            values[key] = ResolvedValue(
                value=setting.value,
                source=setting.source,
                confirmed=setting.confirmed,
                layer=layer.name,
                effective_from=version.effective_from,
            )


def to_plain(value: Any) -> Any:
    """A resolved value as JSON-friendly data (Decimal → str, models → dicts)."""
    if isinstance(value, BaseModel):
        return {k: to_plain(v) for k, v in value.model_dump().items()}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    return value
