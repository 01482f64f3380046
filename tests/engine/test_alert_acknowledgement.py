"""An alert a user marks handled: the cycle leaves it so while its situation holds (R-L1, R-H4)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from jicai.core.tenancy import Scope, system_scope
from jicai.monitoring import alerts_rules
from jicai.monitoring.actions import do_resolve_alert
from jicai.monitoring.cycle import store_alerts
from jicai.monitoring.models import Alert, AlertStatus

pytestmark = pytest.mark.django_db

KEY = "overdue:H46010800001"
KINDS = (alerts_rules.OVERDUE,)


def _candidate(severity: str, message: str) -> alerts_rules.AlertCandidate:
    return alerts_rules.AlertCandidate(
        kind=alerts_rules.OVERDUE,
        key=KEY,
        institution_code="H46010800001",
        region_code="460108",
        batch_code=None,
        item_code=None,
        severity=severity,
        message_zh=message,
        message_en=message,
        data={"overdue_lines": 1},
    )


def _stored() -> Alert:
    with system_scope("test"):
        found: Alert = Alert.objects.get(key=KEY)
        return found


def _run(day: int, *candidates: alerts_rules.AlertCandidate) -> dict[str, int]:
    raised = {c.key: c.severity for c in candidates}
    return store_alerts(list(candidates), dt.date(2026, 6, day), KINDS, raised=raised)


def test_a_handled_alert_stays_handled_until_its_situation_changes_or_ends(world: Any) -> None:
    # given an overdue-payment alert the bureau administrator has marked handled
    _run(1, _candidate("warning", "逾期 10 天"))
    do_resolve_alert(acting=Scope.system("test"), alert_id=_stored().pk, on=dt.date(2026, 6, 2))
    assert _stored().status == AlertStatus.ACKNOWLEDGED
    # when the next cycle finds the same situation, then it is left handled, not reopened
    assert _run(3, _candidate("warning", "逾期 12 天")) == {
        "alerts_created": 0,
        "alerts_updated": 0,
        "alerts_resolved": 0,
    }
    assert _stored().status == AlertStatus.ACKNOWLEDGED
    # when the situation changes (the overdue turns critical), then it opens again with the new message
    _run(4, _candidate("critical", "逾期 40 天"))
    reopened = _stored()
    assert (reopened.status, reopened.severity, reopened.message_zh) == (AlertStatus.OPEN, "critical", "逾期 40 天")
    assert reopened.resolved_on is None
    # when it is handled again and then the situation ends, then the cycle resolves it
    do_resolve_alert(acting=Scope.system("test"), alert_id=reopened.pk)
    assert _run(5) == {"alerts_created": 0, "alerts_updated": 0, "alerts_resolved": 1}
    assert _stored().status == AlertStatus.RESOLVED
    # and when the situation comes back later, the resolved alert opens again
    _run(6, _candidate("warning", "逾期 3 天"))
    assert _stored().status == AlertStatus.OPEN
