"""The hospital workspace's records (R-H2–H11, R-G3): what a hospital decides, adjusts and signs off.

Every model belongs to one institution and is scoped through it (``workspace_q``); the rows a
department head may see are narrowed to their department where the record has one. Writes go
through the actions of ``jicai.hospital.actions`` and its workflow modules, each with an audit row;
the state machines (draft → approved → locked …) live there, not in these classes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from jicai.core.tenancy import Action, Level, Scope, ScopedModel, institution_q


def workspace_q(scope: Scope, action: Action, *, department: str | None = None) -> Q | None:
    """Rows of institutions in ``scope``; a department head reads their institution's rows, or only
    their department's when the record has one (``department``: the lookup to it), and writes none
    (comments have their own rule)."""
    if scope.level is Level.DEPARTMENT:
        if action is Action.WRITE:
            return Q(pk__in=[])
        condition = Q(institution_id=scope.institution_id) if scope.institution_id else Q(pk__in=[])
        if department is not None:
            condition &= Q(**{f"{department}_id": scope.department_id})
        return condition
    return institution_q(scope, "institution")


class WorkspaceModel(ScopedModel):
    """A record of one institution's workspace, with who created it and when."""

    institution = models.ForeignKey(
        "organizations.Institution", on_delete=models.PROTECT, related_name="+", verbose_name=_("institution")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )

    department_path: ClassVar[str | None] = None

    class Meta(ScopedModel.Meta):
        abstract = True

    @classmethod
    def scope_filter(cls, scope: Scope, action: Action) -> Q | None:
        return workspace_q(scope, action, department=cls.department_path)


def _user_fk(label: Any) -> Any:
    return models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=label
    )


def _qty(label: Any, **kw: Any) -> Any:
    return models.DecimalField(label, max_digits=16, decimal_places=4, **kw)


def _money(label: Any) -> Any:
    return models.DecimalField(label, max_digits=14, decimal_places=2)


# --------------------------------------------------------------------------------------------------
# Demand reporting (R-H2)


class DemandStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PENDING = "pending", _("Awaiting approval")
    APPROVED = "approved", _("Approved")
    LOCKED = "locked", _("Locked and submitted")


class AdjustmentReason(models.TextChoices):
    GUIDELINE = "guideline", _("Clinical guideline change")
    INSURANCE = "insurance", _("Insurance policy change")
    PUBLIC_HEALTH = "public_health", _("Public-health event")
    CLINICAL = "clinical", _("Clinicians' views")
    OTHER = "other", _("Other")


class DemandPlan(WorkspaceModel):
    """A hospital's pre-purchase report for one round: one line per item (R-H2)."""

    resource: ClassVar[str] = "demand"

    batch = models.ForeignKey("programme.Batch", on_delete=models.PROTECT, related_name="+", verbose_name=_("batch"))
    status = models.CharField(_("status"), max_length=16, choices=DemandStatus.choices, default=DemandStatus.DRAFT)
    history_from = models.DateField(_("history from"))
    history_to = models.DateField(_("history to"))
    note = models.TextField(_("note"), blank=True)
    submitted_by = _user_fk(_("submitted by"))
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True)
    approved_by = _user_fk(_("approved by"))
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)
    locked_at = models.DateTimeField(_("locked at"), null=True, blank=True)

    class Meta(WorkspaceModel.Meta):
        verbose_name = _("demand report")
        verbose_name_plural = _("demand reports")
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["institution", "batch"], name="one_demand_plan_per_round")]

    def __str__(self) -> str:
        return f"{self.batch_id} {self.institution_id} {self.status}"


class DemandLine(WorkspaceModel):
    """One item's suggestion (from history) and the pharmacy's adjusted quantity with its reason."""

    resource: ClassVar[str] = "demand"

    plan = models.ForeignKey(DemandPlan, on_delete=models.CASCADE, related_name="lines", verbose_name=_("plan"))
    item = models.ForeignKey("programme.Item", on_delete=models.PROTECT, related_name="+", verbose_name=_("item"))
    history_qty = _qty(_("use in the history window"))
    months_used = models.PositiveSmallIntegerField(_("months used"))
    months_excluded = models.JSONField(_("shortage months excluded"), default=list, blank=True)
    suggested_qty = _qty(_("suggested quantity"))
    method = models.JSONField(_("how the suggestion was made"), default=dict, blank=True)
    adjusted_qty = _qty(_("adjusted quantity"), null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=16, choices=AdjustmentReason.choices, blank=True)
    reason_note = models.TextField(_("reason note"), blank=True)

    class Meta(WorkspaceModel.Meta):
        verbose_name = _("demand line")
        verbose_name_plural = _("demand lines")
        ordering = ["plan", "item__item_code"]
        constraints = [models.UniqueConstraint(fields=["plan", "item"], name="one_demand_line_per_item")]

    def __str__(self) -> str:
        return f"{self.plan_id} {self.item_id}"

    @property
    def reported_qty(self) -> Decimal:
        value = self.adjusted_qty if self.adjusted_qty is not None else self.suggested_qty
        return Decimal(value)


