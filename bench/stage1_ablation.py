"""Stage 1 ablation: what the fair first stage should train, at equal compute.

Arms differ only in the strength of the candidates' non-idealities during stage 1
(`stage1.noise_scale`; stage 2's ramp starts from that level and reaches the target as
usual). Level 0 is hetmap's stage 1 before issue 16: every candidate runs the exact fp32
layer, so the K fair passes of a step are K identical passes. Every arm runs the same
optimizer steps on the same K paths of the same batches, so the same sample-passes
(forward + backward) in every stage; the table prints those of stages 1 and 2 (stage 3's
ranking steps and the search's evaluations are the same count in every arm too).

Protocol: one pretrained model (seed 0) shared by all arms; per seed and arm: stages 1-3
(seeded), an `mps` search on the validation split (selection), then every front member
scored on the test split inside `final_scoring()` and the test front's hypervolume with the
search's normalisation (fixed per task: the accuracy range is the pretrained model's
validation accuracy minus 20 points to 100, hardware ranges over the mapping space). The
all-analog mapping is scored on both splits as a selection-free check. The run is
deterministic: the same command prints the same table.

Usage: PYTHONPATH=src .venv/bin/python bench/stage1_ablation.py [--levels 0,0.25,1]
       [--seeds 2] [--task mnist] [--model resnet8] [--width 8]
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hetmap import build_supernet
from hetmap.evaluation import Evaluator
from hetmap.mapping import Mapping
from hetmap.search import search
from hetmap.tasks import final_scoring, get_task, load_checkpoint
from hetmap.training import make_config, pretrain, train_supernet
from hetmap.training.fair import fair_paths, step_generator

CANDIDATES = ("fp32", "int8", "int4", "analog")  # hetmap run's default candidates


def arm_config(level: float, seed: int, args: argparse.Namespace) -> Any:
    return make_config(
        seed=seed, batch_size=args.batch_size, progress=False, eval_each_epoch=False,
        stage1={"epochs": 1, "max_steps": args.stage_steps, "noise_scale": level},
        stage2={"epochs": 1, "max_steps": args.stage_steps, "start": level},
        stage3={"steps": args.pref_steps, "n_mappings": 12, "tau_mappings": 0,
                "bn_batches": 2, "val_batches": None, "eval_batch_size": 256})


def evaluator(sn: Any, task: Any, split: str, acc_range: tuple[float, float]) -> Evaluator:
    return Evaluator(sn, task, split=split, bn_batches=2, batch_size=256, seed=0,
                     accuracy_range=acc_range)


def run_arm(base: Any, task: Any, level: float, seed: int, acc_range: tuple[float, float],
            args: argparse.Namespace) -> dict[str, float]:
    sn = copy.deepcopy(base)
    cfg = arm_config(level, seed, args)
    start = time.perf_counter()
    result = train_supernet(sn, task, cfg)
    train_s = time.perf_counter() - start
    k = len(fair_paths(sn, step_generator(0, 1, 0)))
    passes = sum(result.steps.get(s, 0) for s in (1, 2)) * k * cfg.batch_size
    val_ev = evaluator(sn, task, "val", acc_range)
    front = search(sn, val_ev, strategy="mps", budget=args.budget, seed=seed,
                   pop_size=args.pop)
    analog = Mapping.uniform(sn, "analog")
    analog_val = val_ev.accuracy(analog)
    test_ev = evaluator(sn, task, "test", acc_range)
    with final_scoring("stage1 ablation"):
        test_acc = test_ev.accuracies(front.mappings)
        analog_test = test_ev.accuracy(analog)
        fp32_test = test_ev.accuracy(Mapping.uniform(sn, "fp32"))
    test_front = front.rescored("accuracy", test_acc)
    return {"hv_test": test_front.hypervolume(), "hv_val": front.hypervolume(),
            "analog_test": analog_test, "analog_val": analog_val, "fp32_test": fp32_test,
            "best_test": max(test_acc), "front": len(front), "passes": passes,
            "train_s": train_s, "total_s": time.perf_counter() - start}


def pretrained(task: Any, args: argparse.Namespace) -> tuple[Any, Any]:
    torch.manual_seed(0)
    model = task.build_model()
    ckpt = Path(args.cache) / f"{args.task}-{args.model}-w{args.width}.safetensors"
    if ckpt.exists():
        load_checkpoint(model, ckpt)
        model.eval()
        return model, None
    model, metrics = pretrain(task, model, epochs=args.pretrain_epochs, out=ckpt,
                              progress=False, seed=0)
    return model, metrics


def fmt(values: list[float], digits: int = 4) -> str:
    """Mean ± sample standard deviation (ddof 1) over seeds."""
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return f"{np.mean(values):.{digits}f} ± {std:.{digits}f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--levels", default="0,0.25,1",
                   help="stage-1 noise levels to compare (0: identical fp32 passes)")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--task", default="mnist")
    p.add_argument("--model", default="resnet8")
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--pretrain-epochs", type=int, default=None, help="default: the task's")
    p.add_argument("--stage-steps", type=int, default=50, help="optimizer steps, stages 1 and 2")
    p.add_argument("--pref-steps", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--budget", type=int, default=24, help="search evaluations (val split)")
    p.add_argument("--pop", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cache", default="runs/bench_stage1_ablation")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    Path(args.cache).mkdir(parents=True, exist_ok=True)
    levels = [float(v) for v in args.levels.split(",")]
    task = get_task(args.task, model=args.model, width=args.width)
    model, pre = pretrained(task, args)
    base = build_supernet(model, task.example_input(8), candidates=CANDIDATES)
    pre_val = evaluator(base, task, "val", (0.0, 100.0)).accuracy(Mapping.uniform(base, "fp32"))
    acc_range = (max(pre_val - 20.0, 0.0), 100.0)
    print(f"{args.task} {args.model} width {args.width}; pretrained fp32 val {pre_val:.2f}% "
          f"{pre}; hypervolume accuracy range {acc_range}", flush=True)
    rows: dict[float, list[dict[str, float]]] = {lv: [] for lv in levels}
    for seed in range(args.seeds):
        for lv in levels:
            r = run_arm(base, task, lv, seed, acc_range, args)
            rows[lv].append(r)
            print(f"seed {seed} stage1 noise {lv:g}: " +
                  ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                            for k, v in r.items()), flush=True)
    print(f"\nStage-1 ablation, {args.task} {args.model} w{args.width}, candidates "
          f"{','.join(CANDIDATES)}, {args.seeds} seeds (mean ± sample std); stages 1 and 2 "
          f"{args.stage_steps} steps each, stage 3 {args.pref_steps}, mps {args.budget} "
          "evaluations on val; accuracies and HV(test) on the test split")
    head = ("| stage-1 noise | HV test | HV val (selection) | all-analog test % "
            "| all-analog val % | all-fp32 test % | best test % | sample-passes (st. 1+2) "
            "| train s |")
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for lv in levels:
        rs = rows[lv]
        col = {k: [r[k] for r in rs] for k in rs[0]}
        label = f"{lv:g}" + (" (identical fp32 passes)" if lv == 0 else "")
        print(f"| {label} | {fmt(col['hv_test'])} | {fmt(col['hv_val'])} | "
              f"{fmt(col['analog_test'], 2)} | {fmt(col['analog_val'], 2)} | "
              f"{fmt(col['fp32_test'], 2)} | "
              f"{fmt(col['best_test'], 2)} | {int(np.mean(col['passes'])):,} | "
              f"{np.mean(col['train_s']):.0f} |")
    if 0.0 in levels:
        ref = [r["hv_test"] for r in rows[0.0]]
        for lv in levels:
            if lv != 0.0:
                diff = [r["hv_test"] - b for r, b in zip(rows[lv], ref)]
                print(f"HV test, stage-1 noise {lv:g} minus 0 (paired by seed): {fmt(diff)}")
    best = max(levels, key=lambda lv: np.mean([r["hv_test"] for r in rows[lv]]))
    print(f"\nhighest mean test hypervolume: stage-1 noise {best:g}")


if __name__ == "__main__":
    main()
