"""Fit four numbers of a system to one published row of (FP32, all-analog) latency and energy.

The `mps-paper` preset is this fit on the ResNet-20 row of the paper (REFERENCE.md: FP32
2.30 ms / 232.8 uJ, all-analog 0.95 ms / 76.2 uJ per sample) and nothing else; the paper's
other models are the held-out check. One parameter per target, in this order (each later
target depends on the earlier parameters, never the reverse):

1. `digital[0].clock_ghz`   <- FP32 latency  (digital cycles do not depend on the clock)
2. `fp32.mac_energy_pj`     <- FP32 energy   (energy is linear in it: MACs x e + the rest)
3. `analog.mvm_latency_ns`  <- all-analog latency (monotone: bisection)
4. `analog.adc_energy_pj`   <- all-analog energy (linear in it; the ADCs dominate the
   per-MVM energy of a PCM tile, and the preset sets no fixed per-tile term)

    python -m hetmap.hardware.calibrate [--hardware mps-paper] [--cache-dir DIR]

prints the fitted values and the residuals of the four targets.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from hetmap.errors import ConfigError
from hetmap.hardware.graph import OpGraph
from hetmap.hardware.loader import load_hardware
from hetmap.hardware.spec import HardwareSpec
from hetmap.hardware.table import CostTable
from hetmap.inventory import Inventory


@dataclass(frozen=True)
class Row:
    """One published row: per-sample latency (s) and energy (J), FP32 and all-analog."""

    fp32_latency_s: float
    fp32_energy_j: float
    analog_latency_s: float
    analog_energy_j: float


RESNET20 = Row(2.30e-3, 232.8e-6, 0.95e-3, 76.2e-6)  # REFERENCE.md, ResNet20 row


@dataclass(frozen=True)
class Fit:
    hw: HardwareSpec
    clock_ghz: float
    fp32_mac_energy_pj: float
    mvm_latency_ns: float
    adc_energy_pj: float
    predicted: Row


def _with(hw: HardwareSpec, digital: dict | None = None, fp32: dict | None = None,
          analog: dict | None = None) -> HardwareSpec:
    core = hw.digital[0]
    if fp32:
        core = core.model_copy(update={"precisions": {
            **core.precisions, "fp32": core.precisions["fp32"].model_copy(update=fp32)}})
    if digital:
        core = core.model_copy(update=digital)
    update: dict = {"digital": (core, *hw.digital[1:])}
    if analog:
        assert hw.analog is not None
        update["analog"] = hw.analog.model_copy(update=analog)
    return hw.model_copy(update=update)


def predict(hw: HardwareSpec, inventory: Inventory, graph: OpGraph | None,
            cache_dir: str | os.PathLike[str] | None = None) -> Row:
    table = CostTable.build(inventory, {n: ("fp32", "analog") for n in inventory.names}, hw,
                            cache_dir, graph=graph)
    fp32, analog = table.uniform("fp32", False), table.uniform("analog", False)
    return Row(fp32.latency_s, fp32.energy_j, analog.latency_s, analog.energy_j)


def fit(hw: HardwareSpec, inventory: Inventory, graph: OpGraph | None, row: Row = RESNET20,
        cache_dir: str | os.PathLike[str] | None = None) -> Fit:
    if hw.analog is None or not hw.digital or "fp32" not in hw.digital[0].precisions:
        raise ConfigError("calibration needs an analog core and a digital core with fp32")

    def run(spec: HardwareSpec) -> Row:
        return predict(spec, inventory, graph, cache_dir)

    # 1. clock: every digital time is cycles / clock
    clock = hw.digital[0].clock_ghz
    for _ in range(3):  # exact in one step unless off-chip (clock-free) time is present
        clock *= run(_with(hw, digital={"clock_ghz": clock})).fp32_latency_s / row.fp32_latency_s
    hw = _with(hw, digital={"clock_ghz": clock})
    # 2. FP32 MAC energy: linear
    e0 = hw.digital[0].precisions["fp32"].mac_energy_pj
    at0 = run(hw).fp32_energy_j
    at1 = run(_with(hw, fp32={"mac_energy_pj": 2 * e0})).fp32_energy_j
    e_fit = e0 + e0 * (row.fp32_energy_j - at0) / (at1 - at0)
    if e_fit <= 0:
        raise ConfigError(f"FP32 energy {row.fp32_energy_j:.3g} J is below what this system "
                          "spends outside the MACs; no positive MAC energy fits")
    hw = _with(hw, fp32={"mac_energy_pj": e_fit})
    # 3. MVM time: the all-analog latency grows with it
    lo, hi = 1e-3, 1e6  # ns
    for _ in range(60):
        mid = (lo * hi) ** 0.5
        lat = run(_with(hw, analog={"mvm_latency_ns": mid})).analog_latency_s
        lo, hi = (mid, hi) if lat < row.analog_latency_s else (lo, mid)
    hw = _with(hw, analog={"mvm_latency_ns": (lo * hi) ** 0.5})
    # 4. energy per ADC conversion: linear
    a0 = run(_with(hw, analog={"adc_energy_pj": 0.0})).analog_energy_j
    a1 = run(_with(hw, analog={"adc_energy_pj": 1.0})).analog_energy_j
    t_fit = (row.analog_energy_j - a0) / (a1 - a0)
    if t_fit < 0:
        raise ConfigError(f"all-analog energy {row.analog_energy_j:.3g} J is below what the "
                          f"system spends outside the ADCs ({a0:.3g} J); no ADC energy fits")
    hw = _with(hw, analog={"adc_energy_pj": t_fit})
    assert hw.analog is not None
    return Fit(hw, clock, e_fit, hw.analog.mvm_latency_ns, t_fit, run(hw))


def resnet20_workload(tile: tuple[int, int]) -> tuple[Inventory, OpGraph]:
    import torch

    from hetmap.hardware.graph import trace_graph
    from hetmap.inventory import scan
    from hetmap.models import resnet_cifar

    model = resnet_cifar(20)
    x = torch.zeros(1, 3, 32, 32)
    inv = scan(model, x, tile=tile)
    return inv, trace_graph(model, x, inv)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hardware", default="mps-paper")
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args()
    hw = load_hardware(args.hardware)
    assert hw.analog is not None
    inv, graph = resnet20_workload(hw.analog.tile)
    before = predict(hw, inv, graph, args.cache_dir)
    result = fit(hw, inv, graph, RESNET20, args.cache_dir)
    print(f"fitted on ResNet-20 ({args.hardware}):")
    print(f"  digital.clock_ghz        {result.clock_ghz:.6g}")
    print(f"  fp32.mac_energy_pj       {result.fp32_mac_energy_pj:.6g}")
    print(f"  analog.mvm_latency_ns    {result.mvm_latency_ns:.6g}")
    print(f"  analog.adc_energy_pj     {result.adc_energy_pj:.6g}")
    for label, b, p, t in zip(("FP32 latency", "FP32 energy", "analog latency",
                               "analog energy"), vars(before).values(),
                              vars(result.predicted).values(), vars(RESNET20).values(),
                              strict=True):
        print(f"  {label:<15} shipped preset {b:.4g}  fitted {p:.4g}  target {t:.4g}")


if __name__ == "__main__":
    main()
