"""Department targets (R-H3; XJ 五(四)): generate by the allocation rule, adjust keeping the total, publish."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse

from jicai.core.models import AuditEntry
from jicai.core.tenancy import ScopeError, system_scope
from jicai.hospital.common import WorkflowError
from jicai.hospital.models import TargetLine, TargetPlan, TargetStatus
from jicai.hospital.targets import actions, queries
from jicai.policy.allocation import allocate_targets
from tests.hospital.demand_targets.conftest import WS

pytestmark = pytest.mark.django_db
API = "/api/v1/hospital/targets"

# Quarterly slices of 2022-11-01 … 2023-10-31 (61, 90, 91, 92, 31 days of 365) of 10,000: floors
# 1,671 / 2,465 / 2,493 / 2,520 / 849 (9,998), the two spare units to the largest remainders (.75 in Q1,
# .55 in Q3). NK01 gets 3/4 of each (1,253.25 / 1,849.5 / 1,869.75 / 1,890.75 / 636.75), SJ01 1/4; every
# column needs one unit rounded up, NK01 three of them: the controlled rounding gives NK01 the three .75s.
QUARTERS = ["2022-Q4", "2023-Q1", "2023-Q2", "2023-Q3", "2023-Q4"]
NK01 = [1253, 1849, 1870, 1891, 637]
SJ01 = [418, 617, 623, 630, 212]


def generate(ws: WS, who: str = "hn_vbp", **kw: Any) -> actions.Generated:
    kw.setdefault("granularity", "quarter")
    return actions.do_generate_targets(ws.scope(who), batch_code="HN-N7", year=1, **kw)


def grid(plan: TargetPlan) -> dict[tuple[str, str], tuple[int, int]]:
    with system_scope("test"):
        return {
            (ln.department.code, ln.slice_label): (ln.qty, ln.generated_qty)
            for ln in TargetLine.objects.filter(plan=plan).select_related("department")
        }


def test_targets_follow_history_and_sum_exactly(ws: WS, target_facts: None) -> None:
    result = generate(ws)
    plan = result.plan
    got = grid(plan)
    for dept, row in (("NK01", NK01), ("SJ01", SJ01)):
        assert [got[(dept, q)][0] for q in QUARTERS] == row
    assert all(qty == generated for qty, generated in got.values())
    # rows and columns add up: 7,500 / 2,500 and the slice shares of 10,000
    assert (sum(NK01), sum(SJ01)) == (7500, 2500)
    assert [a + b for a, b in zip(NK01, SJ01, strict=True)] == [1671, 2466, 2493, 2521, 849]
    # the department totals are the allocation rule's (WK01 is not on the hospital's list)
    assert allocate_targets(10000, {"NK01": 300, "SJ01": 100}) == {"NK01": Decimal(7500), "SJ01": Decimal(2500)}
    assert result.unknown_departments == {"A01": ["WK01"]}
    assert result.without_history == []
    window = (dt.date(2021, 11, 1), dt.date(2022, 10, 31))
    assert (plan.granularity, plan.window_from, plan.window_to) == ("quarter", *window)
    with system_scope("test"):
        entry = AuditEntry.objects.get(action="hospital.targets.generate")
    assert entry.context["unknown_departments"] == {"A01": ["WK01"]}
    assert entry.new["lines"] == 10


def test_month_and_half_year_slices(ws: WS, target_facts: None) -> None:
    months = generate(ws, granularity="month").plan
    labels = sorted({label for _, label in grid(months)})
    assert (len(labels), labels[0], labels[-1]) == (12, "2022-11", "2023-10")
    assert sum(q for q, _ in grid(months).values()) == 10000
    halves = generate(ws, granularity="half_year").plan  # a draft is generated again
    assert halves.pk == months.pk
    assert sorted({label for _, label in grid(halves)}) == ["2022-H2", "2023-H1", "2023-H2"]
    with system_scope("test"):
        assert AuditEntry.objects.filter(action="hospital.targets.regenerate").count() == 1


def test_an_item_no_department_used_is_split_equally(ws: WS, target_facts: None) -> None:
    from jicai.programme.models import Agreement, Item

    with system_scope("test"):
        item = Item.objects.create(
            batch=ws.hn_batch, item_code="A02", generic_name="新品种", unit_label="片", winners=1
        )
        Agreement.objects.create(
            batch=ws.hn_batch,
            item=item,
            institution=ws.hn_inst,
            year=1,
            agreed_qty=Decimal(1001),
            period_start=dt.date(2022, 11, 1),
            period_end=dt.date(2023, 10, 31),
        )
    result = generate(ws, granularity="half_year")
    assert result.without_history == ["A02"]
    with system_scope("test"):
        totals: dict[str, int] = {}
        for ln in TargetLine.objects.filter(plan=result.plan, item=item).select_related("department"):
            totals[ln.department.code] = totals.get(ln.department.code, 0) + ln.qty
    assert totals == {"NK01": 501, "SJ01": 500}  # the spare unit to the first code


def test_generation_needs_agreements_whole_units_and_the_right_role(ws: WS, target_facts: None) -> None:
    with pytest.raises(WorkflowError, match="没有约定采购量"):
        actions.do_generate_targets(ws.scope("hn_vbp"), batch_code="HN-N7", year=2)
    with pytest.raises(WorkflowError, match="时间粒度"):
        generate(ws, granularity="week")
    for who in ("hn_pharmacy", "hn_lead", "hn_head", "hn_admin"):
        with pytest.raises(ScopeError):
            generate(ws, who=who)
    from jicai.programme.models import Agreement

    with system_scope("test"):
        Agreement.objects.filter(pk=ws.hn_agreement.pk).update(agreed_qty=Decimal("10000.5"))
    with pytest.raises(WorkflowError, match="不是整数"):
        generate(ws)


# --- adjust ---------------------------------------------------------------------------------------


def test_adjustment_moves_units_and_keeps_the_total(ws: WS, target_facts: None) -> None:
    plan = generate(ws).plan
    scope = ws.scope("hn_vbp")
    # when 100 units of 2022-Q4 move from NK01 to SJ01
    changed = actions.do_adjust_targets(
        scope,
        plan.pk,
        item_code="A01",
        values={("NK01", "2022-Q4"): 1153, ("SJ01", "2022-Q4"): 518},
        reason="心内科病区改造，神经内科承接",
    )
    assert changed == 2
    got = grid(plan)
    assert got[("NK01", "2022-Q4")] == (1153, 1253)
    assert got[("SJ01", "2022-Q4")] == (518, 418)
    with system_scope("test"):
        entries = list(AuditEntry.objects.filter(action="hospital.targets.adjust").order_by("seq"))
    assert [(e.old["qty"], e.new["qty"]) for e in entries] == [(1253, 1153), (418, 518)]
    assert entries[0].new["reason"] == "心内科病区改造，神经内科承接"


def test_an_adjustment_that_breaks_the_total_is_refused_with_the_difference(ws: WS, target_facts: None) -> None:
    plan = generate(ws).plan
    scope = ws.scope("hn_vbp")
    with pytest.raises(WorkflowError) as refused:
        actions.do_adjust_targets(scope, plan.pk, item_code="A01", values={("NK01", "2022-Q4"): 1153}, reason="x")
    assert "调整后合计 9900" in refused.value.message_zh
    assert "约定采购量 10000" in refused.value.message_zh
    assert "少 100" in refused.value.message_zh
    with pytest.raises(WorkflowError, match="多 5"):
        actions.do_adjust_targets(scope, plan.pk, item_code="A01", values={("SJ01", "2023-Q4"): 217}, reason="x")
    with pytest.raises(WorkflowError, match="调整原因"):
        actions.do_adjust_targets(scope, plan.pk, item_code="A01", values={}, reason=" ")
    with pytest.raises(WorkflowError, match="时间段"):
        actions.do_adjust_targets(scope, plan.pk, item_code="A01", values={("NK01", "2024-Q1"): 1}, reason="x")
    with pytest.raises(WorkflowError, match="科室"):
        actions.do_adjust_targets(scope, plan.pk, item_code="A01", values={("WK01", "2022-Q4"): 1}, reason="x")
    with pytest.raises(WorkflowError, match="整数"):
        actions.do_adjust_targets(scope, plan.pk, item_code="A01", values={("NK01", "2022-Q4"): -1}, reason="x")
    with pytest.raises(WorkflowError, match="没有品种"):
        actions.do_adjust_targets(scope, plan.pk, item_code="ZZ", values={}, reason="x")
    assert all(qty == generated for qty, generated in grid(plan).values())  # nothing changed


def test_units_can_move_to_a_department_without_history(ws: WS, target_facts: None) -> None:
    from jicai.organizations.models import Department

    with system_scope("test"):
        Department.objects.create(institution=ws.hn_inst, code="EK01", name="儿科")
    plan = generate(ws).plan
    assert not any(dept == "EK01" for dept, _ in grid(plan))
    actions.do_adjust_targets(
        ws.scope("hn_vbp"),
        plan.pk,
        item_code="A01",
        values={("NK01", "2023-Q1"): 1839, ("EK01", "2023-Q1"): 10},
        reason="儿科新开高脂血症门诊",
    )
    assert grid(plan)[("EK01", "2023-Q1")] == (10, 0)


# --- publish --------------------------------------------------------------------------------------


def test_publish_shows_each_department_its_own_targets(ws: WS, target_facts: None) -> None:
    plan = generate(ws).plan
    # before publishing a department head sees nothing
    with pytest.raises(TargetPlan.DoesNotExist):
        queries.get_plan(ws.scope("hn_head"), plan.pk)
    assert queries.my_targets(ws.scope("hn_head")) == []
    for who in ("hn_pharmacy", "hn_lead", "hn_head"):
        with pytest.raises(ScopeError):
            actions.do_publish(ws.scope(who), plan.pk)
    published = actions.do_publish(ws.scope("hn_vbp"), plan.pk)
    assert (published.status, published.published_by_id) == (TargetStatus.PUBLISHED, ws.user("hn_vbp").pk)
    mine = queries.my_targets(ws.scope("hn_head"))
    assert [(g["item"].item_code, g["total"], [ln.qty for ln in g["slices"]]) for g in mine] == [("A01", 7500, NK01)]
    other = queries.my_targets(ws.scope("hn_head2"))
    assert [g["total"] for g in other] == [2500]
    # published: adjustments and regeneration are refused until the office unpublishes
    with pytest.raises(WorkflowError, match="已发布"):
        actions.do_adjust_targets(ws.scope("hn_vbp"), plan.pk, item_code="A01", values={}, reason="x")
    with pytest.raises(WorkflowError, match="已发布"):
        generate(ws)
    with pytest.raises(WorkflowError, match="说明原因"):
        actions.do_unpublish(ws.scope("hn_vbp"), plan.pk, reason="")
    actions.do_unpublish(ws.scope("hn_vbp"), plan.pk, reason="下半年科室调整")
    with system_scope("test"):
        entry = AuditEntry.objects.get(action="hospital.targets.unpublish")
    assert (entry.old["status"], entry.new["status"]) == ("published", "draft")
    assert entry.context["reason"] == "下半年科室调整"
    assert queries.my_targets(ws.scope("hn_head")) == []
    with pytest.raises(WorkflowError, match="尚未发布"):
        actions.do_unpublish(ws.scope("hn_vbp"), plan.pk, reason="again")


def test_publish_refuses_totals_that_drifted_from_the_agreement(ws: WS, target_facts: None) -> None:
    from jicai.programme.models import Agreement

    plan = generate(ws).plan
    with system_scope("test"):
        Agreement.objects.filter(pk=ws.hn_agreement.pk).update(agreed_qty=Decimal(12000))
    with pytest.raises(WorkflowError, match=r"A01（10000≠12000\.0000）"):
        actions.do_publish(ws.scope("hn_vbp"), plan.pk)


def test_other_hospitals_do_not_see_the_plan(ws: WS, target_facts: None) -> None:
    plan = generate(ws).plan
    with pytest.raises(TargetPlan.DoesNotExist):
        queries.get_plan(ws.scope("hn2_vbp"), plan.pk)
    with pytest.raises(TargetPlan.DoesNotExist):
        actions.do_publish(ws.scope("hn2_vbp"), plan.pk)
    assert queries.plan_rows(ws.scope("sx_admin")) == []
    assert [r.plan.pk for r in queries.plan_rows(ws.scope("hn_admin"))] == [plan.pk]


# --- pages and API --------------------------------------------------------------------------------


def test_pages(ws: WS, target_facts: None, django_assert_num_queries: Any) -> None:
    assert ws.client(None).get(reverse("hospital:target_list")).status_code == 302
    vbp = ws.client("hn_vbp")
    assert 'data-testid="target-generate"' in vbp.get(reverse("hospital:target_list")).content.decode()
    response = vbp.post(
        reverse("hospital:target_generate"),
        {"batch": "HN-N7", "year": 1, "granularity": "quarter", "reference_months": 12},
        follow=True,
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "WK01" in html  # the warning
    with system_scope("test"):
        plan = TargetPlan.objects.get()
    assert 'class="check ok"' in html
    assert f'name="cell|NK01|2022-Q4" value="{NK01[0]}"' in html
    # adjust through the form: a broken total comes back with the difference
    detail = reverse("hospital:target_detail", args=[plan.pk])
    adjust = reverse("hospital:target_adjust", args=[plan.pk])
    refused = vbp.post(adjust, {"item": "A01", "reason": "x", "cell|NK01|2022-Q4": "1000"}, follow=True)
    assert "少 253" in refused.content.decode()
    vbp.post(adjust, {"item": "A01", "reason": "调剂", "cell|NK01|2022-Q4": "1000", "cell|SJ01|2022-Q4": "671"})
    assert grid(plan)[("SJ01", "2022-Q4")] == (671, 418)
    bad = vbp.post(adjust, {"item": "A01", "reason": "x", "cell|NK01|2022-Q4": "ten"}, follow=True)
    assert "ten" in bad.content.decode()
    # the department head: 404 before publishing, then only their own row and no inputs
    head = ws.client("hn_head")
    assert head.get(detail).status_code == 404
    assert head.post(reverse("hospital:target_publish", args=[plan.pk])).status_code == 404
    assert ws.client("hn_pharmacy").post(reverse("hospital:target_publish", args=[plan.pk])).status_code == 403
    assert vbp.post(reverse("hospital:target_publish", args=[plan.pk])).status_code == 302
    page = head.get(detail).content.decode()
    assert 'data-department="NK01"' in page
    assert 'data-department="SJ01"' not in page
    assert "<input" not in page.split('data-testid="matrix"')[1]
    head.get(reverse("hospital:target_mine"))
    # session, user, institution + department (the scope), the unread-messages badge, the published lines
    with django_assert_num_queries(6):
        mine = head.get(reverse("hospital:target_mine"))
    assert "7247" in mine.content.decode()  # 7,500 − 253 moved to SJ01
    assert vbp.get(reverse("hospital:target_mine")).status_code == 404
    vbp.get(reverse("hospital:target_list"))
    # session, user, institution, plans, line totals, rounds for the generate form
    with django_assert_num_queries(6):
        assert vbp.get(reverse("hospital:target_list")).status_code == 200
    assert ws.client("hn2_vbp").get(detail).status_code == 404
    unpublish = reverse("hospital:target_unpublish", args=[plan.pk])
    assert vbp.post(unpublish, {"reason": "重新分配"}).status_code == 302
    with system_scope("test"):
        assert TargetPlan.objects.get().status == TargetStatus.DRAFT


def js(client: Any, url: str, data: dict[str, Any] | None = None) -> Any:
    return client.post(url, data or {}, content_type="application/json")


def test_api(ws: WS, target_facts: None) -> None:
    assert ws.client(None).get(f"{API}/").status_code == 401
    vbp = ws.client("hn_vbp")
    created = js(vbp, f"{API}/generate", {"batch": "HN-N7", "year": 1, "granularity": "quarter"})
    assert created.status_code == 201, created.content
    body = created.json()
    plan_id = body["id"]
    assert body["warnings"]["unknown_departments"] == {"A01": ["WK01"]}
    (item,) = body["items"]
    assert (item["total"], item["exact"], item["agreed_qty"]) == (10000, True, "10000.0000")
    assert len(item["cells"]) == 10
    assert js(ws.client("hn_pharmacy"), f"{API}/generate", {"batch": "HN-N7", "year": 1}).status_code == 403
    assert js(vbp, f"{API}/generate", {"batch": "NOPE", "year": 1}).status_code == 404
    move = {
        "item": "A01",
        "reason": "调剂",
        "values": [{"department": "NK01", "slice": "2022-Q4", "qty": 1200}],
    }
    refused = js(vbp, f"{API}/{plan_id}/adjust", move)
    assert refused.status_code == 400
    assert "少 53" in refused.json()["message_zh"]
    move["values"].append({"department": "SJ01", "slice": "2022-Q4", "qty": 471})  # type: ignore[attr-defined]
    assert js(vbp, f"{API}/{plan_id}/adjust", move).status_code == 200
    assert js(ws.client("hn_head"), f"{API}/{plan_id}/adjust", move).status_code == 404  # not published: unseen
    assert js(ws.client("hn_lead"), f"{API}/{plan_id}/publish").status_code == 403
    assert js(ws.client("hn2_vbp"), f"{API}/{plan_id}/publish").status_code == 404
    assert js(vbp, f"{API}/{plan_id}/publish").json()["status"] == "published"
    assert js(vbp, f"{API}/{plan_id}/publish").status_code == 400
    head = ws.client("hn_head")
    detail = head.get(f"{API}/{plan_id}").json()
    assert {c["department"] for c in detail["items"][0]["cells"]} == {"NK01"}
    mine = head.get(f"{API}/mine").json()
    assert [(m["item_code"], m["total"]) for m in mine] == [("A01", 7447)]  # 7,500 − 53
    assert vbp.get(f"{API}/mine").status_code == 404
    assert [p["id"] for p in ws.client("hn_admin").get(f"{API}/").json()] == [plan_id]
    assert js(vbp, f"{API}/{plan_id}/unpublish", {"reason": ""}).status_code == 400
    assert js(vbp, f"{API}/{plan_id}/unpublish", {"reason": "重排"}).json()["status"] == "draft"
