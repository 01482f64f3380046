"""Template helpers of the quality pages: sortable column headers that keep the list's filters."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext, gettext_noop

register = template.Library()


@register.simple_tag(takes_context=True)
def sort_th(context: dict[str, Any], key: str, label: str, css: str = "") -> str:
    """``<th>`` with a link sorting by ``key`` (again: descending), keeping the other parameters."""
    request = context["request"]
    params = request.GET.copy()
    current = params.get("sort", "")
    params["sort"] = f"-{key}" if current == key else key
    params.pop("page", None)
    arrow = " ▲" if current == key else " ▼" if current == f"-{key}" else ""
    return format_html('<th class="{}"><a href="?{}">{}{}</a></th>', css, params.urlencode(), label, arrow)


@register.filter
def yesno_zh(value: Any) -> str:
    return "是" if value else "否"


SECTIONS = (
    # (url name, label, resource, url-name prefixes that mark it active)
    ("quality:index", gettext_noop("Quality and evaluation"), "", ("index",)),
    ("quality:reaction_list", gettext_noop("Adverse reactions"), "adverse_reaction", ("reaction_",)),
    ("quality:signal_list", gettext_noop("Cluster signals"), "adverse_reaction", ("signal_",)),
    ("quality:suspension_list", gettext_noop("Suspensions of use"), "adverse_reaction", ("suspension_",)),
    ("quality:problem_list", gettext_noop("Quality problems"), "quality_problem", ("problem_",)),
    ("quality:evaluation_list", gettext_noop("Clinical evaluation"), "evaluation", ("evaluation_",)),
    ("quality:scheme_list", gettext_noop("Weighting schemes"), "evaluation", ("scheme_",)),
    ("quality:substitution_items", gettext_noop("Shortage substitution choices"), "evaluation", ("substitution_",)),
)


@register.simple_tag(takes_context=True)
def quality_nav(context: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The section's links the user's role may open: (label, url, active)."""
    request = context["request"]
    scope = getattr(request, "scope", None)
    match = getattr(request, "resolver_match", None)
    current = match.url_name if match is not None else ""
    out = []
    for name, label, resource, prefixes in SECTIONS:
        if resource and (scope is None or not scope.can(resource, "read")):
            continue
        out.append((gettext(label), reverse(name), any(current.startswith(p) for p in prefixes)))
    return out
