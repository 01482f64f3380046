"""The demo province's institutions and departments: Hainan (460000), its county-level regions.

Region codes are real GB/T 2260 codes. Institution codes are ``H`` + region + a five-digit serial, so
the same roster comes out whatever the seed (the seed changes sizes, departments and activity). The
first eight entries carry every planted scenario, so a small province (``institutions=8``) still
shows them all; larger ones add the rest in order.
"""

from __future__ import annotations

from dataclasses import dataclass

REGION = "460000"

REGIONS: dict[str, str] = {
    "460105": "海口市秀英区",
    "460106": "海口市龙华区",
    "460107": "海口市琼山区",
    "460108": "海口市美兰区",
    "460202": "三亚市海棠区",
    "460203": "三亚市吉阳区",
    "460204": "三亚市天涯区",
    "460205": "三亚市崖州区",
    "460400": "儋州市",
    "469001": "五指山市",
    "469002": "琼海市",
    "469005": "文昌市",
    "469006": "万宁市",
    "469007": "东方市",
    "469021": "定安县",
    "469022": "屯昌县",
    "469023": "澄迈县",
    "469024": "临高县",
    "469025": "白沙黎族自治县",
    "469026": "昌江黎族自治县",
    "469027": "乐东黎族自治县",
    "469028": "陵水黎族自治县",
    "469029": "保亭黎族苗族自治县",
    "469030": "琼中黎族苗族自治县",
}

# Roles of the planted scenarios (see jicai.demo.province).
NORMAL = "normal"
DEMO = "demo"  # the demo logins' hospital: lags on two items
LAGGING = "lagging"  # prescribers move to substitutes: behind schedule on most items
CAP_BREAKER = "cap_breaker"  # buys more non-selected than selected
LATE_HEAVY = "late_heavy"  # pays months late, leaves recent lines unpaid
LATE_LIGHT = "late_light"  # pays weeks late, some recent lines unpaid


@dataclass(frozen=True)
class Site:
    """One institution of the roster; ``code`` is derived from its region and place in the roster."""

    region: str
    name: str
    kind: str  # public / military / private / primary
    level: int
    role: str = NORMAL
    size: float = 1.0  # relative volume before the seed's noise

    def code(self, serial: int) -> str:
        return f"H{self.region}{serial:05d}"


