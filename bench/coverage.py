"""Coverage of the architectures of issue 19, one row each (small configs, CPU, no download).

    PYTHONPATH=src python bench/coverage.py [names...]

Columns: hetmap's `Inventory.total_macs` per inference and FlopCounterMode's FLOPs / 2 (the
baseline, measured in the same run on the same forward), their ratio; the share of MACs that
mappable layers perform; the max |output diff| of the supernet's all-fp32 path against the
model; whether one all-analog training step sends gradient to every mappable layer's weight
(batch 1 and the example batch); MPAAS (`adapt`, 512x512 tiles) widened groups / examined
groups and the max |output diff| of the adapted model.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.coverage_models

from tests.coverage_models import ARCHITECTURES, reference_macs

from hetmap import Mapping, adapt, build_supernet, scan
from hetmap.candidates.analog import AnalogConfig
from hetmap.inputs import call_model, output_tensors

EAGER = AnalogConfig(fuse=False)


def _max_diff(a: Any, b: Any) -> float:
    xs, ys = output_tensors(a), output_tensors(b)
    if len(xs) != len(ys) or any(x.shape != y.shape for x, y in zip(xs, ys)):
        return math.inf
    return max((float((x.float() - y.float()).abs().max()) for x, y in zip(xs, ys)
                if x.numel() and x.is_floating_point()), default=0.0)


def _first_row(example: Any) -> Any:
    if isinstance(example, torch.Tensor):
        return example[:1]
    return {k: v[:1] for k, v in example.items()}


def _analog_step_reaches_all(model: torch.nn.Module, x: Any) -> bool:
    sn = build_supernet(model, x, candidates=("fp32", "analog"), analog=EAGER)
    sn.use(Mapping.uniform(sn, "analog")).train()
    out = output_tensors(call_model(sn, x))
    sum(t.float().pow(2).mean() for t in out if t.is_floating_point()).backward()
    return all(layer.weight.grad is not None and bool(layer.weight.grad.abs().sum() > 0)
               for _, layer in sn.choice_layers())


def row(name: str) -> dict[str, Any]:
    model, x = ARCHITECTURES[name]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inv = scan(model, x)
        ref = reference_macs(model, x)
        with torch.no_grad():
            expected = call_model(model, x)
            sn = build_supernet(model, x, candidates=("fp32", "analog"), analog=EAGER)
            sn.use(Mapping.uniform(sn, "fp32")).eval()
            fp32_diff = _max_diff(expected, call_model(sn, x))
        reaches = {1: _analog_step_reaches_all(model, _first_row(x)),
                   2: _analog_step_reaches_all(model, x)}
        _, report = adapt(model, x, tile=(512, 512))
    return {"name": name, "total": inv.total_macs, "ref": ref, "share": inv.mappable_share,
            "fp32_diff": fp32_diff, "reaches": reaches, "widened": len(report.widened),
            "groups": len(report.groups), "adapt_diff": report.max_abs_diff,
            "unmapped": sorted({w.kind for w in inv.unmapped})}


def main(names: list[str]) -> None:
    print("| architecture | hetmap total MACs | FlopCounterMode MACs | ratio | mappable share | "
          "unmapped kinds | fp32 path max diff | analog step reaches every layer (b=1 / b=2) "
          "| MPAAS widened / groups | MPAAS max diff |")
    print("|" + "---|" * 10)
    for name in names:
        start = time.perf_counter()
        r = row(name)
        yes = {True: "yes", False: "no"}
        print(f"| {r['name']} | {r['total']:,} | {r['ref']:,} | {r['total'] / r['ref']:.4f} | "
              f"{r['share']:.1%} | {', '.join(r['unmapped']) or '-'} | {r['fp32_diff']:.1e} | "
              f"{yes[r['reaches'][1]]} / {yes[r['reaches'][2]]} | "
              f"{r['widened']} / {r['groups']} | {r['adapt_diff']:.1e} |", flush=True)
        print(f"<!-- {name}: {time.perf_counter() - start:.0f} s -->", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:] or list(ARCHITECTURES))
