"""Per-layer digital costs from ZigZag (KU Leuven's analytical DSE model), cached on disk.

A layer shape and a digital core at one precision are translated into ZigZag's own
normalised workload and accelerator dictionaries; ZigZag's LOMA search finds the best
temporal mapping of a weight-stationary array (K on D1, C on D2) and its cost model returns
cycles and energy (MACs + every memory level). Weights and activations are read from the
on-chip SRAM (the top memory level): weights that do not fit it are streamed from DRAM, a term
`hetmap.hardware.table` adds per mapping from the SRAM left to them (weights_overflow). Each
result is stored under a hash of those two dictionaries, so repeated shapes and later runs
cost no ZigZag call.

The dictionaries are built already normalised, bypassing ZigZag's cerberus validators.
(zigzag-dse 3.9.1 imports `six` without declaring it; hetmap depends on `six` for it.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

from hetmap.errors import ConfigError
from hetmap.hardware.spec import DigitalCore, Precision
from hetmap.inventory import LayerInfo
from hetmap.io import atomic_write_json

BACKEND_VERSION = 2  # bump when the translation changes, to invalidate old cache entries
CACHE_ENV = "HETMAP_ZIGZAG_CACHE"


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV, "~/.cache/hetmap/zigzag")).expanduser()


@dataclass(frozen=True)
class LayerCost:
    """Cost of one layer per inference on one core."""

    latency_s: float
    energy_j: float
    weight_load_energy_j: float = 0.0  # part of energy_j spent fetching weights (SRAM)
    cycles: float = 0.0
    ideal_cycles: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


# -- translation -----------------------------------------------------------------------------
def layer_workload(layer: LayerInfo, prec: Precision) -> dict[str, Any]:
    """ZigZag's normalised layer dict for one inference of `layer` (all its calls)."""
    spec = layer.spec
    precision = {"W": prec.weight_bits, "I": prec.act_bits, "O": prec.acc_bits,
                 "O_final": prec.act_bits}
    base: dict[str, Any] = {"id": 1, "name": "layer", "operand_precision": precision,
                            "operand_source": {"W": 1, "I": 0}, "dimension_relations": [],
                            "pr_loop_dims": None, "pr_loop_sizes": None, "padding": None}
    if spec.kind == "linear":
        tokens = max(1, round(layer.macs / (spec.in_features * spec.out_features)))
        return {**base, "operator_type": "Gemm", "equation": "O[b][k]+=W[k][c]*I[b][c]",
                "loop_dims": ["B", "K", "C"],
                "loop_sizes": [tokens, spec.out_features, spec.in_features]}
    g = spec.groups
    k, c = spec.out_features // g, spec.in_features // g
    two_d = spec.kind in ("conv2d", "conv_transpose2d")
    fy, fx = (spec.kernel_size if two_d else (1, spec.kernel_size[0]))
    sy, sx = (spec.stride if two_d else (1, spec.stride[0]))
    dy, dx = (spec.dilation if two_d else (1, spec.dilation[0]))
    oy, ox = (layer.output_shape[-2:] if two_d else (1, layer.output_shape[-1]))
    if spec.transposed:  # digitally a scatter: every input position meets the whole kernel
        sy = sx = dy = dx = 1
        oy, ox = (layer.input_shape[-2:] if two_d else (1, layer.input_shape[-1]))
    iy, ix = (layer.input_shape[-2:] if two_d else (1, layer.input_shape[-1]))
    batch = max(1, round(layer.macs / (g * k * c * fy * fx * oy * ox)))

    def pad(i: int, o: int, s: int, d: int, f: int) -> list[int]:
        total = max(0, (o - 1) * s + d * (f - 1) + 1 - i)
        return [total // 2, total - total // 2]

    return {**base, "operator_type": "Conv",
            "equation": "O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]",
            "dimension_relations": [f"ix={sx}*ox+{dx}*fx", f"iy={sy}*oy+{dy}*fy"],
            "loop_dims": ["B", "K", "G", "OX", "OY", "C", "FX", "FY"],
            "loop_sizes": [batch, k, g, ox, oy, c, fx, fy],
            "pr_loop_dims": ["IX", "IY"], "pr_loop_sizes": [ix, iy],
            "padding": [pad(ix, ox, sx, dx, fx), pad(iy, oy, sy, dy, fy)]}


def _memory(size: int, bw: int, r_cost: float, w_cost: float, operands: list[str],
            ports: list[dict[str, Any]], served: list[str]) -> dict[str, Any]:
    return {"size": size, "r_cost": r_cost, "w_cost": w_cost, "area": 0, "latency": 1,
            "operands": operands, "ports": ports, "served_dimensions": served,
            "mem_type": "sram", "auto_cost_extraction": False,
            "force_double_buffering": False, "bw": bw}


def _port(name: str, kind: str, bw: int, allocation: list[str]) -> dict[str, Any]:
    return {"name": name, "type": kind, "bandwidth_min": bw, "bandwidth_max": bw,
            "allocation": allocation}


def digital_accelerator(core: DigitalCore, prec: Precision) -> dict[str, Any]:
    """ZigZag's normalised accelerator dict: TPU-like weight-stationary array at `prec`.

    Memory levels follow ZigZag's tpu_like example (weight register per MAC, partial-sum
    register) under one on-chip SRAM that holds weights and activations (the top level:
    off-chip weight streaming is added per mapping, see `hetmap.hardware.table`). Sizes,
    bandwidths and energies come from the spec. Access costs are per port word (bandwidth
    bits). The top level is given room for any layer: activations are assumed to stay on
    chip (not checked against sram_bytes)."""
    sram_bw = core.sram_bandwidth_bytes_per_cycle * 8
    sram_cost = core.sram_energy_pj_per_byte * sram_bw / 8
    wb, ob = prec.weight_bits, prec.acc_bits
    all_dirs = ["fh", "tl", "fl", "th"]
    memories = {
        "rf_w": _memory(max(1024, 8 * wb), wb, core.weight_reg_energy_pj,
                        core.weight_reg_energy_pj, ["I2"],
                        [_port("r_port_1", "read", wb, ["I2, tl"]),
                         _port("w_port_1", "write", wb, ["I2, fh"])], []),
        "rf_o": _memory(2 * ob, ob, core.output_reg_energy_pj, core.output_reg_energy_pj, ["O"],
                        [_port("r_port_1", "read", ob, ["O, tl"]),
                         _port("r_port_2", "read", ob, ["O, th"]),
                         _port("w_port_1", "write", ob, ["O, fh"]),
                         _port("w_port_2", "write", ob, ["O, fl"])], []),
        "sram": _memory(10_000_000_000, sram_bw, sram_cost, sram_cost, ["I1", "I2", "O"],
                        [_port("rw_port_1", "read_write", sram_bw,
                               [f"{op}, {d}" for op in ("I1", "I2") for d in ("fh", "tl")]
                               + [f"O, {d}" for d in all_dirs])], ["D1", "D2"]),
    }
    for mem in memories.values():
        del mem["bw"]
    return {"name": core.name, "memories": memories, "dataflows": None,
            "operational_array": {"is_imc": False, "unit_energy": prec.mac_energy_pj,
                                  "unit_area": 1, "dimensions": ["D1", "D2"],
                                  "sizes": [prec.array_rows, prec.array_cols],
                                  "systolic_dimensions": ["D1", "D2"]}}


def _mapping(workload: dict[str, Any], prec: Precision) -> list[dict[str, Any]]:
    dims = dict(zip(workload["loop_dims"], workload["loop_sizes"], strict=True))
    d1 = "G" if dims.get("K", 1) == 1 and dims.get("G", 1) > 1 else "K"
    return [{"name": "default", "spatial_mapping": {"D1": [f"{d1}, {prec.array_rows}"],
                                                    "D2": [f"C, {prec.array_cols}"]},
             "spatial_mapping_hint": None, "temporal_ordering": [],
             "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"}}]


