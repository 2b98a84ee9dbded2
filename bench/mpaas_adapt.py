"""MPAAS adaptation on the paper's models: tiles, tile utilisation, parameters, and the
all-analog latency/energy of the hardware model, before and after `hetmap.adaptation.adapt`.

Reference (authors, REFERENCE.md section 1): utilisation ResNet8 3.5% -> 28.1%, ResNet20
9.2% -> 15.0%, BERT-base 62% -> 67%; parameters ResNet8 0.075M -> 0.205M, ResNet20 0.26M ->
0.86M, BERT-base 110M -> 111.5M; "without increasing energy consumption or latency".
Random weights (function preservation does not depend on them); the max |diff| column is
the largest output change of the adapted model on the example input, eval mode.

    .venv/bin/python bench/mpaas_adapt.py [--models resnet8 resnet20 mobilenetv2 bert-base]
        [--tile 256 256] [--init zero|net2wider] [--max-factor 4] [--no-depthwise]
        [--residual] [--no-cost-limits] [--max-energy-increase F]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

import torch
from torch import nn

from hetmap.adaptation import AdaptPolicy, adapt
from hetmap.inventory import Inventory, scan

MODELS = ("resnet8", "resnet20", "mobilenetv2", "bert-small", "bert-base")


def build(name: str, seq: int) -> tuple[nn.Module, Any]:
    if name.startswith("resnet"):
        from hetmap.models import resnet_cifar

        return resnet_cifar(int(name[6:])).eval(), torch.randn(1, 3, 32, 32)
    if name == "mobilenetv2":
        from hetmap.models import mobilenetv2_cifar

        return mobilenetv2_cifar().eval(), torch.randn(1, 3, 32, 32)
    from transformers import BertConfig, BertModel

    config = BertConfig() if name == "bert-base" else BertConfig(
        hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024)
    ids = torch.randint(0, config.vocab_size, (1, seq))
    return BertModel(config).eval(), {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def hermes(tile: tuple[int, int]) -> Any:
    """hermes-pcm with `tile`-sized crossbars (per-row/column/device energies unchanged)."""
    from hetmap.hardware import load_hardware

    hw = load_hardware("hermes-pcm")
    if hw.analog.tile != tile:
        hw = hw.model_copy(update={"analog": hw.analog.model_copy(
            update={"tile_rows": tile[0], "tile_cols": tile[1]})})
    return hw


def analog_costs(before: Inventory, after: Inventory, hw: Any) -> tuple[Any, Any]:
    """All-analog latency/energy on `hw` (scaled to enough tiles), without weight
    replication: the chip is sized to the larger model, so only the smaller one would get
    free tiles for copies, and before/after would not compare like for like."""
    from hetmap.hardware import CostTable

    need = max(before.total_tiles, after.total_tiles)
    hw = hw.model_copy(update={"analog": hw.analog.model_copy(update={
        "n_tiles": max(need, hw.analog.n_tiles), "replicate": False})})
    with tempfile.TemporaryDirectory() as cache:
        return tuple(CostTable.build(inv, {n: ("analog",) for n in inv.names}, hw, cache)
                     .uniform("analog") for inv in (before, after))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--tile", nargs=2, type=int, default=[256, 256])
    parser.add_argument("--init", default="zero", choices=["zero", "net2wider"])
    parser.add_argument("--max-factor", type=float, default=4.0)
    parser.add_argument("--seq", type=int, default=32)
    parser.add_argument("--residual", action="store_true",
                        help="also widen residual streams (all writers and readers at once)")
    parser.add_argument("--no-depthwise", action="store_true",
                        help="leave groups with a depthwise conv inside unwidened")
    parser.add_argument("--no-cost-limits", action="store_true",
                        help="widen to fill tiles without consulting the hardware model "
                             "(by default a group's all-analog latency may not rise)")
    parser.add_argument("--max-energy-increase", type=float, default=None,
                        help="also cap each group's all-analog energy rise (fraction)")
    parser.add_argument("--table", action="store_true", help="print each model's group table")
    args = parser.parse_args()
    tile = (args.tile[0], args.tile[1])
    policy = AdaptPolicy(init=args.init, max_factor=args.max_factor,
                         depthwise=not args.no_depthwise, residual=args.residual,
                         max_energy_increase=args.max_energy_increase)
    hw = hermes(tile)
    hardware = None if args.no_cost_limits else hw
    torch.manual_seed(0)
    print(f"tile {tile[0]}x{tile[1]}, init {args.init}, max factor {args.max_factor}, "
          f"depthwise groups {'off' if args.no_depthwise else 'on'}, residual streams "
          f"{'on' if args.residual else 'off'}, cost limits "
          f"{'off' if hardware is None else f'hermes-pcm ({tile[0]}x{tile[1]} tiles), latency +0%'}"
          + (f", energy +{args.max_energy_increase:.0%}"
             if hardware and args.max_energy_increase is not None else ""))
    head = (f"{'model':<12} {'tiles':>9} {'utilisation':>15} {'params (M)':>16} "
            f"{'groups':>7} {'max |diff|':>10} {'adapt s':>8}  all-analog latency / energy")
    print(head)
    print("-" * len(head))
    for name in args.models:
        model, x = build(name, args.seq)
        start = time.perf_counter()
        adapted, report = adapt(model, x, tile, policy, hardware=hardware)
        seconds = time.perf_counter() - start
        line = (f"{name:<12} {f'{report.tiles_before}->{report.tiles_after}':>9} "
                f"{f'{report.util_before:.1%}->{report.util_after:.1%}':>15} "
                f"{f'{report.params_before / 1e6:.3f}->{report.params_after / 1e6:.3f}':>16} "
                f"{f'{len(report.widened)}/{len(report.groups)}':>7} "
                f"{report.max_abs_diff:>10.1e} {seconds:>8.1f}")
        b, a = analog_costs(scan(model, x, tile), scan(adapted, x, tile), hw)
        line += (f"  {b.latency_s * 1e6:.2f}->{a.latency_s * 1e6:.2f} us "
                     f"(x{a.latency_s / b.latency_s:.3f}) / {b.energy_j * 1e6:.2f}->"
                     f"{a.energy_j * 1e6:.2f} uJ (x{a.energy_j / b.energy_j:.3f})")
        print(line, flush=True)
        if args.table:
            print(report)


if __name__ == "__main__":
    main()
