"""Province-shaped benchmark data, written straight to the Delta fact store without Django.

    python -m benchmarks.generate --home DIR --rows 20000000 [--institutions 2000 --departments 60
        --items 500 --months 36 --start 2023-01 --seed 1]
    python -m benchmarks.generate --home DIR --append-month

Writes ``DIR/facts/{purchases,dispensing,payments}`` (Delta, partitioned by ``month``, the exact
schemas of ``jicai.facts.schemas``) and ``DIR/reference/*.parquet`` (agreements, item products,
institutions, products, departments) for the performance targets of the engine (R-C2, R-D2, R-E1,
R-H4, R-H7: progress, substitutes, payments at province scale).

Everything is vectorised with numpy and built as Arrow arrays from buffers (ids, hex keys and
decimals too), one month at a time, so memory stays flat whatever ``--rows`` is. Every month has its
own random stream (``seed``, month, table), so the data is deterministic by seed and a month appended
later is the month a longer run would have written. The shape:

* institutions ``H`` + 6-digit region code + 5-digit serial across Hainan's cities and counties (46…);
  2% tertiary hospitals carrying about a quarter of the lines, 13% secondary, the rest primary care;
* 500 items in 10 batches, each with 1–3 selected products, 1–3 same-generic non-selected products and
  1–2 substitutes (conversions 0.5 / 1 / 2); tertiary hospitals use every item, primary ones about a
  third (the popular ones), an item bought less than about 6 times a year is not used at all, and
  only institutions that use an item have agreements for it (so no purchase lacks one);
* seasonality (winter peak, Spring-Festival dip in February) and a slow upward trend;
* about 3% lagging institutions that buy mostly substitutes, pay later and less often, and one
  secondary hospital that buys more same-generic non-selected products than selected ones (the cap);
* one agreement per institution × used item × calendar year covered by the months, with
  ``agreed_qty`` ≈ 0.7 × the institution's expected selected use at the normal mix;
* ``N`` purchase lines and ``N`` dispensing lines; about one payment per purchase line (some never,
  some after the deadline); payments dated after the last generated month are not written yet, they
  arrive with ``--append-month``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable

from jicai.facts.schemas import (
    AGREEMENTS,
    DISPENSING,
    INSTITUTIONS,
    ITEM_PRODUCTS,
    MONEY,
    PAYMENTS,
    PRICE,
    PURCHASES,
    QTY,
    FactTable,
)
from jicai.facts.store import append, table_path

PRODUCTS = pa.schema(
    [
        ("code", pa.string()),
        ("generic_name", pa.string()),
        ("dosage_form", pa.string()),
        ("strength", pa.string()),
        ("pack", pa.string()),
        ("pack_size", pa.int32()),
        ("min_unit", pa.string()),
        ("manufacturer", pa.string()),
        ("ce_passed", pa.bool_()),
        ("is_originator", pa.bool_()),
        ("listed_price", PRICE),
    ]
)
DEPARTMENTS = pa.schema(
    [("institution_code", pa.string()), ("department_code", pa.string()), ("department_name", pa.string())]
)

MANIFEST = "generator.json"
CHUNK_ROWS = 1_500_000  # lines of one table held in memory before one Delta append
PROFILE = "national"
AGREED_SHARE = 0.7
SCALE4 = 10_000  # QTY / PRICE: four decimal places

# (code, name, weight) — Hainan's districts, cities and counties (GB/T 2260).
REGIONS: tuple[tuple[str, str, float], ...] = (
    ("460105", "海口市秀英区", 4),
    ("460106", "海口市龙华区", 7),
    ("460107", "海口市琼山区", 6),
    ("460108", "海口市美兰区", 7),
    ("460202", "三亚市海棠区", 2),
    ("460203", "三亚市吉阳区", 4),
    ("460204", "三亚市天涯区", 3),
    ("460205", "三亚市崖州区", 2),
    ("460400", "儋州市", 9),
    ("469001", "五指山市", 1),
    ("469002", "琼海市", 5),
    ("469005", "文昌市", 5),
    ("469006", "万宁市", 5),
    ("469007", "东方市", 4),
    ("469021", "定安县", 3),
    ("469022", "屯昌县", 3),
    ("469023", "澄迈县", 5),
    ("469024", "临高县", 4),
    ("469025", "白沙黎族自治县", 2),
    ("469026", "昌江黎族自治县", 2),
    ("469027", "乐东黎族自治县", 5),
    ("469028", "陵水黎族自治县", 4),
    ("469029", "保亭黎族苗族自治县", 2),
    ("469030", "琼中黎族苗族自治县", 2),
)
BATCHES = (
    "GJ-4+7-HN",
    "GJ-2-HN",
    "GJ-3-HN",
    "GJ-4-HN",
    "GJ-5-HN",
    "GJ-6-HN",
    "GJ-7-HN",
    "GJ-8-HN",
    "GJ-9-HN",
    "LM-HN-1",
)
GENERICS = (
    "阿托伐他汀钙片",
    "瑞舒伐他汀钙片",
    "苯磺酸氨氯地平片",
    "硫酸氢氯吡格雷片",
    "厄贝沙坦片",
    "缬沙坦胶囊",
    "盐酸二甲双胍片",
    "阿卡波糖片",
    "格列美脲片",
    "恩替卡韦片",
    "富马酸替诺福韦二吡呋酯片",
    "蒙脱石散",
    "奥美拉唑肠溶胶囊",
    "雷贝拉唑钠肠溶片",
    "孟鲁司特钠片",
    "头孢呋辛酯片",
    "左氧氟沙星片",
    "阿莫西林胶囊",
    "阿奇霉素片",
    "利培酮片",
    "奥氮平片",
    "艾司西酞普兰片",
    "塞来昔布胶囊",
    "甲钴胺片",
    "坎地沙坦酯片",
    "替吉奥胶囊",
    "吉非替尼片",
    "伊马替尼片",
    "左乙拉西坦片",
    "普瑞巴林胶囊",
)
UNITS = ("片", "粒", "支", "袋")
PACK_SIZES = np.array([7, 10, 12, 14, 20, 24, 28, 30, 36, 48, 60, 100], dtype=np.int64)
DISTRIBUTORS = tuple(
    f"海南{name}医药有限公司"
    for name in ("康力", "国药控股", "华润", "上药", "九州通", "鹭燕", "柳药", "海药", "南药", "椰岛", "天祥", "琼康")
)
DIAGNOSES = (
    ("I10", "I11.9", "I25.1", "I48", "I50.9"),
    ("E11.9", "E11.2", "E11.6", "E10.9", "E78.5"),
    ("J18.9", "J20.9", "J44.1", "J45.9", "J06.9"),
    ("I63.9", "G40.9", "G20", "F32.9", "G43.9"),
    ("K21.0", "K25.9", "K29.7", "K59.0", "K80.2"),
    ("A09", "N39.0", "J02.9", "L03.9", "B34.9"),
    ("C34.9", "C50.9", "C16.9", "C18.9", "C22.0"),
    ("N18.5", "N18.9", "N04.9", "D63.8", "N20.0"),
    ("M06.9", "M10.9", "M54.5", "M17.9", "M81.9"),
    ("F20.9", "F31.9", "F41.1", "F51.0", "F03"),
)
DEPARTMENT_NAMES = (
    "心血管内科",
    "内分泌科",
    "呼吸内科",
    "神经内科",
    "消化内科",
    "肾内科",
    "肿瘤科",
    "感染科",
    "风湿免疫科",
    "精神科",
    "老年病科",
    "全科",
    "普通外科",
    "骨科",
    "妇产科",
    "儿科",
    "急诊科",
    "重症医学科",
    "中医科",
    "康复医学科",
)

# Purchase mix (selected, same-generic non-selected, substitute) by institution class.
NORMAL, LAGGING, CAP_BREAKER = 0, 1, 2
KIND_MIX = np.array([[0.80, 0.12, 0.08], [0.35, 0.20, 0.45], [0.30, 0.60, 0.10]])
KIND_NAMES = ("selected", "same_generic", "substitute")
PAY_PROB = np.array([0.97, 0.85, 0.95])  # a payment is ever made
LATE_PROB = np.array([0.06, 0.35, 0.10])  # ... after the deadline (end of the month after acceptance)
# By level 1, 2, 3 (index = level): mean packs per purchase line, prescribers per department, patients.
MEAN_PACKS = np.array([0.0, 5.0, 15.0, 40.0])
PRESCRIBERS = np.array([0, 3, 8, 20])
PATIENTS = np.array([0, 8_000, 60_000, 300_000])
PACKS_SIGMA = 0.5  # packs per line: lognormal around the level's mean
COVERAGE = np.array([0.0, 0.35, 0.75, 1.0])  # share of items an institution of that level uses
MIN_LINES_PER_YEAR = 6.0  # pairs bought less often than this are not used (no agreement, no lines)
WITHIN_KIND_SKEW = 1.6  # product j of a kind drawn as floor(count × u^skew): the first dominates


# --- Arrow arrays from numpy buffers (no Python loop per row) ---------------------------------------


def decimal_array(scaled: np.ndarray, type_: pa.Decimal128Type) -> pa.Array:
    """Decimal array from integers already scaled by 10**scale (little-endian 128-bit two's complement)."""
    values = np.ascontiguousarray(scaled, dtype=np.int64)
    words = np.empty((len(values), 2), dtype=np.int64)
    words[:, 0] = values
    words[:, 1] = values >> 63
    return pa.Array.from_buffers(type_, len(values), [None, pa.py_buffer(words)])


def _fixed_width(matrix: np.ndarray) -> pa.Array:
    rows, width = matrix.shape
    offsets = np.arange(0, (rows + 1) * width, width, dtype=np.int32)
    data = np.ascontiguousarray(matrix, dtype=np.uint8)
    return pa.Array.from_buffers(pa.string(), rows, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def digit_strings(prefix: str, values: np.ndarray, width: int) -> pa.Array:
    """``prefix`` + zero-padded decimal ``values`` (e.g. line ids), built as one byte matrix."""
    head = prefix.encode("ascii")
    matrix = np.empty((len(values), len(head) + width), dtype=np.uint8)
    matrix[:, : len(head)] = np.frombuffer(head, dtype=np.uint8)
    rest = np.asarray(values, dtype=np.int64).copy()
    for pos in range(len(head) + width - 1, len(head) - 1, -1):
        matrix[:, pos] = 48 + rest % 10
        rest //= 10
    return _fixed_width(matrix)


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def hex_strings(values: np.ndarray) -> pa.Array:
    """16 lowercase hex digits of each uint64 (pseudonymised patient keys)."""
    rest = np.asarray(values, dtype=np.uint64).copy()
    matrix = np.empty((len(rest), 16), dtype=np.uint8)
    for pos in range(15, -1, -1):
        matrix[:, pos] = _HEX[(rest & np.uint64(15)).astype(np.int64)]
        rest >>= np.uint64(4)
    return _fixed_width(matrix)


def pick(pool: pa.Array, index: np.ndarray) -> pa.Array:
    return pool.take(pa.array(np.asarray(index, dtype=np.int32)))


def dates(days: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(days, dtype=np.int32), type=pa.date32())


# --- calendar ---------------------------------------------------------------------------------------

EPOCH = dt.date(1970, 1, 1)


def _month_abs(start: str) -> int:
    year, month = (int(x) for x in start.split("-"))
    return year * 12 + month - 1


def month_label(absolute: int) -> str:
    return f"{absolute // 12:04d}-{absolute % 12 + 1:02d}"


def month_first(absolute: int) -> dt.date:
    return dt.date(absolute // 12, absolute % 12 + 1, 1)


def month_days(absolute: int) -> tuple[int, int]:
    """(first day as days since 1970-01-01, number of days) of an absolute month."""
    first = month_first(absolute)
    return (first - EPOCH).days, (month_first(absolute + 1) - first).days


def _day(value: dt.date) -> int:
    return (value - EPOCH).days


# --- parameters and the static world ----------------------------------------------------------------


@dataclass(frozen=True)
class Params:
    rows: int
    institutions: int = 2000
    departments: int = 60
    items: int = 500
    months: int = 36  # months written so far (grows with --append-month)
    start: str = "2023-01"
    seed: int = 1
    base_months: int = 0  # months --rows was spread over; later months get the same rate

    def __post_init__(self) -> None:
        if self.base_months == 0:
            object.__setattr__(self, "base_months", self.months)
        if min(self.rows, self.institutions, self.departments, self.items, self.months) < 1:
            raise ValueError("rows, institutions, departments, items and months must be positive")
        if self.departments > 99 or self.institutions > 99_999:
            raise ValueError("at most 99 departments and 99,999 institutions")

    @property
    def first_month(self) -> int:
        return _month_abs(self.start)


def season(params: Params, months: np.ndarray) -> np.ndarray:
    """Relative line volume of months (index from the start): winter peak, February dip, slow growth."""
    m = np.asarray(months, dtype=np.float64)
    moy = (params.first_month + m.astype(np.int64)) % 12  # 0 = January
    weight = 1 + 0.15 * np.cos(2 * np.pi * moy / 12)
    weight = np.where(moy == 1, weight * 0.85, weight)
    return weight * (1 + 0.004 * m)


def month_rows(params: Params, m: int) -> int:
    """Lines of one table in month ``m``: the first ``base_months`` sum exactly to ``rows``."""
    base = season(params, np.arange(params.base_months))
    if m >= params.base_months:
        return round(params.rows * float(season(params, np.array([m]))[0]) / float(base.sum()))
    exact = params.rows * base / base.sum()
    counts = np.floor(exact).astype(np.int64)
    short = params.rows - int(counts.sum())
    counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
    return int(counts[m])


def expected_rows(params: Params, m: np.ndarray) -> np.ndarray:
    base = season(params, np.arange(params.base_months))
    return np.asarray(params.rows * season(params, m) / base.sum())


@dataclass
class World:
    """Institutions, items, products and who uses what: small arrays every month draws from."""

    params: Params
    inst_code: pa.Array
    inst_region: np.ndarray
    inst_level: np.ndarray
    inst_class: np.ndarray
    inst_name: list[str]
    inst_kind: list[str]
    region_code: pa.Array
    item_batch: np.ndarray
    item_class: np.ndarray
    item_home_dept: np.ndarray
    item_unit: np.ndarray
    kind_first: np.ndarray  # (items, 3) first product index of each kind
    kind_count: np.ndarray  # (items, 3)
    prod_item: np.ndarray
    prod_kind: np.ndarray
    prod_j: np.ndarray
    prod_pick: np.ndarray  # probability of the product within its item and kind
    prod_pack: np.ndarray
    prod_conv4: np.ndarray  # conversion × 10**4
    prod_price4: np.ndarray  # price per minimum unit × 10**4
    prod_code: pa.Array
    pair_inst: np.ndarray
    pair_item: np.ndarray
    pair_weight: np.ndarray
    pair_cdf: np.ndarray = field(repr=False)

    @property
    def item_codes(self) -> list[str]:
        return [f"V{k + 1:04d}" for k in range(self.params.items)]


@dataclass(frozen=True)
class _Institutions:
    level: np.ndarray
    region: np.ndarray
    size: np.ndarray
    klass: np.ndarray
    kinds: list[str]
    codes: list[str]
    names: list[str]


def _institutions(rng: np.random.Generator, n_inst: int) -> _Institutions:
    """Levels, regions (tertiary ones concentrated in Haikou and Sanya), size and behaviour."""
    n3 = max(1, round(0.02 * n_inst))
    n2 = min(n_inst - n3, round(0.13 * n_inst))
    level = rng.permutation(np.concatenate([np.full(n3, 3), np.full(n2, 2), np.full(n_inst - n3 - n2, 1)]))
    region_weight = np.array([w for _, _, w in REGIONS], dtype=np.float64)
    city = np.array([code.startswith(("4601", "4602")) for code, _, _ in REGIONS])
    region = np.empty(n_inst, dtype=np.int64)
    for lv, boost in ((1, 1.0), (2, 2.0), (3, 6.0)):
        weights = np.where(city, region_weight * boost, region_weight)
        mask = level == lv
        region[mask] = rng.choice(len(REGIONS), size=int(mask.sum()), p=weights / weights.sum())
    size = np.select(
        [level == 3, level == 2],
        [40 * rng.lognormal(0, 0.4, n_inst), 8 * rng.lognormal(0, 0.5, n_inst)],
        rng.lognormal(0, 0.7, n_inst),
    )
    klass = np.full(n_inst, NORMAL)
    order = rng.permutation(n_inst)
    secondary = [i for i in order if level[i] == 2]
    cap_breaker = secondary[0] if secondary else int(order[0])
    klass[cap_breaker] = CAP_BREAKER
    laggards = [i for i in order if i != cap_breaker][: max(1, round(0.03 * n_inst))]
    klass[laggards] = LAGGING
    kind_draw = rng.random(n_inst)
    inst_kind = [
        ("military" if u < 0.05 else "public")
        if lv == 3
        else ("private" if u < 0.2 else "public")
        if lv == 2
        else ("private" if u < 0.1 else "primary")
        for lv, u in zip(level.tolist(), kind_draw.tolist(), strict=True)
    ]
    labels = {3: "人民医院", 2: "医院", 1: "卫生院"}
    inst_codes = [f"H{REGIONS[r][0]}{i + 1:05d}" for i, r in enumerate(region.tolist())]
    inst_names = [
        f"{REGIONS[r][1]}第{i + 1}{labels[lv]}（模拟）" for i, (r, lv) in enumerate(zip(region, level, strict=True))
    ]
    return _Institutions(level, region, size, klass, inst_kind, inst_codes, inst_names)


def _pair_weights(size: np.ndarray, appeal: np.ndarray, inst: np.ndarray, item: np.ndarray) -> np.ndarray:
    """Each institution's size shared over the items it uses in proportion to their appeal."""
    total = np.bincount(inst, weights=appeal[item], minlength=len(size))
    return np.asarray(size[inst] * appeal[item] / total[inst])


def build_world(params: Params) -> World:
    rng = np.random.default_rng([params.seed, 0])
    n_inst, n_items = params.institutions, params.items
    inst = _institutions(rng, n_inst)
    level, region, size = inst.level, inst.region, inst.size

    # Items: popularity (Zipf-like), batch, therapeutic class, products of each kind.
    rank = rng.permutation(n_items)
    popularity = 1.0 / (rank + 5.0) ** 0.9
    item_batch = np.arange(n_items) * min(len(BATCHES), n_items) // n_items
    item_class = rng.integers(0, len(DIAGNOSES), n_items)
    item_home_dept = rng.integers(0, params.departments, n_items)
    item_unit = rng.choice(len(UNITS), n_items, p=[0.6, 0.25, 0.1, 0.05])
    counts = np.stack(
        [
            rng.choice([1, 2, 3], n_items, p=[0.5, 0.3, 0.2]),
            rng.choice([1, 2, 3], n_items, p=[0.4, 0.35, 0.25]),
            rng.choice([1, 2], n_items, p=[0.6, 0.4]),
        ],
        axis=1,
    )
    flat = counts.ravel()
    starts = np.concatenate([[0], np.cumsum(flat)[:-1]])
    n_prod = int(flat.sum())
    prod_item = np.repeat(np.repeat(np.arange(n_items), 3), flat)
    prod_kind = np.repeat(np.tile(np.arange(3), n_items), flat)
    prod_j = np.arange(n_prod) - np.repeat(starts, flat)
    prod_count = np.repeat(flat, flat)
    inv = 1.0 / WITHIN_KIND_SKEW
    prod_pick = ((prod_j + 1) / prod_count) ** inv - (prod_j / prod_count) ** inv
    prod_pack = PACK_SIZES[rng.integers(0, len(PACK_SIZES), n_prod)]
    conv_draw = rng.random(n_prod)
    conv = np.select(
        [prod_kind == 0, prod_kind == 1],
        [
            np.where((prod_j > 0) & (conv_draw < 0.2), 2.0, 1.0),
            np.where(conv_draw < 0.75, 1.0, np.where(conv_draw < 0.9, 2.0, 0.5)),
        ],
        np.where(conv_draw < 0.6, 1.0, np.where(conv_draw < 0.8, 2.0, 0.5)),
    )
    base_price = np.clip(rng.lognormal(0, 1.1, n_items), 0.03, 300)
    factor = np.select(
        [prod_kind == 0, prod_kind == 1],
        [rng.uniform(0.85, 1.15, n_prod), rng.uniform(1.5, 8, n_prod) * conv],
        rng.uniform(1.2, 6, n_prod) * conv,
    )
    price4 = np.maximum(1, np.round(base_price[prod_item] * factor * SCALE4)).astype(np.int64)
    prod_codes = [
        f"XZ{k + 1:04d}{'SGT'[kind]}{j + 1}A001010190{p + 1:05d}"
        for p, (k, kind, j) in enumerate(zip(prod_item.tolist(), prod_kind.tolist(), prod_j.tolist(), strict=True))
    ]

    # Who uses what: tertiary everything, primary a third (the popular items), always the top item.
    relative = (popularity / popularity.mean()) ** 0.6
    prob = np.clip(COVERAGE[level][:, None] * relative[None, :], 0.02, 1.0)
    used = rng.random((n_inst, n_items)) < prob
    used[:, int(np.argmax(popularity))] = True
    pair_inst, pair_item = np.nonzero(used)
    pair_weight = _pair_weights(size, np.sqrt(popularity), pair_inst, pair_item)
    # An agreement is signed for items bought regularly: drop pairs too sparse to be bought monthly-ish.
    lines_a_year = params.rows * 12 / params.base_months * pair_weight / pair_weight.sum()
    keep = (lines_a_year >= MIN_LINES_PER_YEAR) | (pair_item == int(np.argmax(popularity)))
    pair_inst, pair_item = pair_inst[keep], pair_item[keep]
    pair_weight = _pair_weights(size, np.sqrt(popularity), pair_inst, pair_item)
    return World(
        params=params,
        inst_code=pa.array(inst.codes, pa.string()),
        inst_region=region,
        inst_level=level,
        inst_class=inst.klass,
        inst_name=inst.names,
        inst_kind=inst.kinds,
        region_code=pa.array([code for code, _, _ in REGIONS], pa.string()),
        item_batch=item_batch,
        item_class=item_class,
        item_home_dept=item_home_dept,
        item_unit=item_unit,
        kind_first=starts.reshape(n_items, 3),
        kind_count=counts,
        prod_item=prod_item,
        prod_kind=prod_kind,
        prod_j=prod_j,
        prod_pick=prod_pick,
        prod_pack=prod_pack,
        prod_conv4=np.round(conv * SCALE4).astype(np.int64),
        prod_price4=price4,
        prod_code=pa.array(prod_codes, pa.string()),
        pair_inst=pair_inst,
        pair_item=pair_item,
        pair_weight=pair_weight,
        pair_cdf=np.cumsum(pair_weight),
    )


# --- reference tables -------------------------------------------------------------------------------


def _selected_unit_price(world: World) -> np.ndarray:
    """Per item: mean winning unit price of its selected products, half-up to 4 places (× 10**4)."""
    selected = world.prod_kind == 0
    total = np.bincount(world.prod_item[selected], weights=world.prod_price4[selected], minlength=world.params.items)
    count = world.kind_count[:, 0]
    return np.asarray((2 * total.astype(np.int64) + count) // (2 * count), dtype=np.int64)


def agreement_years(params: Params, months: int) -> list[int]:
    first = params.first_month
    return sorted({(first + m) // 12 for m in range(months)})


def agreements_for_year(world: World, year: int) -> pa.Table:
    """One agreement per used (institution, item) for calendar ``year``: 0.7 × expected selected use."""
    params = world.params
    first_year = params.first_month // 12
    months = np.arange(year * 12, year * 12 + 12) - params.first_month
    lines = float(expected_rows(params, months).sum())
    selected = world.prod_kind == 0
    units = world.prod_pick * world.prod_pack * world.prod_conv4 / SCALE4
    per_line = np.bincount(world.prod_item[selected], weights=units[selected], minlength=params.items)
    level = world.inst_level[world.pair_inst]
    expected = (
        lines
        * world.pair_weight
        / world.pair_cdf[-1]
        * KIND_MIX[NORMAL, 0]
        * MEAN_PACKS[level]
        * per_line[world.pair_item]
    )
    noise = np.random.default_rng([params.seed, 2, year]).lognormal(0, 0.1, len(expected))
    agreed = np.maximum(1, np.round(AGREED_SHARE * expected * noise)).astype(np.int64)
    n = len(agreed)
    year_no = year - first_year + 1
    unit_price = _selected_unit_price(world)[world.pair_item]
    batches = pa.array(BATCHES, pa.string())
    items = pa.array(world.item_codes, pa.string())
    return pa.Table.from_arrays(
        [
            pa.array(year_no * 10_000_000 + np.arange(n) + 1, pa.int64()),
            pick(batches, world.item_batch[world.pair_item]),
            pick(items, world.pair_item),
            pick(world.inst_code, world.pair_inst),
            pick(world.region_code, world.inst_region[world.pair_inst]),
            pa.array(np.full(n, year_no, dtype=np.int32)),
            dates(np.full(n, _day(dt.date(year, 1, 1)))),
            dates(np.full(n, _day(dt.date(year, 12, 31)))),
            decimal_array(agreed * SCALE4, QTY),
            decimal_array(unit_price, PRICE),
            pa.repeat(pa.scalar(PROFILE), n),
        ],
        schema=AGREEMENTS,
    )


def item_products_table(world: World) -> pa.Table:
    selected = pa.array(world.prod_kind == 0)
    unit_price = pc.if_else(selected, decimal_array(world.prod_price4, PRICE), pa.scalar(None, PRICE))
    kinds = pa.array(KIND_NAMES, pa.string())
    return pa.Table.from_arrays(
        [
            pick(pa.array(BATCHES, pa.string()), world.item_batch[world.prod_item]),
            pick(pa.array(world.item_codes, pa.string()), world.prod_item),
            world.prod_code,
            pick(kinds, world.prod_kind),
            decimal_array(world.prod_conv4, QTY),
            unit_price,
        ],
        schema=ITEM_PRODUCTS,
    )


def institutions_table(world: World) -> pa.Table:
    return pa.Table.from_arrays(
        [
            world.inst_code,
            pa.array(world.inst_name, pa.string()),
            pick(world.region_code, world.inst_region),
            pa.array(world.inst_kind, pa.string()),
            pa.array(world.inst_level.astype(np.int32)),
        ],
        schema=INSTITUTIONS,
    )


def products_table(world: World) -> pa.Table:
    n = len(world.prod_item)
    rows: dict[str, list[Any]] = {name: [] for name in PRODUCTS.names}
    for p in range(n):
        k = int(world.prod_item[p])
        generic = GENERICS[k % len(GENERICS)]
        unit = UNITS[int(world.item_unit[k])]
        pack = int(world.prod_pack[p])
        strength = f"{(k // len(GENERICS) + 1) * 5 * int(world.prod_conv4[p]) / SCALE4:g}mg"
        kind = int(world.prod_kind[p])
        rows["code"].append(world.prod_code[p].as_py())
        rows["generic_name"].append(generic if kind < 2 else f"{generic}（替代{p % 7 + 1}）")
        rows["dosage_form"].append({"片": "片剂", "粒": "胶囊剂", "支": "注射剂", "袋": "颗粒剂"}[unit])
        rows["strength"].append(strength)
        rows["pack"].append(f"{strength}*{pack}{unit}/盒")
        rows["pack_size"].append(pack)
        rows["min_unit"].append(unit)
        rows["manufacturer"].append(f"模拟药业{p % 97 + 1:02d}有限公司")
        rows["ce_passed"].append(kind == 0 or p % 3 == 0)
        rows["is_originator"].append(kind == 1 and int(world.prod_j[p]) == 0)
        rows["listed_price"].append(None)
    table = pa.Table.from_pydict({k: v for k, v in rows.items() if k != "listed_price"})
    listed = decimal_array(world.prod_price4 * world.prod_pack, PRICE)
    return table.append_column("listed_price", listed).cast(PRODUCTS)


def departments_table(world: World) -> pa.Table:
    n_inst, n_dept = world.params.institutions, world.params.departments
    names = [
        DEPARTMENT_NAMES[d % len(DEPARTMENT_NAMES)] + ("" if d < len(DEPARTMENT_NAMES) else f"{d // 20 + 1}病区")
        for d in range(n_dept)
    ]
    inst = np.repeat(np.arange(n_inst), n_dept)
    dept = np.tile(np.arange(n_dept), n_inst)
    return pa.Table.from_arrays(
        [pick(world.inst_code, inst), digit_strings("K", dept + 1, 2), pick(pa.array(names, pa.string()), dept)],
        schema=DEPARTMENTS,
    )


def write_reference(home: Path, world: World) -> None:
    ref = Path(home) / "reference"
    ref.mkdir(parents=True, exist_ok=True)
    years = agreement_years(world.params, world.params.months)
    pq.write_table(pa.concat_tables([agreements_for_year(world, y) for y in years]), ref / "agreements.parquet")
    pq.write_table(item_products_table(world), ref / "item_products.parquet")
    pq.write_table(institutions_table(world), ref / "institutions.parquet")
    pq.write_table(products_table(world), ref / "products.parquet")
    pq.write_table(departments_table(world), ref / "departments.parquet")


# --- one month of facts -----------------------------------------------------------------------------


def _rng(params: Params, m: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([params.seed, 1, m, stream])


def _draw_lines(world: World, rng: np.random.Generator, n: int, first_day: int, n_days: int) -> dict[str, np.ndarray]:
    """Institution, item, product and day of ``n`` lines; sorted by day then institution."""
    pair = np.searchsorted(world.pair_cdf, rng.random(n) * world.pair_cdf[-1], side="right")
    pair = np.minimum(pair, len(world.pair_cdf) - 1)
    inst = world.pair_inst[pair]
    item = world.pair_item[pair]
    cum = np.cumsum(KIND_MIX, axis=1)[world.inst_class[inst]]
    u = rng.random(n)
    kind = (u >= cum[:, 0]).astype(np.int64) + (u >= cum[:, 1])
    count = world.kind_count[item, kind]
    j = np.minimum(np.floor(count * rng.random(n) ** WITHIN_KIND_SKEW).astype(np.int64), count - 1)
    prod = world.kind_first[item, kind] + j
    day = first_day + np.floor(rng.random(n) * n_days).astype(np.int64)
    order = np.lexsort((inst, day))
    return {"inst": inst[order], "item": item[order], "prod": prod[order], "day": day[order]}


def purchases_month(world: World, m: int) -> tuple[pa.Table, dict[str, np.ndarray]]:
    """Purchase lines of month ``m`` (index from the start) and the arrays payments are drawn from."""
    params = world.params
    absolute = params.first_month + m
    first_day, n_days = month_days(absolute)
    n = month_rows(params, m)
    rng = _rng(params, m, 1)
    lines = _draw_lines(world, rng, n, first_day, n_days)
    inst, prod, accepted = lines["inst"], lines["prod"], lines["day"]
    delivered = accepted - rng.integers(0, 3, n)
    ordered = delivered - rng.integers(1, 6, n)
    mean = MEAN_PACKS[world.inst_level[inst]]
    packs = np.maximum(1, np.round(mean * rng.lognormal(-(PACKS_SIGMA**2) / 2, PACKS_SIGMA, n))).astype(np.int64)
    distributor = (world.inst_region[inst] + rng.integers(0, 3, n)) % len(DISTRIBUTORS)
    qty = packs * world.prod_pack[prod]
    price4 = world.prod_price4[prod]
    amount2 = (qty * price4 + 50) // 100
    seq = np.arange(1, n + 1)
    label = month_label(absolute)
    table = pa.Table.from_arrays(
        [
            digit_strings(f"L{label.replace('-', '')}", seq, 8),
            pick(world.inst_code, inst),
            pick(world.region_code, world.inst_region[inst]),
            pick(world.prod_code, prod),
            dates(ordered),
            dates(delivered),
            dates(accepted),
            decimal_array(qty * SCALE4, QTY),
            decimal_array(price4, PRICE),
            decimal_array(amount2, MONEY),
            pick(pa.array(DISTRIBUTORS, pa.string()), distributor),
            pa.array(np.full(n, absolute // 12 * 100 + absolute % 12 + 1, dtype=np.int64)),
            pa.repeat(pa.scalar(label), n),
        ],
        schema=PURCHASES.schema,
    )
    return table, {"inst": inst, "accepted": accepted, "amount2": amount2, "seq": seq}


def payments_month(world: World, m: int, lines: dict[str, np.ndarray], after: int, until: int) -> pa.Table:
    """Payments of month ``m``'s purchase lines paid on a day in (``after``, ``until``] (days since 1970)."""
    params = world.params
    absolute = params.first_month + m
    rng = _rng(params, m, 3)
    inst, accepted = lines["inst"], lines["accepted"]
    n = len(inst)
    klass = world.inst_class[inst]
    paid_ever = rng.random(n) < PAY_PROB[klass]
    late = rng.random(n) < LATE_PROB[klass]
    due_first, due_days = month_days(absolute + 1)
    due = due_first + due_days - 1
    on_time = accepted + 1 + np.floor(rng.random(n) * (due - accepted)).astype(np.int64)
    overdue = due + 1 + rng.integers(0, 60, n)
    paid = np.where(late, overdue, on_time)
    keep = paid_ever & (paid > after) & (paid <= until)
    paid, seq, inst = paid[keep], lines["seq"][keep], inst[keep]
    k = len(paid)
    month_index = paid.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) + 1970 * 12
    low = int(month_index.min()) if k else 0
    pool = pa.array([month_label(a) for a in range(low, (int(month_index.max()) if k else 0) + 1)], pa.string())
    stamp = absolute // 12 * 100 + absolute % 12 + 1
    return pa.Table.from_arrays(
        [
            digit_strings(f"Y{stamp}", seq, 8),
            digit_strings(f"L{stamp}", seq, 8),
            pick(world.inst_code, inst),
            pick(world.region_code, world.inst_region[inst]),
            dates(paid),
            decimal_array(lines["amount2"][keep], MONEY),
            pa.array(np.full(k, stamp, dtype=np.int64)),
            pick(pool, month_index - low),
        ],
        schema=PAYMENTS.schema,
    )


_PATIENT_MIX = np.uint64(0x9E3779B97F4A7C15)


def dispensing_month(world: World, m: int) -> pa.Table:
    params = world.params
    absolute = params.first_month + m
    first_day, n_days = month_days(absolute)
    n = month_rows(params, m)
    rng = _rng(params, m, 2)
    lines = _draw_lines(world, rng, n, first_day, n_days)
    inst, item, prod, day = lines["inst"], lines["item"], lines["prod"], lines["day"]
    level = world.inst_level[inst]
    dept = (world.item_home_dept[item] + np.minimum(rng.geometric(0.3, n) - 1, params.departments - 1)) % (
        params.departments
    )
    supply = np.array([7, 14, 28, 30])[rng.choice(4, n, p=[0.3, 0.3, 0.2, 0.2])]
    dose = rng.choice([1, 2, 3], n, p=[0.6, 0.3, 0.1])
    qty = supply * dose
    amount2 = (qty * world.prod_price4[prod] + 50) // 100
    diagnosis = world.item_class[item] * 5 + rng.integers(0, 5, n)
    prescriber = dept * 20 + np.floor(rng.random(n) * PRESCRIBERS[level]).astype(np.int64)
    patient = np.floor(rng.random(n) * PATIENTS[level]).astype(np.uint64)
    key = ((inst.astype(np.uint64) + np.uint64(1)) << np.uint64(24) | patient) * _PATIENT_MIX
    label = month_label(absolute)
    diagnoses = pa.array([code for group in DIAGNOSES for code in group], pa.string())
    prescribers = digit_strings("YS", np.arange(params.departments * 20), 4)
    return pa.Table.from_arrays(
        [
            digit_strings(f"R{label.replace('-', '')}", np.arange(1, n + 1), 8),
            pick(world.inst_code, inst),
            pick(world.region_code, world.inst_region[inst]),
            digit_strings("K", dept + 1, 2),
            dates(day),
            pick(world.prod_code, prod),
            decimal_array(qty * SCALE4, QTY),
            decimal_array(amount2, MONEY),
            pick(diagnoses, diagnosis),
            pick(prescribers, prescriber),
            hex_strings(key),
            pa.array(np.full(n, absolute // 12 * 100 + absolute % 12 + 1, dtype=np.int64)),
            pa.repeat(pa.scalar(label), n),
        ],
        schema=DISPENSING.schema,
    )


# --- driver -----------------------------------------------------------------------------------------


@dataclass
class Written:
    rows: dict[str, int] = field(default_factory=lambda: {"purchases": 0, "dispensing": 0, "payments": 0})
    seconds: float = 0.0

    def add(self, home: Path, table: FactTable, tables: list[pa.Table]) -> None:
        data = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        if data.num_rows:
            append(home, table, data)
        self.rows[table.name] += data.num_rows


def _chunks(params: Params, months: range) -> Iterator[list[int]]:
    chunk: list[int] = []
    rows = 0
    for m in months:
        n = month_rows(params, m)
        if chunk and rows + n > CHUNK_ROWS:
            yield chunk
            chunk, rows = [], 0
        chunk.append(m)
        rows += n
    if chunk:
        yield chunk


def _horizon(params: Params, months: int) -> int:
    first, n_days = month_days(params.first_month + months - 1)
    return first + n_days - 1


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def generate(home: Path, params: Params) -> Written:
    """Write the whole data set into a fresh ``home``."""
    home = Path(home)
    if (home / "facts").exists() or (home / MANIFEST).exists():
        raise SystemExit(f"{home} already holds generated data; use a fresh directory or --append-month")
    started = time.perf_counter()
    world = build_world(params)
    write_reference(home, world)
    horizon = _horizon(params, params.months)
    written = Written()
    for chunk in _chunks(params, range(params.months)):
        purchases, payments = [], []
        for m in chunk:
            table, lines = purchases_month(world, m)
            purchases.append(table)
            payments.append(payments_month(world, m, lines, after=-(10**9), until=horizon))
        written.add(home, PURCHASES, purchases)
        written.add(home, PAYMENTS, payments)
        del purchases, payments
        written.add(home, DISPENSING, [dispensing_month(world, m) for m in chunk])
        _log(f"  {month_label(params.first_month + chunk[-1])}: {written.rows} ({time.perf_counter() - started:.0f} s)")
    (home / MANIFEST).write_text(json.dumps(asdict(params), indent=2))
    written.seconds = time.perf_counter() - started
    return written


def latest_month(home: Path) -> str:
    dt_ = DeltaTable(str(table_path(home, PURCHASES)))
    return max(str(p["month"]) for p in dt_.partitions())


def append_month(home: Path) -> tuple[Written, str]:
    """Append the month after the latest one present: its purchases, dispensing and the payments due in it."""
    home = Path(home)
    started = time.perf_counter()
    stored = Params(**json.loads((home / MANIFEST).read_text()))
    m = _month_abs(latest_month(home)) - stored.first_month + 1
    params = replace(stored, months=m + 1)
    world = build_world(params)
    ref = home / "reference" / "agreements.parquet"
    existing = pq.read_table(ref)
    year = (params.first_month + m) // 12
    year_no = year - params.first_month // 12 + 1
    if year_no not in set(existing.column("year").to_pylist()):
        pq.write_table(pa.concat_tables([existing, agreements_for_year(world, year)]), ref)
    old_horizon, horizon = _horizon(params, m), _horizon(params, m + 1)
    written = Written()
    table, lines = purchases_month(world, m)
    written.add(home, PURCHASES, [table])
    payments = [payments_month(world, m, lines, after=-(10**9), until=horizon)]
    for previous in range(max(0, m - 4), m):  # lines of earlier months paid in the new month
        _, earlier = purchases_month(world, previous)
        payments.append(payments_month(world, previous, earlier, after=old_horizon, until=horizon))
    written.add(home, PAYMENTS, payments)
    written.add(home, DISPENSING, [dispensing_month(world, m)])
    (home / MANIFEST).write_text(json.dumps(asdict(params), indent=2))
    written.seconds = time.perf_counter() - started
    return written, month_label(params.first_month + m)


def _size_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--rows", type=int, help="purchase lines and dispensing lines (each) over the months")
    parser.add_argument("--institutions", type=int, default=2000)
    parser.add_argument("--departments", type=int, default=60)
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--start", default="2023-01", help="first month, YYYY-MM")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--append-month", action="store_true", help="append the month after the latest one")
    args = parser.parse_args(argv)
    if args.append_month:
        written, label = append_month(args.home)
        what = f"appended {label}"
    else:
        if not args.rows:
            parser.error("--rows is required (except with --append-month)")
        params = Params(
            rows=args.rows,
            institutions=args.institutions,
            departments=args.departments,
            items=args.items,
            months=args.months,
            start=args.start,
            seed=args.seed,
        )
        written = generate(args.home, params)
        what = "generated"
    total = sum(written.rows.values())
    rate = total / written.seconds if written.seconds else math.inf
    sizes = {name: f"{_size_mib(args.home / 'facts' / name):,.0f} MiB" for name in written.rows}
    print(f"{what}: {written.rows} in {written.seconds:.1f} s, {rate:,.0f} rows/s written; Delta sizes {sizes}")


if __name__ == "__main__":
    main()
