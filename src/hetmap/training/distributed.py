"""Data parallelism over torch.distributed (gloo on CPU, NCCL on GPU), started by torchrun.

Gradients are averaged with one flattened all-reduce per optimizer step - after all K fair
sub-steps - rather than by wrapping the model in DistributedDataParallel: each sub-step runs
a different path, so DDP's per-forward unused-parameter tracking would have to be told about
K different parameter subsets and would synchronise K times. The result is the same as DDP's
(identical averaged gradients on every rank, identical updates); rank 0's parameters and
buffers are broadcast at start so every rank begins equal, and buffers (BN statistics,
observers) again before each checkpoint and at the end."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from hetmap.distributed import is_distributed, world

__all__ = ["default_device", "init_from_env", "is_distributed", "shard", "world"]

T = TypeVar("T")


def init_from_env() -> bool:
    """Join the process group torchrun describes (WORLD_SIZE > 1); True when distributed."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return True


def default_device() -> torch.device:
    """The local GPU when present (one per rank), else the CPU."""
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        return torch.device("cuda", local % torch.cuda.device_count())
    return torch.device("cpu")


def shard(batches: Iterable[T], world_size: int, rank: int) -> Iterator[tuple[int, T]]:
    """(index, batch) of the batches this rank trains: every world_size-th, and only whole
    rounds, so every rank runs the same number of steps."""
    it = iter(batches)
    index = 0
    while True:
        group = []
        for _ in range(world_size):
            try:
                group.append(next(it))
            except StopIteration:
                return
        yield index, group[rank]
        index += 1


@torch.no_grad()
def broadcast_module(module: nn.Module, buffers_only: bool = False) -> None:
    if not is_distributed():
        return
    tensors = list(module.buffers()) if buffers_only else \
        [*module.parameters(), *module.buffers()]
    for t in tensors:
        dist.broadcast(t.data, src=0)


@torch.no_grad()
def average_gradients(params: list[nn.Parameter]) -> None:
    """Average .grad over ranks (missing grads count as zero) with one all-reduce."""
    if not is_distributed():
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    average_tensors([p.grad for p in params])


@torch.no_grad()
def average_tensors(tensors: list[torch.Tensor]) -> None:
    """Replace each tensor by its mean over ranks, in place, with one all-reduce. Used for
    parameters that candidates set from data (analog input ranges initialised from the
    first batches), which gradients alone would not keep equal; equal values stay equal."""
    if not is_distributed() or not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[offset:offset + n].view_as(t))
        offset += n


def all_mean(values: list[float]) -> list[float]:
    """Mean of scalars over ranks (for logging and the divergence check)."""
    if not is_distributed():
        return values
    t = torch.tensor(values, dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t)
    return (t / dist.get_world_size()).cpu().tolist()


def _comm_device() -> torch.device:
    return default_device() if dist.get_backend() == "nccl" else torch.device("cpu")


def gather_objects(obj: Any) -> list[Any]:
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if is_distributed():
        dist.barrier()
