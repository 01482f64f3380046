"""The formulary review as an Excel workbook (Chinese headers): one row per product with the advice,
its reason and figures, and the committee's decision (R-H6)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.utils import timezone

from jicai.hospital.formulary.queries import ACTION_ZH, KIND_ZH, PRICE_SOURCE_ZH, REASON_ZH, TRIGGER_ZH
from jicai.hospital.models import FormularyEntry, FormularyReview
from jicai.hospital.shell import Sheet, workbook_bytes

HEADERS = (
    "品种编码",
    "通用名",
    "药品编码",
    "规格包装",
    "生产企业",
    "类别",
    "通过一致性评价",
    "原研/参比",
    "国家基本药物",
    "单价（元/品种单位）",
    "价格来源",
    "参照中选药品",
    "中选单价（元）",
    "近12个月采购量",
    "近12个月发药量",
    "建议",
    "建议理由",
    "药事会决定",
    "决定说明",
    "会议",
    "记录人",
    "记录时间",
)


def _yes(flag: Any) -> str:
    return "是" if flag else "否"


def entry_row(entry: FormularyEntry) -> list[Any]:
    d = entry.detail or {}
    product = entry.product
    decided_at = timezone.localtime(entry.decided_at).strftime("%Y-%m-%d %H:%M") if entry.decided_at else ""
    return [
        entry.item.item_code,
        product.generic_name,
        product.code,
        " ".join(x for x in (product.strength, product.pack) if x),
        product.manufacturer,
        KIND_ZH.get(d.get("kind", ""), d.get("kind", "")),
        _yes(product.ce_passed),
        _yes(product.is_originator or product.is_reference),
        _yes(product.is_essential),
        d.get("unit_price") or "",
        PRICE_SOURCE_ZH.get(d.get("price_source") or "", ""),
        d.get("selected_code") or "",
        d.get("selected_unit_price") or "",
        d.get("purchased_qty") or "",
        d.get("dispensed_qty") or "",
        ACTION_ZH.get(entry.advice, entry.advice),
        d.get("reason_zh") or REASON_ZH.get(entry.reason, entry.reason),
        ACTION_ZH.get(entry.decision, entry.decision) if entry.decision else "",
        entry.decision_note,
        d.get("decision_meeting", ""),
        entry.decided_by.get_username() if entry.decided_by else "",
        decided_at,
    ]


def review_workbook(review: FormularyReview, entries: Sequence[FormularyEntry]) -> bytes:
    rules = next((e.detail.get("rules") for e in entries if e.detail.get("rules")), {}) or {}
    info = [
        ("医疗机构", str(review.institution)),
        ("集采批次", str(review.batch)),
        ("评价时点", TRIGGER_ZH.get(review.trigger, review.trigger)),
        ("评价日期", review.as_of.isoformat()),
        ("药事会会议", review.committee_meeting),
        (
            "规则参数",
            f"非一致性评价仿制药：{ACTION_ZH.get(rules.get('non_ce_action', ''), '')}；"
            f"高于中选价仿制药：{ACTION_ZH.get(rules.get('pricier_action', ''), '')}；"
            f"保留基本药物：{_yes(rules.get('keep_essential'))}（政策配置 {rules.get('profile', '')}）",
        ),
        ("依据", "新疆医院药学专家共识 五(一)、五(五)；R-H6、R-H9"),
    ]
    sheet = Sheet(
        title="目录评价",
        heading="医院药品目录评价与药事会决定",
        headers=HEADERS,
        rows=[entry_row(e) for e in entries],
        info=info,
    )
    return workbook_bytes([sheet])
