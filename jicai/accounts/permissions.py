"""Roles of the people in the seeds (R-H1) and the ``scope:resource:action`` vocabulary.

A role lives at one level (region, institution, department); its permissions are written with
that level as the first part, so ``region:agreement:import`` means "import agreements anywhere
in my region" and ``institution:agreement:read`` means "read my institution's agreements".
"""

from __future__ import annotations

import enum
from itertools import product

from django.utils.translation import gettext_lazy as _

from jicai.core.tenancy import Level


class Resource(enum.StrEnum):
    INSTITUTION = "institution"
    DEPARTMENT = "department"
    COMPANY = "company"
    PRODUCT = "product"
    PRICE_LIST = "price_list"
    BATCH = "batch"
    ITEM = "item"
    SELECTED = "selected"
    NON_SELECTED = "non_selected"
    AGREEMENT = "agreement"
    PURCHASE = "purchase"
    PAYMENT = "payment"
    DISPENSING = "dispensing"
    REPORT = "report"
    ALERT = "alert"  # the cycle's alerts: read with the reports, acknowledged by the offices that act
    USER = "user"
    AUDIT = "audit"
    IMPORT_RUN = "import_run"
    # the hospital workspace (R-H2–H11, R-G3)
    DEMAND = "demand"
    TARGET = "target"
    FEEDBACK = "feedback"
    CONTROL = "substitute_control"
    FORMULARY = "formulary"
    SURPLUS = "surplus"
    REVIEW = "prescription_review"
    COMPLAINT = "complaint"
    # supply assurance (R-I1–I4)
    SUPPLY_INCIDENT = "supply_incident"
    CREDIT = "credit"
    SANCTION = "sanction"
    SUPPLY_REPORT = "supply_report"
    # quality and evaluation (R-J1, R-J2, R-K1)
    ADVERSE_REACTION = "adverse_reaction"
    QUALITY_PROBLEM = "quality_problem"
    EVALUATION = "evaluation"


class Verb(enum.StrEnum):
    READ = "read"
    WRITE = "write"
    IMPORT = "import"
    EXPORT = "export"
    MANAGE = "manage"
    APPROVE = "approve"  # leadership's sign-off on a plan, an action or a distribution
    PUBLISH = "publish"  # make targets, progress sheets or appraisals visible to departments
    COMMENT = "comment"  # clinicians' views on a demand report


class RoleName(enum.StrEnum):
    PLATFORM_ADMIN = "platform_admin"
    BUREAU_ADMIN = "bureau_admin"
    BUREAU_ANALYST = "bureau_analyst"
    BUREAU_VIEWER = "bureau_viewer"
    VBP_OFFICE = "vbp_office"
    PHARMACY = "pharmacy"
    MEDICAL_AFFAIRS = "medical_affairs"
    FINANCE = "finance"
    PERFORMANCE = "performance"
    IT = "it"
    LEADERSHIP = "leadership"
    DEPARTMENT_HEAD = "department_head"


ROLE_LABELS = {
    RoleName.PLATFORM_ADMIN: _("Platform administrator"),
    RoleName.BUREAU_ADMIN: _("Bureau administrator"),
    RoleName.BUREAU_ANALYST: _("Bureau analyst"),
    RoleName.BUREAU_VIEWER: _("Bureau viewer"),
    RoleName.VBP_OFFICE: _("Hospital VBP office"),
    RoleName.PHARMACY: _("Pharmacy"),
    RoleName.MEDICAL_AFFAIRS: _("Medical affairs"),
    RoleName.FINANCE: _("Finance"),
    RoleName.PERFORMANCE: _("Performance"),
    RoleName.IT: _("Information technology"),
    RoleName.LEADERSHIP: _("Hospital leadership"),
    RoleName.DEPARTMENT_HEAD: _("Department head"),
}

ROLE_LEVEL = {
    RoleName.PLATFORM_ADMIN: Level.SYSTEM,
    RoleName.BUREAU_ADMIN: Level.REGION,
    RoleName.BUREAU_ANALYST: Level.REGION,
    RoleName.BUREAU_VIEWER: Level.REGION,
    RoleName.VBP_OFFICE: Level.INSTITUTION,
    RoleName.PHARMACY: Level.INSTITUTION,
    RoleName.MEDICAL_AFFAIRS: Level.INSTITUTION,
    RoleName.FINANCE: Level.INSTITUTION,
    RoleName.PERFORMANCE: Level.INSTITUTION,
    RoleName.IT: Level.INSTITUTION,
    RoleName.LEADERSHIP: Level.INSTITUTION,
    RoleName.DEPARTMENT_HEAD: Level.DEPARTMENT,
}

