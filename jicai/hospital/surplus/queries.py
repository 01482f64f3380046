"""Retained surplus reads (R-G3): the internal split in force for an institution and where it came
from, the prescribers' use of selected drugs in a period, and the exact split of an amount.

The split (60 / 30 / 10 in XJ 五(七)) is the institution's profile value ``surplus.internal_split``:
the most specific province or city profile whose region covers the institution (a city beats its
province; on a tie a user's profile beats a shipped one, then the name), else "national"; only when
that profile has no split is ``XJ_INTERNAL_SPLIT`` used, and the distribution records which.

The prescribers' pool goes by each prescriber's use of selected drugs in the period: dispensing of
the products selected in any round the hospital takes part in, by ``prescriber_code``. The basis is
the dispensed **amount** (yuan) by default — it adds up across drugs of different units — or the
**quantity** in item units (qty × conversion) when finance chooses it. Dispensing without a
prescriber code cannot be attributed; its amount is shown, not counted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow as pa
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from jicai.core.tenancy import Level, Scope, use_scope
from jicai.facts.query import FactQuery
from jicai.hospital.common import WorkflowError
from jicai.hospital.models import SurplusDistribution, SurplusShare
from jicai.monitoring.payables import profile_for_region
from jicai.organizations.models import Institution
from jicai.policy import params
from jicai.policy.money import ZERO
from jicai.policy.profile import ProfileError, ProfileLibrary
from jicai.policy.surplus import XJ_INTERNAL_SPLIT, InternalSplitParams, distribute_retained, equal_weights
from jicai.programme.models import SelectedProduct

POOLS = ("prescribers", "pharmacy", "institution")
POOL_LABELS = {
    "prescribers": _("Prescribers who used selected drugs"),
    "pharmacy": _("Pharmacy staff"),
    "institution": _("Institution"),
}
POOL_ZH = {"prescribers": "集采药品使用人员", "pharmacy": "药学工作人员", "institution": "医疗机构推进奖励"}
BASES = ("amount", "qty")
BASIS_LABELS = {"amount": _("dispensed amount (yuan)"), "qty": _("dispensed quantity (item units)")}
BASIS_ZH = {"amount": "中选药品发药金额（元）", "qty": "中选药品发药数量（品种单位）"}


def profiles_library(home: Path | None = None) -> ProfileLibrary:
    return ProfileLibrary([Path(home or settings.JICAI_HOME) / "profiles"])


# --------------------------------------------------------------------------------------------------
# The split in force


@dataclass(frozen=True)
class Split:
    params: InternalSplitParams
    source: dict[str, Any]

    def plain(self) -> dict[str, str]:
        return {pool: str(getattr(self.params, pool)) for pool in POOLS}


def internal_split_for(institution: Institution, as_of: dt.date, profiles: ProfileLibrary) -> Split:
    """The internal split for ``institution`` on ``as_of`` and where it came from (R-G3)."""
    name = profile_for_region(profiles, institution.region_code)
    try:
        resolved = profiles.resolve(name, as_of)
    except ProfileError:
        resolved = None
    if resolved is not None and "surplus.internal_split" in resolved.values:
        value = resolved.values["surplus.internal_split"]
        return Split(
            params.internal_split(resolved),
            {
                "kind": "profile",
                "profile": name,
                "layer": value.layer,
                "effective_from": value.effective_from.isoformat(),
                "source": value.source,
                "confirmed": value.confirmed,
            },
        )
    return Split(
        XJ_INTERNAL_SPLIT,
        {"kind": "default", "profile": name, "layer": "", "source": "XJ_INTERNAL_SPLIT (XJ 五(七))", "confirmed": True},
    )


# --------------------------------------------------------------------------------------------------
# Prescribers' use of selected drugs


@dataclass(frozen=True)
class Use:
    by_prescriber: dict[str, Decimal]
    unattributed: Decimal
    total: Decimal


def selected_conversions(acting: Scope) -> dict[str, Decimal]:
    """Products selected in the rounds the scope sees, with their conversion to item units (the
    newest round's when a product is selected in several)."""
    with use_scope(acting):
        rows = list(
            SelectedProduct.objects.order_by("batch__start_date", "batch__code").values_list(
                "product__code", "conversion"
            )
        )
    return dict(rows)


def prescriber_use(
    acting: Scope,
    institution: Institution,
    start: dt.date,
    end: dt.date,
    basis: str = "amount",
    *,
    home: Path | None = None,
) -> Use:
    """Selected-drug dispensing per prescriber in [start, end] (amount in yuan or quantity in item units)."""
    if basis not in BASES:
        raise WorkflowError("分配依据须为金额或数量", f"basis must be one of {BASES}", code="basis")
    products = selected_conversions(acting)
    if not products:
        return Use({}, ZERO, ZERO)
    value = "d.amount" if basis == "amount" else "d.qty * s.conversion"
    with FactQuery(Path(home or settings.JICAI_HOME), acting) as q:
        q.register(
            "surplus_selected",
            pa.table(
                {
                    "product_code": pa.array(list(products), pa.string()),
                    "conversion": pa.array([Decimal(c) for c in products.values()], pa.decimal128(18, 4)),
                }
            ),
        )
        rows = q.rows(
            f"SELECT coalesce(d.prescriber_code, '') AS prescriber, sum({value}) AS used "  # noqa: S608 - fixed expressions
            "FROM dispensing d JOIN surplus_selected s ON s.product_code = d.product_code "
            "WHERE d.institution_code = ? AND d.dispensed_on BETWEEN ? AND ? GROUP BY 1 ORDER BY 1",
            [institution.code, start, end],
        )
    places = Decimal("0.01") if basis == "amount" else Decimal("0.0001")
    by_prescriber: dict[str, Decimal] = {}
    unattributed = ZERO
    for row in rows:
        used = Decimal(row["used"] or 0).quantize(places)
        code = str(row["prescriber"]).strip()
        if not code:
            unattributed += used
        elif used > 0:
            by_prescriber[code] = used
    total = sum(by_prescriber.values(), ZERO)
    return Use(by_prescriber, unattributed, total)


# --------------------------------------------------------------------------------------------------
# The exact split


@dataclass(frozen=True)
class ShareRow:
    pool: str
    recipient: str
    weight: Decimal
    amount: Decimal


def parse_amount(value: Any) -> Decimal:
    """A retained amount in yuan: positive and a whole number of fen."""
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).replace(",", "").strip())
    except (InvalidOperation, ValueError):
        raise WorkflowError("留用金额须为数字", f"not an amount: {value!r}", code="amount") from None
    if not amount.is_finite() or amount <= 0:
        raise WorkflowError("留用金额须大于0", "the retained amount must be positive", code="amount")
    if amount != amount.quantize(Decimal("0.01")):
        raise WorkflowError("留用金额须精确到分（两位小数）", "the retained amount must be whole fen", code="amount")
    return amount.quantize(Decimal("0.01"))


