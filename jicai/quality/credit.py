"""The hook from a quality problem to the supplier credit file (R-J1 → R-I3).

A quality problem of a product is an event in the supplier's credit file (企业诚信档案, XJ 四.3). The
credit file is the supply app's: ``quality_problem_credit_event`` records one ``quality_problem``
event through ``jicai.supply.actions.credit.do_record_credit_event``, against the company responsible
for the product — the winning company of the round that applies to the institution, else the company
named as the product's manufacturer. With neither on record nothing is recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jicai.core.tenancy import Scope, region_ancestors, system_scope
from jicai.organizations.models import Company
from jicai.programme.models import SelectedProduct
from jicai.quality.common import elevated
from jicai.supply.actions.credit import CreditInput, do_record_credit_event

if TYPE_CHECKING:
    from jicai.quality.models import QualityProblem

CREDIT_RESOURCE = "credit"
CREDIT_EVENT_KIND = "quality_problem"
DESCRIPTION_LIMIT = 500


def responsible_company(problem: QualityProblem) -> Company | None:
    """The winning company of the product in the latest round covering the institution, else the
    company whose name is the product's manufacturer."""
    regions = region_ancestors(problem.institution.region_code)
    with system_scope("quality.credit"):
        selected = (
            SelectedProduct.objects.select_related("company")
            .filter(product_id=problem.product_id, batch__region_code__in=regions)
            .order_by("-batch__start_date", "batch__code")
            .first()
        )
        if selected is not None:
            winner: Company = selected.company
            return winner
        name = problem.product.manufacturer.strip()
        found: Company | None = Company.objects.filter(name=name).first() if name else None
    return found


def quality_problem_credit_event(acting: Scope, problem: QualityProblem) -> str:
    """Record ``problem`` as a ``quality_problem`` event in the responsible company's credit file;
    returns the event's reference (``credit:<id>``), or "" when no company is on record.

    Called inside the problem's transaction. Registering the problem authorises the event, so the
    acting scope is given ``credit`` write for this one step (medical affairs registers problems but
    does not keep the credit file). Severity: major when the problem goes to the regulator, else minor.
    """
    company = responsible_company(problem)
    if company is None:
        return ""
    event = do_record_credit_event(
        elevated(acting, CREDIT_RESOURCE),
        CreditInput(
            company=company.name,
            kind=CREDIT_EVENT_KIND,
            occurred_on=problem.found_on,
            severity="major" if problem.needs_regulator else "minor",
            description=f"药品质量问题 {problem.problem_no}：{problem.description}"[:DESCRIPTION_LIMIT],
            institution_code=problem.institution.code,
            product_code=problem.product.code,
        ),
    )
    return f"credit:{event.pk}"
