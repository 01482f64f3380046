"""Writes of the substitute-control workflow (R-H7, R-H8, R-H9), each one transaction with audit rows.

* ``do_record_exception`` / ``do_end_exception`` (substitute_control:write — pharmacy, medical
  affairs): an antimicrobial exception for a product, a department and a patient or prescriber, with
  the clinical reason and its validity (R-H8). Only antimicrobials (catalog ``antimicrobial_class``).
* ``do_propose_measure`` (substitute_control:write): "limit quantity" (a monthly limit in the
  product's own dispensing units) or "suspend purchase" of a non-selected or substitute product of
  one of the institution's items, for the hospital or a department / prescriber, with a reason, the
  anomaly it answers and an expiry (R-H7).
* ``do_decide_measure`` (substitute_control:approve — leadership): approve or reject a proposal.
* ``do_revoke_measure``: withdraw a proposal (write) or lift an approved measure (approve).

Never a blanket ban (XJ 五(五)), checked on proposal and again on approval:

* a selected product is never limited or suspended;
* R-H9: an essential medicine is never limited or suspended when none of the item's selected
  products is one (and the profile keeps essential medicines, ``formulary.keep_essential``);
* a suspension is refused while an antimicrobial exception that overlaps it names the product and
  no other product of the generic (other than the selected ones, which the exception is there to
  avoid) is available without a suspension of its own — the patient's supply would stop.

Leadership holds ``approve`` but not ``write``: decisions are written in the system scope after the
measure was found in the leader's own territory; every audit row names the real actor.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from jicai.catalog.models import Product
from jicai.core.tenancy import Scope, use_scope
from jicai.hospital.common import WorkflowError, acting_institution, actor_id, audited, fields_of, require
from jicai.hospital.control.queries import KEEP_ESSENTIAL_ZH
from jicai.hospital.feedback.queries import engine
from jicai.hospital.models import (
    AntimicrobialException,
    ControlKind,
    ControlMeasure,
    ControlStatus,
    ExceptionReason,
)
from jicai.organizations.models import Department, Institution
from jicai.policy import params
from jicai.programme.models import Agreement, NonSelectedProduct, SelectedProduct

RESOURCE = "substitute_control"
_EXCEPTION_FIELDS = (
    "product",
    "department",
    "prescriber_code",
    "patient_key",
    "reason",
    "note",
    "valid_from",
    "valid_until",
)
_MEASURE_FIELDS = (
    "product",
    "department",
    "prescriber_code",
    "kind",
    "limit_qty",
    "reason",
    "anomaly",
    "status",
    "effective_from",
    "expires_on",
    "decided_by",
    "decided_at",
    "decision_note",
)


def _system(acting: Scope) -> Scope:
    return Scope.system(f"{acting.actor_name or 'system'} (workspace)")


def _product(code: str) -> Product:
    found: Product | None = Product.objects.filter(code=(code or "").strip()).first()
    if found is None:
        raise WorkflowError(f"药品编码 {code} 不存在", f"unknown product {code}", code="product")
    return found


def _department(inst: Institution, code: str | None, *, required: bool) -> Department | None:
    if not code:
        if required:
            raise WorkflowError("请选择科室", "a department is needed", code="department")
        return None
    found: Department | None = Department.objects.filter(institution=inst, code=code.strip()).first()
    if found is None:
        raise WorkflowError(f"本院没有科室 {code}", f"no department {code} at {inst.code}", code="department")
    return found


# --------------------------------------------------------------------------------------------------
# Antimicrobial exceptions (R-H8)


def do_record_exception(
    acting: Scope,
    *,
    product_code: str,
    department_code: str,
    reason: str,
    valid_from: dt.date,
    valid_until: dt.date,
    prescriber_code: str = "",
    patient_key: str = "",
    note: str = "",
    institution: str | None = None,
) -> AntimicrobialException:
    """Record why a non-selected antimicrobial may be used; its covered lines are not anomalies."""
    require(acting, RESOURCE, "write")
    if reason not in ExceptionReason.values:
        raise WorkflowError(
            "请选择例外原因（会诊、疗效不佳、疗程延长或不良反应）", f"unknown reason {reason!r}", code="reason"
        )
    if valid_until < valid_from:
        raise WorkflowError("有效期截止日期不能早于开始日期", "valid_until is before valid_from", code="validity")
    prescriber_code, patient_key = prescriber_code.strip(), patient_key.strip()
    if not prescriber_code and not patient_key:
        raise WorkflowError(
            "请填写患者标识或处方医师（例外只覆盖该患者或该医师的用药）",
            "an exception names a patient or a prescriber",
            code="who",
        )
    with use_scope(acting), transaction.atomic():
        inst = acting_institution(acting, institution)
        product = _product(product_code)
        if not product.antimicrobial_class:
            raise WorkflowError(
                f"{product.generic_name} 不是抗菌药物，不能登记抗菌药物例外（R-H8）",
                f"{product.code} is not an antimicrobial",
                code="not_antimicrobial",
            )
        dept = _department(inst, department_code, required=True)
        obj = AntimicrobialException(
            institution=inst,
            product=product,
            department=dept,
            prescriber_code=prescriber_code[:40],
            patient_key=patient_key[:64],
            reason=reason,
            note=note.strip(),
            valid_from=valid_from,
            valid_until=valid_until,
            created_by_id=actor_id(acting),
        )
        obj.save()
        audited(acting, "control.record_exception", obj, new=fields_of(obj, _EXCEPTION_FIELDS))
    return obj


def do_end_exception(
    acting: Scope, exception_id: int, *, on: dt.date | None = None, note: str = ""
) -> AntimicrobialException:
    """End an exception early: it stays valid up to ``on`` (default today)."""
    require(acting, RESOURCE, "write")
    day = on or timezone.localdate()
    with use_scope(acting), transaction.atomic():
        obj: AntimicrobialException | None = AntimicrobialException.objects.filter(pk=exception_id).first()
        if obj is None:
            raise AntimicrobialException.DoesNotExist(f"no exception {exception_id} for {acting.label}")
        if day < obj.valid_from:
            raise WorkflowError(
                "结束日期不能早于例外的开始日期", "the end is before the exception's start", code="validity"
            )
        if day >= obj.valid_until:
            return obj
        old = fields_of(obj, _EXCEPTION_FIELDS)
        obj.valid_until = day
        if note.strip():
            obj.note = f"{obj.note}\n{note.strip()}".strip()
        obj.save()
        audited(acting, "control.end_exception", obj, old=old, new=fields_of(obj, _EXCEPTION_FIELDS))
    return obj


# --------------------------------------------------------------------------------------------------
# Measures (R-H7, R-H9)


def _item_context(inst: Institution, product: Product) -> tuple[list[NonSelectedProduct], list[SelectedProduct]]:
    """The institution's items that list ``product`` as non-selected or substitute, and their selected products."""
    item_ids = set(Agreement.objects.filter(institution=inst).values_list("item_id", flat=True))
    if SelectedProduct.objects.filter(item_id__in=item_ids, product=product).exists():
        raise WorkflowError(
            f"{product.generic_name} 是本院集采中选药品，不能限量或暂停采购",
            f"{product.code} is a selected product",
            code="selected",
        )
    listed = list(
        NonSelectedProduct.objects.filter(item_id__in=item_ids, product=product).select_related("batch", "item")
    )
    if not listed:
        raise WorkflowError(
            f"{product.generic_name} 不是本院集采品种的非中选药品或同类可替代药品",
            f"{product.code} is not a non-selected or substitute product of the institution's items",
            code="not_watched",
        )
    selected = list(
        SelectedProduct.objects.filter(item_id__in={n.item_id for n in listed}).select_related("product", "batch")
    )
    return listed, selected