_HOSPITALS = (
    Site("460106", "海南省人民医院", "public", 3, DEMO, 1.4),
    Site("460105", "海口市人民医院", "public", 3, NORMAL, 1.0),
    Site("460108", "海口市中医医院", "public", 2, LATE_LIGHT, 0.45),
    Site("460202", "三亚市人民医院", "public", 3, LATE_HEAVY, 0.9),
    Site("460400", "儋州市第二人民医院", "public", 2, LAGGING, 0.6),
    Site("460107", "海口康宁医院", "private", 2, CAP_BREAKER, 0.25),
    Site("469002", "琼海市中医院", "public", 2, LAGGING, 0.55),
    Site("460106", "海口市龙华区城西镇卫生院", "primary", 1, NORMAL, 0.12),
    Site("460106", "海南医科大学第一附属医院", "public", 3, NORMAL, 1.2),
    Site("460105", "海南医科大学第二附属医院", "public", 3, NORMAL, 1.0),
    Site("460106", "海南省中医院", "public", 3, NORMAL, 0.7),
    Site("460203", "三亚中心医院（海南省第三人民医院）", "public", 3, NORMAL, 0.8),
    Site("460202", "解放军总医院海南医院", "military", 3, NORMAL, 0.6),
    Site("460400", "儋州市人民医院", "public", 3, NORMAL, 0.75),
    Site("469002", "琼海市人民医院", "public", 2, NORMAL, 0.5),
    Site("469005", "文昌市人民医院", "public", 2, NORMAL, 0.45),
    Site("469006", "万宁市人民医院", "public", 2, NORMAL, 0.4),
    Site("469007", "东方市人民医院", "public", 2, NORMAL, 0.4),
    Site("469001", "五指山市人民医院", "public", 2, NORMAL, 0.25),
    Site("469023", "澄迈县人民医院", "public", 2, NORMAL, 0.4),
    Site("469024", "临高县人民医院", "public", 2, NORMAL, 0.35),
    Site("469027", "乐东黎族自治县人民医院", "public", 2, LAGGING, 0.5),
    Site("469028", "陵水黎族自治县人民医院", "public", 2, NORMAL, 0.35),
    Site("469021", "定安县人民医院", "public", 2, NORMAL, 0.3),
    Site("469022", "屯昌县人民医院", "public", 2, NORMAL, 0.25),
    Site("460205", "三亚市崖州区人民医院", "public", 2, NORMAL, 0.25),
    Site("469005", "文昌市中医院", "public", 2, NORMAL, 0.2),
    Site("460107", "海口市第三人民医院", "public", 2, NORMAL, 0.35),
    Site("469030", "琼中黎族苗族自治县人民医院", "public", 2, NORMAL, 0.2),
    Site("469029", "保亭黎族苗族自治县人民医院", "public", 2, NORMAL, 0.2),
    Site("469025", "白沙黎族自治县人民医院", "public", 2, NORMAL, 0.2),
    Site("469026", "昌江黎族自治县人民医院", "public", 2, NORMAL, 0.25),
    Site("460108", "海口和康医院", "private", 2, NORMAL, 0.2),
    Site("460203", "三亚康桥医院", "private", 2, NORMAL, 0.15),
    Site("460400", "儋州博爱医院", "private", 2, NORMAL, 0.15),
    Site("460105", "海口仁和医院", "private", 1, NORMAL, 0.08),
)
_TOWNSHIPS = (
    ("460105", "海口市秀英区长流镇卫生院"),
    ("460105", "海口市秀英区石山镇中心卫生院"),
    ("460106", "海口市龙华区新坡镇卫生院"),
    ("460107", "海口市琼山区云龙镇卫生院"),
    ("460107", "海口市琼山区三门坡镇中心卫生院"),
    ("460108", "海口市美兰区演丰镇卫生院"),
    ("460203", "三亚市吉阳区红沙社区卫生服务中心"),
    ("460204", "三亚市天涯区凤凰社区卫生服务中心"),
    ("460400", "儋州市那大镇社区卫生服务中心"),
    ("460400", "儋州市白马井镇中心卫生院"),
    ("469001", "五指山市毛阳镇卫生院"),
    ("469002", "琼海市博鳌镇卫生院"),
    ("469002", "琼海市长坡镇中心卫生院"),
    ("469005", "文昌市龙楼镇卫生院"),
    ("469005", "文昌市会文镇卫生院"),
    ("469006", "万宁市和乐镇中心卫生院"),
    ("469007", "东方市感城镇中心卫生院"),
    ("469021", "定安县龙门镇卫生院"),
    ("469022", "屯昌县南坤镇卫生院"),
    ("469023", "澄迈县老城镇卫生院"),
    ("469024", "临高县新盈镇卫生院"),
    ("469027", "乐东黎族自治县黄流镇中心卫生院"),
    ("469028", "陵水黎族自治县英州镇卫生院"),
    ("469030", "琼中黎族苗族自治县湾岭镇卫生院"),
)
ROSTER: tuple[Site, ...] = _HOSPITALS + tuple(
    Site(region, name, "primary", 1, NORMAL, 0.1 if "中心" in name else 0.07) for region, name in _TOWNSHIPS
)
"""Sixty institutions of every kind and level; the first eight carry the planted scenarios."""

MIN_INSTITUTIONS = 8

INSTITUTION_CODES: tuple[str, ...] = tuple(site.code(serial) for serial, site in enumerate(ROSTER, start=1))

DEPARTMENTS: dict[str, str] = {
    "XNK": "心血管内科",
    "SJNK": "神经内科",
    "NFMK": "内分泌科",
    "HXNK": "呼吸与危重症医学科",
    "XHNK": "消化内科",
    "SNK": "肾内科",
    "ZLK": "肿瘤科",
    "GRK": "感染科",
    "LNBK": "老年医学科",
    "QKYX": "全科医学科",
    "FSMYK": "风湿免疫科",
    "JSK": "精神心理科",
    "PTWK": "普通外科",
    "GK": "骨科",
    "SJWK": "神经外科",
    "MNWK": "泌尿外科",
    "FCK": "妇产科",
    "EK": "儿科",
    "JZK": "急诊科",
    "ZZYXK": "重症医学科",
    "ZYK": "中医科",
    "KFYXK": "康复医学科",
    "PFK": "皮肤科",
    "EBHK": "耳鼻咽喉科",
    "YK": "眼科",
    "NK": "内科",
    "WK": "外科",
    "YFBJK": "预防保健科",
}
"""Department codes (pinyin initials, as HIS exports use) and names."""

TERTIARY_CORE = tuple(c for c in DEPARTMENTS if c not in {"NK", "WK", "YFBJK"})
SECONDARY_CORE = ("XNK", "SJNK", "NFMK", "HXNK", "XHNK", "PTWK", "GK", "FCK", "EK", "JZK", "ZYK", "NK")
SECONDARY_EXTRA = ("SNK", "LNBK", "GRK", "JSK", "KFYXK", "ZZYXK", "PFK", "EBHK", "YK", "MNWK", "ZLK")
PRIMARY_CORE = ("QKYX", "NK")
PRIMARY_EXTRA = ("ZYK", "EK", "WK", "YFBJK")
GENERAL = ("NK", "QKYX", "LNBK", "ZYK")
"""Where a prescription goes when the institution has none of the item's own departments."""
