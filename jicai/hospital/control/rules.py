"""When non-selected or substitute use is an anomaly, and why (R-H7; XJ 五(五)). No database.

XJ 五(五) asks hospitals to watch substitutes' (and non-selected drugs') share of use, growth rate and
diagnosis mix, and to act on anomalies — "after analysing the cause" — by limiting quantity or
suspending purchase. The seed gives no numbers; the thresholds below are the readings the workspace
uses, each tested, and each a candidate for the policy profiles:

* growth (``GROWTH_THRESHOLD`` / ``GROWTH_MIN_QTY``, the monthly cycle's substitute-growth alert
  thresholds, ``monitoring.cycle``): a product's use in the last month of the range is at least the
  minimum quantity and grew by more than the threshold month on month or year on year
  (this − prev > threshold × prev, prev > 0, exact);
* non-selected cap (the profile's ``non_selected_cap.ratio``, R-D2): the unit's non-selected use of
  the same generic exceeds ratio × its selected use, applied to the department's or prescriber's
  use in the range (the cap itself binds the institution's agreement year); each non-selected
  product with at least ``SHARE_MIN_QTY`` is flagged. Where the region has no cap the share rule
  below applies to non-selected products too;
* share (``SHARE_THRESHOLD`` / ``SHARE_MIN_QTY``): a substitute's share of the unit's use of the
  item (selected + non-selected + substitutes) is above the threshold, with at least the minimum;
* diagnosis mix (``DIAGNOSIS_THRESHOLD`` / ``DIAGNOSIS_MIN_QTY``): the product's distribution over
  ICD-10 chapters differs from the selected products' in the same department by a total variation
  distance (½ Σ |pᵢ − qᵢ|) above the threshold, both with at least the minimum quantity — the
  chapter it is most over-represented in is named, as the place to look for use outside the
  selected drug's indications.

All figures are counted without the lines covered by a valid antimicrobial exception (R-H8); the
caller passes those quantities.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from jicai.hospital.control.icd10 import chapter_label_zh
from jicai.monitoring.cycle import GROWTH_MIN_QTY, GROWTH_THRESHOLD

SHARE_THRESHOLD = Decimal("0.5")
"""A substitute taking more than half of a unit's use of the item is an anomaly (candidate profile
value ``substitute_control.share_threshold``)."""
SHARE_MIN_QTY = GROWTH_MIN_QTY
"""Below this use in the range (item units) a share is not judged (``substitute_control.share_min_qty``)."""
DIAGNOSIS_THRESHOLD = Decimal("0.5")
"""Total variation distance between the product's and the selected drug's chapter mix above which
the mix is an anomaly (``substitute_control.diagnosis_threshold``)."""
DIAGNOSIS_MIN_QTY = GROWTH_MIN_QTY
"""Both the product and the selected drug need this much use to compare mixes (``…diagnosis_min_qty``)."""

NON_SELECTED = "same_generic"
SUBSTITUTE = "substitute"
Q4 = Decimal("0.0001")


@dataclass(frozen=True)
class Thresholds:
    growth: Decimal = GROWTH_THRESHOLD
    growth_min_qty: Decimal = GROWTH_MIN_QTY
    share: Decimal = SHARE_THRESHOLD
    share_min_qty: Decimal = SHARE_MIN_QTY
    cap_ratio: Decimal | None = Decimal(1)
    diagnosis: Decimal = DIAGNOSIS_THRESHOLD
    diagnosis_min_qty: Decimal = DIAGNOSIS_MIN_QTY

    def as_dict(self) -> dict[str, str | None]:
        return {
            "growth": str(self.growth),
            "growth_min_qty": str(self.growth_min_qty),
            "share": str(self.share),
            "share_min_qty": str(self.share_min_qty),
            "cap_ratio": None if self.cap_ratio is None else str(self.cap_ratio),
            "diagnosis": str(self.diagnosis),
            "diagnosis_min_qty": str(self.diagnosis_min_qty),
        }


@dataclass
class ProductFigures:
    """One non-selected or substitute product's use by one unit (department or prescriber) and item."""

    product_code: str
    kind: str
    qty_all: Decimal = Decimal(0)  # the range, every line
    qty: Decimal = Decimal(0)  # the range, lines not covered by an exception
    last: Decimal = Decimal(0)  # counted, the range's last month
    prev: Decimal = Decimal(0)  # counted, the month before it
    year_ago: Decimal = Decimal(0)  # counted, the same month a year earlier
    mix: dict[str | None, Decimal] = field(default_factory=dict)  # counted, by ICD-10 chapter


