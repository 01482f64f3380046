"""Supply incidents (R-I1, R-I2): report, edit, confirm, close, reject, flag as malicious, attach proof.

State machine: reported → confirmed → closed; reported → rejected. A hospital (VBP office, pharmacy)
reports incidents of its own institution; a bureau records region-wide ones and decides (``approve``)
on every incident in its region. Confirming records the supplier's shortage in its credit file (R-I3);
a malicious interruption is flagged to the bureau with who flagged it and why, and the credit event
becomes a malicious interruption.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from jicai.core.tenancy import Scope, ScopeError, use_scope
from jicai.supply import lookups
from jicai.supply import permissions as perms
from jicai.supply.common import WorkflowError, audited, changed, fields_of, require
from jicai.supply.models import (
    CreditEvent,
    CreditKind,
    CreditSource,
    IncidentKind,
    IncidentProof,
    IncidentStatus,
    Severity,
    SupplyIncident,
)
from jicai.supply.uploads import check_proof, store

AUDITED = (
    "batch",
    "item",
    "selected",
    "company",
    "institution",
    "region_code",
    "kind",
    "start_on",
    "end_on",
    "cause",
    "status",
    "decision_note",
    "malicious",
    "malicious_reason",
)

LIVE = (IncidentStatus.REPORTED, IncidentStatus.CONFIRMED, IncidentStatus.CLOSED)
STATUS_ZH = {
    IncidentStatus.REPORTED: "已上报",
    IncidentStatus.CONFIRMED: "已确认",
    IncidentStatus.CLOSED: "已关闭",
    IncidentStatus.REJECTED: "已驳回",
}


@dataclass(frozen=True)
class IncidentInput:
    """What a user enters for an incident (codes as typed; resolved in scope)."""

    batch_code: str
    item_code: str
    kind: str
    start_on: dt.date
    cause: str
    product_code: str = ""
    institution_code: str = ""
    region_code: str = ""
    end_on: dt.date | None = None


def resolve_incident(acting: Scope, data: IncidentInput) -> dict[str, Any]:
    """The incident's fields from ``data`` (run inside ``use_scope(acting)``); raises WorkflowError."""
    if data.kind not in IncidentKind.values:
        raise WorkflowError("事件类型应为“短缺”或“断供”", "kind is shortage or interruption", "value.choice", "kind")
    if not data.cause.strip():
        raise WorkflowError("请填写原因", "a cause is needed", "value.required", "cause")
    if data.end_on is not None and data.end_on < data.start_on:
        raise WorkflowError("结束日期早于开始日期", "the end is before the start", "period.order", "end_on")
    batch = lookups.batch(data.batch_code)
    item = lookups.item(batch, data.item_code)
    selected = lookups.selected(item, data.product_code) if data.product_code.strip() else None
    institution = lookups.institution(acting, data.institution_code)
    region_code = lookups.region_of(acting, institution, data.region_code)
    return {
        "batch": batch,
        "item": item,
        "selected": selected,
        "company": selected.company if selected is not None else None,
        "institution": institution,
        "region_code": region_code,
        "kind": data.kind,
        "start_on": data.start_on,
        "end_on": data.end_on,
        "cause": data.cause.strip(),
    }


def _duplicate() -> WorkflowError:
    return WorkflowError(
        "同一品种、机构（或地区）已有同一天开始的同类事件",
        "an incident of this kind starting that day is already on record",
        "incident.duplicate",
        "start_on",
    )


def _get(incident_id: int, *, for_update: bool = True) -> SupplyIncident:
    qs = SupplyIncident.objects.filter(pk=incident_id)
    if for_update:
        qs = qs.select_for_update()
    found: SupplyIncident | None = qs.first()
    if found is None:
        raise ScopeError(f"no incident {incident_id} in scope")
    return found


def _status_error(incident: SupplyIncident, wanted: Iterable[str], verb_zh: str) -> WorkflowError:
    allowed = "、".join(STATUS_ZH[IncidentStatus(s)] for s in wanted)
    return WorkflowError(
        f"该事件当前状态为“{STATUS_ZH[IncidentStatus(incident.status)]}”，只有{allowed}的事件才能{verb_zh}",
        f"cannot {verb_zh} an incident that is {incident.status}",
        "incident.status",
    )


def do_report_incident(acting: Scope, data: IncidentInput, *, confirm: bool = False, note: str = "") -> SupplyIncident:
    """Record a new incident as reported (R-I1: reported at once); a bureau approver may confirm it in
    the same step."""
    require(acting, perms.SUPPLY_INCIDENT, "write")
    with use_scope(acting), transaction.atomic():
        fields = resolve_incident(acting, data)
        incident = SupplyIncident(**fields, reported_by_id=acting.actor_id)
        try:
            with transaction.atomic():
                incident.save()
        except IntegrityError:
            raise _duplicate() from None
        audited(acting, "report", incident, new=fields_of(incident, AUDITED))
        if confirm:
            _confirm(acting, incident, note)
    return incident


