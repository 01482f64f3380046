"""A reproducible synthetic province for the demo: master data and three years of activity as CSV files.

``generate(seed, as_of, institutions)`` returns the files a bureau and its hospitals would bring —
institutions, departments, companies, products, batches, items, selected and non-selected products,
agreements, then purchases, payments and dispensing by calendar year — with Chinese headers, for the
real importers to load (``jicai.demo.loader``). Nothing reads the clock or the disk: the same seed and
as-of date give byte-identical files.

How the activity is made, pair by pair (institution × item, each with its own random stream):

* prescriptions a month = the item's use × the institution's size × winter seasonality (a February
  dip for the Spring Festival) × a slow trend; chronic items refill steadily, acute ones vary more;
* each prescription picks selected, same-generic non-selected or substitute by the institution's
  mix, then a product, a department that prescribes the item, a doctor, a patient and an ICD-10
  diagnosis; it becomes one dispensing line;
* the pharmacy buys what it dispensed in whole packs, keeping its stock (one or two order lines a
  product a month, half a month's opening stock of the winner when an agreement year starts), and
  pays each line by the end of the following month;
* agreements are the prior twelve months' purchases of the generic (selected and same generic, in
  item units) as the volume base × the share the round's policy profile gives its number of winners.

Planted scenarios (``hainan.py`` names the roles; the first eight institutions carry all of them):

* ``LAGGING``: over-reported their prior-year use (报量偏高), and their prescribers drift to
  substitutes: behind schedule or at risk on most items;
* ``DEMO``: the demo logins' hospital lags the same way on rosuvastatin and escitalopram only;
* ``CAP_BREAKER``: a private hospital buys more non-selected than selected (over the cap);
* ``LATE_HEAVY`` / ``LATE_LIGHT``: payments months / weeks after the deadline, some recent lines
  never paid (overdue, critical / warning);
* ``SUPPLY_INTERRUPTION``: the selected clopidogrel is not delivered to five Haikou institutions for
  two months; they dispense its last stock and buy the originator and other makers instead.

Sizes: 60 institutions, 39 items in four rounds, about 80,000 purchase lines, as many payments and
220,000 dispensing lines over 36 months (``RX_SCALE`` sets them).
"""

from __future__ import annotations

import bisect
import calendar
import csv
import datetime as dt
import hashlib
import io
import itertools
import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import TypeVar

from jicai.catalog.packs import parse_pack
from jicai.demo import hainan
from jicai.demo.drugs import BATCHES, DISTRIBUTORS, DRUGS, Batch, Drug, Pack, Variant
from jicai.policy.params import winner_table
from jicai.policy.profile import ProfileLibrary
from jicai.policy.volumes import share_and_term

DEFAULT_SEED = 2026
DEMO_AS_OF = dt.date(2026, 11, 30)
"""The date the demo's data run to and its cycle is run for: agreement years are in progress."""
DATA_MONTHS = 36
DEFAULT_INSTITUTIONS = len(hainan.ROSTER)
EARLIEST_AS_OF = dt.date(2025, 1, 1)
LATEST_AS_OF = dt.date(2030, 12, 31)

RX_SCALE = 0.22
"""Prescriptions per unit of an item's ``use`` and an institution's ``size`` (sets the line counts)."""
MIN_RX = 3.5
"""Fewest prescriptions a month of an item an institution uses at all (keeps small pairs steady)."""
DEMO_LAG_ITEMS = ("RSV10", "ESC10")
OVER_REPORTED = Decimal("1.3")
"""How much a lagging institution over-reported its prior-year use (报量偏高): its volume base."""
INTERRUPTED_ITEM = ("GJ-4+7-HN", "CLP75")
INTERRUPTED_SITES = (0, 1, 7, 8, 10)
"""Roster positions of the institutions the interruption hits (Haikou, one distributor)."""
FEN = Decimal("0.01")
UNIT = Decimal("0.0001")

SELECTED, SAME_GENERIC, SUBSTITUTE = "selected", "same_generic", "substitute"
KIND_LABELS = {SAME_GENERIC: "同通用名", SUBSTITUTE: "可替代"}
KIND_CHOICES = {"public": "公立", "military": "军队", "private": "民营", "primary": "基层"}
LEVEL_CHOICES = {3: "三级", 2: "二级", 1: "一级"}
YES_NO = {True: "是", False: "否"}

