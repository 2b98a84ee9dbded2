"""Full-precision pretraining of a task's model, for users who bring no trained model.

One-cycle schedule (fast, robust on small data), progress bar, wall time printed, the result
saved as safetensors with the scores in its metadata."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from hetmap.errors import ConfigError, TrainingError
from hetmap.inputs import call_model
from hetmap.tasks.base import Task, final_scoring, move_batch
from hetmap.tasks.checkpoints import save_checkpoint
from hetmap.tasks.registry import get_task
from hetmap.training.optim import make_optimizer


@dataclass(frozen=True)
class PretrainMetrics:
    """A pretraining's outcome: the task metric (percent) on validation and test, the last
    epoch's mean training loss, the steps taken and the wall time."""

    val: float
    test: float
    train_loss: float
    steps: int
    wall_s: float

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PretrainMetrics:
        """From `to_dict()`'s form (pretrain.json, results.json)."""
        return cls(val=float(d["val"]), test=float(d["test"]),
                   train_loss=float(d["train_loss"]), steps=int(d["steps"]),
                   wall_s=float(d["wall_s"]))


def pretrain(task: Task | str, model: nn.Module | None = None, *, epochs: int | None = None,
             lr: float | None = None, batch_size: int | None = None,
             optimizer: str | None = None, weight_decay: float | None = None,
             max_steps: int | None = None, device: torch.device | str = "cpu", seed: int = 0,
             out: str | os.PathLike[str] | None = None, progress: bool = True,
             log: Callable[[str], Any] = print) -> tuple[nn.Module, PretrainMetrics]:
    """Train `model` (default: a fresh `task.build_model()`) on the task's train split.

    Unset options come from `task.defaults`. `max_steps` caps the total number of steps
    (smoke tests). Returns the model (eval mode, on `device`) and its PretrainMetrics;
    with `out`, saves the weights as safetensors atomically."""
    if isinstance(task, str):
        task = get_task(task)
    d = task.defaults
    d = replace(d, epochs=epochs or d.epochs, lr=lr or d.lr, batch_size=batch_size or d.batch_size,
                optimizer=optimizer or d.optimizer,
                weight_decay=d.weight_decay if weight_decay is None else weight_decay)
    torch.manual_seed(seed)
    if model is None:
        model = task.build_model()
    model.to(device)
    loaders = task.loaders(d.batch_size, seed)
    total = d.epochs * len(loaders.train)
    if max_steps is not None:
        total = min(total, max_steps)
    if total <= 0:
        raise ConfigError(f"nothing to train: {d.epochs} epochs of {len(loaders.train)} batches")
    opt = make_optimizer(model.parameters(), d.optimizer, d.lr, d.weight_decay,
                         nesterov=True)
    pct = 0.1 if d.optimizer == "adamw" else 0.25
    # one-cycle needs >= 2 warm-up steps (1 divides by zero); 1-2 steps: a constant lr
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=d.lr, total_steps=total, pct_start=max(pct, 2.0 / total)) if total >= 3 \
        else torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)

    start = time.perf_counter()
    step, last_loss = 0, float("nan")
    bar = tqdm(total=total, disable=not progress, desc=f"pretrain {task.name}", leave=False)
    model.train()
    while step < total:
        run_loss, n = 0.0, 0
        for batch in loaders.train:
            inputs, target = move_batch(batch, device)
            loss = task.loss(call_model(model, inputs), target)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise TrainingError(f"pretraining {task.name} diverged (loss {value}) at "
                                    f"step {step}; lower the learning rate (now {d.lr})")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            step, run_loss, n = step + 1, run_loss + value, n + 1
            bar.update(1)
            bar.set_postfix(loss=f"{value:.3f}", refresh=False)
            if step >= total:
                break
        last_loss = run_loss / max(n, 1)
    bar.close()
    train_s = time.perf_counter() - start
    val = task.metric(model, loaders.val, device)
    with final_scoring("the pretrained model's test score"):
        test = task.metric(model, loaders.test, device)
    model.eval()
    wall = time.perf_counter() - start
    metrics = PretrainMetrics(val=val, test=test, train_loss=last_loss, steps=step,
                              wall_s=wall)
    log(f"pretrain {task.name}: {step} steps in {train_s:.1f} s (total {wall:.1f} s), "
        f"val {task.metric_name} {val:.2f}%, test {task.metric_name} {test:.2f}%")
    if out is not None:
        scores = {k: f"{v:.6g}" for k, v in metrics.to_dict().items()}
        path = save_checkpoint(model, out, {"task": task.name, "metric": task.metric_name,
                                            **scores})
        log(f"saved {Path(path)}")
    return model, metrics
