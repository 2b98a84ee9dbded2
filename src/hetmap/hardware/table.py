"""Per-(layer, candidate) latency and energy, so thousands of mappings are costed by gathers.

Rows follow `inventory.names` and column j of row i is `offered[name][j]`: the same index
convention as `hetmap.supernet.objectives.ObjectiveTable`, so one `(N, layers)` index array
from `Supernet.mapping_indices` serves both tables. With width choices (`variants`), column
v * width + j is candidate j on the layer's shape variant v (hetmap.inventory.variants).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from hetmap.errors import HetmapError, UnknownCandidateError
from hetmap.hardware.analog_model import analog_layer_cost
from hetmap.hardware.cost import (
    LayerRecord,
    MappingCost,
    sequential_latency,
    tile_terms,
    transfer_mask,
)
from hetmap.hardware.loader import load_hardware
from hetmap.hardware.spec import HardwareSpec
from hetmap.hardware.zigzag_backend import LayerCost, ZigzagCache, digital_layer_cost
from hetmap.inventory import Inventory, LayerInfo
from hetmap.inventory.variants import VARIANTS, ShapeVariants

BASELINES = ("fp32", "fp16", "int8", "analog")


class CostTable:
    """Latency/energy/tiles of every offered candidate of every layer on one system."""

    def __init__(self, hw: HardwareSpec, names: tuple[str, ...],
                 offered: dict[str, tuple[str, ...]], width: int,
                 variants: ShapeVariants | None = None) -> None:
        self.hw = hw
        self.names = names
        self.offered = offered
        self.width = width
        self.variants = variants
        shape = (len(names), width * (VARIANTS if variants is not None else 1))
        self.latency = np.zeros(shape)
        self.energy = np.zeros(shape)
        self.weight_energy = np.zeros(shape)
        self.tiles = np.zeros(shape, dtype=np.int64)
        self.core = np.full(shape, -1, dtype=np.int64)
        self.in_bytes = np.zeros(shape)
        self.core_names = hw.core_names()
        self.build_seconds = 0.0
        self.zigzag_calls = 0
        self.cache_hits = 0

    @classmethod
    def build(cls, inventory: Inventory, offered: dict[str, tuple[str, ...]],
              hw: HardwareSpec | str, cache_dir: str | os.PathLike[str] | None = None,
              targets: dict[str, str] | None = None,
              variants: ShapeVariants | None = None) -> CostTable:
        """Cost every (layer, offered candidate); digital ones through ZigZag and its cache.

        targets: candidate name -> "digital" | "analog" | "none" for candidates whose name
        does not say it (user-registered ones); built-in names need none.
        variants: the layers' shape variants under width choices (each distinct shape is
        costed once)."""
        start = time.perf_counter()
        hw = load_hardware(hw)
        names = inventory.names
        missing = [n for n in names if n not in offered]
        if missing:
            raise UnknownCandidateError(f"offered has no candidates for layers {missing[:3]}")
        table = cls(hw, names, offered, max(len(offered[n]) for n in names), variants)
        cache = ZigzagCache(cache_dir)
        targets = targets or {}
        for i, name in enumerate(names):
            shapes = (inventory[name],) if variants is None else variants.layers[i]
            for v, layer in enumerate(shapes):
                same = shapes.index(layer)
                if same < v:  # a variant that changes nothing here: copy its columns
                    table._copy(i, same, v)
                    continue
                for j, cand in enumerate(offered[name]):
                    table._cost(i, v * table.width + j, layer, cand, targets.get(cand), cache)
        table.zigzag_calls, table.cache_hits = cache.misses, cache.hits
        table.build_seconds = time.perf_counter() - start
        return table

    def _cost(self, i: int, j: int, layer: LayerInfo, cand: str, target: str | None,
              cache: ZigzagCache) -> None:
        hw = self.hw
        core, precision = hw.route(cand, target)
        if not core:
            return
        self.core[i, j] = self.core_names.index(core)
        if precision is None:
            assert hw.analog is not None
            cost = analog_layer_cost(layer, hw.analog)
            self.tiles[i, j] = layer.spec.tiles(hw.analog.tile)
            act_bits = hw.analog.dac_bits
        else:
            digital = hw.digital_core(core)
            cost = digital_layer_cost(layer, digital, precision, cache, hw.zigzag.lpf_limit)
            act_bits = digital.precisions[precision].act_bits
        self._set(i, j, cost, layer.in_activations * act_bits / 8)

    def _copy(self, i: int, src: int, dst: int) -> None:
        a, b, w = src * self.width, dst * self.width, self.width
        for arr in (self.latency, self.energy, self.weight_energy, self.tiles, self.core,
                    self.in_bytes):
            arr[i, b:b + w] = arr[i, a:a + w]

    def _set(self, i: int, j: int, cost: LayerCost, in_bytes: float) -> None:
        self.latency[i, j] = cost.latency_s
        self.energy[i, j] = cost.energy_j
        self.weight_energy[i, j] = cost.weight_load_energy_j
        self.in_bytes[i, j] = in_bytes

    # -- evaluation ------------------------------------------------------------------------
    def indices(self, choices: dict[str, str]) -> np.ndarray:
        """Column per layer; width choices absent from `choices` are wide."""
        try:
            idx = np.array([self.offered[n].index(choices[n]) for n in self.names])
        except (KeyError, ValueError) as err:
            raise UnknownCandidateError(f"choices do not fit the table: {err}") from None
        if self.variants is not None:
            idx += self.width * self.variants.variant_of(choices)
        return idx

    def evaluate_indices(self, idx: np.ndarray, check_tiles: bool = True
                         ) -> dict[str, np.ndarray]:
        """Costs of a batch of mappings given as an (N, layers) index array.

        With on_tile_overflow "error", a mapping over the tile budget raises MappingError
        unless check_tiles=False (then "fits" says which mappings are feasible)."""
        idx = np.atleast_2d(idx)
        rows = np.arange(len(self.names))[None, :]
        core = self.core[rows, idx]
        moved = np.where(transfer_mask(core), self.in_bytes[rows, idx], 0.0).sum(axis=1)
        link = self.hw.link
        xfer_lat = moved / (link.bandwidth_gbps * 1e9)
        xfer_energy = moved * link.energy_pj_per_byte * 1e-12
        tiles = self.tiles[rows, idx].sum(axis=1)
        overflow, re_lat, re_energy = tile_terms(self.hw, tiles, check_tiles)
        return {
            "latency_s": self._compute_latency(self.latency[rows, idx], core) + xfer_lat + re_lat,
            "energy_j": self.energy[rows, idx].sum(axis=1) + xfer_energy + re_energy,
            "analog_tiles": tiles,
            "tile_overflow": overflow,
            "fits": overflow == 0,
            "transfer_bytes": moved,
            "weight_load_energy_j": self.weight_energy[rows, idx].sum(axis=1),
        }

    def _compute_latency(self, latency: np.ndarray, core: np.ndarray) -> np.ndarray:
        analog = self.hw.analog
        if analog is None or not analog.pipeline_layers:
            return latency.sum(axis=1)
        return sequential_latency(latency, core, self.core_names.index(analog.name),
                                  analog.mvm_latency_ns * 1e-9)

    def breakdown(self, choices: dict[str, str], check_tiles: bool = True) -> MappingCost:
        """Totals and per-layer records (latency, energy, core, transfer) of one mapping."""
        return self.breakdown_indices(self.indices(choices), check_tiles)

    def breakdown_indices(self, idx: np.ndarray, check_tiles: bool = True) -> MappingCost:
        """`breakdown` of one mapping given as its (layers,) column indices."""
        idx = np.asarray(idx)
        totals = self.evaluate_indices(idx, check_tiles)
        rows = np.arange(len(self.names))
        moved = transfer_mask(self.core[rows, idx][None, :])[0]
        link = self.hw.link
        records = []
        for i, name in enumerate(self.names):
            j = idx[i]
            nbytes = self.in_bytes[i, j] if moved[i] else 0.0
            c = self.core[i, j]
            records.append(LayerRecord(
                name=name, candidate=self.offered[name][j % self.width],
                core=self.core_names[c] if c >= 0 else "",
                latency_s=float(self.latency[i, j]), energy_j=float(self.energy[i, j]),
                weight_load_energy_j=float(self.weight_energy[i, j]),
                transfer_latency_s=nbytes / (link.bandwidth_gbps * 1e9),
                transfer_energy_j=nbytes * link.energy_pj_per_byte * 1e-12,
                tiles=int(self.tiles[i, j])))
        _, re_lat, re_energy = tile_terms(self.hw, totals["analog_tiles"], False)
        return MappingCost(
            latency_s=float(totals["latency_s"][0]), energy_j=float(totals["energy_j"][0]),
            analog_tiles=int(totals["analog_tiles"][0]),
            tile_budget=self.hw.analog.n_tiles if self.hw.analog else 0,
            transfer_latency_s=sum(r.transfer_latency_s for r in records),
            transfer_energy_j=sum(r.transfer_energy_j for r in records),
            reprogram_latency_s=float(re_lat[0]), reprogram_energy_j=float(re_energy[0]),
            layers=tuple(records))

    def uniform(self, candidate: str, check_tiles: bool = True) -> MappingCost:
        """Every layer on `candidate` (must be offered everywhere)."""
        return self.breakdown({n: candidate for n in self.names}, check_tiles)


class _SupernetLike(Protocol):
    inventory: Inventory
    variants: ShapeVariants | None

    def candidates(self, name: str) -> tuple[str, ...]: ...

    def mapping_indices(self, mappings: Sequence[Any]) -> Any: ...


def table_for(supernet: _SupernetLike, hw: HardwareSpec | str,
              cache_dir: str | os.PathLike[str] | None = None) -> CostTable:
    inv = supernet.inventory
    return CostTable.build(inv, {n: tuple(supernet.candidates(n)) for n in inv.names},
                           hw, cache_dir, variants=supernet.variants)


def cost_of(supernet: _SupernetLike, mapping: Any, hw: HardwareSpec | str = "hermes-pcm",
            cache_dir: str | os.PathLike[str] | None = None,
            table: CostTable | None = None) -> MappingCost:
    """Cost of one mapping of a supernet (layers outside the mapping keep their fixed one)."""
    table = table or table_for(supernet, hw, cache_dir)
    return table.breakdown_indices(np.asarray(supernet.mapping_indices([mapping]))[0])


def baselines(inventory: Inventory, hw: HardwareSpec | str = "hermes-pcm",
              cache_dir: str | os.PathLike[str] | None = None,
              candidates: Sequence[str] = BASELINES) -> dict[str, MappingCost]:
    """Uniform mappings (all-FP32, all-FP16, all-INT8, all-analog) the system can run."""
    hw = load_hardware(hw)
    runnable = []
    for cand in candidates:
        try:
            hw.route(cand)
        except HetmapError:  # a baseline the system cannot run is left out
            continue
        runnable.append(cand)
    table = CostTable.build(inventory, {n: tuple(runnable) for n in inventory.names}, hw,
                            cache_dir)
    # over-budget baselines are reported (MappingCost.fits is False), not raised
    return {c: table.uniform(c, check_tiles=False) for c in runnable}