def _keeps_essential(listed: list[NonSelectedProduct], on: dt.date) -> bool:
    _home, profiles = engine()
    names = {n.batch.policy_profile or "national" for n in listed}
    return any(
        params.formulary_params(profiles.resolve(name, on)).keep_essential_when_selected_not_essential for name in names
    )


def measure_refusal(
    inst: Institution,
    product: Product,
    *,
    kind: str,
    department: Department | None,
    effective_from: dt.date,
    expires_on: dt.date,
    exclude: int | None = None,
) -> None:
    """Raise the WorkflowError that forbids this measure, if one does (module docstring). Run in scope."""
    listed, selected = _item_context(inst, product)
    if (
        product.is_essential
        and not any(s.product.is_essential for s in selected)
        and _keeps_essential(listed, effective_from)
    ):
        raise WorkflowError(
            f"{KEEP_ESSENTIAL_ZH}：{product.generic_name} 是国家基本药物，而中选药品不是，"
            "按规定保留基本药物品规，不能限量或暂停采购（R-H9）。",
            f"{product.code} is an essential medicine and the selected product is not: it is kept (R-H9)",
            code="essential",
        )
    if kind != ControlKind.SUSPEND:
        return
    open_exceptions = AntimicrobialException.objects.filter(
        institution=inst, product=product, valid_until__gte=effective_from, valid_from__lte=expires_on
    )
    if department is not None:
        open_exceptions = open_exceptions.filter(department=department)
    found = list(open_exceptions.order_by("-valid_until"))
    if not found:
        return
    selected_codes = {s.product.code for s in selected}
    others = set(
        Product.objects.filter(generic_name=product.generic_name)
        .exclude(code=product.code)
        .exclude(code__in=selected_codes)
        .values_list("code", flat=True)
    )
    suspended = ControlMeasure.objects.filter(
        institution=inst,
        kind=ControlKind.SUSPEND,
        status__in=[ControlStatus.APPROVED, ControlStatus.PROPOSED],
        product__code__in=others,
        effective_from__lte=expires_on,
        expires_on__gte=effective_from,
    )
    if exclude is not None:
        suspended = suspended.exclude(pk=exclude)
    available = others - set(suspended.values_list("product__code", flat=True))
    if not available:
        raise WorkflowError(
            f"不能暂停采购：{product.generic_name} 是 {len(found)} 条有效抗菌药物例外"
            f"（至 {found[0].valid_until.isoformat()}）的唯一供应，暂停将中断患者用药；"
            "请改为限量，或在例外到期后再暂停（R-H7 不“一刀切”，R-H8）。",
            f"{product.code} is the only supply for {len(found)} open antimicrobial exception(s); "
            "limit the quantity instead (never a blanket ban)",
            code="only_supply",
        )