def do_update_incident(acting: Scope, incident_id: int, data: IncidentInput) -> SupplyIncident:
    """Correct an open incident. Once confirmed, its start, kind and place stay as confirmed."""
    require(acting, perms.SUPPLY_INCIDENT, "write")
    with use_scope(acting), transaction.atomic():
        incident = _get(incident_id)
        if incident.status not in (IncidentStatus.REPORTED, IncidentStatus.CONFIRMED):
            raise _status_error(incident, (IncidentStatus.REPORTED, IncidentStatus.CONFIRMED), "修改")
        fields = resolve_incident(acting, data)
        if incident.status == IncidentStatus.CONFIRMED:
            fixed = {"batch": "batch_id", "item": "item_id", "institution": "institution_id"}
            fixed |= {"region_code": "region_code", "kind": "kind", "start_on": "start_on"}
            if any(getattr(incident, attr) != _id(fields[name]) for name, attr in fixed.items()):
                raise WorkflowError(
                    "已确认的事件不能修改批次、品种、机构、地区、类型或开始日期",
                    "a confirmed incident keeps its item, place, kind and start",
                    "incident.confirmed",
                )
        old = fields_of(incident, AUDITED)
        for name, value in fields.items():
            setattr(incident, name, value)
        try:
            with transaction.atomic():
                incident.save()
        except IntegrityError:
            raise _duplicate() from None
        before, after = changed(old, fields_of(incident, AUDITED))
        if after:
            audited(acting, "update", incident, old=before, new=after)
    return incident


def _id(value: Any) -> Any:
    return getattr(value, "pk", value)


def _credit_fields(incident: SupplyIncident) -> dict[str, Any]:
    if incident.malicious:
        kind, severity = CreditKind.MALICIOUS_INTERRUPTION, Severity.SEVERE
    elif incident.kind == IncidentKind.INTERRUPTION:
        kind, severity = CreditKind.SHORTAGE, Severity.MAJOR
    else:
        kind, severity = CreditKind.SHORTAGE, Severity.MINOR
    label = "断供" if incident.kind == IncidentKind.INTERRUPTION else "短缺"
    return {
        "kind": kind,
        "severity": severity,
        "description": f"供应事件 #{incident.pk}（{label}）：{incident.cause}"[:2000],
    }


def _confirm(acting: Scope, incident: SupplyIncident, note: str) -> None:
    require(acting, perms.SUPPLY_INCIDENT, "approve")
    if incident.status != IncidentStatus.REPORTED:
        raise _status_error(incident, (IncidentStatus.REPORTED,), "确认")
    old = fields_of(incident, ("status", "decision_note"))
    incident.status = IncidentStatus.CONFIRMED
    incident.confirmed_by_id = acting.actor_id
    incident.confirmed_at = timezone.now()
    if note.strip():
        incident.decision_note = note.strip()
    incident.save()
    audited(acting, "confirm", incident, old=old, new=fields_of(incident, ("status", "decision_note")))
    if incident.company_id is None:
        return  # no selected product named: no supplier to put on file
    event = CreditEvent(
        company_id=incident.company_id,
        occurred_on=incident.start_on,
        institution_id=incident.institution_id,
        region_code=incident.region_code,
        product_id=incident.selected.product_id if incident.selected_id else None,  # type: ignore[union-attr]
        source=CreditSource.INCIDENT,
        incident=incident,
        created_by_id=acting.actor_id,
        **_credit_fields(incident),
    )
    event.save()
    audited(
        acting,
        "create",
        event,
        new=fields_of(event, ("company", "kind", "severity", "occurred_on", "institution", "source", "incident")),
        context={"from": "incident", "incident": incident.pk},
    )


def do_confirm_incident(acting: Scope, incident_id: int, note: str = "") -> SupplyIncident:
    """The bureau confirms a reported incident: from now on it exempts purchases (R-I2) and the supplier's
    credit file records the shortage (R-I3)."""
    require(acting, perms.SUPPLY_INCIDENT, "approve")
    with use_scope(acting), transaction.atomic():
        incident = _get(incident_id)
        _confirm(acting, incident, note)
    return incident


def do_close_incident(
    acting: Scope, incident_id: int, *, end_on: dt.date | None = None, note: str = ""
) -> SupplyIncident:
    """Supply is back: the confirmed incident ends on ``end_on`` (default: its end on record, else today)."""
    require(acting, perms.SUPPLY_INCIDENT, "approve")
    with use_scope(acting), transaction.atomic():
        incident = _get(incident_id)
        if incident.status != IncidentStatus.CONFIRMED:
            raise _status_error(incident, (IncidentStatus.CONFIRMED,), "关闭")
        end = end_on or incident.end_on or timezone.localdate()
        if end < incident.start_on:
            raise WorkflowError("结束日期早于开始日期", "the end is before the start", "period.order", "end_on")
        old = fields_of(incident, ("status", "end_on", "decision_note"))
        incident.status = IncidentStatus.CLOSED
        incident.end_on = end
        incident.closed_by_id = acting.actor_id
        incident.closed_at = timezone.now()
        if note.strip():
            incident.decision_note = note.strip()
        incident.save()
        audited(acting, "close", incident, old=old, new=fields_of(incident, ("status", "end_on", "decision_note")))
    return incident


