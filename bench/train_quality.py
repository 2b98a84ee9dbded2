"""The quality numbers of supernet training on real data (sklearn digits or MNIST 5k).

1. pretrain the task's small CNN (the "original model");
2. score the original converted straight to analog (all-analog path, no hardware-aware
   training), then run stages 1-3 and score the all-fp32 and all-analog paths again;
3. print Kendall tau between preference log-probability and Pareto rank on 64 fresh
   mappings before and after stage 3.

Every accuracy is on the held-out test split, after the same BN recalibration on 4 training
batches that the Evaluator uses. Analog paths are scored twice: in eval mode (DAC/ADC
quantization, clipping and input ranges at target; no noise draws) and with the training-time
output and weight noise injected (mean of 3 draws), closer to a noisy chip.

Usage: .venv/bin/python bench/train_quality.py [--task mnist|digits] [--run-dir DIR]
Targets: fp32 path within 1 point of the original; all-analog clearly above the straight
conversion; tau after stage 3 >= 0.5 and above tau before.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from hetmap.evaluation import Evaluator
from hetmap.mapping import Mapping
from hetmap.supernet import Supernet, build_supernet
from hetmap.tasks import final_scoring, get_task
from hetmap.training import make_config, pretrain, train_supernet
from hetmap.training.stages import fp32_mapping


@torch.no_grad()
def noisy_metric(sn: Supernet, task: Any, mapping: Mapping, draws: int = 3) -> float:
    """Test accuracy with the candidates' training-time noise on, BN recalibrated on the
    same 4 training batches as the Evaluator and then frozen; the supernet is restored."""
    saved = copy.deepcopy(sn.state_dict())
    bns = [m for m in sn.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    loaders = task.loaders(256, 0)
    sn.use(mapping).eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    for (x, _), _ in zip(loaders.train, range(4)):
        sn(x)
    scores = []
    try:
        for d in range(draws):
            torch.manual_seed(1000 + d)
            sn.train()
            for m in bns:
                m.eval()
            correct = total = 0
            for x, y in loaders.test:
                correct += int((sn(x).argmax(1) == y).sum())
                total += len(y)
            scores.append(100.0 * correct / total)
    finally:
        sn.load_state_dict(saved)
        for m in bns:
            m.momentum = 0.1
        sn.eval()
    return float(np.mean(scores))


def scores(sn: Supernet, task: Any) -> dict[str, float]:
    """Test-split scores: this bench selects nothing, so it opens the test split."""
    ev = Evaluator(sn, task, objectives=("accuracy",), split="test")
    fp32, analog = fp32_mapping(sn), Mapping.uniform(sn, "analog")
    with final_scoring("train_quality bench"):
        return {"fp32": ev.accuracy(fp32), "analog": ev.accuracy(analog),
                "analog_noisy": noisy_metric(sn, task, analog)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", default="mnist")
    parser.add_argument("--pretrain-epochs", type=int, default=None)
    parser.add_argument("--stage1-epochs", type=int, default=2)
    parser.add_argument("--stage2-epochs", type=int, default=4)
    parser.add_argument("--stage3-steps", type=int, default=100)
    parser.add_argument("--run-dir", default=None)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (small models run fastest on one)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    task = get_task(args.task)
    start = time.perf_counter()
    model, pre = pretrain(task, epochs=args.pretrain_epochs, progress=False, seed=0)
    example = task.example_input(8)

    straight = build_supernet(model, example)
    straight.set_noise_scale(1.0)
    before = scores(straight, task)

    sn = build_supernet(model, example)
    cfg = make_config(stage1={"epochs": args.stage1_epochs},
                      stage2={"epochs": args.stage2_epochs},
                      stage3={"steps": args.stage3_steps}, progress=True)
    run_dir = args.run_dir or tempfile.mkdtemp(prefix="hetmap-train-quality-")
    result = train_supernet(sn, task, cfg, run_dir=run_dir)
    after = scores(sn, task)
    m = result.metrics
    print(f"\n{args.task}: small CNN, test split, {time.perf_counter() - start:.0f} s total, "
          f"run dir {run_dir}")
    print(f"  original model (fp32)                       {before['fp32']:6.2f}%  "
          f"(pretrain reported {pre.test:.2f}%)")
    print(f"  after stages 1-2, all-fp32 path             {after['fp32']:6.2f}%  "
          f"(diff {after['fp32'] - before['fp32']:+.2f}; target within 1 point)")
    print(f"  original straight to analog, eval mode      {before['analog']:6.2f}%")
    print(f"  after stages 1-2, all-analog, eval mode     {after['analog']:6.2f}%  "
          f"({after['analog'] - before['analog']:+.2f})")
    print(f"  original straight to analog, noise on       {before['analog_noisy']:6.2f}%")
    print(f"  after stages 1-2, all-analog, noise on      {after['analog_noisy']:6.2f}%  "
          f"({after['analog_noisy'] - before['analog_noisy']:+.2f})")
    print(f"  Kendall tau (log-prob, -Pareto rank), 64 fresh mappings: before stage 3 "
          f"{_or_nan(m.tau_before):.3f}, after {_or_nan(m.tau_after):.3f}"
          "  (target >= 0.5 and higher)")


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value


if __name__ == "__main__":
    main()