def _limit(kind: str, limit_qty: Any) -> Decimal | None:
    if kind == ControlKind.SUSPEND:
        if limit_qty not in (None, ""):
            raise WorkflowError("暂停采购不设限量", "a suspension has no quantity limit", code="limit_qty")
        return None
    try:
        value = Decimal(str(limit_qty)) if limit_qty not in (None, "") else None
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or value <= 0:
        raise WorkflowError(
            "限量须填写大于 0 的月度数量", "a limit needs a positive monthly quantity", code="limit_qty"
        )
    return value.quantize(Decimal("0.0001"))


def do_propose_measure(
    acting: Scope,
    *,
    product_code: str,
    kind: str,
    reason: str,
    effective_from: dt.date,
    expires_on: dt.date,
    limit_qty: Any = None,
    department_code: str | None = None,
    prescriber_code: str = "",
    anomaly: dict[str, Any] | None = None,
    institution: str | None = None,
) -> ControlMeasure:
    """Propose a limit or a suspension for leadership's approval (module docstring for the refusals)."""
    require(acting, RESOURCE, "write")
    if kind not in ControlKind.values:
        raise WorkflowError("请选择措施：限量或暂停采购", f"unknown measure {kind!r}", code="kind")
    if not reason.strip():
        raise WorkflowError("请填写措施的理由", "a measure needs a reason", code="reason")
    if expires_on < effective_from:
        raise WorkflowError("到期日不能早于生效日期", "expires_on is before effective_from", code="expiry")
    limit = _limit(kind, limit_qty)
    with use_scope(acting), transaction.atomic():
        inst = acting_institution(acting, institution)
        product = _product(product_code)
        dept = _department(inst, department_code, required=False)
        measure_refusal(inst, product, kind=kind, department=dept, effective_from=effective_from, expires_on=expires_on)
        obj = ControlMeasure(
            institution=inst,
            product=product,
            department=dept,
            prescriber_code=prescriber_code.strip()[:40],
            kind=kind,
            limit_qty=limit,
            reason=reason.strip(),
            anomaly=anomaly or {},
            status=ControlStatus.PROPOSED,
            effective_from=effective_from,
            expires_on=expires_on,
            created_by_id=actor_id(acting),
        )
        obj.save()
        audited(acting, "control.propose_measure", obj, new=fields_of(obj, _MEASURE_FIELDS))
    return obj