# -- cache -----------------------------------------------------------------------------------
def cache_key(workload: dict[str, Any], accelerator: dict[str, Any], lpf_limit: int) -> str:
    text = json.dumps({"backend": BACKEND_VERSION, "zigzag": version("zigzag-dse"),
                       "lpf": lpf_limit, "layer": workload, "acc": accelerator}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class ZigzagCache:
    """One JSON file per (shape, core, precision) result; writes are atomic."""

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None) -> None:
        self.dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self.hits = 0
        self.misses = 0
        self.zigzag_seconds = 0.0

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.json"

    def get(self, key: str) -> LayerCost | None:
        path = self._path(key)
        try:
            data = json.loads(path.read_text())
            return LayerCost(**data["cost"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, cost: LayerCost, meta: dict[str, Any]) -> None:
        atomic_write_json(self._path(key), {"cost": cost.to_dict(), **meta})


def digital_layer_cost(layer: LayerInfo, core: DigitalCore, precision: str,
                       cache: ZigzagCache, lpf_limit: int = 4) -> LayerCost:
    """Latency and energy of `layer` on `core` at `precision`, from the cache or ZigZag."""
    try:
        prec = core.precisions[precision]
    except KeyError:
        raise ConfigError(f"digital core {core.name!r} lists no precision {precision!r} "
                          "(field 'precisions')") from None
    workload = layer_workload(layer, prec)
    accelerator = digital_accelerator(core, prec)
    key = cache_key(workload, accelerator, lpf_limit)
    cached = cache.get(key)
    if cached is not None:  # the clock is not in the key: cycles are, time follows from them
        cache.hits += 1
        return replace(cached, latency_s=cached.cycles / (core.clock_ghz * 1e9))
    start = time.perf_counter()
    cost = run_zigzag(workload, accelerator, _mapping(workload, prec), lpf_limit,
                      core.clock_ghz)
    seconds = time.perf_counter() - start
    cache.misses += 1
    cache.zigzag_seconds += seconds
    cache.put(key, cost, {"core": core.name, "precision": precision, "layer": workload,
                          "zigzag_seconds": seconds})
    return cost


def run_zigzag(workload: dict[str, Any], accelerator: dict[str, Any],
               mapping: list[dict[str, Any]], lpf_limit: int, clock_ghz: float) -> LayerCost:
    """One ZigZag evaluation: best-latency spatial/temporal mapping of one layer."""
    from zigzag.mapping.temporal_mapping import TemporalMappingType
    from zigzag.parser.accelerator_factory import AcceleratorFactory
    from zigzag.parser.workload_factory import LayerNodeFactory
    from zigzag.stages.evaluation.cost_model_evaluation import CostModelStage
    from zigzag.stages.main import MainStage
    from zigzag.stages.mapping.spatial_mapping_generation import SpatialMappingGeneratorStage
    from zigzag.stages.mapping.temporal_mapping_generator_stage import (
        TemporalMappingGeneratorStage,
    )
    from zigzag.stages.results.reduce_stages import MinimalLatencyStage

    zz_logger = logging.getLogger("zigzag")
    level = zz_logger.level
    zz_logger.setLevel(logging.ERROR)
    try:
        node = LayerNodeFactory(workload, mapping).create()
        accel = AcceleratorFactory(accelerator).create()
        stages = [MinimalLatencyStage, SpatialMappingGeneratorStage, MinimalLatencyStage,
                  TemporalMappingGeneratorStage, CostModelStage]
        (cme, _), *_ = MainStage(
            stages, layer=node, accelerator=accel, loma_lpf_limit=lpf_limit,
            loma_show_progress_bar=False, temporal_mapping_type=TemporalMappingType.EVEN,
            nb_mappings_generated=1, enable_mix_spatial_mapping_generation=False,
            access_same_data_considered_as_no_access=True).run()
    finally:
        zz_logger.setLevel(level)
    cycles = float(cme.latency_total2)
    weight_pj = sum(float(e[-1]) for op, e in cme.mem_energy_breakdown.items()
                    if str(op) == "W" and len(e))  # top level: the SRAM
    return LayerCost(latency_s=cycles / (clock_ghz * 1e9), energy_j=float(cme.energy_total) * 1e-12,
                     weight_load_energy_j=weight_pj * 1e-12, cycles=cycles,
                     ideal_cycles=float(cme.ideal_cycle))


def analog_vectors(layer: LayerInfo) -> int:
    """Input vectors one inference presents to the layer's crossbar (MACs / rows x cols;
    a transposed convolution runs as the direct convolution of its zero-stuffed input, one
    vector per output position)."""
    if layer.spec.transposed:
        return max(1, layer.out_activations // layer.spec.out_features)
    return max(1, math.ceil(layer.macs / (layer.spec.rows * layer.spec.cols)))


def matmul_cost(core: DigitalCore, precision: str, m: int, k: int, n: int,
                cache: ZigzagCache, lpf_limit: int = 4) -> LayerCost:
    """One (m x k) @ (k x n) product of two activations (attention QK^T, AV) on `core`: the
    right operand sits in the array like a weight, read from SRAM."""
    from hetmap.layers import LayerSpec

    spec = LayerSpec("linear", k, n, bias=False)
    layer = LayerInfo("matmul", spec, m * k * n, 1, (1, m, k), (1, m, n), m * k, m * n, 0, 0.0,
                      False)
    return digital_layer_cost(layer, core, precision, cache, lpf_limit)