@dataclass
class UnitFigures:
    """A unit's counted use of an item in the range, by kind; ``selected_mix`` None = mixes not compared."""

    selected: Decimal
    non_selected: Decimal
    substitute: Decimal
    selected_mix: Mapping[str | None, Decimal] | None = None

    @property
    def total(self) -> Decimal:
        return self.selected + self.non_selected + self.substitute


@dataclass(frozen=True)
class Reason:
    code: str  # growth | cap | share | diagnosis
    message_zh: str
    message_en: str
    figures: dict[str, str]


def q4(value: Decimal) -> Decimal:
    return value.quantize(Q4, rounding=ROUND_HALF_UP)


def growth(this: Decimal, prev: Decimal) -> Decimal | None:
    """(this − prev) ÷ prev to four places; None when prev ≤ 0."""
    if prev <= 0:
        return None
    return q4((this - prev) / prev)


def share(part: Decimal, whole: Decimal) -> Decimal | None:
    if whole <= 0:
        return None
    return q4(part / whole)


def _pct(value: Decimal | None) -> str:
    if value is None:
        return "—"
    return f"{(value * 100).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"


def _qty(value: Decimal) -> str:
    text = f"{q4(value):f}".rstrip("0").rstrip(".")
    return text or "0"


def divergence(
    mix: Mapping[str | None, Decimal], reference: Mapping[str | None, Decimal]
) -> tuple[Decimal, str | None, Decimal, Decimal]:
    """Total variation distance between two quantity mixes (0 … 1, four places), the chapter the first
    is most over-represented in, and its share in each. Both mixes must have a positive total."""
    total_p = sum(mix.values(), Decimal(0))
    total_q = sum(reference.values(), Decimal(0))
    chapters = sorted(set(mix) | set(reference), key=lambda c: (c is None, c or ""))
    distance = Decimal(0)
    top: str | None = None
    top_gap = Decimal(-2)
    for chapter in chapters:
        p = mix.get(chapter, Decimal(0)) / total_p
        q = reference.get(chapter, Decimal(0)) / total_q
        distance += abs(p - q)
        if p - q > top_gap:
            top, top_gap = chapter, p - q
    p_top = mix.get(top, Decimal(0)) / total_p
    q_top = reference.get(top, Decimal(0)) / total_q
    return q4(distance / 2), top, q4(p_top), q4(q_top)


def _growth_reason(product: ProductFigures, th: Thresholds, month: str) -> Reason | None:
    if product.last < th.growth_min_qty:
        return None
    hits = []
    for prev, zh, en, key in (
        (product.prev, "环比", "month on month", "mom"),
        (product.year_ago, "同比", "year on year", "yoy"),
    ):
        if prev > 0 and product.last - prev > th.growth * prev:
            hits.append((zh, en, key, growth(product.last, prev), prev))
    if not hits:
        return None
    zh = "，".join(f"{z}增长 {_pct(g)}（对比 {_qty(p)}）" for z, _, _, g, p in hits)
    en = ", ".join(f"up {_pct(g)} {e} (from {_qty(p)})" for _, e, _, g, p in hits)
    figures = {"month": month, "qty": str(product.last)} | {k: str(g) for _, _, k, g, _ in hits}
    return Reason(
        "growth",
        f"{month} 用量 {_qty(product.last)}，{zh}，超过增长阈值 {_pct(th.growth)}"
        f"（月用量不低于 {_qty(th.growth_min_qty)}）：请分析增长原因、核查处方适应证，必要时限量。",
        f"{month}: use {_qty(product.last)}, {en}, above the growth threshold {_pct(th.growth)} "
        f"(monthly use at least {_qty(th.growth_min_qty)}): analyse the cause and review the prescriptions; "
        "limit the quantity if needed.",
        figures,
    )