def _measure(acting: Scope, measure_id: int) -> ControlMeasure:
    found: ControlMeasure | None = (
        ControlMeasure.objects.select_related("product", "department", "institution").filter(pk=measure_id).first()
    )
    if found is None:
        raise ControlMeasure.DoesNotExist(f"no measure {measure_id} for {acting.label}")
    return found


def do_decide_measure(acting: Scope, measure_id: int, *, approve: bool, note: str = "") -> ControlMeasure:
    """Leadership approves or rejects a proposed measure (approval re-checks the refusals)."""
    require(acting, RESOURCE, "approve")
    now = timezone.now()
    with use_scope(acting):
        obj = _measure(acting, measure_id)
        if obj.status != ControlStatus.PROPOSED:
            raise WorkflowError("只能审批待审批的措施", f"the measure is {obj.status}", code="status")
        if approve:
            if obj.expires_on < timezone.localdate():
                raise WorkflowError("措施已过到期日，不能批准", "the measure has already expired", code="expired")
            measure_refusal(
                obj.institution,
                obj.product,
                kind=obj.kind,
                department=obj.department,
                effective_from=obj.effective_from,
                expires_on=obj.expires_on,
                exclude=obj.pk,
            )
    old = fields_of(obj, _MEASURE_FIELDS)
    obj.status = ControlStatus.APPROVED if approve else ControlStatus.REJECTED
    obj.decided_by_id = actor_id(acting)
    obj.decided_at = now
    obj.decision_note = note.strip()
    with transaction.atomic(), use_scope(_system(acting)):
        ControlMeasure.objects.filter(pk=obj.pk, status=ControlStatus.PROPOSED).update(
            status=obj.status, decided_by_id=obj.decided_by_id, decided_at=now, decision_note=obj.decision_note
        )
        audited(
            acting,
            "control.approve_measure" if approve else "control.reject_measure",
            obj,
            old=old,
            new=fields_of(obj, _MEASURE_FIELDS),
        )
    return obj


def do_revoke_measure(acting: Scope, measure_id: int, *, note: str = "") -> ControlMeasure:
    """Withdraw a proposed measure (substitute_control:write) or lift an approved one (approve)."""
    with use_scope(acting):
        obj = _measure(acting, measure_id)
    if obj.status == ControlStatus.PROPOSED:
        require(acting, RESOURCE, "write")
    elif obj.status == ControlStatus.APPROVED:
        require(acting, RESOURCE, "approve")
    else:
        raise WorkflowError("该措施已被驳回或撤销", f"the measure is {obj.status}", code="status")
    old = fields_of(obj, _MEASURE_FIELDS)
    previous = obj.status
    obj.status = ControlStatus.REVOKED
    if note.strip():
        obj.decision_note = f"{obj.decision_note}\n撤销：{note.strip()}".strip()
    with transaction.atomic(), use_scope(_system(acting)):
        ControlMeasure.objects.filter(pk=obj.pk, status=previous).update(
            status=ControlStatus.REVOKED, decision_note=obj.decision_note
        )
        audited(
            acting,
            "control.revoke_measure",
            obj,
            old=old,
            new=fields_of(obj, _MEASURE_FIELDS),
            context={"from": previous},
        )
    return obj