HEADERS: dict[str, tuple[str, ...]] = {
    "institutions": ("医疗机构编码", "医疗机构名称", "行政区划代码", "机构类型", "机构等级"),
    "departments": ("医疗机构编码", "科室编码", "科室名称"),
    "companies": ("企业名称", "企业类型"),
    "products": (
        "药品编码",
        "通用名",
        "剂型",
        "规格",
        "包装",
        "生产企业",
        "是否通过一致性评价",
        "是否原研",
        "是否参比制剂",
        "是否基本药物",
        "抗菌药物级别",
        "挂网价格",
    ),
    "batches": ("批次编码", "批次名称", "批次级别", "政策配置", "行政区划代码", "执行日期"),
    "items": ("批次编码", "品种编码", "通用名", "剂型组", "计量单位", "中选企业数"),
    "selected": ("批次编码", "药品编码", "品种编码", "中选价格", "中选企业", "换算系数"),
    "non_selected": ("批次编码", "药品编码", "品种编码", "类别", "换算系数"),
    "agreements": (
        "批次编码",
        "品种编码",
        "医疗机构编码",
        "协议年度",
        "协议开始日期",
        "协议结束日期",
        "约定采购量",
        "采购量基数",
        "约定采购比例",
        "指定中选药品编码",
    ),
    "purchases": (
        "订单明细编号",
        "医疗机构编码",
        "药品编码",
        "下单日期",
        "配送日期",
        "入库验收日期",
        "采购数量",
        "采购单价",
        "采购金额",
        "配送企业",
    ),
    "payments": ("回款编号", "订单明细编号", "医疗机构编码", "回款日期", "回款金额"),
    "dispensing": (
        "处方明细编号",
        "医疗机构编码",
        "科室编码",
        "发药日期",
        "药品编码",
        "数量",
        "金额",
        "诊断编码",
        "医师编码",
        "患者标识",
    ),
}
MASTER_DATASETS = (
    "institutions",
    "departments",
    "companies",
    "products",
    "batches",
    "items",
    "selected",
    "non_selected",
    "agreements",
)
FACT_DATASETS = ("purchases", "payments", "dispensing")
T = TypeVar("T")


# --------------------------------------------------------------------------------------------------
# Calendar


def _midx(day: dt.date) -> int:
    return day.year * 12 + day.month - 1


