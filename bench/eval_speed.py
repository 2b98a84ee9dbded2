"""Accuracy evaluations per second on ResNet-20 (MNIST 5k, validation split): the naive loop
(`Evaluator(sharing=False)`: one BN recalibration and one scoring pass per mapping) against
hetmap's shared scoring (`Evaluator()`, hetmap.evaluation.shared), on the same mappings,
both measured in this run, with the largest accuracy difference between them. Ratios: wall
time and this process's CPU time (steadier on a shared machine), and the graph nodes one
scoring pass runs (naive / shared; every node counted once, whatever it costs).

Usage: .venv/bin/python bench/eval_speed.py [--mappings 12] [--pretrain-steps 60]

Mapping sets: `random` (uniform over fp32/int8/int4/analog per layer: few shared prefixes),
`neighbours` (one base mapping and single-layer changes of it at random layers, as a local
search or a mutation step asks for) and `tail` (changes confined to the last third of the
layers, e.g. a search refining the classifier end). The supernet is a short fp32
pretraining wrapped with the four candidates (no supernet training: the speed and the
equality do not depend on it; the accuracies are those of this short training).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from hetmap import Mapping, build_supernet
from hetmap.evaluation import Evaluator
from hetmap.tasks import get_task
from hetmap.tasks.checkpoints import load_checkpoint
from hetmap.training import pretrain

CANDIDATES = ("fp32", "int8", "int4", "analog")


def supernet(args: argparse.Namespace):
    task = get_task("mnist", model="resnet20")
    torch.manual_seed(0)
    model = task.build_model()
    ckpt = args.cache / f"resnet20-pretrained-{args.pretrain_steps}.safetensors"
    if ckpt.exists():
        load_checkpoint(model, ckpt)
    else:
        model, _ = pretrain(task, model, epochs=1, max_steps=args.pretrain_steps, out=ckpt,
                            progress=False)
    return build_supernet(model.eval(), task.example_input(64), candidates=CANDIDATES), task


def mapping_sets(sn, n: int, seed: int) -> dict[str, list[Mapping]]:
    g = torch.Generator().manual_seed(seed)
    names = sn.layer_names

    def changed(base: Mapping, layers: range) -> Mapping:
        layer = names[layers[int(torch.randint(len(layers), (1,), generator=g))]]
        others = [c for c in sn.candidates(layer) if c != base[layer]]
        pick = others[int(torch.randint(len(others), (1,), generator=g))]
        return Mapping({**base, layer: pick}, sn.fingerprint)

    def around(base: Mapping, layers: range) -> list[Mapping]:
        out = [base]
        while len(out) < n:
            m = changed(base, layers)
            if m not in out:
                out.append(m)
        return out

    base = sn.sample(g)
    return {"random": [sn.sample(g) for _ in range(n)],
            "neighbours": around(base, range(len(names))),
            "tail": around(base, range(2 * len(names) // 3, len(names)))}


def timed(ev: Evaluator, mappings: list[Mapping]) -> tuple[float, float, list[float]]:
    """Wall and process CPU seconds of scoring `mappings`, and their accuracies."""
    wall, cpu = time.perf_counter(), time.process_time()
    acc = ev.accuracies(mappings)
    return time.perf_counter() - wall, time.process_time() - cpu, acc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mappings", type=int, default=12)
    p.add_argument("--pretrain-steps", type=int, default=60)
    p.add_argument("--group-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", type=Path, default=Path("runs/bench_eval_speed"))
    args = p.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    sn, task = supernet(args)
    make = {"naive": lambda: Evaluator(sn, task, sharing=False),
            "shared": lambda: Evaluator(sn, task, group_size=args.group_size)}
    warm = Mapping.uniform(sn, "analog")
    for build in make.values():  # kernels, native builds and the data, outside the timings
        build().accuracies([warm, Mapping.uniform(sn, "int4")])
    ev = make["shared"]()
    print(f"ResNet-20, MNIST 5k val ({len(ev._batches()[1])} batches of {ev.batch_size}), "
          f"BN recalibration on {ev.bn_batches} train batches, {len(sn.layer_names)} layers, "
          f"candidates {', '.join(CANDIDATES)}; group_size {args.group_size}")
    print(f"{'mappings':<12}{'n':>4}{'naive eval/s':>14}{'shared eval/s':>15}{'ratio':>8}"
          f"{'cpu ratio':>10}{'max |dacc|':>12}{'acc range':>14}{'node runs saved':>17}")
    for label, ms in mapping_sets(sn, args.mappings, args.seed).items():
        order = ("naive", "shared") if label != "neighbours" else ("shared", "naive")
        seconds, cpu, accs = {}, {}, {}
        for name in order:  # alternate which runs first, so load drifts do not favour one
            seconds[name], cpu[name], accs[name] = timed(make[name](), ms)
        diff = max(abs(a - b) for a, b in zip(accs["naive"], accs["shared"]))
        shared = ev.shared_paths()
        assert shared is not None
        before = (shared.computed, shared.naive_computed)
        shared.outputs(ms, [ev._batches()[1][0][0]], {})  # node runs of one shared pass
        work = (shared.naive_computed - before[1]) / (shared.computed - before[0])
        rate = {k: len(ms) / s for k, s in seconds.items()}
        print(f"{label:<12}{len(ms):>4}{rate['naive']:>14.3f}{rate['shared']:>15.3f}"
              f"{rate['shared'] / rate['naive']:>7.2f}x{cpu['naive'] / cpu['shared']:>9.2f}x"
              f"{diff:>12.2g}{min(accs['naive']):>9.1f}-{max(accs['naive']):.1f}"
              f"{work:>16.2f}x")


if __name__ == "__main__":
    main()