def do_reject_incident(acting: Scope, incident_id: int, note: str) -> SupplyIncident:
    """The bureau does not accept a report (no proof, not the selected product …); the reason is kept."""
    require(acting, perms.SUPPLY_INCIDENT, "approve")
    if not note.strip():
        raise WorkflowError("驳回时请说明理由", "a reason is needed to reject", "value.required", "note")
    with use_scope(acting), transaction.atomic():
        incident = _get(incident_id)
        if incident.status != IncidentStatus.REPORTED:
            raise _status_error(incident, (IncidentStatus.REPORTED,), "驳回")
        old = fields_of(incident, ("status", "decision_note"))
        incident.status = IncidentStatus.REJECTED
        incident.rejected_by_id = acting.actor_id
        incident.rejected_at = timezone.now()
        incident.decision_note = note.strip()
        incident.save()
        audited(acting, "reject", incident, old=old, new=fields_of(incident, ("status", "decision_note")))
    return incident


def _sync_credit_event(acting: Scope, incident: SupplyIncident) -> None:
    event: CreditEvent | None = CreditEvent.objects.filter(incident=incident).first()
    if event is None:
        return
    old = fields_of(event, ("kind", "severity", "description"))
    for name, value in _credit_fields(incident).items():
        setattr(event, name, value)
    new = fields_of(event, ("kind", "severity", "description"))
    if old != new:
        event.save()
        audited(acting, "update", event, old=old, new=new, context={"from": "incident", "incident": incident.pk})


def do_flag_malicious(acting: Scope, incident_id: int, reason: str) -> SupplyIncident:
    """Flag an interruption as malicious (恶意断供): the bureau sees it on its list (XJ 五(二)2)."""
    require(acting, perms.SUPPLY_INCIDENT, "write")
    if not reason.strip():
        raise WorkflowError("请说明认定为恶意断供的理由", "a reason is needed", "value.required", "reason")
    with use_scope(acting), transaction.atomic():
        incident = _get(incident_id)
        if incident.kind != IncidentKind.INTERRUPTION:
            raise WorkflowError(
                "只有断供事件才能标记为恶意断供", "only interruptions can be malicious", "incident.kind"
            )
        if incident.status == IncidentStatus.REJECTED:
            raise _status_error(incident, LIVE, "标记")
        if incident.malicious:
            raise WorkflowError("该事件已标记为恶意断供", "already flagged", "incident.flagged")
        old = fields_of(incident, ("malicious", "malicious_reason"))
        incident.malicious = True
        incident.malicious_reason = reason.strip()
        incident.malicious_flagged_by_id = acting.actor_id
        incident.malicious_flagged_at = timezone.now()
        incident.save()
        audited(acting, "flag_malicious", incident, old=old, new=fields_of(incident, ("malicious", "malicious_reason")))
        _sync_credit_event(acting, incident)
    return incident


def do_clear_malicious(acting: Scope, incident_id: int, note: str) -> SupplyIncident:
    """The bureau finds the interruption was not malicious; the flag goes, the reason stays in the audit."""
    require(acting, perms.SUPPLY_INCIDENT, "approve")
    if not note.strip():
        raise WorkflowError("请说明撤销恶意断供标记的理由", "a reason is needed", "value.required", "note")
    with use_scope(acting), transaction.atomic():
        incident = _get(incident_id)
        if not incident.malicious:
            raise WorkflowError("该事件没有恶意断供标记", "not flagged", "incident.not_flagged")
        old = fields_of(incident, ("malicious", "malicious_reason"))
        incident.malicious = False
        incident.malicious_flagged_by_id = None
        incident.malicious_flagged_at = None
        incident.save()
        audited(
            acting,
            "clear_malicious",
            incident,
            old=old,
            new={"malicious": False},
            context={"note": note.strip()},
        )
        _sync_credit_event(acting, incident)
    return incident


def do_attach_proof(
    acting: Scope, incident_id: int, chunks: Iterable[bytes], original_name: str, *, declared_size: int | None = None
) -> IncidentProof:
    """Keep the supplier's interruption proof with the incident (PDF, JPEG or PNG up to 10 MiB)."""
    require(acting, perms.SUPPLY_INCIDENT, "write")
    checked = check_proof(chunks, original_name, declared_size=declared_size)
    with use_scope(acting), transaction.atomic():
        incident = _get(incident_id)
        if incident.status == IncidentStatus.REJECTED:
            raise _status_error(incident, LIVE, "上传证明")
        proof = IncidentProof(
            incident=incident,
            path=store(checked, incident.pk),
            original_name=checked.original_name,
            size=checked.size,
            content_type=checked.content_type,
            sha256=checked.sha256,
            uploaded_by_id=acting.actor_id,
        )
        proof.save()
        audited(
            acting,
            "attach_proof",
            proof,
            new=fields_of(proof, ("incident", "original_name", "size", "content_type", "sha256")),
        )
    return proof
