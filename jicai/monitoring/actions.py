"""Writes users make on monitoring results, each in one transaction with an audit row."""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from jicai.core import audit
from jicai.core.tenancy import Scope, ScopeError, use_scope
from jicai.monitoring.models import Alert, AlertKind, AlertStatus


def do_resolve_alert(*, acting: Scope, alert_id: int, note: str = "", on: dt.date | None = None) -> Alert:
    """Mark an open alert handled (R-L1, R-H4: the office has acted on it), audited.

    The alert must be visible to ``acting`` (else ``Alert.DoesNotExist``) and ``acting`` must hold
    ``alert:write`` in its territory (``ScopedModel.save`` checks both). A situation (behind
    schedule, cap, growth, overdue) becomes *acknowledged*: the cycle leaves it so while the
    situation is the same, opens it again when it changes (another item behind, overdue turning
    critical) and resolves it when it ends. A tranche alert (an event) is resolved.
    """
    with use_scope(acting), transaction.atomic():
        alert: Alert = Alert.objects.select_for_update().get(pk=alert_id)
        if not acting.can("alert", "write"):
            raise ScopeError(f"{acting.label} may not acknowledge alerts")
        if alert.status != AlertStatus.OPEN:
            return alert
        old = {"status": alert.status, "resolved_on": alert.resolved_on}
        alert.status = AlertStatus.RESOLVED if alert.kind == AlertKind.TRANCHE else AlertStatus.ACKNOWLEDGED
        alert.resolved_on = on or dt.date.today()
        alert.save(update_fields=["status", "resolved_on"])
        audit.record(
            acting,
            [
                audit.Change(
                    "acknowledge" if alert.status == AlertStatus.ACKNOWLEDGED else "resolve",
                    "monitoring.Alert",
                    alert.pk,
                    alert.key,
                    old=old,
                    new={"status": alert.status, "resolved_on": alert.resolved_on},
                    context={"note": note[:500]} if note else {},
                )
            ],
        )
    return alert
