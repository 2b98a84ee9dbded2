"""A list schedule of one inference's dependency graph over per-core queues, for a batch of
mappings at once (every array has one entry per mapping).

Nodes are visited in the graph's topological order, which is also each queue's order (a FIFO
per core). A node is ready when its inputs are: when producer and consumer both stream (analog
layers, element-wise ops, skipped layers) and pipelining is on, the consumer may start once the
producer has delivered its first row (`fill`) and it ends no earlier than one of its own rows
after the producer ends; otherwise it waits for the producer to finish. A queued node starts
when it is ready and its queue is free, and holds the queue for its own work time; nodes off
any queue (analog layers on their own tiles) start as soon as they are ready. Latency is the
latest finish: the critical path through the graph and the queues.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Value = np.ndarray | float | int | bool


@dataclass(frozen=True)
class Schedule:
    latency_s: np.ndarray  # (N,) latest finish
    busy_s: np.ndarray  # (N, queues) work time each queue does per inference


def list_schedule(deps: Sequence[Sequence[int]], dur: Sequence[Value], queue: Sequence[Value],
                  streams: Sequence[Value], fill: Sequence[Value], n: int, n_queues: int,
                  pipeline: bool = True, varying: Sequence[int] | None = None) -> Schedule:
    """deps[k]: earlier nodes node k reads; dur[k]: its work time; queue[k]: queue index or
    -1 (no queue); streams[k]: whether it consumes and produces data row by row; fill[k]: time
    to its first output row. Each value is a scalar or an (n,) array. varying: the queues an
    array-valued `queue` entry can name (default: all)."""
    varying = range(n_queues) if varying is None else varying
    free = [np.zeros(n) for _ in range(n_queues)]
    busy = [np.zeros(n) for _ in range(n_queues)]
    start: list[np.ndarray] = []
    finish: list[np.ndarray] = []
    zero = np.zeros(n)
    latest = zero
    for k, pre in enumerate(deps):
        ready = lower = zero
        for d in pre:
            flow = np.logical_and(streams[k], streams[d]) if pipeline else False
            if flow is False or (np.ndim(flow) == 0 and not flow):
                ready = np.maximum(ready, finish[d])
                lower = np.maximum(lower, finish[d])
            else:
                ready = np.maximum(ready, np.where(flow, start[d] + fill[d], finish[d]))
                lower = np.maximum(lower, np.where(flow, finish[d] + fill[k], finish[d]))
        q = queue[k]
        if np.ndim(q) == 0:  # one queue (or none) for every mapping
            begin = np.maximum(ready, free[int(q)]) if q >= 0 else ready
            end_work = begin + dur[k]
            if q >= 0:
                free[int(q)] = end_work
                busy[int(q)] = busy[int(q)] + dur[k]
        else:
            begin = ready
            for c in varying:
                on = q == c
                begin = np.where(on, np.maximum(ready, free[c]), begin)
                end_c = begin + dur[k]
                free[c] = np.where(on, end_c, free[c])
                busy[c] = busy[c] + np.where(on, dur[k], 0.0)
            end_work = begin + dur[k]
        end = np.maximum(end_work, lower)
        start.append(np.broadcast_to(begin, (n,)))
        finish.append(np.broadcast_to(end, (n,)))
        latest = np.maximum(latest, end)
    return Schedule(latest, np.stack(busy, axis=1) if busy else np.zeros((n, 0)))
