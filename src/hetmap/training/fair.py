"""Strict fairness: in every step each candidate of each layer is trained exactly once.

Every layer draws a permutation of its candidates; sub-step k runs the path on which layer l
uses perm_l[k] (layers with fewer candidates cycle), and the K sub-steps' gradients are
averaged into one optimizer update. The permutations come from a generator seeded by
(seed, stage, step) only, so every DDP rank - and a resumed run - draws the same paths."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from hetmap.inputs import first_output_tensor
from hetmap.mapping import Mapping
from hetmap.supernet import Supernet
from hetmap.training.config import KDConfig


def step_generator(seed: int, stage: int, step: int) -> torch.Generator:
    """A generator that depends on (seed, stage, step) and nothing else."""
    key = (seed * 1_000_003 + stage) * 1_000_000_007 + step
    return torch.Generator().manual_seed(key % (2 ** 63 - 1))


def fair_paths(supernet: Supernet, generator: torch.Generator) -> list[Mapping]:
    """K = max candidates per layer mappings covering every (layer, candidate) pair."""
    names = supernet.layer_names
    offered = {n: supernet.candidates(n) for n in names}
    k_max = max(len(c) for c in offered.values())
    perms = {n: torch.randperm(len(c), generator=generator).tolist() for n, c in offered.items()}
    return [Mapping({n: offered[n][perms[n][k % len(offered[n])]] for n in names},
                    supernet.fingerprint) for k in range(k_max)]


def teacher_target(teacher_output: Any, kd: KDConfig) -> Tensor:
    """What the students are distilled towards, computed once per step for all K sub-steps:
    the softened log-distribution over dim 1 (kl) or the raw main output (mse)."""
    t = first_output_tensor(teacher_output).detach()
    if kd.kind == "mse" or t.dim() < 2:
        return t
    return F.log_softmax(t / kd.temperature, dim=1)


def distill_loss(student: Any, target: Tensor, kd: KDConfig) -> Tensor:
    """KL(teacher || student) of softened distributions over dim 1 of the main outputs
    (classes, per pixel for segmentation, positions for QA), scaled by T^2; or MSE."""
    s = first_output_tensor(student)
    if kd.kind == "mse" or s.dim() < 2:
        return F.mse_loss(s, target)
    temp = kd.temperature
    log_p = F.log_softmax(s / temp, dim=1)
    kl = (target.exp() * (target - log_p)).sum(dim=1).mean()
    return kl * temp * temp


def substep_loss(task_loss: Tensor, student: Any, target: Tensor | None, kd: KDConfig) -> Tensor:
    if target is None or not kd.enabled or kd.alpha == 0.0:
        return task_loss
    return (1.0 - kd.alpha) * task_loss + kd.alpha * distill_loss(student, target, kd)


def batch_correct(output: Any, target: Tensor) -> tuple[int, int] | None:
    """Correct and total predictions when the output is class logits (N, C) for targets (N,);
    None for any other kind of output (no live accuracy shown)."""
    try:
        logits = first_output_tensor(output)
    except TypeError:
        return None
    if logits.dim() != 2 or target.dim() != 1 or len(target) != len(logits) \
            or target.is_floating_point():
        return None
    return int((logits.argmax(1) == target).sum()), len(target)
