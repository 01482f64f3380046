"""ICD-10 chapters (I–XXII) of a diagnosis code, with their Chinese names, for the diagnosis mix (R-H7).

Pure Python. A code is read from its first three characters after dropping spaces and dots and
upper-casing: a letter and two digits (``I10``, ``i10.x00x002`` of the national clinical version,
``J18.900`` → ``J18``). Chapters follow WHO ICD-10 (2019) and its Chinese edition (GB/T 14396);
codes in none of the ranges (``D49``, ``H96``, ``K94``, ``U99``…) or unreadable ones map to None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Chapter:
    number: int
    roman: str
    first: str  # first three-character category, inclusive
    last: str  # last three-character category, inclusive
    name_zh: str
    name_en: str

    @property
    def label_zh(self) -> str:
        """``第九章 循环系统疾病``."""
        return f"第{_ZH_NUMERALS[self.number]}章 {self.name_zh}"

    @property
    def range(self) -> str:
        return f"{self.first}–{self.last}"


_ZH_NUMERALS = {
    1: "一",
    2: "二",
    3: "三",
    4: "四",
    5: "五",
    6: "六",
    7: "七",
    8: "八",
    9: "九",
    10: "十",
    11: "十一",
    12: "十二",
    13: "十三",
    14: "十四",
    15: "十五",
    16: "十六",
    17: "十七",
    18: "十八",
    19: "十九",
    20: "二十",
    21: "二十一",
    22: "二十二",
}

CHAPTERS: tuple[Chapter, ...] = (
    Chapter(1, "I", "A00", "B99", "某些传染病和寄生虫病", "Certain infectious and parasitic diseases"),
    Chapter(2, "II", "C00", "D48", "肿瘤", "Neoplasms"),
    Chapter(
        3,
        "III",
        "D50",
        "D89",
        "血液及造血器官疾病和某些涉及免疫机制的疾患",
        "Diseases of the blood and blood-forming organs and certain disorders involving the immune mechanism",
    ),
    Chapter(4, "IV", "E00", "E90", "内分泌、营养和代谢疾病", "Endocrine, nutritional and metabolic diseases"),
    Chapter(5, "V", "F00", "F99", "精神和行为障碍", "Mental and behavioural disorders"),
    Chapter(6, "VI", "G00", "G99", "神经系统疾病", "Diseases of the nervous system"),
    Chapter(7, "VII", "H00", "H59", "眼和附器疾病", "Diseases of the eye and adnexa"),
    Chapter(8, "VIII", "H60", "H95", "耳和乳突疾病", "Diseases of the ear and mastoid process"),
    Chapter(9, "IX", "I00", "I99", "循环系统疾病", "Diseases of the circulatory system"),
    Chapter(10, "X", "J00", "J99", "呼吸系统疾病", "Diseases of the respiratory system"),
    Chapter(11, "XI", "K00", "K93", "消化系统疾病", "Diseases of the digestive system"),
    Chapter(12, "XII", "L00", "L99", "皮肤和皮下组织疾病", "Diseases of the skin and subcutaneous tissue"),
    Chapter(
        13,
        "XIII",
        "M00",
        "M99",
        "肌肉骨骼系统和结缔组织疾病",
        "Diseases of the musculoskeletal system and connective tissue",
    ),
    Chapter(14, "XIV", "N00", "N99", "泌尿生殖系统疾病", "Diseases of the genitourinary system"),
    Chapter(15, "XV", "O00", "O99", "妊娠、分娩和产褥期", "Pregnancy, childbirth and the puerperium"),
    Chapter(
        16, "XVI", "P00", "P96", "起源于围生期的某些情况", "Certain conditions originating in the perinatal period"
    ),
    Chapter(
        17,
        "XVII",
        "Q00",
        "Q99",
        "先天性畸形、变形和染色体异常",
        "Congenital malformations, deformations and chromosomal abnormalities",
    ),
    Chapter(
        18,
        "XVIII",
        "R00",
        "R99",
        "症状、体征和临床与实验室异常所见，不可归类在他处者",
        "Symptoms, signs and abnormal clinical and laboratory findings, not elsewhere classified",
    ),
    Chapter(
        19,
        "XIX",
        "S00",
        "T98",
        "损伤、中毒和外因的某些其他后果",
        "Injury, poisoning and certain other consequences of external causes",
    ),
    Chapter(20, "XX", "V01", "Y98", "疾病和死亡的外因", "External causes of morbidity and mortality"),
    Chapter(
        21,
        "XXI",
        "Z00",
        "Z99",
        "影响健康状态和与保健机构接触的因素",
        "Factors influencing health status and contact with health services",
    ),
    Chapter(22, "XXII", "U00", "U85", "用于特殊目的的编码", "Codes for special purposes"),
)
BY_ROMAN: dict[str, Chapter] = {c.roman: c for c in CHAPTERS}

UNKNOWN_ZH = "未注明或无法识别的诊断"
UNKNOWN_EN = "no or unreadable diagnosis"

_CATEGORY = re.compile(r"[A-Z][0-9]{2}")
_DROP = re.compile(r"[\s.]")


def category(code: str | None) -> str | None:
    """The three-character category of ``code`` (``i10.x00`` → ``I10``), or None when unreadable."""
    if not code:
        return None
    head = _DROP.sub("", code).upper()[:3]
    return head if _CATEGORY.fullmatch(head) else None


def chapter_of(code: str | None) -> Chapter | None:
    """The ICD-10 chapter of a diagnosis code, or None (no code, unreadable, or in no chapter)."""
    head = category(code)
    if head is None:
        return None
    for chapter in CHAPTERS:
        if chapter.first <= head <= chapter.last:
            return chapter
    return None


def chapter_label_zh(roman: str | None) -> str:
    """``第九章 循环系统疾病`` for ``IX``; the unknown label for None or an unknown numeral."""
    chapter = BY_ROMAN.get(roman or "")
    return chapter.label_zh if chapter else UNKNOWN_ZH
