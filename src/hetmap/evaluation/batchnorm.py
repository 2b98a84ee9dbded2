"""Per-mapping BatchNorm recalibration, one function for the Evaluator (which scores a
mapping) and `deploy` (which builds the model programmed into aihwkit), so a deployed
mapping runs with exactly the statistics it was scored with.

A weight-sharing supernet's BatchNorm statistics are averaged over every path trained;
re-estimating them for one path on a fixed handful of training batches (cumulative average)
is the standard one-shot-NAS fix (see hetmap.evaluation.evaluator).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from hetmap.errors import ConfigError
from hetmap.inputs import ModelInput, call_model

BatchNorm = nn.modules.batchnorm._BatchNorm


def batchnorms(model: nn.Module) -> list[BatchNorm]:
    """The BatchNorm modules of `model` that keep running statistics."""
    return [m for m in model.modules() if isinstance(m, BatchNorm)
            and m.track_running_stats and m.running_mean is not None]


def calibration_inputs(train: Iterable[Any], bn_batches: int,
                       device: torch.device | str = "cpu") -> list[ModelInput]:
    """The inputs of the first `bn_batches` (inputs, targets) batches of a training loader,
    on `device`. The Evaluator recalibrates on `calibration_inputs(task.loaders(batch_size,
    seed).train, bn_batches)` for its own batch_size, seed and bn_batches."""
    if bn_batches < 0:
        raise ConfigError(f"bn_batches must be >= 0, got {bn_batches}")
    from hetmap.tasks import move_batch

    return [move_batch(b, device)[0] for b in itertools.islice(train, bn_batches)]


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, inputs: Sequence[ModelInput],
                          bns: Sequence[BatchNorm] | None = None) -> int:
    """Re-estimate the running statistics of `bns` (default: every BatchNorm of `model`) on
    `model`'s current path as the cumulative average over `inputs`. The model runs in eval
    mode with only those BatchNorms in train mode, so candidates neither add noise nor move
    their observers; afterwards everything is in eval mode and the momenta are as before.
    Nothing happens without inputs. Returns the number of BatchNorms recalibrated."""
    bns = batchnorms(model) if bns is None else list(bns)
    if not bns or not inputs:
        return 0
    momenta = [m.momentum for m in bns]
    model.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    try:
        for x in inputs:
            call_model(model, x)
    finally:
        for m, momentum in zip(bns, momenta):
            m.eval()
            m.momentum = momentum
    return len(bns)
