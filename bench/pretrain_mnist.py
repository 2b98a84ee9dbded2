"""Full-precision pretraining on the embedded data sets, as `hetmap pretrain` runs it:
MNIST 5k with the small CNN and ResNet-8 (target >= 97% test accuracy) and the multi-digit
segmentation set with the FCN (mIoU printed). Wall time of each run is printed.

    .venv/bin/python bench/pretrain_mnist.py [--threads 1] [--out DIR] [--only mnist-small]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from hetmap.tasks import get_task
from hetmap.training import pretrain

RUNS = {  # name: (task, task options, pretrain options, target on the test split)
    "mnist-small": ("mnist", {"model": "small_cnn"}, {}, 97.0),
    "mnist-resnet8": ("mnist", {"model": "resnet8"}, {"lr": 0.1}, 97.0),
    "mnist-seg-fcn": ("mnist-seg", {}, {}, None),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (1 is fastest on a busy machine)")
    ap.add_argument("--out", type=Path, default=None, help="folder for .safetensors files")
    ap.add_argument("--only", choices=sorted(RUNS), action="append")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    failed = []
    for name in args.only or RUNS:
        task_name, task_kw, train_kw, target = RUNS[name]
        t0 = time.perf_counter()
        task = get_task(task_name, **task_kw)
        load_s = time.perf_counter() - t0
        params = sum(p.numel() for p in task.build_model().parameters())
        out = args.out / f"{name}.safetensors" if args.out else None
        _, m = pretrain(task, seed=args.seed, out=out, progress=False, **train_kw)
        verdict = "" if target is None else (" PASS" if m.test >= target else " FAIL")
        print(f"{name}: {params / 1e3:.1f}k params, data {load_s:.1f} s, train+eval "
              f"{m.wall_s:.1f} s ({m.steps} steps), val {m.val:.2f}%, "
              f"test {task.metric_name} {m.test:.2f}%"
              + (f" (target >= {target}%){verdict}" if target else ""))
        if verdict == " FAIL":
            failed.append(name)
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
