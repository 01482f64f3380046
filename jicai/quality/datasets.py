"""Import and export specs of the quality registers, run by the shared import engine.

The engine (``jicai.imports.engine.run_import``) takes any ``DatasetSpec``: these specs get its
header matching (English names, Chinese labels, aliases), per-cell parsing with Chinese errors by
line and column, all-or-nothing writes with audit rows and an ``ImportRun`` with an Excel report —
without being listed among the master datasets (they are imported from the quality pages, the API
and ``jicai.quality.actions``). Export writes the same columns, so export → import is an identity.

Columns marked "for reading" (names, statuses, computed totals) are exported for people and
ignored on import.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, ClassVar

from django.db import models
from django.utils import timezone

from jicai.core.tenancy import Action, Level, ScopeError, region_ancestors
from jicai.imports.datasets import ResolvingSpec
from jicai.imports.spec import Column, RowContext, RowIssue
from jicai.imports.values import ValueParseError, parse_bool, parse_date, parse_decimal, parse_text
from jicai.organizations.models import Department, Institution
from jicai.policy import quality as rules
from jicai.quality import queries
from jicai.quality.common import ADVERSE_REACTION, EVALUATION, QUALITY_PROBLEM, WorkflowError
from jicai.quality.models import (
    AdverseReaction,
    ClinicalEvaluation,
    EvaluationScheme,
    Outcome,
    ProblemStatus,
    QualityProblem,
)


def _text(max_length: int) -> Any:
    return lambda v: parse_text(v, max_length=max_length)


def _code(value: object) -> str:
    text = parse_text(value, max_length=40)
    if any(c.isspace() for c in text):
        raise ValueParseError("code.space", "编码中不能有空格", "A code cannot contain spaces")
    return text


def _ignored(value: object) -> str:
    """A column exported for reading; its value is not imported."""
    try:
        return parse_text(value)
    except ValueParseError:
        return ""


def _score(value: object) -> Decimal:
    number = parse_decimal(value, places=2)
    if number > rules.MAX_SCORE:
        raise ValueParseError("score.range", "得分应在 0 到 100 之间", "A score is between 0 and 100")
    return number


OUTCOME_ZH = {
    Outcome.RECOVERED: "痊愈",
    Outcome.IMPROVING: "好转",
    Outcome.NOT_RECOVERED: "未好转",
    Outcome.SEQUELAE: "有后遗症",
    Outcome.DEATH: "死亡",
    Outcome.UNKNOWN: "不详",
}
_OUTCOME_WORDS = {
    **{o.value: o for o in Outcome},
    **{zh: o for o, zh in OUTCOME_ZH.items()},
    "治愈": Outcome.RECOVERED,
    "未愈": Outcome.NOT_RECOVERED,
    "后遗症": Outcome.SEQUELAE,
    "未知": Outcome.UNKNOWN,
}
STATUS_ZH = {
    ProblemStatus.OPEN: "待处理",
    ProblemStatus.WITH_DISTRIBUTOR: "已反馈配送企业",
    ProblemStatus.WITH_REGULATOR: "已报告药监部门",
    ProblemStatus.RESOLVED: "已解决",
    ProblemStatus.CLOSED: "已关闭",
}


def parse_outcome(value: object) -> str:
    text = parse_text(value).strip().lower()
    if text in _OUTCOME_WORDS:
        return str(_OUTCOME_WORDS[text])
    raise ValueParseError(
        "value.choice",
        "不是可选值，可选：" + "、".join(OUTCOME_ZH.values()),
        "Not an allowed value; use " + ", ".join(Outcome.values),
    )


def _not_future(column: str, day: dt.date, what: str) -> None:
    if day > timezone.localdate():
        raise RowIssue(column, "date.future", f"{what}不能晚于今天", f"{column} is in the future", day.isoformat())


class QualitySpec(ResolvingSpec):
    """Institution-owned rows: a hospital imports its own; the operator names the institution."""

    institution_action: ClassVar[Action] = Action.READ

    def owner_institution(self, ctx: RowContext, code: str | None) -> Institution:
        scope = ctx.scope
        if scope.level in (Level.INSTITUTION, Level.DEPARTMENT):
            if code and code != scope.institution_code:
                raise RowIssue(
                    "institution_code",
                    "scope.institution",
                    f"只能导入本机构（{scope.institution_code}）的记录",
                    f"only records of {scope.institution_code} can be imported",
                    code,
                )
            code = scope.institution_code
        if not code:
            raise RowIssue("institution_code", "value.required", "请填写医疗机构编码", "the institution code is needed")
        return self.institution(ctx, code)


# ------------------------------------------------------------------------------------------------
# Adverse reactions


class ReactionsSpec(QualitySpec):
    name = "adverse_reactions"
    label = "药品不良反应报告"
    label_en = "Adverse reaction reports"
    model = AdverseReaction
    resource = ADVERSE_REACTION
    columns = (
        Column("report_no", "报告编号", _code, required=True, key=True, aliases=("编号", "报告号")),
        Column("institution_code", "医疗机构编码", _code, aliases=("机构编码",)),
        Column("department_code", "科室编码", _code, aliases=("科室代码",)),
        Column("report_date", "报告日期", parse_date, required=True, aliases=("上报日期",)),
        Column("onset_date", "发生日期", parse_date, aliases=("不良反应发生时间", "发生时间")),
        Column("product_code", "药品编码", _code, required=True, aliases=("医保药品编码", "药品代码")),
        Column("generic_name", "通用名（仅供查看）", _ignored, aliases=("通用名", "药品名称")),
        Column("lot_number", "批号", _text(60), aliases=("生产批号",)),
        Column("reaction", "不良反应描述", _text(4000), required=True, aliases=("不良反应", "不良反应名称", "描述")),
        Column("is_new", "新的", parse_bool, aliases=("新的不良反应", "是否新的")),
        Column("is_serious", "严重", parse_bool, aliases=("严重的不良反应", "是否严重")),
        Column("outcome", "转归", parse_outcome, aliases=("结果",)),
        Column("reporter", "报告人", _text(100), required=True, aliases=("上报人",)),
    )
    key_fields = ("report_no", "institution_id")
    compare_fields = (
        "department_id",
        "report_date",
        "onset_date",
        "product_id",
        "item_id",
        "is_selected",
        "lot_number",
        "reaction",
        "is_new",
        "is_serious",
        "outcome",
        "reporter",
    )
    sources: ClassVar[dict[str, tuple[str, ...]]] = {
        "department_id": ("department_code",),
        "product_id": ("product_code",),
        "item_id": ("product_code",),
        "is_selected": ("product_code",),
        "is_serious": ("is_serious", "outcome"),
    }

    def prepare(self, values: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        institution = self.owner_institution(ctx, values.get("institution_code"))
        department = None
        if values.get("department_code"):
            key = (institution.pk, values["department_code"])
            cache = ctx.cache.setdefault("departments", {})
            if key not in cache:
                cache[key] = Department.objects.filter(institution=institution, code=values["department_code"]).first()
            department = cache[key]
            if department is None:
                raise RowIssue(
                    "department_code",
                    "reference.unknown",
                    f"医疗机构 {institution.code} 没有此科室编码",
                    f"no such department in {institution.code}",
                    values["department_code"],
                )
        product = self.product(ctx, values["product_code"])
        links = ctx.cache.setdefault("links", {})
        if (institution.pk, product.pk) not in links:
            links[(institution.pk, product.pk)] = queries.programme_link(institution, product)
        item, is_selected = links[(institution.pk, product.pk)]
        report_date: dt.date = values["report_date"]
        _not_future("report_date", report_date, "报告日期")
        onset = values.get("onset_date")
        if onset is not None and onset > report_date:
            raise RowIssue("onset_date", "date.order", "发生日期不能晚于报告日期", "onset after the report date", onset)
        outcome = values.get("outcome") or Outcome.UNKNOWN
        touched = ctx.options.get("touched")
        if touched is not None:
            touched.add((institution.pk, product.pk))
            before = AdverseReaction.unguarded.filter(institution=institution, report_no=values["report_no"])
            touched.update((institution.pk, p) for p in before.values_list("product_id", flat=True))
        return {
            "report_no": values["report_no"],
            "institution_id": institution.pk,
            "department_id": department.pk if department else None,
            "report_date": report_date,
            "onset_date": onset,
            "product_id": product.pk,
            "item_id": item.pk if item else None,
            "is_selected": is_selected,
            "lot_number": values.get("lot_number") or "",
            "reaction": values["reaction"],
            "is_new": bool(values.get("is_new")),
            "is_serious": bool(values.get("is_serious")) or outcome == Outcome.DEATH,
            "outcome": outcome,
            "reporter": values["reporter"],
            "created_by_id": ctx.scope.actor_id,
        }

    def export_queryset(self, scope: Any) -> models.QuerySet[Any]:
        return super().export_queryset(scope).select_related("institution", "department", "product")

    def export_row(self, obj: AdverseReaction) -> dict[str, Any]:
        return {
            "report_no": obj.report_no,
            "institution_code": obj.institution.code,
            "department_code": obj.department.code if obj.department else "",
            "report_date": obj.report_date,
            "onset_date": obj.onset_date,
            "product_code": obj.product.code,
            "generic_name": obj.product.generic_name,
            "lot_number": obj.lot_number,
            "reaction": obj.reaction,
            "is_new": obj.is_new,
            "is_serious": obj.is_serious,
            "outcome": OUTCOME_ZH[Outcome(obj.outcome)],
            "reporter": obj.reporter,
        }


# ------------------------------------------------------------------------------------------------
# Quality problems


class ProblemsSpec(QualitySpec):
    name = "quality_problems"
    label = "药品质量问题"
    label_en = "Quality problems"
    model = QualityProblem
    resource = QUALITY_PROBLEM
    columns = (
        Column("problem_no", "问题编号", _code, required=True, key=True, aliases=("编号",)),
        Column("institution_code", "医疗机构编码", _code, aliases=("机构编码",)),
        Column("product_code", "药品编码", _code, required=True, aliases=("医保药品编码",)),
        Column("generic_name", "通用名（仅供查看）", _ignored, aliases=("通用名", "药品名称")),
        Column("lot_number", "批号", _text(60), aliases=("生产批号",)),
        Column("description", "问题描述", _text(4000), required=True, aliases=("质量问题", "描述")),
        Column("found_on", "发现日期", parse_date, required=True, aliases=("发现时间",)),
        Column("reported_by", "报告人", _text(100), required=True, aliases=("发现人",)),
        Column("distributor", "配送企业", _text(200), aliases=("配送商",)),
        Column("needs_regulator", "需报告药监部门", parse_bool, aliases=("报告药监",)),
        Column("status", "状态（仅供查看）", _ignored, aliases=("状态",)),
    )
    key_fields = ("problem_no", "institution_id")
    compare_fields = (
        "product_id",
        "lot_number",
        "description",
        "found_on",
        "reported_by",
        "distributor",
        "needs_regulator",
    )
    sources: ClassVar[dict[str, tuple[str, ...]]] = {"product_id": ("product_code",)}

    def prepare(self, values: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        institution = self.owner_institution(ctx, values.get("institution_code"))
        product = self.product(ctx, values["product_code"])
        _not_future("found_on", values["found_on"], "发现日期")
        existing = QualityProblem.unguarded.filter(institution=institution, problem_no=values["problem_no"]).first()
        distributor = values.get("distributor") or ""
        if not distributor and existing is None:
            found = ctx.cache.setdefault("distributors", {})
            if (institution.code, product.code) not in found:
                found[(institution.code, product.code)] = queries.distributor_for(
                    ctx.scope, institution.code, product.code
                )
            distributor = found[(institution.code, product.code)]
        created = ctx.options.get("created")
        if created is not None and existing is None:
            created.append((institution.pk, values["problem_no"]))
        fields = {
            "problem_no": values["problem_no"],
            "institution_id": institution.pk,
            "product_id": product.pk,
            "lot_number": values.get("lot_number") or "",
            "description": values["description"],
            "found_on": values["found_on"],
            "reported_by": values["reported_by"],
            "distributor": distributor or (existing.distributor if existing else ""),
            "needs_regulator": bool(values.get("needs_regulator")),
            "created_by_id": ctx.scope.actor_id,
        }
        if existing is not None and rules.is_final(existing.status):
            present = set(ctx.options.get("present_columns", ()))
            compared = [f for f in self.compare_fields if self.field_present(f, present)]
            if any(getattr(existing, f) != fields[f] for f in compared):
                raise RowIssue(
                    "problem_no",
                    "problem.final",
                    "该问题已解决或已关闭，不能再修改",
                    "the problem is resolved or closed",
                    values["problem_no"],
                )
        return fields

    def export_queryset(self, scope: Any) -> models.QuerySet[Any]:
        return super().export_queryset(scope).select_related("institution", "product")

    def export_row(self, obj: QualityProblem) -> dict[str, Any]:
        return {
            "problem_no": obj.problem_no,
            "institution_code": obj.institution.code,
            "product_code": obj.product.code,
            "generic_name": obj.product.generic_name,
            "lot_number": obj.lot_number,
            "description": obj.description,
            "found_on": obj.found_on,
            "reported_by": obj.reported_by,
            "distributor": obj.distributor,
            "needs_regulator": obj.needs_regulator,
            "status": STATUS_ZH[ProblemStatus(obj.status)],
        }


# ------------------------------------------------------------------------------------------------
# Clinical evaluations


SCORE_LABELS = {
    "safety": "安全性",
    "efficacy": "有效性",
    "economy": "经济性",
    "innovation": "创新性",
    "suitability": "适宜性",
    "accessibility": "可及性",
}
SCORE_COLUMNS = tuple(d.value for d in rules.DIMENSIONS)


class EvaluationsSpec(ResolvingSpec):
    name = "clinical_evaluations"
    label = "药品临床综合评价"
    label_en = "Clinical evaluations"
    model = ClinicalEvaluation
    resource = EVALUATION
    institution_action: ClassVar[Action] = Action.READ
    columns = (
        Column("product_code", "药品编码", _code, required=True, key=True, aliases=("医保药品编码",)),
        Column("evaluated_on", "评价日期", parse_date, required=True, key=True, aliases=("评价时间",)),
        Column("institution_code", "医疗机构编码", _code, aliases=("机构编码",)),
        Column("region_code", "地区代码", _code, aliases=("行政区划代码",)),
        Column("generic_name", "通用名（仅供查看）", _ignored, aliases=("通用名", "药品名称")),
        Column("scheme", "评价方案", _text(100), aliases=("权重方案",)),
        *(
            Column(c, f"{SCORE_LABELS[c]}得分", _score, required=True, aliases=(SCORE_LABELS[c],))
            for c in SCORE_COLUMNS
        ),
        Column("total", "综合得分（按权重计算）", _ignored, aliases=("综合得分", "总分")),
        Column("grade", "等级（按得分计算）", _ignored, aliases=("等级", "评价等级")),
        Column("evaluator", "评价人", _text(100), required=True, aliases=("评价单位", "评价者")),
        Column("valid_until", "有效期至", parse_date, aliases=("有效期",)),
        Column("evidence", "证据说明", _text(4000), aliases=("证据", "依据")),
    )
    key_fields = ("owner_code", "product_id", "evaluated_on")
    compare_fields = ("scheme_id", "weights", *SCORE_COLUMNS, "total", "grade", "evaluator", "valid_until", "evidence")
    sources: ClassVar[dict[str, tuple[str, ...]]] = {
        "scheme_id": SCORE_COLUMNS,
        "weights": SCORE_COLUMNS,
        "total": SCORE_COLUMNS,
        "grade": SCORE_COLUMNS,
    }

    def _owner(self, values: dict[str, Any], ctx: RowContext) -> Any:
        from jicai.quality.actions.evaluations import resolve_owner  # noqa: PLC0415 - actions import this module

        key = (values.get("institution_code") or "", values.get("region_code") or "")
        cache = ctx.cache.setdefault("owners", {})
        if key not in cache:
            try:
                cache[key] = resolve_owner(ctx.scope, *key)
            except WorkflowError as exc:
                cache[key] = RowIssue(
                    exc.field or "institution_code", exc.code or "owner", exc.message_zh, exc.message_en
                )
            except ScopeError as exc:
                cache[key] = RowIssue(
                    "institution_code", "scope.owner", "不能导入其他单位的评价", str(exc), key[0] or key[1]
                )
        found = cache[key]
        if isinstance(found, RowIssue):
            raise found
        return found

    def _scheme(self, ctx: RowContext, owner: Any, name: str) -> EvaluationScheme | None:
        if not name:
            return None
        cache = ctx.cache.setdefault("schemes", {})
        if (owner.code, name) not in cache:
            visible = EvaluationScheme.objects.for_scope(ctx.scope).filter(name=name, active=True)
            own = visible.filter(owner_code=owner.code).first()
            regional = (
                visible.filter(institution__isnull=True, region_code__in=region_ancestors(owner.region_code))
                .order_by("-region_code")
                .first()
            )
            cache[(owner.code, name)] = own or regional
        scheme: EvaluationScheme | None = cache[(owner.code, name)]
        if scheme is None:
            raise RowIssue(
                "scheme", "reference.unknown", f"未知或已停用的评价方案：{name}", f"unknown scheme {name}", name
            )
        return scheme

    def prepare(self, values: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        from jicai.quality.actions.evaluations import weights_json  # noqa: PLC0415

        owner = self._owner(values, ctx)
        product = self.product(ctx, values["product_code"])
        day: dt.date = values["evaluated_on"]
        _not_future("evaluated_on", day, "评价日期")
        until = values.get("valid_until")
        if until is not None and until < day:
            raise RowIssue(
                "valid_until", "date.order", "有效期不能早于评价日期", "valid until is before the evaluation", until
            )
        scheme = self._scheme(ctx, owner, values.get("scheme") or "")
        weights = scheme.weights if scheme else rules.DEFAULT_WEIGHTS
        scores = {c: values[c] for c in SCORE_COLUMNS}
        outcome = rules.evaluate(scores, weights)
        given = values.get("total")
        if given:
            try:
                stated = parse_decimal(given, places=2)
            except ValueParseError:
                stated = None
            if stated != outcome.total:
                ctx.warn(
                    "total",
                    "total.recomputed",
                    f"综合得分按权重重新计算为 {outcome.total}",
                    f"the total is recomputed as {outcome.total}",
                    given,
                )
        return {
            "institution_id": owner.institution.pk if owner.institution else None,
            "region_code": owner.region_code,
            "owner_code": owner.code,
            "product_id": product.pk,
            "scheme_id": scheme.pk if scheme else None,
            "weights": weights_json(weights),
            **scores,
            "total": outcome.total,
            "grade": outcome.grade,
            "evaluator": values["evaluator"],
            "evaluated_on": day,
            "valid_until": until,
            "evidence": values.get("evidence") or "",
            "created_by_id": ctx.scope.actor_id,
        }

    def export_queryset(self, scope: Any) -> models.QuerySet[Any]:
        return super().export_queryset(scope).select_related("institution", "product", "scheme")

    def export_row(self, obj: ClinicalEvaluation) -> dict[str, Any]:
        return {
            "product_code": obj.product.code,
            "evaluated_on": obj.evaluated_on,
            "institution_code": obj.institution.code if obj.institution else "",
            "region_code": "" if obj.institution else obj.region_code,
            "generic_name": obj.product.generic_name,
            "scheme": obj.scheme.name if obj.scheme else "",
            **{c: getattr(obj, c) for c in SCORE_COLUMNS},
            "total": obj.total,
            "grade": obj.grade,
            "evaluator": obj.evaluator,
            "valid_until": obj.valid_until,
            "evidence": obj.evidence,
        }


REACTIONS_SPEC = ReactionsSpec()
PROBLEMS_SPEC = ProblemsSpec()
EVALUATIONS_SPEC = EvaluationsSpec()
SPECS = {s.name: s for s in (REACTIONS_SPEC, PROBLEMS_SPEC, EVALUATIONS_SPEC)}
