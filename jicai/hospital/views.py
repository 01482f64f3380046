"""The workspace's landing page: the workflows the user's role may open."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Workflow:
    resource: str
    url_name: str
    title: object
    summary: object
    requirement: str


WORKFLOWS = (
    Workflow(
        "demand",
        "hospital:demand_list",
        _("Demand reporting"),
        _("Pre-purchase quantities per item from the hospital's history, adjusted, approved and submitted."),
        "R-H2",
    ),
    Workflow(
        "target",
        "hospital:target_list",
        _("Department targets"),
        _("Agreed volumes split across departments by month, quarter or half-year."),
        "R-H3",
    ),
    Workflow(
        "feedback",
        "hospital:feedback_board",
        _("Progress feedback and appraisal"),
        _("Department ranking, reminders, published progress sheets and appraisal scores."),
        "R-H4, R-H5",
    ),
    Workflow(
        "substitute_control",
        "hospital:control_board",
        _("Substitute control"),
        _("Non-selected and substitute use by department and prescriber; limits and suspensions."),
        "R-H7–H9",
    ),
    Workflow(
        "formulary",
        "hospital:formulary_list",
        _("Formulary advice"),
        _("Keep, suspend or drop each product at a new round or contract expiry."),
        "R-H6",
    ),
    Workflow(
        "surplus",
        "hospital:surplus_list",
        _("Retained surplus"),
        _("Split the retained surplus between prescribers, pharmacy staff and the institution."),
        "R-G3",
    ),
    Workflow(
        "prescription_review",
        "hospital:review_list",
        _("Prescription review"),
        _("Reviewed prescriptions, findings and follow-up."),
        "R-H10",
    ),
    Workflow(
        "complaint",
        "hospital:complaint_list",
        _("Complaints"),
        _("Patients' objections and complaints about selected drugs."),
        "R-H11",
    ),
)


def available(request: HttpRequest) -> list[tuple[Workflow, str]]:
    """The workflows the user may read, with their URLs (a workflow whose page is missing is left out)."""
    scope = getattr(request, "scope", None)
    if scope is None:
        return []
    out = []
    for flow in WORKFLOWS:
        if not scope.can(flow.resource, "read"):
            continue
        try:
            out.append((flow, reverse(flow.url_name)))
        except NoReverseMatch:
            continue
    return out


@login_required
def index(request: HttpRequest) -> HttpResponse:
    flows = available(request)
    if not flows:
        raise Http404("no workspace for this role")
    return render(request, "hospital/index.html", {"flows": flows})
