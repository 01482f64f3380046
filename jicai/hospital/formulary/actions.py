"""Formulary advice actions (R-H6, R-H9): the pharmacy makes a review of a round's hospital formulary
at a new round or at contract expiry, adds products by code, and the pharmacy and therapeutics
committee's decision is recorded per product (leadership or medical affairs: ``formulary:approve``).

Each action is one transaction with an audit row per changed record (old and new values). Recording
a decision does not need ``formulary:write``: the actor's ``approve`` right is checked here and the
row (already read in the actor's scope) is saved in the system scope, with the real actor audited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from jicai.core import audit
from jicai.core.tenancy import Scope, ScopeError, system_scope, use_scope
from jicai.hospital.common import WorkflowError, acting_institution, audited, fields_of, require
from jicai.hospital.formulary import queries
from jicai.hospital.models import FormularyEntry, FormularyReview, FormularyTrigger
from jicai.policy.formulary import FormularyAction
from jicai.policy.profile import ProfileLibrary
from jicai.programme.models import Batch

DECISIONS = tuple(a.value for a in FormularyAction)
ENTRY_FIELDS = ("review", "product", "item", "advice", "reason", "detail")
DECISION_FIELDS = ("decision", "decision_note", "decided_by", "decided_at")


def _batch(acting: Scope, code: str) -> Batch:
    with use_scope(acting):
        batch: Batch | None = Batch.objects.filter(code=code).first()
    if batch is None:
        raise ScopeError(f"unknown batch {code} (or outside {acting.label})")
    return batch


def do_create_review(
    acting: Scope,
    *,
    batch_code: str,
    trigger: str,
    as_of: dt.date,
    extra_products: Iterable[tuple[str, str]] = (),
    institution_code: str | None = None,
    home: Path | None = None,
    profiles: ProfileLibrary | None = None,
) -> FormularyReview:
    """Apply the formulary rules to the hospital's products of a round (R-H6): one entry per product."""
    require(acting, "formulary", "write")
    if trigger not in FormularyTrigger.values:
        raise WorkflowError("评价时点无效", f"unknown trigger {trigger!r}", code="trigger")
    with use_scope(acting):
        institution = acting_institution(acting, institution_code)
    batch = _batch(acting, batch_code)
    candidates = queries.formulary_candidates(acting, institution, batch, as_of, extra=extra_products, home=home)
    if not candidates:
        raise WorkflowError(
            "本机构近12个月未使用该批次品种的药品，也未添加药品：没有可评价的目录药品",
            "the hospital used none of the round's products in the last 12 months and added none",
            code="empty",
        )
    rules = queries.formulary_rules(batch, as_of, profiles or queries.profiles_library(home))
    drafts = queries.advise(candidates, rules, trigger)
    with use_scope(acting), transaction.atomic():
        review = FormularyReview(
            institution=institution, batch=batch, trigger=trigger, as_of=as_of, created_by_id=acting.actor_id
        )
        review.save()
        made = FormularyEntry.objects.bulk_create(
            [
                FormularyEntry(
                    institution=institution,
                    review=review,
                    product=d.product,
                    item=d.item,
                    advice=d.advice,
                    reason=d.reason,
                    detail=d.detail,
                    created_by_id=acting.actor_id,
                )
                for d in drafts
            ]
        )
        summary = {a: sum(1 for d in drafts if d.advice == a) for a in (*DECISIONS, "")}
        audited(
            acting,
            "formulary.review.create",
            review,
            new={**fields_of(review, ("institution", "batch", "trigger", "as_of")), "advice": summary},
            context={"rules": rules.source, "requirement": "R-H6"},
        )
        _audit_entries(acting, "formulary.entry.create", made)
    return review


def _audit_entries(acting: Scope, action: str, entries: Iterable[FormularyEntry]) -> None:
    audit.record(
        acting,
        [
            audit.Change(action, e._meta.label, e.pk, str(e)[:255], None, fields_of(e, ENTRY_FIELDS), {})
            for e in entries
        ],
    )


def _review_in_scope(acting: Scope, review_id: int) -> FormularyReview:
    with use_scope(acting):
        review: FormularyReview | None = (
            FormularyReview.objects.select_related("batch", "institution").filter(pk=review_id).first()
        )
    if review is None:
        raise ScopeError(f"formulary review {review_id} is outside {acting.label}")
    return review


def do_add_product(
    acting: Scope,
    review: FormularyReview | int,
    *,
    product_code: str,
    item_code: str = "",
    home: Path | None = None,
    profiles: ProfileLibrary | None = None,
) -> FormularyEntry:
    """Add a product of the round's generic to a review by its code (advice computed as for the rest)."""
    require(acting, "formulary", "write")
    review = _review_in_scope(acting, review if isinstance(review, int) else review.pk)
    with use_scope(acting):
        if FormularyEntry.objects.filter(review=review, product__code=product_code).exists():
            raise WorkflowError(
                f"药品 {product_code} 已在本次评价中", f"{product_code} is already in the review", code="duplicate"
            )
    candidates = queries.formulary_candidates(
        acting, review.institution, review.batch, review.as_of, extra=[(product_code, item_code)], home=home
    )
    rules = queries.formulary_rules(review.batch, review.as_of, profiles or queries.profiles_library(home))
    drafts = [d for d in queries.advise(candidates, rules, review.trigger) if d.product.code == product_code]
    draft = drafts[0]
    with use_scope(acting), transaction.atomic():
        entry = FormularyEntry(
            institution=review.institution,
            review=review,
            product=draft.product,
            item=draft.item,
            advice=draft.advice,
            reason=draft.reason,
            detail=draft.detail,
            created_by_id=acting.actor_id,
        )
        entry.save()
        audited(acting, "formulary.entry.add", entry, new=fields_of(entry, ENTRY_FIELDS))
    return entry


