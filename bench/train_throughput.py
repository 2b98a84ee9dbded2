"""Stage-1 fair training: time per candidate sub-step over a plain training step.

A fair step runs K sub-steps (one per candidate position, K = candidates per layer) and one
optimizer update, plus one teacher forward for distillation; its time / K is compared with a
plain fp32 training step (forward, cross-entropy, backward, SGD step) of the same model on the
same batch, interleaved so both see the same machine load.

Usage: .venv/bin/python bench/train_throughput.py [--task mnist] [--batch 128] [--repeats 10]
Target: <= 1.2x at stage 1 (noise off); the stage-2 ratio at full noise is shown for reference.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved_medians
from hetmap.inputs import call_model
from hetmap.supernet import build_supernet
from hetmap.tasks import get_task, move_batch
from hetmap.training import make_config
from hetmap.training.fair import fair_paths, step_generator
from hetmap.training.run import Run
from hetmap.training.stages import fair_step, make_teacher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", default="mnist")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--no-kd", action="store_true", help="distillation off")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    task = get_task(args.task, width=args.width)
    plain = task.build_model().train()
    batch = next(iter(task.loaders(args.batch, 0).train))
    x, y = move_batch(batch, "cpu")
    sn = build_supernet(copy.deepcopy(plain), task.example_input(8)).train()
    cfg = make_config(progress=False, kd={"enabled": not args.no_kd})
    run = Run(sn, task, cfg, None, make_teacher(sn),
              torch.device("cpu"), None)
    params = [p for p in sn.weight_parameters() if p.requires_grad]
    opt_sn = torch.optim.SGD(params, lr=1e-3, momentum=0.9)
    opt_plain = torch.optim.SGD(plain.parameters(), lr=1e-3, momentum=0.9)
    k = len(fair_paths(sn, step_generator(0, 1, 0)))
    counter = iter(range(10 ** 9))

    def plain_step() -> None:
        opt_plain.zero_grad(set_to_none=True)
        task.loss(call_model(plain, x), y).backward()
        opt_plain.step()

    def fair(scale: float) -> None:
        sn.set_noise_scale(scale)
        paths = fair_paths(sn, step_generator(0, 1, next(counter)))
        run.progress.step = 0  # keep the explosion check in its warm-up
        fair_step(run, (x, y), paths, opt_sn, params, 5.0, "bench")

    med = interleaved_medians({"plain": plain_step, "stage1": lambda: fair(0.0),
                               "stage2": lambda: fair(1.0)}, repeats=args.repeats)
    print(f"{args.task} small_cnn(width {args.width}), batch {args.batch}, K = {k} sub-steps "
          f"per step, KD {'off' if args.no_kd else 'on'}, {torch.get_num_threads()} threads")
    print(f"  plain training step        {med['plain'] * 1e3:8.1f} ms")
    for name, note in (("stage1", "noise off; target <= 1.2x"),
                       ("stage2", "full noise and quantization; reference")):
        per = med[name] / k
        print(f"  {name} per sub-step        {per * 1e3:8.1f} ms   ratio "
              f"{per / med['plain']:.3f}x  ({note})")


if __name__ == "__main__":
    main()
