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
    fixed_busy = [0.0] * n_queues
    start: list[np.ndarray] = []
    finish: list[np.ndarray] = []
    zero = np.zeros(n)
    for k, pre in enumerate(deps):
        ready = lower = zero
        for m, d in enumerate(pre):
            # where data flows row by row (both stream, pipelining on) the consumer may
            # start after the producer's first row and ends one of its rows after it ends;
            # elsewhere it waits for the producer's end
            flow = pipeline and (streams[d] if streams[k] is True else
                                 np.logical_and(streams[k], streams[d]))
            if np.any(flow):
                r = np.where(flow, start[d] + fill[d], finish[d])
                lo = np.where(flow, finish[d] + fill[k], finish[d])
            else:
                r = lo = finish[d]
            ready, lower = (r, lo) if m == 0 else (np.maximum(ready, r), np.maximum(lower, lo))
        q = queue[k]
        if np.ndim(q) == 0:  # one queue (or none) for every mapping
            begin = np.maximum(ready, free[int(q)]) if q >= 0 else ready
            end_work = begin + dur[k]
            if q >= 0:
                free[int(q)] = end_work
                if np.ndim(dur[k]):
                    busy[int(q)] = busy[int(q)] + dur[k]
                else:  # a fixed node's work: summed as a scalar, added once at the end
                    fixed_busy[int(q)] += float(dur[k])
        else:
            on = [q == c for c in varying]
            begin = ready
            for c, on_c in zip(varying, on, strict=True):
                begin = np.where(on_c, np.maximum(ready, free[c]), begin)
            end_work = begin + dur[k]
            for c, on_c in zip(varying, on, strict=True):
                free[c] = np.where(on_c, end_work, free[c])
                busy[c] = busy[c] + np.where(on_c, dur[k], 0.0)
        start.append(np.broadcast_to(begin, (n,)))
        finish.append(np.broadcast_to(np.maximum(end_work, lower), (n,)))
    # a node ends no earlier than its inputs, so the latest finish is a sink's
    used = {d for pre in deps for d in pre}
    latest = zero
    for k in range(len(deps)):
        if k not in used:
            latest = np.maximum(latest, finish[k])
    busy = [b + f for b, f in zip(busy, fixed_busy, strict=True)]
    return Schedule(latest, np.stack(busy, axis=1) if busy else np.zeros((n, 0)))
