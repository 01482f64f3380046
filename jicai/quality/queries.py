"""Reads of the quality registers: list filters, the programme a product belongs to, the distributor
from the purchase facts, suspensions in effect, the evaluation of products as of a date (for formulary
advice) and the shortage substitution choices of an item (R-J1, R-J2, R-K1)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet

from jicai.catalog.models import Product
from jicai.core.tenancy import Level, Scope, ScopeError, region_ancestors, require_scope, system_scope, use_scope
from jicai.imports.values import ValueParseError, parse_bool, parse_date
from jicai.organizations.models import Institution
from jicai.policy import quality as rules
from jicai.programme.models import Item, NonSelectedProduct, SelectedProduct
from jicai.quality.models import (
    AdverseReaction,
    ClinicalEvaluation,
    ClusterSignal,
    EvaluationScheme,
    QualityProblem,
    Suspension,
    SuspensionStatus,
)
from jicai.supply.models import IncidentStatus, SupplyIncident

# ------------------------------------------------------------------------------------------------
# Lists: filters, search and sort shared by the pages, the API and the exports


def _date(text: str) -> dt.date:
    return parse_date(text)


def _yes(text: str) -> bool:
    return parse_bool(text)


@dataclass(frozen=True)
class Filter:
    """A query parameter: ``lookup`` gets the parsed value, or ``apply`` builds the condition."""

    name: str
    lookup: str = ""
    parse: Callable[[str], Any] = str
    apply: Callable[[QuerySet[Any], Any], QuerySet[Any]] | None = None


@dataclass(frozen=True)
class Listing:
    """What a register's list accepts: filters, searched fields and sortable columns."""

    filters: tuple[Filter, ...]
    search: tuple[str, ...]
    sorts: Mapping[str, str]
    related: tuple[str, ...] = ()

    def apply(self, qs: QuerySet[Any], params: Mapping[str, Any]) -> tuple[QuerySet[Any], dict[str, str], str]:
        """The filtered, searched and sorted queryset, the filters that applied, and the sort key.

        Values that do not parse (a mistyped date) are ignored rather than failing the page.
        """
        active: dict[str, str] = {}
        for f in self.filters:
            raw = str(params.get(f.name) or "").strip()
            if not raw:
                continue
            try:
                value = f.parse(raw)
            except (ValueError, ValueParseError):
                continue
            qs = f.apply(qs, value) if f.apply else qs.filter(**{f.lookup: value})
            active[f.name] = raw
        text = str(params.get("q") or "").strip()
        if text:
            condition = Q()
            for name in self.search:
                condition |= Q(**{f"{name}__icontains": text})
            qs = qs.filter(condition)
            active["q"] = text
        sort = str(params.get("sort") or "")
        if sort.lstrip("-") in self.sorts:
            column = self.sorts[sort.lstrip("-")]
            qs = qs.order_by(("-" if sort.startswith("-") else "") + column, "-id")
        else:
            sort = ""
        if self.related:
            qs = qs.select_related(*self.related)
        return qs, active, sort


def _level(qs: QuerySet[Any], value: str) -> QuerySet[Any]:
    if value == "region":
        return qs.filter(institution__isnull=True)
    if value == "institution":
        return qs.filter(institution__isnull=False)
    return qs


def _in_effect(qs: QuerySet[Any], on: dt.date) -> QuerySet[Any]:
    return qs.filter(in_effect_q(on))


REACTIONS = Listing(
    filters=(
        Filter("institution", "institution__code"),
        Filter("department", "department__code"),
        Filter("product", "product__code"),
        Filter("lot", "lot_number"),
        Filter("outcome", "outcome"),
        Filter("serious", "is_serious", _yes),
        Filter("new", "is_new", _yes),
        Filter("selected", "is_selected", _yes),
        Filter("date_from", "report_date__gte", _date),
        Filter("date_to", "report_date__lte", _date),
    ),
    search=("report_no", "product__code", "product__generic_name", "lot_number", "reaction", "reporter"),
    sorts={
        "report_no": "report_no",
        "report_date": "report_date",
        "onset_date": "onset_date",
        "institution": "institution__code",
        "product": "product__generic_name",
        "lot": "lot_number",
        "serious": "is_serious",
        "outcome": "outcome",
    },
    related=("institution", "department", "product"),
)