class DemandComment(WorkspaceModel):
    """A clinician's view on a demand line (department heads and medical affairs may comment)."""

    resource: ClassVar[str] = "demand"

    line = models.ForeignKey(DemandLine, on_delete=models.CASCADE, related_name="comments", verbose_name=_("line"))
    department = models.ForeignKey(
        "organizations.Department",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("department"),
    )
    text = models.TextField(_("comment"))

    class Meta(WorkspaceModel.Meta):
        verbose_name = _("demand comment")
        verbose_name_plural = _("demand comments")
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.text[:40]

    @classmethod
    def scope_filter(cls, scope: Scope, action: Action) -> Q | None:
        if scope.level is Level.DEPARTMENT:
            if scope.institution_id is None:
                return Q(pk__in=[])
            mine = Q(institution_id=scope.institution_id)
            return mine if action is Action.READ else mine & Q(department_id=scope.department_id)
        return institution_q(scope, "institution")


# --------------------------------------------------------------------------------------------------
# Department targets (R-H3) and feedback (R-H4, R-H5)


class TargetStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PUBLISHED = "published", _("Published")


class TargetPlan(WorkspaceModel):
    """One agreement year's department targets for an institution and batch, by time slice."""

    resource: ClassVar[str] = "target"

    batch = models.ForeignKey("programme.Batch", on_delete=models.PROTECT, related_name="+", verbose_name=_("batch"))
    year = models.PositiveSmallIntegerField(_("agreement year"))
    granularity = models.CharField(_("time slices"), max_length=12)
    status = models.CharField(_("status"), max_length=16, choices=TargetStatus.choices, default=TargetStatus.DRAFT)
    window_from = models.DateField(_("history from"))
    window_to = models.DateField(_("history to"))
    published_by = _user_fk(_("published by"))
    published_at = models.DateTimeField(_("published at"), null=True, blank=True)

    class Meta(WorkspaceModel.Meta):
        verbose_name = _("department target plan")
        verbose_name_plural = _("department target plans")
        ordering = ["-year", "batch"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "batch", "year"], name="one_target_plan_per_year")
        ]

    def __str__(self) -> str:
        return f"{self.batch_id} {self.year} {self.granularity}"


class TargetLine(WorkspaceModel):
    """A department's whole-unit target for one item in one time slice; ``generated_qty`` is the rule's."""

    resource: ClassVar[str] = "target"
    department_path: ClassVar[str | None] = "department"

    plan = models.ForeignKey(TargetPlan, on_delete=models.CASCADE, related_name="lines", verbose_name=_("plan"))
    item = models.ForeignKey("programme.Item", on_delete=models.PROTECT, related_name="+", verbose_name=_("item"))
    department = models.ForeignKey(
        "organizations.Department", on_delete=models.PROTECT, related_name="+", verbose_name=_("department")
    )
    slice_label = models.CharField(_("time slice"), max_length=12)
    slice_start = models.DateField(_("slice start"))
    slice_end = models.DateField(_("slice end"))
    generated_qty = models.IntegerField(_("generated target"))
    qty = models.IntegerField(_("target"))
    reason = models.TextField(_("adjustment reason"), blank=True)

    class Meta(WorkspaceModel.Meta):
        verbose_name = _("department target")
        verbose_name_plural = _("department targets")
        ordering = ["plan", "item__item_code", "department__code", "slice_start"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "item", "department", "slice_label"], name="one_target_per_slice")
        ]

    def __str__(self) -> str:
        return f"{self.item_id} {self.department_id} {self.slice_label} {self.qty}"


