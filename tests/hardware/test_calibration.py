"""The analog core of `hermes-pcm` is held to Le Gallo et al., Nature Electronics 2023:
63.1 TOPS and 9.76 TOPS/W (one-phase read, 8-bit I/O) at full utilisation of 64 tiles."""

import pytest

from hetmap.hardware import load_hardware
from hetmap.hardware.analog_model import analog_layer_cost
from hetmap.layers import LayerSpec

from .conftest import make_layer


def test_full_utilisation_mvm_matches_hermes():
    hw = load_hardware("hermes-pcm")
    core = hw.analog
    # one layer filling all 64 tiles (256 rows x 64*256 columns), 1000 input vectors
    spec = LayerSpec("linear", 256, 256 * core.n_tiles, bias=False)
    layer = make_layer("mvm", spec, (1, 1000, 256), (1, 1000, 256 * core.n_tiles))
    assert layer.tiles == core.n_tiles and layer.tile_utilisation == 1.0
    cost = analog_layer_cost(layer, core)
    ops = 2 * layer.macs
    tops = ops / cost.latency_s / 1e12
    tops_per_w = ops / cost.energy_j / 1e12
    assert tops == pytest.approx(63.1, rel=0.15)
    assert tops_per_w == pytest.approx(9.76, rel=0.15)


def test_partial_tiles_cost_less_per_mvm_but_more_per_mac():
    core = load_hardware("hermes-pcm").analog
    full = make_layer("f", LayerSpec("linear", 256, 256), (1, 10, 256), (1, 10, 256))
    part = make_layer("p", LayerSpec("linear", 64, 64), (1, 10, 64), (1, 10, 64))
    cf, cp = analog_layer_cost(full, core), analog_layer_cost(part, core)
    assert cp.latency_s == cf.latency_s  # one MVM per vector either way
    assert cp.energy_j < cf.energy_j
    assert cp.energy_j / part.macs > cf.energy_j / full.macs


def test_every_column_of_an_active_tile_converts_unless_gated():
    core = load_hardware("hermes-pcm").analog
    narrow = make_layer("n", LayerSpec("linear", 64, 64), (1, 10, 64), (1, 10, 64))
    wide = make_layer("w", LayerSpec("linear", 64, 256), (1, 10, 64), (1, 10, 256))
    extra_cells = 10 * 64 * 192 * core.cell_energy_fj * 1e-15
    # same tile, four times the columns: only the devices of the new columns cost more
    gap = analog_layer_cost(wide, core).energy_j - analog_layer_cost(narrow, core).energy_j
    assert gap == pytest.approx(extra_cells)
    gated = core.model_copy(update={"column_gating": True})
    gap = analog_layer_cost(wide, gated).energy_j - analog_layer_cost(narrow, gated).energy_j
    assert gap == pytest.approx(extra_cells + 10 * 192 * core.adc_energy_pj * 1e-12)


def test_speech_chip_full_tile_efficiency_matches_ambrogio_2023():
    core = load_hardware("speech-pcm").analog
    assert (core.n_tiles, core.tile_rows, core.tile_cols) == (34, 512, 512)
    spec = LayerSpec("linear", 512, 512 * core.n_tiles, bias=False)
    layer = make_layer("mvm", spec, (1, 100, 512), (1, 100, 512 * core.n_tiles), (512, 512))
    cost = analog_layer_cost(layer, core)
    assert 2 * layer.macs / cost.energy_j / 1e12 == pytest.approx(12.4, rel=0.05)
