"""Retained surplus API (R-G3) at /api/v1/hospital/surplus: distributions, approval, export, and a
preview of the split in force and the prescribers' use."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema
from ninja.errors import HttpError
from ninja.responses import Status

from jicai.core.tenancy import use_scope
from jicai.hospital.common import WorkflowError, acting_institution
from jicai.hospital.models import SurplusDistribution
from jicai.hospital.shell import ErrorOut, api_scope, not_found, workflow_error, xlsx_response
from jicai.hospital.surplus import actions, queries
from jicai.hospital.surplus.export import distribution_workbook

router = Router(tags=["hospital"])
RESOURCE = "surplus"
MAX_PAGE_SIZE = 500


class StaffIn(Schema):
    name: str
    weight: Decimal | None = None


class DistributionIn(Schema):
    period: str
    amount: Decimal
    date_from: dt.date
    date_to: dt.date
    basis: str = "amount"
    pharmacy_staff: list[StaffIn]
    institution: str | None = None


class DistributionPatch(Schema):
    period: str | None = None
    amount: Decimal | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    basis: str | None = None
    pharmacy_staff: list[StaffIn] | None = None


class ShareOut(Schema):
    pool: str
    recipient: str
    weight: Decimal
    amount: Decimal


class DistributionOut(Schema):
    id: int
    institution: str
    period: str
    amount: Decimal
    status: str
    params: dict[str, Any]
    pools: dict[str, Decimal]
    created_by: str | None
    approved_by: str | None
    approved_at: dt.datetime | None


class DistributionDetailOut(DistributionOut):
    shares: list[ShareOut]


class DistributionPage(Schema):
    count: int
    page: int
    page_size: int
    results: list[DistributionOut]


class PreviewOut(Schema):
    split: dict[str, Decimal]
    split_source: dict[str, Any]
    basis: str
    prescribers: dict[str, Decimal]
    unattributed: Decimal
    total: Decimal


def _out(d: SurplusDistribution) -> dict[str, Any]:
    return {
        "id": d.pk,
        "institution": d.institution.code,
        "period": d.period,
        "amount": d.amount,
        "status": d.status,
        "params": d.params,
        "pools": {k: Decimal(v) for k, v in (d.params or {}).get("pools", {}).items()},
        "created_by": d.created_by.get_username() if d.created_by else None,
        "approved_by": d.approved_by.get_username() if d.approved_by else None,
        "approved_at": d.approved_at,
    }


def _detail(pk: int) -> dict[str, Any]:
    d = queries.distributions().get(pk=pk)
    return {
        **_out(d),
        "shares": [
            {"pool": s.pool, "recipient": s.recipient, "weight": s.weight, "amount": s.amount}
            for s in queries.shares(d)
        ],
    }


def _staff(rows: list[StaffIn]) -> list[tuple[str, Decimal | None]]:
    return [(r.name, r.weight) for r in rows]


@router.get("/distributions", response=DistributionPage, summary="Retained surplus distributions (R-G3)")
def list_distributions(request: HttpRequest, page: int = 1, page_size: int = 50) -> dict[str, Any]:
    scope = api_scope(request, RESOURCE)
    page_size = max(1, min(page_size, MAX_PAGE_SIZE))
    page = max(page, 1)
    with use_scope(scope):
        qs = queries.distributions()
        count = qs.count()
        rows = [_out(d) for d in qs[(page - 1) * page_size : page * page_size]]
    return {"count": count, "page": page, "page_size": page_size, "results": rows}


@router.get("/preview", response={200: PreviewOut, 400: ErrorOut}, summary="The split in force and prescribers' use")
def preview(
    request: HttpRequest, date_from: dt.date, date_to: dt.date, basis: str = "amount", institution: str | None = None
) -> Any:
    scope = api_scope(request, RESOURCE)
    try:
        with use_scope(scope):
            inst = acting_institution(scope, institution)
        split = queries.internal_split_for(inst, date_to, queries.profiles_library())
        use = queries.prescriber_use(scope, inst, date_from, date_to, basis)
    except WorkflowError as exc:
        return workflow_error(exc)
    return Status(
        200,
        {
            "split": {k: Decimal(v) for k, v in split.plain().items()},
            "split_source": split.source,
            "basis": basis,
            "prescribers": use.by_prescriber,
            "unattributed": use.unattributed,
            "total": use.total,
        },
    )


@router.post("/distributions", response={201: DistributionDetailOut, 400: ErrorOut})
def create_distribution(request: HttpRequest, body: DistributionIn) -> Any:
    """Draft a distribution (surplus:write, finance)."""
    scope = api_scope(request, RESOURCE)
    try:
        dist = actions.do_create_distribution(
            scope,
            period=body.period,
            amount=body.amount,
            date_from=body.date_from,
            date_to=body.date_to,
            basis=body.basis,
            pharmacy_staff=_staff(body.pharmacy_staff),
            institution_code=body.institution,
        )
    except WorkflowError as exc:
        return workflow_error(exc)
    with use_scope(scope):
        return Status(201, _detail(dist.pk))


@router.get("/distributions/{dist_id}", response={200: DistributionDetailOut, 404: ErrorOut})
def get_distribution(request: HttpRequest, dist_id: int) -> Any:
    scope = api_scope(request, RESOURCE)
    with use_scope(scope):
        if not SurplusDistribution.objects.filter(pk=dist_id).exists():
            return not_found("surplus distribution")
        return Status(200, _detail(dist_id))


@router.patch("/distributions/{dist_id}", response={200: DistributionDetailOut, 400: ErrorOut, 404: ErrorOut})
def update_distribution(request: HttpRequest, dist_id: int, body: DistributionPatch) -> Any:
    """Revise a draft and split it again (surplus:write)."""
    scope = api_scope(request, RESOURCE)
    with use_scope(scope):
        if not SurplusDistribution.objects.filter(pk=dist_id).exists():
            return not_found("surplus distribution")
    try:
        actions.do_update_distribution(
            scope,
            dist_id,
            period=body.period,
            amount=body.amount,
            date_from=body.date_from,
            date_to=body.date_to,
            basis=body.basis,
            pharmacy_staff=_staff(body.pharmacy_staff) if body.pharmacy_staff is not None else None,
        )
    except WorkflowError as exc:
        return workflow_error(exc)
    with use_scope(scope):
        return Status(200, _detail(dist_id))


@router.post("/distributions/{dist_id}/approve", response={200: DistributionDetailOut, 400: ErrorOut, 404: ErrorOut})
def approve_distribution(request: HttpRequest, dist_id: int) -> Any:
    """Leadership's approval (surplus:approve); the distribution becomes read-only."""
    scope = api_scope(request, RESOURCE)
    with use_scope(scope):
        if not SurplusDistribution.objects.filter(pk=dist_id).exists():
            return not_found("surplus distribution")
    try:
        actions.do_approve_distribution(scope, dist_id)
    except WorkflowError as exc:
        return workflow_error(exc)
    with use_scope(scope):
        return Status(200, _detail(dist_id))


@router.delete("/distributions/{dist_id}", response={204: None, 400: ErrorOut, 404: ErrorOut})
def delete_distribution(request: HttpRequest, dist_id: int) -> Any:
    scope = api_scope(request, RESOURCE)
    with use_scope(scope):
        if not SurplusDistribution.objects.filter(pk=dist_id).exists():
            return not_found("surplus distribution")
    try:
        actions.do_delete_distribution(scope, dist_id)
    except WorkflowError as exc:
        return workflow_error(exc)
    return Status(204, None)


@router.get("/distributions/{dist_id}/export", summary="The distribution as Excel for finance (surplus:export)")
def export_distribution(request: HttpRequest, dist_id: int) -> HttpResponse:
    scope = api_scope(request, RESOURCE, "export")
    with use_scope(scope):
        dist = queries.distributions().filter(pk=dist_id).first()
        if dist is None:
            raise HttpError(404, "no such surplus distribution in your scope")
        data = distribution_workbook(dist, queries.shares(dist))
    return xlsx_response(data, f"surplus-{dist.pk}.xlsx")
