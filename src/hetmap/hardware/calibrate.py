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

prints the fitted values and the residuals of the four targets, and the digital core's INT8
energy per MAC on a reference GEMM beside Simba's (see `digital_pj_per_mac`).

The digital energies themselves are not fitted to any row: every preset's on-chip digital
energies (MACs of every precision, registers, SRAM, vector ops) are Horowitz's 45 nm figures
times one factor, `digital_energy_factor`, that puts the INT8 core at the energy per MAC of a
published 16 nm accelerator, NVIDIA's Simba (Zimmer et al., VLSI 2019 / JSSC 2020: 0.11 pJ/op,
9.5 TOPS/W, 2 ops per MAC), on a well-utilised GEMM.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from hetmap.errors import ConfigError
from hetmap.hardware.graph import OpGraph
from hetmap.hardware.loader import load_hardware
from hetmap.hardware.spec import DigitalCore, HardwareSpec
from hetmap.hardware.table import CostTable
from hetmap.hardware.zigzag_backend import ZigzagCache, matmul_cost
from hetmap.inventory import Inventory


@dataclass(frozen=True)
class Row:
    """One published row: per-sample latency (s) and energy (J), FP32 and all-analog."""

    fp32_latency_s: float
    fp32_energy_j: float
    analog_latency_s: float
    analog_energy_j: float


RESNET20 = Row(2.30e-3, 232.8e-6, 0.95e-3, 76.2e-6)  # REFERENCE.md, ResNet20 row
SIMBA_PJ_PER_MAC = 0.22  # Zimmer et al. 2019/2020, 16 nm: 0.11 pJ/op, 2 ops per MAC
REFERENCE_GEMM = (256, 512, 512)  # (M, K, N): fills a 64x64 INT8 array (99% utilisation)


def digital_pj_per_mac(core: DigitalCore, precision: str = "int8",
                       cache_dir: str | os.PathLike[str] | None = None,
                       lpf_limit: int = 4) -> float:
    """Energy per MAC (pJ) of `core` on `REFERENCE_GEMM`: MACs, registers and SRAM traffic as
    ZigZag counts them, weights resident."""
    m, k, n = REFERENCE_GEMM
    cost = matmul_cost(core, precision, m, k, n, ZigzagCache(cache_dir), lpf_limit)
    return cost.energy_j * 1e12 / (m * k * n)


def digital_energy_factor(core: DigitalCore, target_pj_per_mac: float = SIMBA_PJ_PER_MAC,
                          cache_dir: str | os.PathLike[str] | None = None) -> float:
    """The factor on every on-chip digital energy of `core` (MACs, registers, SRAM, vector
    ops) that makes its INT8 energy per MAC on `REFERENCE_GEMM` equal `target_pj_per_mac`.
    Exact in one step: ZigZag's energy is linear in those constants, and its mapping is
    chosen for latency."""
    return target_pj_per_mac / digital_pj_per_mac(core, "int8", cache_dir)


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
    core = hw.digital[0]
    factor = digital_energy_factor(core, cache_dir=args.cache_dir)
    print(f"digital INT8 energy per MAC on a {REFERENCE_GEMM} GEMM: "
          f"{digital_pj_per_mac(core, 'int8', args.cache_dir):.4f} pJ (Simba, 16 nm: "
          f"{SIMBA_PJ_PER_MAC}); factor to it {factor:.4f}")
    for label, b, p, t in zip(("FP32 latency", "FP32 energy", "analog latency",
                               "analog energy"), vars(before).values(),
                              vars(result.predicted).values(), vars(RESNET20).values(),
                              strict=True):
        print(f"  {label:<15} shipped preset {b:.4g}  fitted {p:.4g}  target {t:.4g}")


if __name__ == "__main__":
    main()
