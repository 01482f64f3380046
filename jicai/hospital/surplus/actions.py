"""Retained surplus distribution actions (R-G3; XJ 五(七)): finance (``surplus:write``) creates and
revises a draft, leadership (``surplus:approve``) approves it, and an approved distribution is read-only.

A distribution splits the retained amount into the three pools of the profile's internal split
(prescribers / pharmacy staff / institution), then the prescribers' pool by each prescriber's use of
selected drugs in the period and the pharmacy pool among the staff finance lists (equally, or by the
weights given) — exact to the fen at every level (policy/surplus.py, largest remainder). Each action
is one transaction with audit rows for the distribution and every share.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from jicai.core import audit
from jicai.core.tenancy import Scope, ScopeError, system_scope, use_scope
from jicai.hospital.common import WorkflowError, acting_institution, audited, fields_of, require
from jicai.hospital.models import SurplusDistribution, SurplusShare, SurplusStatus
from jicai.hospital.surplus import queries
from jicai.organizations.models import Institution
from jicai.policy.profile import ProfileLibrary

DIST_FIELDS = ("institution", "period", "amount", "params", "status")
SHARE_FIELDS = ("distribution", "pool", "recipient", "weight", "amount")


def _plan(
    acting: Scope,
    institution: Institution,
    *,
    amount: Any,
    date_from: dt.date,
    date_to: dt.date,
    pharmacy_staff: Sequence[tuple[str, Decimal | None]],
    basis: str,
    home: Path | None,
    profiles: ProfileLibrary | None,
) -> tuple[Decimal, dict[str, Any], list[queries.ShareRow]]:
    amount_d = queries.parse_amount(amount)
    if date_from > date_to:
        raise WorkflowError("期间开始日期不能晚于结束日期", "the period starts after it ends", code="period")
    weights, mode = queries.staff_weights(pharmacy_staff)
    split = queries.internal_split_for(institution, date_to, profiles or queries.profiles_library(home))
    use = queries.prescriber_use(acting, institution, date_from, date_to, basis, home=home)
    rows = queries.share_rows(amount_d, split.params, use.by_prescriber, weights, institution.code)
    pools = queries.pool_totals(rows)
    plan = {
        "from": date_from.isoformat(),
        "to": date_to.isoformat(),
        "basis": basis,
        "amount_source": "entered",
        "split": split.plain(),
        "split_source": split.source,
        "pools": {k: str(v) for k, v in pools.items()},
        "pharmacy_mode": mode,
        "pharmacy_staff": [[name, None if w is None else str(w)] for name, w in pharmacy_staff],
        "use": {
            "prescribers": len(use.by_prescriber),
            "total": str(use.total),
            "unattributed": str(use.unattributed),
        },
        "requirement": "R-G3",
    }
    return amount_d, plan, rows


def _check_period(institution: Institution, period: str, exclude: int | None = None) -> str:
    period = period.strip()
    if not period or len(period) > 20:
        raise WorkflowError(
            "请填写分配期间名称（不超过20个字符）", "give a period label of up to 20 characters", code="period"
        )
    clash = SurplusDistribution.objects.filter(institution=institution, period=period)
    if exclude is not None:
        clash = clash.exclude(pk=exclude)
    if clash.exists():
        raise WorkflowError(f"期间“{period}”已有分配方案", f"a distribution for {period} exists", code="period")
    return period


def _audit_shares(acting: Scope, action: str, shares: Iterable[SurplusShare], *, old: bool = False) -> None:
    audit.record(
        acting,
        [
            audit.Change(
                action,
                s._meta.label,
                s.pk,
                str(s)[:255],
                fields_of(s, SHARE_FIELDS) if old else None,
                None if old else fields_of(s, SHARE_FIELDS),
                {},
            )
            for s in shares
        ],
    )


def _write_shares(
    acting: Scope, distribution: SurplusDistribution, rows: Sequence[queries.ShareRow]
) -> list[SurplusShare]:
    made = SurplusShare.objects.bulk_create(
        [
            SurplusShare(
                institution=distribution.institution,
                distribution=distribution,
                pool=r.pool,
                recipient=r.recipient,
                weight=r.weight,
                amount=r.amount,
                created_by_id=acting.actor_id,
            )
            for r in rows
        ]
    )
    _audit_shares(acting, "surplus.share.create", made)
    return made


def do_create_distribution(
    acting: Scope,
    *,
    period: str,
    amount: Any,
    date_from: dt.date,
    date_to: dt.date,
    pharmacy_staff: Sequence[tuple[str, Decimal | None]],
    basis: str = "amount",
    institution_code: str | None = None,
    home: Path | None = None,
    profiles: ProfileLibrary | None = None,
) -> SurplusDistribution:
    """A draft distribution of the retained amount for ``period`` (R-G3)."""
    require(acting, "surplus", "write")
    with use_scope(acting):
        institution = acting_institution(acting, institution_code)
        period = _check_period(institution, period)
    amount_d, plan, rows = _plan(
        acting,
        institution,
        amount=amount,
        date_from=date_from,
        date_to=date_to,
        pharmacy_staff=pharmacy_staff,
        basis=basis,
        home=home,
        profiles=profiles,
    )
    with use_scope(acting), transaction.atomic():
        distribution = SurplusDistribution(
            institution=institution, period=period, amount=amount_d, params=plan, created_by_id=acting.actor_id
        )
        distribution.save()
        audited(acting, "surplus.distribution.create", distribution, new=fields_of(distribution, DIST_FIELDS))
        _write_shares(acting, distribution, rows)
    return distribution


def _in_scope(acting: Scope, distribution: SurplusDistribution | int) -> SurplusDistribution:
    pk = distribution if isinstance(distribution, int) else distribution.pk
    with use_scope(acting):
        found: SurplusDistribution | None = (
            SurplusDistribution.objects.select_related("institution").filter(pk=pk).first()
        )
    if found is None:
        raise ScopeError(f"surplus distribution {pk} is outside {acting.label}")
    return found


def _locked(pk: int) -> SurplusDistribution:
    found: SurplusDistribution = SurplusDistribution.objects.select_for_update().get(pk=pk)
    return found


def _draft(distribution: SurplusDistribution) -> None:
    if distribution.status != SurplusStatus.DRAFT:
        raise WorkflowError(
            "已审批的分配方案只读，不能修改或删除", "an approved distribution is read-only", code="approved"
        )


def do_update_distribution(
    acting: Scope,
    distribution: SurplusDistribution | int,
    *,
    period: str | None = None,
    amount: Any = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    pharmacy_staff: Sequence[tuple[str, Decimal | None]] | None = None,
    basis: str | None = None,
    home: Path | None = None,
    profiles: ProfileLibrary | None = None,
) -> SurplusDistribution:
    """Revise a draft and split it again from the current facts (values not given are kept)."""
    require(acting, "surplus", "write")
    dist = _in_scope(acting, distribution)
    _draft(dist)
    p = dist.params
    staff = (
        pharmacy_staff
        if pharmacy_staff is not None
        else [(n, None if w is None else Decimal(w)) for n, w in p.get("pharmacy_staff", [])]
    )
    with use_scope(acting):
        new_period = _check_period(dist.institution, period, exclude=dist.pk) if period is not None else dist.period
    amount_d, plan, rows = _plan(
        acting,
        dist.institution,
        amount=dist.amount if amount is None else amount,
        date_from=date_from or dt.date.fromisoformat(p["from"]),
        date_to=date_to or dt.date.fromisoformat(p["to"]),
        pharmacy_staff=staff,
        basis=basis or p.get("basis", "amount"),
        home=home,
        profiles=profiles,
    )
    with use_scope(acting), transaction.atomic():
        dist = _locked(dist.pk)
        _draft(dist)
        old = fields_of(dist, DIST_FIELDS)
        dist.period, dist.amount, dist.params = new_period, amount_d, plan
        dist.save()
        audited(acting, "surplus.distribution.update", dist, old=old, new=fields_of(dist, DIST_FIELDS))
        previous = list(SurplusShare.objects.filter(distribution=dist))
        _audit_shares(acting, "surplus.share.delete", previous, old=True)
        SurplusShare.objects.filter(distribution=dist).delete()
        _write_shares(acting, dist, rows)
    return dist


def do_approve_distribution(acting: Scope, distribution: SurplusDistribution | int) -> SurplusDistribution:
    """Leadership's approval (``surplus:approve``): the distribution becomes read-only."""
    require(acting, "surplus", "approve")
    dist = _in_scope(acting, distribution)
    with transaction.atomic():
        with system_scope(acting.actor_name or "surplus"):
            dist = _locked(dist.pk)
            _draft(dist)
            total = sum((s.amount for s in SurplusShare.objects.filter(distribution=dist)), Decimal(0))
            if total != dist.amount:  # the shares are exact by construction; refuse a tampered draft
                raise WorkflowError(
                    "分配明细合计与留用金额不一致", "the shares do not add up to the amount", code="total"
                )
            old = fields_of(dist, ("status", "approved_by", "approved_at"))
            dist.status = SurplusStatus.APPROVED
            dist.approved_by_id = acting.actor_id
            dist.approved_at = timezone.now()
            dist.save(update_fields=["status", "approved_by", "approved_at", "updated_at"])
        audited(
            acting,
            "surplus.distribution.approve",
            dist,
            old=old,
            new=fields_of(dist, ("status", "approved_by", "approved_at")),
            context={"amount": str(dist.amount), "requirement": "R-G3"},
        )
    return dist


def do_delete_distribution(acting: Scope, distribution: SurplusDistribution | int) -> None:
    """Delete a draft (an approved distribution is the record and stays)."""
    require(acting, "surplus", "write")
    dist = _in_scope(acting, distribution)
    _draft(dist)
    with use_scope(acting), transaction.atomic():
        previous = list(SurplusShare.objects.filter(distribution=dist))
        _audit_shares(acting, "surplus.share.delete", previous, old=True)
        audited(acting, "surplus.distribution.delete", dist, old=fields_of(dist, DIST_FIELDS))
        SurplusShare.objects.filter(distribution=dist).delete()
        dist.delete()
