"""`lionheart`: the greedy analog mapper of Lammie et al. (IEEE TETC 2025, arXiv 2401.09420).

Start all-digital; visit the layers in descending MAC order (or tile utilisation); convert
one to analog, retrain hardware-aware with early stopping, score it after drift (t = 1 day,
several programming repeats, aihwkit); keep the layer analog if the drifted score stays
within `threshold` points of the digital baseline, else revert it (and its weights). One
threshold gives one mapping; the strategy sweeps several. Every trial conversion counts as
an evaluation (scored through the search problem with the weights it was retrained to).

On an adapted (MPAAS) supernet the width choices stay wide throughout (`digital_start`):
LionHeart converts layers, it does not decide widths.

Thresholds share their greedy prefix: a trial is fixed by the mapping kept so far and the
layer visited, so its retrained weights and drift score are computed once and reused.

Analog configuration: whatever the supernet's analog candidate carries, so every mapper
sees the same tiles. `lionheart_config()` gives LionHeart's published settings in
hetmap's terms; differences: its weight noise is multiplicative (w * (1 + 0.08 n)), which
hetmap's candidates do not offer, so it becomes additive per-channel noise of 0.08 x the
channel maximum (harsher on small weights); its weight clip 1.0 with channel-wise
remapping is hetmap's per-channel Gaussian clip.
"""

from __future__ import annotations

from collections.abc import Sequence

from hetmap.candidates.analog import AnalogConfig
from hetmap.errors import ConfigError
from hetmap.mapping import Mapping
from hetmap.search.mappers._common import (
    MapperStrategy,
    State,
    WorkCopy,
    analog_rpu_config,
    digital_start,
)
from hetmap.search.problem import SearchProblem
from hetmap.search.strategy import register_strategy


def lionheart_config(**overrides: object) -> AnalogConfig:
    """LionHeart's analog settings: 256 x 255 tiles, 8-bit DAC/ADC, output noise 0.06,
    training weight noise 0.08 (see the module docstring for the differences)."""
    base = dict(tile_rows=256, tile_cols=255, inp_res=254.0, out_res=254.0, out_noise=0.06,
                weight_noise=0.08, weight_noise_type="add_normal_per_channel")
    return AnalogConfig(**(base | overrides))  # type: ignore[arg-type]


@register_strategy("lionheart")
class LionHeartStrategy(MapperStrategy):
    """thresholds: allowed drop (points of the task metric) below the digital baseline,
    one mapping each; order: "macs" or "tiles" (tile utilisation), descending;
    train_steps/patience/eval_every: retraining per conversion with early stopping;
    drift_time/repeats/drift_batches: the drift-aware score (aihwkit) deciding each layer;
    digital: the baseline precision order (first offered per layer)."""

    name = "lionheart"

    def __init__(self, thresholds: Sequence[float] = (0.5, 1.0, 2.0, 5.0), order: str = "macs",
                 train_steps: int = 20, patience: int | None = 2, eval_every: int = 5,
                 drift_time: float = 86400.0, repeats: int = 3, drift_batches: int = 2,
                 digital: Sequence[str] = ("fp32", "fp16", "int8"), analog: str = "analog",
                 **common: object) -> None:
        super().__init__(**common)  # type: ignore[arg-type]
        if not thresholds or any(t < 0 for t in thresholds):
            raise ConfigError(f"thresholds must be >= 0 points, got {list(thresholds)}")
        if order not in ("macs", "tiles"):
            raise ConfigError(f"order must be 'macs' or 'tiles', got {order!r}")
        if repeats <= 0 or drift_batches <= 0 or train_steps < 0:
            raise ConfigError("repeats and drift_batches must be positive, train_steps >= 0")
        self.thresholds = tuple(sorted(float(t) for t in thresholds))
        self.order = order
        self.train_steps, self.patience, self.eval_every = train_steps, patience, eval_every
        self.drift_time, self.repeats, self.drift_batches = drift_time, repeats, drift_batches
        self.digital, self.analog = tuple(digital), analog
        self.finals: dict[float, Mapping] = {}
        self.decisions: list[tuple[float, str, float, bool]] = []  # (thr, layer, drop, kept)

    def layer_order(self, problem: SearchProblem) -> list[str]:
        inv = problem.supernet.inventory
        key = (lambda n: inv[n].macs) if self.order == "macs" else \
            (lambda n: inv[n].tile_utilisation)
        return sorted(self.analog_layers(problem, self.analog), key=key, reverse=True)

    def drift_score(self, work: WorkCopy, mapping: Mapping) -> float:
        """Mean task metric at `drift_time` over `repeats` programmings (aihwkit)."""
        from hetmap.evaluation.drift import evaluate_drift

        analog = any(c == self.analog for c in mapping.values())
        res = evaluate_drift(work.sn, mapping, work.task, times=(self.drift_time,),
                             repeats=self.repeats if analog else 1, seed=work.seed,
                             split="val", batch_size=work.ev.batch_size,
                             max_batches=self.drift_batches, device=work.device,
                             rpu_config=self.rpu)
        self.stats["drift_evaluations"] = self.stats.get("drift_evaluations", 0) + 1
        return res.mean[0]

    def run(self, problem: SearchProblem, seed: int = 0) -> None:
        work = self.start(problem, seed)
        self.rpu = analog_rpu_config(work.sn)
        start = digital_start(work.sn, self.digital)
        baseline = self.drift_score(work, start)
        work.score([start])
        self.stats["baseline"] = baseline
        layers = self.layer_order(problem)
        trials: dict[tuple[Mapping, int], tuple[float, State]] = {}
        for thr in self.thresholds:
            current, state = start, work.base
            for k, layer in enumerate(layers):
                if problem.exhausted():
                    break
                trial = current.with_choice(layer, self.analog)
                if (current, k) not in trials:
                    work.restore(state)
                    work.finetune(trial, self.train_steps, self.lr, key=k,
                                  patience=self.patience, eval_every=self.eval_every)
                    work.score([trial])
                    trials[(current, k)] = (self.drift_score(work, trial), work.state())
                score, trained = trials[(current, k)]
                kept = baseline - score <= thr
                self.decisions.append((thr, layer, baseline - score, kept))
                if kept:
                    current, state = trial, trained
            self.finals[thr] = current
            if problem.exhausted():
                break
        work.restore()
        self.stats["train_steps"] = work.steps
