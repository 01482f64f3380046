"""Template context: the menu shows only what the user's role may use."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _

from jicai.core.tenancy import Level, Scope
from jicai.hospital.feedback.queries import unread_count
from jicai.hospital.views import available as workspace_flows


def screen_links(scope: Scope) -> list[tuple[str, str, str]]:
    """(label, URL, what it is for) of the daily screens the scope may open."""
    reports = scope.can("report", "read")
    purchases = reports and scope.can("agreement", "read") and scope.can("purchase", "read")
    out = []
    if purchases and (scope.is_system or scope.level is Level.REGION):
        out.append(
            (
                _("Region overview"),
                reverse("web:overview"),
                _("Completion by institution and item, behind schedule, overdue payments, prepayments, caps"),
            )
        )
    if purchases and scope.level is Level.INSTITUTION:
        out.append(
            (
                _("My institution"),
                reverse("web:institution", args=[scope.institution_code]),
                _("Items, payables, prepayment tranches and alerts of the hospital"),
            )
        )
    if reports and scope.can("dispensing", "read") and scope.level is Level.DEPARTMENT:
        out.append(
            (
                _("My department"),
                reverse("web:department", args=[scope.institution_code, scope.department_code]),
                _("The department's targets and use by month"),
            )
        )
    if purchases:
        out.append((_("Progress"), reverse("web:progress"), _("Every agreement's progress, filtered and sorted")))
        out.append((_("Alerts"), reverse("web:alerts"), _("Behind schedule, caps, substitutes, overdue payments")))
    return out


def navigation(request: HttpRequest) -> dict[str, Any]:
    scope = getattr(request, "scope", None)
    if scope is None:
        return {"nav": []}
    items = [(_("Home"), reverse("web:home"))]
    items += [(label, url) for label, url, _what in screen_links(scope)]
    if workspace_flows(request):
        items.append((_("Hospital workspace"), reverse("hospital:index")))
    if any(scope.can(r, "read") for r in ("supply_incident", "credit", "sanction", "supply_report")):
        items.append((_("Supply"), reverse("supply:index")))
    if any(scope.can(r, "read") for r in ("adverse_reaction", "quality_problem", "evaluation")):
        items.append((_("Quality and evaluation"), reverse("quality:index")))
    items.append((_("Data"), reverse("web:data")))
    if scope.can("import_run", "read"):
        items.append((_("Import history"), reverse("web:imports")))
    user = getattr(request, "user", None)
    if user is not None and user.is_staff:
        items.append((_("Administration"), reverse("admin:index")))
    unread = unread_count(scope) if scope.level is Level.DEPARTMENT else 0
    return {"nav": items, "scope": scope, "unread_notifications": unread}
