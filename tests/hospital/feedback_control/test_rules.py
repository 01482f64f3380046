"""Pure rules of the workflows: ICD-10 chapters, anomaly reasons (R-H7), appraisal periods (R-H5)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from jicai.hospital.control import rules
from jicai.hospital.control.icd10 import CHAPTERS, UNKNOWN_ZH, category, chapter_label_zh, chapter_of
from jicai.hospital.control.queries import MonthRange, essential_kept, month_index, month_label
from jicai.hospital.feedback.periods import parse_period

D = Decimal


# --------------------------------------------------------------------------------------- ICD-10


@pytest.mark.parametrize(
    ("code", "roman"),
    [
        ("A00", "I"),
        ("B99.9", "I"),
        ("C00", "II"),
        ("D48.9", "II"),  # last of the neoplasms
        ("D50", "III"),  # first of the blood diseases
        ("D89", "III"),
        ("E00", "IV"),
        ("E78.5", "IV"),
        ("E90", "IV"),
        ("F99", "V"),
        ("G00", "VI"),
        ("H59.9", "VII"),  # eye ends at H59
        ("H60", "VIII"),  # ear begins at H60
        ("H95", "VIII"),
        ("I00", "IX"),
        ("i10.x00x002", "IX"),  # national clinical version, lower case
        ("I99", "IX"),
        ("J00", "X"),
        ("J18.900", "X"),
        ("K93", "XI"),
        ("L00", "XII"),
        ("M99", "XIII"),
        ("N39.0", "XIV"),
        ("O99", "XV"),
        ("P96", "XVI"),
        ("Q00", "XVII"),
        ("R50.9", "XVIII"),
        ("S00", "XIX"),
        ("T98", "XIX"),  # injury runs over two letters
        ("V01", "XX"),
        ("Y98", "XX"),
        ("Z00", "XXI"),
        ("Z99", "XXI"),
        ("U07.1", "XXII"),
        (" I 10 ", "IX"),
    ],
)
def test_chapter_boundaries(code: str, roman: str) -> None:
    found = chapter_of(code)
    assert found is not None
    assert found.roman == roman


@pytest.mark.parametrize("code", ["D49", "H96", "K94", "P97", "U99", "E99", "V00", "Y99", "", None, "10A", "I1", "??"])
def test_codes_outside_every_chapter_or_unreadable(code: str | None) -> None:
    assert chapter_of(code) is None


def test_chapter_labels_in_chinese() -> None:
    assert chapter_label_zh("IX") == "第九章 循环系统疾病"
    assert chapter_label_zh("XXII") == "第二十二章 用于特殊目的的编码"
    assert chapter_label_zh(None) == UNKNOWN_ZH
    assert chapter_label_zh("XXX") == UNKNOWN_ZH
    assert category("e78.500") == "E78"
    assert [c.number for c in CHAPTERS] == list(range(1, 23))
    assert CHAPTERS[8].range == "I00–I99"


# ------------------------------------------------------------------------------- anomaly rules


def product(**kw: object) -> rules.ProductFigures:
    base: dict[str, object] = {"product_code": "P", "kind": rules.SUBSTITUTE}
    base.update(kw)
    return rules.ProductFigures(**base)  # type: ignore[arg-type]


TH = rules.Thresholds()  # growth 50 %, 100 units; share 50 %; cap 1; diagnosis 50 %


def codes(found: list[rules.Reason]) -> list[str]:
    return [r.code for r in found]


def test_thresholds_are_the_cycles() -> None:
    from jicai.monitoring.cycle import GROWTH_MIN_QTY, GROWTH_THRESHOLD

    assert TH.growth == GROWTH_THRESHOLD == D("0.5")
    assert TH.growth_min_qty == GROWTH_MIN_QTY == 100
    assert TH.as_dict()["cap_ratio"] == "1"
    assert rules.Thresholds(cap_ratio=None).as_dict()["cap_ratio"] is None


def test_growth_above_the_threshold_with_the_minimum_quantity() -> None:
    unit = rules.UnitFigures(selected=D(1000), non_selected=D(0), substitute=D(151))
    # 151 vs 100 last month: +51 % > 50 %
    found = rules.reasons(product(qty=D(151), last=D(151), prev=D(100)), unit, TH, month="2023-04")
    assert codes(found) == ["growth"]
    assert "环比增长 51.0%" in found[0].message_zh
    assert found[0].figures == {"month": "2023-04", "qty": "151", "mom": "0.5100"}


def test_growth_exactly_at_the_threshold_is_not_an_anomaly() -> None:
    unit = rules.UnitFigures(selected=D(1000), non_selected=D(0), substitute=D(150))
    assert rules.reasons(product(qty=D(150), last=D(150), prev=D(100)), unit, TH, month="m") == []


def test_growth_below_the_minimum_quantity_is_not_judged() -> None:
    unit = rules.UnitFigures(selected=D(1000), non_selected=D(0), substitute=D(99))
    assert rules.reasons(product(qty=D(99), last=D(99), prev=D(10), year_ago=D(1)), unit, TH, month="m") == []


def test_year_on_year_growth_alone_counts() -> None:
    unit = rules.UnitFigures(selected=D(1000), non_selected=D(0), substitute=D(300))
    found = rules.reasons(product(qty=D(300), last=D(300), prev=D(300), year_ago=D(100)), unit, TH, month="m")
    assert codes(found) == ["growth"]
    assert "同比增长 200.0%" in found[0].message_zh
    assert "环比" not in found[0].message_zh


def test_substitute_share_above_the_threshold() -> None:
    # 101 of 200 = 50.5 % > 50 %; 100 of 200 = 50 % is not
    unit = rules.UnitFigures(selected=D(99), non_selected=D(0), substitute=D(101))
    found = rules.reasons(product(qty=D(101)), unit, TH, month="m")
    assert codes(found) == ["share"]
    assert "同类药品占该品种用量的 50.5%" in found[0].message_zh
    even = rules.UnitFigures(selected=D(100), non_selected=D(0), substitute=D(100))
    assert rules.reasons(product(qty=D(100)), even, TH, month="m") == []


def test_non_selected_over_the_cap_ratio() -> None:
    unit = rules.UnitFigures(selected=D(1200), non_selected=D(1500), substitute=D(0))
    found = rules.reasons(product(kind=rules.NON_SELECTED, qty=D(1500)), unit, TH, month="m")
    assert codes(found) == ["cap"]
    assert found[0].message_zh.startswith("非中选药品用量 1500 超过中选药品用量 1200 的 1 倍")
    # at the cap exactly: no anomaly
    at_cap = rules.UnitFigures(selected=D(1500), non_selected=D(1500), substitute=D(0))
    assert rules.reasons(product(kind=rules.NON_SELECTED, qty=D(1500)), at_cap, TH, month="m") == []


def test_non_selected_without_a_cap_falls_back_to_the_share_rule() -> None:
    unit = rules.UnitFigures(selected=D(100), non_selected=D(300), substitute=D(0))
    found = rules.reasons(
        product(kind=rules.NON_SELECTED, qty=D(300)), unit, rules.Thresholds(cap_ratio=None), month="m"
    )
    assert codes(found) == ["share"]
    assert found[0].message_zh.startswith("非中选药品占该品种用量的 75.0%")


def test_diagnosis_mix_far_from_the_selected_drug() -> None:
    # the product: 80 % respiratory, 20 % circulatory; the selected drug: all circulatory → distance 80 %
    unit = rules.UnitFigures(selected=D(500), non_selected=D(0), substitute=D(100), selected_mix={"IX": D(500)})
    p = product(qty=D(100), mix={"X": D(80), "IX": D(20)})
    found = rules.reasons(p, unit, TH, month="m")
    assert codes(found) == ["diagnosis"]
    assert "第十章 呼吸系统疾病 占本品用量 80.0%，中选药品仅 0.0%" in found[0].message_zh
    assert found[0].figures["distance"] == "0.8000"


def test_diagnosis_mix_close_or_too_small_is_not_an_anomaly() -> None:
    close = rules.UnitFigures(
        selected=D(500), non_selected=D(0), substitute=D(100), selected_mix={"IX": D(300), "X": D(200)}
    )
    assert rules.reasons(product(qty=D(100), mix={"IX": D(50), "X": D(50)}), close, TH, month="m") == []
    small = rules.UnitFigures(selected=D(50), non_selected=D(0), substitute=D(100), selected_mix={"IX": D(50)})
    assert "diagnosis" not in codes(rules.reasons(product(qty=D(100), mix={"X": D(100)}), small, TH, month="m"))
    # prescriber rows carry no mix: never judged
    none = rules.UnitFigures(selected=D(500), non_selected=D(0), substitute=D(100))
    assert rules.reasons(product(qty=D(100), mix={"X": D(100)}), none, TH, month="m") == []
    # no diagnosed use of the product in the range
    assert rules.reasons(product(qty=D(100)), close, TH, month="m") == []


def test_divergence_by_hand() -> None:
    distance, top, p, q = rules.divergence({"I": D(1), None: D(1)}, {"I": D(3), "II": D(1)})
    # ½(|½ − ¾| + |½ − 0| + |0 − ¼|) = ½ · 1 = 0.5; the unknown chapter is the most over-represented
    assert (distance, top, p, q) == (D("0.5"), None, D("0.5"), D(0))


def test_growth_and_share_helpers() -> None:
    assert rules.growth(D(150), D(100)) == D("0.5")
    assert rules.growth(D(1), D(0)) is None
    assert rules.share(D(1), D(3)) == D("0.3333")
    assert rules.share(D(1), D(0)) is None


def test_essential_medicine_is_kept_only_when_the_selected_product_is_not_one() -> None:
    essential = {"ROSU": True, "SEL": False, "SEL2": True}
    assert essential_kept("ROSU", ["SEL"], essential)
    assert not essential_kept("ROSU", ["SEL", "SEL2"], essential)  # a selected product is essential
    assert not essential_kept("NS", ["SEL"], essential)  # not an essential medicine
    assert not essential_kept("ROSU", ["SEL"], essential, applies=False)  # the profile does not keep them


# ------------------------------------------------------------------------------- months, periods


def test_month_ranges() -> None:
    r = MonthRange.of("2022-12", "2023-02")
    assert r.months == ["2022-12", "2023-01", "2023-02"]
    assert (r.start, r.end) == (dt.date(2022, 12, 1), dt.date(2023, 2, 28))
    assert month_label(month_index("2024-02")) == "2024-02"
    for bad in (("2023-13", "2023-13"), ("2023-04", "2023-01"), ("2020-01", "2023-12"), ("23-04", "23-04")):
        with pytest.raises(ValueError, match=r"month|first|36"):
            MonthRange.of(*bad)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2023-03", dt.date(2023, 3, 1), dt.date(2023, 3, 31)),
        ("2024-02", dt.date(2024, 2, 1), dt.date(2024, 2, 29)),
        ("2023-q1", dt.date(2023, 1, 1), dt.date(2023, 3, 31)),
        ("2023-Q4", dt.date(2023, 10, 1), dt.date(2023, 12, 31)),
        ("2023-H1", dt.date(2023, 1, 1), dt.date(2023, 6, 30)),
        ("2023-H2", dt.date(2023, 7, 1), dt.date(2023, 12, 31)),
        ("2023", dt.date(2023, 1, 1), dt.date(2023, 12, 31)),
    ],
)
def test_appraisal_periods(text: str, start: dt.date, end: dt.date) -> None:
    period = parse_period(text)
    assert (period.start, period.end) == (start, end)
    assert period.label == text.upper()


@pytest.mark.parametrize("text", ["2023-13", "2023-Q5", "2023-H3", "1999", "", "2023/03", "2023-00"])
def test_bad_periods(text: str) -> None:
    with pytest.raises(ValueError, match=r"period|month|year"):
        parse_period(text)
