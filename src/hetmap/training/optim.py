"""The optimizers hetmap trains with, by name, for pretraining and the supernet stages."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from hetmap.errors import ConfigError


def make_optimizer(params: Iterable[nn.Parameter], name: str, lr: float, weight_decay: float,
                   nesterov: bool = False) -> torch.optim.Optimizer:
    """SGD (momentum 0.9) or AdamW over the parameters that require gradients."""
    params = [p for p in params if p.requires_grad]
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=nesterov,
                               weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ConfigError(f"unknown optimizer {name!r}; use 'sgd' or 'adamw'")