class Notification(WorkspaceModel):
    """An in-app message to a department (its head and the hospital's staff see it), e.g. a reminder."""

    resource: ClassVar[str] = "feedback"
    department_path: ClassVar[str | None] = "department"

    department = models.ForeignKey(
        "organizations.Department", on_delete=models.PROTECT, related_name="+", verbose_name=_("department")
    )
    kind = models.CharField(_("kind"), max_length=32)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("message"))
    link = models.CharField(_("link"), max_length=300, blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)
    emailed_to = models.JSONField(_("e-mailed to"), default=list, blank=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)

    class Meta(WorkspaceModel.Meta):
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title

    @classmethod
    def scope_filter(cls, scope: Scope, action: Action) -> Q | None:
        if scope.level is Level.DEPARTMENT:  # a department head may mark their own messages read
            if scope.institution_id is None:
                return Q(pk__in=[])
            return Q(institution_id=scope.institution_id, department_id=scope.department_id)
        return institution_q(scope, "institution")


class ProgressSheet(WorkspaceModel):
    """A published snapshot of department progress (R-H4): what was shown to departments, and when."""

    resource: ClassVar[str] = "feedback"

    as_of = models.DateField(_("as of"))
    title = models.CharField(_("title"), max_length=200)
    rows = models.JSONField(_("rows"), default=list)
    published_by = _user_fk(_("published by"))

    class Meta(WorkspaceModel.Meta):
        verbose_name = _("progress sheet")
        verbose_name_plural = _("progress sheets")
        ordering = ["-as_of", "-created_at"]

    def __str__(self) -> str:
        return self.title


class AppraisalScheme(WorkspaceModel):
    """Weights that turn department figures into an appraisal score (R-H5), set by performance."""

    resource: ClassVar[str] = "feedback"

    name = models.CharField(_("name"), max_length=100)
    weights = models.JSONField(_("weights"))
    active = models.BooleanField(_("active"), default=True)

    class Meta(WorkspaceModel.Meta):
        verbose_name = _("appraisal scheme")
        verbose_name_plural = _("appraisal schemes")
        ordering = ["-active", "name"]

    def __str__(self) -> str:
        return self.name


class AppraisalScore(WorkspaceModel):
    """A department's score for a period under a scheme, with the figures it came from."""

    resource: ClassVar[str] = "feedback"
    department_path: ClassVar[str | None] = "department"

    scheme = models.ForeignKey(
        AppraisalScheme, on_delete=models.PROTECT, related_name="scores", verbose_name=_("scheme")
    )
    department = models.ForeignKey(
        "organizations.Department", on_delete=models.PROTECT, related_name="+", verbose_name=_("department")
    )
    period = models.CharField(_("period"), max_length=12)
    score = models.DecimalField(_("score"), max_digits=6, decimal_places=2)
    components = models.JSONField(_("components"), default=dict)
    published = models.BooleanField(_("published"), default=False)

    class Meta(WorkspaceModel.Meta):
        verbose_name = _("appraisal score")
        verbose_name_plural = _("appraisal scores")
        ordering = ["period", "-score"]
        constraints = [models.UniqueConstraint(fields=["scheme", "department", "period"], name="one_score_per_period")]

    def __str__(self) -> str:
        return f"{self.department_id} {self.period} {self.score}"


# --------------------------------------------------------------------------------------------------
# Substitute control (R-H7–H9)


class ControlKind(models.TextChoices):
    LIMIT = "limit_quantity", _("Limit quantity")
    SUSPEND = "suspend_purchase", _("Suspend purchase")


class ControlStatus(models.TextChoices):
    PROPOSED = "proposed", _("Proposed")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    REVOKED = "revoked", _("Revoked")


