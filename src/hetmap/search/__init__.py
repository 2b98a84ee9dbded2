"""Pareto search over mappings: strategies behind one ask/tell interface, budgets, fronts."""

from hetmap.search import mps as _mps  # noqa: F401 - registers "mps"
from hetmap.search import random as _random  # noqa: F401 - registers "random"
from hetmap.search.api import chip_constraints, search
from hetmap.search.budget import Budget
from hetmap.search.front import Member, ParetoFront, spread
from hetmap.search.mps import MPSStrategy
from hetmap.search.problem import SearchProblem
from hetmap.search.random import RandomStrategy
from hetmap.search.rescore import rescore_drift
from hetmap.search.strategy import (
    Strategy,
    get_strategy,
    register_strategy,
    strategy_names,
    survival_order,
)

__all__ = [
    "Budget",
    "MPSStrategy",
    "Member",
    "ParetoFront",
    "RandomStrategy",
    "SearchProblem",
    "Strategy",
    "chip_constraints",
    "get_strategy",
    "register_strategy",
    "rescore_drift",
    "search",
    "spread",
    "strategy_names",
    "survival_order",
]

# Registers the competing mappers (anchors, lionheart, odimo, nsga2, harmonica) under their names.
from hetmap.search import mappers as _mappers  # noqa: F401