MASTER = (Resource.INSTITUTION, Resource.DEPARTMENT, Resource.COMPANY, Resource.PRODUCT, Resource.PRICE_LIST)
PROGRAMME = (Resource.BATCH, Resource.ITEM, Resource.SELECTED, Resource.NON_SELECTED, Resource.AGREEMENT)
ACTIVITY = (Resource.PURCHASE, Resource.PAYMENT, Resource.DISPENSING)
ALL_DATA = MASTER + PROGRAMME + ACTIVITY + (Resource.REPORT,)
WORKSPACE = (
    Resource.DEMAND,
    Resource.TARGET,
    Resource.FEEDBACK,
    Resource.CONTROL,
    Resource.FORMULARY,
    Resource.SURPLUS,
    Resource.REVIEW,
    Resource.COMPLAINT,
)


def _grant(level: Level, resources: tuple[Resource, ...], verbs: tuple[Verb, ...]) -> set[str]:
    return {f"{level}:{r}:{v}" for r, v in product(resources, verbs)}


_RW = (Verb.READ, Verb.WRITE, Verb.IMPORT, Verb.EXPORT)
_RE = (Verb.READ, Verb.EXPORT)

_HOSPITAL_READ = _grant(Level.INSTITUTION, ALL_DATA + WORKSPACE, _RE)
# The bureau follows what hospitals submit and decide; it does not run their workflows.
_BUREAU_WORKSPACE = _grant(Level.REGION, WORKSPACE, (Verb.READ,))


def _ws(*grants: tuple[Resource, tuple[Verb, ...]]) -> set[str]:
    """Workspace grants of an institution-level role: (resource, verbs) pairs."""
    out: set[str] = set()
    for resource, verbs in grants:
        out |= _grant(Level.INSTITUTION, (resource,), verbs)
    return out


_W = (Verb.WRITE,)

ROLE_PERMISSIONS: dict[RoleName, frozenset[str]] = {
    RoleName.PLATFORM_ADMIN: frozenset(),  # system scope: everything
    RoleName.BUREAU_ADMIN: frozenset(
        _grant(Level.REGION, ALL_DATA, _RW)
        | _grant(Level.REGION, (Resource.USER,), (Verb.READ, Verb.MANAGE))
        | _grant(Level.REGION, (Resource.AUDIT, Resource.IMPORT_RUN), (Verb.READ,))
        | _BUREAU_WORKSPACE
    ),
    RoleName.BUREAU_ANALYST: frozenset(
        _grant(Level.REGION, ALL_DATA, _RE)
        | _grant(Level.REGION, (Resource.IMPORT_RUN,), (Verb.READ,))
        | _BUREAU_WORKSPACE
    ),
    RoleName.BUREAU_VIEWER: frozenset(_grant(Level.REGION, ALL_DATA, (Verb.READ,)) | _BUREAU_WORKSPACE),
    # The VBP office runs the programme inside the hospital: demand sheets, targets, feedback.
    RoleName.VBP_OFFICE: frozenset(
        _HOSPITAL_READ
        | _grant(Level.INSTITUTION, (Resource.DEPARTMENT, Resource.PURCHASE, Resource.DISPENSING), _RW)
        | _grant(Level.INSTITUTION, (Resource.IMPORT_RUN,), (Verb.READ,))
        | _ws(
            (Resource.DEMAND, _W),
            (Resource.TARGET, (Verb.WRITE, Verb.PUBLISH)),
            (Resource.FEEDBACK, (Verb.WRITE, Verb.PUBLISH)),
            (Resource.COMPLAINT, _W),
        )
    ),
    # Pharmacy drafts demand, watches substitutes, advises on the formulary, reviews prescriptions.
    RoleName.PHARMACY: frozenset(
        _HOSPITAL_READ
        | _grant(Level.INSTITUTION, (Resource.DISPENSING,), _RW)
        | _ws(
            (Resource.DEMAND, _W),
            (Resource.CONTROL, _W),
            (Resource.FORMULARY, _W),
            (Resource.REVIEW, _W),
            (Resource.COMPLAINT, _W),
        )
    ),
    # Medical affairs: clinicians' side — comments, reminders, antimicrobial exceptions, reviews,
    # complaints; it records the pharmacy and therapeutics committee's formulary decisions.
    RoleName.MEDICAL_AFFAIRS: frozenset(
        _HOSPITAL_READ
        | _ws(
            (Resource.DEMAND, (Verb.COMMENT,)),
            (Resource.FEEDBACK, _W),
            (Resource.CONTROL, _W),
            (Resource.FORMULARY, (Verb.APPROVE,)),
            (Resource.REVIEW, _W),
            (Resource.COMPLAINT, _W),
        )
    ),
    RoleName.FINANCE: frozenset(
        _HOSPITAL_READ | _grant(Level.INSTITUTION, (Resource.PAYMENT,), _RW) | _ws((Resource.SURPLUS, _W))
    ),
    # Performance sets appraisal weights and publishes department scores (R-H5).
    RoleName.PERFORMANCE: frozenset(_HOSPITAL_READ | _ws((Resource.FEEDBACK, (Verb.WRITE, Verb.PUBLISH)))),
    RoleName.IT: frozenset(
        _HOSPITAL_READ
        | _grant(Level.INSTITUTION, (Resource.DEPARTMENT, *ACTIVITY), _RW)
        | _grant(Level.INSTITUTION, (Resource.USER,), (Verb.READ, Verb.MANAGE))
        | _grant(Level.INSTITUTION, (Resource.AUDIT, Resource.IMPORT_RUN), (Verb.READ,))
    ),
    # Leadership signs off: demand submissions, purchase limits, formulary decisions, distributions.
    RoleName.LEADERSHIP: frozenset(
        _HOSPITAL_READ
        | _ws(
            (Resource.DEMAND, (Verb.APPROVE,)),
            (Resource.CONTROL, (Verb.APPROVE,)),
            (Resource.FORMULARY, (Verb.APPROVE,)),
            (Resource.SURPLUS, (Verb.APPROVE,)),
        )
    ),
    RoleName.DEPARTMENT_HEAD: frozenset(
        _grant(
            Level.DEPARTMENT,
            (
                Resource.INSTITUTION,
                Resource.DEPARTMENT,
                Resource.PRODUCT,
                Resource.BATCH,
                Resource.ITEM,
                Resource.SELECTED,
                Resource.DISPENSING,
                Resource.REPORT,
                Resource.TARGET,
                Resource.FEEDBACK,
                Resource.DEMAND,
                Resource.REVIEW,
            ),
            (Verb.READ,),
        )
        | _grant(Level.DEPARTMENT, (Resource.DEMAND,), (Verb.COMMENT,))
    ),
}


