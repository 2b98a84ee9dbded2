"""Cost of the ops no mapping places (hetmap.hardware.graph nodes other than layers), on the
first digital core at the spec's `ops_precision`:

- matmul (attention QK^T, AV): ZigZag on the MAC array, `batch` products of (M x K) @ (K x N);
- vector (element-wise, reductions): `elements x ops_per_element` operations on a
  `vector_lanes`-wide unit, or the SRAM traffic of its operands if that is slower;
  energy = operations x vector_op_energy_pj + bytes moved x sram_energy_pj_per_byte;
- memory (embedding look-ups): the fetched rows from off-chip memory (tables of this size do
  not fit on chip): bytes / offchip bandwidth, bytes x offchip_energy_pj_per_byte.
"""

from __future__ import annotations

from dataclasses import dataclass

from hetmap.errors import ConfigError
from hetmap.hardware.graph import OpNode
from hetmap.hardware.spec import HardwareSpec
from hetmap.hardware.zigzag_backend import ZigzagCache, matmul_cost


@dataclass(frozen=True)
class OpCost:
    latency_s: float
    energy_j: float


def op_cost(node: OpNode, hw: HardwareSpec, cache: ZigzagCache) -> OpCost:
    if not hw.digital:
        raise ConfigError(f"hardware {hw.name!r} has no digital core to run op {node.name!r} "
                          "(softmax, norms, attention matmuls, ...); add a 'digital' core")
    core = hw.digital[0]
    prec = core.precisions[hw.ops_precision_name]
    nbytes = prec.act_bits / 8
    hz = core.clock_ghz * 1e9
    if node.kind == "matmul":
        batch, m, k, n = node.gemm
        one = matmul_cost(core, hw.ops_precision_name, m, k, n, cache, hw.zigzag.lpf_limit)
        return OpCost(batch * one.latency_s, batch * one.energy_j)
    if node.kind == "memory":
        fetched = node.elements * nbytes
        return OpCost(fetched / (core.offchip_bandwidth_gbps * 1e9),
                      fetched * core.offchip_energy_pj_per_byte * 1e-12)
    ops = node.elements * node.ops_per_element
    moved = node.moved * nbytes
    latency = max(ops / core.vector_lanes, moved / core.sram_bandwidth_bytes_per_cycle) / hz
    return OpCost(latency, (ops * core.vector_op_energy_pj
                            + moved * core.sram_energy_pj_per_byte) * 1e-12)