SIGNALS = Listing(
    filters=(
        Filter("status", "status"),
        Filter("level", apply=_level),
        Filter("product", "product__code"),
        Filter("lot", "lot_number"),
        Filter("institution", "institution__code"),
    ),
    search=("product__code", "product__generic_name", "lot_number"),
    sorts={
        "first_date": "first_date",
        "last_date": "last_date",
        "reports": "report_count",
        "serious": "serious_count",
        "product": "product__generic_name",
        "status": "status",
    },
    related=("institution", "product"),
)

SUSPENSIONS = Listing(
    filters=(
        Filter("status", "status"),
        Filter("level", apply=_level),
        Filter("product", "product__code"),
        Filter("in_effect_on", parse=_date, apply=_in_effect),
    ),
    search=("product__code", "product__generic_name", "lot_number", "reason"),
    sorts={
        "effective_from": "effective_from",
        "until": "until",
        "product": "product__generic_name",
        "status": "status",
    },
    related=("institution", "product", "signal"),
)

PROBLEMS = Listing(
    filters=(
        Filter("status", "status"),
        Filter("institution", "institution__code"),
        Filter("product", "product__code"),
        Filter("lot", "lot_number"),
        Filter("regulator", "needs_regulator", _yes),
        Filter("date_from", "found_on__gte", _date),
        Filter("date_to", "found_on__lte", _date),
    ),
    search=("problem_no", "product__code", "product__generic_name", "lot_number", "description", "distributor"),
    sorts={
        "problem_no": "problem_no",
        "found_on": "found_on",
        "product": "product__generic_name",
        "status": "status",
        "distributor": "distributor",
    },
    related=("institution", "product"),
)


def _item_products(qs: QuerySet[Any], item_id: int) -> QuerySet[Any]:
    codes = item_product_codes(item_id)
    return qs.filter(product__code__in=codes)


EVALUATIONS = Listing(
    filters=(
        Filter("product", "product__code"),
        Filter("grade", "grade"),
        Filter("level", apply=_level),
        Filter("item", parse=int, apply=_item_products),
        Filter("generic", "product__generic_name__icontains"),
        Filter("date_from", "evaluated_on__gte", _date),
        Filter("date_to", "evaluated_on__lte", _date),
    ),
    search=("product__code", "product__generic_name", "evaluator", "evidence"),
    sorts={
        "evaluated_on": "evaluated_on",
        "total": "total",
        "grade": "grade",
        "product": "product__generic_name",
        "owner": "owner_code",
    },
    related=("institution", "product", "scheme"),
)

SCHEMES = Listing(filters=(Filter("active", "active", _yes),), search=("name",), sorts={"name": "name"})


def reactions(scope: Scope) -> QuerySet[Any]:
    return AdverseReaction.objects.for_scope(scope)


def signals(scope: Scope) -> QuerySet[Any]:
    return ClusterSignal.objects.for_scope(scope)


def suspensions(scope: Scope) -> QuerySet[Any]:
    return Suspension.objects.for_scope(scope)


def problems(scope: Scope) -> QuerySet[Any]:
    return QualityProblem.objects.for_scope(scope)


def evaluations(scope: Scope) -> QuerySet[Any]:
    return ClinicalEvaluation.objects.for_scope(scope)


def schemes(scope: Scope) -> QuerySet[Any]:
    return EvaluationScheme.objects.for_scope(scope)


def signal_reports(scope: Scope, signal: ClusterSignal) -> QuerySet[Any]:
    """The signal's reports the viewer may see (a region-wide signal spans other hospitals' reports)."""
    return reactions(scope).filter(pk__in=list(signal.report_ids)).select_related("institution", "product")


