"""The weight stages' schedules: learning rate over a stage, and each epoch's data order as
a function of the seed alone (so a resumed run replays it). The noise ramp is ramp.py."""

from __future__ import annotations

import math
from typing import Any

import torch

from hetmap.training.config import WeightStage


def lr_at(cfg: WeightStage, step: int, total: int) -> float:
    if cfg.lr_schedule == "constant" or total <= 1:
        return cfg.lr
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * step / total))


def reseed_loader(loader: Any, seed: int) -> None:
    """Make an epoch's order and augmentation a function of `seed` alone: reseed every
    torch.Generator the loader uses (sampler, collate function)."""
    holders = [loader, getattr(loader, "sampler", None), getattr(loader, "collate_fn", None),
               getattr(getattr(loader, "batch_sampler", None), "sampler", None)]
    seen = set()
    for h in holders:
        g = getattr(h, "generator", None)
        if isinstance(g, torch.Generator) and id(g) not in seen:
            seen.add(id(g))
            g.manual_seed(seed)


def epoch_seed(seed: int, stage: int, epoch: int) -> int:
    return (seed * 1_000_003 + stage * 10_007 + epoch) % (2 ** 63 - 1)
