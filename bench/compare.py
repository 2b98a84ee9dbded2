"""Competing mappers on the same footing (hetmap.compare): anchors (uniform references),
random, mps (hetmap: stage 3 + search), lionheart (Lammie et al., as published), odimo
(Risso et al.), nsga2 and harmonica (Behnam et al.: every layer analog with its sensitive
rows digital, a sweep of the digital share), every one starting from the same pretrained
model and the same stage-1/2 trained supernet, over several seeds; selection on validation,
every figure reported on the test split. Prints one table, mean ± std over seeds per method:
best test accuracy at 0 s and 1 day after programming, hypervolume (test; validation as searched),
evaluations, training and evaluation compute (sample-passes), wall and CPU time; writes
compare.md/csv and compare.png (hypervolume versus compute for every method).

Usage: .venv/bin/python bench/compare.py [--task mnist] [--model resnet8] [--seeds 3]
       [--methods anchors,mps,harmonica]
The pretrained model is cached under --out. Budgets are the same small ones for every
method family (see --help and docs/compare.md); timings on a shared machine are noisy, CPU
time is the steadier one.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from hetmap.compare import METHODS, compare
from hetmap.tasks import get_task, load_checkpoint
from hetmap.training import make_config, pretrain


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="mnist")
    p.add_argument("--model", default="resnet8")
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--hardware", default="hermes-pcm")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--pretrain-epochs", type=int, default=4)
    p.add_argument("--budget", type=int, default=24,
                   help="evaluations for random/mps/nsga2 (mps: plus its stage 3)")
    p.add_argument("--stage-steps", type=int, default=20, help="shared stage 1 and 2 steps")
    p.add_argument("--stage3-steps", type=int, default=4, help="mps's stage-3 steps")
    p.add_argument("--train-steps", type=int, default=10,
                   help="training batches per conversion round / mixture phase")
    p.add_argument("--repeats", type=int, default=5, help="drift programmings per member")
    p.add_argument("--drift-members", type=int, default=2)
    p.add_argument("--drift-batches", type=int, default=None,
                   help="test batches per drift score (default: the whole test split)")
    p.add_argument("--lh-repeats", type=int, default=10, help="LionHeart's drift repeats")
    p.add_argument("--lh-batches", type=int, default=None,
                   help="validation batches per LionHeart score (default: all)")
    p.add_argument("--lh-rounds", type=int, default=2,
                   help="LionHeart's cap on training rounds per conversion")
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma-separated methods (default: {','.join(METHODS)})")
    p.add_argument("--anchors", action="store_true",
                   help="give uniform anchors to every population method (default: none)")
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
    common = {"batch_size": 64, "train_batches": 16}
    options = {
        "anchors": {"train_steps": 2 * steps, **common},
        "mps": {"pop_size": 8},
        "random": {"pop_size": 8},
        "lionheart": {"thresholds": (1.0, 5.0), "round_steps": steps, "patience": 1,
                      "max_rounds": args.lh_rounds, "repeats": args.lh_repeats,
                      "drift_batches": args.lh_batches, **common},
        "odimo": {"lambdas": (0.0, 0.5, 4.0), "warmup_steps": steps, "steps": 2 * steps,
                  "finetune_steps": steps // 2, **common},
        "nsga2": {"pop_size": 6, "finetune_steps": 2, **common},
        "harmonica": {"batch_size": 64, "train_batches": 1},  # no retraining
    }
    budgets = {"anchors": 8, "mps": args.budget, "random": args.budget,
               "lionheart": 40, "odimo": 8, "nsga2": args.budget, "harmonica": 5}
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    n = args.stage_steps

    def train_config(seed: int):
        return make_config(seed=seed, batch_size=64, progress=False, eval_each_epoch=False,
                           stage1={"epochs": 1, "max_steps": n},
                           stage2={"epochs": 1, "max_steps": n})

    print(f"budgets (evaluations): {budgets}; options: {options}; shared stage 1/2: {n} "
          f"steps each; mps stage 3: {args.stage3_steps} steps x 8 mappings; drift: "
          f"{args.repeats} programmings x {args.drift_members} members per method; "
          f"anchors: {'every population method' if args.anchors else 'none'}", flush=True)
    start = time.perf_counter()
    result = compare(task, model, args.hardware, methods, budgets=budgets, options=options,
                     train_config=train_config,
                     stage3={"steps": args.stage3_steps, "n_mappings": 8},
                     anchors=args.anchors, drift_repeats=args.repeats,
                     drift_batches=args.drift_batches, drift_members=args.drift_members,
                     seeds=args.seeds, out=out, batch_size=128, bn_batches=2,
                     val_batches=None, log=lambda s: print(s, flush=True))
    print(f"\n{result.to_markdown()}")
    for other, r in result.ratios().items():
        print(f"mps vs {other}: test hypervolume ratio {r.hv:.3f}, CPU-time ratio "
              f"{other}/mps {r.cpu_speedup:.2f}x")
    print(f"\ntotal {time.perf_counter() - start:.0f} s; results in {out}/ (compare.png: "
          "hypervolume vs compute)")


if __name__ == "__main__":
    main()