# ------------------------------------------------------------------------------------------------
# The programme a product belongs to, the distributor that delivered it


def programme_link(institution: Institution, product: Product) -> tuple[Item | None, bool]:
    """The VBP item of ``product`` in the rounds that apply to ``institution``, and whether it is a
    selected product there (the latest round first; selected before non-selected)."""
    regions = region_ancestors(institution.region_code)
    with system_scope("quality.programme_link"):
        chosen = (
            SelectedProduct.objects.filter(product=product, batch__region_code__in=regions)
            .select_related("item")
            .order_by("-batch__start_date", "batch__code")
            .first()
        )
        if chosen is not None:
            return chosen.item, True
        other = (
            NonSelectedProduct.objects.filter(product=product, batch__region_code__in=regions)
            .select_related("item")
            .order_by("-batch__start_date", "batch__code")
            .first()
        )
    return (other.item if other is not None else None), False


def distributor_for(scope: Scope, institution_code: str, product_code: str, home: Path | None = None) -> str:
    """The distributor of the institution's latest purchase line of the product (by acceptance, delivery,
    then order date) in the fact store, or "" when the facts name none."""
    from jicai.facts.query import FactQuery  # noqa: PLC0415 - DuckDB only when needed

    try:
        query = FactQuery(home or Path(settings.JICAI_HOME), scope)
    except ScopeError:
        return ""
    try:
        row = query.con.execute(
            "SELECT distributor FROM purchases WHERE institution_code = ? AND product_code = ? "
            "AND coalesce(distributor, '') <> '' "
            "ORDER BY coalesce(accepted_on, delivered_on, ordered_on) DESC NULLS LAST, line_id DESC LIMIT 1",
            [institution_code, product_code],
        ).fetchone()
    finally:
        query.con.close()
    return str(row[0]) if row else ""


# ------------------------------------------------------------------------------------------------
# Suspensions of use in effect


def in_effect_q(on: dt.date) -> Q:
    """Suspensions in effect on ``on`` (the database form of ``policy.quality.suspension_in_effect``)."""
    return (
        Q(status__in=[SuspensionStatus.APPROVED, SuspensionStatus.LIFTED], effective_from__lte=on)
        & (Q(until__isnull=True) | Q(until__gte=on))
        & (Q(lifted_on__isnull=True) | Q(lifted_on__gt=on))
    )


def active_suspensions(
    scope: Scope, on: dt.date, *, institution: Institution | None = None, products: Iterable[str] | None = None
) -> list[Suspension]:
    """Suspensions in effect on ``on`` that bind ``institution`` (its own and its regions'), or — without
    an institution — every one the scope sees."""
    qs = suspensions(scope).filter(in_effect_q(on)).select_related("product", "institution")
    if institution is not None:
        qs = qs.filter(
            Q(institution=institution)
            | Q(institution__isnull=True, region_code__in=region_ancestors(institution.region_code))
        )
    if products is not None:
        qs = qs.filter(product__code__in=list(products))
    return list(qs)


# ------------------------------------------------------------------------------------------------
# Evaluation of products as of a date (formulary advice, substitution choices)


@dataclass(frozen=True)
class EvaluationResult:
    """The evaluation that counts for one product on a date: the institution's own latest, else the
    most specific region's latest."""

    product_code: str
    evaluation_id: int
    total: Decimal
    grade: str
    scores: dict[str, Decimal]
    weights: dict[str, Decimal]
    evaluated_on: dt.date
    evaluator: str
    owner_code: str
    regional: bool
    evidence: str = ""


def _institution_for(scope: Scope, institution: Institution | str | None) -> Institution | None:
    if isinstance(institution, Institution):
        return institution
    code = institution or (scope.institution_code if scope.level in (Level.INSTITUTION, Level.DEPARTMENT) else "")
    if not code:
        return None
    found: Institution | None = Institution.objects.for_scope(scope).filter(code=code).first()
    return found


