"""Real ZigZag calls on tiny layers: translation, cost sanity, dedupe and the disk cache."""

import json

import pytest

from hetmap.hardware import CostTable, ZigzagCache
from hetmap.hardware.zigzag_backend import digital_layer_cost, layer_workload
from hetmap.inventory import Inventory
from hetmap.layers import LayerSpec

from .conftest import make_layer

CONV = LayerSpec("conv2d", 4, 8, (3, 3), (2, 2), (1, 1), (1, 1))
LINEAR = LayerSpec("linear", 16, 8)


def conv_layer(name="conv"):
    return make_layer(name, CONV, (1, 4, 8, 8), (1, 8, 4, 4))


def linear_layer(name="fc"):
    return make_layer(name, LINEAR, (1, 3, 16), (1, 3, 8))


def test_workload_translation_keeps_macs():
    for layer in (conv_layer(), linear_layer()):
        wl = layer_workload(layer, _prec())
        dims = dict(zip(wl["loop_dims"], wl["loop_sizes"]))
        macs = 1
        for size in dims.values():
            macs *= size
        assert macs == layer.macs
    conv = layer_workload(conv_layer(), _prec())
    assert conv["dimension_relations"][0] == "ix=2*ox+1*fx"
    assert conv["padding"] == [[0, 1], [0, 1]]


def _prec():
    from hetmap.hardware import Precision

    return Precision(array_rows=8, array_cols=8, mac_energy_pj=0.23, weight_bits=8, act_bits=8)


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_zigzag_cost_is_bounded_by_ideal_and_reads_weights_from_sram(tiny_hw, tmp_path,
                                                                   precision):
    core = tiny_hw.digital[0]
    prec = core.precisions[precision]
    layer = conv_layer()
    cost = digital_layer_cost(layer, core, precision, ZigzagCache(tmp_path), 3)
    min_cycles = layer.macs / (prec.array_rows * prec.array_cols)
    assert cost.latency_s >= min_cycles / (core.clock_ghz * 1e9)
    assert cost.energy_j >= layer.macs * prec.mac_energy_pj * 1e-12
    weight_bytes = layer.spec.weight_numel * prec.weight_bits / 8
    # weights are read from the on-chip SRAM (whole port words), never from DRAM here
    assert weight_bytes * core.sram_energy_pj_per_byte * 1e-12 <= cost.weight_load_energy_j
    assert cost.weight_load_energy_j < weight_bytes * core.offchip_energy_pj_per_byte * 1e-12


def test_repeated_shapes_dedupe_and_second_build_hits_the_cache(tiny_hw, tmp_path):
    layers = (conv_layer("a"), conv_layer("b"), linear_layer("c"))
    inv = Inventory(layers, (256, 256), 1)
    offered = {n: ("fp32", "int8", "analog", "skip") for n in inv.names}
    first = CostTable.build(inv, offered, tiny_hw, cache_dir=tmp_path)
    assert first.zigzag_calls == 4  # 2 shapes x 2 precisions, not 3 x 2
    files = list(tmp_path.rglob("*.json"))
    assert len(files) == 4
    assert json.loads(files[0].read_text())["cost"]["energy_j"] > 0
    second = CostTable.build(inv, offered, tiny_hw, cache_dir=tmp_path)
    assert second.zigzag_calls == 0 and second.cache_hits == 6
    assert (second.energy == first.energy).all() and (second.latency == first.latency).all()
    # a corrupted entry is recomputed, not trusted
    files[0].write_text("{not json")
    third = CostTable.build(inv, offered, tiny_hw, cache_dir=tmp_path)
    assert third.zigzag_calls == 1 and (third.energy == first.energy).all()
