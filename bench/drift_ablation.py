"""Which PCM effect parts hetmap's accuracy@1d from aihwkit's: one mapping (all-analog by
default) scored both ways with effects switched off on both sides alike.

Variants (comma-separated, '+' joins switches): noprog (programming noise scale 0),
noread (1/f read noise scale 0), nodrift (drift scale 0), nocomp (no global drift
compensation), noout (no output noise), noadc (no ADC quantization); `full` is everything
on. Per variant: eval-mode accuracy, hetmap's accuracy@1d and aihwkit's 1-day accuracy
(mean +- std over draws, and each draw), on the first --test-batches x 256 test images.

With --only-layer a,b (groups separated by ';') the named layers are analog (with the
variant's effects) and every other layer is fp32 (ideal) on both sides; --only-layer each
runs every analog-capable layer alone in turn (which layer carries the gap).

Usage: .venv/bin/python bench/drift_ablation.py [--variants full,noread+nodrift]
           [--draws 4] [--test-batches 2] [--mapping -1] [--only-layer each|a,b]
Uses the supernet cached by bench/drift_surrogate.py (trained there if missing).
"""

from __future__ import annotations

import argparse
import copy
import itertools

import numpy as np
from aihwkit.inference import PCMLikeNoiseModel

from drift_surrogate import (
    DAY,
    add_training_args,
    as_searched,
    random_mappings,
    trained_supernet,
)
from hetmap import Mapping
from hetmap.candidates.analog.pcm import PCMModel
from hetmap.evaluation import Evaluator, evaluate_drift
from hetmap.tasks import final_scoring, move_batch

SCALES = {"noprog": "prog_noise_scale", "noread": "read_noise_scale", "nodrift": "drift_scale"}
CONFIG = {"noout": ("out_noise", 0.0), "noadc": ("out_res", -1.0)}


def variant(name: str) -> tuple[dict[str, float], bool, dict[str, float]]:
    """(PCM noise scales, drift compensation on, analog config overrides) of `name`."""
    parts = set(name.split("+")) - {"full"}
    unknown = parts - set(SCALES) - set(CONFIG) - {"nocomp"}
    if unknown:
        raise SystemExit(f"unknown switches {sorted(unknown)}")
    scales = {SCALES[p]: 0.0 for p in parts if p in SCALES}
    return scales, "nocomp" not in parts, dict(CONFIG[p] for p in parts if p in CONFIG)


def only_analog(sn, names: list[str]) -> Mapping:
    """`names` analog, every other layer fp32."""
    unknown = set(names) - {n for n in sn.layer_names if "analog" in sn.candidates(n)}
    if unknown:
        raise SystemExit(f"no analog candidate in {sorted(unknown)}")
    return Mapping({n: "analog" if n in names else "fp32" for n in sn.layer_names},
                   sn.fingerprint)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="resnet8")
    parser.add_argument("--variants", default="full,noread+nodrift,noprog+noread,"
                        "noprog+nodrift,noprog+noread+nodrift")
    parser.add_argument("--draws", type=int, default=4)
    parser.add_argument("--test-batches", type=int, default=2)
    parser.add_argument("--mapping", type=int, default=-1,
                        help="index into drift_surrogate's 20 random mappings (-1: all-analog)")
    parser.add_argument("--only-layer", default="",
                        help="comma-separated layers analog, the rest fp32 (';' separates "
                             "groups run in turn); 'each': every analog-capable layer alone "
                             "in turn (overrides --mapping)")
    parser.add_argument("--seed", type=int, default=0)
    add_training_args(parser)
    args = parser.parse_args()
    sn0, task = trained_supernet(args.model, args)
    if args.only_layer == "each":
        runs = [(n, only_analog(sn0, [n])) for n in sn0.layer_names
                if "analog" in sn0.candidates(n)]
    elif args.only_layer:
        runs = [(group, only_analog(sn0, group.split(",")))
                for group in args.only_layer.split(";")]
    else:
        runs = [(f"mapping {args.mapping}", random_mappings(sn0, 20, args.seed)[args.mapping])]
    loaders = task.loaders(batch_size=256, seed=args.seed)
    bn_inputs = [move_batch(b, "cpu")[0] for b in itertools.islice(loaders.train, 4)]
    print(f"{args.model}, {args.draws} draws a side, 1 day, test split "
          f"(first {args.test_batches * 256} images)")
    for (label, mapping), name in itertools.product(runs, args.variants.split(",")):
        scales, comp, overrides = variant(name)
        sn = copy.deepcopy(sn0) if overrides else sn0
        for _, layer in sn.choice_layers():
            if overrides and "analog" in layer.candidates:
                cand = layer.candidates["analog"]
                cand.config = cand.config.model_copy(update=overrides)
        config = next(layer.candidates["analog"].config for _, layer in sn.choice_layers()
                      if "analog" in layer.candidates)
        ev = Evaluator(sn, task, objectives=("accuracy", "accuracy@1d"), split="test",
                       draws=args.draws, bn_batches=4, seed=args.seed,
                       val_batches=args.test_batches,
                       pcm=PCMModel(drift_compensation=comp, **scales))
        rpu = config.to_aihwkit()
        rpu.noise_model = PCMLikeNoiseModel(g_max=25.0, **scales)
        if not comp:
            rpu.drift_compensation = None
        with final_scoring("bench: PCM effect ablation"):
            acc = ev.accuracies([mapping])[0]
            est = np.array(ev.accuracies_at([mapping], DAY)[0])
            ref = np.array(evaluate_drift(as_searched(sn, mapping, bn_inputs), None, task,
                                          times=(DAY,), repeats=args.draws, seed=args.seed,
                                          split="test", max_batches=args.test_batches,
                                          rpu_config=rpu).values[0])
        print(f"  {label:24s} {name:20s} eval {acc:6.2f}  hetmap {est.mean():6.2f} +- "
              f"{est.std(ddof=1):5.2f}  aihwkit {ref.mean():6.2f} +- {ref.std(ddof=1):5.2f}  "
              f"gap {est.mean() - ref.mean():+6.2f}  draws {np.round(est, 1).tolist()} vs "
              f"{np.round(ref, 1).tolist()}", flush=True)


if __name__ == "__main__":
    main()
