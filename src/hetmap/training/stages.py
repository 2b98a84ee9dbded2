"""The three training stages of the supernet, resumable and data-parallel.

1. fair training: every candidate of every layer trained once per step, distilled from the
   original model, with every candidate's non-idealities at `stage1.noise_scale` (a low
   level by default, so the K passes of a step run K different numerics; at 0 they would be
   K identical fp32 passes); 2. the same while non-idealities and quantization ramp from
   there (`stage2.start`, default: stage 1's level) to `stage2.target`; 3. weights frozen,
   the preferences learn to rank sampled mappings by Pareto front.

The loops are plain; policy lives in fair.py (paths, losses), ramp.py (noise schedule),
rank.py (sampling, hinge loss, tau), schedule.py (learning rate, epoch order); the run's
shared state and its checkpoint are run.py's `Run` (checkpoint.py writes it).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from hetmap.errors import ConfigError
from hetmap.inputs import call_model
from hetmap.mapping import Mapping
from hetmap.supernet import Supernet
from hetmap.tasks.base import Task, move_batch
from hetmap.training import distributed as dist
from hetmap.training.checkpoint import load_state
from hetmap.training.config import Stage1Config, Stage2Config, TrainConfig
from hetmap.training.fair import (
    batch_correct,
    fair_paths,
    step_generator,
    substep_loss,
    teacher_target,
)
from hetmap.training.optim import make_optimizer
from hetmap.training.ramp import (
    apply_scales,
    layer_scales,
    measure_sensitivity,
    sensitivity_fractions,
)
from hetmap.training.rank import kendall_tau_of_preferences, pairwise_hinge, sample_mappings
from hetmap.training.run import Run, StepHook, TrainMetrics, check_loss, seed_everything
from hetmap.training.schedule import epoch_seed, lr_at, reseed_loader


@dataclass
class TrainResult:
    supernet: Supernet
    metrics: TrainMetrics
    run_dir: Path | None
    steps: dict[int, int] = field(default_factory=dict)  # optimizer steps per stage


def _tau_seed(cfg: TrainConfig) -> int:
    """Tau before and after stage 3 on the same fresh mappings (not stage 3's samples)."""
    return cfg.seed + 100_003


# -- paths -------------------------------------------------------------------------------------
def fp32_mapping(sn: Supernet) -> Mapping:
    """All-fp32 where offered (the original model), the first candidate elsewhere (width
    choices: narrow, so an adapted supernet's teacher is the original model too)."""
    return Mapping({n: "fp32" if "fp32" in sn.candidates(n) else sn.candidates(n)[0]
                    for n in sn.layer_names}, sn.fingerprint)


def make_teacher(supernet: Supernet) -> Supernet:
    """The original model: a frozen copy of the untrained supernet on its fp32 path."""
    teacher = copy.deepcopy(supernet).use(fp32_mapping(supernet))
    teacher.set_noise_scale(0.0)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


# -- stages 1 and 2 -----------------------------------------------------------------------------
def fair_step(run: Run, batch: Any, paths: list[Mapping], optimizer: torch.optim.Optimizer,
              params: list[nn.Parameter], grad_clip: float, where: str) -> tuple[float, Any]:
    """One optimizer update from K sub-steps, one per candidate position."""
    x, y = move_batch(batch, run.device)
    target = None
    if run.teacher is not None and run.cfg.kd.enabled:
        with torch.inference_mode():
            target = teacher_target(call_model(run.teacher, x), run.cfg.kd)
        target = target.clone()  # a normal tensor, usable by autograd
    optimizer.zero_grad(set_to_none=True)
    total, correct, seen = 0.0, 0, 0
    for mapping in paths:
        run.sn.use(mapping)
        out = call_model(run.sn, x)
        loss = substep_loss(run.task.loss(out, y), out, target, run.cfg.kd) / len(paths)
        loss.backward()
        total += float(loss.detach())
        hit = batch_correct(out.detach() if torch.is_tensor(out) else out, y)
        if hit is not None:
            correct, seen = correct + hit[0], seen + hit[1]
    mean_loss, due = dist.all_mean([total, run.time_due()])
    check_loss(mean_loss, run.progress, run.cfg.explode_factor, where)
    dist.average_gradients(params)
    nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()
    dist.average_tensors(run.candidate_params)
    return mean_loss, (correct, seen, due)


def stage_batches(run: Run, stage: int, epoch: int) -> Iterator[tuple[int, Any]]:
    reseed_loader(run.loaders.train, epoch_seed(run.cfg.seed, stage, epoch))
    return dist.shard(run.loaders.train, run.world, run.rank)


def train_weights(run: Run, stage: int) -> None:
    """Stage 1 (fair training) or stage 2 (fair training under the noise ramp)."""
    cfg: Stage1Config | Stage2Config = run.cfg.stage1 if stage == 1 else run.cfg.stage2
    sn, p = run.sn, run.progress
    per_epoch = len(run.loaders.train) // run.world
    total = cfg.epochs * per_epoch
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    if total > 0 and per_epoch == 0:
        raise ConfigError(f"stage{stage}: the training split has fewer batches "
                          f"({len(run.loaders.train)}) than processes ({run.world}); lower "
                          "batch_size")
    if stage == 2 and isinstance(cfg, Stage2Config) and cfg.sensitivity_scaled \
            and run.fractions is None and total > 0:
        # training batches (the validation split stays for ranking and search); the loader
        # is reseeded at every epoch start, so reading it here changes no epoch's order
        batches = [b for _, b in zip(range(cfg.sensitivity_batches), run.loaders.train)]
        sens = measure_sensitivity(sn, run.task, batches, run.device)
        run.fractions = sensitivity_fractions(sens, cfg.sensitivity_min_fraction)
        run.metrics.sensitivity.update(sens)
    params = [q for q in sn.weight_parameters() if q.requires_grad]
    optimizer = run.start_optimizer(make_optimizer(params, cfg.optimizer, cfg.lr,
                                                   cfg.weight_decay))
    where = f"stage {stage}"
    bar = tqdm(total=total, initial=p.step, desc=f"stage {stage}",
               disable=not (run.main and run.cfg.progress), leave=False)
    sn.train()
    loss, acc = float("nan"), float("nan")
    while p.step < total:
        correct = seen = 0
        for b, batch in stage_batches(run, stage, p.epoch):
            if b < p.batch:
                continue  # resumed mid-epoch: the loader replays the epoch up to here
            if p.step >= total:
                break
            for group in optimizer.param_groups:
                group["lr"] = lr_at(cfg, p.step, total)
            if stage == 2:
                assert isinstance(cfg, Stage2Config)
                apply_scales(sn, layer_scales(cfg, p.step / total, run.fractions))
            else:
                sn.set_noise_scale(run.cfg.stage1.noise_scale)
            paths = fair_paths(sn, step_generator(run.cfg.seed, stage, p.step))
            loss, (c, n, due) = fair_step(run, batch, paths, optimizer, params,
                                          cfg.grad_clip, where)
            correct, seen = correct + c, seen + n
            acc = 100.0 * correct / seen if seen else float("nan")
            p.step, p.batch = p.step + 1, b + 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.1f}")
            if run.on_step is not None:
                run.on_step(stage, p.step, loss)
            run.maybe_save(bool(due))
        p.epoch, p.batch = p.epoch + 1, 0
        record: dict[str, Any] = {"stage": stage, "epoch": p.epoch, "step": p.step,
                                  "loss": loss, "train_acc": acc}
        record["noise_scale"] = (run.cfg.stage1.noise_scale if stage == 1 else
                                 ramp_progress_value(run, min(p.step / max(total, 1), 1.0)))
        if run.cfg.eval_each_epoch and run.main:
            record["fp32_val"] = path_metric(run, fp32_mapping(sn))
        run.log.write(**record)
        run.metrics.losses[stage] = loss
        run.save()
    bar.close()
    dist.broadcast_module(sn, buffers_only=True)
    run.steps[stage] = p.step
    run.optimizer = None


