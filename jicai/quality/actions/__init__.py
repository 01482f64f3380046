"""Every write of the quality registers, one transaction and one audit row each (R-J1, R-J2, R-K1)."""

from jicai.quality.actions.evaluations import (
    EvaluationInput,
    do_create_evaluation,
    do_import_evaluations,
    do_save_scheme,
    do_update_evaluation,
)
from jicai.quality.actions.problems import (
    ProblemInput,
    do_close_problem,
    do_create_problem,
    do_import_problems,
    do_resolve_problem,
    do_route_to_distributor,
    do_route_to_regulator,
    do_update_problem,
)
from jicai.quality.actions.reactions import (
    DetectionOutcome,
    ReactionInput,
    do_approve_suspension,
    do_close_signal,
    do_create_reaction,
    do_detect_clusters,
    do_import_reactions,
    do_lift_suspension,
    do_reject_suspension,
    do_suspend_use,
    do_update_reaction,
)

__all__ = [
    "DetectionOutcome",
    "EvaluationInput",
    "ProblemInput",
    "ReactionInput",
    "do_approve_suspension",
    "do_close_problem",
    "do_close_signal",
    "do_create_evaluation",
    "do_create_problem",
    "do_create_reaction",
    "do_detect_clusters",
    "do_import_evaluations",
    "do_import_problems",
    "do_import_reactions",
    "do_lift_suspension",
    "do_reject_suspension",
    "do_resolve_problem",
    "do_route_to_distributor",
    "do_route_to_regulator",
    "do_save_scheme",
    "do_suspend_use",
    "do_update_evaluation",
    "do_update_problem",
    "do_update_reaction",
]
