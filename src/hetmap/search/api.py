"""`search`: one entry point for every strategy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hetmap.evaluation import Evaluator
from hetmap.evaluation.objectives import Constraint, parse_constraints
from hetmap.search.budget import Budget
from hetmap.search.front import Member, ParetoFront
from hetmap.search.problem import SearchProblem
from hetmap.search.strategy import Strategy, get_strategy
from hetmap.supernet import Supernet


def search(supernet: Supernet, evaluator: Evaluator, strategy: str | Strategy = "mps",
           budget: Budget | int | float | dict | None = None, seed: int = 0,
           constraints: Sequence[str | Constraint] | str = (),
           **strategy_options: Any) -> ParetoFront:
    """Search mappings of `supernet` scored by `evaluator`; returns the feasible front.

    budget: Budget(evaluations=..., seconds=...), an int (evaluations) or a float (seconds);
        default 256 evaluations. Evaluations count distinct mappings scored by this search.
    constraints: e.g. ["accuracy_drop<=1", "analog_mac_ratio>=0.6"].
    strategy_options: passed to the strategy's constructor (pop_size, ...)."""
    budget = Budget.of(budget if budget is not None else 256)
    cons = parse_constraints(constraints)
    strat = get_strategy(strategy, **strategy_options)
    problem = SearchProblem(supernet, evaluator, budget, cons)
    strat.run(problem, seed)
    idx = problem.front_indices()
    feasible = bool(len(idx) == 0 or problem.CV[idx].max() <= 0)
    members = [Member(problem.mappings[i], problem.archive[problem.mappings[i]]) for i in idx]
    return ParetoFront(members, evaluator.names, tuple(str(c) for c in cons),
                       list(problem.history), problem.evaluations, problem.elapsed,
                       getattr(strat, "name", type(strat).__name__), seed,
                       problem.ideal, problem.ref, feasible)
