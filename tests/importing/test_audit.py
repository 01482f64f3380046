"""The audit trail of imports: who, in which scope, what changed; hash chain verified; append-only."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.core.management import call_command
from django.db import DatabaseError, IntegrityError, connection, transaction

from jicai.core import audit
from jicai.core.models import AuditEntry, AuditHead
from jicai.core.tenancy import use_scope
from jicai.organizations.models import Institution
from tests.conftest import csv_bytes
from tests.importing.helpers import do_import, operator

INSTITUTIONS = """
医疗机构编码,医疗机构名称,行政区划代码,机构类型,机构等级
H46010800001,海南省人民医院（秀英院区）,460108,公立,3
H46010500003,海口市中医医院,460105,民营,2
"""


@pytest.fixture
def imported(world: Any) -> dict[str, Any]:
    """A region bureau imports one new institution and renames another; then a few more entries."""
    scope = world.scope("hn_admin")
    result = do_import("institutions", csv_bytes(INSTITUTIONS), "institutions.csv", scope)
    assert result.errors == [], result.issues
    assert (result.created, result.updated) == (1, 1)
    more = csv_bytes("科室编码,科室名称,医疗机构编码\nEK01,儿科,H46010800001\nFK01,妇科,H46010800001")
    assert do_import("departments", more, "departments.csv", scope).created == 2
    return {"result": result, "user": world.user("hn_admin")}


def _verify_command() -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("audit", "verify", stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def test_audit_rows_carry_actor_scope_action_object_and_values(imported: dict[str, Any]) -> None:
    user, result = imported["user"], imported["result"]
    with use_scope(operator()):
        new = Institution.objects.get(code="H46010500003")
        renamed = Institution.objects.get(code="H46010800001")
    entries = list(AuditEntry.objects.filter(model="organizations.Institution").order_by("seq"))
    assert len(entries) == 2
    for entry in entries:
        assert entry.actor_id == user.pk
        assert entry.actor_name == "hn_admin"
        assert entry.scope == "region:460000"
        assert entry.context == {"dataset": "institutions", "file": "institutions.csv", "import_run": result.run_id}
        assert len(entry.hash) == 64
    by_action = {e.action: e for e in entries}
    assert set(by_action) == {"create", "update"}
    created, updated = by_action["create"], by_action["update"]
    assert (created.object_pk, created.object_key, created.old) == (str(new.pk), "H46010500003", None)
    assert created.new["code"] == "H46010500003"
    assert created.new["name"] == "海口市中医医院"
    assert created.new["kind"] == "private"
    assert created.new["level"] == 2
    assert (updated.object_pk, updated.object_key) == (str(renamed.pk), "H46010800001")
    assert updated.old == {"name": "海南省人民医院"}
    assert updated.new == {"name": "海南省人民医院（秀英院区）"}


def test_entries_form_a_chain_and_the_head_points_at_the_tip(imported: dict[str, Any]) -> None:
    entries = list(AuditEntry.objects.order_by("seq"))
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert entries[0].prev_hash == audit.GENESIS
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.hash
    head = AuditHead.objects.get(id=1)
    assert (head.last_seq, head.last_hash) == (entries[-1].seq, entries[-1].hash)
    assert list(audit.verify()) == []


def test_verify_command_passes_on_a_fresh_chain(db: Any) -> None:
    code, out, _ = _verify_command()
    assert code == 0
    assert "0 entries" in out


def test_verify_command_passes_after_imports(imported: dict[str, Any]) -> None:
    code, out, err = _verify_command()
    assert code == 0, err
    assert f"{AuditEntry.objects.count()} entries verified" in out


# --- tampering (the triggers are switched off inside the test's own transaction) ------------------


@contextmanager
def _triggers_off() -> Iterator[None]:
    """Drop the append-only guard for this test only; the test transaction's rollback restores it."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE core_auditentry DISABLE TRIGGER core_auditentry_no_change")
        else:
            cursor.execute("DROP TRIGGER core_auditentry_no_update")
            cursor.execute("DROP TRIGGER core_auditentry_no_delete")
    yield


def _raw_set_new(seq: int, value: dict[str, Any]) -> None:
    cast = "::jsonb" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE core_auditentry SET new = %s{cast} WHERE seq = %s",
            [json.dumps(value, ensure_ascii=False), seq],
        )


def test_edited_entry_is_detected(imported: dict[str, Any]) -> None:
    target = AuditEntry.objects.get(model="organizations.Institution", action="update")
    with _triggers_off():
        _raw_set_new(target.seq, {"name": "某某医院"})
    problems = list(audit.verify())
    assert audit.ChainProblem(target.seq, "content does not match its hash") in problems
    assert {p.seq for p in problems} == {target.seq}
    code, _, err = _verify_command()
    assert code == 1
    assert f"entry #{target.seq}:" in err
    assert "BROKEN" in err


def test_deleted_last_entry_is_detected(imported: dict[str, Any]) -> None:
    last = AuditEntry.objects.order_by("-seq").first()
    assert last is not None
    with _triggers_off(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM core_auditentry WHERE seq = %s", [last.seq])
    problems = list(audit.verify())
    assert len(problems) == 1
    assert problems[0].seq == last.seq - 1
    assert "head" in problems[0].reason
    code, _, err = _verify_command()
    assert code == 1
    assert f"entry #{last.seq - 1}:" in err


def test_deleted_middle_entry_is_detected(imported: dict[str, Any]) -> None:
    with _triggers_off(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM core_auditentry WHERE seq = %s", [2])
    problems = list(audit.verify())
    assert {p.seq for p in problems} == {3}
    assert any("missing" in p.reason for p in problems)
    assert _verify_command()[0] == 1


# --- append-only guards ---------------------------------------------------------------------------


def _rejected(action: Any) -> None:
    with pytest.raises((IntegrityError, DatabaseError, PermissionError)), transaction.atomic():
        action()


def test_orm_update_and_delete_of_audit_rows_are_refused(imported: dict[str, Any]) -> None:
    entry = AuditEntry.objects.order_by("seq").first()
    assert entry is not None
    snapshot = list(AuditEntry.objects.order_by("seq").values_list("seq", "new", "hash"))

    _rejected(lambda: AuditEntry.objects.filter(seq=entry.seq).update(new={"name": "x"}))
    _rejected(lambda: AuditEntry.objects.filter(seq=entry.seq).delete())
    _rejected(lambda: AuditEntry.objects.all().delete())

    def save_again() -> None:
        entry.new = {"name": "x"}
        entry.save()

    with pytest.raises(PermissionError):
        save_again()
    with pytest.raises(PermissionError):
        entry.delete()

    assert list(AuditEntry.objects.order_by("seq").values_list("seq", "new", "hash")) == snapshot
    assert list(audit.verify()) == []


def test_raw_sql_update_and_delete_are_refused_by_the_database(imported: dict[str, Any]) -> None:
    def update() -> None:
        _raw_set_new(1, {"name": "x"})

    def delete() -> None:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM core_auditentry WHERE seq = %s", [1])

    _rejected(update)
    _rejected(delete)
    assert list(audit.verify()) == []


def test_rejected_and_dry_run_imports_write_no_audit_rows(world: Any) -> None:
    bad = csv_bytes(INSTITUTIONS + "H4601,坏编码,460108,公立,3\n")
    assert do_import("institutions", bad, "bad.csv").status == "rejected"
    assert do_import("institutions", csv_bytes(INSTITUTIONS), "ok.csv", dry_run=True).status == "dry_run"
    assert AuditEntry.objects.count() == 0
    assert list(audit.verify()) == []
