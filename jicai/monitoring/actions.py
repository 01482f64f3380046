"""Writes users make on monitoring results, each in one transaction with an audit row."""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from jicai.core import audit
from jicai.core.tenancy import Scope, ScopeError, use_scope
from jicai.monitoring.models import Alert, AlertStatus


def do_resolve_alert(*, acting: Scope, alert_id: int, note: str = "", on: dt.date | None = None) -> Alert:
    """Mark an open alert resolved (R-L1, R-H4: the office has acted on it), audited.

    The alert must be visible to ``acting`` (else ``Alert.DoesNotExist``) and ``acting`` must hold
    ``report:write`` in its territory (``ScopedModel.save`` checks both). An alert whose situation
    still holds at the next monthly cycle is opened again by the cycle; a tranche alert (an event)
    stays resolved.
    """
    with use_scope(acting), transaction.atomic():
        alert: Alert = Alert.objects.select_for_update().get(pk=alert_id)
        if not acting.can("report", "write"):
            raise ScopeError(f"{acting.label} may not resolve alerts")
        if alert.status == AlertStatus.RESOLVED:
            return alert
        old = {"status": alert.status, "resolved_on": alert.resolved_on}
        alert.status = AlertStatus.RESOLVED
        alert.resolved_on = on or dt.date.today()
        alert.save(update_fields=["status", "resolved_on"])
        audit.record(
            acting,
            [
                audit.Change(
                    "resolve",
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
