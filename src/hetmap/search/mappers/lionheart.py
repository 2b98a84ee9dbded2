"""`lionheart`: the greedy analog mapper of Lammie et al. (IEEE TETC 2025, arXiv 2401.09420),
following its public code (github IBM/lionheart, `lionheart/methods/LH.py`).

Start all-digital and score that baseline (no drift). Visit the layers in descending MAC
order; convert one more layer to analog and retrain the whole network hardware-aware *in
aihwkit*, with LionHeart's own rpu config (`lionheart_rpu_config`: multiplicative weight
noise 0.08 relative to the actual w_max, output noise 0.06, weight clip 1.0 with
channel-wise remapping, 8-bit DAC/ADC, learned column-wise output scaling, PCM-like
programming/drift noise with g_max 25 and global drift compensation; tiles from the chip),
digital weights at `digital_lr`, analog ones at `analog_lr` (AnalogSGD, momentum 0.85).
Training runs in rounds of `round_steps` batches; after each round the model is scored
`repeats` times (10, as published) at `drift_time` (1 day) on the validation split and the
best-scoring weights are kept; training stops when none of the last `patience` scores beats
the best (LionHeart's score queue), or after `max_rounds`. The layer stays analog if its
best score is within `threshold` points of the baseline, else it and its weights revert.
One threshold gives one mapping; the strategy sweeps several.

Every trial conversion is then written back into the working copy of the supernet (analog
layers through aihwkit's `get_weights`, which folds the learned scales in; the other
parameters and BatchNorm statistics by name) and scored through the search problem, so
budgets, archives, fronts and the final re-scoring (one chip model, one scoring path for
every method) work as for every other strategy. Its drift scorings are counted in
`stats.extra_evaluations`.

Thresholds share their greedy prefix: a trial is fixed by the mapping kept so far and the
layer visited, so its retrained weights and score are computed once and reused. On an
adapted (MPAAS) supernet the width choices stay wide (`digital_start`).
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from hetmap._memory import release_memory
from hetmap.errors import ConfigError
from hetmap.mapping import Mapping
from hetmap.search.mappers._common import MapperStrategy, State, WorkCopy, digital_start
from hetmap.search.problem import SearchProblem
from hetmap.search.strategy import register_strategy
from hetmap.supernet import Supernet


def lionheart_rpu_config(tile: tuple[int, int] = (256, 255), deterministic: bool = True) -> Any:
    """LionHeart's aihwkit InferenceRPUConfig (its `gen_rpu_config`) with crossbar `tile`
    (rows, cols). deterministic: on aihwkit's torch tile, so every draw follows the seed."""
    from aihwkit.inference import GlobalDriftCompensation, PCMLikeNoiseModel
    from aihwkit.simulator.configs import InferenceRPUConfig, TorchInferenceRPUConfig
    from aihwkit.simulator.parameters.enums import (
        WeightClipType,
        WeightModifierType,
        WeightRemapType,
    )
    from aihwkit.simulator.presets.utils import IOParameters

    rpu = TorchInferenceRPUConfig() if deterministic else InferenceRPUConfig()
    rpu.mapping.digital_bias = True
    rpu.mapping.weight_scaling_omega = 1.0
    rpu.mapping.weight_scaling_columnwise = True
    rpu.mapping.learn_out_scaling = True
    rpu.mapping.out_scaling_columnwise = True
    rpu.mapping.max_input_size, rpu.mapping.max_output_size = int(tile[0]), int(tile[1])
    rpu.noise_model = PCMLikeNoiseModel(g_max=25.0)
    rpu.remap.type = WeightRemapType.CHANNELWISE_SYMMETRIC
    rpu.clip.type = WeightClipType.FIXED_VALUE
    rpu.clip.fixed_value = 1.0
    rpu.modifier.type = WeightModifierType.MULT_NORMAL
    rpu.modifier.rel_to_actual_wmax = True
    rpu.modifier.std_dev = 0.08
    rpu.forward = IOParameters()
    rpu.forward.out_noise = 0.06
    rpu.forward.inp_res = 1 / (2**8 - 2)  # 8-bit DAC
    rpu.forward.out_res = 1 / (2**8 - 2)  # 8-bit ADC
    rpu.drift_compensation = GlobalDriftCompensation()
    return rpu


def chip_tile(problem: SearchProblem) -> tuple[int, int]:
    """The crossbar (rows, cols) of the chip the search is costed on; without a cost table,
    the supernet's analog candidate's."""
    table = problem.evaluator.cost_table
    analog = getattr(getattr(table, "hw", None), "analog", None)
    if analog is not None:
        return (int(analog.tile_rows), int(analog.tile_cols))
    sn = problem.supernet
    for n in sn.layer_names:
        cfg = getattr(sn.candidate(n, "analog"), "config", None) \
            if "analog" in sn.candidates(n) else None
        if cfg is not None:
            return (int(cfg.tile_rows), int(cfg.tile_cols))
    raise ConfigError("lionheart needs the chip's tile size: give the Evaluator a cost table "
                      "(hetmap.hardware.table_for) or the supernet an analog candidate")


