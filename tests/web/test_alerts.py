"""The alerts inbox: scoped lists and the audited "mark handled" action."""

from __future__ import annotations

from typing import Any

import pytest

from jicai.core.models import AuditEntry
from jicai.core.tenancy import ScopeError, system_scope
from jicai.monitoring.actions import do_resolve_alert
from jicai.monitoring.models import Alert

from .conftest import AS_OF, HK, SY, TC, XA, client_for

pytestmark = pytest.mark.django_db


def alert_of(code: str, kind: str = "behind_schedule") -> Alert:
    with system_scope("test"):
        found: Alert = Alert.objects.get(institution_code=code, kind=kind)
        return found


def audit_rows() -> list[Any]:
    with system_scope("test"):
        return list(AuditEntry.objects.filter(model="monitoring.Alert").order_by("seq"))


@pytest.mark.parametrize(
    ("user", "codes"),
    [("hn_admin", {HK, SY}), ("sy_admin", {SY}), ("sx_admin", {XA, TC}), ("hn_vbp", {HK}), ("sx_vbp", {XA})],
)
def test_the_alert_list_holds_the_scopes_alerts_only(site: Any, user: str, codes: set[str]) -> None:
    r = client_for(site, user).get("/alerts/")
    assert r.status_code == 200
    assert {a.institution_code for a in r.context["page"].object_list} == codes


def test_the_alert_list_filters_by_kind_status_and_institution(site: Any) -> None:
    client = client_for(site, "hn_admin")
    r = client.get("/alerts/", {"kind": "tranche_fired"})
    assert [a.pk for a in r.context["page"].object_list] == [site.tranche_alert.pk]
    r = client.get("/alerts/", {"institution": SY})
    assert {a.institution_code for a in r.context["page"].object_list} == {SY}
    r = client.get("/alerts/", {"status": "resolved"})
    assert list(r.context["page"].object_list) == []
    r = client.get("/alerts/", {"institution": XA})  # another province's: nothing, not an error
    assert list(r.context["page"].object_list) == []
    r = client.get("/alerts/", {"q": "SY 进度滞后"})
    assert {a.institution_code for a in r.context["page"].object_list} == {SY}


def test_a_bureau_administrator_acknowledges_an_alert_with_an_audit_row(site: Any) -> None:
    alert = alert_of(HK)
    client = client_for(site, "hn_admin")
    r = client.post(f"/alerts/{alert.pk}/resolve/", {"next": f"/institutions/{HK}/", "note": "已电话督办"})
    assert r.status_code == 302
    assert r["Location"] == f"/institutions/{HK}/"
    alert.refresh_from_db()
    assert alert.status == "acknowledged"  # a situation: the cycle reopens it if it changes
    assert alert.resolved_on is not None
    (entry,) = audit_rows()
    assert (entry.action, entry.object_pk, entry.object_key) == ("acknowledge", str(alert.pk), alert.key)
    assert entry.old == {"status": "open", "resolved_on": None}
    assert entry.new["status"] == "acknowledged"
    assert entry.context == {"note": "已电话督办"}
    assert entry.actor_name == "hn_admin"
    # marking it again changes nothing and writes no second row
    client.post(f"/alerts/{alert.pk}/resolve/")
    assert len(audit_rows()) == 1


def test_the_hospitals_vbp_office_marks_its_own_alerts_handled(site: Any) -> None:
    alert = alert_of(HK)
    r = client_for(site, "hn_vbp").post(f"/alerts/{alert.pk}/resolve/", {"note": "已调整采购计划"})
    assert r.status_code == 302
    alert.refresh_from_db()
    assert alert.status == "acknowledged"
    assert audit_rows()[0].actor_name == "hn_vbp"


def test_a_fired_tranche_an_event_is_resolved(site: Any) -> None:
    done = do_resolve_alert(acting=site.scope("hn_admin"), alert_id=site.tranche_alert.pk)
    assert done.status == "resolved"


@pytest.mark.parametrize(
    ("user", "status"), [("hn_pharmacy", 403), ("hn_viewer", 403), ("sx_admin", 404), ("sx_vbp", 404), ("hn_head", 404)]
)
def test_others_cannot_resolve_an_alert(site: Any, user: str, status: int) -> None:
    alert = alert_of(HK)
    r = client_for(site, user).post(f"/alerts/{alert.pk}/resolve/")
    assert r.status_code == status
    alert.refresh_from_db()
    assert alert.status == "open"
    assert audit_rows() == []


def test_resolving_needs_a_post_and_never_redirects_off_site(site: Any) -> None:
    alert = alert_of(SY)
    client = client_for(site, "hn_admin")
    assert client.get(f"/alerts/{alert.pk}/resolve/").status_code == 405
    r = client.post(f"/alerts/{alert.pk}/resolve/", {"next": "//evil.example/"})
    assert r["Location"] == "/alerts/"


def test_the_action_refuses_scopes_without_the_right(site: Any) -> None:
    alert = alert_of(XA)
    with pytest.raises(Alert.DoesNotExist):
        do_resolve_alert(acting=site.scope("hn_admin"), alert_id=alert.pk)
    with pytest.raises(ScopeError):
        do_resolve_alert(acting=site.scope("hn_pharmacy"), alert_id=alert_of(HK).pk)
    resolved = do_resolve_alert(acting=site.scope("sx_admin"), alert_id=alert.pk, on=AS_OF)
    assert resolved.resolved_on == AS_OF


def test_the_institution_page_offers_resolving_to_those_who_may(site: Any) -> None:
    admin = client_for(site, "hn_admin").get(f"/institutions/{HK}/")
    assert admin.context["can_resolve"]
    assert f'data-testid="resolve-{alert_of(HK).pk}"' in admin.content.decode()
    office = client_for(site, "hn_vbp").get(f"/institutions/{HK}/")
    assert f'data-testid="resolve-{alert_of(HK).pk}"' in office.content.decode()
    pharmacy = client_for(site, "hn_pharmacy").get(f"/institutions/{HK}/")
    assert 'data-testid="resolve-' not in pharmacy.content.decode()
