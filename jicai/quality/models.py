"""The quality registers (R-J1, R-J2, R-K1): adverse reactions and their cluster signals, suspensions of
use, quality problems, clinical comprehensive evaluations and their weighting schemes.

Reports and problems belong to one institution (``institution_rows_q``); signals, suspensions,
evaluations and schemes belong to an institution or, with ``institution`` empty, to a region
(``owned_q``). Writes go through ``jicai.quality.actions``, each with an audit row; the rules they
apply (cluster detection, routing, weighted totals) are the pure functions of ``jicai.policy.quality``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from jicai.core.tenancy import Action, Scope, ScopedModel
from jicai.organizations.models import REGION_CODE
from jicai.policy import quality as rules
from jicai.quality.common import ADVERSE_REACTION, EVALUATION, QUALITY_PROBLEM, institution_rows_q, owned_q


def _user_fk(label: Any) -> Any:
    return models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=label
    )


def _score(label: Any) -> Any:
    return models.DecimalField(label, max_digits=5, decimal_places=2)


class Stamped(ScopedModel):
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    created_by = _user_fk(_("created by"))

    class Meta(ScopedModel.Meta):
        abstract = True


class OwnedModel(Stamped):
    """A record of an institution, or of a region when ``institution`` is empty."""

    institution = models.ForeignKey(
        "organizations.Institution",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("institution"),
    )
    region_code = models.CharField(_("region code"), max_length=6, db_index=True, validators=[REGION_CODE])

    class Meta(Stamped.Meta):
        abstract = True

    @classmethod
    def scope_filter(cls, scope: Scope, action: Action) -> Q | None:
        return owned_q(scope, action)

    @property
    def is_regional(self) -> bool:
        return self.institution_id is None

    @property
    def owner_label(self) -> str:
        return str(self.institution) if self.institution_id else f"{_('Region')} {self.region_code}"


# --------------------------------------------------------------------------------------------------
# Adverse drug reactions (R-J2)


class Outcome(models.TextChoices):
    RECOVERED = "recovered", pgettext_lazy("adverse reaction outcome", "Recovered")
    IMPROVING = "improving", pgettext_lazy("adverse reaction outcome", "Improving")
    NOT_RECOVERED = "not_recovered", pgettext_lazy("adverse reaction outcome", "Not recovered")
    SEQUELAE = "sequelae", pgettext_lazy("adverse reaction outcome", "Recovered with sequelae")
    DEATH = "death", pgettext_lazy("adverse reaction outcome", "Death")
    UNKNOWN = "unknown", pgettext_lazy("adverse reaction outcome", "Unknown")


class AdverseReaction(Stamped):
    """One adverse-reaction report on a product (selected products foremost), with its new / serious flags."""

    resource: ClassVar[str] = ADVERSE_REACTION

    institution = models.ForeignKey(
        "organizations.Institution", on_delete=models.PROTECT, related_name="+", verbose_name=_("institution")
    )
    department = models.ForeignKey(
        "organizations.Department",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("department"),
    )
    report_no = models.CharField(_("report number"), max_length=40)
    report_date = models.DateField(_("report date"))
    onset_date = models.DateField(_("onset date"), null=True, blank=True)
    product = models.ForeignKey(
        "catalog.Product", on_delete=models.PROTECT, related_name="+", verbose_name=_("product")
    )
    item = models.ForeignKey(
        "programme.Item",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("VBP item"),
    )
    is_selected = models.BooleanField(_("selected product"), default=False)
    lot_number = models.CharField(_("lot number"), max_length=60, blank=True)
    reaction = models.TextField(_("reaction"))
    is_new = models.BooleanField(_("new reaction"), default=False)
    is_serious = models.BooleanField(_("serious reaction"), default=False)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices, default=Outcome.UNKNOWN)
    reporter = models.CharField(_("reporter"), max_length=100)
    extra = models.JSONField(_("other columns"), default=dict, blank=True)

    class Meta(Stamped.Meta):
        verbose_name = _("adverse reaction report")
        verbose_name_plural = _("adverse reaction reports")
        ordering = ["-is_selected", "-report_date", "-id"]
        constraints = [models.UniqueConstraint(fields=["institution", "report_no"], name="one_adr_report_number")]
        indexes = [models.Index(fields=["institution", "product", "report_date"], name="adr_inst_product_date")]

    def __str__(self) -> str:
        return f"{self.report_no} {self.product_id}"

    @classmethod
    def scope_filter(cls, scope: Scope, action: Action) -> Q | None:
        return institution_rows_q(scope, action, department="department")

    @property
    def event_date(self) -> Any:
        return self.onset_date or self.report_date


class SignalStatus(models.TextChoices):
    OPEN = "open", pgettext_lazy("cluster signal", "Open")
    CLOSED = "closed", pgettext_lazy("cluster signal", "Closed")
    MERGED = "merged", pgettext_lazy("cluster signal", "Merged into another signal")


class ClusterSignal(OwnedModel):
    """A cluster of adverse reactions on one product or lot within the window (R-J2), raised by detection.

    ``lot_number`` empty = every lot of the product. The numbers are the episode's as last detected;
    ``params`` the thresholds that found it.
    """

    resource: ClassVar[str] = ADVERSE_REACTION

    product = models.ForeignKey(
        "catalog.Product", on_delete=models.PROTECT, related_name="+", verbose_name=_("product")
    )
    lot_number = models.CharField(_("lot number"), max_length=60, blank=True)
    first_date = models.DateField(_("first event"))
    last_date = models.DateField(_("last event"))
    report_count = models.PositiveIntegerField(_("reports"))
    serious_count = models.PositiveIntegerField(_("serious reports"))
    new_count = models.PositiveIntegerField(_("new reactions"))
    death_count = models.PositiveIntegerField(_("deaths"))
    institution_count = models.PositiveIntegerField(_("institutions"))
    report_ids = models.JSONField(_("reports"), default=list)
    institutions = models.JSONField(_("institutions"), default=list)
    triggers = models.JSONField(_("triggers"), default=list)
    params = models.JSONField(_("thresholds"), default=dict)
    status = models.CharField(_("status"), max_length=16, choices=SignalStatus.choices, default=SignalStatus.OPEN)
    merged_into = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("merged into")
    )
    conclusion = models.TextField(_("conclusion"), blank=True)
    closed_by = _user_fk(_("closed by"))
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta(OwnedModel.Meta):
        verbose_name = _("cluster signal")
        verbose_name_plural = _("cluster signals")
        ordering = ["status", "-last_date", "-id"]
        indexes = [models.Index(fields=["product", "lot_number", "region_code"], name="signal_group")]

    def __str__(self) -> str:
        lot = f"/{self.lot_number}" if self.lot_number else ""
        return f"{self.product_id}{lot} {self.first_date}..{self.last_date}"

    @property
    def digest(self) -> tuple[object, ...]:
        """Same shape as ``policy.quality.Cluster.digest``."""
        return (
            self.first_date,
            self.last_date,
            tuple(self.report_ids),
            self.serious_count,
            self.new_count,
            self.death_count,
            tuple(self.institutions),
            tuple(rules.Trigger(t) for t in self.triggers),
        )


class SuspensionLevel(models.TextChoices):
    INSTITUTION = "institution", pgettext_lazy("suspension", "This institution")
    REGION = "region", pgettext_lazy("suspension", "Region-wide")


class SuspensionStatus(models.TextChoices):
    PROPOSED = "proposed", pgettext_lazy("suspension", "Awaiting approval")
    APPROVED = "approved", pgettext_lazy("suspension", "In effect")
    REJECTED = "rejected", pgettext_lazy("suspension", "Rejected")
    LIFTED = "lifted", pgettext_lazy("suspension", "Lifted")


class Suspension(OwnedModel):
    """A decision to suspend use of a product (or one lot) after a cluster event (R-J2, XJ 五(八)2).

    A hospital's pharmacy or medical affairs proposes and its leadership approves; a bureau decides
    region-wide at once. In effect from ``effective_from`` to ``until`` (open-ended when empty) unless lifted.
    """

    resource: ClassVar[str] = ADVERSE_REACTION

    signal = models.ForeignKey(
        ClusterSignal,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="suspensions",
        verbose_name=_("cluster signal"),
    )
    level = models.CharField(_("scope"), max_length=16, choices=SuspensionLevel.choices)
    product = models.ForeignKey(
        "catalog.Product", on_delete=models.PROTECT, related_name="+", verbose_name=_("product")
    )
    lot_number = models.CharField(_("lot number"), max_length=60, blank=True)
    reason = models.TextField(_("reason"))
    status = models.CharField(
        _("status"), max_length=16, choices=SuspensionStatus.choices, default=SuspensionStatus.PROPOSED
    )
    effective_from = models.DateField(_("effective from"))
    until = models.DateField(_("until"), null=True, blank=True)
    decided_by = _user_fk(_("decided by"))
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_note = models.TextField(_("decision note"), blank=True)
    lifted_by = _user_fk(_("lifted by"))
    lifted_at = models.DateTimeField(_("lifted at"), null=True, blank=True)
    lifted_on = models.DateField(_("lifted on"), null=True, blank=True)
    lift_note = models.TextField(_("lift note"), blank=True)

    class Meta(OwnedModel.Meta):
        verbose_name = _("suspension of use")
        verbose_name_plural = _("suspensions of use")
        ordering = ["-effective_from", "-id"]

    def __str__(self) -> str:
        lot = f"/{self.lot_number}" if self.lot_number else ""
        return f"{self.level} {self.product_id}{lot} {self.status}"

    def in_effect(self, on: Any) -> bool:
        return rules.suspension_in_effect(
            approved=self.status in (SuspensionStatus.APPROVED, SuspensionStatus.LIFTED),
            effective_from=self.effective_from,
            until=self.until,
            lifted_on=self.lifted_on,
            on=on,
        )


# --------------------------------------------------------------------------------------------------
# Quality problems (R-J1)


class ProblemStatus(models.TextChoices):
    OPEN = rules.ProblemStatus.OPEN.value, pgettext_lazy("quality problem", "Open")
    WITH_DISTRIBUTOR = (
        rules.ProblemStatus.WITH_DISTRIBUTOR.value,
        pgettext_lazy("quality problem", "With the distributor"),
    )
    WITH_REGULATOR = rules.ProblemStatus.WITH_REGULATOR.value, pgettext_lazy("quality problem", "With the regulator")
    RESOLVED = rules.ProblemStatus.RESOLVED.value, pgettext_lazy("quality problem", "Resolved")
    CLOSED = rules.ProblemStatus.CLOSED.value, pgettext_lazy("quality problem", "Closed")


class QualityProblem(Stamped):
    """A quality problem found with a product in circulation or use, routed to the distributor and,
    when flagged, the drug regulator (R-J1, XJ 五(八)1)."""

    resource: ClassVar[str] = QUALITY_PROBLEM

    institution = models.ForeignKey(
        "organizations.Institution", on_delete=models.PROTECT, related_name="+", verbose_name=_("institution")
    )
    problem_no = models.CharField(_("problem number"), max_length=40)
    product = models.ForeignKey(
        "catalog.Product", on_delete=models.PROTECT, related_name="+", verbose_name=_("product")
    )
    lot_number = models.CharField(_("lot number"), max_length=60, blank=True)
    description = models.TextField(_("problem"))
    found_on = models.DateField(_("found on"))
    reported_by = models.CharField(_("reported by"), max_length=100)
    distributor = models.CharField(_("distributor"), max_length=200, blank=True)
    distributor_notified_on = models.DateField(_("sent to distributor on"), null=True, blank=True)
    distributor_reply = models.TextField(_("distributor's reply"), blank=True)
    needs_regulator = models.BooleanField(_("report to the regulator"), default=False)
    regulator_notified_on = models.DateField(_("sent to regulator on"), null=True, blank=True)
    regulator_reference = models.CharField(_("regulator reference"), max_length=100, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=ProblemStatus.choices, default=ProblemStatus.OPEN)
    resolution = models.TextField(_("resolution"), blank=True)
    resolved_on = models.DateField(_("resolved or closed on"), null=True, blank=True)
    credit_event = models.CharField(_("supplier credit event"), max_length=60, blank=True)
    extra = models.JSONField(_("other columns"), default=dict, blank=True)

    class Meta(Stamped.Meta):
        verbose_name = _("quality problem")
        verbose_name_plural = _("quality problems")
        ordering = ["-found_on", "-id"]
        constraints = [models.UniqueConstraint(fields=["institution", "problem_no"], name="one_quality_problem_number")]

    def __str__(self) -> str:
        return f"{self.problem_no} {self.product_id}"

    @classmethod
    def scope_filter(cls, scope: Scope, action: Action) -> Q | None:
        return institution_rows_q(scope, action)


# --------------------------------------------------------------------------------------------------
# Clinical comprehensive evaluation (R-K1)


class EvaluationScheme(OwnedModel):
    """Weights (percent, summing to 100) of the six dimensions, set by an institution or a region."""

    resource: ClassVar[str] = EVALUATION

    owner_code = models.CharField(_("owner"), max_length=12, db_index=True)
    name = models.CharField(_("name"), max_length=100)
    safety = _score(_("safety weight"))
    efficacy = _score(_("efficacy weight"))
    economy = _score(_("economy weight"))
    innovation = _score(_("innovation weight"))
    suitability = _score(_("suitability weight"))
    accessibility = _score(_("accessibility weight"))
    active = models.BooleanField(_("active"), default=True)

    class Meta(OwnedModel.Meta):
        verbose_name = _("evaluation scheme")
        verbose_name_plural = _("evaluation schemes")
        ordering = ["-active", "name"]
        constraints = [models.UniqueConstraint(fields=["owner_code", "name"], name="one_scheme_name_per_owner")]

    def __str__(self) -> str:
        return self.name

    @property
    def weights(self) -> rules.Weights:
        return rules.Weights.from_mapping({d.value: getattr(self, d.value) for d in rules.DIMENSIONS})


class ClinicalEvaluation(OwnedModel):
    """A product's clinical comprehensive evaluation: six scores, the weights used, total and grade (R-K1).

    ``weights`` is a copy of the scheme's at the time, so changing a scheme never changes past totals.
    ``owner_code`` (institution code, or region code) makes the natural key with product and date.
    """

    resource: ClassVar[str] = EVALUATION

    owner_code = models.CharField(_("owner"), max_length=12, db_index=True)
    product = models.ForeignKey(
        "catalog.Product", on_delete=models.PROTECT, related_name="+", verbose_name=_("product")
    )
    scheme = models.ForeignKey(
        EvaluationScheme,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="evaluations",
        verbose_name=_("scheme"),
    )
    weights = models.JSONField(_("weights"), default=dict)
    safety = _score(_("safety"))
    efficacy = _score(_("efficacy"))
    economy = _score(_("economy"))
    innovation = _score(_("innovation"))
    suitability = _score(_("suitability"))
    accessibility = _score(_("accessibility"))
    total = _score(_("weighted total"))
    grade = models.CharField(_("grade"), max_length=1)
    evaluator = models.CharField(_("evaluator"), max_length=100)
    evaluated_on = models.DateField(_("evaluated on"))
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    evidence = models.TextField(_("evidence"), blank=True)
    extra = models.JSONField(_("other columns"), default=dict, blank=True)

    class Meta(OwnedModel.Meta):
        verbose_name = _("clinical evaluation")
        verbose_name_plural = _("clinical evaluations")
        ordering = ["-evaluated_on", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["owner_code", "product", "evaluated_on"], name="one_evaluation_per_day")
        ]

    def __str__(self) -> str:
        return f"{self.product_id} {self.evaluated_on} {self.total} {self.grade}"

    def scores(self) -> dict[str, Any]:
        return {d.value: getattr(self, d.value) for d in rules.DIMENSIONS}
