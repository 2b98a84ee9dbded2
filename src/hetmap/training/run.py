"""One training run's shared state: where it is (`Progress`), what the stage loops share
(`Run`: supernet, task, config, loaders, the stage's optimizer) and its checkpoint
(save/restore through checkpoint.py), with the checks every step makes (`check_loss`)."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hetmap.errors import ConfigError, TrainingError
from hetmap.supernet import Supernet
from hetmap.tasks.base import Task
from hetmap.training import distributed as dist
from hetmap.training.checkpoint import rng_state, save_state, set_rng_state
from hetmap.training.config import TrainConfig
from hetmap.training.log import JsonlLog

StepHook = Callable[[int, int, float], None]  # (stage, step, loss), called after each step
_VOLATILE = ("progress", "checkpoint_minutes", "checkpoint_steps", "eval_each_epoch")


@dataclass
class TrainMetrics:
    """What the three stages measured: the fp32 path's validation metric, Kendall's tau of
    the preferences against measured accuracy before and after stage 3, each stage's last
    loss, each layer's analog sensitivity (stage 1) and the mappings stage 3 scored (part
    of a search's evaluation budget). train.json holds `to_dict()`."""

    fp32_val: float | None = None
    tau_before: float | None = None
    tau_after: float | None = None
    losses: dict[int, float] = field(default_factory=dict)  # stage -> its last loss
    sensitivity: dict[str, float] = field(default_factory=dict)  # layer -> sensitivity
    stage3_evaluations: int = 0

    def to_dict(self) -> dict[str, float]:
        flat: dict[str, float] = {k: v for k, v in (("fp32_val", self.fp32_val),
                                                    ("tau_before", self.tau_before),
                                                    ("tau_after", self.tau_after))
                                  if v is not None}
        flat |= {f"stage{k}/loss": v for k, v in sorted(self.losses.items())}
        flat |= {f"sensitivity/{k}": v for k, v in self.sensitivity.items()}
        return flat | {"stage3/evaluations": float(self.stage3_evaluations)}

    @classmethod
    def from_dict(cls, flat: dict[str, Any]) -> TrainMetrics:
        """From `to_dict()`'s flat keys (train.json, a checkpoint); unknown keys refused."""
        m = cls(**{k: float(flat[k]) for k in ("fp32_val", "tau_before", "tau_after")
                   if k in flat})
        for key, value in flat.items():
            head, _, rest = key.partition("/")
            if key in ("fp32_val", "tau_before", "tau_after"):
                continue
            if rest == "loss" and head.startswith("stage") and head[5:].isdigit():
                m.losses[int(head[5:])] = float(value)
            elif head == "sensitivity" and rest:
                m.sensitivity[rest] = float(value)
            elif key == "stage3/evaluations":
                m.stage3_evaluations = int(value)
            else:
                raise ConfigError(f"unknown training metric {key!r} (train.json or a "
                                  "checkpoint of another hetmap version); retrain the run")
        return m


@dataclass
class Progress:
    """Where the run is: stage, epoch, next batch of the epoch, steps done in the stage."""

    stage: int = 1
    epoch: int = 0
    batch: int = 0
    step: int = 0
    ref_loss: float = 0.0  # mean of the stage's first losses, for the explosion check

    def next_stage(self) -> None:
        self.stage, self.epoch, self.batch, self.step, self.ref_loss = self.stage + 1, 0, 0, 0, 0


