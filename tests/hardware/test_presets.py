"""Presets: mps-paper reproduces the one row it is fitted to (ResNet-20), and the fit
recovers its four numbers; the speech-chip preset keeps its published figures."""

import pytest

from hetmap.hardware import load_hardware
from hetmap.hardware.calibrate import RESNET20, fit, predict, resnet20_workload


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