def parse_staff(text: str) -> list[tuple[str, Decimal | None]]:
    """Pharmacy staff, one per line: "staff id or name[, weight]" (comma, tab or full-width comma)."""
    out: list[tuple[str, Decimal | None]] = []
    for raw in text.replace("，", ",").replace("\t", ",").splitlines():
        parts = [p.strip() for p in raw.split(",")]
        if not parts or not parts[0]:
            continue
        weight: Decimal | None = None
        if len(parts) > 1 and parts[1]:
            try:
                weight = Decimal(parts[1])
            except InvalidOperation:
                raise WorkflowError(f"权重无效：{raw.strip()}", f"bad weight: {raw.strip()}", code="staff") from None
        out.append((parts[0], weight))
    return out


def staff_weights(staff: Sequence[tuple[str, Decimal | None]]) -> tuple[dict[str, Decimal], str]:
    """Weights of the pharmacy staff and the mode: "equal" (no weight given) or "weighted"."""
    names = [name.strip() for name, _ in staff]
    if any(not n or len(n) > 64 for n in names):
        raise WorkflowError(
            "药学人员的工号或姓名不能为空，且不超过64个字符", "staff names must be 1–64 characters", code="staff"
        )
    if len(set(names)) != len(names):
        raise WorkflowError("药学人员名单有重复", "the pharmacy staff list has duplicates", code="staff")
    given = [w for _, w in staff if w is not None]
    if not given:
        return equal_weights(names), "equal"
    if len(given) != len(staff):
        raise WorkflowError("请为每位药学人员填写权重，或都不填（平均分配）", "give every weight or none", code="staff")
    if any(not w.is_finite() or w < 0 for w in given):
        raise WorkflowError("权重不能为负数", "weights must not be negative", code="staff")
    return {n: w if w is not None else Decimal(0) for n, (_, w) in zip(names, staff, strict=True)}, "weighted"


def share_rows(
    amount: Decimal,
    split: InternalSplitParams,
    prescriber_use: Mapping[str, Decimal],
    pharmacy_weights: Mapping[str, Decimal],
    institution_code: str,
) -> list[ShareRow]:
    """Every recipient's share, exact to the fen (the rows sum to ``amount``; R-G3)."""
    try:
        result = distribute_retained(amount, prescriber_use, pharmacy_weights, split)
    except ValueError as exc:
        text = str(exc)
        if "no prescriber" in text:
            raise WorkflowError(
                "期间内没有医师使用中选药品的发药记录，医师奖励池无法分配",
                "no prescriber used selected drugs in the period",
                code="use",
            ) from exc
        if "no one" in text:
            raise WorkflowError("请填写药学人员名单", "the pharmacy pool needs staff", code="staff") from exc
        raise WorkflowError(f"无法分配：{text}", text, code="split") from exc
    rows = [ShareRow("prescribers", p, Decimal(prescriber_use.get(p, 0)), a) for p, a in result.prescribers.items()]
    rows += [ShareRow("pharmacy", p, Decimal(pharmacy_weights.get(p, 0)), a) for p, a in result.pharmacy.items()]
    rows.append(ShareRow("institution", institution_code, Decimal(1), result.pools.institution))
    return rows


def pool_totals(rows: Iterable[ShareRow | SurplusShare]) -> dict[str, Decimal]:
    totals = dict.fromkeys(POOLS, ZERO)
    for row in rows:
        totals[row.pool] = totals.get(row.pool, ZERO) + Decimal(row.amount)
    return totals


# --------------------------------------------------------------------------------------------------
# Distributions on record


def distributions(acting: Scope | None = None) -> Any:
    """The distributions the active scope may read, newest period first (a queryset)."""
    return SurplusDistribution.objects.select_related("institution", "created_by", "approved_by").order_by(
        "-period", "-pk"
    )


def shares(distribution: SurplusDistribution) -> list[SurplusShare]:
    order = {pool: i for i, pool in enumerate(POOLS)}
    rows = list(SurplusShare.objects.filter(distribution=distribution))
    return sorted(rows, key=lambda s: (order.get(s.pool, 9), -s.amount, s.recipient))


def may_choose_institution(acting: Scope) -> bool:
    return acting.level not in (Level.INSTITUTION, Level.DEPARTMENT)