def _first(midx: int) -> dt.date:
    return dt.date(midx // 12, midx % 12 + 1, 1)


@cache
def _last(midx: int) -> dt.date:
    year, month = midx // 12, midx % 12 + 1
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def agreement_years(batch: Batch, as_of: dt.date) -> list[tuple[int, dt.date, dt.date]]:
    """(year, period_start, period_end) of the batch's agreement years started by ``as_of``."""
    years = []
    n = 1
    while (start := _add_years(batch.start, n - 1)) <= as_of:
        years.append((n, start, _add_years(batch.start, n) - dt.timedelta(days=1)))
        n += 1
    return years


# --------------------------------------------------------------------------------------------------
# The supply interruption, as a later supply-incident register will load it


@dataclass(frozen=True)
class SupplyInterruption:
    """A selected product not delivered to some institutions for a period (R-I2)."""

    batch_code: str
    item_code: str
    product_code: str
    start: dt.date
    end: dt.date
    institution_codes: tuple[str, ...]
    reason: str = "中选企业配送中断（演示数据）"

    def rows(self) -> list[dict[str, object]]:
        """One row per institution, in the columns of ``jicai.monitoring.hooks.INTERRUPTION_SCHEMA``."""
        return [
            {
                "batch_code": self.batch_code,
                "item_code": self.item_code,
                "institution_code": code,
                "start_on": self.start,
                "end_on": self.end,
            }
            for code in self.institution_codes
        ]

    def covers(self, institution: str, day: dt.date) -> bool:
        return institution in self.institution_codes and self.start <= day <= self.end


def supply_interruption(as_of: dt.date = DEMO_AS_OF, institutions: int = DEFAULT_INSTITUTIONS) -> SupplyInterruption:
    """The planted interruption: the fourth and third months before ``as_of``'s month."""
    month = _midx(as_of)
    batch, item = INTERRUPTED_ITEM
    drug = next(d for d in DRUGS if (d.batch, d.code) == INTERRUPTED_ITEM)
    return SupplyInterruption(
        batch_code=batch,
        item_code=item,
        product_code=_catalogue()[(batch, item)].selected[0].code,
        start=_first(month - 4),
        end=_last(month - 3),
        institution_codes=tuple(hainan.INSTITUTION_CODES[i] for i in INTERRUPTED_SITES if i < institutions),
        reason=f"{drug.selected[0].company}配送中断（演示数据）",
    )


# --------------------------------------------------------------------------------------------------
# Products


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per product
class Product:
    code: str
    generic: str
    form: str
    strength: str
    pack: str
    pack_size: int
    company: str
    price: Decimal  # per pack: winning price for selected products, listed price otherwise
    unit_price: Decimal  # per minimum unit, 4 places
    kind: str
    conversion: Decimal
    daily: int
    ce: bool
    originator: bool
    essential: bool
    antimicrobial: str


@dataclass(frozen=True)
class Item:
    drug: Drug
    batch: Batch
    selected: tuple[Product, ...]
    same: tuple[Product, ...]
    substitutes: tuple[Product, ...]
    ratio: Decimal

    @property
    def products(self) -> tuple[Product, ...]:
        return self.selected + self.same + self.substitutes


_FORM_CODES = {"片剂": "A001", "胶囊剂": "B001", "散剂": "C001", "颗粒剂": "C002", "注射剂": "D001"}
_PACK_CODES = {
    n: i for i, n in enumerate((7, 14, 28, 30, 10, 12, 20, 24, 6, 5, 4, 3, 2, 1, 36, 50, 60, 100, 120, 21, 15))
}


def _form_code(generic: str, form: str) -> str:
    code = _FORM_CODES[form]
    if "缓释" in generic:
        return code[0] + "010"
    if "肠溶" in generic:
        return code[0] + "006"
    if generic.startswith("注射用"):
        return code[0] + "002"
    return code


def _strength_value(text: str) -> float:
    number = text.rsplit(":", maxsplit=1)[-1].rstrip("mgμ")
    scale = 1000.0 if text.endswith("g") and not text.endswith(("mg", "μg")) else 1.0
    return float(number) * scale


@cache
def _company_codes() -> dict[str, int]:
    """Five-digit maker segment of the NHSA code: Pfizer's real one, the others numbered in order."""
    names: list[str] = []
    for drug in DRUGS:
        packs = [*drug.selected, *drug.others, *(v.product for v in (*drug.other_strengths, *drug.substitutes))]
        names.extend(p.company for p in packs if p.company not in names)
    codes = {name: 10001 + i for i, name in enumerate(names)}
    codes["辉瑞制药有限公司"] = 1187
    return codes


def _nhsa_code(pack: Pack, *, atc: str, generic_code: str, generic: str, form: str, strength: str) -> str:
    """X + class + generic + form + strength/pack + maker: the layout of the 23-character NHSA code."""
    if pack.code:
        return pack.code
    strengths = sorted(
        {
            s
            for d in DRUGS
            for g, s in ((d.generic_code, d.strength), *((v.generic_code, v.strength) for v in d.other_strengths))
            if g == generic_code
        }
        | {strength},
        key=_strength_value,
    )
    size = parse_pack(pack.pack).pack_size
    spec = strengths.index(strength) + 1
    maker = _company_codes()[pack.company]
    return f"X{atc}{generic_code}{_form_code(generic, form)}{spec:02d}{_PACK_CODES[size]:02d}{maker:05d}"


def _product(drug: Drug, pack: Pack, kind: str, variant: Variant | None = None) -> Product:
    generic = variant.generic if variant else drug.generic
    strength = variant.strength if variant else drug.strength
    form = variant.form if variant else drug.form
    atc = variant.atc if variant else drug.atc
    generic_code = variant.generic_code if variant else drug.generic_code
    parsed = parse_pack(pack.pack)
    price = Decimal(pack.price)
    return Product(
        code=_nhsa_code(pack, atc=atc, generic_code=generic_code, generic=generic, form=form, strength=strength),
        generic=generic,
        form=form,
        strength=strength,
        pack=pack.pack,
        pack_size=parsed.pack_size,
        company=pack.company,
        price=price,
        unit_price=(price / parsed.pack_size).quantize(UNIT, rounding=ROUND_HALF_UP),
        kind=kind,
        conversion=Decimal(variant.conversion) if variant else Decimal(1),
        daily=variant.daily if variant else drug.daily,
        ce=pack.ce,
        originator=pack.originator,
        essential=drug.essential and variant is None,
        antimicrobial=drug.antimicrobial,
    )


@cache
def _catalogue() -> dict[tuple[str, str], Item]:
    """Every item with its products; the agreed ratio from the round's profile and winners (R-C1)."""
    library = ProfileLibrary()
    batches = {b.code: b for b in BATCHES}
    items: dict[tuple[str, str], Item] = {}
    codes: set[str] = set()
    for drug in DRUGS:
        batch = batches[drug.batch]
        share, _term = share_and_term(drug.winners, winner_table(library.resolve(batch.profile, batch.start)))
        if share is None:
            raise ValueError(f"no agreed share for {drug.code}")
        item = Item(
            drug=drug,
            batch=batch,
            selected=tuple(_product(drug, p, SELECTED) for p in drug.selected),
            same=tuple(_product(drug, p, SAME_GENERIC) for p in drug.others)
            + tuple(_product(drug, v.product, SAME_GENERIC, v) for v in drug.other_strengths),
            substitutes=tuple(_product(drug, v.product, SUBSTITUTE, v) for v in drug.substitutes),
            ratio=share,
        )
        for product in item.products:
            if product.code in codes or len(product.code) != 23:
                raise ValueError(f"product code {product.code} is not unique or not 23 characters")
            codes.add(product.code)
        items[(drug.batch, drug.code)] = item
    return items


def items() -> list[Item]:
    return list(_catalogue().values())


# --------------------------------------------------------------------------------------------------
# The province


@dataclass(frozen=True)
class Scenarios:
    """Which institutions and items carry the planted situations in a generated province."""

    demo_hospital: str
    demo_lag_items: tuple[str, ...]
    lagging: tuple[str, ...]
    cap_breaker: str
    late_heavy: str
    late_light: str
    interruption: SupplyInterruption


@dataclass(frozen=True)
class DemoFile:
    dataset: str
    filename: str
    data: bytes
    rows: int


@dataclass
class Province:
    seed: int
    as_of: dt.date
    institutions: tuple[str, ...]
    scenarios: Scenarios
    files: list[DemoFile] = field(default_factory=list)

    def rows(self, dataset: str) -> int:
        return sum(f.rows for f in self.files if f.dataset == dataset)


@dataclass
class _Site:
    serial: int
    code: str
    site: hainan.Site
    size: float
    departments: tuple[str, ...]
    prescribers: dict[str, int]
    items: list[Item]
    patients: int = 0


def _choose_departments(rng: random.Random, site: hainan.Site) -> tuple[str, ...]:
    if site.level == 3:
        chosen = [c for c in hainan.TERTIARY_CORE if site.role == hainan.DEMO or rng.random() < 0.9]
    elif site.level == 2:
        extra = rng.sample(hainan.SECONDARY_EXTRA, rng.randint(2, 5))
        chosen = [*hainan.SECONDARY_CORE, *extra]
    else:
        chosen = [*hainan.PRIMARY_CORE, *rng.sample(hainan.PRIMARY_EXTRA, rng.randint(1, 3))]
    if site.level >= 2 and "XNK" not in chosen:
        chosen.insert(0, "XNK")
    order = list(hainan.DEPARTMENTS)
    return tuple(sorted(set(chosen), key=order.index))


def _uses(rng: random.Random, site: hainan.Site, serial: int, item: Item) -> bool:
    drug = item.drug
    if (item.batch.code, drug.code) == INTERRUPTED_ITEM and serial - 1 in INTERRUPTED_SITES:
        return True
    if site.role == hainan.DEMO:
        return True
    if site.level < drug.min_level:
        return False
    if site.level == 3:
        return True
    popular = drug.use >= 20
    if site.level == 2:
        p = 0.95 if popular else 0.8
        return rng.random() < (p * 0.8 if site.kind == "private" else p)
    return rng.random() < (0.9 if popular else 0.35)


def _sites(seed: int, count: int) -> list[_Site]:
    sites = []
    for serial, site in enumerate(hainan.ROSTER[:count], start=1):
        rng = random.Random(f"{seed}|site|{serial}")  # noqa: S311 - synthetic data, not secrets
        departments = _choose_departments(rng, site)
        per_department = {3: (6, 12), 2: (3, 6), 1: (1, 3)}[site.level]
        sites.append(
            _Site(
                serial=serial,
                code=site.code(serial),
                site=site,
                size=site.size * rng.lognormvariate(0, 0.2),
                departments=departments,
                prescribers={d: rng.randint(*per_department) for d in departments},
                items=[i for i in items() if _uses(rng, site, serial, i)],
            )
        )
    return sites


def scenarios(as_of: dt.date = DEMO_AS_OF, institutions: int = DEFAULT_INSTITUTIONS) -> Scenarios:
    """The planted situations of a province of ``institutions`` (the first eight hold them all)."""
    codes = hainan.INSTITUTION_CODES[:institutions]
    roles = {c: s.role for c, s in zip(codes, hainan.ROSTER, strict=False)}

    def with_role(role: str) -> tuple[str, ...]:
        return tuple(c for c, r in roles.items() if r == role)

    return Scenarios(
        demo_hospital=with_role(hainan.DEMO)[0],
        demo_lag_items=DEMO_LAG_ITEMS,
        lagging=with_role(hainan.LAGGING),
        cap_breaker=with_role(hainan.CAP_BREAKER)[0],
        late_heavy=with_role(hainan.LATE_HEAVY)[0],
        late_light=with_role(hainan.LATE_LIGHT)[0],
        interruption=supply_interruption(as_of, institutions),
    )


def departments(seed: int = DEFAULT_SEED, institutions: int = DEFAULT_INSTITUTIONS) -> dict[str, tuple[str, ...]]:
    """Each institution's department codes in the province of ``seed`` (without its activity)."""
    return {s.code: s.departments for s in _sites(seed, institutions)}


SUPPLY_INTERRUPTION = supply_interruption()
"""The demo's supply interruption (default as-of date and size), for a supply-incident register."""


# --------------------------------------------------------------------------------------------------
# Activity


def _stochastic_round(rng: random.Random, x: float) -> int:
    whole = math.floor(x)
    return whole + (1 if rng.random() < x - whole else 0)


def _season(drug: Drug, midx: int, start: int) -> float:
    month = midx % 12  # 0 = January
    factor = 1 + drug.seasonal * math.cos(2 * math.pi * month / 12)
    if month == 1:
        factor *= 0.9  # Spring Festival
    return factor * (1 + 0.03 * (midx - start) / 12)


def _cumulative(weights: Iterable[float]) -> list[float]:
    return list(itertools.accumulate(weights))


def _pick(random_: Callable[[], float], population: Sequence[T], cumulative: list[float]) -> T:
    """A weighted choice from precomputed cumulative weights (``random.choices`` without its set-up)."""
    index = bisect.bisect_right(cumulative, random_() * cumulative[-1])
    return population[min(index, len(population) - 1)]


@cache
def _days(midx: int) -> tuple[str, ...]:
    """The ISO dates of a month."""
    first = _first(midx)
    return tuple((first + dt.timedelta(days=d)).isoformat() for d in range(_last(midx).day))


def _patient_key(seed: int, institution: str, number: int) -> str:
    """A pseudonymised patient key, as hospitals send them (a keyed hash, never a name or ID)."""
    return hashlib.blake2b(f"{seed}|{institution}|{number}".encode(), digest_size=8).hexdigest()


@dataclass
class _Mix:
    selected: float  # share of the generic's prescriptions going to the selected product
    substitute: float  # share of all prescriptions going to substitutes


@dataclass
class _Out:
    """Rows per dataset and calendar year, and each pair's monthly generic purchases in item units."""

    rows: dict[tuple[str, int], list[tuple[str, ...]]] = field(default_factory=lambda: defaultdict(list))
    generic: dict[tuple[str, str, str], dict[int, Decimal]] = field(default_factory=dict)
    line_seq: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))
    record_seq: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))


