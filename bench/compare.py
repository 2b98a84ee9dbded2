"""Competing mappers on the same footing: anchors (all-digital / all-analog), random, mps
(hetmap, after its staged training), lionheart, odimo and nsga2 on one task, one small
ResNet and one hardware spec; a table (Markdown and CSV) and a plot of the fronts.

Usage: .venv/bin/python bench/compare.py [--task digits] [--model resnet8] [--width 8]
Cached under runs/bench_compare (the pretrained model). Claim checked: mps reaches a
hypervolume at least LionHeart's and ODiMo's in at most 1/2.2 of their wall time; the
ratios are printed whichever way they fall. Timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from hetmap.compare import compare
from hetmap.search import Budget
from hetmap.tasks import get_task, load_checkpoint
from hetmap.training import pretrain


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--task", default="digits")
    p.add_argument("--model", default="resnet8")
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--hardware", default="hermes-pcm")
    p.add_argument("--pretrain-epochs", type=int, default=8)
    p.add_argument("--budget", type=int, default=24, help="evaluations for random/mps/nsga2")
    p.add_argument("--train-steps", type=int, default=8, help="HWA steps per conversion")
    p.add_argument("--repeats", type=int, default=2, help="drift repeats")
    p.add_argument("--drift-members", type=int, default=3)
    p.add_argument("--out", default="runs/bench_compare")
    args = p.parse_args()
    torch.set_num_threads(2)
    out = Path(args.out)
    task = get_task(args.task, model=args.model, width=args.width)
    torch.manual_seed(0)
    model = task.build_model()
    ckpt = out / f"{args.task}-{args.model}-w{args.width}.safetensors"
    if ckpt.exists():
        load_checkpoint(model, ckpt)
    else:
        model, metrics = pretrain(task, model, epochs=args.pretrain_epochs, out=ckpt,
                                  progress=False)
        print(f"pretrained: {metrics}")
    steps = args.train_steps
    common = {"batch_size": 64, "train_batches": 8}
    options = {
        "anchors": {"train_steps": 2 * steps, **common},
        "mps": {"pop_size": 8},
        "random": {"pop_size": 8},
        "lionheart": {"thresholds": (1.0, 3.0, 10.0), "train_steps": steps, "eval_every": 4,
                      "repeats": args.repeats, "drift_batches": 1, **common},
        "odimo": {"lambdas": (0.0, 0.1, 0.5, 2.0), "steps": 2 * steps,
                  "finetune_steps": steps // 2, **common},
        "nsga2": {"pop_size": 6, "finetune_steps": 2, **common},
    }
    budgets = {"anchors": 8, "mps": args.budget, "random": args.budget,
               "lionheart": Budget(evaluations=40), "odimo": 8, "nsga2": args.budget}
    start = time.perf_counter()
    result = compare(task, model, args.hardware, budgets=budgets, options=options,
                     drift_repeats=args.repeats, drift_batches=1,
                     drift_members=args.drift_members, out=out, batch_size=128,
                     bn_batches=2, val_batches=2)
    print(f"\n{result.to_markdown()}")
    for other, r in result.ratios().items():
        print(f"mps vs {other}: hypervolume ratio {r['hv']:.3f} (1 day: {r['hv_1d']:.3f}), "
              f"wall-time ratio {other}/mps {r['speedup']:.2f}x, "
              f"CPU-time ratio {r['cpu_speedup']:.2f}x "
              f"(claim: hv ratio >= 1 and wall ratio >= 2.2)")
    print(f"\ntotal {time.perf_counter() - start:.0f} s; results in {out}/")


if __name__ == "__main__":
    main()