def do_record_decision(
    acting: Scope,
    entry: FormularyEntry | int,
    *,
    decision: str,
    meeting: str,
    note: str = "",
) -> FormularyEntry:
    """Record the committee's decision on one product (R-H6): keep / suspend / drop, the meeting it was
    taken at, who recorded it and when; a decision that departs from the advice needs a note."""
    require(acting, "formulary", "approve")
    with transaction.atomic():
        return _decide(acting, entry if isinstance(entry, int) else entry.pk, decision, meeting, note)


def do_record_decisions(
    acting: Scope, review: FormularyReview | int, *, meeting: str, decisions: Mapping[int, tuple[str, str]]
) -> list[FormularyEntry]:
    """Several decisions of one committee meeting at once ({entry id: (decision, note)}), all or none."""
    require(acting, "formulary", "approve")
    review = _review_in_scope(acting, review if isinstance(review, int) else review.pk)
    with use_scope(acting):
        ids = set(FormularyEntry.objects.filter(review=review).values_list("pk", flat=True))
    unknown = set(decisions) - ids
    if unknown:
        raise ScopeError(f"entries {sorted(unknown)} are not in review {review.pk}")
    with transaction.atomic():
        return [_decide(acting, pk, d, meeting, n) for pk, (d, n) in sorted(decisions.items())]


def _decide(acting: Scope, entry_id: int, decision: str, meeting: str, note: str) -> FormularyEntry:
    with use_scope(acting):
        entry: FormularyEntry | None = (
            FormularyEntry.objects.select_related("review", "product").filter(pk=entry_id).first()
        )
    if entry is None:
        raise ScopeError(f"formulary entry {entry_id} is outside {acting.label}")
    decision, meeting, note = decision.strip(), meeting.strip(), note.strip()
    if decision not in DECISIONS:
        raise WorkflowError(
            "药事会决定须为保留、暂停使用或淘汰", f"decision must be one of {DECISIONS}", code="decision"
        )
    if not meeting:
        raise WorkflowError("请填写药事会会议（届次或日期）", "give the committee meeting", code="meeting")
    if decision != entry.advice and not note:
        raise WorkflowError(
            f"{entry.product.code}：决定与建议不一致，须填写说明",
            "a decision that differs from the advice needs a note",
            code="note",
        )
    old = {**fields_of(entry, DECISION_FIELDS), "meeting": entry.detail.get("decision_meeting", "")}
    entry.decision = decision
    entry.decision_note = note
    entry.decided_by_id = acting.actor_id
    entry.decided_at = timezone.now()
    entry.detail = {**entry.detail, "decision_meeting": meeting}
    review = entry.review
    old_meeting = review.committee_meeting
    with system_scope(acting.actor_name or "formulary"):
        entry.save(update_fields=[*DECISION_FIELDS, "detail", "updated_at"])
        if old_meeting != meeting:
            review.committee_meeting = meeting[:200]
            review.save(update_fields=["committee_meeting", "updated_at"])
    audited(
        acting,
        "formulary.entry.decide",
        entry,
        old=old,
        new={**fields_of(entry, DECISION_FIELDS), "meeting": meeting, "advice": entry.advice},
        context={"review": review.pk, "requirement": "R-H6"},
    )
    if old_meeting != meeting:
        audited(
            acting,
            "formulary.review.meeting",
            review,
            old={"committee_meeting": old_meeting},
            new={"committee_meeting": review.committee_meeting},
        )
    return entry


def do_delete_review(acting: Scope, review: FormularyReview | int) -> None:
    """Delete a review no decision has been recorded on (a review with decisions is the record)."""
    require(acting, "formulary", "write")
    review = _review_in_scope(acting, review if isinstance(review, int) else review.pk)
    with use_scope(acting), transaction.atomic():
        if FormularyEntry.objects.filter(review=review).exclude(decision="").exists():
            raise WorkflowError(
                "已记录药事会决定的评价不能删除", "a review with decisions cannot be deleted", code="decided"
            )
        snapshot: dict[str, Any] = fields_of(review, ("institution", "batch", "trigger", "as_of"))
        entries = list(FormularyEntry.objects.filter(review=review))
        audit.record(
            acting,
            [
                audit.Change(
                    "formulary.entry.delete", e._meta.label, e.pk, str(e)[:255], fields_of(e, ENTRY_FIELDS), None, {}
                )
                for e in entries
            ],
        )
        audited(acting, "formulary.review.delete", review, old=snapshot)
        FormularyEntry.objects.filter(review=review).delete()
        review.delete()
