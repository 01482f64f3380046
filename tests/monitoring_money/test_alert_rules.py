"""Alert derivation: the situations raised, stable keys, and messages with the numbers to act on."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pyarrow as pa

from jicai.monitoring.alerts_rules import (
    Labels,
    behind_schedule,
    cap_exceeded,
    overdue_payments,
    substitute_growth,
    tranche_fired,
    tranches_due,
    trigger_zh,
)
from jicai.monitoring.progress import PROGRESS_COLUMNS
from jicai.monitoring.substitutes import SUBSTITUTE_COLUMNS

D = Decimal
INST = "H46010800001"
INST2 = "H46020000002"
LABELS = Labels(institutions={INST: "海南省人民医院"}, items={("HN-N7", "A01"): "阿托伐他汀"})


def _table(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows])


def _progress(**kw: Any) -> dict[str, Any]:
    row = {
        "batch_code": "HN-N7",
        "item_code": "A01",
        "institution_code": INST,
        "region_code": "460108",
        "year": 1,
        "period_start": dt.date(2026, 1, 1),
        "period_end": dt.date(2026, 12, 31),
        "agreed_qty": D(10000),
        "counted_qty": D(2500),
        "completion": D("0.25"),
        "elapsed": D("0.5"),
        "status": "at_risk",
        "projected_qty": D(5000),
        "projected_completion": D("0.5"),
        "over_volume_qty": D(0),
        "profile": "national",
    }
    return row | kw


def test_behind_schedule_message_and_key() -> None:
    table = _table(
        PROGRESS_COLUMNS,
        [
            _progress(),
            _progress(
                institution_code=INST2, region_code="460200", status="behind", completion=D("0.42"), counted_qty=D(4200)
            ),
            _progress(institution_code="H46010800003", status="on_track", completion=D("0.5")),
            _progress(institution_code="H46010800004", status="completed", completion=D("1.1")),
        ],
    )
    alerts = behind_schedule(table, labels=LABELS)
    assert [a.key for a in alerts] == [f"behind:HN-N7:{INST}:1", f"behind:HN-N7:{INST2}:1"]
    at_risk, behind = alerts
    assert at_risk.kind == "behind_schedule"
    assert at_risk.severity == "critical"
    assert behind.severity == "warning"
    head = "海南省人民医院 批次 HN-N7 第1协议年 1 个品种落后于进度，其中 1 个严重落后，时间进度 50%"
    assert head in at_risk.message_zh
    assert "阿托伐他汀 完成率 25%（应达 45%）" in at_risk.message_zh
    assert "阿托伐他汀 25% (expected 45%)" in at_risk.message_en
    assert "完成率 42%（应达 45%）" in behind.message_zh
    assert "严重落后" not in behind.message_zh
    assert behind.institution_code == INST2
    assert behind.region_code == "460200"
    assert behind.item_code is None
    items = json.loads(behind.payload())["items"]
    assert [(i["item_code"], i["status"], D(i["remaining_qty"])) for i in items] == [("A01", "behind", D(5800))]
    # A region's own ratio (by profile) changes what "expected" means.
    custom = behind_schedule(table, behind_ratio={"national": D("0.80")})
    assert "应达 40%" in custom[0].message_zh
    pairs = behind_schedule(table, behind_ratio={"national": (D("0.80"), D("0.60"))})  # progress_thresholds
    assert "应达 40%" in pairs[0].message_zh
    # Same situation, same keys on another run.
    assert [a.key for a in behind_schedule(table)] == [a.key for a in alerts]


def test_behind_schedule_groups_an_institutions_items_of_a_batch() -> None:
    # given four items of one batch behind at one institution, one of them at risk, and one on track
    rows = [
        _progress(item_code="A01", status="behind", completion=D("0.42")),
        _progress(item_code="A02", status="at_risk", completion=D("0.20")),
        _progress(item_code="A03", status="behind", completion=D("0.30")),
        _progress(item_code="A04", status="behind", completion=D("0.44")),
        _progress(item_code="A05", status="on_track", completion=D("0.50")),
        _progress(batch_code="HN-N8", item_code="B01", status="behind", completion=D("0.40")),
    ]
    # when
    alerts = behind_schedule(_table(PROGRESS_COLUMNS, rows), labels=LABELS, as_of=dt.date(2026, 6, 30))
    # then one alert per batch, naming the three items furthest behind, with every item in the data
    assert [a.key for a in alerts] == [f"behind:HN-N7:{INST}:1", f"behind:HN-N8:{INST}:1"]
    first = alerts[0]
    assert first.severity == "critical"
    assert "4 个品种落后于进度，其中 1 个严重落后" in first.message_zh
    assert first.message_zh.index("A02 完成率 20%") < first.message_zh.index("A03 完成率 30%")
    assert "阿托伐他汀 完成率 42%" in first.message_zh
    assert "A04" not in first.message_zh
    assert "等 4 个品种" in first.message_zh
    assert "and 1 more" in first.message_en
    assert first.message_zh.endswith("（数据截至 2026-06-30）")
    data = json.loads(first.payload())
    assert [i["item_code"] for i in data["items"]] == ["A01", "A02", "A03", "A04"]
    assert (data["behind"], data["at_risk"], data["elapsed"]) == (4, 1, "0.5")
    assert D(data["items"][1]["expected_completion"]) == D("0.45")
    assert alerts[1].severity == "warning"


def _month(month: str, **kw: Any) -> dict[str, Any]:
    row = {
        "institution_code": INST,
        "batch_code": "HN-N7",
        "item_code": "A01",
        "month": month,
        "selected_qty": D(1000),
        "non_selected_qty": D(50),
        "substitute_qty": D(0),
        "exempt_qty": D(0),
        "total_qty": D(1050),
        "selected_share": D("0.95"),
        "mom_growth": None,
        "yoy_growth": None,
        "cum_selected_qty": D(1000),
        "cum_non_selected_qty": D(50),
        "cap_limit": D(1000),
        "cap_exceeded": False,
    }
    return row | kw


def test_cap_exceeded_latest_month_and_episode_key() -> None:
    over = {"cap_exceeded": True, "cum_selected_qty": D(3000), "cum_non_selected_qty": D(3400), "cap_limit": D(3000)}
    rows = [
        _month("2026-01", cap_exceeded=True),  # an earlier breach, since ended
        _month("2026-02"),
        _month("2026-03", **over),
        _month("2026-04", **over),
        _month("2026-03", institution_code=INST2, cap_exceeded=True),  # over in March, fine again in April
        _month("2026-04", institution_code=INST2),
    ]
    alerts = cap_exceeded(_table(SUBSTITUTE_COLUMNS, rows), labels=LABELS)
    assert [a.key for a in alerts] == [f"cap:HN-N7:A01:{INST}:2026-03"]  # the breach runs since March
    alert = alerts[0]
    assert alert.kind == "cap_exceeded"
    assert alert.region_code == "460108"
    assert "截至 2026-04 非中选产品累计用量 3,400，超过上限 3,000" in alert.message_zh
    assert "超出 400" in alert.message_zh
    assert "自 2026-03 起超限" in alert.message_zh
    # Another month of the same breach keeps the key, so storage updates rather than duplicates.
    more = cap_exceeded(_table(SUBSTITUTE_COLUMNS, [*rows, _month("2026-05", **over)]))
    assert [a.key for a in more] == [alert.key]


def test_substitute_growth_threshold_and_minimum() -> None:
    rows = [
        _month("2026-02", non_selected_qty=D(80), substitute_qty=D(100)),
        # Growth columns as float64 (as another builder might produce them) are read exactly.
        _month("2026-03", non_selected_qty=D(40), substitute_qty=D(180), mom_growth=0.8, yoy_growth=0.3),
        _month("2026-03", institution_code=INST2, non_selected_qty=D(300), substitute_qty=D(40), mom_growth=3.0),
        _month("2026-03", item_code="B02", substitute_qty=D(500), mom_growth=0.5, yoy_growth=0.2),
        _month("2026-03", item_code="C03", substitute_qty=D(500), mom_growth=None, yoy_growth=0.75),
    ]
    alerts = substitute_growth(_table(SUBSTITUTE_COLUMNS, rows), labels=LABELS)
    # INST2 has 40 substitute units, under the 100-unit minimum; B02's 50% is not *above* the threshold.
    assert [a.key for a in alerts] == [f"growth:HN-N7:A01:{INST}:2026-03", f"growth:HN-N7:C03:{INST}:2026-03"]
    a01, c03 = alerts
    assert a01.severity == "warning"
    assert a01.kind == "substitute_growth"
    assert "2026-03 替代药品用量 180，环比增长 80%（阈值 50%）；同月非中选产品 40，中选产品占比 95%" in a01.message_zh
    assert "同比" not in a01.message_zh
    assert "同比增长 75%" in c03.message_zh
    assert "HN-N7/C03" in c03.message_zh
    assert len(substitute_growth(_table(SUBSTITUTE_COLUMNS, rows), threshold=D("0.1"))) == 3


def test_overdue_payments_only_late_payers() -> None:
    table = pa.Table.from_pylist(
        [
            {
                "institution_code": INST,
                "region_code": "460108",
                "lines": 5,
                "overdue_lines": 2,
                "outstanding": D("900.00"),
                "overdue_amount": D("1234.56"),
                "max_days_overdue": 12,
            },
            {
                "institution_code": INST2,
                "region_code": "460200",
                "lines": 3,
                "overdue_lines": 0,
                "outstanding": D("10.00"),
                "overdue_amount": D("0.00"),
                "max_days_overdue": 0,
            },
        ]
    )
    alerts = overdue_payments(table, labels=LABELS)
    assert [(a.key, a.severity) for a in alerts] == [(f"overdue:{INST}", "warning")]
    assert alerts[0].message_zh.startswith("海南省人民医院 有 2 笔药品货款逾期未付，逾期金额 1,234.56 元")
    assert alerts[0].batch_code is None
    assert alerts[0].data["max_days_overdue"] == 12


def test_tranche_fired_within_window() -> None:
    base = {
        "agreement_id": 7,
        "batch_code": "HN-N7",
        "item_code": "A01",
        "institution_code": INST,
        "year": 1,
        "agreed_amount": D("3400.00"),
        "profile": "jilin",
    }
    table = pa.Table.from_pylist(
        [
            base
            | {
                "tranche": 1,
                "share": D("0.5"),
                "trigger": "start",
                "fired_on": dt.date(2026, 1, 1),
                "amount": D("1700.00"),
            },
            base
            | {
                "tranche": 2,
                "share": D("0.45"),
                "trigger": "any_of(period_share(0.5), volume_share(0.5))",
                "fired_on": dt.date(2026, 3, 10),
                "amount": D("1530.00"),
            },
            base | {"tranche": 3, "share": D("0.05"), "trigger": "completion", "fired_on": None, "amount": D("170.00")},
        ]
    )
    alerts = tranche_fired(table, dt.date(2026, 3, 31), labels=LABELS)
    assert [a.key for a in alerts] == [f"tranche:HN-N7:A01:{INST}:1:2"]
    msg = alerts[0].message_zh
    assert "协议期时间过 50%、累计采购量达到约定量的 50%（先到者）" in msg
    assert "第2笔预付款 1,530.00 元（约定金额 3,400.00 元的 45%）" in msg
    assert "2026-03-10" in msg
    assert alerts[0].severity == "info"
    assert alerts[0].data["amount"] == D("1530.00")
    assert len(tranche_fired(table, dt.date(2026, 1, 20))) == 1  # the start tranche, 19 days ago
    assert tranche_fired(table, dt.date(2026, 5, 1)) == []


def test_trigger_words() -> None:
    assert trigger_zh("start") == "协议期开始"
    assert trigger_zh("completion") == "完成约定采购量"
    assert trigger_zh("volume_share(0.5)") == "累计采购量达到约定量的 50%"


def test_tranches_due_sum_the_items_of_one_payment() -> None:
    # given the start tranches of two items of one batch fired the same day, and a clearing that
    # pays for one item and claws back for another
    def row(item: str, tranche: int, trigger: str, day: dt.date, amount: str) -> dict[str, Any]:
        return {
            "agreement_id": hash(item) % 1000,
            "batch_code": "HN-N7",
            "item_code": item,
            "institution_code": INST,
            "year": 1,
            "tranche": tranche,
            "trigger": trigger,
            "fired_on": day,
            "amount": D(amount),
            "profile": "national",
        }

    table = pa.Table.from_pylist(
        [
            row("A01", 1, "start", dt.date(2026, 1, 1), "510.00"),
            row("A02", 1, "start", dt.date(2026, 1, 1), "90.50"),
            row("A01", 2, "clearing", dt.date(2026, 12, 31), "120.00"),
            row("A02", 2, "clearing", dt.date(2026, 12, 31), "-30.25"),
        ]
    )
    # when
    alerts = tranches_due(table, labels=LABELS)
    # then one alert per payment, with the items' sum and each item in the data
    assert [a.key for a in alerts] == [
        f"tranche:HN-N7:{INST}:1:1:2026-01-01",
        f"tranche:HN-N7:{INST}:1:2:2026-12-31",
    ]
    start, clearing = alerts
    assert "2 个品种：协议期开始，已于 2026-01-01 触发，第1笔预付款合计 600.50 元应予拨付" in start.message_zh
    assert json.loads(start.payload())["items"] == {"A01": "510.00", "A02": "90.50"}
    assert "医保基金应拨付 120.00 元，医疗机构应退回 30.25 元" in clearing.message_zh
    assert (clearing.data["to_pay"], clearing.data["to_recover"], clearing.data["amount"]) == (
        D("120.00"),
        D("30.25"),
        D("89.75"),
    )
    assert all(a.severity == "info" and a.kind == "tranche_fired" for a in alerts)
    stored = json.loads(clearing.payload())
    assert {k: v for k, v in stored.items() if k != "items"} == {
        "amount": "89.75",
        "fired_on": "2026-12-31",
        "profile": "national",
        "to_pay": "120.00",
        "to_recover": "30.25",
        "tranche": 2,
        "trigger": "clearing",
        "year": 1,
    }