def write_back(supernet: Supernet, model: nn.Module) -> None:
    """Copy the weights of a deployed (aihwkit) model into `supernet`: analog layers through
    aihwkit's get_weights (scales folded in) into the layer's shared weight and bias, every
    other parameter and buffer whose name and shape match (BatchNorm, fp32 layers)."""
    from aihwkit.nn.modules.base import AnalogLayerBase

    target = supernet.model
    own = target.state_dict()
    analog = []
    with torch.no_grad():
        for name, module in model.named_modules():
            if not isinstance(module, AnalogLayerBase) or not hasattr(module, "analog_module"):
                continue
            path = name[len("module."):] if name.startswith("module.") else name
            weight, bias = module.get_weights()
            layer, _, part = path.rpartition(".parts.")  # a group of a GroupedConv
            if layer and part.isdigit():
                choice = target.get_submodule(layer)
                n = choice.weight.shape[0] // choice.spec.groups
                rows = slice(int(part) * n, (int(part) + 1) * n)
                choice.weight[rows].copy_(weight.reshape(choice.weight[rows].shape))
                if bias is not None and choice.bias is not None:
                    choice.bias[rows].copy_(bias.reshape(-1))
                analog.append(layer + ".")
                continue
            choice = target.get_submodule(path)
            choice.weight.copy_(weight.reshape(choice.weight.shape))
            if bias is not None and choice.bias is not None:
                choice.bias.copy_(bias.reshape(choice.bias.shape))
            analog.append(path + ".")
        for key, value in model.state_dict().items():
            key = key[len("module."):] if key.startswith("module.") and key not in own else key
            if key in own and own[key].shape == value.shape and \
                    not any(key.startswith(p) for p in analog):
                own[key].copy_(value)