def _cap_reason(product: ProductFigures, unit: UnitFigures, th: Thresholds) -> Reason | None:
    ratio = th.cap_ratio
    if ratio is None or product.qty < th.share_min_qty or not unit.non_selected > ratio * unit.selected:
        return None
    return Reason(
        "cap",
        f"非中选药品用量 {_qty(unit.non_selected)} 超过中选药品用量 {_qty(unit.selected)} 的 {ratio:f} 倍"
        f"（本品 {_qty(product.qty)}）：请优先使用中选药品，必要时限量或暂停采购。",
        f"non-selected use {_qty(unit.non_selected)} exceeds {ratio:f} × the selected use {_qty(unit.selected)} "
        f"(this product {_qty(product.qty)}): use the selected drug first; limit or suspend purchase if needed.",
        {"non_selected": str(unit.non_selected), "selected": str(unit.selected), "cap_ratio": str(ratio)},
    )


def _share_reason(product: ProductFigures, unit: UnitFigures, th: Thresholds) -> Reason | None:
    total = unit.total
    if product.qty < th.share_min_qty or total <= 0 or not product.qty > th.share * total:
        return None
    part = share(product.qty, total)
    kind_zh = "同类药品" if product.kind == SUBSTITUTE else "非中选药品"
    return Reason(
        "share",
        f"{kind_zh}占该品种用量的 {_pct(part)}（{_qty(product.qty)} / {_qty(total)}），超过占比阈值 {_pct(th.share)}："
        "请核查处方，优先使用中选药品，必要时限量。",
        f"{'substitute' if product.kind == SUBSTITUTE else 'non-selected product'} takes {_pct(part)} "
        "of the item's use "
        f"({_qty(product.qty)} / {_qty(total)}), above the share threshold {_pct(th.share)}: review the prescriptions; "
        "limit the quantity if needed.",
        {"share": str(part), "qty": str(product.qty), "total": str(total)},
    )


def _diagnosis_reason(product: ProductFigures, unit: UnitFigures, th: Thresholds) -> Reason | None:
    reference = unit.selected_mix
    if reference is None or product.qty < th.diagnosis_min_qty:
        return None
    if sum(reference.values(), Decimal(0)) < th.diagnosis_min_qty or sum(product.mix.values(), Decimal(0)) <= 0:
        return None
    distance, top, p_top, q_top = divergence(product.mix, reference)
    if distance <= th.diagnosis:
        return None
    label = chapter_label_zh(top)
    return Reason(
        "diagnosis",
        f"诊断分布与中选药品差异 {_pct(distance)}（阈值 {_pct(th.diagnosis)}）：{label} 占本品用量 {_pct(p_top)}，"
        f"中选药品仅 {_pct(q_top)}：请核查是否超适应证或替代使用。",
        f"diagnosis mix differs from the selected drug's by {_pct(distance)} (threshold {_pct(th.diagnosis)}): "
        f"ICD-10 chapter {top or '—'} is {_pct(p_top)} of this product's use against {_pct(q_top)} for the selected "
        "drug: check for use outside its indications.",
        {"distance": str(distance), "chapter": top or "", "product_share": str(p_top), "selected_share": str(q_top)},
    )


def reasons(product: ProductFigures, unit: UnitFigures, th: Thresholds, *, month: str) -> list[Reason]:
    """Why ``product``'s use by the unit is an anomaly (module docstring); empty when it is not.
    ``month`` labels the range's last month (growth)."""
    found = [_growth_reason(product, th, month)]
    if product.kind == NON_SELECTED and th.cap_ratio is not None:
        found.append(_cap_reason(product, unit, th))
    else:
        found.append(_share_reason(product, unit, th))
    found.append(_diagnosis_reason(product, unit, th))
    return [r for r in found if r is not None]
