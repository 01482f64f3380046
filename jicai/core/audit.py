"""Writing and verifying the hash-chained audit trail (R-L5)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from jicai.core.models import AuditEntry, AuditHead
from jicai.core.tenancy import Scope

GENESIS = "0" * 64


def json_default(value: Any) -> Any:
    """``json.dumps(default=...)``: Decimal and dates as strings, like ``to_jsonable``, without walking
    the whole value in Python (the C encoder calls this only for the values it cannot write)."""
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):  # dates, datetimes, times
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_jsonable(value: Any) -> Any:
    """Values as stable JSON: Decimal and dates as strings so the hash never depends on floats."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


@dataclass
class Change:
    """A write to be audited; ``old``/``new`` hold only the fields that matter."""

    action: str
    model: str
    object_pk: Any = ""
    object_key: str = ""
    old: dict[str, Any] | None = None
    new: dict[str, Any] | None = None
    context: dict[str, Any] = field(default_factory=dict)


def _stamp(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(
    *,
    seq: int,
    at: dt.datetime,
    actor_id: int | None,
    actor_name: str,
    scope: str,
    action: str,
    model: str,
    object_pk: str,
    object_key: str,
    old: Any,
    new: Any,
    context: Any,
    prev_hash: str,
) -> str:
    payload = {
        "seq": seq,
        "at": _stamp(at),
        "actor_id": actor_id,
        "actor_name": actor_name,
        "scope": scope,
        "action": action,
        "model": model,
        "object_pk": object_pk,
        "object_key": object_key,
        "old": old,
        "new": new,
        "context": context,
        "prev_hash": prev_hash,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def record(scope: Scope, changes: Iterable[Change], *, batch_size: int = 2000) -> int:
    """Append ``changes`` to the chain inside the caller's transaction; returns how many.

    Must run inside ``transaction.atomic`` together with the write it records, so that a
    rolled-back write leaves no audit row and a committed one always has its row.
    """
    items = list(changes)
    if not items:
        return 0
    with transaction.atomic():
        head, _ = AuditHead.objects.select_for_update().get_or_create(id=1)
        seq, prev = head.last_seq, head.last_hash
        now = timezone.now()
        rows: list[AuditEntry] = []
        for change in items:
            seq += 1
            old = to_jsonable(change.old)
            new = to_jsonable(change.new)
            context = to_jsonable(change.context)
            pk = str(change.object_pk or "")
            digest = entry_hash(
                seq=seq,
                at=now,
                actor_id=scope.actor_id,
                actor_name=scope.actor_name,
                scope=scope.label,
                action=change.action,
                model=change.model,
                object_pk=pk,
                object_key=change.object_key[:255],
                old=old,
                new=new,
                context=context,
                prev_hash=prev,
            )
            rows.append(
                AuditEntry(
                    seq=seq,
                    at=now,
                    actor_id=scope.actor_id,
                    actor_name=scope.actor_name,
                    scope=scope.label,
                    action=change.action,
                    model=change.model,
                    object_pk=pk,
                    object_key=change.object_key[:255],
                    old=old,
                    new=new,
                    context=context,
                    prev_hash=prev,
                    hash=digest,
                )
            )
            prev = digest
        AuditEntry.objects.bulk_create(rows, batch_size=batch_size)
        head.last_seq, head.last_hash = seq, prev
        head.save(update_fields=["last_seq", "last_hash"])
    return len(items)


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    reason: str


def verify(*, chunk: int = 5000) -> Iterator[ChainProblem]:
    """Recompute every hash in order; yields each break (edited, removed or reordered rows)."""
    prev = GENESIS
    expected_seq = 1
    last_seq = 0
    qs = AuditEntry.objects.order_by("seq")
    for row in qs.iterator(chunk_size=chunk):
        if row.seq != expected_seq:
            yield ChainProblem(row.seq, f"missing entries {expected_seq}..{row.seq - 1}")
        if row.prev_hash != prev:
            yield ChainProblem(row.seq, "previous-hash link broken")
        digest = entry_hash(
            seq=row.seq,
            at=row.at,
            actor_id=row.actor_id,
            actor_name=row.actor_name,
            scope=row.scope,
            action=row.action,
            model=row.model,
            object_pk=row.object_pk,
            object_key=row.object_key,
            old=row.old,
            new=row.new,
            context=row.context,
            prev_hash=row.prev_hash,
        )
        if digest != row.hash:
            yield ChainProblem(row.seq, "content does not match its hash")
        prev = row.hash
        expected_seq = row.seq + 1
        last_seq = row.seq
    head = AuditHead.objects.filter(id=1).first()
    if head is not None and (head.last_seq != last_seq or head.last_hash != prev):
        yield ChainProblem(last_seq, "chain tip does not match the recorded head (entries removed at the end)")
