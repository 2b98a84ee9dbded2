"""Presets: mps-paper reproduces the one row it is fitted to (ResNet-20), and the fit
recovers its four numbers; every preset's digital core is at a 16 nm accelerator's INT8
energy per MAC (Simba)."""

import pytest

from hetmap.hardware import load_hardware, preset_names
from hetmap.hardware.calibrate import (
    RESNET20,
    SIMBA_PJ_PER_MAC,
    digital_energy_factor,
    digital_pj_per_mac,
    fit,
    predict,
    resnet20_workload,
)


@pytest.fixture(scope="module")
def resnet20():
    return resnet20_workload((512, 512))


def test_mps_paper_reproduces_the_resnet20_row(resnet20):
    inv, graph = resnet20
    row = predict(load_hardware("mps-paper"), inv, graph)
    for got, want in zip(vars(row).values(), vars(RESNET20).values(), strict=True):
        assert got == pytest.approx(want, rel=2e-3)


def test_fit_recovers_the_shipped_numbers(resnet20):
    inv, graph = resnet20
    hw = load_hardware("mps-paper")
    assert hw.analog is not None
    result = fit(hw, inv, graph)
    assert result.clock_ghz == pytest.approx(hw.digital[0].clock_ghz, rel=1e-3)
    assert result.fp32_mac_energy_pj == pytest.approx(
        hw.digital[0].precisions["fp32"].mac_energy_pj, rel=1e-3)
    assert result.mvm_latency_ns == pytest.approx(hw.analog.mvm_latency_ns, rel=1e-3)
    assert result.adc_energy_pj == pytest.approx(hw.analog.adc_energy_pj, rel=1e-3)


@pytest.mark.parametrize("name", preset_names())
def test_digital_core_is_at_simbas_int8_energy_per_mac(name):
    core = load_hardware(name).digital[0]
    assert digital_pj_per_mac(core, "int8") == pytest.approx(SIMBA_PJ_PER_MAC, rel=0.02)


def test_digital_energy_factor_is_exact_in_one_step():
    core = load_hardware("hermes-pcm").digital[0]
    doubled = core.model_copy(update={
        "precisions": {k: p.model_copy(update={"mac_energy_pj": 2 * p.mac_energy_pj})
                       for k, p in core.precisions.items()},
        "sram_energy_pj_per_byte": 2 * core.sram_energy_pj_per_byte,
        "weight_reg_energy_pj": 2 * core.weight_reg_energy_pj,
        "output_reg_energy_pj": 2 * core.output_reg_energy_pj})
    assert digital_energy_factor(doubled) == pytest.approx(
        digital_energy_factor(core) / 2, rel=1e-6)
