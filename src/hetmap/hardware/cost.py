"""What a mapping costs: totals, a per-layer breakdown, and the two system-level terms that a
per-layer table cannot hold (activation transfers between cores, the tile budget)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from hetmap.errors import MappingError
from hetmap.hardware.spec import HardwareSpec


@dataclass(frozen=True)
class LayerRecord:
    name: str
    candidate: str
    core: str  # "" for skip
    latency_s: float
    energy_j: float
    weight_load_energy_j: float
    transfer_latency_s: float  # moving this layer's input in from another core
    transfer_energy_j: float
    tiles: int  # one copy
    copies: int = 1  # analog copies the mapping's free tiles allow (replication)
    note: str = ""  # why a layer runs elsewhere than its candidate says, if it does


@dataclass(frozen=True)
class MappingCost:
    """Latency and energy per inference of one mapping on one system."""

    latency_s: float
    energy_j: float
    analog_tiles: int
    tile_budget: int
    transfer_latency_s: float = 0.0
    transfer_energy_j: float = 0.0
    reprogram_latency_s: float = 0.0
    reprogram_energy_j: float = 0.0
    throughput_per_s: float = 0.0  # steady state, inferences pipelined through the cores
    replicated_tiles: int = 0  # tiles programmed, copies included
    ops_energy_j: float = 0.0  # ops no mapping places (softmax, norms, attention, ...)
    ops_latency_s: float = 0.0  # their work time (the schedule overlaps part of it)
    pipelined: bool = False
    # per-layer records: each layer's time in this mapping (copies, SRAM spill); totals are
    # the schedule's critical path
    layers: tuple[LayerRecord, ...] = field(default=(), repr=False)

    @property
    def fits(self) -> bool:
        return self.analog_tiles <= self.tile_budget

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        head = (f"{'layer':<32} {'cand':<7} {'core':<8} {'lat us':>9} {'energy uJ':>10} "
                f"{'xfer uJ':>8} {'tiles':>5} {'copies':>6}")
        lines = [head, "-" * len(head)]
        for r in self.layers:
            lines.append(f"{r.name[-32:]:<32} {r.candidate:<7} {r.core or '-':<8} "
                         f"{r.latency_s * 1e6:>9.3f} {r.energy_j * 1e6:>10.3f} "
                         f"{r.transfer_energy_j * 1e6:>8.3f} {r.tiles:>5} {r.copies:>6}"
                         + (f"  ({r.note})" if r.note else ""))
        lines.append("-" * len(head))
        lines.append(f"other ops: {self.ops_energy_j * 1e6:.3f} uJ, "
                     f"{self.ops_latency_s * 1e6:.3f} us of work")
        lines.append(f"total: {self.latency_s * 1e3:.4f} ms, {self.energy_j * 1e6:.3f} uJ, "
                     f"{self.throughput_per_s:,.0f} inferences/s, "
                     f"{self.analog_tiles}/{self.tile_budget} tiles "
                     f"({self.replicated_tiles} with copies)")
        return "\n".join(lines)


def transfer_mask(core: np.ndarray, axis: int = 1) -> np.ndarray:
    """True where a layer runs on another core than the last executed layer before it.

    `core` holds core ids with -1 for skipped layers, which pass activations through; the
    layers run along `axis` ((N, L) by default; the cost table's batches are (L, N), axis 0)."""
    c = np.moveaxis(core, axis, 0)
    mask = np.empty(c.shape, dtype=bool)
    prev = np.full(c.shape[1:], -1, dtype=c.dtype)  # core of the last executed layer
    for layer, now in enumerate(c):
        runs = now >= 0
        mask[layer] = runs & (prev >= 0) & (now != prev)
        prev = np.where(runs, now, prev)
    return np.moveaxis(mask, 0, axis)


def tile_terms(hw: HardwareSpec, tiles: np.ndarray, check: bool) -> tuple[np.ndarray, ...]:
    """(overflow tiles, extra latency, extra energy) per mapping under the spec's policy."""
    budget = hw.analog.n_tiles if hw.analog else 0
    overflow = np.maximum(tiles - budget, 0)
    if hw.on_tile_overflow == "error" or hw.analog is None:
        if check and overflow.any():
            worst = int(np.argmax(overflow))
            raise MappingError(
                f"mapping {worst} needs {int(tiles[worst])} analog tiles but hardware "
                f"{hw.name!r} has {budget} (field 'analog.n_tiles'); map fewer layers to "
                "analog or set on_tile_overflow: reprogram")
        zero = np.zeros(tiles.shape)
        return overflow, zero, zero
    a = hw.analog
    scale = overflow / a.reprogram_amortised_over
    return (overflow, scale * a.reprogram_latency_s_per_tile,
            scale * a.reprogram_energy_j_per_tile)
