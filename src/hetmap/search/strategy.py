"""The strategy interface (pymoo-like ask/tell) and the registry that lets other mappers
(LionHeart, ODiMo, NSGA-II, ...) plug into `hetmap.search.search` by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from hetmap.errors import ConfigError
from hetmap.evaluation import crowding_distance, pareto_ranks
from hetmap.registry import Registry
from hetmap.search.problem import SearchProblem


class Strategy:
    """Base class: override `ask` and `tell` (or `run` for strategies that drive their own
    loop, e.g. greedy mappers). `ask` returns genomes (rows of candidate indices per
    searchable layer); the problem evaluates the unseen ones within the budget."""

    name: ClassVar[str] = "strategy"

    def __init__(self, pop_size: int = 32) -> None:
        if pop_size <= 0:
            raise ConfigError(f"pop_size must be positive, got {pop_size}")
        self.pop_size = pop_size
        self.problem: SearchProblem | None = None
        self.rng = np.random.default_rng(0)

    def setup(self, problem: SearchProblem, seed: int) -> None:
        self.problem = problem
        self.rng = np.random.default_rng(seed)

    def ask(self) -> np.ndarray:
        raise NotImplementedError

    def tell(self, X: np.ndarray, F: np.ndarray, CV: np.ndarray) -> None:
        """Hear the scores of the rows just evaluated (the problem's archive has them all)."""

    def run(self, problem: SearchProblem, seed: int = 0) -> None:
        self.setup(problem, seed)
        while not problem.exhausted():
            X, F, CV = problem.evaluate(self.ask())
            self.tell(X, F, CV)

    # -- helpers for subclasses -------------------------------------------------------------
    def uniform(self, n: int) -> np.ndarray:
        """n genomes drawn uniformly over each layer's candidates."""
        assert self.problem is not None
        return self.rng.integers(0, self.problem.n_choices, size=(n, len(self.problem.layers)))

    def unseen(self, X: np.ndarray) -> np.ndarray:
        """Rows of X that are neither in the archive nor repeated within X."""
        assert self.problem is not None
        keep, seen = [], set()
        for i, m in enumerate(self.problem.decode(X)):
            if m not in self.problem.archive and m not in seen:
                seen.add(m)
                keep.append(i)
        return X[keep]


def survival_order(F: np.ndarray, CV: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NSGA-II order of archive rows: feasible first, then by Pareto rank, then by
    crowding (widest first); also returns each row's rank (infeasible rows after all
    feasible ranks, by violation)."""
    n = len(F)
    rank = np.zeros(n, dtype=int)
    crowd = np.zeros(n)
    feas = np.flatnonzero(CV <= 0)
    if len(feas):
        rank[feas] = pareto_ranks(F[feas])
        for r in np.unique(rank[feas]):
            idx = feas[rank[feas] == r]
            crowd[idx] = crowding_distance(F[idx])
    infeas = np.flatnonzero(CV > 0)
    if len(infeas):
        top = rank[feas].max() + 1 if len(feas) else 0
        order = np.argsort(CV[infeas], kind="stable")
        rank[infeas[order]] = top + np.arange(len(infeas))
    return np.lexsort((-crowd, rank)), rank


STRATEGIES: Registry[Callable[..., Strategy]] = Registry("search strategy")


def register_strategy(name: str, factory: Callable[..., Strategy] | None = None,
                      *, replace: bool = False) -> Any:
    """Register a Strategy class (or factory) under `name`; usable as a decorator."""
    if factory is None:
        return STRATEGIES.decorator(name, replace=replace)
    return STRATEGIES.register(name, factory, replace=replace)


def strategy_names() -> tuple[str, ...]:
    return tuple(sorted(STRATEGIES.names()))


def get_strategy(name: str | Strategy, **options: Any) -> Strategy:
    if isinstance(name, Strategy):
        if options:
            raise ConfigError("strategy options go to the constructor when passing an instance")
        return name
    return STRATEGIES.build(name, **options)
