"""A tiny three-stage run on sklearn digits, as a script: the kill/resume test runs it in a
subprocess that SIGKILLs itself mid stage 1 or 2, and the distributed test runs it under torchrun.
Each process saves its final supernet state to OUT/rank<r>.pt."""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path
from typing import Any

import torch

from hetmap.supernet import Supernet, build_supernet
from hetmap.tasks import get_task
from hetmap.training import TrainConfig, make_config, train_supernet
from hetmap.training.distributed import world


def tiny_setup() -> tuple[Any, Supernet]:
    torch.manual_seed(0)
    task = get_task("digits", width=4)
    sn = build_supernet(task.build_model(), task.example_input(8))
    return task, sn


def tiny_config(**overrides: Any) -> TrainConfig:
    base: dict[str, Any] = dict(
        batch_size=32, progress=False, eval_each_epoch=False, checkpoint_steps=1,
        stage1={"epochs": 1, "max_steps": 2},
        stage2={"epochs": 1, "max_steps": 4, "schedule": "cosine"},
        stage3={"steps": 2, "n_mappings": 4, "bn_batches": 1, "val_batches": 1,
                "eval_batch_size": 64, "tau_mappings": 0})
    base.update(overrides)
    return make_config(**base)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("--out", default=None)
    ap.add_argument("--kill-at", type=int, default=0, help="SIGKILL after this step")
    ap.add_argument("--kill-stage", type=int, default=2, help="... of this stage")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    task, sn = tiny_setup()

    def on_step(stage: int, step: int, loss: float) -> None:
        if stage == args.kill_stage and step == args.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    train_supernet(sn, task, tiny_config(), run_dir=args.run_dir, on_step=on_step)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        torch.save(sn.state_dict(), out / f"rank{world()[1]}.pt")


if __name__ == "__main__":
    main()
