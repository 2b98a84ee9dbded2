"""The search problem every strategy sees: integer genomes (one candidate index per
searchable layer), a budget-aware evaluate, an archive of every mapping scored and the
hypervolume curve of the archive's feasible front."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from hetmap.distributed import is_distributed
from hetmap.evaluation import Evaluator, hypervolume, non_dominated, to_minimisation
from hetmap.evaluation.objectives import Constraint
from hetmap.evaluation.scores import Scores
from hetmap.mapping import Mapping
from hetmap.search.budget import Budget
from hetmap.supernet import Supernet


class SearchProblem:
    """Genome <-> mapping, budgeted evaluation and the archive.

    A genome row X[i] holds, for each searchable layer in `layers` order, the index of its
    candidate in `supernet.candidates(layer)`. `F` rows are in minimisation form; `CV` is
    the summed constraint violation (0 = feasible)."""

    def __init__(self, supernet: Supernet, evaluator: Evaluator, budget: Budget,
                 constraints: Sequence[Constraint] = ()) -> None:
        self.supernet = supernet
        self.evaluator = evaluator
        self.budget = budget
        self.constraints = tuple(constraints)
        self.layers = supernet.layer_names
        self.choices = [supernet.candidates(n) for n in self.layers]
        self.n_choices = np.array([len(c) for c in self.choices])
        self.space_size = float(np.prod(self.n_choices.astype(float)))
        self.objectives = evaluator.objectives
        self.ideal, self.ref = evaluator.reference_point()
        self.extra = tuple(dict.fromkeys(c.name for c in self.constraints
                                         if c.name not in evaluator.names))
        self.archive: dict[Mapping, Scores] = {}
        self.mappings: list[Mapping] = []  # archive order = rows of X, F, CV
        self.X = np.zeros((0, len(self.layers)), dtype=np.int64)
        self.F = np.zeros((0, len(self.objectives)))
        self.CV = np.zeros(0)
        self.history: list[tuple[int, float, float]] = []  # (evaluations, hv, seconds)
        self.start = time.perf_counter()
        self._stalled = 0

    # -- encoding ---------------------------------------------------------------------------
    def decode(self, X: np.ndarray) -> list[Mapping]:
        fp = self.supernet.fingerprint
        return [Mapping({n: self.choices[j][int(row[j])] for j, n in enumerate(self.layers)}, fp)
                for row in np.atleast_2d(X)]

    def encode(self, mappings: Sequence[Mapping]) -> np.ndarray:
        return np.array([[self.choices[j].index(m[n]) for j, n in enumerate(self.layers)]
                         for m in mappings], dtype=np.int64).reshape(len(mappings), -1)

    # -- budget -----------------------------------------------------------------------------
    @property
    def evaluations(self) -> int:
        return len(self.archive)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def remaining(self) -> int | None:
        if self.budget.evaluations is None:
            return None
        return max(0, self.budget.evaluations - self.evaluations)

    def exhausted(self) -> bool:
        done = (self.remaining() == 0 or self.evaluations >= self.space_size
                or self._stalled >= 25
                or (self.budget.seconds is not None and self.elapsed >= self.budget.seconds))
        return _agree(done)

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self, X: np.ndarray, evaluator: Evaluator | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Score the rows of X not seen before, up to the budget; returns the (X, F, CV)
        of the rows actually evaluated (duplicates and over-budget rows dropped).
        `evaluator`: one with the problem's settings on other weights (`Evaluator.on`, a
        mapper's fine-tuned copy); default: the problem's own."""
        X = np.atleast_2d(np.asarray(X, dtype=np.int64))
        fresh: list[Mapping] = []
        rows = []
        seen = set()
        limit = self.remaining()
        for row, m in zip(X, self.decode(X)):
            if m in self.archive or m in seen:
                continue
            if limit is not None and len(fresh) >= limit:
                break
            seen.add(m)
            fresh.append(m)
            rows.append(row)
        if not fresh:
            self._stalled += 1
            empty = np.zeros((0, X.shape[1]), dtype=np.int64)
            return empty, np.zeros((0, len(self.objectives))), np.zeros(0)
        self._stalled = 0
        scores = (evaluator or self.evaluator).scores(fresh, extra=self.extra)
        F = to_minimisation(scores, self.objectives)
        CV = np.array([sum(c.violation(s) for c in self.constraints) for s in scores])
        for m, s in zip(fresh, scores):
            self.archive[m] = s
        self.mappings.extend(fresh)
        Xn = np.array(rows, dtype=np.int64)
        self.X = np.vstack([self.X, Xn])
        self.F = np.vstack([self.F, F])
        self.CV = np.concatenate([self.CV, CV])
        self.history.append((self.evaluations, self.hypervolume(), self.elapsed))
        return Xn, F, CV

    # -- front ------------------------------------------------------------------------------
    def front_indices(self, hard: Sequence[Constraint] = ()) -> np.ndarray:
        """Archive rows on the feasible first front (or, with nothing feasible, the least
        violating rows' first front among those meeting every `hard` constraint, e.g. the
        chip's tile budget)."""
        if len(self.F) == 0:
            return np.zeros(0, dtype=int)
        feasible = np.flatnonzero(self.CV <= 0)
        if not len(feasible):
            fit = self.fitting(hard)
            if not fit.any():
                return np.zeros(0, dtype=int)
            cv = np.where(fit, self.CV, np.inf)
            feasible = np.flatnonzero(cv == cv.min())
        return feasible[non_dominated(self.F[feasible])]

    def fitting(self, hard: Sequence[Constraint] = ()) -> np.ndarray:
        """Mask of the archive rows meeting every `hard` constraint."""
        return np.array([all(c.satisfied(self.archive[m]) for c in hard)
                         for m in self.mappings], dtype=bool)

    def hypervolume(self) -> float:
        F = self.F[self.CV <= 0]
        if len(F) == 0:
            return 0.0
        return hypervolume(F[non_dominated(F)], self.ref, self.ideal)


def _agree(flag: bool) -> bool:
    """Under torch.distributed every rank follows rank 0's stop decision (time budgets
    would otherwise let ranks disagree and deadlock in the evaluator's all-gather)."""
    import torch.distributed as dist

    if is_distributed():
        box = [flag]
        dist.broadcast_object_list(box, src=0)
        return bool(box[0])
    return flag
