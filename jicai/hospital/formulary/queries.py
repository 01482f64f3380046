"""Formulary advice reads (R-H6, R-H9): the hospital formulary of a round, the rules' advice for each
product with the figures behind it, the reviews on record, and the rounds due for re-evaluation.

The hospital formulary of a round is what the institution actually uses of each item: the products
of the batch's items — selected and non-selected of the same generic — that it purchased or dispensed
in the ``HISTORY_MONTHS`` before the review date (fact store), the selected product its agreement
assigns, and any product the pharmacy adds by code. When an item is in use (or agreed) but none of
its selected products is, every selected product of the item is listed so the committee sees the
winners. Substitutes (other generics) are not formulary products of the item: they are watched by
substitute control (R-H7).

Prices are compared per item unit (the selected product's minimum unit): a product's price per
minimum unit ÷ its conversion (差比价 as recorded on the round's product lists). A selected product's
price is its winning unit price; another product's is the average price the hospital paid in the
window (amount ÷ quantity), else its listed price per minimum unit; a product the pharmacy adds that is
on none of the round's lists is compared per minimum unit (conversion 1). With several winners the one the
agreement assigns is the reference, else the one the hospital used most, else the dearest (lenient,
as policy/formulary.py suggests).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
from django.conf import settings
from django.db.models import Count, Max, Q
from django.utils.translation import gettext_lazy as _

from jicai.catalog.models import Product
from jicai.core.tenancy import Level, Scope, use_scope
from jicai.facts.query import FactQuery
from jicai.hospital.common import WorkflowError
from jicai.hospital.models import FormularyEntry, FormularyReview, FormularyTrigger
from jicai.organizations.models import Institution
from jicai.policy import params
from jicai.policy.formulary import (
    XINJIANG_FORMULARY,
    AdviceReason,
    FormularyAction,
    FormularyParams,
    FormularyProduct,
    SelectedDrug,
    advise_formulary,
    reevaluate_at_expiry,
)
from jicai.policy.profile import ProfileError, ProfileLibrary
from jicai.programme.models import Agreement, Batch, Item, NonSelectedKind, NonSelectedProduct, SelectedProduct

HISTORY_MONTHS = 12
"""The window of use that defines the hospital formulary (months before the review date)."""

EXPIRY_PROMPT_DAYS = 90
"""Rounds whose agreements end within this many days are flagged for re-evaluation (R-H6, R-C3).
A candidate for the policy profile (e.g. ``formulary.expiry_prompt_days``)."""

UNIT = Decimal("0.0001")
NO_PRICE = "no_price"  # entry reason when the figures to apply the rules are missing

ACTION_LABELS = {
    FormularyAction.KEEP.value: _("Keep"),
    FormularyAction.SUSPEND.value: _("Suspend"),
    FormularyAction.DROP.value: _("Drop"),
}
REASON_LABELS = {
    AdviceReason.SELECTED.value: _("Selected (winning) product"),
    AdviceReason.ORIGINATOR_OR_REFERENCE.value: _("Originator or reference listed drug"),
    AdviceReason.CE_NOT_PRICIER.value: _("CE generic priced at or below the selected product"),
    AdviceReason.NON_CE_GENERIC.value: _("Generic without consistency evaluation"),
    AdviceReason.PRICIER_GENERIC.value: _("Generic priced above the selected product"),
    AdviceReason.ESSENTIAL_MEDICINE.value: _("Essential medicine kept (the selected product is not one)"),
    NO_PRICE: _("Prices missing: the committee decides without advice"),
}
REASON_ZH = {  # the export and the audit carry Chinese whatever the UI language
    AdviceReason.SELECTED.value: "集采中选药品",
    AdviceReason.ORIGINATOR_OR_REFERENCE.value: "原研药/参比制剂",
    AdviceReason.CE_NOT_PRICIER.value: "通过一致性评价且价格低于或等于中选药品的仿制药",
    AdviceReason.NON_CE_GENERIC.value: "未通过一致性评价的仿制药",
    AdviceReason.PRICIER_GENERIC.value: "价格高于集采中选药品的仿制药",
    AdviceReason.ESSENTIAL_MEDICINE.value: "中选药品非国家基本药物，保留国家基本药物品规",
    NO_PRICE: "价格信息不全，无法给出建议，由药事会研究决定",
}
ACTION_ZH = {"keep": "保留", "suspend": "暂停使用", "drop": "淘汰", "": "—"}
KIND_LABELS = {
    "selected": _("Selected"),
    "same_generic": _("Non-selected, same generic"),
    "added": _("Added by the pharmacy"),
}
KIND_ZH = {"selected": "中选产品", "same_generic": "同通用名非中选产品", "added": "药学部门添加"}
TRIGGER_ZH = {FormularyTrigger.NEW_ROUND.value: "新一轮集采", FormularyTrigger.EXPIRY.value: "协议期满"}
PRICE_SOURCE_LABELS = {
    "winning": _("winning price"),
    "purchases": _("average purchase price"),
    "listed": _("listed price"),
}
PRICE_SOURCE_ZH = {"winning": "中选价", "purchases": "近12个月平均采购价", "listed": "挂网价"}


def profiles_library(home: Path | None = None) -> ProfileLibrary:
    base = Path(home or settings.JICAI_HOME)
    return ProfileLibrary([base / "profiles"])


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by ``months`` calendar months (clamped to the month's last day)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


def history_window(as_of: dt.date) -> tuple[dt.date, dt.date]:
    """The ``HISTORY_MONTHS`` up to and including ``as_of``."""
    return add_months(as_of, -HISTORY_MONTHS) + dt.timedelta(days=1), as_of


# --------------------------------------------------------------------------------------------------
# The rules' parameters


@dataclass(frozen=True)
class Rules:
    params: FormularyParams
    source: dict[str, Any]


def formulary_rules(batch: Batch, as_of: dt.date, profiles: ProfileLibrary) -> Rules:
    """The round's profile values for the advice (R-H6, R-H9), with where each came from; the
    Xinjiang defaults of policy/formulary.py when the profile cannot give them."""
    keys = ("formulary.non_ce_action", "formulary.pricier_action", "formulary.keep_essential")
    try:
        resolved = profiles.resolve(batch.policy_profile, as_of)
        rule = params.formulary_params(resolved)
    except (ProfileError, KeyError, ValueError):
        return Rules(
            XINJIANG_FORMULARY,
            {"profile": batch.policy_profile, "fallback": "XINJIANG_FORMULARY", **_plain(XINJIANG_FORMULARY)},
        )
    source: dict[str, Any] = {"profile": batch.policy_profile, **_plain(rule)}
    for key in keys:
        value = resolved.values[key]
        source[key] = {"layer": value.layer, "source": value.source, "confirmed": value.confirmed}
    return Rules(rule, source)


def _plain(rule: FormularyParams) -> dict[str, Any]:
    return {
        "non_ce_action": rule.non_ce_action.value,
        "pricier_action": rule.pricier_action.value,
        "keep_essential": rule.keep_essential_when_selected_not_essential,
    }


# --------------------------------------------------------------------------------------------------
# The hospital formulary of a round


@dataclass
class Candidate:
    """One product of the hospital formulary of an item, with its use in the window."""

    item: Item
    product: Product
    kind: str  # selected | same_generic | added
    conversion: Decimal
    winning_price: Decimal | None = None
    assigned: bool = False
    purchased_qty: Decimal = Decimal(0)
    purchased_amount: Decimal = Decimal(0)
    dispensed_qty: Decimal = Decimal(0)
    added: bool = False

    @property
    def used(self) -> bool:
        return self.purchased_qty > 0 or self.dispensed_qty > 0

    @property
    def item_units(self) -> Decimal:
        qty = self.purchased_qty if self.purchased_qty > 0 else self.dispensed_qty
        return qty * self.conversion

    def unit_price(self) -> tuple[Decimal | None, str | None]:
        """Price per item unit and where it came from."""
        conversion = self.conversion if self.conversion > 0 else Decimal(1)
        pack_size = self.product.pack_size
        per_min_unit: Decimal | None = None
        source: str | None = None
        if self.kind == "selected" and self.winning_price is not None and pack_size:
            per_min_unit, source = self.winning_price / Decimal(pack_size), "winning"
        elif self.purchased_qty > 0 and self.purchased_amount > 0:
            per_min_unit, source = self.purchased_amount / self.purchased_qty, "purchases"
        elif self.product.listed_price and pack_size:
            per_min_unit, source = self.product.listed_price / Decimal(pack_size), "listed"
        if per_min_unit is None or per_min_unit <= 0:
            return None, None
        return (per_min_unit / conversion).quantize(UNIT, rounding=ROUND_HALF_UP), source


def parse_extra_products(text: str) -> list[tuple[str, str]]:
    """Lines of "product code [item code]" (comma, space or tab separated) → (product, item) pairs."""
    out: list[tuple[str, str]] = []
    for raw in text.replace("，", ",").splitlines():
        parts = [p for p in raw.replace(",", " ").replace("\t", " ").split(" ") if p]
        if not parts:
            continue
        out.append((parts[0], parts[1] if len(parts) > 1 else ""))
    return out


def _use(
    acting: Scope, institution: Institution, codes: Sequence[str], *, start: dt.date, end: dt.date, home: Path
) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
    """Purchased qty and amount and dispensed qty per product code in [start, end] (fact store)."""
    if not codes:
        return {}
    out: dict[str, list[Decimal]] = {}
    with FactQuery(home, acting) as q:
        q.register("formulary_codes", pa.table({"product_code": pa.array(sorted(set(codes)), pa.string())}))
        purchases = q.rows(
            "SELECT p.product_code AS code, sum(p.qty) AS qty, sum(p.amount) AS amount "
            "FROM purchases p JOIN formulary_codes c ON c.product_code = p.product_code "
            "WHERE p.institution_code = ? AND coalesce(p.accepted_on, p.delivered_on, p.ordered_on) BETWEEN ? AND ? "
            "GROUP BY p.product_code",
            [institution.code, start, end],
        )
        dispensed = q.rows(
            "SELECT d.product_code AS code, sum(d.qty) AS qty "
            "FROM dispensing d JOIN formulary_codes c ON c.product_code = d.product_code "
            "WHERE d.institution_code = ? AND d.dispensed_on BETWEEN ? AND ? GROUP BY d.product_code",
            [institution.code, start, end],
        )
    for row in purchases:
        entry = out.setdefault(row["code"], [Decimal(0), Decimal(0), Decimal(0)])
        entry[0], entry[1] = Decimal(row["qty"] or 0), Decimal(row["amount"] or 0)
    for row in dispensed:
        out.setdefault(row["code"], [Decimal(0), Decimal(0), Decimal(0)])[2] = Decimal(row["qty"] or 0)
    return {code: (v[0], v[1], v[2]) for code, v in out.items()}


def formulary_candidates(
    acting: Scope,
    institution: Institution,
    batch: Batch,
    as_of: dt.date,
    *,
    extra: Iterable[tuple[str, str]] = (),
    home: Path | None = None,
) -> list[Candidate]:
    """The hospital formulary of ``batch`` for ``institution`` on ``as_of`` (see the module docstring).

    ``extra``: (product code, item code or "") pairs the pharmacy adds. Unknown codes raise ``WorkflowError``.
    """
    start, end = history_window(as_of)
    with use_scope(acting):
        items = {i.pk: i for i in Item.objects.filter(batch=batch)}
        selected = list(SelectedProduct.objects.filter(batch=batch).select_related("product"))
        same = list(
            NonSelectedProduct.objects.filter(batch=batch, kind=NonSelectedKind.SAME_GENERIC).select_related("product")
        )
        agreements = list(
            Agreement.objects.filter(batch=batch, institution=institution).values_list("item_id", "product_id")
        )
        wanted = list(extra)
        found = {p.code: p for p in Product.objects.filter(code__in=[code for code, _ in wanted])}
    agreed_items = {item_id for item_id, _ in agreements}
    assigned = {(item_id, product_id) for item_id, product_id in agreements if product_id}

    by_key: dict[tuple[int, int], Candidate] = {}
    for row in selected:
        by_key[(row.item_id, row.product_id)] = Candidate(
            items[row.item_id], row.product, "selected", row.conversion, row.winning_price,
            assigned=(row.item_id, row.product_id) in assigned,
        )  # fmt: skip
    for row in same:
        by_key.setdefault(
            (row.item_id, row.product_id), Candidate(items[row.item_id], row.product, "same_generic", row.conversion)
        )

    problems: list[str] = []
    for code, item_code in wanted:
        product = found.get(code)
        if product is None:
            problems.append(f"未知的药品编码 {code}")
            continue
        item = _item_for(product, item_code, list(items.values()), by_key)
        if item is None:
            problems.append(f"无法确定药品 {code} 所属的集采品种，请同时填写品种编码")
            continue
        key = (item.pk, product.pk)
        if key not in by_key:
            by_key[key] = Candidate(item, product, "added", Decimal(1))
        by_key[key].added = True
    if problems:
        raise WorkflowError("；".join(problems), "unknown products or items: " + "; ".join(problems), code="product")

    use = _use(
        acting,
        institution,
        [c.product.code for c in by_key.values()],
        start=start,
        end=end,
        home=Path(home or settings.JICAI_HOME),
    )
    for candidate in by_key.values():
        pq, pa_, dq = use.get(candidate.product.code, (Decimal(0), Decimal(0), Decimal(0)))
        candidate.purchased_qty, candidate.purchased_amount, candidate.dispensed_qty = pq, pa_, dq

    chosen: list[Candidate] = []
    for item_id in sorted(items, key=lambda pk: items[pk].item_code):
        of_item = [c for (i, _), c in by_key.items() if i == item_id]
        keep = [c for c in of_item if c.used or c.assigned or c.added]
        if (keep or item_id in agreed_items) and not any(c.kind == "selected" for c in keep):
            keep += [c for c in of_item if c.kind == "selected" and c not in keep]
        chosen += sorted(keep, key=lambda c: (c.kind != "selected", c.product.code))
    return chosen


def _item_for(
    product: Product, item_code: str, items: list[Item], by_key: dict[tuple[int, int], Candidate]
) -> Item | None:
    if item_code:
        return next((i for i in items if i.item_code == item_code), None)
    listed = {i for (i, p) in by_key if p == product.pk}
    if len(listed) == 1:
        return next(i for i in items if i.pk in listed)
    named = [i for i in items if i.generic_name == product.generic_name]
    return named[0] if len(named) == 1 else None


# --------------------------------------------------------------------------------------------------
# The advice


@dataclass(frozen=True)
class Draft:
    """An entry to write: the advice and its figures."""

    item: Item
    product: Product
    advice: str
    reason: str
    detail: dict[str, Any]


def reference_selected(candidates: Sequence[Candidate]) -> Candidate | None:
    """The selected product prices are measured against (assigned → most used → dearest)."""
    winners = [c for c in candidates if c.kind == "selected" and c.unit_price()[0] is not None]
    if not winners:
        return None
    assigned = [c for c in winners if c.assigned]
    if assigned:
        return assigned[0]
    used = [c for c in winners if c.item_units > 0]
    if used:
        return max(used, key=lambda c: (c.item_units, c.product.code))
    return max(winners, key=lambda c: (c.unit_price()[0] or Decimal(0), c.product.code))


def advise(candidates: Sequence[Candidate], rules: Rules, trigger: str) -> list[Draft]:
    """Apply policy/formulary.py to each item's products: ``advise_formulary`` at a new round,
    ``reevaluate_at_expiry`` at contract expiry (the round's current winners and prices)."""
    by_item: dict[int, list[Candidate]] = {}
    for candidate in candidates:
        by_item.setdefault(candidate.item.pk, []).append(candidate)
    rule = reevaluate_at_expiry if trigger == FormularyTrigger.EXPIRY else advise_formulary
    drafts: list[Draft] = []
    for group in by_item.values():
        ref = reference_selected(group)
        ref_price = ref.unit_price()[0] if ref is not None else None
        selected = (
            SelectedDrug(ref.item.generic_name, ref_price, is_essential=ref.product.is_essential)
            if ref is not None and ref_price is not None
            else None
        )
        priced: list[tuple[Candidate, FormularyProduct]] = []
        for c in group:
            price, _source = c.unit_price()
            if selected is not None and price is not None:
                priced.append((c, _product(c, price)))
        advice = {a.code: a for a in rule(selected, [p for _, p in priced], rules.params)} if selected else {}
        for c in group:
            price, source = c.unit_price()
            detail: dict[str, Any] = {
                "kind": c.kind,
                "added": c.added,
                "assigned": c.assigned,
                "ce_passed": c.product.ce_passed,
                "is_originator": c.product.is_originator,
                "is_reference": c.product.is_reference,
                "is_essential": c.product.is_essential,
                "is_selected": c.kind == "selected",
                "conversion": str(c.conversion),
                "unit_price": None if price is None else str(price),
                "price_source": source,
                "selected_code": ref.product.code if ref is not None else None,
                "selected_unit_price": None if ref_price is None else str(ref_price),
                "selected_is_essential": ref.product.is_essential if ref is not None else None,
                "purchased_qty": str(c.purchased_qty),
                "purchased_amount": str(c.purchased_amount),
                "dispensed_qty": str(c.dispensed_qty),
                "rules": rules.source,
            }
            found = advice.get(c.product.code)
            if found is None:
                detail["reason_zh"] = REASON_ZH[NO_PRICE]
                detail["reason_en"] = "Prices missing: no advice; the committee decides."
                drafts.append(Draft(c.item, c.product, "", NO_PRICE, detail))
                continue
            detail["reason_zh"], detail["reason_en"] = found.reason_zh, found.reason_en
            drafts.append(Draft(c.item, c.product, found.action.value, found.reason.value, detail))
    return drafts


def _product(c: Candidate, price: Decimal) -> FormularyProduct:
    p = c.product
    return FormularyProduct(
        code=p.code,
        unit_price=price,
        ce_passed=p.ce_passed,
        is_originator=p.is_originator,
        is_reference=p.is_reference,
        is_essential=p.is_essential,
        is_selected=c.kind == "selected",
    )


# --------------------------------------------------------------------------------------------------
# Reviews on record and rounds due for re-evaluation


def reviews(acting: Scope | None = None) -> Any:
    """The reviews the scope may read, newest first (a queryset; evaluate inside ``use_scope``)."""
    return FormularyReview.objects.select_related("batch", "institution", "created_by").order_by("-as_of", "-pk")


def entry_counts(review_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Per review: entries, decided, and the advice counts (one query)."""
    out: dict[int, dict[str, int]] = {
        pk: {"entries": 0, "decided": 0, "keep": 0, "suspend": 0, "drop": 0, "": 0} for pk in review_ids
    }
    if not review_ids:
        return out
    rows = (
        FormularyEntry.objects.filter(review_id__in=list(review_ids))
        .values("review_id", "advice")
        .annotate(n=Count("id"), decided=Count("id", filter=~Q(decision="")))
        .order_by()
    )
    for row in rows:
        counts = out[row["review_id"]]
        counts["entries"] += row["n"]
        counts["decided"] += row["decided"]
        counts[row["advice"] if row["advice"] in counts else ""] += row["n"]
    return out


def entries(review: FormularyReview) -> list[FormularyEntry]:
    return list(
        FormularyEntry.objects.filter(review=review)
        .select_related("product", "item", "decided_by")
        .order_by("item__item_code", "product__code")
    )


def expiring_rounds(acting: Scope, today: dt.date, days: int = EXPIRY_PROMPT_DAYS) -> list[dict[str, Any]]:
    """Rounds whose agreements with the acting hospital end within ``days`` of ``today`` (R-H6, R-C3):
    the last agreement year's end, and whether a contract-expiry review has been made since the prompt."""
    if acting.level is not Level.INSTITUTION or acting.institution_id is None:
        return []
    horizon = today + dt.timedelta(days=days)
    with use_scope(acting):
        ends = list(
            Agreement.objects.filter(institution_id=acting.institution_id)
            .values("batch_id")
            .annotate(end=Max("period_end"))
            .filter(end__gte=today, end__lte=horizon)
            .order_by("end")
        )
        batches = Batch.objects.in_bulk([row["batch_id"] for row in ends])
        reviewed = set(
            FormularyReview.objects.filter(
                batch_id__in=list(batches), trigger=FormularyTrigger.EXPIRY, as_of__gte=today - dt.timedelta(days=days)
            ).values_list("batch_id", flat=True)
        )
    return [
        {
            "batch": batches[row["batch_id"]],
            "expires_on": row["end"],
            "days_left": (row["end"] - today).days,
            "reviewed": row["batch_id"] in reviewed,
        }
        for row in ends
        if row["batch_id"] in batches
    ]
