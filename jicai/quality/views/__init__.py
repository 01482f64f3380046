"""The quality section's pages under /quality/ (R-J1, R-J2, R-K1)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from jicai.quality import queries
from jicai.quality.common import ADVERSE_REACTION, EVALUATION, QUALITY_PROBLEM
from jicai.quality.models import ProblemStatus, SignalStatus
from jicai.quality.views.common import scope_of


@login_required
def index(request: HttpRequest) -> HttpResponse:
    """Tiles of the registers the role may read, with what needs attention."""
    scope = scope_of(request)
    today = timezone.localdate()
    tiles: dict[str, int] = {}
    if scope.can(ADVERSE_REACTION, "read"):
        tiles["reports"] = queries.reactions(scope).count()
        tiles["signals"] = queries.signals(scope).filter(status=SignalStatus.OPEN).count()
        tiles["suspensions"] = queries.suspensions(scope).filter(queries.in_effect_q(today)).count()
    if scope.can(QUALITY_PROBLEM, "read"):
        open_statuses = [ProblemStatus.OPEN, ProblemStatus.WITH_DISTRIBUTOR, ProblemStatus.WITH_REGULATOR]
        tiles["problems"] = queries.problems(scope).filter(status__in=open_statuses).count()
    if scope.can(EVALUATION, "read"):
        tiles["evaluations"] = queries.evaluations(scope).count()
    if not tiles:
        raise Http404("no quality register for this role")
    return render(request, "quality/index.html", {"tiles": tiles, "today": today})
