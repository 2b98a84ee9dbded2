"""`mps`: hetmap's ranking search, guided by the supernet's learned preferences.

After stage-3 (rank-preserving) training the per-layer preferences put their mass on
candidates that appear in Pareto-good mappings. The search samples first from them (at
several temperatures, so one trade-off does not take all the samples), adds the uniform
"anchor" mappings that span the hardware objectives' extremes, and then evolves: parents by
pymoo's non-dominated sorting plus crowding (NSGA-II survival over everything evaluated),
uniform crossover, and mutation that redraws genes from the preferences rather than
uniformly. A share of each generation stays fresh preference samples. With untrained
(uniform) preferences this reduces to a plain NSGA-II-style search.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hetmap.errors import ConfigError
from hetmap.search.problem import SearchProblem
from hetmap.search.strategy import Strategy, register_strategy, survival_order


@register_strategy("mps")
class MPSStrategy(Strategy):
    """pop_size: mappings per generation; temperatures: preference sharpening used when
    sampling (p ** (1/t)); explore: uniform share mixed into every draw; fresh: share of
    each generation that is new preference samples; mutation: per-gene redraw probability
    (default 1.5 / layers); anchors: start from the uniform mappings."""

    name = "mps"

    def __init__(self, pop_size: int = 32, temperatures: Sequence[float] = (0.5, 1.0, 2.0),
                 explore: float = 0.05, fresh: float = 0.25, mutation: float | None = None,
                 anchors: bool = True) -> None:
        super().__init__(pop_size)
        if not temperatures or any(t <= 0 for t in temperatures):
            raise ConfigError(f"temperatures must be positive, got {list(temperatures)}")
        for label, v in (("explore", explore), ("fresh", fresh)):
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"{label} must be in [0, 1], got {v}")
        if mutation is not None and not 0.0 <= mutation <= 1.0:
            raise ConfigError(f"mutation must be in [0, 1], got {mutation}")
        self.temperatures = tuple(float(t) for t in temperatures)
        self.explore = explore
        self.fresh = fresh
        self.mutation = mutation
        self.anchors = anchors
        self._started = False

    def setup(self, problem: SearchProblem, seed: int) -> None:
        super().setup(problem, seed)
        prefs = problem.supernet.preferences()
        width = int(problem.n_choices.max())
        self.P = np.zeros((len(problem.layers), width))
        for j, name in enumerate(problem.layers):
            for k, cand in enumerate(problem.choices[j]):
                self.P[j, k] = prefs[name][cand]
        self.valid = np.arange(width)[None, :] < problem.n_choices[:, None]
        self.pm = self.mutation if self.mutation is not None else \
            min(1.0, 1.5 / len(problem.layers))
        self._started = False

    # -- sampling ---------------------------------------------------------------------------
    def _probs(self, t: float) -> np.ndarray:
        logp = np.where(self.valid, np.log(np.clip(self.P, 1e-12, None)) / t, -np.inf)
        p = np.exp(logp - logp.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        uniform = self.valid / self.valid.sum(axis=1, keepdims=True)
        return (1 - self.explore) * p + self.explore * uniform

    def sample(self, n: int, t: float | None = None) -> np.ndarray:
        """n genomes drawn from the preferences (temperature t, else cycling through
        `temperatures`)."""
        temps = [t] * n if t is not None else [self.temperatures[i % len(self.temperatures)]
                                               for i in range(n)]
        out = np.zeros((n, self.P.shape[0]), dtype=np.int64)
        for temp in set(temps):
            rows = np.flatnonzero(np.array(temps) == temp)
            cdf = np.cumsum(self._probs(temp), axis=1)
            u = self.rng.random((len(rows), self.P.shape[0], 1))
            out[rows] = np.minimum((u > cdf[None]).sum(axis=2), self.problem.n_choices - 1)
        return out

    def _anchors(self) -> np.ndarray:
        problem = self.problem
        top = self.P.argmax(axis=1)
        rows = [top]
        names = sorted({c for cs in problem.choices for c in cs})
        for cand in names:
            rows.append(np.array([cs.index(cand) if cand in cs else top[j]
                                  for j, cs in enumerate(problem.choices)]))
        return np.array(rows, dtype=np.int64)

    # -- ask/tell ---------------------------------------------------------------------------
    def ask(self) -> np.ndarray:
        n = self.pop_size
        if not self._started:
            self._started = True
            first = [self._anchors()] if self.anchors else []
            X = self.unseen(np.vstack([*first, self.sample(3 * n)]))
            return X[:max(n, len(first[0]) if first else 0)]
        problem = self.problem
        order, _ = survival_order(problem.F, problem.CV)
        parents = problem.X[order[:n]]
        n_fresh = round(self.fresh * n)
        children = self.unseen(self._offspring(parents, 2 * (n - n_fresh)))[:n - n_fresh]
        X = self.unseen(np.vstack([children, self.sample(2 * n_fresh + n)]))
        return X[:n]  # the unseen children first, topped up with fresh samples

    def _offspring(self, parents: np.ndarray, n: int) -> np.ndarray:
        if n <= 0 or len(parents) == 0:
            return np.zeros((0, parents.shape[1]), dtype=np.int64)
        k = len(parents)  # parents are sorted best first: a tournament keeps the lower index
        a = self.rng.integers(0, k, size=(n, 2)).min(axis=1)
        b = self.rng.integers(0, k, size=(n, 2)).min(axis=1)
        mask = self.rng.random(parents[a].shape) < 0.5
        child = np.where(mask, parents[a], parents[b])
        mutate = self.rng.random(child.shape) < self.pm
        redraw = self.sample(n, t=1.0)
        return np.where(mutate, redraw, child)