class ControlMeasure(WorkspaceModel):
    """A limit or suspension on a non-selected or substitute product, approved and with an expiry (R-H7)."""

    resource: ClassVar[str] = "substitute_control"

    product = models.ForeignKey(
        "catalog.Product", on_delete=models.PROTECT, related_name="+", verbose_name=_("product")
    )
    department = models.ForeignKey(
        "organizations.Department",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("department"),
    )
    prescriber_code = models.CharField(_("prescriber"), max_length=40, blank=True)
    kind = models.CharField(_("measure"), max_length=20, choices=ControlKind.choices)
    limit_qty = _qty(_("monthly quantity limit"), null=True, blank=True)
    reason = models.TextField(_("reason"))
    anomaly = models.JSONField(_("anomaly it answers"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=ControlStatus.choices, default=ControlStatus.PROPOSED)
    effective_from = models.DateField(_("effective from"))
    expires_on = models.DateField(_("expires on"))
    decided_by = _user_fk(_("decided by"))
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_note = models.TextField(_("decision note"), blank=True)

    class Meta(WorkspaceModel.Meta):
        verbose_name = _("substitute control measure")
        verbose_name_plural = _("substitute control measures")
        ordering = ["-effective_from", "-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.product_id} {self.status}"


class ExceptionReason(models.TextChoices):
    CONSULTATION = "consultation", _("Specialist consultation")
    FAILED_THERAPY = "failed_therapy", _("Selected drug failed to control the infection")
    LONG_COURSE = "long_course", _("Longer course of therapy")
    ADVERSE_REACTION = "adverse_reaction", _("Adverse reaction to the selected drug")


class AntimicrobialException(WorkspaceModel):
    """A recorded reason to use a non-selected antimicrobial (R-H8); its use is not an anomaly."""

    resource: ClassVar[str] = "substitute_control"
    department_path: ClassVar[str | None] = "department"

    product = models.ForeignKey(
        "catalog.Product", on_delete=models.PROTECT, related_name="+", verbose_name=_("product")
    )
    department = models.ForeignKey(
        "organizations.Department", on_delete=models.PROTECT, related_name="+", verbose_name=_("department")
    )
    prescriber_code = models.CharField(_("prescriber"), max_length=40, blank=True)
    patient_key = models.CharField(_("patient (pseudonymised)"), max_length=64, blank=True)
    reason = models.CharField(_("reason"), max_length=20, choices=ExceptionReason.choices)
    note = models.TextField(_("note"), blank=True)
    valid_from = models.DateField(_("valid from"))
    valid_until = models.DateField(_("valid until"))

    class Meta(WorkspaceModel.Meta):
        verbose_name = _("antimicrobial exception")
        verbose_name_plural = _("antimicrobial exceptions")
        ordering = ["-valid_from"]

    def __str__(self) -> str:
        return f"{self.product_id} {self.reason}"


# --------------------------------------------------------------------------------------------------
# Formulary advice (R-H6)


class FormularyTrigger(models.TextChoices):
    NEW_ROUND = "new_round", _("New round")
    EXPIRY = "contract_expiry", _("Contract expiry")


class FormularyReview(WorkspaceModel):
    """The formulary rules applied to the hospital's products of one round, at a trigger (R-H6)."""

    resource: ClassVar[str] = "formulary"

    batch = models.ForeignKey("programme.Batch", on_delete=models.PROTECT, related_name="+", verbose_name=_("batch"))
    trigger = models.CharField(_("trigger"), max_length=20, choices=FormularyTrigger.choices)
    as_of = models.DateField(_("as of"))
    committee_meeting = models.CharField(_("committee meeting"), max_length=200, blank=True)

    class Meta(WorkspaceModel.Meta):
        verbose_name = _("formulary review")
        verbose_name_plural = _("formulary reviews")
        ordering = ["-as_of"]

    def __str__(self) -> str:
        return f"{self.batch_id} {self.trigger} {self.as_of}"


class FormularyEntry(WorkspaceModel):
    """One product's advice (keep / suspend / drop, with the rule's reason) and the committee's decision."""

    resource: ClassVar[str] = "formulary"

    review = models.ForeignKey(
        FormularyReview, on_delete=models.CASCADE, related_name="entries", verbose_name=_("review")
    )
    product = models.ForeignKey(
        "catalog.Product", on_delete=models.PROTECT, related_name="+", verbose_name=_("product")
    )
    item = models.ForeignKey("programme.Item", on_delete=models.PROTECT, related_name="+", verbose_name=_("item"))
    advice = models.CharField(_("advice"), max_length=16)
    reason = models.CharField(_("reason"), max_length=40)
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    decision = models.CharField(_("committee decision"), max_length=16, blank=True)
    decision_note = models.TextField(_("decision note"), blank=True)
    decided_by = _user_fk(_("recorded by"))
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)

    class Meta(WorkspaceModel.Meta):
        verbose_name = _("formulary entry")
        verbose_name_plural = _("formulary entries")
        ordering = ["review", "item__item_code", "product__code"]
        constraints = [models.UniqueConstraint(fields=["review", "product"], name="one_entry_per_product")]

    def __str__(self) -> str:
        return f"{self.product_id} {self.advice}"


# --------------------------------------------------------------------------------------------------
# Retained surplus distribution (R-G3)


class SurplusStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    APPROVED = "approved", _("Approved")


class SurplusDistribution(WorkspaceModel):
    """How an institution splits its retained surplus: prescribers, pharmacy staff, the institution."""

    resource: ClassVar[str] = "surplus"

    period = models.CharField(_("period"), max_length=20)
    amount = _money(_("retained surplus"))
    params = models.JSONField(_("split"), default=dict)
    status = models.CharField(_("status"), max_length=16, choices=SurplusStatus.choices, default=SurplusStatus.DRAFT)
    approved_by = _user_fk(_("approved by"))
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)

    class Meta(WorkspaceModel.Meta):
        verbose_name = _("surplus distribution")
        verbose_name_plural = _("surplus distributions")
        ordering = ["-period"]

    def __str__(self) -> str:
        return f"{self.period} {self.amount}"


