"""The supply pages under /supply/: one module per register."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from jicai.supply import permissions as perms
from jicai.supply.views.common import acting


@dataclass(frozen=True)
class Register:
    resource: str
    url_name: str
    title: object
    summary: object
    requirement: str
    also: str = ""  # a second resource the page reads (the scorecard reads purchases)


REGISTERS = (
    Register(
        perms.SUPPLY_INCIDENT,
        "supply:incident_list",
        _("Supply incidents"),
        _("Shortages and interruptions of selected products, with the supplier's proof and the bureau's decision."),
        "R-I1, R-I2",
    ),
    Register(
        perms.SUPPLY_INCIDENT,
        "supply:flagged_list",
        _("Malicious interruptions"),
        _("Interruptions flagged as malicious, for the insurance bureau."),
        "R-I2",
    ),
    Register(
        perms.CREDIT,
        "supply:credit_list",
        _("Supplier credit file"),
        _("Late deliveries, shortages, near-expiry deliveries, unsuitable packs and other problems per company."),
        "R-I3",
    ),
    Register(
        perms.CREDIT,
        "supply:ranking",
        _("Credit ranking"),
        _("Each company's score and standing per period."),
        "R-I3",
    ),
    Register(
        perms.SANCTION,
        "supply:sanction_list",
        _("Sanctions"),
        _("Warnings, compensation, exit, backup suppliers and emergency supply."),
        "R-I3",
    ),
    Register(
        perms.CREDIT,
        "supply:scorecard",
        _("Distributor scorecard"),
        _("On-time rate and fill rate of each distributor from the purchase lines."),
        "R-D4, R-I3",
        also="purchase",
    ),
    Register(
        perms.SUPPLY_REPORT,
        "supply:report_list",
        _("Supply reports"),
        _("Manufacturers' capacity, stock and production stops per item."),
        "R-I4",
    ),
    Register(
        perms.SUPPLY_REPORT,
        "supply:low_stock",
        _("Low stock alerts"),
        _("Latest reports whose stock covers less than the threshold, or whose production stopped."),
        "R-I4",
    ),
)


@login_required
def index(request: HttpRequest) -> HttpResponse:
    scope = acting(request)
    registers = [
        (r, reverse(r.url_name))
        for r in REGISTERS
        if scope.can(r.resource, "read") and (not r.also or scope.can(r.also, "read"))
    ]
    if not registers:
        raise PermissionDenied("no supply register for this role")
    return render(request, "supply/index.html", {"registers": registers})
