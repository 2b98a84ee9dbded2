"""Stage 3's policy: which mappings to rank, the pairwise hinge loss on their
log-probabilities, and the Kendall tau that says whether the preferences predict Pareto rank.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hetmap.mapping import Mapping
from hetmap.supernet import Supernet


def sample_mappings(supernet: Supernet, n: int, exploration: float,
                    generator: torch.Generator) -> list[Mapping]:
    """`n` mappings: round(n * exploration) uniform ones, the rest from the preferences."""
    n_uniform = round(n * exploration)
    return [supernet.sample(generator, from_preferences=i >= n_uniform) for i in range(n)]


def pairwise_hinge(log_probs: Tensor, ranks: np.ndarray | Tensor, margin: float) -> Tensor:
    """Mean over pairs with rank_i < rank_j (i strictly better) of
    max(0, margin - (log_prob_i - log_prob_j)): better mappings must be more likely by at
    least `margin`. Equal ranks give no pair; no pair at all gives a zero loss."""
    r = torch.as_tensor(np.asarray(ranks), device=log_probs.device)
    better = r[:, None] < r[None, :]
    if not bool(better.any()):
        return log_probs.sum() * 0.0
    gap = log_probs[:, None] - log_probs[None, :]
    return torch.relu(margin - gap)[better].mean()


def kendall_tau(log_probs: np.ndarray, ranks: np.ndarray) -> float:
    """Kendall tau-b of (log-probability, -rank): +1 when better fronts are always more likely.
    Undefined (constant input, e.g. uniform preferences) counts as 0."""
    from scipy.stats import kendalltau

    tau = kendalltau(np.asarray(log_probs, dtype=float), -np.asarray(ranks, dtype=float))[0]
    return 0.0 if tau is None or math.isnan(tau) else float(tau)


@torch.no_grad()
def kendall_tau_of_preferences(supernet: Supernet, evaluator: Any, n: int = 64,
                               seed: int = 12345) -> float:
    """Tau between the preferences' log-probability and the Pareto rank (evaluator's
    objectives, pymoo non-dominated sorting) of `n` freshly, uniformly sampled mappings."""
    from hetmap.evaluation.objectives import pareto_ranks

    gen = torch.Generator().manual_seed(seed)
    mappings = [supernet.sample(gen) for _ in range(n)]
    ranks = pareto_ranks(evaluator.matrix(mappings))
    lp = np.array([float(supernet.log_prob(m)) for m in mappings])
    return kendall_tau(lp, ranks)
