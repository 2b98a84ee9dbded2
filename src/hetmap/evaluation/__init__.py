"""Scoring mappings: named objectives and constraints, Pareto ranking and hypervolume, the
shared-weight Evaluator, and drift-aware evaluation of deployed (aihwkit) models."""

from hetmap.evaluation.batchnorm import batchnorms, calibration_inputs, recalibrate_batchnorm
from hetmap.evaluation.evaluator import DEFAULT_OBJECTIVES, Evaluator
from hetmap.evaluation.objectives import (
    DERIVED,
    OBJECTIVES,
    Constraint,
    Horizon,
    Objective,
    crowding_distance,
    get_objective,
    hypervolume,
    non_dominated,
    pareto_ranks,
    parse_constraints,
    parse_horizon,
    to_minimisation,
)
from hetmap.evaluation.scores import Scores, is_score_name

__all__ = [
    "DEFAULT_OBJECTIVES",
    "DERIVED",
    "OBJECTIVES",
    "Constraint",
    "DriftResult",
    "Evaluator",
    "Horizon",
    "Objective",
    "Scores",
    "batchnorms",
    "calibration_inputs",
    "crowding_distance",
    "deploy",
    "evaluate_drift",
    "get_objective",
    "hypervolume",
    "is_score_name",
    "non_dominated",
    "pareto_ranks",
    "parse_constraints",
    "parse_horizon",
    "recalibrate_batchnorm",
    "to_minimisation",
    "torch_rpu_config",
]


def __getattr__(name: str) -> object:
    # drift pulls in aihwkit (slow to import); load it only when asked for
    if name in ("DriftResult", "deploy", "evaluate_drift", "torch_rpu_config"):
        from hetmap.evaluation import drift

        return getattr(drift, name)
    raise AttributeError(f"module 'hetmap.evaluation' has no attribute {name!r}")