class Run:
    """Everything the stage loops share, and the checkpoint of it."""

    def __init__(self, supernet: Supernet, task: Task, config: TrainConfig,
                 run_dir: Path | None, teacher: nn.Module | None, device: torch.device,
                 on_step: StepHook | None, cost_table: Any = None) -> None:
        self.sn, self.task, self.cfg, self.device = supernet, task, config, device
        self.run_dir, self.teacher, self.on_step = run_dir, teacher, on_step
        self.world, self.rank = dist.world()
        self.main = self.rank == 0
        self.log = JsonlLog(run_dir, enabled=self.main)
        self.progress = Progress()
        self.optimizer: torch.optim.Optimizer | None = None
        self.fractions: dict[str, float] | None = None
        self.metrics = TrainMetrics()
        self.steps: dict[int, int] = {}
        self.loaders = task.loaders(config.batch_size, config.seed)
        self._last_save = time.monotonic()
        self._opt_state: dict[str, Any] | None = None  # a restored optimizer's, until used
        self.cost_table = cost_table  # stage 3 also ranks on latency and energy with it
        self.candidate_params = [q for _, layer in supernet.choice_layers()
                                 for cand in layer.all_candidates() for q in cand.parameters()]

    def start_optimizer(self, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
        """Make `optimizer` the stage's, continuing the checkpointed optimizer's state when
        the run was restored mid-stage (once: the next stage starts fresh)."""
        if self._opt_state is not None:
            optimizer.load_state_dict(self._opt_state)
            self._opt_state = None
        self.optimizer = optimizer
        return optimizer

    # -- checkpoint -------------------------------------------------------------------------
    def save(self) -> None:
        """Collective under torch.distributed (RNG states are gathered); rank 0 writes."""
        rngs = dist.gather_objects(rng_state())
        self._last_save = time.monotonic()
        if self.run_dir is None or not self.main:
            return
        save_state(self.run_dir, {
            "fingerprint": self.sn.fingerprint,
            "config": _comparable(self.cfg),
            "model": self.sn.state_dict(),
            "optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
            "progress": vars(self.progress).copy(),
            "fractions": self.fractions,
            "metrics": self.metrics.to_dict(),
            "steps": {str(k): v for k, v in self.steps.items()},
            "rng": rngs,
        })

    def restore(self, state: dict[str, Any]) -> None:
        if state["fingerprint"] != self.sn.fingerprint:
            raise ConfigError(f"the checkpoint in {self.run_dir} is for another model "
                              f"({state['fingerprint']} vs {self.sn.fingerprint})")
        if state["config"] != _comparable(self.cfg):
            diff = sorted(k for k in set(state["config"]) | set(_comparable(self.cfg))
                          if state["config"].get(k) != _comparable(self.cfg).get(k))
            raise ConfigError(f"the run in {self.run_dir} used another config (differs in "
                              f"{', '.join(diff)}); resume with the same config or a new "
                              "run_dir")
        self.sn.load_state_dict(state["model"])
        self.progress = Progress(**state["progress"])
        self._opt_state = state["optimizer"]
        self.fractions = state["fractions"]
        self.metrics = TrainMetrics.from_dict(state["metrics"])
        self.steps = {int(k): v for k, v in state["steps"].items()}
        rngs = state["rng"]
        if len(rngs) == self.world:
            set_rng_state(rngs[self.rank])
        else:  # resumed on another number of processes: fresh but reproducible streams
            seed_everything(self.cfg.seed * 7919 + self.progress.stage * 131 + self.rank)

    def maybe_save(self, due_by_time: bool) -> None:
        every = self.cfg.checkpoint_steps
        if due_by_time or (every and self.progress.step % every == 0):
            self.save()

    def time_due(self) -> float:
        return float(time.monotonic() - self._last_save > 60.0 * self.cfg.checkpoint_minutes)


def _comparable(cfg: TrainConfig) -> dict[str, Any]:
    """The config fields that define the run's result (not logging or checkpoint cadence)."""
    return {k: v for k, v in cfg.model_dump(mode="json").items() if k not in _VOLATILE}


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))


def check_loss(loss: float, progress: Progress, factor: float, where: str) -> None:
    """Stop on NaN/inf or on a loss `factor` times the stage's first losses; the checkpoint
    on disk is the last good state (nothing is written from a bad one)."""
    if not math.isfinite(loss):
        raise TrainingError(f"{where}: the loss is {loss}; training stopped and the last good "
                            "checkpoint kept. Lower the learning rate or the noise target")
    if progress.step >= 5 and loss > factor * max(progress.ref_loss, 0.1):
        raise TrainingError(f"{where}: the loss exploded to {loss:.4g} (> {factor} x the "
                            f"stage's first losses, {progress.ref_loss:.4g}); training stopped "
                            "and the last good checkpoint kept. Lower the learning rate")
    if progress.step < 5:
        progress.ref_loss = (progress.ref_loss * progress.step + loss) / (progress.step + 1)