def evaluation_for(
    products: Iterable[str | Product],
    as_of: dt.date,
    *,
    scope: Scope | None = None,
    institution: Institution | str | None = None,
) -> dict[str, EvaluationResult]:
    """The evaluation that counts for each product on ``as_of``, by product code (R-K1).

    ``institution`` (default: the scope's own) chooses whose evaluations count: that institution's,
    then its region's and the regions above (the most specific first); without one, the regions the
    scope covers. Only evaluations dated on or before ``as_of`` and still valid then count; the latest
    wins. Products never evaluated are absent. One query, read in ``scope`` (default: the active one).
    """
    scope = scope or require_scope()
    codes = sorted({p.code if isinstance(p, Product) else str(p) for p in products})
    if not codes:
        return {}
    with use_scope(scope):
        inst = _institution_for(scope, institution)
        if inst is not None:
            regions = region_ancestors(inst.region_code)
            owners = Q(institution=inst) | Q(institution__isnull=True, region_code__in=regions)
        elif scope.is_system:
            regions = []
            owners = Q(institution__isnull=True)
        else:
            regions = scope.covering_regions()
            owners = Q(institution__isnull=True, region_code__in=regions)
        rows = list(
            evaluations(scope)
            .filter(owners, product__code__in=codes, evaluated_on__lte=as_of)
            .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=as_of))
            .select_related("product")
        )

    def rank(e: ClinicalEvaluation) -> tuple[int, int, dt.date, int]:
        specific = 0 if e.institution_id is not None else 1
        region_rank = regions.index(e.region_code) if e.region_code in regions else len(regions)
        return (specific, region_rank, e.evaluated_on, e.pk)

    best: dict[str, ClinicalEvaluation] = {}
    for e in rows:
        code = e.product.code
        current = best.get(code)
        if current is None or _better(rank(e), rank(current)):
            best[code] = e
    return {code: _result(e) for code, e in best.items()}


def _better(a: tuple[int, int, dt.date, int], b: tuple[int, int, dt.date, int]) -> bool:
    """Own before regional, more specific region first, then later date, then later record."""
    if a[:2] != b[:2]:
        return a[:2] < b[:2]
    return a[2:] > b[2:]


def _result(e: ClinicalEvaluation) -> EvaluationResult:
    return EvaluationResult(
        product_code=e.product.code,
        evaluation_id=e.pk,
        total=e.total,
        grade=e.grade,
        scores=e.scores(),
        weights={k: Decimal(v) for k, v in (e.weights or {}).items()},
        evaluated_on=e.evaluated_on,
        evaluator=e.evaluator,
        owner_code=e.owner_code,
        regional=e.institution_id is None,
        evidence=e.evidence,
    )


def grade_for(products: Iterable[str | Product], as_of: dt.date, **kw: Any) -> dict[str, str]:
    """Just the grades (A–D) of ``evaluation_for``: what the formulary review shows beside its advice."""
    return {code: r.grade for code, r in evaluation_for(products, as_of, **kw).items()}


# ------------------------------------------------------------------------------------------------
# Shortage substitution choices of an item (R-K1 → R-I2)


def item_product_codes(item_id: int) -> list[str]:
    """Codes of the item's selected and non-selected products (in the active scope)."""
    selected = SelectedProduct.objects.filter(item_id=item_id).values_list("product__code", flat=True)
    others = NonSelectedProduct.objects.filter(item_id=item_id).values_list("product__code", flat=True)
    return sorted({*selected, *others})