class SurplusShare(WorkspaceModel):
    """One recipient's share, exact to the fen; the shares of a distribution sum to its amount."""

    resource: ClassVar[str] = "surplus"

    distribution = models.ForeignKey(
        SurplusDistribution, on_delete=models.CASCADE, related_name="shares", verbose_name=_("distribution")
    )
    pool = models.CharField(_("pool"), max_length=16)  # prescribers / pharmacy / institution
    recipient = models.CharField(_("recipient"), max_length=64)
    weight = models.DecimalField(_("weight"), max_digits=20, decimal_places=4)
    amount = _money(_("amount"))

    class Meta(WorkspaceModel.Meta):
        verbose_name = _("surplus share")
        verbose_name_plural = _("surplus shares")
        ordering = ["distribution", "pool", "-amount", "recipient"]

    def __str__(self) -> str:
        return f"{self.pool} {self.recipient} {self.amount}"


# --------------------------------------------------------------------------------------------------
# Registers: prescription review (R-H10) and complaints (R-H11)


class CaseStatus(models.TextChoices):
    OPEN = "open", _("Open")
    IN_PROGRESS = "in_progress", _("In progress")
    CLOSED = "closed", _("Closed")


class RegisterModel(WorkspaceModel):
    """A case with an owner, a due date and a status."""

    status = models.CharField(_("status"), max_length=16, choices=CaseStatus.choices, default=CaseStatus.OPEN)
    owner = _user_fk(_("owner"))
    due_on = models.DateField(_("due on"))
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    outcome = models.TextField(_("outcome"), blank=True)

    class Meta(WorkspaceModel.Meta):
        abstract = True


class PrescriptionReview(RegisterModel):
    """A reviewed prescription sample and its finding (R-H10)."""

    resource: ClassVar[str] = "prescription_review"
    department_path: ClassVar[str | None] = "department"

    department = models.ForeignKey(
        "organizations.Department", on_delete=models.PROTECT, related_name="+", verbose_name=_("department")
    )
    prescriber_code = models.CharField(_("prescriber"), max_length=40, blank=True)
    reviewed_on = models.DateField(_("reviewed on"))
    sample = models.CharField(_("sample"), max_length=200)
    rational = models.BooleanField(_("rational"))
    issue = models.CharField(_("issue"), max_length=40, blank=True)
    comment = models.TextField(_("commentary"), blank=True)

    class Meta(RegisterModel.Meta):
        verbose_name = _("prescription review")
        verbose_name_plural = _("prescription reviews")
        ordering = ["status", "due_on"]

    def __str__(self) -> str:
        return f"{self.reviewed_on} {self.sample}"


class Complaint(RegisterModel):
    """A patient's objection or complaint about a selected drug (R-H11)."""

    resource: ClassVar[str] = "complaint"

    received_on = models.DateField(_("received on"))
    channel = models.CharField(_("channel"), max_length=40)
    product = models.ForeignKey(
        "catalog.Product", on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("product")
    )
    subject = models.CharField(_("subject"), max_length=200)
    content = models.TextField(_("content"))

    class Meta(RegisterModel.Meta):
        verbose_name = _("complaint")
        verbose_name_plural = _("complaints")
        ordering = ["status", "due_on"]

    def __str__(self) -> str:
        return self.subject
