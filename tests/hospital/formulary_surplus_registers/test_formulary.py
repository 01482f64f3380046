"""Formulary advice (R-H6, R-H9; XJ 五(一), 五(五)): the hospital formulary of a round, the rules'
advice with its figures, the committee's decision, permissions, pages, API and export."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from jicai.core.audit import AuditEntry
from jicai.core.tenancy import ScopeError, system_scope, use_scope
from jicai.hospital.common import WorkflowError
from jicai.hospital.formulary import actions, queries
from jicai.hospital.models import FormularyEntry, FormularyReview
from jicai.policy.formulary import FormularyAction, FormularyParams

from .conftest import ADDED, AS_OF, CE10, CEHIGH, CELOW, DISP, ESS, NCE, OLD, ORIG, SEL, WS

pytestmark = pytest.mark.django_db

EXPECTED = {
    # code: (advice, reason, unit price per item unit, price source)
    SEL: ("keep", "selected", "0.3400", "winning"),
    ORIG: ("keep", "originator_or_reference", "5.6000", "purchases"),
    CELOW: ("keep", "ce_not_pricier", "0.3000", "purchases"),
    CEHIGH: ("suspend", "pricier_generic", "0.5000", "purchases"),
    NCE: ("drop", "non_ce_generic", "0.2000", "purchases"),
    ESS: ("keep", "essential_medicine", "0.6000", "purchases"),
    CE10: ("suspend", "pricier_generic", "0.4000", "purchases"),  # 0.20 a 10 mg tablet = 0.40 per 20 mg
    DISP: ("drop", "non_ce_generic", "0.2000", "listed"),  # 2.80 / 14
}


def _create(ws: WS, user: str = "hn_pharmacy", **kw: Any) -> FormularyReview:
    kw.setdefault("batch_code", "HN-N7")
    kw.setdefault("trigger", "new_round")
    kw.setdefault("as_of", AS_OF)
    return actions.do_create_review(ws.scope(user), **kw)


def _entries(review: FormularyReview) -> dict[str, FormularyEntry]:
    with system_scope("t"):
        return {e.product.code: e for e in FormularyEntry.objects.filter(review=review).select_related("product")}


def test_the_rules_advise_each_product_the_hospital_uses(formulary_facts: WS) -> None:
    # Given the purchases and dispensing of the scenario (conftest), when the pharmacy applies the rules
    review = _create(formulary_facts)
    entries = _entries(review)
    # then the formulary holds what the hospital used in the 12 months (not OLD, not the substitute)
    assert set(entries) == set(EXPECTED)
    assert OLD not in entries
    for code, (advice, reason, price, source) in EXPECTED.items():
        e = entries[code]
        assert (e.advice, e.reason, e.detail["unit_price"], e.detail["price_source"]) == (
            advice,
            reason,
            price,
            source,
        ), code
        assert e.detail["selected_code"] == SEL
        assert e.detail["selected_unit_price"] == "0.3400"
    # the Chinese reason with the figures behind it, from policy/formulary.py
    assert entries[CEHIGH].detail["reason_zh"] == (
        "暂停使用：价格高于集采中选药品的仿制药（单价0.5000元，中选药品阿托伐他汀钙片单价0.3400元）。"
    )
    assert entries[CE10].detail["conversion"] == "0.5000"
    assert entries[CELOW].detail["purchased_qty"] == "100.0000"
    assert entries[DISP].detail["dispensed_qty"] == "50.0000"
    # the rules came from the round's profile (national layer)
    rules = entries[SEL].detail["rules"]
    assert (rules["profile"], rules["non_ce_action"], rules["pricier_action"], rules["keep_essential"]) == (
        "national",
        "drop",
        "suspend",
        True,
    )
    assert rules["formulary.non_ce_action"]["layer"] == "national"


def test_the_profile_decides_suspend_or_drop(formulary_facts: WS, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a region whose profile suspends non-CE generics and drops dearer ones
    rule = queries.Rules(
        FormularyParams(non_ce_action=FormularyAction.SUSPEND, pricier_action=FormularyAction.DROP), {"profile": "x"}
    )
    monkeypatch.setattr(queries, "formulary_rules", lambda *a, **k: rule)
    entries = _entries(_create(formulary_facts))
    assert (entries[NCE].advice, entries[CEHIGH].advice) == ("suspend", "drop")


def test_pharmacy_adds_a_product_by_code(formulary_facts: WS) -> None:
    review = _create(formulary_facts, extra_products=[(ADDED, "")])
    added = _entries(review)[ADDED]
    # a CE generic at 3.00 / 10 = 0.3000 ≤ 0.3400: keep (②); flagged as added; price from its listing
    assert (added.advice, added.reason, added.detail["unit_price"], added.detail["price_source"]) == (
        "keep",
        "ce_not_pricier",
        "0.3000",
        "listed",
    )
    assert added.detail["added"] is True
    # adding a product later computes the advice the same way
    with pytest.raises(WorkflowError, match="已在本次评价中"):
        actions.do_add_product(formulary_facts.scope("hn_pharmacy"), review, product_code=ADDED)
    entry = actions.do_add_product(formulary_facts.scope("hn_pharmacy"), review, product_code=OLD)
    # OLD was bought only before the window and has no listed price: no advice
    assert (entry.advice, entry.reason, entry.detail["unit_price"]) == ("", "no_price", None)
    with pytest.raises(WorkflowError, match="未知的药品编码 NOPE"):
        actions.do_add_product(formulary_facts.scope("hn_pharmacy"), review, product_code="NOPE")


def test_contract_expiry_reevaluates_with_the_current_winner(formulary_facts: WS) -> None:
    review = _create(formulary_facts, trigger="contract_expiry")
    assert review.trigger == "contract_expiry"
    assert {c: e.advice for c, e in _entries(review).items()} == {c: v[0] for c, v in EXPECTED.items()}


def test_missing_prices_leave_the_decision_to_the_committee(ws: WS) -> None:
    # Given no facts at all, the hospital's agreement still lists the item's winner (SEL, priced)
    review = _create(ws, extra_products=[(NCE, "A01")])
    entries = _entries(review)
    assert set(entries) == {SEL, NCE}
    # NCE was never bought and has no listed price: no advice, the committee decides
    assert (entries[NCE].advice, entries[NCE].reason) == ("", "no_price")
    assert entries[SEL].advice == "keep"


def test_committee_decision_is_recorded_with_meeting_and_note(formulary_facts: WS) -> None:
    review = _create(formulary_facts)
    entries = _entries(review)
    medical = formulary_facts.scope("hn_medical")
    # agreeing with the advice needs no note
    entry = actions.do_record_decision(medical, entries[NCE], decision="drop", meeting="2023年第2次药事会")
    assert (entry.decision, entry.decided_by_id, entry.detail["decision_meeting"]) == (
        "drop",
        formulary_facts.users["hn_medical"].pk,
        "2023年第2次药事会",
    )
    assert entry.decided_at is not None
    # departing from it does
    with pytest.raises(WorkflowError, match="须填写说明"):
        actions.do_record_decision(medical, entries[CEHIGH], decision="keep", meeting="2023年第2次药事会")
    with pytest.raises(WorkflowError, match="药事会会议"):
        actions.do_record_decision(medical, entries[CEHIGH], decision="keep", meeting=" ", note="x")
    with pytest.raises(WorkflowError, match="保留、暂停使用或淘汰"):
        actions.do_record_decision(medical, entries[CEHIGH], decision="maybe", meeting="m", note="x")
    leader = formulary_facts.scope("hn_leader")
    actions.do_record_decision(leader, entries[CEHIGH], decision="keep", meeting="2023年第2次药事会", note="儿科需要")
    with system_scope("t"):
        review.refresh_from_db()
        assert review.committee_meeting == "2023年第2次药事会"
        audit = list(AuditEntry.objects.filter(action="formulary.entry.decide").order_by("seq"))
    assert [(a.actor_name, a.new["decision"]) for a in audit] == [("hn_medical", "drop"), ("hn_leader", "keep")]
    assert audit[1].old["decision"] == ""
    assert audit[1].new["decision_note"] == "儿科需要"


def test_batch_decisions_are_all_or_none(formulary_facts: WS) -> None:
    review = _create(formulary_facts)
    entries = _entries(review)
    medical = formulary_facts.scope("hn_medical")
    with pytest.raises(WorkflowError):
        actions.do_record_decisions(
            medical, review, meeting="m1", decisions={entries[NCE].pk: ("drop", ""), entries[ORIG].pk: ("drop", "")}
        )
    assert all(not e.decision for e in _entries(review).values())
    actions.do_record_decisions(
        medical, review, meeting="m1", decisions={entries[NCE].pk: ("drop", ""), entries[ORIG].pk: ("keep", "")}
    )
    assert {c: e.decision for c, e in _entries(review).items() if e.decision} == {NCE: "drop", ORIG: "keep"}


@pytest.mark.parametrize("user", ["hn_leader", "hn_medical", "hn_vbp", "hn_finance", "hn_head"])
def test_only_pharmacy_creates_reviews(formulary_facts: WS, user: str) -> None:
    with pytest.raises(ScopeError):
        _create(formulary_facts, user=user)


@pytest.mark.parametrize("user", ["hn_pharmacy", "hn_vbp", "hn_finance", "hn_head", "hn_admin"])
def test_only_leadership_and_medical_affairs_decide(formulary_facts: WS, user: str) -> None:
    review = _create(formulary_facts)
    entry = _entries(review)[NCE]
    with pytest.raises(ScopeError):
        actions.do_record_decision(formulary_facts.scope(user), entry, decision="drop", meeting="m")


def test_other_hospitals_cannot_touch_the_review(formulary_facts: WS) -> None:
    review = _create(formulary_facts)
    entry = _entries(review)[NCE]
    with pytest.raises(ScopeError):
        actions.do_record_decision(formulary_facts.scope("hn2_leader"), entry, decision="drop", meeting="m")
    with pytest.raises(ScopeError):
        actions.do_add_product(formulary_facts.scope("hn2_pharmacy"), review, product_code=ADDED)
    with use_scope(formulary_facts.scope("hn2_pharmacy")):
        assert not FormularyReview.objects.filter(pk=review.pk).exists()
    with use_scope(formulary_facts.scope("hn_admin")):  # the province's bureau follows it
        assert FormularyReview.objects.filter(pk=review.pk).exists()


def test_delete_only_without_decisions(formulary_facts: WS) -> None:
    review = _create(formulary_facts)
    entry = _entries(review)[NCE]
    actions.do_record_decision(formulary_facts.scope("hn_leader"), entry, decision="drop", meeting="m")
    with pytest.raises(WorkflowError, match="不能删除"):
        actions.do_delete_review(formulary_facts.scope("hn_pharmacy"), review)
    other = _create(formulary_facts)
    actions.do_delete_review(formulary_facts.scope("hn_pharmacy"), other)
    with system_scope("t"):
        assert not FormularyReview.objects.filter(pk=other.pk).exists()
        assert AuditEntry.objects.filter(action="formulary.entry.delete").count() == len(EXPECTED)


def test_rounds_with_agreements_ending_soon_are_flagged(ws: WS) -> None:
    # world's agreement of HN-N7 ends 2023-10-31
    scope = ws.scope("hn_pharmacy")
    assert queries.expiring_rounds(scope, dt.date(2023, 8, 1)) == []  # 91 days ahead
    rows = queries.expiring_rounds(scope, dt.date(2023, 8, 2))  # 90 days ahead
    assert [(r["batch"].code, r["days_left"], r["reviewed"]) for r in rows] == [("HN-N7", 90, False)]
    assert queries.expiring_rounds(scope, dt.date(2023, 11, 1)) == []  # ended
    actions.do_create_review(scope, batch_code="HN-N7", trigger="contract_expiry", as_of=dt.date(2023, 8, 2))
    assert queries.expiring_rounds(scope, dt.date(2023, 8, 2))[0]["reviewed"] is True
    assert queries.expiring_rounds(ws.scope("hn2_pharmacy"), dt.date(2023, 8, 2)) == []


# --------------------------------------------------------------------------------------------------
# Pages


def test_pages_for_the_pharmacy_and_the_committee(formulary_facts: WS) -> None:
    pharmacy = formulary_facts.client("hn_pharmacy")
    page = pharmacy.get(reverse("hospital:formulary_list"))
    assert page.status_code == 200
    assert b'data-testid="create-review"' in page.content
    response = pharmacy.post(
        reverse("hospital:formulary_create"),
        {"batch": "HN-N7", "trigger": "new_round", "as_of": "2023-04-30", "extra_products": f"{ADDED} A01"},
    )
    with system_scope("t"):
        review = FormularyReview.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("hospital:formulary_detail", args=[review.pk])
    detail = pharmacy.get(reverse("hospital:formulary_detail", args=[review.pk]))
    assert detail.status_code == 200
    assert detail.content.count(b'data-testid="advice"') == len(EXPECTED) + 1
    assert b'name="decision_' not in detail.content  # the pharmacy does not decide
    # the committee's decisions through the page
    leader = formulary_facts.client("hn_leader")
    entries = _entries(review)
    assert b'name="decision_' in leader.get(reverse("hospital:formulary_detail", args=[review.pk])).content
    response = leader.post(
        reverse("hospital:formulary_decide", args=[review.pk]),
        {
            "meeting": "2023-05-20 药事会",
            f"decision_{entries[NCE].pk}": "drop",
            f"decision_{entries[CEHIGH].pk}": "drop",
            f"note_{entries[CEHIGH].pk}": "价格过高",
        },
    )
    assert response.status_code == 302
    assert {c: e.decision for c, e in _entries(review).items() if e.decision} == {NCE: "drop", CEHIGH: "drop"}
    # the pharmacy may not post decisions
    assert (
        pharmacy.post(
            reverse("hospital:formulary_decide", args=[review.pk]),
            {"meeting": "m", f"decision_{entries[ORIG].pk}": "keep"},
        ).status_code
        == 403
    )


def test_export_lists_advice_and_decisions(formulary_facts: WS) -> None:
    review = _create(formulary_facts)
    actions.do_record_decision(formulary_facts.scope("hn_leader"), _entries(review)[NCE], decision="drop", meeting="m1")
    response = formulary_facts.client("hn_vbp").get(reverse("hospital:formulary_export", args=[review.pk]))
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = [[c.value for c in r] for r in sheet.iter_rows()]
    header = next(i for i, r in enumerate(rows) if r[0] == "品种编码")
    body = {r[2]: r for r in rows[header + 1 :]}
    assert set(body) == set(EXPECTED)
    nce = dict(zip(rows[header], body[NCE], strict=True))
    assert (nce["建议"], nce["药事会决定"], nce["会议"], nce["单价（元/品种单位）"]) == ("淘汰", "淘汰", "m1", "0.2000")
    assert nce["建议理由"].startswith("淘汰：未通过一致性评价的仿制药")


@pytest.mark.parametrize(
    ("user", "status"),
    [(None, 302), ("hn_head", 404), ("hn2_pharmacy", 404), ("sx_vbp", 404), ("hn_vbp", 200), ("hn_admin", 200)],
)
def test_detail_page_permissions(formulary_facts: WS, user: str | None, status: int) -> None:
    review = _create(formulary_facts)
    response = formulary_facts.client(user).get(reverse("hospital:formulary_detail", args=[review.pk]))
    assert response.status_code == status


def test_list_page_query_count(formulary_facts: WS, django_assert_num_queries: Any) -> None:
    for _ in range(3):
        _create(formulary_facts)
    client = formulary_facts.client("hn_pharmacy")
    client.get(reverse("hospital:formulary_list"))  # warm the session
    # session, user, the user's institution (scope), count, page, entry counts, agreements' ends, batch choices
    with django_assert_num_queries(8):
        response = client.get(reverse("hospital:formulary_list"))
    assert response.content.count(b"<tr data-id=") == 3


# --------------------------------------------------------------------------------------------------
# API


def test_api_review_and_decisions(formulary_facts: WS) -> None:
    pharmacy = formulary_facts.client("hn_pharmacy")
    response = pharmacy.post(
        "/api/v1/hospital/formulary/reviews",
        json.dumps({"batch": "HN-N7", "trigger": "new_round", "as_of": "2023-04-30"}),
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["entries"] == len(EXPECTED)
    assert body["drop"] == 2
    assert body["suspend"] == 2
    by_code = {e["product"]: e for e in body["entries_list"]}
    assert by_code[NCE]["reason_zh"].startswith("淘汰：")
    review_id = body["id"]
    # the pharmacy may not decide
    denied = pharmacy.post(
        f"/api/v1/hospital/formulary/entries/{by_code[NCE]['id']}/decision",
        json.dumps({"decision": "drop", "meeting": "m"}),
        content_type="application/json",
    )
    assert denied.status_code == 403
    leader = formulary_facts.client("hn_leader")
    ok = leader.post(
        f"/api/v1/hospital/formulary/entries/{by_code[NCE]['id']}/decision",
        json.dumps({"decision": "drop", "meeting": "m"}),
        content_type="application/json",
    )
    assert ok.status_code == 200
    assert ok.json()["decided_by"] == "hn_leader"
    bad = leader.post(
        f"/api/v1/hospital/formulary/reviews/{review_id}/decisions",
        json.dumps({"meeting": "m", "decisions": [{"entry": by_code[ORIG]["id"], "decision": "drop"}]}),
        content_type="application/json",
    )
    assert bad.status_code == 400
    assert bad.json()["message_zh"].endswith("须填写说明")
    listing = formulary_facts.client("hn_vbp").get("/api/v1/hospital/formulary/reviews").json()
    assert listing["count"] == 1
    assert listing["results"][0]["decided"] == 1
    assert (
        formulary_facts.client("hn2_pharmacy").get(f"/api/v1/hospital/formulary/reviews/{review_id}").status_code == 404
    )
    assert formulary_facts.client("hn_head").get("/api/v1/hospital/formulary/reviews").status_code == 404
    assert formulary_facts.client(None).get("/api/v1/hospital/formulary/reviews").status_code == 401
    export = formulary_facts.client("hn_vbp").get(f"/api/v1/hospital/formulary/reviews/{review_id}/export")
    assert export.status_code == 200
    assert export["Content-Type"].startswith("application/vnd.openxml")


def test_decimal_figures_are_strings(formulary_facts: WS) -> None:
    entry = _entries(_create(formulary_facts))[SEL]
    assert Decimal(entry.detail["unit_price"]) == Decimal("0.34")
