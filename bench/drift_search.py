"""A front searched on `accuracy` against one searched on `accuracy@1d`, same trained
supernet, same budget, both re-scored by aihwkit one day after programming on the test split.

Both searches run the same strategy and seed on validation, objectives (accuracy or
accuracy@1d, analog_mac_ratio), with the same Evaluator settings. Every member of each front
is then deployed and measured by aihwkit (`evaluate_drift`, test split, `--repeats`
programming draws) inside `final_scoring()`. Printed per front: the members (analog MACs,
the search's score, aihwkit's 1-day test accuracy), the hypervolume of (aihwkit 1-day test
accuracy, analog MAC share) in one common box for both fronts (accuracy from chance to 100 %,
analog MACs from 0 to 1), and the best aihwkit 1-day accuracy among members with >= 70 %
analog MACs. Whichever way it falls.

Usage: .venv/bin/python bench/drift_search.py [--model resnet8] [--budget 32] [--draws 5]
           [--repeats 5] [--val-batches 2]
Uses the supernet cached by bench/drift_surrogate.py (trained there if missing).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from drift_surrogate import add_training_args, trained_supernet
from hetmap.evaluation import Evaluator, evaluate_drift, hypervolume
from hetmap.search import search
from hetmap.tasks import final_scoring

DAY = 86400.0
ANALOG_SHARE = 0.7


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="resnet8")
    parser.add_argument("--strategy", default="mps")
    parser.add_argument("--budget", type=int, default=32)
    parser.add_argument("--draws", type=int, default=5, help="PCM draws of accuracy@1d")
    parser.add_argument("--repeats", type=int, default=5, help="aihwkit programming draws")
    parser.add_argument("--val-batches", type=int, default=None,
                        help="validation batches of 256 the searches score (default: all)")
    parser.add_argument("--test-batches", type=int, default=None,
                        help="test batches of 256 aihwkit scores (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pop-size", type=int, default=8)
    add_training_args(parser)
    args = parser.parse_args()
    sn, task = trained_supernet(args.model, args)
    fronts = {}
    for objective in ("accuracy", "accuracy@1d"):
        ev = Evaluator(sn, task, objectives=(objective, "analog_mac_ratio"), split="val",
                       draws=args.draws, seed=args.seed, val_batches=args.val_batches)
        start = time.perf_counter()
        fronts[objective] = search(sn, ev, args.strategy, budget=args.budget, seed=args.seed,
                                   pop_size=args.pop_size)
        print(f"searched on {objective}: {args.budget} mappings, "
              f"{len(fronts[objective])} on the front, {time.perf_counter() - start:.0f} s",
              flush=True)
    n_test = "all" if args.test_batches is None else f"first {args.test_batches * 256}"
    chance = 100.0 / 10  # MNIST: ten classes
    ideal, ref = np.array([-100.0, -1.0]), np.array([-chance, 0.0])
    print(f"{args.model} / MNIST 5k, strategy {args.strategy}, budget {args.budget} each, "
          f"accuracy@1d over {args.draws} PCM draws (validation); re-scored by aihwkit at 1 d "
          f"on the test split ({n_test} images), {args.repeats} programming draws per "
          "member")
    with final_scoring("bench: fronts re-scored by aihwkit"):
        for objective, front in fronts.items():
            rows = []
            for member in sorted(front, key=lambda m: m.scores["analog_mac_ratio"]):
                r = evaluate_drift(sn, member.mapping, task, times=(DAY,),
                                   repeats=args.repeats, seed=args.seed, split="test",
                                   max_batches=args.test_batches)
                rows.append((member.scores["analog_mac_ratio"], member.scores[objective],
                             r.mean[0], r.std[0]))
            print(f"front searched on {objective}:")
            for share, searched, day, std in rows:
                print(f"  analog MACs {share:.2f}  searched {objective} {searched:6.2f}  "
                      f"aihwkit test @1d {day:6.2f} +- {std:5.2f}")
            F = np.array([[-day, -share] for share, _, day, _ in rows]).reshape(-1, 2)
            hv = hypervolume(F, ref, ideal) if len(rows) else 0.0
            analog = [day for share, _, day, _ in rows if share >= ANALOG_SHARE]
            best = f"{max(analog):.2f} %" if analog else "none (no member >= 70 % analog)"
            print(f"  hypervolume at 1 d (aihwkit, test; accuracy {chance:g}-100 %, analog "
                  f"MACs 0-1) = {hv:.4f}")
            print(f"  best aihwkit 1-day test accuracy at >= 70 % analog MACs = {best}",
                  flush=True)


if __name__ == "__main__":
    main()
