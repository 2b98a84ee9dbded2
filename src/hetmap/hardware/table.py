"""Per-(layer, candidate) latency and energy, so thousands of mappings are costed by gathers.

Rows follow `inventory.names` and column j of row i is `offered[name][j]`: the same index
convention as `hetmap.supernet.objectives.ObjectiveTable`, so one `(N, layers)` index array
from `Supernet.mapping_indices` serves both tables. With width choices (`variants`), column
v * width + j is candidate j on the layer's shape variant v (hetmap.inventory.variants).

What depends on the whole mapping is done per batch with array operations on precomputed
terms: weight replication over the tiles a mapping leaves free (`Replication`), the share of
digital weights that stays in SRAM, and a list schedule of the inference graph
(hetmap.hardware.schedule) whose fixed nodes (softmax, norms, attention matmuls, ...) are
costed once at build time.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from hetmap.candidates.hybrid import hybrid_split
from hetmap.errors import HetmapError, UnknownCandidateError
from hetmap.hardware.analog_model import place
from hetmap.hardware.cost import LayerRecord, MappingCost, tile_terms, transfer_mask
from hetmap.hardware.graph import OpGraph
from hetmap.hardware.hybrid_cost import hybrid_cost
from hetmap.hardware.loader import load_hardware
from hetmap.hardware.ops_cost import op_cost
from hetmap.hardware.schedule import Value, list_schedule
from hetmap.hardware.spec import HardwareSpec
from hetmap.hardware.zigzag_backend import ZigzagCache, digital_layer_cost
from hetmap.inventory import Inventory, LayerInfo
from hetmap.inventory.variants import VARIANTS, ShapeVariants

BASELINES = ("fp32", "fp16", "int8", "analog")
GROUPED_DIGITAL = ("grouped conv routed to the digital core (analog.grouped_conv: digital): a "
                   "crossbar computes dense MVMs and a depthwise kernel would use one group's "
                   "block of it")


@dataclass(frozen=True)
class Replication:
    """Replica increments of every analog (layer, column), in greedy order.

    Increment k doubles the copies of layer `layer[k]` on column `col[k]` from 2^s to
    2^(s+1): it costs `tiles[k]` more tiles and saves `MVM time x (ceil(v / 2^s) -
    ceil(v / 2^(s+1)))` of that layer's time. Sorted once by saved time per tile
    (non-increasing within a layer, so a layer's doublings come in order); a mapping takes the
    increments of its analog layers in this order while the running tile count fits the tiles
    it leaves free, and stops at the first that does not. The time saved only orders the
    increments: a mapping's layer time follows from its copies (`CostTable._evaluate`)."""

    layer: np.ndarray
    col: np.ndarray
    tiles: np.ndarray
    onehot: np.ndarray  # (K, layers)

    @classmethod
    def build(cls, vectors: np.ndarray, tiles: np.ndarray, mvm_s: np.ndarray,
              max_copies: int, n_tiles: int) -> Replication:
        rows: list[tuple[float, int, int, int, int]] = []
        for i, j in zip(*np.nonzero((vectors > 1) & (tiles > 0)), strict=True):
            v, t, ratio, s = int(vectors[i, j]), int(tiles[i, j]), math.inf, 0
            # a doubling needing more tiles than the chip has can never be taken
            while 2 ** (s + 1) <= min(max_copies, v) and 2 ** s * t <= n_tiles:
                saved = mvm_s[i, j] * (math.ceil(v / 2 ** s) - math.ceil(v / 2 ** (s + 1)))
                ratio = min(ratio, saved / (2 ** s * t))
                rows.append((-ratio, int(i), s, int(j), 2 ** s * t))
                s += 1
        rows.sort(key=lambda r: (r[0], r[1], r[2]))
        onehot = np.zeros((len(rows), vectors.shape[0]))
        for k, r in enumerate(rows):
            onehot[k, r[1]] = 1.0
        arr = np.array([(r[1], r[3], r[4]) for r in rows], np.int64).reshape(-1, 3)
        return cls(arr[:, 0], arr[:, 1], arr[:, 2], onehot)

    def copies(self, idx_t: np.ndarray, free: np.ndarray) -> np.ndarray:
        """(layers, N) copies of each layer under the greedy policy, given the (layers, N)
        transposed index array and the free tiles of each mapping."""
        if not len(self.layer):
            return np.ones(idx_t.shape)
        pairs = idx_t[self._pair_layer] == self._pair_col[:, None]  # (analog columns, N)
        active = pairs[self._pair_of]  # (K, N)
        acc = self._tiles_acc
        used = np.cumsum(active * acc[:, None], axis=0, dtype=acc.dtype)
        # free tiles beyond all increments' tiles take every increment: clip to the dtype
        cap = np.minimum(free, self._tiles_total).astype(acc.dtype)
        take = active & (used <= cap[None, :])
        return np.exp2(self.onehot_t @ take.view(np.uint8).astype(np.float32))

    @property
    def onehot_t(self) -> np.ndarray:
        return self._onehot_t

    def __post_init__(self) -> None:
        object.__setattr__(self, "_onehot_t", np.ascontiguousarray(self.onehot.T, np.float32))
        # running tile counts in int16 when every increment together fits it (half the
        # memory traffic of the (K, N) cumulative sum), else int32
        total = int(self.tiles.sum())
        object.__setattr__(self, "_tiles_total", total)
        object.__setattr__(self, "_tiles_acc", self.tiles.astype(
            np.int16 if total < np.iinfo(np.int16).max else np.int32))
        keys = sorted(set(zip(self.layer.tolist(), self.col.tolist(), strict=True)))
        where = {key: p for p, key in enumerate(keys)}
        object.__setattr__(self, "_pair_layer", np.array([k[0] for k in keys], np.int64))
        object.__setattr__(self, "_pair_col", np.array([k[1] for k in keys], np.int32))
        object.__setattr__(self, "_pair_of", np.array(
            [where[key] for key in zip(self.layer.tolist(), self.col.tolist(), strict=True)],
            np.int64))


@dataclass(frozen=True)
class _Batch:
    """Per-mapping intermediate arrays of one `evaluate` call."""

    core: np.ndarray  # (N, L)
    duration: np.ndarray  # (N, L) each layer's time in this mapping (copies, SRAM spill)
    energy: np.ndarray  # (N, L)
    copies: np.ndarray  # (N, L)
    spill_energy: np.ndarray  # (N, L) DRAM energy of weights that did not fit the SRAM
    transfer_bytes: np.ndarray  # (N, L) a layer's input moved in from another core
    totals: dict[str, np.ndarray]


@dataclass(frozen=True)
class _NodePlan:
    """What the list schedule needs of each graph node that no mapping changes, built once
    per table: dependencies, and the work time, time to first row, queue and streaming of
    the fixed nodes (softmax, norms, attention, ...). Layer nodes are filled per batch from
    `layer_nodes` (node, layer, share of the layer's work, output rows)."""

    deps: tuple[tuple[int, ...], ...]
    dur: tuple[float, ...]
    fill: tuple[float, ...]
    queue: tuple[int, ...]
    streams: tuple[bool, ...]
    layer_nodes: tuple[tuple[int, int, float, int], ...]

    @classmethod
    def build(cls, graph: OpGraph, op_latency: np.ndarray, n_digital: int) -> _NodePlan:
        vector_q, memory_q = n_digital, n_digital + 1
        dur, fill, queue, streams, layer_nodes = [], [], [], [], []
        fixed = iter(op_latency.tolist())
        for k, node in enumerate(graph.nodes):
            if node.kind == "layer":
                layer_nodes.append((k, node.layer, node.share, node.rows))
                d, q, s = 0.0, -1, False
            else:
                d = next(fixed)
                q = 0 if node.kind == "matmul" else vector_q if node.kind == "vector" else memory_q
                s = node.streamable
            dur.append(d)
            fill.append(d / node.rows)
            queue.append(q)
            streams.append(s)
        return cls(tuple(n.deps for n in graph.nodes), tuple(dur), tuple(fill), tuple(queue),
                   tuple(streams), tuple(layer_nodes))


class CostTable:
    """Latency/energy/tiles of every offered candidate of every layer on one system."""

    def __init__(self, hw: HardwareSpec, names: tuple[str, ...],
                 offered: dict[str, tuple[str, ...]], width: int,
                 variants: ShapeVariants | None = None, graph: OpGraph | None = None) -> None:
        self.hw = hw
        self.names = names
        self.offered = offered
        self.width = width
        self.variants = variants
        shape = (len(names), width * (VARIANTS if variants is not None else 1))
        self.latency = np.zeros(shape)  # one copy, weights resident: the layer alone
        self.energy = np.zeros(shape)
        self.weight_energy = np.zeros(shape)  # SRAM weight reads (digital)
        # small integer types: a batch gathers (layers, N) of each, and gathers of narrow
        # types are several times faster
        self.tiles = np.zeros(shape, dtype=np.int32)
        self.core = np.full(shape, -1, dtype=np.int8)  # index into core_names; -1: skip
        self.in_bytes = np.zeros(shape)
        self.vectors = np.zeros(shape, dtype=np.int32)  # analog MVMs per inference
        self.mvm_s = np.zeros(shape)  # analog seconds per MVM
        self.weight_bytes = np.zeros(shape)  # digital weights held in SRAM or streamed
        self.notes: dict[tuple[int, int], str] = {}
        self.core_names = hw.core_names()
        self.graph = graph
        self.op_latency = np.zeros(0)
        self.op_energy = np.zeros(0)
        self.ops_latency_s = 0.0  # sums of the two above, once
        self.ops_energy_j = 0.0
        self.plan: _NodePlan | None = None
        self.replication: Replication | None = None
        self.build_seconds = 0.0
        self.zigzag_calls = 0
        self.cache_hits = 0

    @classmethod
    def build(cls, inventory: Inventory, offered: dict[str, tuple[str, ...]],
              hw: HardwareSpec | str, cache_dir: str | os.PathLike[str] | None = None,
              targets: dict[str, str] | None = None,
              variants: ShapeVariants | None = None, graph: OpGraph | None = None) -> CostTable:
        """Cost every (layer, offered candidate); digital ones through ZigZag and its cache.

        targets: candidate name -> "digital" | "analog" | "none" for candidates whose name
        does not say it (user-registered ones); built-in names need none.
        variants: the layers' shape variants under width choices (each distinct shape is
        costed once).
        graph: the whole inference (`hetmap.hardware.trace_graph`); without it only the
        mappable layers are costed, as a chain (`OpGraph.chain`)."""
        start = time.perf_counter()
        hw = load_hardware(hw)
        names = inventory.names
        missing = [n for n in names if n not in offered]
        if missing:
            raise UnknownCandidateError(f"offered has no candidates for layers {missing[:3]}")
        graph = graph if graph is not None else OpGraph.chain(inventory)
        table = cls(hw, names, offered, max(len(offered[n]) for n in names), variants, graph)
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
        fixed = [op_cost(n, hw, cache) for n in graph.nodes if n.kind != "layer"]
        table.op_latency = np.array([c.latency_s for c in fixed])
        table.op_energy = np.array([c.energy_j for c in fixed])
        table.ops_latency_s = float(table.op_latency.sum())
        table.ops_energy_j = float(table.op_energy.sum())
        table.plan = _NodePlan.build(graph, table.op_latency, len(hw.digital))
        if hw.analog is not None and hw.analog.replicate:
            table.replication = Replication.build(table.vectors, table.tiles, table.mvm_s,
                                                  hw.analog.max_replication, hw.analog.n_tiles)
        table.zigzag_calls, table.cache_hits = cache.misses, cache.hits
        table.build_seconds = time.perf_counter() - start
        return table

    def _cost(self, i: int, j: int, layer: LayerInfo, cand: str, target: str | None,
              cache: ZigzagCache) -> None:
        split = hybrid_split(cand)
        if split is not None:  # analog with its sensitive rows digital (Harmonica)
            return hybrid_cost(self, i, j, layer, split, cache)
        hw = self.hw
        core, precision = hw.route(cand, target)
        if not core:
            return
        if precision is None and hw.analog is not None and layer.spec.groups > 1 and \
                hw.analog.grouped_conv == "digital":
            core, precision = hw.route(hw.analog.grouped_digital)
            self.notes[(i, j)] = GROUPED_DIGITAL
        self.core[i, j] = self.core_names.index(core)
        if precision is None:
            assert hw.analog is not None
            p = place(layer, hw.analog)
            self.tiles[i, j], self.vectors[i, j], self.mvm_s[i, j] = p.tiles, p.vectors, p.mvm_s
            self.latency[i, j] = p.vectors * p.mvm_s
            self.energy[i, j] = p.vectors * p.energy_per_vector_j
            act_bits = hw.analog.dac_bits
        else:
            digital = hw.digital_core(core)
            prec = digital.precisions[precision]
            cost = digital_layer_cost(layer, digital, precision, cache, hw.zigzag.lpf_limit)
            self.latency[i, j], self.energy[i, j] = cost.latency_s, cost.energy_j
            self.weight_energy[i, j] = cost.weight_load_energy_j
            self.weight_bytes[i, j] = layer.spec.params * prec.weight_bits / 8
            act_bits = prec.act_bits
        self.in_bytes[i, j] = layer.in_activations * act_bits / 8

    def _copy(self, i: int, src: int, dst: int) -> None:
        a, b, w = src * self.width, dst * self.width, self.width
        for arr in (self.latency, self.energy, self.weight_energy, self.tiles, self.core,
                    self.in_bytes, self.vectors, self.mvm_s, self.weight_bytes):
            arr[i, b:b + w] = arr[i, a:a + w]
        for (ii, jj), note in list(self.notes.items()):
            if ii == i and a <= jj < a + w:
                self.notes[(i, b + jj - a)] = note

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

    def evaluate_indices(self, idx: np.ndarray, check_tiles: bool = True,
                         replicate: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Costs of a batch of mappings given as an (N, layers) index array.

        latency_s: one inference (critical path of the schedule); throughput_per_s: steady
        state with inferences pipelined; energy_j: the whole inference. With
        on_tile_overflow "error", a mapping over the tile budget raises MappingError unless
        check_tiles=False (then "fits" says which mappings are feasible).
        replicate: (N,) bools, replication as a per-mapping (searchable) choice: False runs
        that mapping on one copy per layer; None replicates every mapping. Copies exist only
        where the spec replicates (`analog.replicate`)."""
        return self._evaluate(np.atleast_2d(idx), check_tiles, replicate).totals

    def _evaluate(self, idx: np.ndarray, check_tiles: bool,
                  replicate: np.ndarray | None = None) -> _Batch:
        hw = self.hw
        n = idx.shape[0]
        # gathers in (layers, N) layout: every per-layer row is contiguous for the schedule;
        # int32 indices: numpy's take is ~4x faster
        idx_t = np.ascontiguousarray(idx.T, np.int32)
        flat = idx_t + (np.arange(len(self.names), dtype=np.int32)
                        * self.latency.shape[1])[:, None]

        def gather(arr: np.ndarray) -> np.ndarray:
            return arr.ravel().take(flat)

        core = gather(self.core)
        link = hw.link
        transfer = np.where(transfer_mask(core, axis=0), gather(self.in_bytes), 0.0)
        moved = transfer.sum(axis=0)
        xfer_lat = moved / (link.bandwidth_gbps * 1e9)
        xfer_energy = moved * link.energy_pj_per_byte * 1e-12
        tiles = gather(self.tiles)
        total_tiles = tiles.sum(axis=0)
        overflow, re_lat, re_energy = tile_terms(hw, total_tiles, check_tiles)
        duration = gather(self.latency)
        energy = gather(self.energy)
        # digital weights: resident in SRAM up to its capacity, the rest streamed from DRAM
        spill = np.zeros(duration.shape)
        spilled = np.zeros(n)  # (N,) bytes streamed per inference: spill summed over layers
        if hw.digital:
            d = hw.digital[0]
            wbytes = gather(self.weight_bytes)
            total = wbytes.sum(axis=0)
            spilled = np.maximum(total - d.weight_capacity_bytes, 0.0)
            if spilled.any():  # else every mapping's weights stay resident: nothing to add
                resident = np.minimum(1.0, d.weight_capacity_bytes / np.maximum(total, 1.0))
                spill = wbytes * (1.0 - resident)[None, :]
                energy = energy + spill * (d.offchip_energy_pj_per_byte
                                           - d.sram_energy_pj_per_byte) * 1e-12
                duration = np.maximum(duration, spill / (d.offchip_bandwidth_gbps * 1e9))
        copies = np.ones(duration.shape)
        if self.replication is not None and hw.analog is not None:
            free = np.where(overflow > 0, 0, hw.analog.n_tiles - total_tiles)
            if replicate is not None:
                free = np.where(np.asarray(replicate, dtype=bool), free, 0)
            copies = self.replication.copies(idx_t, free)
            vectors = gather(self.vectors)
            duration = np.where(vectors > 0, np.ceil(vectors / copies) * gather(self.mvm_s),
                                duration)
        latency, stage = self._schedule(duration, core, n)
        energy_total = energy.sum(axis=0) + (self.ops_energy_j + xfer_energy + re_energy)
        latency = latency + xfer_lat + re_lat
        # steady state: the busiest stage (a core, one analog layer or the link) sets the
        # rate; reprogramming, when the mapping needs it, is paid by every inference
        stage = np.maximum(stage, xfer_lat) if stage is not None else latency - re_lat
        throughput = 1.0 / np.maximum(stage + re_lat, 1e-30)
        offchip = hw.digital[0].offchip_energy_pj_per_byte * 1e-12 if hw.digital else 0.0
        totals = {
            "latency_s": latency,
            "energy_j": energy_total,
            "throughput_per_s": throughput,
            "analog_tiles": total_tiles,
            "replicated_tiles": (tiles * copies).sum(axis=0).astype(np.int64),
            "tile_overflow": overflow,
            "fits": overflow == 0,
            "transfer_bytes": moved,
            "weight_load_energy_j": (gather(self.weight_energy).sum(axis=0)
                                     + spilled * offchip),
            "weight_spill_bytes": spilled,
            "ops_energy_j": np.full(n, self.ops_energy_j),
        }
        return _Batch(core.T, duration.T, energy.T, copies.T, spill.T * offchip, transfer.T,
                      totals)

    def _schedule(self, duration: np.ndarray, core: np.ndarray, n: int
                  ) -> tuple[np.ndarray, np.ndarray | None]:
        """(latency, steady-state stage time or None without pipelining) of the graph under
        this batch's mappings; `duration` and `core` are (layers, N)."""
        hw, plan = self.hw, self.plan
        assert plan is not None
        analog_id = self.core_names.index(hw.analog.name) if hw.analog else -2
        n_digital = len(hw.digital)
        skip = core < 0
        on_queue = np.where(~skip & (core != analog_id), core, -1)
        streaming = (core == analog_id) | skip
        work = np.where(skip, 0.0, duration)
        dur: list[Value] = list(plan.dur)
        fill: list[Value] = list(plan.fill)
        queue: list[Value] = list(plan.queue)
        streams: list[Value] = list(plan.streams)
        for k, i, share, rows in plan.layer_nodes:
            d = work[i] * share if share != 1.0 else work[i]
            dur[k], fill[k] = d, (d / rows if rows != 1 else d)
            queue[k], streams[k] = on_queue[i], streaming[i]
        pipeline = hw.analog is not None and hw.analog.pipeline_layers
        sched = list_schedule(plan.deps, dur, queue, streams, fill, n, n_digital + 2, pipeline,
                              range(n_digital))
        if not pipeline:
            return sched.latency_s, None
        stage = sched.busy_s.max(axis=1)
        if hw.analog is not None:
            stage = np.maximum(stage, np.where(core == analog_id, duration, 0.0).max(axis=0))
        return sched.latency_s, stage

    def breakdown(self, choices: dict[str, str], check_tiles: bool = True,
                  replicate: bool = True) -> MappingCost:
        """Totals and per-layer records (latency, energy, core, transfer) of one mapping."""
        return self.breakdown_indices(self.indices(choices), check_tiles, replicate)

    def breakdown_indices(self, idx: np.ndarray, check_tiles: bool = True,
                          replicate: bool = True) -> MappingCost:
        """`breakdown` of one mapping given as its (layers,) column indices."""
        idx = np.asarray(idx)
        batch = self._evaluate(idx[None, :], check_tiles, np.array([replicate]))
        totals = batch.totals
        link = self.hw.link
        records = []
        for i, name in enumerate(self.names):
            j = idx[i]
            nbytes = float(batch.transfer_bytes[0, i])
            c = self.core[i, j]
            records.append(LayerRecord(
                name=name, candidate=self.offered[name][j % self.width],
                core=self.core_names[c] if c >= 0 else "",
                latency_s=float(batch.duration[0, i]), energy_j=float(batch.energy[0, i]),
                weight_load_energy_j=float(self.weight_energy[i, j]
                                           + batch.spill_energy[0, i]),
                transfer_latency_s=nbytes / (link.bandwidth_gbps * 1e9),
                transfer_energy_j=nbytes * link.energy_pj_per_byte * 1e-12,
                tiles=int(self.tiles[i, j]), copies=int(batch.copies[0, i]),
                note=self.notes.get((i, int(j)), "")))
        _, re_lat, re_energy = tile_terms(self.hw, totals["analog_tiles"], False)
        analog = self.hw.analog
        return MappingCost(
            latency_s=float(totals["latency_s"][0]), energy_j=float(totals["energy_j"][0]),
            analog_tiles=int(totals["analog_tiles"][0]),
            tile_budget=analog.n_tiles if analog else 0,
            transfer_latency_s=sum(r.transfer_latency_s for r in records),
            transfer_energy_j=sum(r.transfer_energy_j for r in records),
            reprogram_latency_s=float(re_lat[0]), reprogram_energy_j=float(re_energy[0]),
            throughput_per_s=float(totals["throughput_per_s"][0]),
            replicated_tiles=int(totals["replicated_tiles"][0]),
            ops_energy_j=self.ops_energy_j,
            ops_latency_s=self.ops_latency_s,
            pipelined=bool(analog is not None and analog.pipeline_layers),
            layers=tuple(records))

    def uniform(self, candidate: str, check_tiles: bool = True) -> MappingCost:
        """Every layer on `candidate` (must be offered everywhere)."""
        return self.breakdown({n: candidate for n in self.names}, check_tiles)


class _SupernetLike(Protocol):
    inventory: Inventory
    variants: ShapeVariants | None
    model: Any

    def candidates(self, name: str) -> tuple[str, ...]: ...

    def mapping_indices(self, mappings: Sequence[Any]) -> Any: ...


def table_for(supernet: _SupernetLike, hw: HardwareSpec | str,
              cache_dir: str | os.PathLike[str] | None = None,
              graph: OpGraph | None = None, example_input: Any = None) -> CostTable:
    """The supernet's cost table over the whole inference when it gets `example_input` (the
    supernet's model is traced: every op) or a `graph`; without either, the mappable layers
    only, as a chain."""
    inv = supernet.inventory
    if graph is None and example_input is not None:
        from hetmap.hardware.graph import trace_graph

        graph = trace_graph(supernet.model, example_input, inv)
    return CostTable.build(inv, {n: tuple(supernet.candidates(n)) for n in inv.names},
                           hw, cache_dir, variants=supernet.variants, graph=graph)


def cost_of(supernet: _SupernetLike, mapping: Any, hw: HardwareSpec | str = "hermes-pcm",
            cache_dir: str | os.PathLike[str] | None = None,
            table: CostTable | None = None) -> MappingCost:
    """Cost of one mapping of a supernet (layers outside the mapping keep their fixed one)."""
    table = table or table_for(supernet, hw, cache_dir)
    return table.breakdown_indices(np.asarray(supernet.mapping_indices([mapping]))[0])


def baselines(inventory: Inventory, hw: HardwareSpec | str = "hermes-pcm",
              cache_dir: str | os.PathLike[str] | None = None,
              candidates: Sequence[str] = BASELINES,
              graph: OpGraph | None = None) -> dict[str, MappingCost]:
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
                            cache_dir, graph=graph)
    # over-budget baselines are reported (MappingCost.fits is False), not raised
    return {c: table.uniform(c, check_tiles=False) for c in runnable}