def ramp_progress_value(run: Run, progress: float) -> float:
    scales = layer_scales(run.cfg.stage2, progress, run.fractions)
    return float(np.mean(list(scales.values()))) if isinstance(scales, dict) else scales


def path_metric(run: Run, mapping: Mapping, loader: Any = None) -> float:
    """The task metric of one path on the shared BN statistics (a live indicator; the
    Evaluator recalibrates BN per mapping for ranking and search)."""
    sn = run.sn
    with sn.keeping_paths():
        sn.use(mapping)
        return float(run.task.metric(sn, loader or run.loaders.val, run.device))


# -- stage 3 --------------------------------------------------------------------------------------
def make_evaluator(run: Run) -> Any:
    from hetmap.evaluation import Evaluator

    cfg = run.cfg.stage3
    objectives = tuple(cfg.objectives)
    if run.cost_table is not None:  # the cost model is present: rank on latency and energy too
        objectives += tuple(o for o in ("latency_s", "energy_j") if o not in objectives)
    return Evaluator(run.sn, run.task, objectives=objectives, cost_table=run.cost_table,
                     bn_batches=cfg.bn_batches,
                     val_batches=cfg.val_batches, batch_size=cfg.eval_batch_size,
                     device=run.device, seed=run.cfg.seed, draws=cfg.draws)


