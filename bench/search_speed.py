"""Search speed on ResNet-20 (random init, synthetic CIFAR-sized data; speed does not depend
on the weights): evaluations per second, vectorised hardware scoring, cache hits and the
time to a front, each against a baseline measured in the same run.

Usage: .venv/bin/python bench/search_speed.py [--evals 24] [--budget 48] [--val 256]

Baselines: a straightforward evaluator (copy the supernet per mapping, recalibrate BN in
whole-model train mode through a DataLoader, score through the DataLoader, hardware
objectives one mapping at a time, no cache) and `random` search at the same budget.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved_medians
from hetmap import build_supernet
from hetmap.evaluation import Evaluator
from hetmap.models import resnet_cifar
from hetmap.search import search
from hetmap.tasks.data import Split
from hetmap.tasks.image import ImageTask


def synthetic_cifar(n_train: int, n_val: int) -> ImageTask:
    g = torch.Generator().manual_seed(0)

    def split(n: int) -> Split:
        return Split(torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8),
                     torch.randint(0, 10, (n,), generator=g))

    return ImageTask("synthetic-cifar", "classification", split(n_train), split(n_val),
                     split(64), 10, lambda: resnet_cifar(20), [0.5] * 3, [0.25] * 3)


def naive_accuracy(sn, task, mapping, batch_size: int, bn_batches: int, val_batches: int):
    """What a first implementation does: a private copy, whole-model train-mode BN pass."""
    net = copy.deepcopy(sn)
    net.use(mapping)
    loaders = task.loaders(batch_size=batch_size, seed=0)
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    net.train()
    with torch.no_grad():
        for x, _ in itertools.islice(loaders.train, bn_batches):
            net(x)
    return task.metric(net, list(itertools.islice(loaders.val, val_batches)), "cpu"), \
        net.objectives(mapping)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--evals", type=int, default=24, help="mappings timed per evaluator")
    parser.add_argument("--budget", type=int, default=48, help="search budget (evaluations)")
    parser.add_argument("--val", type=int, default=256, help="validation images")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--bn-batches", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    task = synthetic_cifar(args.batch * args.bn_batches * 2, args.val)
    sn = build_supernet(resnet_cifar(20), task.example_input(8),
                        candidates=("fp32", "int8", "analog")).eval()
    val_batches = (args.val + args.batch - 1) // args.batch
    print(f"ResNet-20 supernet: {len(sn.layer_names)} searchable layers, 3 candidates each; "
          f"val {args.val} images, BN recalibration on {args.bn_batches}x{args.batch}; "
          f"{torch.get_num_threads()} threads")

    # -- hardware objectives: vectorised gathers vs one mapping at a time -------------------
    gen = torch.Generator().manual_seed(0)
    maps = [sn.sample(gen) for _ in range(2000)]
    ev_hw = Evaluator(sn, None, objectives=("analog_mac_ratio", "digital_weight_bytes"))
    t = interleaved_medians({
        "vectorised": lambda: ev_hw.scores(maps),
        "loop": lambda: [sn.objectives(m) for m in maps[:200]],
    }, repeats=3, warmup=1)
    vec, loop = len(maps) / t["vectorised"], 200 / t["loop"]
    print(f"hardware scoring: {vec:,.0f} mappings/s vectorised vs {loop:,.0f}/s one by one "
          f"-> {vec / loop:.1f}x")

    # -- accuracy evaluations --------------------------------------------------------------
    fresh = [sn.sample(gen) for _ in range(args.evals)]
    ev = Evaluator(sn, task, bn_batches=args.bn_batches, batch_size=args.batch)
    ev.accuracies(fresh[:1])  # load data once (kept in memory, as in a search)
    start = time.perf_counter()
    ev.accuracies(fresh[1:])
    fast = (len(fresh) - 1) / (time.perf_counter() - start)
    n_naive = max(2, args.evals // 3)
    start = time.perf_counter()
    naive = [naive_accuracy(sn, task, m, args.batch, args.bn_batches, val_batches)[0]
             for m in fresh[1:1 + n_naive]]
    slow = n_naive / (time.perf_counter() - start)
    same = np.allclose(naive, [ev.cache[m] for m in fresh[1:1 + n_naive]])
    start = time.perf_counter()
    ev.scores(fresh)
    cached = len(fresh) / (time.perf_counter() - start)
    print(f"accuracy evaluations: {fast:.2f}/s hetmap Evaluator vs {slow:.2f}/s naive "
          f"-> {fast / slow:.2f}x (same accuracies: {same}); cached re-scoring "
          f"{cached:,.0f}/s")

    # -- time to a front -------------------------------------------------------------------
    for strategy in ("mps", "random"):
        ev_s = Evaluator(sn, task, bn_batches=args.bn_batches, batch_size=args.batch)
        ev_s.accuracies(fresh[:0])
        front = search(sn, ev_s, strategy=strategy, budget=args.budget, seed=0, pop_size=16)
        print(f"{strategy:>6}: front of {len(front)} mappings from {front.evaluations} "
              f"evaluations in {front.wall_s:.1f} s "
              f"({front.evaluations / front.wall_s:.2f} evaluations/s), "
              f"hypervolume {front.hypervolume():.4f}")
    print("timings are medians/means on a shared 2-core machine: noisy, compare ratios")


if __name__ == "__main__":
    main()
