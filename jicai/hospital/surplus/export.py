"""The distribution for finance as Excel (Chinese headers): the three pools, every recipient's
amount with a subtotal per pool, and the totals row (R-G3)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.utils import timezone

from jicai.hospital.models import SurplusDistribution, SurplusShare
from jicai.hospital.shell import Sheet, workbook_bytes
from jicai.hospital.surplus.queries import BASIS_ZH, POOL_ZH, POOLS, pool_totals

STATUS_ZH = {"draft": "草稿", "approved": "已审批"}


def _source(params: dict[str, Any]) -> str:
    src = params.get("split_source") or {}
    if src.get("kind") == "profile":
        return (
            f"政策配置 {src.get('profile')}（{src.get('layer')}，{src.get('effective_from')} 起）：{src.get('source')}"
        )
    return "未配置，采用新疆专家共识默认值 60/30/10（XJ 五(七)）"


def distribution_workbook(dist: SurplusDistribution, rows: Sequence[SurplusShare]) -> bytes:
    p = dist.params or {}
    split = p.get("split", {})
    totals = pool_totals(rows)
    approved = ""
    if dist.approved_at:
        who = dist.approved_by.get_username() if dist.approved_by else ""
        approved = f"{who} {timezone.localtime(dist.approved_at):%Y-%m-%d %H:%M}"
    info = [
        ("医疗机构", str(dist.institution)),
        ("分配期间", dist.period),
        ("使用统计区间", f"{p.get('from', '')} 至 {p.get('to', '')}"),
        ("留用金额（元）", dist.amount),
        ("分配比例来源", _source(p)),
        ("医师分配依据", BASIS_ZH.get(p.get("basis", ""), "")),
        ("药学人员分配方式", "按权重" if p.get("pharmacy_mode") == "weighted" else "平均分配"),
        ("未关联医师的中选药品发药", p.get("use", {}).get("unattributed", "0")),
        ("状态", STATUS_ZH.get(dist.status, dist.status)),
        ("审批", approved),
    ]
    summary = Sheet(
        title="分配汇总",
        heading="医保资金结余留用分配汇总",
        headers=("分配池", "比例", "金额（元）", "人数"),
        info=info,
        rows=[
            [POOL_ZH[pool], split.get(pool, ""), totals[pool], sum(1 for r in rows if r.pool == pool)] for pool in POOLS
        ],
    )
    summary.rows.append(["合计", "1", sum(totals.values(), Decimal(0)), len(rows)])
    summary.bold_rows.add(len(summary.rows) - 1)
    detail = Sheet(title="分配明细", headers=("分配池", "领取人（工号）", "使用量/权重", "金额（元）"))
    for pool in POOLS:
        of_pool = [r for r in rows if r.pool == pool]
        for r in of_pool:
            detail.rows.append([POOL_ZH[pool], r.recipient, r.weight, r.amount])
        detail.rows.append([f"{POOL_ZH[pool]} 小计", "", "", totals[pool]])
        detail.bold_rows.add(len(detail.rows) - 1)
    detail.rows.append(["合计", "", "", sum(totals.values(), Decimal(0))])
    detail.bold_rows.add(len(detail.rows) - 1)
    return workbook_bytes([summary, detail])
