"""Hardware cost model speed and headline numbers on ResNet-20 (and BERT-base) on a preset.

Prints, per model: the one-time table build (ZigZag calls, seconds), the rebuild from the
disk cache, latency/energy of all-FP32, all-FP16, all-INT8, all-analog and a mixed mapping
(first and last layers INT8, the rest analog) with ratios to FP32, over the whole traced
inference (every op, list schedule, replication and pipelining as the preset says), and
mappings costed per second vectorised vs. one `breakdown` call per mapping measured in the
same run (the issue's bar: >= 100,000 mappings/s on ResNet-20).

    .venv/bin/python bench/cost_speed.py [--models resnet20 bert-base] [--hardware mps-paper]
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import torch

from _timing import interleaved_medians
from hetmap.hardware import CostTable, HardwareSpec, MappingCost, load_hardware, trace_graph
from hetmap.hardware.graph import OpGraph
from hetmap.inventory import scan

CANDIDATES = ("fp32", "fp16", "int8", "analog")


def workload(name: str, seq: int, tile: tuple[int, int]) -> tuple[Any, OpGraph]:
    if name == "resnet20":
        from hetmap.models import resnet_cifar

        model, x = resnet_cifar(20), torch.zeros(1, 3, 32, 32)
    else:
        from transformers import BertConfig, BertForQuestionAnswering

        model = BertForQuestionAnswering(BertConfig())  # BERT-base, random weights
        x = {"input_ids": torch.zeros(1, seq, dtype=torch.long)}
    inv = scan(model, x, tile=tile)
    return inv, trace_graph(model, x, inv)


def line(label: str, cost: MappingCost, ref: MappingCost) -> str:
    fits = "" if cost.fits else f"  (needs {cost.analog_tiles} tiles > {cost.tile_budget})"
    return (f"  {label:<10} {cost.latency_s * 1e3:9.4f} ms {cost.energy_j * 1e6:11.2f} uJ   "
            f"FP32/this: latency {ref.latency_s / cost.latency_s:5.2f}x, "
            f"energy {ref.energy_j / cost.energy_j:5.2f}x{fits}")


def report(name: str, hw: HardwareSpec, args: argparse.Namespace) -> None:
    assert hw.analog is not None
    inv, graph = workload(name, args.seq, hw.analog.tile)
    offered = {n: CANDIDATES for n in inv.names}
    table = CostTable.build(inv, offered, hw, args.cache_dir, graph=graph)
    print(f"\n{name} on {hw.name}: {len(inv)} layers, {inv.total_macs / 1e6:.1f} M MACs, "
          f"{len(graph.nodes)} graph nodes {graph.summary()}, {inv.total_tiles} tiles if all "
          "analog")
    print(f"  table build: {table.build_seconds:.2f} s, {table.zigzag_calls} ZigZag calls, "
          f"{table.cache_hits} cache hits")
    again = CostTable.build(inv, offered, hw, args.cache_dir, graph=graph)
    print(f"  rebuild from cache: {again.build_seconds:.3f} s, {again.zigzag_calls} ZigZag calls")
    costs = {c: table.uniform(c, check_tiles=False) for c in CANDIDATES}
    mixed = {n: "analog" for n in inv.names}
    mixed[inv.names[0]] = mixed[inv.names[-1]] = "int8"
    costs["mixed"] = table.breakdown(mixed, check_tiles=False)
    for label, cost in costs.items():
        print(line(label, cost, costs["fp32"]))
    mixed_cost = costs["mixed"]
    print(f"  mixed: transfers {mixed_cost.transfer_energy_j * 1e6:.3f} uJ, "
          f"{mixed_cost.analog_tiles} tiles")
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(CANDIDATES), size=(args.n, len(inv)))
    k = min(50, args.n)
    one_by_one = [{n: CANDIDATES[j] for n, j in zip(inv.names, row)} for row in idx[:k]]

    def loop() -> None:
        for choices in one_by_one:
            table.breakdown(choices, check_tiles=False)

    med = interleaved_medians({"vec": lambda: table.evaluate_indices(idx, check_tiles=False),
                               "loop": loop}, repeats=5, warmup=1)
    vec, per_loop = args.n / med["vec"], k / med["loop"]
    print(f"  mappings costed per second (median of 5): {vec:,.0f} vectorised vs "
          f"{per_loop:,.0f} one by one ({vec / per_loop:.0f}x); bar 100,000/s: "
          f"{'met' if vec >= 1e5 else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet20"],
                        choices=["resnet20", "bert-base"])
    parser.add_argument("--hardware", default="hermes-pcm")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--seq", type=int, default=128)
    args = parser.parse_args()
    hw = load_hardware(args.hardware)
    for name in args.models:
        report(name, hw, args)


if __name__ == "__main__":
    main()