_SUPPLY_READ = (Verb.READ, Verb.EXPORT)
_SUPPLY_ENTER = (Verb.READ, Verb.WRITE, Verb.IMPORT, Verb.EXPORT)
# Supply registers (jicai/supply/permissions.py says why each role holds what): the bureau decides on
# incidents (approve) and derives the credit file (manage); hospitals report their own incidents and
# delivery problems; the others follow.
SUPPLY_GRANTS: dict[RoleName, dict[Resource, tuple[Verb, ...]]] = {
    RoleName.BUREAU_ADMIN: {
        Resource.SUPPLY_INCIDENT: (*_SUPPLY_ENTER, Verb.APPROVE),
        Resource.CREDIT: (*_SUPPLY_ENTER, Verb.MANAGE),
        Resource.SANCTION: _SUPPLY_ENTER,
        Resource.SUPPLY_REPORT: _SUPPLY_ENTER,
    },
    RoleName.BUREAU_ANALYST: {
        Resource.SUPPLY_INCIDENT: _SUPPLY_READ,
        Resource.CREDIT: (*_SUPPLY_ENTER, Verb.MANAGE),
        Resource.SANCTION: _SUPPLY_READ,
        Resource.SUPPLY_REPORT: _SUPPLY_ENTER,
    },
    RoleName.BUREAU_VIEWER: {
        Resource.SUPPLY_INCIDENT: (Verb.READ,),
        Resource.CREDIT: (Verb.READ,),
        Resource.SANCTION: (Verb.READ,),
        Resource.SUPPLY_REPORT: (Verb.READ,),
    },
    RoleName.VBP_OFFICE: {
        Resource.SUPPLY_INCIDENT: _SUPPLY_ENTER,
        Resource.CREDIT: (Verb.READ, Verb.WRITE, Verb.EXPORT),
        Resource.SANCTION: _SUPPLY_READ,
        Resource.SUPPLY_REPORT: _SUPPLY_READ,
    },
    RoleName.PHARMACY: {
        Resource.SUPPLY_INCIDENT: _SUPPLY_ENTER,
        Resource.CREDIT: (Verb.READ, Verb.WRITE, Verb.EXPORT),
        Resource.SANCTION: _SUPPLY_READ,
        Resource.SUPPLY_REPORT: _SUPPLY_READ,
    },
    RoleName.MEDICAL_AFFAIRS: {
        Resource.SUPPLY_INCIDENT: (Verb.READ,),
        Resource.CREDIT: (Verb.READ,),
        Resource.SANCTION: (Verb.READ,),
    },
    RoleName.FINANCE: {Resource.SUPPLY_INCIDENT: (Verb.READ,), Resource.SANCTION: (Verb.READ,)},
    RoleName.LEADERSHIP: {
        Resource.SUPPLY_INCIDENT: _SUPPLY_READ,
        Resource.CREDIT: _SUPPLY_READ,
        Resource.SANCTION: _SUPPLY_READ,
        Resource.SUPPLY_REPORT: (Verb.READ,),
    },
}


