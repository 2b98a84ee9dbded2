"""Where this process stands under torch.distributed (started by torchrun): one definition
for training's data parallelism, the Evaluator's sharded scoring and the search's shared
stop decision."""

from __future__ import annotations

import torch.distributed as dist


def world() -> tuple[int, int]:
    """(world size, rank); (1, 0) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def is_distributed() -> bool:
    """True inside a process group of more than one rank."""
    return world()[0] > 1
