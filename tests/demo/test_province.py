"""The demo province generator on its own: reproducible, well-formed, with its scenarios in the files."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import Counter, defaultdict
from decimal import Decimal

import pytest

from jicai.catalog.packs import parse_pack
from jicai.demo import hainan
from jicai.demo.province import (
    DEFAULT_SEED,
    DEMO_AS_OF,
    SELECTED,
    SUPPLY_INTERRUPTION,
    Province,
    departments,
    generate,
    items,
    scenarios,
)
from jicai.monitoring.hooks import INTERRUPTION_SCHEMA

SMALL = 8


@pytest.fixture(scope="module")
def small() -> Province:
    return generate(institutions=SMALL)


def rows(province: Province, dataset: str) -> list[list[str]]:
    out: list[list[str]] = []
    for f in province.files:
        if f.dataset == dataset:
            reader = csv.reader(io.StringIO(f.data.decode("utf-8")))
            next(reader)
            out.extend(reader)
    return out


def test_same_seed_gives_identical_files_and_another_seed_another_province(small: Province) -> None:
    again = generate(institutions=SMALL)
    assert [(f.filename, f.data) for f in again.files] == [(f.filename, f.data) for f in small.files]
    other = {f.filename: f.data for f in generate(seed=DEFAULT_SEED + 1, institutions=SMALL).files}
    assert other["dispensing-2025.csv"] != next(f.data for f in small.files if f.filename == "dispensing-2025.csv")
    assert other["agreements.csv"] != next(f.data for f in small.files if f.filename == "agreements.csv")
    # the roster stays: the same institutions, whatever the seed
    assert other["institutions.csv"] == next(f.data for f in small.files if f.filename == "institutions.csv")


def test_files_come_in_import_order_and_end_at_the_as_of_date(small: Province) -> None:
    order = [f.dataset for f in small.files]
    assert order[:9] == [
        "institutions",
        "departments",
        "companies",
        "products",
        "batches",
        "items",
        "selected",
        "non_selected",
        "agreements",
    ]
    assert set(order[9:]) == {"purchases", "payments", "dispensing"}
    dates = [r[5] for r in rows(small, "purchases")] + [r[3] for r in rows(small, "payments")]
    dates += [r[3] for r in rows(small, "dispensing")]
    assert max(dates) == DEMO_AS_OF.isoformat()
    assert min(r[5] for r in rows(small, "purchases")) >= "2023-12-01"  # 36 months of data


def test_roster_has_every_kind_and_level_in_real_hainan_regions() -> None:
    codes = hainan.INSTITUTION_CODES
    assert len(codes) == len(set(codes)) == 60
    assert all(re.fullmatch(r"H\d{11}", c) and c[1:7] in hainan.REGIONS for c in codes)
    assert codes[0] == "H46010600001"
    assert {s.kind for s in hainan.ROSTER} == {"public", "military", "private", "primary"}
    assert {s.level for s in hainan.ROSTER} == {1, 2, 3}
    roles = {s.role for s in hainan.ROSTER[:SMALL]}
    assert roles == {
        hainan.DEMO,
        hainan.NORMAL,
        hainan.LAGGING,
        hainan.CAP_BREAKER,
        hainan.LATE_HEAVY,
        hainan.LATE_LIGHT,
    }


def test_departments_grow_with_the_hospital_and_the_demo_login_has_cardiology(small: Province) -> None:
    for inst, code, name in rows(small, "departments"):
        assert hainan.DEPARTMENTS[code] == name
        assert inst in small.institutions
    per = departments()
    assert "XNK" in per["H46010600001"]
    levels = {c: s.level for c, s in zip(hainan.INSTITUTION_CODES, hainan.ROSTER, strict=True)}
    mean = {
        lv: sum(len(d) for c, d in per.items() if levels[c] == lv) / sum(levels[c] == lv for c in per)
        for lv in (1, 2, 3)
    }
    assert mean[3] > mean[2] > mean[1]


def test_products_carry_the_quoted_prices_and_valid_codes_and_packs() -> None:
    catalogue = {(i.batch.code, i.drug.code): i for i in items()}
    assert len(catalogue) == 39
    assert len({i.batch.code for i in catalogue.values()}) == 4
    quoted = {"AML5": ("5mg×14片/盒", "2.80"), "ATV20": ("20mg×7片/盒", "2.38"), "CLP75": ("75mg×7片/盒", "17.81")}
    for code, (pack, price) in quoted.items():
        winner = catalogue[("GJ-4+7-HN", code)].selected[0]
        assert (winner.pack, winner.price) == (pack, Decimal(price))
    lipitor = next(p for p in catalogue[("GJ-4+7-HN", "ATV20")].same if p.originator)
    assert lipitor.code == "XC10AAA067A001020101187"
    products = [p for i in catalogue.values() for p in i.products]
    assert len({p.code for p in products}) == len(products)
    for p in products:
        assert len(p.code) == 23
        assert parse_pack(p.pack).pack_size == p.pack_size
    kinds = Counter(p.kind for p in products)
    assert kinds[SELECTED] == 41
    assert kinds["same_generic"] > 39
    assert kinds["substitute"] > 20


def test_dispensing_lines_have_departments_prescribers_and_icd10_codes(small: Province) -> None:
    departments = {(r[0], r[1]) for r in rows(small, "departments")}
    lines = rows(small, "dispensing")
    assert lines
    for line in lines[::97]:
        assert (line[1], line[2]) in departments
        assert re.fullmatch(r"[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?", line[7])
        assert line[8].startswith(line[2])
        assert re.fullmatch(r"[0-9a-f]{16}", line[9])


def test_the_supply_interruption_is_a_constant_a_register_can_load() -> None:
    it = SUPPLY_INTERRUPTION
    assert (it.batch_code, it.item_code) == ("GJ-4+7-HN", "CLP75")
    assert (it.start, it.end) == (dt.date(2026, 7, 1), dt.date(2026, 8, 31))
    assert it.institution_codes[0] == "H46010600001"
    assert len(it.institution_codes) == 5
    assert it.product_code == next(i for i in items() if i.drug.code == "CLP75").selected[0].code
    assert set(it.rows()[0]) == set(INTERRUPTION_SCHEMA.names)
    assert scenarios(institutions=SMALL).interruption.institution_codes == (
        "H46010600001",
        "H46010500002",
        "H46010600008",
    )


def test_interrupted_institutions_get_none_of_the_product_and_buy_other_makers(small: Province) -> None:
    it = small.scenarios.interruption
    clopidogrel = {p.code: p.kind for p in next(i for i in items() if i.drug.code == it.item_code).products}
    bought: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for line in rows(small, "purchases"):
        if line[1] in it.institution_codes and line[2] in clopidogrel:
            bought[(line[1], line[5][:7])][clopidogrel[line[2]]] += int(line[6])
    for inst in it.institution_codes:
        for month in ("2026-07", "2026-08"):
            assert bought[(inst, month)][SELECTED] == 0
        during = sum(bought[(inst, m)]["same_generic"] for m in ("2026-07", "2026-08"))
        before = sum(bought[(inst, m)]["same_generic"] for m in ("2026-05", "2026-06"))
        assert during > 3 * max(before, 1)


def test_agreements_are_the_prior_year_base_times_the_share_of_the_winners(small: Province) -> None:
    agreements = rows(small, "agreements")
    assert agreements
    shares = {"GJ-4+7-HN/ATV20": "70%", "GJ-4+7-HN/CLP75": "60%", "GJ-4+7-HN/ETV05": "50%", "GJ-2-HN/MET500": "80%"}
    for batch, item, inst, year, start, end, agreed, base, ratio, product in agreements:
        assert agreed == ""
        assert Decimal(base) > 0
        assert dt.date.fromisoformat(end) > dt.date.fromisoformat(start)
        if f"{batch}/{item}" in shares:
            assert ratio == shares[f"{batch}/{item}"]
        assert int(year) >= 1
        assert inst in small.institutions
        assert product == "" or item in {"RSV10", "MET500"}


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"institutions": 7}, "institutions"), ({"as_of": dt.date(2024, 6, 30)}, "as_of")]
)
def test_sizes_and_dates_outside_the_supported_range_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [DEFAULT_SEED, 7])
def test_only_the_late_payers_leave_lines_unpaid_past_their_deadline(seed: int) -> None:
    province = generate(seed=seed, institutions=SMALL)
    paid: defaultdict[str, Decimal] = defaultdict(Decimal)
    for _pid, line, _inst, _on, amount in rows(province, "payments"):
        paid[line] += Decimal(amount)
    late: Counter[str] = Counter()
    for line, inst, *_rest, accepted, _qty, _price, amount, _distributor in rows(province, "purchases"):
        year, month = int(accepted[:4]), int(accepted[5:7])
        due = dt.date(year + month // 12, month % 12 + 1, 1) + dt.timedelta(days=40)
        due = due.replace(day=1) - dt.timedelta(days=1)  # last day of the month after acceptance
        if due < DEMO_AS_OF and paid[line] < Decimal(amount):
            late[inst] += 1
    scen = province.scenarios
    assert set(late) == {scen.late_heavy, scen.late_light}