def shortage_products(scope: Scope, item: Item, as_of: dt.date, institution: Institution | None = None) -> set[str]:
    """Codes of the item's selected products short or interrupted on ``as_of`` (R-I1, R-I2): supply
    incidents of ``jicai.supply`` not rejected, started by then and not yet ended — the institution's own
    and those of its regions, or (without an institution) the region-wide ones. An incident naming no
    selected product stands for every selected product of the item."""
    with use_scope(scope):
        qs = SupplyIncident.objects.filter(item=item, start_on__lte=as_of).exclude(status=IncidentStatus.REJECTED)
        qs = qs.filter(Q(end_on__isnull=True) | Q(end_on__gte=as_of))
        if institution is not None:
            qs = qs.filter(
                Q(institution=institution)
                | Q(institution__isnull=True, region_code__in=region_ancestors(institution.region_code))
            )
        else:
            qs = qs.filter(institution__isnull=True)
        named = list(qs.values_list("selected__product__code", flat=True))
        if any(code is None for code in named):
            named += list(SelectedProduct.objects.filter(item=item).values_list("product__code", flat=True))
    return {code for code in named if code}


@dataclass(frozen=True)
class ChoiceRow:
    product: Product
    kind: rules.CandidateKind
    rank: int | None
    evaluation: EvaluationResult | None
    unavailable: str
    lot_suspensions: tuple[str, ...] = ()


@dataclass(frozen=True)
class SubstitutionChoices:
    item: Item
    as_of: dt.date
    institution: Institution | None
    affected: tuple[ChoiceRow, ...]
    rows: tuple[ChoiceRow, ...]
    suspensions: tuple[Suspension, ...] = field(default_factory=tuple)

    @property
    def has_shortage(self) -> bool:
        return any(r.unavailable for r in self.affected)


UNAVAILABLE_SHORTAGE = "shortage"
UNAVAILABLE_SUSPENDED = "suspended"


def substitution_choices(
    scope: Scope, item: Item, as_of: dt.date, *, institution: Institution | str | None = None
) -> SubstitutionChoices:
    """The item's products ranked as substitutes when a selected product is short or suspended (R-K1).

    Selected products in shortage or whose use is suspended are the ``affected`` ones; the others,
    with the item's non-selected products and substitutes, are ranked by ``policy.quality.rank_substitutes``
    on the evaluation that counts for the institution (its own, then its regions').
    """
    with use_scope(scope):
        inst = _institution_for(scope, institution)
        selected = list(SelectedProduct.objects.filter(item=item).select_related("product"))
        others = list(NonSelectedProduct.objects.filter(item=item).select_related("product"))
        products: dict[str, tuple[Product, rules.CandidateKind]] = {}
        for s in selected:
            products[s.product.code] = (s.product, rules.CandidateKind.SELECTED)
        for n in others:
            kind = rules.CandidateKind.SAME_GENERIC if n.kind == "same_generic" else rules.CandidateKind.SUBSTITUTE
            products.setdefault(n.product.code, (n.product, kind))
        short = shortage_products(scope, item, as_of, inst)
        in_effect = active_suspensions(scope, as_of, institution=inst, products=products)
    suspended = {s.product.code for s in in_effect if not s.lot_number}
    lots: dict[str, list[str]] = {}
    for s in in_effect:
        if s.lot_number:
            lots.setdefault(s.product.code, []).append(s.lot_number)
    results = evaluation_for(products, as_of, scope=scope, institution=inst)

    def why(code: str) -> str:
        if code in short:
            return UNAVAILABLE_SHORTAGE
        if code in suspended:
            return UNAVAILABLE_SUSPENDED
        return ""

    candidates = [
        rules.Candidate(code, kind, results[code].total if code in results else None, why(code))
        for code, (_, kind) in products.items()
    ]
    rows = []
    for ranked in rules.rank_substitutes(candidates):
        code = ranked.candidate.product_code
        rows.append(
            ChoiceRow(
                product=products[code][0],
                kind=ranked.candidate.kind,
                rank=ranked.rank,
                evaluation=results.get(code),
                unavailable=ranked.candidate.unavailable,
                lot_suspensions=tuple(sorted(lots.get(code, []))),
            )
        )
    affected = tuple(r for r in rows if r.kind is rules.CandidateKind.SELECTED and r.unavailable)
    return SubstitutionChoices(
        item=item,
        as_of=as_of,
        institution=inst,
        affected=affected,
        rows=tuple(rows),
        suspensions=tuple(in_effect),
    )
