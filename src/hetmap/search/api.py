"""`search`: one entry point for every strategy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hetmap.evaluation import Evaluator
from hetmap.evaluation.objectives import Constraint, parse_constraints
from hetmap.search.budget import Budget
from hetmap.search.front import Member, ParetoFront
from hetmap.search.problem import SearchProblem
from hetmap.search.strategy import Strategy, get_strategy
from hetmap.supernet import Supernet


def search(supernet: Supernet, evaluator: Evaluator, strategy: str | Strategy = "mps",
           budget: Budget | int | float | dict | None = None, seed: int = 0,
           constraints: Sequence[str | Constraint] | str = (), keep_dominated: bool = False,
           **strategy_options: Any) -> ParetoFront:
    """Search mappings of `supernet` scored by `evaluator`; returns the feasible front.

    budget: Budget(evaluations=..., seconds=...), an int (evaluations) or a float (seconds);
        default 256 evaluations. Evaluations count distinct mappings scored by this search.
    constraints: e.g. ["accuracy_drop<=1", "analog_mac_ratio>=0.6"]. With a cost table on
        the evaluator, the chip's tile budget is one more (see `chip_constraints`): no
        over-budget mapping is on the front.
    keep_dominated: return every evaluated mapping the chip holds, dominated ones too (for
        references such as the uniform anchors; `.pruned()` is then the front).
    strategy_options: passed to the strategy's constructor (pop_size, ...)."""
    budget = Budget.of(budget if budget is not None else 256)
    cons = parse_constraints(constraints)
    chip = chip_constraints(evaluator)
    strat = get_strategy(strategy, **strategy_options)
    problem = SearchProblem(supernet, evaluator, budget, (*cons, *chip))
    strat.run(problem, seed)
    idx = problem.front_indices(hard=chip)  # never a mapping the chip cannot hold
    if keep_dominated:
        idx = np.flatnonzero(problem.fitting(chip))
    feasible = bool(len(idx) == 0 or problem.CV[idx].max() <= 0)
    members = [Member(problem.mappings[i], problem.archive[problem.mappings[i]]) for i in idx]
    return ParetoFront(members, evaluator.names,
                       constraints=tuple(str(c) for c in (*cons, *chip)),
                       history=list(problem.history), evaluations=problem.evaluations,
                       wall_s=problem.elapsed,
                       strategy=getattr(strat, "name", type(strat).__name__), seed=seed,
                       ideal=problem.ideal, ref=problem.ref, feasible=feasible,
                       split=evaluator.split)


def chip_constraints(evaluator: Evaluator) -> tuple[Constraint, ...]:
    """The hardware's own hard constraint: `tile_overflow <= 0` when the evaluator costs
    mappings on a chip whose spec says `on_tile_overflow: error` (a `reprogram` spec
    charges overflowing tiles in latency and energy instead)."""
    hw = evaluator.cost_table.hw if evaluator.cost_table is not None else None
    if hw is None or hw.analog is None or hw.on_tile_overflow != "error":
        return ()
    return (Constraint("tile_overflow", "<=", 0.0),)
