"""Hand-computed small cases of the mapping-level model: replication, pipelining, SRAM
residency, the cost of non-mappable ops, concurrency of two branches, grouped convs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hetmap.hardware import CostTable, HardwareSpec, Link, OpNode, trace_graph
from hetmap.hardware.analog_model import (
    analog_layer_cost,
    analog_shape_cost,
    mvm_seconds,
    place,
)
from hetmap.hardware.ops_cost import op_cost
from hetmap.hardware.zigzag_backend import ZigzagCache
from hetmap.inventory import Inventory, scan
from hetmap.layers import LayerSpec

from .conftest import make_layer

T = 100e-9  # MVM time of the test core


def spec(**analog: object) -> HardwareSpec:
    return HardwareSpec.model_validate({
        "name": "hand",
        "analog": {"tile_rows": 16, "tile_cols": 16, "n_tiles": 8, "mvm_latency_ns": 100.0,
                   "dac_energy_pj": 1.0, "adc_energy_pj": 2.0, "cell_energy_fj": 0.0,
                   "pipeline_layers": False, **analog},
        "digital": [{"name": "digital", "clock_ghz": 1.0,
                     "precisions": {"int8": {"array_rows": 8, "array_cols": 8,
                                             "mac_energy_pj": 0.23, "weight_bits": 8,
                                             "act_bits": 8}},
                     "sram_bytes": 1000, "sram_bandwidth_bytes_per_cycle": 256,
                     "sram_energy_pj_per_byte": 1.6, "offchip_bandwidth_gbps": 32.0,
                     "offchip_energy_pj_per_byte": 87.5, "vector_lanes": 10,
                     "vector_op_energy_pj": 0.5}],
        "link": {"energy_pj_per_byte": 0.0, "bandwidth_gbps": 1e9},
        "zigzag": {"lpf_limit": 3}})


def two_layers() -> Inventory:
    # l0: 16x16, one tile, 64 vectors; l1: 32x16, two row tiles, 8 vectors
    return Inventory((make_layer("l0", LayerSpec("linear", 16, 16), (1, 64, 16), (1, 64, 16)),
                      make_layer("l1", LayerSpec("linear", 32, 16), (1, 8, 32), (1, 8, 16))),
                     (16, 16), 1)


def build(hw: HardwareSpec, tmp_path, inv: Inventory | None = None, graph=None,
          offered=("analog", "int8")) -> CostTable:
    inv = inv or two_layers()
    return CostTable.build(inv, {n: offered for n in inv.names}, hw, tmp_path, graph=graph)


def test_replication_is_greedy_on_time_saved_per_tile(tmp_path):
    # free tiles 8 - 3 = 5. Increments (saved / extra tiles): l0 1->2 32T/1, 2->4 16T/2,
    # 4->8 8T/4; l1 1->2 4T/2. Greedy: l0 x2 (1 tile), l0 x4 (2 more, 3) then l0 x8 needs
    # 4 more (7 > 5): stop. l0 takes 64/4 = 16 MVMs, l1 8: 24 T in sequence.
    table = build(spec(), tmp_path)
    cost = table.uniform("analog")
    assert [r.copies for r in cost.layers] == [4, 1]
    assert cost.latency_s == pytest.approx(24 * T)
    assert cost.replicated_tiles == 4 * 1 + 2 and cost.analog_tiles == 3
    # 12 tiles (9 free): l0 x8 (cum 7) and l1 x2 (cum 9) fit; l0 x16 (8 more) does not
    table = build(spec(n_tiles=12), tmp_path)
    cost = table.uniform("analog")
    assert [r.copies for r in cost.layers] == [8, 2]
    assert cost.latency_s == pytest.approx((8 + 4) * T)
    # replication off: each layer on one copy, 64 + 8 MVMs
    assert build(spec(replicate=False), tmp_path).uniform("analog").latency_s == \
        pytest.approx(72 * T)
    # energy does not depend on copies: the same MVMs run, spread over more tiles
    assert cost.energy_j == pytest.approx(
        build(spec(replicate=False), tmp_path).uniform("analog").energy_j)


def test_replication_is_a_per_mapping_choice(tmp_path):
    # the same all-analog mapping with and without copies in one batch: 24 T and 72 T (above)
    table = build(spec(), tmp_path)
    idx = np.zeros((2, 2), dtype=np.int64)
    res = table.evaluate_indices(idx, replicate=np.array([True, False]))
    assert res["latency_s"] == pytest.approx([24 * T, 72 * T])
    assert res["replicated_tiles"].tolist() == [6, 3]
    one = table.breakdown_indices(idx[0], replicate=False)
    assert [r.copies for r in one.layers] == [1, 1] and one.latency_s == pytest.approx(72 * T)


def test_pipelined_analog_chain(tmp_path):
    # l0: 64 MVMs, one token's output after T; l1 starts then, ends one of its rows (T)
    # after l0: max(T + 8T, 64T + T) = 65T (72T without pipelining)
    table = build(spec(replicate=False, pipeline_layers=True), tmp_path)
    cost = table.uniform("analog")
    assert cost.latency_s == pytest.approx(65 * T)
    assert cost.throughput_per_s == pytest.approx(1 / (64 * T))  # slowest stage
    off = build(spec(replicate=False), tmp_path).uniform("analog")
    assert off.throughput_per_s == pytest.approx(1 / (72 * T))


def test_digital_weights_stay_in_sram_until_it_is_full(tmp_path):
    # int8 weights + biases: 16*16+16 = 272 B and 32*16+16 = 528 B; 800 B in all
    roomy = build(spec(), tmp_path).uniform("int8")
    small = HardwareSpec.model_validate({**spec().model_dump(), "digital": [
        {**spec().digital[0].model_dump(), "weight_sram_bytes": 400}]})
    tight = build(small, tmp_path).uniform("int8")
    table = build(small, tmp_path)
    res = table.evaluate_indices(table.indices({"l0": "int8", "l1": "int8"}))
    assert res["weight_spill_bytes"][0] == pytest.approx(400.0)  # half of each layer's
    assert tight.energy_j - roomy.energy_j == pytest.approx(400 * (87.5 - 1.6) * 1e-12)
    assert tight.latency_s == pytest.approx(roomy.latency_s)  # 4-8 ns of DRAM < compute


def test_vector_op_cost_by_hand(tmp_path):
    hw = spec()
    node = OpNode("relu", "vector", (), elements=1000, ops_per_element=1.0, moved=2000)
    cost = op_cost(node, hw, ZigzagCache(tmp_path))
    # 1000 ops on 10 lanes = 100 cycles (2000 B over 256 B/cycle is faster), 1 GHz
    assert cost.latency_s == pytest.approx(100e-9)
    assert cost.energy_j == pytest.approx((1000 * 0.5 + 2000 * 1.6) * 1e-12)


def test_traced_relu_is_costed_and_scheduled(tmp_path):
    model = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 16))
    x = torch.zeros(1, 64, 16)
    inv = scan(model, x, tile=(16, 16))
    graph = trace_graph(model, x, inv)
    assert [n.kind for n in graph.nodes] == ["layer", "vector", "layer"]
    relu = graph.nodes[1]
    assert relu.deps == (0,) and relu.elements == 1024 and relu.moved == 2048
    hw = spec(replicate=False)
    full = build(hw, tmp_path, inv, graph).uniform("int8")
    bare = build(hw, tmp_path, inv).uniform("int8")
    relu_cost = op_cost(relu, hw, ZigzagCache(tmp_path))
    assert relu_cost.energy_j == pytest.approx((1024 * 0.5 + 2048 * 1.6) * 1e-12)
    assert full.energy_j - bare.energy_j == pytest.approx(relu_cost.energy_j)
    assert full.latency_s - bare.latency_s == pytest.approx(relu_cost.latency_s)  # in series
    assert full.ops_energy_j == pytest.approx(relu_cost.energy_j)


class TwoBranch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(16, 16)
        self.b = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a(x) + self.b(x)


def test_two_branches_run_concurrently_on_two_cores(tmp_path):
    model = TwoBranch()
    x = torch.zeros(1, 64, 16)
    inv = scan(model, x, tile=(16, 16))
    graph = trace_graph(model, x, inv)
    assert [n.kind for n in graph.nodes] == ["layer", "layer", "vector"]
    assert graph.nodes[2].deps == (0, 1)
    table = build(spec(replicate=False), tmp_path, inv, graph)
    add = table.op_latency[0]
    a_analog = 64 * T
    b_int8 = table.latency[1, 1]
    both_digital = table.breakdown({"a": "int8", "b": "int8"}).latency_s
    mixed = table.breakdown({"a": "analog", "b": "int8"}).latency_s
    assert both_digital == pytest.approx(2 * b_int8 + add)  # one queue: in series
    assert mixed == pytest.approx(max(a_analog, b_int8) + add)  # two cores: overlapped


def test_grouped_convs_pack_block_diagonally_or_route_digital(tmp_path):
    depthwise = LayerSpec("conv2d", 32, 32, (3, 3), (1, 1), (1, 1), (1, 1), groups=32)
    layer = make_layer("dw", depthwise, (1, 32, 8, 8), (1, 32, 8, 8))
    hw = spec()
    p = place(layer, hw.analog)  # 9x1 blocks: 16 // 9 = 1 group per 16x16 tile
    assert p.tiles == 32 and p.vectors == 64
    wide = hw.analog.model_copy(update={"tile_rows": 256, "tile_cols": 256})
    assert place(layer, wide).tiles == 2  # 256 // 9 = 28 groups per tile
    # per vector: 288 inputs x 1 pJ + 2 tiles x 256 columns x 2 pJ
    assert place(layer, wide).energy_per_vector_j == pytest.approx((288 + 2 * 256 * 2) * 1e-12)
    inv = Inventory((layer,), (16, 16), 1)
    routed = spec(grouped_conv="digital")
    cost = build(routed, tmp_path, inv).uniform("analog")
    assert cost.layers[0].core == "digital" and "grouped conv" in cost.layers[0].note
    assert cost.analog_tiles == 0


def test_a_layer_costs_what_its_shape_costs_at_its_vectors():
    conv = LayerSpec("conv2d", 32, 64, (3, 3), (1, 1), (1, 1), (1, 1))
    layer = make_layer("c", conv, (1, 32, 8, 8), (1, 64, 8, 8))
    core = spec().analog
    by_layer, by_shape = analog_layer_cost(layer, core), analog_shape_cost(conv, 64, core)
    assert by_shape == by_layer and by_shape.latency_s == pytest.approx(
        64 * place(layer, core).mvm_s)  # one vector per output position
    assert analog_shape_cost(conv, 128, core).energy_j == pytest.approx(2 * by_layer.energy_j)


def test_adc_sharing_stretches_the_mvm():
    assert mvm_seconds(spec().analog) == pytest.approx(100e-9)
    shared = spec(adc_share=4, adc_conversion_ns=10.0).analog
    assert mvm_seconds(shared) == pytest.approx(130e-9)


def test_batch_equals_one_by_one_with_replication_and_graph(tmp_path):
    model = TwoBranch()
    x = torch.zeros(1, 64, 16)
    inv = scan(model, x, tile=(16, 16))
    hw = spec(pipeline_layers=True).model_copy(
        update={"link": Link(energy_pj_per_byte=2.0, bandwidth_gbps=64.0)})
    table = build(hw, tmp_path, inv, trace_graph(model, x, inv))
    idx = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    batch = table.evaluate_indices(idx)
    # by hand: b's input (64 x 16 activations at 8 bits = 1,024 B) crosses the link when a
    # and b run on different cores (mappings 1 and 2), at 2 pJ/B and 64 GB/s
    moved = np.array([0.0, 1024.0, 1024.0, 0.0])
    assert batch["transfer_bytes"] == pytest.approx(moved)
    for k, row in enumerate(idx):
        one = table.breakdown_indices(row)
        assert one.transfer_energy_j == pytest.approx(moved[k] * 2e-12)
        assert one.transfer_latency_s == pytest.approx(moved[k] / 64e9)
        assert one.latency_s == pytest.approx(batch["latency_s"][k])
        assert one.energy_j == pytest.approx(batch["energy_j"][k])
        assert one.throughput_per_s == pytest.approx(batch["throughput_per_s"][k])
        # the total is the layers, the fixed ops (the add) and the transfer
        layers = sum(r.energy_j for r in one.layers)
        assert batch["energy_j"][k] == pytest.approx(layers + table.op_energy.sum()
                                                     + moved[k] * 2e-12)