def _merge(extra: dict[RoleName, dict[Resource, tuple[Verb, ...]]]) -> None:
    for role, grants in extra.items():
        level = ROLE_LEVEL[role]
        added = {f"{level}:{resource}:{verb}" for resource, verbs in grants.items() for verb in verbs}
        ROLE_PERMISSIONS[role] = ROLE_PERMISSIONS[role] | added


_merge(SUPPLY_GRANTS)

_QRE = (Verb.READ, Verb.EXPORT)
_QRWIE = (Verb.READ, Verb.WRITE, Verb.IMPORT, Verb.EXPORT)
# Quality registers (jicai/quality/permissions.py says why): the pharmacy runs ADR monitoring, quality
# problems and clinical evaluation; clinicians report reactions; leadership approves suspensions of
# use; the bureau follows signals and decides region-wide suspensions and evaluations.
QUALITY_GRANTS: dict[RoleName, dict[Resource, tuple[Verb, ...]]] = {
    RoleName.BUREAU_ADMIN: {
        Resource.ADVERSE_REACTION: (*_QRE, Verb.APPROVE),
        Resource.QUALITY_PROBLEM: _QRE,
        Resource.EVALUATION: _QRWIE,
    },
    RoleName.BUREAU_ANALYST: {
        Resource.ADVERSE_REACTION: _QRE,
        Resource.QUALITY_PROBLEM: _QRE,
        Resource.EVALUATION: _QRE,
    },
    RoleName.BUREAU_VIEWER: {
        Resource.ADVERSE_REACTION: (Verb.READ,),
        Resource.QUALITY_PROBLEM: (Verb.READ,),
        Resource.EVALUATION: (Verb.READ,),
    },
    RoleName.PHARMACY: {
        Resource.ADVERSE_REACTION: _QRWIE,
        Resource.QUALITY_PROBLEM: _QRWIE,
        Resource.EVALUATION: _QRWIE,
    },
    RoleName.MEDICAL_AFFAIRS: {
        Resource.ADVERSE_REACTION: _QRWIE,
        Resource.QUALITY_PROBLEM: (Verb.READ, Verb.WRITE, Verb.EXPORT),
        Resource.EVALUATION: (Verb.READ, Verb.WRITE, Verb.EXPORT),
    },
    RoleName.LEADERSHIP: {
        Resource.ADVERSE_REACTION: (*_QRE, Verb.APPROVE),
        Resource.QUALITY_PROBLEM: _QRE,
        Resource.EVALUATION: _QRE,
    },
    RoleName.DEPARTMENT_HEAD: {Resource.ADVERSE_REACTION: (Verb.READ, Verb.WRITE), Resource.EVALUATION: (Verb.READ,)},
    **{
        role: {Resource.ADVERSE_REACTION: _QRE, Resource.QUALITY_PROBLEM: _QRE, Resource.EVALUATION: _QRE}
        for role in (RoleName.VBP_OFFICE, RoleName.FINANCE, RoleName.PERFORMANCE, RoleName.IT)
    },
}
_merge(QUALITY_GRANTS)


def _alert_grants() -> None:
    """Whoever reads the reports reads the alerts they raise; the bureau administrator and the
    hospital's VBP office, who act on them, acknowledge them (R-L1, R-H4)."""
    for role, perms in ROLE_PERMISSIONS.items():
        added = {p.replace(f":{Resource.REPORT}:", f":{Resource.ALERT}:") for p in perms if p.endswith(":report:read")}
        if role in (RoleName.BUREAU_ADMIN, RoleName.VBP_OFFICE):
            added.add(f"{ROLE_LEVEL[role]}:{Resource.ALERT}:{Verb.WRITE}")
        ROLE_PERMISSIONS[role] = perms | added


_alert_grants()


def vocabulary() -> frozenset[str]:
    """Every permission the system knows, for validation and documentation."""
    return frozenset(
        f"{level}:{r}:{v}"
        for level in (Level.REGION, Level.INSTITUTION, Level.DEPARTMENT)
        for r in Resource
        for v in Verb
    )