@dataclass(frozen=True)
class _Window:
    first_data: int  # month index of the first month written
    last: int  # month index of as_of's month
    sim_start: int  # first month simulated (the agreements' volume bases need a year before)
    as_of: dt.date


def _lags(site: _Site, item: Item) -> bool:
    role = site.site.role
    return role == hainan.LAGGING or (role == hainan.DEMO and item.drug.code in DEMO_LAG_ITEMS)


class _Pair:
    """One institution × item: its prescriptions, stock, purchases and payments month by month."""

    def __init__(self, seed: int, site: _Site, item: Item, window: _Window, scen: Scenarios) -> None:
        self.seed, self.site, self.item, self.w, self.scen = seed, site, item, window, scen
        drug = item.drug
        self.rng = random.Random(f"{seed}|{site.code}|{item.batch.code}|{drug.code}")  # noqa: S311 - synthetic data
        rng = self.rng
        self.lam = max(MIN_RX, drug.use * site.size * RX_SCALE * rng.lognormvariate(0, 0.25))
        self.lagging = _lags(site, item)
        self.cap_breaker = site.site.role == hainan.CAP_BREAKER
        self.normal_selected = rng.uniform(0.92, 0.97)
        self.normal_substitute = rng.uniform(0.02, 0.06) if item.substitutes else 0.0
        selected = item.selected
        # Two winners split the province by supply region: Haikou buys the first, the rest the second.
        self.winner = selected[0] if len(selected) == 1 or site.code[1:5] == "4601" else selected[1]
        level = site.site.level
        weights = [(0.5 if level == 3 else 0.3) if p.originator else 1.0 for p in item.same]
        weights = [w * (0.3 if p.conversion != 1 else 1.0) for w, p in zip(weights, item.same, strict=True)]
        self.same_weights = _cumulative(weights)
        own = [d for d in drug.departments if d in site.departments]
        fallback = [d for d in hainan.GENERAL if d in site.departments] or [site.departments[0]]
        self.departments = own or fallback[:1]
        self.department_weights = _cumulative(0.55**i for i in range(len(self.departments)))
        self.diagnosis_weights = _cumulative(0.6**i for i in range(len(drug.diagnoses)))
        self.day_weights = _cumulative(0.6**i for i in range(len(drug.days)))
        self.amounts: dict[tuple[Product, int], str] = {}
        pool = max(4, round(self.lam * (1.1 if drug.chronic else 6)))
        self.patients = [
            _patient_key(seed, site.code, (_specialty_offset(drug.departments[0]) + i) % max(site.patients, pool))
            for i in range(pool)
        ]
        self.stock: dict[Product, int] = defaultdict(int)
        self.year_starts = {_midx(start) for _n, start, _end in agreement_years(item.batch, window.as_of)}
        self.interrupted = (item.batch.code, drug.code) == (
            scen.interruption.batch_code,
            scen.interruption.item_code,
        ) and site.code in scen.interruption.institution_codes

    def mix(self, midx: int) -> _Mix:
        day = _first(midx)
        if self.interrupted and self.scen.interruption.covers(self.site.code, day):
            return _Mix(0.04, min(0.3, 3 * self.normal_substitute))
        if day < self.item.batch.start and not self.item.batch.renewal:
            return _Mix(0.3, self.normal_substitute * 1.5)
        if self.cap_breaker:
            return _Mix(0.4, self.normal_substitute * 2)
        if self.lagging:
            substitute = 0.05 + 0.4 * self.drift(midx) if self.item.substitutes else 0.0
            return _Mix(0.72, substitute)
        return _Mix(self.normal_selected, self.normal_substitute)

    def drift(self, midx: int) -> float:
        """0 at the first simulated month, 1 at the last: how far a laggard has slipped."""
        return (midx - self.w.sim_start) / max(1, self.w.last - self.w.sim_start)

    def month(self, midx: int, out: _Out) -> None:
        rng, drug = self.rng, self.item.drug
        lam = self.lam * _season(drug, midx, self.w.sim_start)
        if self.lagging:
            lam *= 1 - 0.2 * self.drift(midx)  # patients and prescriptions drift away as well
        spread = 0.07 if drug.chronic else 0.12
        count = _stochastic_round(rng, max(0.0, lam * (1 + rng.gauss(0, spread))))
        mix = self.mix(midx)
        written = midx >= self.w.first_data
        days = _days(midx)
        if midx == self.w.last:
            days = days[: self.w.as_of.day]
        dispensed: dict[Product, int] = defaultdict(int)
        random_ = rng.random
        for _ in range(count):
            if random_() < mix.substitute:
                product = self.item.substitutes[int(random_() * len(self.item.substitutes))]
            elif random_() < mix.selected:
                product = self.winner
            else:
                product = _pick(random_, self.item.same, self.same_weights)
            qty = _pick(random_, drug.days, self.day_weights) * product.daily
            dispensed[product] += qty
            if written:
                self._dispense(midx, days[int(random_() * len(days))], product, qty, out)
        for product in sorted(dispensed, key=lambda p: p.code):
            self._buy(midx, product, dispensed[product], out, written=written, last_day=len(days))

    def _dispense(self, midx: int, day: str, product: Product, qty: int, out: _Out) -> None:
        random_, site = self.rng.random, self.site
        department = _pick(random_, self.departments, self.department_weights)
        doctor = 1 + int(random_() * site.prescribers[department])
        key = (site.code, midx)
        out.record_seq[key] += 1
        amount = self.amounts.get((product, qty))
        if amount is None:
            amount = self.amounts[(product, qty)] = str(
                (product.unit_price * qty).quantize(FEN, rounding=ROUND_HALF_UP)
            )
        out.rows[("dispensing", midx // 12)].append(
            (
                f"CF{site.code[1:]}{day[:4]}{day[5:7]}{out.record_seq[key]:05d}",
                site.code,
                department,
                day,
                product.code,
                str(qty),
                amount,
                _pick(random_, self.item.drug.diagnoses, self.diagnosis_weights),
                f"{department}{doctor:02d}",
                self.patients[int(random_() * len(self.patients))],
            )
        )

    def _buy(self, midx: int, product: Product, dispensed: int, out: _Out, *, written: bool, last_day: int) -> None:
        """Restock what was dispensed in whole packs; nothing arrives of an interrupted product."""
        rng, site = self.rng, self.site
        stock = self.stock[product] - dispensed
        day = _first(midx)
        blocked = self.interrupted and product.kind == SELECTED and self.scen.interruption.covers(self.site.code, day)
        opening = dispensed // 2 if product.kind == SELECTED and midx in self.year_starts and not self.lagging else 0
        stock -= opening  # opening stock for the new agreement year
        packs = 0 if blocked or stock >= 0 else math.ceil(-stock / product.pack_size)
        stock += opening
        self.stock[product] = stock + packs * product.pack_size
        if not packs:
            return
        if product.kind != SUBSTITUTE:
            key = (site.code, self.item.batch.code, self.item.drug.code)
            months = out.generic.setdefault(key, defaultdict(Decimal))
            months[midx] += packs * product.pack_size * product.conversion
        if not written:
            return
        orders = [packs] if packs < 12 or rng.random() < 0.4 else [packs // 2, packs - packs // 2]
        for n, order in enumerate(orders):
            low, high = (1, min(12, last_day)) if n == 0 else (min(13, last_day), last_day)
            accepted = day.replace(day=low + int(rng.random() * (high - low + 1)))
            key2 = (site.code, midx)
            out.line_seq[key2] += 1
            line_id = f"DD{site.code[1:]}{accepted:%Y%m}{out.line_seq[key2]:04d}"
            amount = product.price * order
            distributor = DISTRIBUTORS[0] if site.code[1:5] == "4601" else DISTRIBUTORS[1 + site.serial % 4]
            delivered = accepted - dt.timedelta(days=int(rng.random() * 2))
            ordered = delivered - dt.timedelta(days=1 + int(rng.random() * 4))
            out.rows[("purchases", accepted.year)].append(
                (
                    line_id,
                    site.code,
                    product.code,
                    ordered.isoformat(),
                    delivered.isoformat(),
                    accepted.isoformat(),
                    str(order * product.pack_size),
                    str(product.unit_price),
                    str(amount),
                    distributor,
                )
            )
            self._pay(line_id, accepted, amount, out)

    def _pay(self, line_id: str, accepted: dt.date, amount: Decimal, out: _Out) -> None:
        """Pay by the end of the next month (R-E1), or late and partly never for the late payers."""
        rng, as_of, role = self.rng, self.w.as_of, self.site.site.role
        due = _last(_midx(accepted) + 1)
        paid = accepted + dt.timedelta(days=10 + int(rng.random() * 31))
        paid = min(paid, due)
        if role == hainan.LATE_HEAVY:
            if (as_of - accepted).days < 240 and rng.random() < 0.35:
                return
            if rng.random() < 0.85:
                paid = due + dt.timedelta(days=rng.randint(20, 150))
        elif role == hainan.LATE_LIGHT:
            if (as_of - accepted).days < 75 and rng.random() < 0.3:
                return
            if rng.random() < 0.5:
                paid = due + dt.timedelta(days=rng.randint(5, 45))
        if paid > as_of:
            return
        parts = [(paid, amount)]
        if rng.random() < 0.1 and amount >= 100:
            first = (amount * Decimal("0.6")).quantize(FEN, rounding=ROUND_HALF_UP)
            rest = paid + dt.timedelta(days=rng.randint(10, 40))
            if role not in (hainan.LATE_HEAVY, hainan.LATE_LIGHT):
                rest = max(paid, min(rest, due))  # punctual payers settle the rest by the deadline too
            parts = [(paid, first), (rest, amount - first)]
        for n, (when, part) in enumerate(parts, start=1):
            if when <= as_of:
                out.rows[("payments", when.year)].append(
                    (f"HK{line_id[2:]}{n}", line_id, self.site.code, when.isoformat(), str(part))
                )


def _specialty_offset(text: str) -> int:
    """A stable offset per prescribing specialty, so items of one specialty share their patients."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big")


# --------------------------------------------------------------------------------------------------
# Files


def _csv(dataset: str, rows: Iterable[Sequence[object]]) -> tuple[bytes, int]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADERS[dataset])
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    return buffer.getvalue().encode("utf-8"), count


def _master(sites: list[_Site], window: _Window, out: _Out) -> dict[str, list[tuple[object, ...]]]:
    catalogue = items()
    batches = [b for b in BATCHES if b.start <= window.as_of]
    live = {b.code for b in batches}
    rows: dict[str, list[tuple[object, ...]]] = {}
    rows["institutions"] = [
        (s.code, s.site.name, s.site.region, KIND_CHOICES[s.site.kind], LEVEL_CHOICES[s.site.level]) for s in sites
    ]
    rows["departments"] = [(s.code, d, hainan.DEPARTMENTS[d]) for s in sites for d in s.departments]
    makers = dict.fromkeys(p.company for i in catalogue for p in i.products)
    rows["companies"] = [
        *((name, "生产企业") for name in makers),
        *((name, "配送企业") for name in DISTRIBUTORS),
    ]
    rows["products"] = [
        (
            p.code,
            p.generic,
            p.form,
            p.strength,
            p.pack,
            p.company,
            YES_NO[p.ce],
            YES_NO[p.originator],
            YES_NO[p.originator],
            YES_NO[p.essential],
            p.antimicrobial,
            str(p.price),
        )
        for i in catalogue
        for p in i.products
    ]
    rows["batches"] = [(b.code, b.name, b.level, b.profile, hainan.REGION, b.start.isoformat()) for b in batches]
    live_items = [i for i in catalogue if i.batch.code in live]
    rows["items"] = [
        (
            i.batch.code,
            i.drug.code,
            f"{i.drug.generic} {i.drug.strength}",
            i.drug.form_group,
            i.drug.unit,
            i.drug.winners,
        )
        for i in live_items
    ]
    rows["selected"] = [
        (i.batch.code, p.code, i.drug.code, str(p.price), p.company, str(p.conversion))
        for i in live_items
        for p in i.selected
    ]
    rows["non_selected"] = [
        (i.batch.code, p.code, i.drug.code, KIND_LABELS[p.kind], str(p.conversion))
        for i in live_items
        for p in (*i.same, *i.substitutes)
    ]
    rows["agreements"] = _agreements(sites, live_items, window, out)
    return rows


def _agreements(sites: list[_Site], live: list[Item], window: _Window, out: _Out) -> list[tuple[object, ...]]:
    """Base = the prior twelve months' purchases of the generic; agreed = base × ratio (R-B3)."""
    rows: list[tuple[object, ...]] = []
    for item in live:
        years = [y for y in agreement_years(item.batch, window.as_of) if _midx(y[2]) >= window.first_data]
        for site in sites:
            if item not in site.items:
                continue
            months = out.generic.get((site.code, item.batch.code, item.drug.code), {})
            winner = None
            if len(item.selected) > 1:
                winner = item.selected[0] if site.code[1:5] == "4601" else item.selected[1]
            for year, start, end in years:
                first = _midx(start)
                base = sum((months.get(m, Decimal(0)) for m in range(first - 12, first)), Decimal(0))
                if _lags(site, item):
                    base *= OVER_REPORTED
                base = base.quantize(Decimal(1), rounding=ROUND_HALF_UP)
                if base <= 0:
                    continue
                rows.append(
                    (
                        item.batch.code,
                        item.drug.code,
                        site.code,
                        year,
                        start.isoformat(),
                        end.isoformat(),
                        "",
                        str(base),
                        f"{(item.ratio * 100).normalize():f}%",
                        winner.code if winner else "",
                    )
                )
    return rows


def generate(
    seed: int = DEFAULT_SEED, as_of: dt.date = DEMO_AS_OF, institutions: int = DEFAULT_INSTITUTIONS
) -> Province:
    """The demo province's files, deterministic in ``seed``, ``as_of`` and ``institutions``."""
    if not hainan.MIN_INSTITUTIONS <= institutions <= len(hainan.ROSTER):
        raise ValueError(f"institutions must be between {hainan.MIN_INSTITUTIONS} and {len(hainan.ROSTER)}")
    if not EARLIEST_AS_OF <= as_of <= LATEST_AS_OF:
        raise ValueError(f"as_of must lie between {EARLIEST_AS_OF} and {LATEST_AS_OF}")
    last = _midx(as_of)
    first_data = last - DATA_MONTHS + 1
    starts = [_midx(y[1]) for b in BATCHES for y in agreement_years(b, as_of) if _midx(y[2]) >= first_data]
    window = _Window(first_data=first_data, last=last, sim_start=min([first_data, *starts]) - 12, as_of=as_of)
    scen = scenarios(as_of, institutions)
    sites = _sites(seed, institutions)
    live = {b.code for b in BATCHES if b.start <= as_of}
    out = _Out()
    for site in sites:
        site.patients = max(60, round(sum(i.drug.use for i in site.items) * site.size * RX_SCALE * 2))
        for item in site.items:
            if item.batch.code not in live:
                continue
            pair = _Pair(seed, site, item, window, scen)
            for midx in range(window.sim_start, last + 1):
                pair.month(midx, out)
    province = Province(seed=seed, as_of=as_of, institutions=tuple(s.code for s in sites), scenarios=scen)
    master = _master(sites, window, out)
    for dataset in MASTER_DATASETS:
        data, count = _csv(dataset, master[dataset])
        province.files.append(DemoFile(dataset, f"{dataset}.csv", data, count))
    for dataset in FACT_DATASETS:
        for year in sorted({y for d, y in out.rows if d == dataset}):
            data, count = _csv(dataset, out.rows[(dataset, year)])
            province.files.append(DemoFile(dataset, f"{dataset}-{year}.csv", data, count))
    return province