def train_preferences(run: Run, evaluator: Any) -> None:
    """Weights frozen; each step ranks N sampled mappings by Pareto front (validation
    accuracy and exact hardware objectives) and teaches the logits that order."""
    from hetmap.evaluation.objectives import pareto_ranks

    cfg, sn, p = run.cfg.stage3, run.sn, run.progress
    logits = sn.arch_parameters()
    optimizer = run.start_optimizer(torch.optim.Adam(logits, lr=cfg.lr))
    sn.eval()
    bar = tqdm(total=cfg.steps, initial=p.step, desc="stage 3",
               disable=not (run.main and run.cfg.progress), leave=False)
    while p.step < cfg.steps:
        gen = step_generator(run.cfg.seed, 3, p.step)
        mappings = sample_mappings(sn, cfg.n_mappings, cfg.exploration, gen)
        ranks = pareto_ranks(evaluator.matrix(mappings))
        log_probs = torch.stack([sn.log_prob(m) for m in mappings])
        loss = pairwise_hinge(log_probs, ranks, cfg.margin)
        check_loss(float(loss.detach()), p, run.cfg.explode_factor, "stage 3")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()  # identical on every rank: same mappings, gathered scores
        p.step += 1
        bar.update(1)
        bar.set_postfix(hinge=f"{float(loss.detach()):.4f}", fronts=int(ranks.max()) + 1)
        run.log.write(stage=3, step=p.step, loss=float(loss.detach()), fronts=int(ranks.max()) + 1)
        if run.on_step is not None:
            run.on_step(3, p.step, float(loss.detach()))
        run.maybe_save(bool(dist.all_mean([run.time_due()])[0]))
    bar.close()
    run.steps[3] = p.step
    run.optimizer = None


# -- entry point -----------------------------------------------------------------------------
def train_supernet(supernet: Supernet, task: Task, config: TrainConfig | dict[str, Any] | None
                   = None, run_dir: str | os.PathLike[str] | None = None,
                   teacher: nn.Module | None = None, device: torch.device | str | None = None,
                   resume: bool = False, on_step: StepHook | None = None,
                   cost_table: Any = None) -> TrainResult:
    """Run the three stages on `supernet` (built from the trained model) in place.

    teacher: the distillation teacher; default a frozen copy of `supernet`'s fp32 path taken
        now, i.e. the original model (pass the same fresh supernet when resuming).
    run_dir: where checkpoint.pt and metrics.jsonl go (None: nothing is written).
    resume: continue from run_dir's checkpoint when there is one.
    cost_table: a hardware cost table (hetmap.hardware); stage 3 then also ranks on latency
        and energy.
    on_step: called as on_step(stage, step, loss) after every optimizer step.
    Under torchrun every process calls this; gradients and scores are shared, rank 0 writes.
    """
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config or {})
    dist.init_from_env()
    dev = torch.device(device) if device is not None else dist.default_device()
    path = Path(run_dir) if run_dir is not None else None
    if resume and path is None:
        raise ConfigError("resume=True needs the run_dir of the run to continue")
    supernet.to(dev)
    dist.broadcast_module(supernet)
    if teacher is None and cfg.kd.enabled:
        teacher = make_teacher(supernet)
    if teacher is not None:
        teacher.to(dev).eval()
    run = Run(supernet, task, cfg, path, teacher, dev, on_step, cost_table=cost_table)
    state = load_state(path) if resume and path is not None else None
    if state is not None:
        run.restore(state)
    else:
        seed_everything(cfg.seed + run.rank)
    for stage in (1, 2):
        if run.progress.stage == stage:
            train_weights(run, stage)
            run.progress.next_stage()
            run.save()
    supernet.set_noise_scale(cfg.stage2.target)
    if run.progress.stage == 3:
        if run.metrics.fp32_val is None:
            run.metrics.fp32_val = path_metric(run, fp32_mapping(supernet))
        evaluator = make_evaluator(run)
        n_tau = cfg.stage3.tau_mappings
        if n_tau and run.metrics.tau_before is None:
            run.metrics.tau_before = kendall_tau_of_preferences(
                supernet, evaluator, n=n_tau, seed=_tau_seed(cfg))
        train_preferences(run, evaluator)
        if n_tau:
            run.metrics.tau_after = kendall_tau_of_preferences(
                supernet, evaluator, n=n_tau, seed=_tau_seed(cfg))
        # mappings stage 3 scored (ranking and tau): part of a search's evaluation budget
        run.metrics.stage3_evaluations = evaluator.evaluations
        run.progress.next_stage()
        run.log.write(stage="done", **run.metrics.to_dict())
        run.save()
    supernet.use(fp32_mapping(supernet))
    dist.barrier()
    return TrainResult(supernet, replace(run.metrics, losses=dict(run.metrics.losses),
                                         sensitivity=dict(run.metrics.sensitivity)),
                       path, dict(run.steps))
