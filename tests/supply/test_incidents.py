"""Supply incidents (R-I1, R-I2): who reports what, the bureau's decisions, malicious flags, proof files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jicai.core.tenancy import ScopeError, system_scope, use_scope
from jicai.supply.actions import (
    IncidentInput,
    do_attach_proof,
    do_clear_malicious,
    do_close_incident,
    do_confirm_incident,
    do_flag_malicious,
    do_reject_incident,
    do_report_incident,
    do_update_incident,
)
from jicai.supply.common import WorkflowError
from jicai.supply.models import CreditEvent, IncidentProof, SupplyIncident
from jicai.supply.uploads import MAX_PROOF_BYTES, resolve
from tests.conftest import World

from .conftest import HN2, SELECTED, D, audit_actions

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n1 0 obj<<>>endobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32


def interruption(**kw: Any) -> IncidentInput:
    values: dict[str, Any] = {
        "batch_code": "HN-N7",
        "item_code": "A01",
        "kind": "interruption",
        "start_on": D(2022, 11, 15),
        "cause": "中选企业配送中断，已提供断供证明",
        "product_code": SELECTED,
    }
    return IncidentInput(**(values | kw))


def _all() -> list[SupplyIncident]:
    with system_scope("test"):
        return list(SupplyIncident.objects.order_by("pk"))


# --------------------------------------------------------------------------- reporting


def test_a_hospital_reports_an_interruption_of_its_own_institution(world: World) -> None:
    # When the VBP office reports (no institution given: it is its own)
    incident = do_report_incident(world.scope("hn_vbp"), interruption())
    # Then the incident is reported for 海南省人民医院, with the winning company of the product
    assert incident.status == "reported"
    assert (incident.institution_id, incident.region_code) == (world.hn_inst.pk, "460108")
    assert incident.company_id == world.company.pk
    assert incident.reported_by_id == world.user("hn_vbp").pk
    assert incident.end_on is None
    assert incident.is_open
    assert audit_actions("supply.SupplyIncident") == ["report"]


def test_a_hospital_cannot_report_for_another_institution(world: World) -> None:
    with pytest.raises(WorkflowError) as exc:
        do_report_incident(world.scope("hn_vbp"), interruption(institution_code=HN2))
    assert exc.value.field == "institution_code"
    assert "本机构" in exc.value.message_zh
    assert _all() == []


def test_a_bureau_records_a_region_wide_incident_and_may_confirm_it_at_once(world: World) -> None:
    incident = do_report_incident(world.scope("hn_admin"), interruption(kind="shortage"), confirm=True)
    assert (incident.institution_id, incident.region_code, incident.status) == (None, "460000", "confirmed")
    assert incident.region_wide
    assert audit_actions("supply.SupplyIncident") == ["report", "confirm"]


def test_a_city_bureau_cannot_record_for_a_region_outside_its_own(world: World) -> None:
    with pytest.raises(WorkflowError) as exc:
        do_report_incident(world.scope("sy_admin"), interruption(region_code="460100"))
    assert (exc.value.field, exc.value.code) == ("region_code", "scope.row")


def test_a_bureau_does_not_see_another_provinces_batch(world: World) -> None:
    with pytest.raises(WorkflowError) as exc:
        do_report_incident(world.scope("sx_admin"), interruption())
    assert exc.value.field == "batch_code"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"product_code": "XC08CAA014A001010100001"}, "product_code"),  # not a selected product of the item
        ({"item_code": "Z99"}, "item_code"),
        ({"kind": "delay"}, "kind"),
        ({"cause": "  "}, "cause"),
        ({"end_on": D(2022, 11, 1)}, "end_on"),
    ],
)
def test_reports_are_checked(world: World, change: dict[str, Any], field: str) -> None:
    with pytest.raises(WorkflowError) as exc:
        do_report_incident(world.scope("hn_vbp"), interruption(**change))
    assert exc.value.field == field


def test_the_same_incident_twice_is_refused(world: World) -> None:
    do_report_incident(world.scope("hn_vbp"), interruption())
    with pytest.raises(WorkflowError) as exc:
        do_report_incident(world.scope("hn_pharmacy"), interruption(cause="重复"))
    assert exc.value.code == "incident.duplicate"
    assert len(_all()) == 1


def test_roles_without_write_cannot_report(world: World) -> None:
    for user in ("hn_it", "hn_viewer", "hn_analyst", "hn_head"):
        with pytest.raises(ScopeError):
            do_report_incident(world.scope(user), interruption())


# --------------------------------------------------------------------------- the bureau's decisions


def test_confirm_then_close_records_a_shortage_in_the_suppliers_credit_file(world: World) -> None:
    incident = do_report_incident(world.scope("hn_vbp"), interruption())
    # a hospital may not decide
    with pytest.raises(ScopeError):
        do_confirm_incident(world.scope("hn_vbp"), incident.pk)
    do_confirm_incident(world.scope("hn_admin"), incident.pk, "断供证明已核实")
    closed = do_close_incident(world.scope("hn_admin"), incident.pk, end_on=D(2022, 11, 30))
    assert (closed.status, closed.end_on, closed.decision_note) == ("closed", D(2022, 11, 30), "断供证明已核实")
    assert closed.confirmed_by_id == closed.closed_by_id == world.user("hn_admin").pk
    with system_scope("test"):
        event = CreditEvent.objects.get()
    assert (event.company_id, event.kind, event.severity, event.source) == (
        world.company.pk,
        "shortage",
        "major",
        "incident",
    )
    assert (event.institution_id, event.occurred_on, event.incident_id) == (
        world.hn_inst.pk,
        D(2022, 11, 15),
        incident.pk,
    )
    assert audit_actions("supply.SupplyIncident") == ["report", "confirm", "close"]
    assert audit_actions("supply.CreditEvent") == ["create"]


def test_a_city_bureau_decides_only_inside_its_city(world: World) -> None:
    incident = do_report_incident(world.scope("hn_vbp"), interruption())  # 海口 460108
    with pytest.raises(ScopeError):
        do_confirm_incident(world.scope("sy_admin"), incident.pk)  # 三亚 460200: not visible
    with pytest.raises(ScopeError):
        do_confirm_incident(world.scope("sx_admin"), incident.pk)
    assert do_confirm_incident(world.scope("hn_admin"), incident.pk).status == "confirmed"


def test_steps_out_of_order_are_refused_with_the_reason(world: World) -> None:
    admin = world.scope("hn_admin")
    incident = do_report_incident(world.scope("hn_vbp"), interruption())
    with pytest.raises(WorkflowError) as exc:
        do_close_incident(admin, incident.pk)
    assert "已上报" in exc.value.message_zh
    assert "已确认" in exc.value.message_zh
    with pytest.raises(WorkflowError) as exc:
        do_reject_incident(admin, incident.pk, "")
    assert exc.value.field == "note"
    do_reject_incident(admin, incident.pk, "非中选产品")
    for step in (
        lambda: do_confirm_incident(admin, incident.pk),
        lambda: do_update_incident(world.scope("hn_vbp"), incident.pk, interruption()),
        lambda: do_flag_malicious(world.scope("hn_vbp"), incident.pk, "拒不供货"),
    ):
        with pytest.raises(WorkflowError):
            step()
    with system_scope("test"):
        assert not CreditEvent.objects.exists()  # a rejected report puts nothing on file


def test_closing_takes_the_end_on_record_and_refuses_an_end_before_the_start(world: World) -> None:
    admin = world.scope("hn_admin")
    incident = do_report_incident(world.scope("hn_vbp"), interruption(end_on=D(2022, 12, 10)), confirm=False)
    do_confirm_incident(admin, incident.pk)
    with pytest.raises(WorkflowError) as exc:
        do_close_incident(admin, incident.pk, end_on=D(2022, 11, 1))
    assert exc.value.field == "end_on"
    assert do_close_incident(admin, incident.pk).end_on == D(2022, 12, 10)


def test_a_confirmed_incident_keeps_its_item_place_and_start(world: World) -> None:
    incident = do_report_incident(world.scope("hn_vbp"), interruption())
    do_confirm_incident(world.scope("hn_admin"), incident.pk)
    with pytest.raises(WorkflowError) as exc:
        do_update_incident(world.scope("hn_vbp"), incident.pk, interruption(start_on=D(2022, 11, 1)))
    assert exc.value.code == "incident.confirmed"
    updated = do_update_incident(
        world.scope("hn_vbp"), incident.pk, interruption(end_on=D(2022, 11, 20), cause="已恢复")
    )
    assert (updated.end_on, updated.cause) == (D(2022, 11, 20), "已恢复")
    assert audit_actions("supply.SupplyIncident")[-1] == "update"


def test_another_hospital_cannot_touch_the_incident(world: World) -> None:
    incident = do_report_incident(world.scope("hn_vbp"), interruption())
    with pytest.raises(ScopeError):
        do_update_incident(world.scope("hn2_vbp"), incident.pk, interruption())
    with pytest.raises(ScopeError):
        do_flag_malicious(world.scope("hn2_vbp"), incident.pk, "恶意")


# --------------------------------------------------------------------------- malicious interruption


def test_a_malicious_interruption_is_flagged_to_the_bureau_with_who_and_why(world: World) -> None:
    incident = do_report_incident(world.scope("hn_vbp"), interruption())
    with pytest.raises(WorkflowError):
        do_flag_malicious(world.scope("hn_vbp"), incident.pk, " ")
    flagged = do_flag_malicious(world.scope("hn_vbp"), incident.pk, "有库存但拒绝向我院配送")
    assert (flagged.malicious, flagged.malicious_reason) == (True, "有库存但拒绝向我院配送")
    assert flagged.malicious_flagged_by_id == world.user("hn_vbp").pk
    assert flagged.malicious_flagged_at is not None
    with pytest.raises(WorkflowError) as exc:
        do_flag_malicious(world.scope("hn_vbp"), incident.pk, "再次")
    assert exc.value.code == "incident.flagged"
    # the bureau sees it on its list; confirming files a severe malicious interruption
    from jicai.supply.queries import flagged_incidents

    with use_scope(world.scope("hn_admin")):
        assert [i.pk for i in flagged_incidents()] == [incident.pk]
    with use_scope(world.scope("sx_admin")):
        assert list(flagged_incidents()) == []
    do_confirm_incident(world.scope("hn_admin"), incident.pk)
    with system_scope("test"):
        event = CreditEvent.objects.get()
    assert (event.kind, event.severity) == ("malicious_interruption", "severe")
    # the bureau finds it was not malicious: the event goes back to a shortage
    with pytest.raises(ScopeError):
        do_clear_malicious(world.scope("hn_vbp"), incident.pk, "误报")
    cleared = do_clear_malicious(world.scope("hn_admin"), incident.pk, "企业已说明为不可抗力")
    assert (cleared.malicious, cleared.malicious_flagged_by_id) == (False, None)
    with system_scope("test"):
        assert CreditEvent.objects.values_list("kind", "severity").get() == ("shortage", "major")
    with pytest.raises(WorkflowError):
        do_clear_malicious(world.scope("hn_admin"), incident.pk, "再次")
    assert audit_actions("supply.SupplyIncident") == ["report", "flag_malicious", "confirm", "clear_malicious"]
    assert audit_actions("supply.CreditEvent") == ["create", "update"]


def test_only_an_interruption_can_be_malicious(world: World) -> None:
    incident = do_report_incident(world.scope("hn_vbp"), interruption(kind="shortage"))
    with pytest.raises(WorkflowError) as exc:
        do_flag_malicious(world.scope("hn_vbp"), incident.pk, "恶意")
    assert exc.value.code == "incident.kind"


def test_an_incident_without_a_named_product_puts_no_supplier_on_file(world: World) -> None:
    incident = do_report_incident(world.scope("hn_vbp"), interruption(product_code=""))
    assert incident.company_id is None
    do_confirm_incident(world.scope("hn_admin"), incident.pk)
    with system_scope("test"):
        assert not CreditEvent.objects.exists()


# --------------------------------------------------------------------------- proof files


@pytest.mark.parametrize(
    ("data", "name", "kind"),
    [
        (PDF, "断供证明.pdf", "application/pdf"),
        (PNG, "scan.PNG", "image/png"),
        (JPEG, "photo.jpeg", "image/jpeg"),
        (PDF, "noext", "application/pdf"),
    ],
)
def test_proof_files_are_kept_by_content_type(world: World, settings: Any, data: bytes, name: str, kind: str) -> None:
    incident = do_report_incident(world.scope("hn_vbp"), interruption())
    proof = do_attach_proof(world.scope("hn_vbp"), incident.pk, [data[:10], data[10:]], f"C:\\docs\\{name}")
    assert (proof.original_name, proof.content_type, proof.size) == (name, kind, len(data))
    stored = resolve(proof.path)
    assert stored.read_bytes() == data
    assert stored.is_relative_to(Path(settings.JICAI_HOME).resolve() / "uploads" / "supply" / "incidents")
    assert audit_actions("supply.IncidentProof") == ["attach_proof"]


@pytest.mark.parametrize(
    ("data", "name", "code"),
    [
        (b"MZ\x90\x00" + b"\x00" * 20, "proof.pdf", "proof.type"),  # an executable named .pdf
        (b"GIF89a" + b"\x00" * 20, "proof.gif", "proof.type"),
        (PNG, "proof.pdf", "proof.extension"),  # a PNG named .pdf
        (b"", "empty.pdf", "proof.empty"),
    ],
)
def test_proof_files_of_other_types_are_refused_in_chinese(world: World, data: bytes, name: str, code: str) -> None:
    incident = do_report_incident(world.scope("hn_vbp"), interruption())
    with pytest.raises(WorkflowError) as exc:
        do_attach_proof(world.scope("hn_vbp"), incident.pk, [data], name)
    assert exc.value.code == code
    assert exc.value.message_zh
    with system_scope("test"):
        assert not IncidentProof.objects.exists()


def test_a_proof_file_above_ten_mib_is_refused(world: World) -> None:
    incident = do_report_incident(world.scope("hn_vbp"), interruption())
    assert MAX_PROOF_BYTES == 10 * 1024 * 1024
    big = [PDF, b"\x00" * MAX_PROOF_BYTES]
    with pytest.raises(WorkflowError) as exc:
        do_attach_proof(world.scope("hn_vbp"), incident.pk, big, "big.pdf")
    assert exc.value.code == "proof.too_large"
    assert "10 MB" in exc.value.message_zh
    with pytest.raises(WorkflowError):
        do_attach_proof(world.scope("hn_vbp"), incident.pk, [PDF], "big.pdf", declared_size=MAX_PROOF_BYTES + 1)


def test_a_proof_path_cannot_leave_the_upload_directory() -> None:
    with pytest.raises(FileNotFoundError):
        resolve("../../secret_key")


def test_the_same_file_twice_is_stored_once(world: World) -> None:
    incident = do_report_incident(world.scope("hn_vbp"), interruption())
    first = do_attach_proof(world.scope("hn_vbp"), incident.pk, [PDF], "a.pdf")
    second = do_attach_proof(world.scope("hn_admin"), incident.pk, [PDF], "b.pdf")
    # one file on disk, two rows: who uploaded it under which name
    assert first.path == second.path
    assert first.pk != second.pk
    assert (first.uploaded_by_id, second.uploaded_by_id) == (world.user("hn_vbp").pk, world.user("hn_admin").pk)