@register_strategy("lionheart")
class LionHeartStrategy(MapperStrategy):
    """thresholds: allowed drop (points of the task metric) below the digital baseline, one
    mapping each; order: "macs" or "tiles" (tile utilisation), descending; round_steps:
    training batches between scorings; patience: LionHeart's score-queue length;
    max_rounds: cap on rounds per conversion; drift_time/repeats/drift_batches: the
    drift-aware score (validation split; drift_batches None = all of it); digital_lr,
    analog_lr, momentum: LionHeart's optimizer; digital: the baseline precision order."""

    name = "lionheart"

    def __init__(self, thresholds: Sequence[float] = (0.5, 1.0, 2.0, 5.0), order: str = "macs",
                 round_steps: int = 20, patience: int = 1, max_rounds: int = 5,
                 drift_time: float = 86400.0, repeats: int = 10,
                 drift_batches: int | None = None, digital_lr: float = 1e-2,
                 analog_lr: float = 1e-3, momentum: float = 0.85,
                 digital: Sequence[str] = ("fp32", "fp16", "int8"), analog: str = "analog",
                 **common: object) -> None:
        super().__init__(**common)  # type: ignore[arg-type]
        if not thresholds or any(t < 0 for t in thresholds):
            raise ConfigError(f"thresholds must be >= 0 points, got {list(thresholds)}")
        if order not in ("macs", "tiles"):
            raise ConfigError(f"order must be 'macs' or 'tiles', got {order!r}")
        if repeats <= 0 or round_steps <= 0 or patience <= 0 or max_rounds <= 0:
            raise ConfigError("repeats, round_steps, patience and max_rounds must be positive")
        if drift_batches is not None and drift_batches <= 0:
            raise ConfigError(f"drift_batches must be positive or None, got {drift_batches}")
        if digital_lr <= 0 or analog_lr <= 0 or not 0 <= momentum < 1:
            raise ConfigError("digital_lr and analog_lr must be > 0 and momentum in [0, 1)")
        self.thresholds = tuple(sorted(float(t) for t in thresholds))
        self.order = order
        self.round_steps, self.patience, self.max_rounds = round_steps, patience, max_rounds
        self.drift_time, self.repeats, self.drift_batches = drift_time, repeats, drift_batches
        self.digital_lr, self.analog_lr, self.momentum = digital_lr, analog_lr, momentum
        self.digital, self.analog = tuple(digital), analog
        self.rpu: Any = None
        self.finals: dict[float, Mapping] = {}
        self.decisions: list[tuple[float, str, float, bool]] = []  # (thr, layer, drop, kept)
        self.scores: dict[Mapping, list[float]] = {}  # per trial: the score after each round
        # (mapping kept so far, layer index) -> (best score, retrained weights): the
        # thresholds' shared greedy prefix, computed once
        self.trials: dict[tuple[Mapping, int], tuple[float, State]] = {}

    def layer_order(self, problem: SearchProblem) -> list[str]:
        inv = problem.supernet.inventory
        key = (lambda n: inv[n].macs) if self.order == "macs" else \
            (lambda n: inv[n].tile_utilisation)
        return sorted(self.analog_layers(problem, self.analog), key=key, reverse=True)

    def _count(self) -> None:
        self.stats.extra_evaluations += 1

    def drift_score(self, work: WorkCopy, mapping: Mapping, model: nn.Module | None = None
                    ) -> float:
        """Mean validation metric at `drift_time` over `repeats` programmings (aihwkit) of
        `model` (default: `mapping` deployed from the working copy with LionHeart's rpu)."""
        from hetmap.evaluation.batchnorm import calibration_inputs
        from hetmap.evaluation.drift import deploy, evaluate_drift

        if self.rpu is None:
            self.rpu = lionheart_rpu_config(chip_tile(work.problem))
        analog = any(c == self.analog for c in mapping.values())
        if not analog:  # the digital baseline: no programming, no drift (a plain model
            # handed to evaluate_drift would be converted all-analog)
            res = evaluate_drift(work.sn, mapping, work.task, times=(self.drift_time,),
                                 repeats=1, seed=work.seed, split="val",
                                 batch_size=work.ev.batch_size, max_batches=self.drift_batches,
                                 device=work.device, bn_batches=work.ev.bn_batches)
            self._count()
            return res.mean[0]
        if model is None:  # deployed as the Evaluator scores it: BatchNorm recalibrated
            bn = calibration_inputs(work.task.loaders(batch_size=work.ev.batch_size,
                                                      seed=work.seed).train,
                                    work.ev.bn_batches, work.device)
            model = deploy(work.sn, mapping, rpu_config=self.rpu, input_ranges="config",
                           bn_inputs=bn)
        res = evaluate_drift(copy.deepcopy(model), None, work.task, times=(self.drift_time,),
                             repeats=self.repeats, seed=work.seed, split="val",
                             batch_size=work.ev.batch_size, max_batches=self.drift_batches,
                             device=work.device)
        self._count()
        return res.mean[0]

    def retrain(self, work: WorkCopy, mapping: Mapping, key: int) -> tuple[float, list[float]]:
        """LionHeart's hardware-aware retraining of `mapping` in aihwkit with early stopping;
        the best-scoring weights are written back into the working copy. Returns (best
        score, the score after each round)."""
        from aihwkit.nn.modules.base import AnalogLayerBase
        from aihwkit.optim import AnalogSGD

        from hetmap.evaluation.drift import deploy
        from hetmap.inputs import call_model

        model = deploy(work.sn, mapping, rpu_config=self.rpu, input_ranges="config")
        analog_ids = {id(p) for m in model.modules() if isinstance(m, AnalogLayerBase)
                      for p in m.parameters()}
        params = [p for p in model.parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if id(p) not in analog_ids],
                   "lr": self.digital_lr},
                  {"params": [p for p in params if id(p) in analog_ids], "lr": self.analog_lr}]
        opt = AnalogSGD([g for g in groups if g["params"]], lr=self.digital_lr,
                        momentum=self.momentum)
        best, scores = 0.0, []
        write_back(work.sn, model)  # the best weights so far live in the working copy
        queue = deque([best] * self.patience, maxlen=self.patience)
        torch.manual_seed(work.seed * 100_003 + key)
        start = (key * 7) % len(work.train)
        step = 0
        for _ in range(self.max_rounds):
            model.train()
            for _ in range(self.round_steps):
                x, y = work.train[(start + step) % len(work.train)]
                loss = work.task.loss(call_model(model, x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
            model.eval()
            score = self.drift_score(work, mapping, model)
            scores.append(score)
            queue.appendleft(score)
            converged = max(queue) < best
            if score > best:
                best = score
                write_back(work.sn, model)
            if converged:
                break
        work.steps += step
        return best, scores

    def run(self, problem: SearchProblem, seed: int = 0) -> None:
        work = self.start(problem, seed)
        self.rpu = lionheart_rpu_config(chip_tile(problem))
        start = digital_start(work.sn, self.digital)
        baseline = self.drift_score(work, start)
        work.score([start])
        self.stats.baseline = baseline
        layers = self.layer_order(problem)
        trials = self.trials = {}
        for thr in self.thresholds:
            current, state = start, work.base
            for k, layer in enumerate(layers):
                if problem.exhausted():
                    break
                trial = current.with_choice(layer, self.analog)
                if (current, k) not in trials:
                    work.restore(state)
                    best, self.scores[trial] = self.retrain(work, trial, key=k)
                    release_memory()  # the deployed aihwkit copy and its optimizer
                    work.score([trial])
                    # the weights it was just scored with: one copy per trial, not two (a
                    # transformer's copies filled 21 GB before this)
                    trained = work.snapshots.get(trial)
                    trials[(current, k)] = (best, work.state() if trained is None else trained)
                score, trained = trials[(current, k)]
                kept = score >= baseline - thr
                self.decisions.append((thr, layer, baseline - score, kept))
                if kept:
                    current, state = trial, trained
            self.finals[thr] = current
            if problem.exhausted():
                break
        work.restore()
        self.stats.train_steps = work.steps
