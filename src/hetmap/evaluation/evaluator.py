"""Scores of mappings on the supernet's shared weights: the task metric after per-mapping
BatchNorm recalibration, plus hardware objectives gathered from the objective/cost tables.

Why recalibrate: a weight-sharing supernet's BatchNorm statistics are averaged over every
path trained, which misstates any single path; re-estimating them on a fixed handful of
training batches (cumulative average) is the standard one-shot-NAS fix and costs a few
forward passes. The shared statistics are restored afterwards, so evaluation never changes
the supernet, and the same fixed batches make every score reproducible. The mappings of
one call are scored together (`hetmap.evaluation.shared`): work on the layers they agree on,
upstream in execution order, is done once, with bit-identical scores; `sharing=False` is
the naive loop.

Accuracy at a horizon (`accuracy@1d`, `accuracy@1y:p10`, see `objectives`): after the same
recalibration, the mapping's analog layers are programmed `draws` times on PCM by the fast
PCM mode (`hetmap.candidates.analog.pcm`: aihwkit's PCMLikeNoiseModel and global drift
compensation on hetmap's engine), drifted to the horizon and scored on the same batches;
the per-draw scores are cached per (mapping, time) and summarised by the objective's
statistic. Draws depend on (seed, layer, draw) only, so mappings sharing an analog layer see
the same programmed devices (common random numbers: differences between mappings are not
noise). These are hetmap's estimates; `evaluate_drift` measures the same with aihwkit.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from hetmap.candidates.analog.pcm import PCMDraws, PCMModel
from hetmap.distributed import world as _world
from hetmap.errors import ConfigError
from hetmap.evaluation.batchnorm import batchnorms, calibration_inputs, recalibrate_batchnorm
from hetmap.evaluation.objectives import (
    DEFAULT_OBJECTIVES,
    DERIVED,
    OBJECTIVES,
    Horizon,
    Objective,
    check_objectives,
    get_objective,
    to_minimisation,
)
from hetmap.evaluation.scores import Scores
from hetmap.evaluation.shared import Replay, ReplayMismatch, SharedPaths
from hetmap.mapping import Mapping
from hetmap.supernet import Supernet

_SAME = object()  # Evaluator.on: keep this Evaluator's value


class Evaluator:
    """Scores mappings of one supernet on one task; accuracies are cached by mapping.

    bn_batches: training batches used to recalibrate BatchNorm for each mapping (0: off).
    split: "val" (default; every selection step) or "test" (final reporting only: the
        task's test loader is sealed, so scores must be asked for inside
        `hetmap.tasks.final_scoring()`).
    val_batches: batches of `split` scored (None: the whole split).
    reference: the mapping whose accuracy `accuracy_drop` is measured from (default:
        all-fp32), or that accuracy as a number.
    accuracy_range: (worst, best) task metric used to normalise hypervolume.
    draws: PCM programming draws per mapping for `accuracy@<horizon>` objectives.
    pcm: the PCM statistics (default: those of the supernet's analog config's aihwkit
        rpu config, i.e. PCMLikeNoiseModel(g_max=25) + GlobalDriftCompensation).
    sharing: score the mappings of a call together, sharing the work of the layers they
        agree on (`hetmap.evaluation.shared`; bit-identical scores); False: the naive loop,
        one recalibration and one scoring pass per mapping. Models torch.fx cannot trace
        are always scored by the naive loop.
    group_size: mappings run together at most (bounds the activations held at once).
    """

    def __init__(self, supernet: Supernet, task: Any = None, *,
                 objectives: Sequence[str] = DEFAULT_OBJECTIVES, cost_table: Any = None,
                 bn_batches: int = 4, split: str = "val", val_batches: int | None = None,
                 batch_size: int = 256,
                 device: torch.device | str = "cpu", seed: int = 0,
                 reference: Mapping | float | None = None,
                 accuracy_range: tuple[float, float] = (0.0, 100.0), draws: int = 8,
                 pcm: PCMModel | None = None, sharing: bool = True,
                 group_size: int = 16) -> None:
        self.supernet = supernet
        self.task = task
        self.objectives: tuple[Objective, ...] = check_objectives(objectives,
                                                                  cost_table is not None)
        self.cost_table = cost_table
        self.device = torch.device(device)
        self.seed = seed
        if split not in ("val", "test"):
            raise ConfigError(f"split must be 'val' (selection) or 'test' (reporting), "
                              f"got {split!r}")
        self.split = split
        if bn_batches < 0:
            raise ConfigError(f"bn_batches must be >= 0, got {bn_batches}")
        if val_batches is not None and val_batches <= 0:
            raise ConfigError(f"val_batches must be positive or None, got {val_batches}")
        if accuracy_range[0] >= accuracy_range[1]:
            raise ConfigError(f"accuracy_range must be (worst, best), got {accuracy_range}")
        self.accuracy_range = (float(accuracy_range[0]), float(accuracy_range[1]))
        if draws <= 0:
            raise ConfigError(f"draws must be positive, got {draws}")
        self.draws = draws
        self._pcm = pcm
        if group_size <= 0:
            raise ConfigError(f"group_size must be positive, got {group_size}")
        self.sharing = sharing
        self.group_size = group_size
        self._shared: SharedPaths | bool | None = False  # False: not traced yet
        self.bn_batches = bn_batches
        self.val_batches = val_batches
        self.batch_size = batch_size
        self._reference = reference
        self.cache: dict[Mapping, float] = {}
        self.drift_cache: dict[tuple[Mapping, float], tuple[float, ...]] = {}  # per draw
        self.evaluations = 0  # accuracies computed (cache misses), over all ranks
        self.local_evaluations = 0  # of which this process computed
        self.seconds = 0.0  # wall time spent computing them
        self._data: tuple[list[Any], list[Any]] | None = None
        self._bounds: tuple[np.ndarray, np.ndarray] | None = None
        self._valid: set[tuple[Mapping, str | None]] = set()
        self._bns = batchnorms(supernet)
        if self.needs_accuracy and task is None:
            raise ConfigError("an accuracy objective needs a task: pass "
                              "Evaluator(supernet, hetmap.tasks.get_task(...))")

    # -- names ------------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.objectives)

    def on(self, supernet: Supernet, reference: Mapping | float | None = None, *,
           objectives: Sequence[str] | None = None, cost_table: Any = None,
           split: str | None = None, val_batches: int | object | None = _SAME,
           same_normalisation: bool = False) -> Evaluator:
        """An Evaluator with these settings (objectives, cost table, data, seed, PCM
        statistics) on another supernet, e.g. a mapper's fine-tuned copy; fresh caches.
        `reference`: its `accuracy_drop` reference (default: its all-fp32 mapping);
        `objectives`, `cost_table`: others than these (e.g. a drift-aware search's, or the
        table of a supernet offering more candidates); `split`, `val_batches`: another
        split and how many of its batches (None: all), e.g. the final test-split scoring;
        `same_normalisation`: hypervolumes on these ideal and worst points (this
        supernet's), so the two compare."""
        out = Evaluator(supernet, self.task,
                        objectives=self.names if objectives is None else objectives,
                        cost_table=self.cost_table if cost_table is None else cost_table,
                        bn_batches=self.bn_batches, split=self.split if split is None else split,
                        val_batches=self.val_batches if val_batches is _SAME
                        else val_batches,  # type: ignore[arg-type]
                        batch_size=self.batch_size,
                        device=self.device, seed=self.seed, reference=reference,
                        accuracy_range=self.accuracy_range, draws=self.draws, pcm=self.pcm,
                        sharing=self.sharing, group_size=self.group_size)
        if same_normalisation:
            out._bounds = self.bounds()
        return out

    @property
    def needs_accuracy(self) -> bool:
        return any(o.source == "task" for o in self.objectives)

    @property
    def pcm(self) -> PCMModel:
        """The PCM statistics the horizon objectives draw from."""
        if self._pcm is None:
            self._pcm = _pcm_of(self.supernet)
        return self._pcm

    # -- data -------------------------------------------------------------------------------
    def _batches(self) -> tuple[list[Any], list[Any]]:
        """BN-recalibration inputs (train split) and scored batches (`self.split`), drawn
        once and kept in memory."""
        if self._data is None:
            from hetmap.tasks import move_batch

            loaders = self.task.loaders(batch_size=self.batch_size, seed=self.seed)
            bn = calibration_inputs(loaders.train, self.bn_batches, self.device) \
                if self._bns else []
            val = [move_batch(b, self.device)
                   for b in itertools.islice(getattr(loaders, self.split), self.val_batches)]
            if not val:
                raise ConfigError(f"task {self.task.name!r} has an empty {self.split} split")
            self._data = (bn, val)
        return self._data

    # -- accuracy ---------------------------------------------------------------------------
    def accuracy(self, mapping: Mapping) -> float:
        """The task metric of `mapping` (cached)."""
        return self.accuracies([mapping])[0]

    def accuracies(self, mappings: Sequence[Mapping]) -> list[float]:
        """Task metrics of `mappings`; uncached ones are computed (split across ranks under
        torch.distributed, so every rank must call this with the same mappings)."""
        self._ensure(mappings, (None,))
        return [self.cache[m] for m in mappings]

    def accuracies_at(self, mappings: Sequence[Mapping], seconds: float
                      ) -> list[tuple[float, ...]]:
        """Per-draw task metrics of `mappings` `seconds` after PCM programming (the fast
        PCM estimate; `draws` values each, cached)."""
        if seconds < 0:
            raise ConfigError(f"a horizon is >= 0 s after programming, got {seconds}")
        t = float(seconds)
        self._ensure(mappings, (t,))
        return [self.drift_cache[(m, t)] for m in mappings]

    def _ensure(self, mappings: Sequence[Mapping], times: Sequence[float | None]) -> None:
        """Compute what is missing of eval-mode accuracy (None) and the per-draw accuracies
        at `times` for `mappings`, one recalibration per mapping."""
        self.validate(mappings)

        def missing(m: Mapping) -> tuple[float | None, ...]:
            return tuple(t for t in times if (m not in self.cache if t is None
                                              else (m, t) not in self.drift_cache))

        todo = list(dict.fromkeys(m for m in mappings if missing(m)))
        if not todo:
            return
        start = time.perf_counter()
        world, rank = _world()
        shared = self.shared_paths()
        if shared is None:
            mine = todo[rank::world]
        else:  # neighbours in execution order share prefixes: give each rank a block
            todo = [todo[i] for i in shared.order(todo)]
            mine = todo[rank * len(todo) // world:(rank + 1) * len(todo) // world]
        results = dict(zip(mine, self._compute(mine, [missing(m) for m in mine])))
        self.local_evaluations += len(mine)
        if world > 1:
            gathered: list[Any] = [None] * world
            torch.distributed.all_gather_object(
                gathered, [(m.to_dict(), v) for m, v in results.items()])
            results = {Mapping.from_dict(d): v for part in gathered for d, v in part}
        for m, values in results.items():
            for t, v in values.items():
                if t is None:
                    self.cache[m] = v
                else:
                    self.drift_cache[(m, t)] = v
        self.evaluations += len(todo)
        self.seconds += time.perf_counter() - start

    @torch.no_grad()
    def _compute(self, mappings: Sequence[Mapping],
                 wanted: Sequence[Sequence[float | None]]) -> list[dict[float | None, Any]]:
        """For each mapping, {None: eval-mode metric, t: per-draw metrics at t} for the
        times it wants."""
        if not mappings:
            return []
        bn_inputs, val = self._batches()
        sn = self.supernet
        saved_training = sn.training
        saved_bn = [(m, m.running_mean.clone(), m.running_var.clone(),
                     m.num_batches_tracked.clone(), m.momentum) for m in self._bns]
        out: list[dict[float | None, Any]] = []
        with sn.keeping_paths():
            try:
                sn.eval()
                shared = self.shared_paths()
                if shared is None:
                    for mapping, times in zip(mappings, wanted):
                        sn.use(mapping)
                        if self._bns and bn_inputs:
                            self._recalibrate(bn_inputs)
                        out.append(self._measure(times, val))
                else:
                    results: dict[int, dict[float | None, Any]] = {}
                    for group in shared.groups(mappings):
                        values = self._compute_shared(shared, [mappings[i] for i in group],
                                                      [wanted[i] for i in group], bn_inputs,
                                                      val)
                        results.update(zip(group, values))
                    out = [results[i] for i in range(len(mappings))]
            finally:
                for m, mean, var, count, momentum in saved_bn:
                    m.running_mean.copy_(mean)
                    m.running_var.copy_(var)
                    m.num_batches_tracked.copy_(count)
                    m.momentum = momentum
                sn.train(saved_training)
        return out

    def shared_paths(self) -> SharedPaths | None:
        """The shared runner of this supernet (None: sharing off or the model untraceable)."""
        if not self.sharing:
            return None
        if self._shared is False:
            self._shared = SharedPaths.of(self.supernet, self._bns, self.group_size)
        return self._shared  # type: ignore[return-value]

    def _compute_shared(self, shared: SharedPaths, mappings: Sequence[Mapping],
                        wanted: Sequence[Sequence[float | None]], bn_inputs: list[Any],
                        val: list[Any]) -> list[dict[float | None, Any]]:
        """`_compute` of one group of mappings run together: recalibration and the
        eval-mode pass shared; the PCM draws of horizon objectives per mapping on its
        shared recalibration."""
        stats = shared.recalibrate(mappings, bn_inputs) if self._bns and bn_inputs else {}
        scored = [i for i, times in enumerate(wanted) if None in times]
        inputs = [batch[0] for batch in val]
        outputs = dict(zip(scored, shared.outputs([mappings[i] for i in scored], inputs,
                                                  stats)))
        out = []
        for i, (mapping, times) in enumerate(zip(mappings, wanted)):
            values: dict[float | None, Any] = {}
            rest = [t for t in times if t is not None]
            if i in outputs:
                try:
                    values[None] = float(self.task.metric(Replay(inputs, outputs.pop(i)),
                                                          val, self.device))
                except ReplayMismatch:  # a metric that does not call the model per batch
                    rest.insert(0, None)
            if rest:
                self.supernet.use(mapping)
                shared.load(mapping, stats)
                values.update(self._measure(rest, val))
            out.append(values)
        return out

    def _measure(self, times: Sequence[float | None], val: list[Any]
                 ) -> dict[float | None, Any]:
        """The active (recalibrated) mapping's metric in eval mode and per PCM draw."""
        values: dict[float | None, Any] = {}
        draws = None
        for t in times:
            if t is None:
                values[None] = float(self.task.metric(self.supernet, val, self.device))
                continue
            if draws is None:
                draws = PCMDraws(self.supernet, self.draws, seed=self.seed, model=self.pcm)
            per_draw = []
            for d in range(self.draws):
                with draws.at(t, d):
                    per_draw.append(float(self.task.metric(self.supernet, val, self.device)))
            values[t] = tuple(per_draw)
        return values

    def _recalibrate(self, inputs: Sequence[Any]) -> None:
        """Cumulative-average BN statistics of the active path (`recalibrate_batchnorm`, which
        `deploy` uses too)."""
        recalibrate_batchnorm(self.supernet, inputs, self._bns)

    # -- reference --------------------------------------------------------------------------
    def reference_accuracy(self) -> float:
        """Accuracy that `accuracy_drop` is measured from."""
        ref = self._reference
        if isinstance(ref, int | float):
            return float(ref)
        if ref is None:
            try:
                ref = Mapping.uniform(self.supernet, "fp32")
            except Exception:
                raise ConfigError("accuracy_drop needs a reference: fp32 is not offered on "
                                  "every layer, so pass Evaluator(reference=<mapping or "
                                  "accuracy>)") from None
            self._reference = ref
        return self.accuracy(ref)

    # -- all scores -------------------------------------------------------------------------
    def validate(self, mappings: Sequence[Mapping]) -> None:
        """Validate each distinct mapping against the supernet once."""
        for m in mappings:
            key = (m, m.model)
            if key not in self._valid:
                m.validate(self.supernet)
                self._valid.add(key)

    def indices(self, mappings: Sequence[Mapping]) -> np.ndarray:
        """(N, all layers) table columns: `Supernet.mapping_indices` (excluded layers on
        their only candidate, width choices selecting each layer's shape variant)."""
        return np.asarray(self.supernet.mapping_indices(mappings))

    def hardware(self, mappings: Sequence[Mapping]) -> dict[str, np.ndarray]:
        """Hardware quantities of a batch (vectorised gathers, no model run)."""
        idx = self.indices(list(mappings))
        values = dict(self.supernet.table.evaluate_indices(idx))
        if self.cost_table is not None:
            cost = self.cost_table.evaluate_indices(idx, check_tiles=False)
            for name in ("latency_s", "energy_j", "tile_overflow"):
                values[name] = np.asarray(cost[name], dtype=float)
        return values

    def scores(self, mappings: Sequence[Mapping],
               extra: Sequence[str] = ()) -> list[Scores]:
        """Objective values (natural units and directions) of each mapping, plus the
        `extra` quantities asked for (e.g. constraint inputs like 'accuracy_drop')."""
        mappings = list(mappings)
        if not mappings:
            return []
        wanted = list(dict.fromkeys([*self.names, *extra]))
        horizons: dict[str, Horizon] = {}
        for name in wanted:
            if "@" in name:
                h = get_objective(name).horizon
                assert h is not None
                horizons[name] = h
            elif name not in OBJECTIVES and name not in DERIVED:
                raise ConfigError(f"unknown quantity {name!r}; choose from "
                                  f"{', '.join([*OBJECTIVES, *DERIVED])} or "
                                  "accuracy@<time> (e.g. accuracy@1d)")
        self.validate(mappings)
        hw = self.hardware(mappings)
        for name in wanted:
            needs_cost = name == "tile_overflow" or (name in OBJECTIVES
                                                     and OBJECTIVES[name].source == "cost")
            if needs_cost and name not in hw:
                raise ConfigError(f"{name!r} needs a cost table: pass cost_table="
                                  "hetmap.hardware.table_for(supernet, 'hermes-pcm')")
        need_acc = "accuracy" in wanted or "accuracy_drop" in wanted
        times = sorted({h.seconds for h in horizons.values()})
        self._ensure(mappings, ([None] if need_acc else []) + times)  # one pass per mapping
        acc = self.accuracies(mappings) if need_acc else None
        ref = self.reference_accuracy() if "accuracy_drop" in wanted else 0.0
        rows = []
        for i in range(len(mappings)):
            row = {}
            for name in wanted:
                if name in horizons:
                    h = horizons[name]
                    row[name] = h.summarise(self.drift_cache[(mappings[i], h.seconds)])
                elif name == "accuracy":
                    row[name] = acc[i]  # type: ignore[index]
                elif name == "accuracy_drop":
                    row[name] = ref - acc[i]  # type: ignore[index]
                else:
                    row[name] = float(hw[name][i])
            rows.append(Scores(row))
        return rows

    def matrix(self, mappings: Sequence[Mapping]) -> np.ndarray:
        """(N, objectives) in minimisation form (maximised objectives negated)."""
        return to_minimisation(self.scores(mappings), self.objectives)

    # -- normalisation ----------------------------------------------------------------------
    def bounds(self, samples: int = 2048) -> tuple[np.ndarray, np.ndarray]:
        """(ideal, worst) of each objective in minimisation form over the mapping space.

        Accuracy uses `accuracy_range`; ratios use [0, 1]; additive hardware quantities the
        extremes over the uniform mappings and `samples` random ones (hardware scores are
        free). Fixed per evaluator, so hypervolumes of different searches compare."""
        if self._bounds is None:
            sn = self.supernet
            rng = np.random.default_rng(self.seed)
            cands = sorted({c for n in sn.layer_names for c in sn.candidates(n)})
            pool = []
            for c in cands:  # uniform mappings, width choices (if any) all narrow / all wide
                for fill in ((0, -1) if sn.gate_names else (0,)):
                    pool.append(Mapping({n: c if c in sn.candidates(n) else
                                         sn.candidates(n)[fill] for n in sn.layer_names},
                                        sn.fingerprint))
            for _ in range(samples):
                pool.append(Mapping({n: sn.candidates(n)[rng.integers(len(sn.candidates(n)))]
                                     for n in sn.layer_names}, sn.fingerprint))
            hw = self.hardware(pool)
            ideal, worst = [], []
            for o in self.objectives:
                if o.source == "task":
                    lo, hi = self.accuracy_range
                elif o.span is not None:
                    lo, hi = o.span
                else:
                    v = hw[o.name]
                    lo, hi = float(np.min(v)), float(np.max(v))
                    if hi <= lo:
                        hi = lo + max(abs(lo), 1.0) * 1e-6
                best, bad = (hi, lo) if o.direction == "max" else (lo, hi)
                ideal.append(o.sign * best)
                worst.append(o.sign * bad)
            self._bounds = (np.array(ideal), np.array(worst))
        return self._bounds

    def reference_point(self, margin: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
        """(ideal, ref) for `hypervolume`: ref is the worst point pushed out by `margin` of
        the range, so mappings at an extreme still add volume."""
        ideal, worst = self.bounds()
        return ideal, worst + margin * (worst - ideal)


def _pcm_of(supernet: Supernet) -> PCMModel:
    """The PCM statistics of the aihwkit rpu config the supernet's analog layers deploy
    with (`AnalogConfig.to_aihwkit`), so estimate and aihwkit measure the same model."""
    from hetmap.candidates.analog import AnalogCandidate

    cand = next((m for m in supernet.modules() if isinstance(m, AnalogCandidate)), None)
    if cand is None:
        return PCMModel()
    rpu = cand.config.to_aihwkit()
    return PCMModel.from_aihwkit(rpu.noise_model, rpu.drift_compensation)
