"""Re-scoring a front with drift-aware accuracy: the search ranks on the supernet's shared
weights (fast); what a user deploys is judged after programming noise and drift."""

from __future__ import annotations

from typing import Any

from hetmap.evaluation.drift import DriftResult, evaluate_drift
from hetmap.search.front import Member, ParetoFront
from hetmap.supernet import Supernet


def rescore_drift(front: ParetoFront, supernet: Supernet, task_or_loader: Any, *,
                  time: float = 86400.0, repeats: int = 5, seed: int = 0,
                  prune: bool = True, **drift_options: Any) -> ParetoFront:
    """A copy of `front` whose accuracy is the mean drift-aware accuracy at `time` seconds
    (default one day); the shared-weight value stays as `accuracy_search`, the std is
    added as `accuracy_std`. `prune` drops members the new accuracies make dominated."""
    results: list[DriftResult] = [
        evaluate_drift(supernet, m.mapping, task_or_loader, times=(time,), repeats=repeats,
                       seed=seed, **drift_options)
        for m in front.members]
    out = front.rescored("accuracy", [r.mean[0] for r in results], prune=False)
    out = out.with_members([Member(m.mapping, m.scores | {"accuracy_std": r.std[0],
                                                          "drift_time_s": float(time)})
                            for m, r in zip(out.members, results)])
    return out.pruned() if prune else out
