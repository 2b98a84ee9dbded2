"""Front quality of the `mps` strategy against `random` at equal evaluation budgets, on
MNIST 5k with a small ResNet, after full three-stage supernet training (stage 3 learns the
preferences mps samples from); then drift-aware accuracy of all-analog vs a mixed mapping.

Usage: .venv/bin/python bench/search_quality.py [--budget 64] [--seeds 2] [--model resnet8]
Cached under runs/bench_search_quality (pretrained model, trained supernet).
Claims checked: mps hypervolume > random's at the same budget; mps reaches random's final
hypervolume within half the evaluations; all-analog accuracy falls from 1 s to 1 year more
than a mixed mapping's.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from hetmap import Mapping, build_supernet
from hetmap.evaluation import Evaluator, evaluate_drift
from hetmap.io import atomic_torch_save
from hetmap.search import ParetoFront, search
from hetmap.tasks import get_task, load_checkpoint
from hetmap.training import make_config, pretrain, train_supernet

CANDIDATES = ("fp32", "int8", "int4", "analog")


def trained_supernet(args: argparse.Namespace, task, cache: Path):
    torch.manual_seed(0)
    model = task.build_model()
    ckpt = cache / f"{args.model}-pretrained.safetensors"
    if ckpt.exists():
        load_checkpoint(model, ckpt)
    else:
        model, _ = pretrain(task, model, epochs=args.pretrain_epochs, out=ckpt,
                           progress=False)
    model.eval()
    sn = build_supernet(model, task.example_input(64), candidates=CANDIDATES)
    state = cache / f"{args.model}-supernet-s{args.stage_steps}.pt"
    if state.exists():
        sn.load_state_dict(torch.load(state, weights_only=True))
        print(f"loaded trained supernet {state}")
        return sn
    cfg = make_config(
        batch_size=64, progress=False,
        stage1={"epochs": 1, "max_steps": args.stage_steps, "lr": 0.01},
        stage2={"epochs": 1, "max_steps": args.stage_steps, "lr": 0.01},
        stage3={"steps": args.pref_steps, "n_mappings": 12, "tau_mappings": 0,
                "bn_batches": 1, "val_batches": 2, "eval_batch_size": 128})
    start = time.perf_counter()
    result = train_supernet(sn, task, cfg)
    trained = {k: round(v, 3) for k, v in result.metrics.to_dict().items()}
    print(f"trained supernet in {time.perf_counter() - start:.0f} s: {trained}")
    atomic_torch_save(state, sn.state_dict())
    return sn


def curve(front: ParetoFront, at: list[int]) -> list[float]:
    """Hypervolume after each of `at` evaluations (step function of the history)."""
    out = []
    for n in at:
        hv = [h for e, h, _ in front.history if e <= n]
        out.append(hv[-1] if hv else 0.0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="resnet8")
    parser.add_argument("--budget", type=int, default=64)
    parser.add_argument("--pop", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--pretrain-epochs", type=int, default=3)
    parser.add_argument("--stage-steps", type=int, default=60)
    parser.add_argument("--pref-steps", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=3, help="drift repeats")
    parser.add_argument("--cache", default="runs/bench_search_quality")
    args = parser.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    task = get_task("mnist", model=args.model)
    sn = trained_supernet(args, task, cache)
    prefs = sn.preferences()
    print("learned preferences (argmax per layer):",
          {n: max(p, key=p.get) for n, p in list(prefs.items())[:6]}, "...")

    def evaluator() -> Evaluator:
        ev = Evaluator(sn, task, bn_batches=2, val_batches=2, batch_size=128, seed=0)
        fp32 = ev.accuracy(Mapping.uniform(sn, "fp32"))
        # accuracy normalised over the 20 points below fp32 (hypervolume resolution)
        ev.accuracy_range = (fp32 - 20.0, 100.0)
        return ev

    at = list(range(args.pop, args.budget + 1, args.pop))
    results: dict[str, list[ParetoFront]] = {"mps": [], "random": []}
    for seed in range(args.seeds):
        for strategy in ("mps", "random"):
            front = search(sn, evaluator(), strategy=strategy, budget=args.budget, seed=seed,
                           pop_size=args.pop)
            results[strategy].append(front)
            front.save(cache / f"front-{strategy}-s{seed}")
            print(f"seed {seed} {strategy:>6}: {len(front)} on front, hv "
                  f"{front.hypervolume():.4f}, {front.wall_s:.0f} s")
    print("\nhypervolume after N evaluations (mean over seeds)")
    print("N       " + " ".join(f"{n:>7d}" for n in at))
    mean = {}
    for s, fronts in results.items():
        mean[s] = np.mean([curve(f, at) for f in fronts], axis=0)
        print(f"{s:<7} " + " ".join(f"{v:7.4f}" for v in mean[s]))
    for seed in range(args.seeds):
        mps, rnd = results["mps"][seed], results["random"][seed]
        target = rnd.hypervolume()
        reach = mps.evaluations_to_reach(target)
        print(f"seed {seed}: final hv mps {mps.hypervolume():.4f} vs random {target:.4f}; "
              f"mps reaches random's final hv after {reach} of {args.budget} evaluations "
              f"({'<= half' if reach is not None and reach <= args.budget // 2 else '> half'})")

    # -- drift: all-analog vs a mixed mapping from the mps front ------------------------------
    front = results["mps"][0]
    mixed = max((m for m in front if 0.3 <= m.scores["analog_mac_ratio"] < 1.0),
                key=lambda m: m.scores["accuracy"], default=front.best("accuracy"))
    times = (1.0, 3600.0, 86400.0, 31536000.0)
    for label, mapping in (("all-analog", Mapping.uniform(sn, "analog")),
                           (f"mixed (analog MAC ratio {mixed.scores['analog_mac_ratio']:.2f})",
                            mixed.mapping)):
        start = time.perf_counter()
        res = evaluate_drift(sn, mapping, task, times=times, repeats=args.repeats, seed=0,
                             max_batches=4, batch_size=128)
        drop = res.mean[0] - res.mean[-1]
        print(f"\n{label}: drop 1 s -> 1 year {drop:.2f} points "
              f"({time.perf_counter() - start:.0f} s)\n{res}")


if __name__ == "__main__":
    main()
