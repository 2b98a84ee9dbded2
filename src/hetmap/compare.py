"""Every mapper on the same footing: one task, one pretrained model, one hardware spec, one
stage-1/2 trained supernet, one unit of compute, one scoring path.

Per seed: the supernet built from the pretrained model gets hetmap's stage 1 and 2 (weight
training) once; every method starts from a copy of that trained supernet. `mps` then runs
stage 3 (its preference learning; its evaluations are counted as `mps`'s), `random` and
`mps` search the shared weights, the other mappers train private copies (LionHeart in
aihwkit with its own recipe, ODiMo's warm-up/search/fine-tune, NSGA-II's per-candidate
fine-tune) and keep the weights behind each mapping they scored. Uniform anchors go to
every population method (mps, nsga2) or to none (`anchors`).

Compute is measured for every method in one unit, sample-passes (`Meter`): a forward pass
of one sample through a model in training mode with gradients on counts as a training
sample-pass (forward + backward), any other as an evaluation sample-pass (forward only:
scoring, BatchNorm recalibration, drift scoring, distillation teachers). All selection reads
the validation split. Every front member is then re-scored the same way on the weights it
was found with, inside `hetmap.tasks.final_scoring()` on the test split: task metric by an
Evaluator(split="test") over the whole test split, hardware numbers by the ObjectiveTable
and the CostTable, accuracy after programming and drift by `evaluate_drift(split="test")`
with the supernet's analog configuration (one chip model for every method). Hypervolumes
share one normalisation (the Evaluator's ideal and reference points). Remaining shortcuts:
docs/compare.md.
"""

from __future__ import annotations

import copy
import os
import time
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

import hetmap.search.mappers  # noqa: F401 - registers the competing mappers
from hetmap.errors import ConfigError, UnknownCandidateError
from hetmap.evaluation import Evaluator, shared
from hetmap.mapping import Mapping
from hetmap.report.comparison import (
    FEW_SAMPLES,
    Comparison,
    ComparisonSettings,
    Compute,
    MappingRecord,
    MethodRun,
    MethodSummary,
    Spread,
    TileFit,
    ci95,
    drift_key,
    mean_std,
    time_label,
)
from hetmap.search import Budget, Member, ParetoFront, get_strategy, search, spread
from hetmap.search.mappers import MapperStrategy
from hetmap.supernet import Supernet, build_supernet

__all__ = ["FEW_SAMPLES", "METHODS", "Comparison", "Compute", "MappingRecord", "Meter",
           "MethodRun", "MethodSpec", "MethodSummary", "Spread", "TileFit", "adapted_model", "ci95",
           "compare", "compare_config", "drift_key", "mean_std", "method_specs", "time_label"]

METHODS = ("anchors", "random", "mps", "lionheart", "odimo", "nsga2", "harmonica")
SHARED = ("mps", "random")  # strategies that search the trained supernet's shared weights
POPULATION = ("mps", "nsga2")  # population methods: anchors go to all of them or to none
DRIFT_ALL = ("anchors",)  # strategies whose every member is kept and drift-scored (references)
# -- compute ---------------------------------------------------------------------------------
def _batch_size(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    for value in (*args, *kwargs.values()):
        if isinstance(value, Tensor):
            return int(value.shape[0]) if value.dim() else 1
        if isinstance(value, dict):
            return _batch_size((), value)
    return 0


class Meter:
    """Counts sample-passes of every top-level model call while open (`with Meter() as m`).

    A call is top-level when no other module call encloses it; modules without parameters
    (losses, containers of nothing) are not models and are not counted. `timeline` holds
    (perf_counter, training, evaluation) after every counted call, for compute curves."""

    def __init__(self) -> None:
        self.train_passes = 0
        self.eval_passes = 0
        self.timeline: list[tuple[float, int, int]] = []
        self._depth = 0
        self._handles: list[Any] = []
        self._start = (0.0, 0.0)
        self.wall_s = self.cpu_s = 0.0

    def _pre(self, module: nn.Module, args: Any) -> None:
        self._depth += 1

    def _post(self, module: nn.Module, args: Any, *rest: Any) -> None:
        # (kwargs, output) normally; (output,) when the forward raised (always_call)
        self._depth -= 1
        if self._depth > 0 or shared.running() or next(module.parameters(), None) is None:
            return  # a shared scoring run reports its passes itself (_shared_passes)
        kwargs = rest[0] if len(rest) == 2 and isinstance(rest[0], dict) else {}
        n = _batch_size(tuple(args), kwargs)
        if module.training and torch.is_grad_enabled():
            self.train_passes += n
        else:
            self.eval_passes += n
        self.timeline.append((time.perf_counter(), self.train_passes, self.eval_passes))

    def __enter__(self) -> Meter:
        from torch.nn.modules.module import (
            register_module_forward_hook,
            register_module_forward_pre_hook,
        )

        self._depth = 0
        shared.PASS_OBSERVERS.append(self._shared_passes)
        self._handles = [register_module_forward_pre_hook(self._pre),
                         register_module_forward_hook(self._post, with_kwargs=True,
                                                      always_call=True)]
        self._start = (time.perf_counter(), time.process_time())
        return self

    def _shared_passes(self, samples: int) -> None:
        """A shared scoring run (hetmap.evaluation.shared), charged as the naive loop."""
        self.eval_passes += samples
        self.timeline.append((time.perf_counter(), self.train_passes, self.eval_passes))

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        shared.PASS_OBSERVERS.remove(self._shared_passes)
        self.wall_s = time.perf_counter() - self._start[0]
        self.cpu_s = time.process_time() - self._start[1]

    @property
    def compute(self) -> Compute:
        return Compute(self.train_passes, self.eval_passes, self.wall_s, self.cpu_s)

    def passes_at(self, t: float) -> int:
        """Sample-passes counted up to perf_counter time `t`."""
        i = bisect_right([e[0] for e in self.timeline], t)
        return 0 if i == 0 else self.timeline[i - 1][1] + self.timeline[i - 1][2]


# -- methods ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class MethodSpec:
    """One compared method: `label` names it in the tables, `strategy` is the registered
    strategy it runs (with `options`), `objectives` what its search optimises (None: the
    comparison's shared objectives; e.g. `accuracy@1d` for a drift-aware search). Every
    method's front is re-scored on the shared objectives, so they stay comparable."""

    label: str
    strategy: str
    options: dict[str, Any] = field(default_factory=dict)
    objectives: tuple[str, ...] | None = None

    def options_with(self, given: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """This method's options updated by `given[label]` (compare's `options` argument)."""
        return {**self.options, **given.get(self.label, {})}

    @classmethod
    def of(cls, method: str | MethodSpec) -> MethodSpec:
        if isinstance(method, MethodSpec):
            return method
        if not isinstance(method, str):
            raise ConfigError(f"a method is a strategy name or a MethodSpec, got "
                              f"{type(method).__name__}")
        return cls(method, method)


def method_specs(methods: Sequence[str | MethodSpec]) -> list[MethodSpec]:
    """`methods` as specs, checked: known strategies, unique labels."""
    specs = [MethodSpec.of(m) for m in methods]
    known = set(METHODS) | set(_registered())
    unknown = [s.strategy for s in specs if s.strategy not in known]
    if unknown:
        raise ConfigError(f"unknown methods {unknown}; choose from {', '.join(sorted(known))}")
    labels = [s.label for s in specs]
    twice = sorted({x for x in labels if labels.count(x) > 1})
    if twice:
        raise ConfigError(f"methods {twice} are named twice; give each MethodSpec its own label")
    return specs


# -- the comparison --------------------------------------------------------------------------
def compare_config(cfg: Any, methods: Sequence[str | MethodSpec] = METHODS, *,
                   seeds: int = 3, anchors: bool = False, drift_members: int | None = None,
                   out: str | os.PathLike[str] | None = None,
                   log: Callable[[str], Any] = print) -> Comparison:
    """`compare` with every setting a RunConfig holds: the task and model (its checkpoint,
    or a pretraining of `model.pretrain_epochs`), `method: mpaas` (the model widened by
    `adapt` first, as `hetmap run` does), candidates, exclude, hardware, analog, train
    (the shared stage 1 + 2 and mps's stage 3), search (evaluations and seconds: every
    method's budget; objectives; draws), drift (times, repeats, members) and seeds
    `seed`, `seed + 1`, ... Constraints are not applied: every method is compared on its
    whole front. A comparison runs on the CPU: `device: cuda` is refused, and `auto` says
    so when a GPU is present."""
    from hetmap.pipeline import make_task

    if cfg.device == "cuda":
        raise ConfigError("hetmap compare runs every method on the CPU (its shared stage "
                          "1-2, mappers and drift scoring are not moved to a GPU); set "
                          "device: cpu or auto")
    if cfg.device == "auto" and torch.cuda.is_available():
        log("compare runs on the CPU; the GPU present is not used")

    task = make_task(cfg)
    model = None
    if cfg.model.checkpoint is not None:
        from hetmap.tasks.checkpoints import load_checkpoint

        model = task.build_model()
        load_checkpoint(model, cfg.model.checkpoint)
    elif cfg.method == "mpaas":
        from hetmap.training import pretrain

        model, _ = pretrain(task, epochs=cfg.model.pretrain_epochs, seed=cfg.seed,
                            progress=False, log=log)
    widths: tuple[Any, ...] = ()
    if cfg.method == "mpaas":
        from hetmap.adaptation import width_groups

        # as `hetmap run` does: widened to fill the tiles; adapt.search: every widened
        # group's width (original or adapted) a searchable choice of every method
        adapted, report = _adapt(model, task, cfg.hardware, cfg.analog,
                                 cfg.adapt.policy(cfg.seed))
        if report.widened:
            model = adapted
            widths = width_groups(report) if cfg.adapt.search else ()
        else:
            log("mpaas: no group widens on this chip; the model is compared as given")
    budget = Budget(evaluations=cfg.search.evaluations, seconds=cfg.search.seconds)
    specs = method_specs(methods)
    stage3 = cfg.train.stage3.model_dump(include={"steps", "n_mappings", "exploration",
                                                  "margin", "lr"})
    return compare(task, model, cfg.hardware, specs,
                   budgets={s.label: budget for s in specs}, candidates=cfg.candidates,
                   analog=cfg.analog, train_config=cfg.train.model_copy(
                       update={"progress": False}), stage3=stage3, anchors=anchors,
                   pretrain_epochs=cfg.model.pretrain_epochs or 2,
                   drift_times=cfg.drift.times, drift_repeats=cfg.drift.repeats,
                   drift_members=drift_members or cfg.drift.members or 3,
                   draws=cfg.search.draws, seeds=[cfg.seed + k for k in range(seeds)],
                   out=out, exclude=cfg.exclude, objectives=cfg.search.objectives,
                   widths=widths, log=log)


def adapted_model(model: nn.Module, task: Any, hardware: Any, analog: Any = None,
                  policy: Any = None) -> nn.Module | None:
    """MPAAS's network: every widenable group widened to fill the chip's tiles (None when
    nothing widens)."""
    adapted, report = _adapt(model, task, hardware, analog, policy)
    return adapted if report.widened else None


def _adapt(model: nn.Module, task: Any, hardware: Any, analog: Any, policy: Any
           ) -> tuple[nn.Module, Any]:
    """`adaptation.adapt` against the chip's tiles: the widened model and its report."""
    from hetmap.adaptation import AdaptPolicy, adapt
    from hetmap.candidates.analog import AnalogConfig
    from hetmap.config import analog_for_hardware

    tile = analog_for_hardware(analog if analog is not None else AnalogConfig(), hardware).tile
    return adapt(model, task.example_input(8), tile=tile,
                 policy=policy if policy is not None else AdaptPolicy(), hardware=hardware)


def all_analog_fit(supernet: Supernet, cost_table: Any) -> TileFit | None:
    """The tiles the all-analog mapping of `supernet` needs against the chip's, and whether
    it fits (an all-analog anchor that does not fit has no row); None without an analog
    core or candidate."""
    analog = getattr(getattr(cost_table, "hw", None), "analog", None)
    if analog is None or not any("analog" in supernet.candidates(n)
                                 for n in supernet.layer_names):
        return None
    try:
        mapping = Mapping.uniform(supernet, "analog", fallback="fp32")
    except UnknownCandidateError:  # a layer offers neither: no all-analog anchor either
        return None
    cost = cost_table.evaluate_indices(np.asarray(supernet.mapping_indices([mapping])),
                                       check_tiles=False)
    return TileFit(tiles=int(cost["analog_tiles"][0]), chip_tiles=int(analog.n_tiles),
                   tile=f"{analog.tile_rows}x{analog.tile_cols}", fits=bool(cost["fits"][0]))


def default_train_config(seed: int) -> Any:
    """A short stage 1 + 2 (shared by every method) for small comparisons."""
    from hetmap.training import make_config

    return make_config(seed=seed, batch_size=64, progress=False, eval_each_epoch=False,
                       stage1={"epochs": 1, "max_steps": 10},
                       stage2={"epochs": 1, "max_steps": 10}, stage3={"steps": 0,
                                                                     "tau_mappings": 0})


def compare(task: Any, model: nn.Module | None = None, hardware: Any = "hermes-pcm",
            methods: Sequence[str | MethodSpec] = METHODS, budgets: dict[str, Any] | None = None,
            options: dict[str, dict[str, Any]] | None = None, *,
            candidates: Sequence[str] = ("fp32", "fp16", "int8", "analog"),
            analog: Any = None, train_config: Any = None,
            stage3: dict[str, Any] | None = None, anchors: bool = False,
            pretrain_epochs: int = 2, bn_batches: int = 2, val_batches: int | None = None,
            batch_size: int = 128, accuracy_window: float = 25.0,
            drift_times: Sequence[float] = (0.0, 86400.0), drift_repeats: int = 5,
            drift_batches: int | None = None, drift_members: int = 3, draws: int = 8,
            seeds: int | Sequence[int] = 1, out: str | os.PathLike[str] | None = None,
            exclude: Sequence[str] = (), objectives: Sequence[str] | None = None,
            widths: Sequence[Any] = (), log: Callable[[str], Any] = print) -> Comparison:
    """Run every method in `methods` on one task, model and hardware over `seeds`.

    task: a Task or its name; model: the pretrained model (None: pretrain
    `pretrain_epochs` epochs, seed 0); budgets: method -> Budget/int/float (default 24
    evaluations); options: method -> strategy options; train_config: the shared stage 1 + 2
    (a TrainConfig, a dict, or a callable seed -> config; its stage 3 is ignored); stage3:
    `mps`'s stage-3 settings (Stage3Config fields; its Evaluator settings default to the
    search's); anchors: uniform anchors for every population method (mps, nsga2) or none;
    val_batches: validation batches per selection score (None: the whole split);
    drift_batches: test batches per drift score (None: the whole split); drift_members:
    front members per method scored after drift, spread along the analog MAC ratio;
    draws: PCM draws per mapping of hetmap's estimate for accuracy@<time> objectives;
    seeds: a count (0, 1, ...) or the seeds; out: write compare.md, compare.csv,
    compare.png and each front there; exclude: layers kept digital (fp32) for every
    method; objectives: the shared objectives every method is searched (unless its
    MethodSpec says otherwise) and re-scored on (None: the Evaluator's defaults); widths:
    a widened model's groups as searchable width choices (`adaptation.width_groups`).
    `compare_config` runs it from a RunConfig."""
    from hetmap.hardware import table_for
    from hetmap.tasks import get_task

    task = get_task(task) if isinstance(task, str) else task
    specs = method_specs(methods)
    if drift_repeats < 2:
        raise ConfigError(f"drift_repeats must be >= 2 for a spread and an interval, got "
                          f"{drift_repeats}")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise ConfigError("seeds must name at least one seed")
    budgets, options = budgets or {}, options or {}
    for spec in specs:
        given = spec.options_with(options).get("anchors")
        if given is not None and spec.strategy in POPULATION and bool(given) != anchors:
            raise ConfigError(f"options[{spec.label!r}]['anchors']={given} but "
                              f"anchors={anchors}: "
                              "uniform anchors go to every population method "
                              f"({', '.join(POPULATION)}) or to none; set compare(anchors=...)")
    if model is None:
        from hetmap.training import pretrain

        model, _ = pretrain(task, epochs=pretrain_epochs, seed=0, progress=False, log=log)
    model = model.eval()
    from hetmap.candidates.analog import AnalogConfig
    from hetmap.config import analog_for_hardware

    # one analog geometry: the engine simulates the chip's tiles and DAC/ADC
    analog = analog_for_hardware(analog if analog is not None else AnalogConfig(), hardware)
    base = build_supernet(model, task.example_input(64), candidates=candidates, analog=analog,
                          exclude=exclude, widths=widths)
    t0 = time.perf_counter()
    cost_table = table_for(base, hardware, example_input=task.example_input(1))
    log(f"cost table: {time.perf_counter() - t0:.1f} s")
    all_analog = all_analog_fit(base, cost_table)
    # a method needing candidates beyond `candidates` (harmonica's hybrids) gets a supernet
    # offering them too, its own cost table, and the shared weights (`_extend`)
    needs = {s.label: _extra_candidates(s.strategy, s.options_with(options)) for s in specs}
    footings: dict[tuple[str, ...], tuple[Supernet, Any]] = {(): (base, cost_table)}
    for extra in sorted(set(needs.values()) - {()}):
        ext = build_supernet(model, task.example_input(64), candidates=(*candidates, *extra),
                             analog=analog, exclude=exclude, widths=widths)
        footings[extra] = (ext, table_for(ext, hardware, example_input=task.example_input(1)))
    footing = {label: footings[need] for label, need in needs.items()}
    result = Comparison([], [], settings=ComparisonSettings(
        methods=tuple(s.label for s in specs), seeds=tuple(seed_list),
        budgets=tuple((s.label, str(Budget.of(budgets.get(s.label, 24)))) for s in specs),
        drift_times=tuple(float(t) for t in drift_times), drift_repeats=drift_repeats,
        anchors=anchors, all_analog=all_analog))
    for seed in seed_list:
        _one_seed(result, task, base, cost_table, footing, specs, budgets, options, seed,
                  train_config=train_config, stage3=stage3, anchors=anchors,
                  bn_batches=bn_batches, val_batches=val_batches, batch_size=batch_size,
                  draws=draws, accuracy_window=accuracy_window, drift_times=tuple(drift_times),
                  drift_repeats=drift_repeats, drift_batches=drift_batches,
                  drift_members=drift_members, objectives=objectives, log=log)
        if out is not None:
            result.save(out)  # partial results survive an interrupted run
    return result


def _one_seed(result: Comparison, task: Any, base: Supernet, cost_table: Any,
              footing: dict[str, tuple[Supernet, Any]], methods: Sequence[MethodSpec],
              budgets: dict[str, Any],
              options: dict[str, dict[str, Any]], seed: int, *, train_config: Any,
              stage3: dict[str, Any] | None, anchors: bool, bn_batches: int,
              val_batches: int | None, batch_size: int, draws: int, accuracy_window: float,
              drift_times: tuple[float, ...], drift_repeats: int, drift_batches: int | None,
              drift_members: int, objectives: Sequence[str] | None,
              log: Callable[[str], Any]) -> None:
    torch.manual_seed(seed)
    ev0 = Evaluator(base, task, cost_table=cost_table, bn_batches=bn_batches,
                    val_batches=val_batches, batch_size=batch_size, seed=seed, draws=draws,
                    **({"objectives": tuple(objectives)} if objectives else {}))
    fp32 = ev0.accuracy(Mapping.uniform(base, "fp32", fallback=base.candidates(
        base.layer_names[0])[0]))
    ev0.accuracy_range = (max(0.0, fp32 - accuracy_window), 100.0)
    log(f"seed {seed}: fp32 validation accuracy {fp32:.2f}")

    with Meter() as meter:
        trained = _stage12(base, task, train_config, seed)
    result.shared[seed] = meter.compute
    log(f"seed {seed}: shared stage 1-2: {meter.compute}")

    fronts: dict[str, ParetoFront] = {}
    weights: dict[str, Callable[[Mapping], Any]] = {}
    starts = {id(base): (trained, ev0)}  # per supernet of `footing`: its start, its Evaluator
    for own, own_cost in footing.values():
        if id(own) not in starts:
            starts[id(own)] = (_extend(trained, own),
                               ev0.on(own, cost_table=own_cost, same_normalisation=True))
    for spec in methods:
        name = spec.label
        opts = spec.options_with(options)
        if spec.strategy in POPULATION:
            opts["anchors"] = anchors
        strat = get_strategy(spec.strategy, **opts)
        budget = Budget.of(budgets.get(name, 24))
        log(f"seed {seed}: {name}: {budget}")
        stage3_evals = 0
        start, own_ev = starts[id(footing[name][0])]
        with Meter() as meter:
            sn = copy.deepcopy(start)
            ev = own_ev.on(sn, objectives=spec.objectives)
            if spec.strategy == "mps":
                stage3_evals = _stage3(sn, task, cost_table, ev0, stage3, seed,
                                       objectives=spec.objectives)
            search_start = time.perf_counter()
            front = search(sn, ev, strategy=strat, budget=budget, seed=seed,
                           keep_dominated=spec.strategy in DRIFT_ALL)
        extra = strat.stats.extra_evaluations if isinstance(strat, MapperStrategy) else 0
        curve = [(meter.passes_at(search_start + s), h) for _, h, s in front.history]
        run = MethodRun(name, seed, front.evaluations + stage3_evals + extra, meter.compute,
                        curve, front.pruned().hypervolume(), len(front), stage3_evals, extra)
        result.runs.append(run)
        fronts[name] = front
        snaps = getattr(strat, "snapshots", {})
        weights[name] = (lambda m, s=snaps, owner=sn: s.get(m) if m in s else owner)
        log(f"seed {seed}: {name}: {len(front)} on front, {run.evaluations} evaluations "
            f"({stage3_evals} stage 3, {extra} drift scorings), {meter.compute}")
    _final_scoring(result, task, footing, ev0, fronts, weights, seed,
                   drift_times=drift_times, drift_repeats=drift_repeats,
                   drift_batches=drift_batches, drift_members=drift_members, log=log)


def _final_scoring(result: Comparison, task: Any, footing: dict[str, tuple[Supernet, Any]],
                   ev0: Evaluator, fronts: dict[str, ParetoFront],
                   weights: dict[str, Callable[[Mapping], Any]], seed: int, *,
                   drift_times: tuple[float, ...], drift_repeats: int,
                   drift_batches: int | None, drift_members: int,
                   log: Callable[[str], Any]) -> None:
    """Every front member re-scored on the test split, one chip model, one scoring path
    (each method on the supernet and cost table of its `footing`; one normalisation, ev0's)."""
    from hetmap.evaluation.drift import evaluate_drift
    from hetmap.search.mappers._common import analog_rpu_config
    from hetmap.tasks import final_scoring

    scratches: dict[int, Supernet] = {}
    rpu = analog_rpu_config(ev0.supernet)
    ideal, ref = ev0.reference_point()
    runs = {r.method: r for r in result.runs if r.seed == seed}
    result.fronts[seed] = {}
    with final_scoring("compare: test-split scoring of every method's front"):
        samples = _test_samples(task, batch_size=ev0.batch_size, seed=seed,
                                max_batches=drift_batches)
        result.settings = replace(result.settings, test_samples=samples)
        for name, front in fronts.items():
            base, cost_table = footing[name]
            if id(base) not in scratches:  # one scratch copy per supernet, not per method
                scratches[id(base)] = copy.deepcopy(base)
            scratch = scratches[id(base)]
            members, drift = [], {}
            chosen = set(range(len(front.members)) if front.strategy in DRIFT_ALL
                         else spread(front.members, drift_members))
            for i, member in enumerate(front.members):
                sn = _weights_on(scratch, weights[name](member.mapping))
                test_ev = ev0.on(sn, cost_table=cost_table, split="test", val_batches=None)
                members.append(Member(member.mapping, test_ev.scores([member.mapping])[0]))
                if i in chosen:
                    drift[i] = evaluate_drift(sn, member.mapping, task, times=drift_times,
                                              repeats=drift_repeats, seed=seed,
                                              split="test", batch_size=ev0.batch_size,
                                              max_batches=drift_batches, rpu_config=rpu,
                                              bn_batches=ev0.bn_batches)
            own = ev0 if base is ev0.supernet else ev0.on(base, cost_table=cost_table,
                                                          same_normalisation=True)
            hw = own.hardware([m.mapping for m in members])
            cost = cost_table.evaluate_indices(own.indices([m.mapping for m in members]),
                                               check_tiles=False)
            fr = ParetoFront(members, ev0.names, history=list(front.history),
                             evaluations=front.evaluations, wall_s=front.wall_s,
                             strategy=name, seed=seed, ideal=ideal, ref=ref, split="test")
            result.fronts[seed][name] = fr
            day = drift_times[-1]
            d_members = [Member(members[i].mapping, {**members[i].scores,
                                                     "accuracy": r.at(day)[0]})
                         for i, r in drift.items()]
            run = runs[name]
            run.hv_test = fr.pruned().hypervolume()
            run.hv_test_drift = ParetoFront(
                d_members, ev0.names, strategy=name, seed=seed, ideal=ideal, ref=ref,
                split="test").pruned().hypervolume() if d_members else 0.0
            run.best = {t: max((r.at(t)[0] for r in drift.values()), default=float("nan"))
                        for t in drift_times}
            for i, m in enumerate(members):
                r = drift.get(i)
                result.rows.append(MappingRecord(
                    name, seed, i, m.mapping, m.scores["accuracy"],
                    float(hw["analog_mac_ratio"][i]), float(hw["digital_weight_bytes"][i]),
                    int(cost["analog_tiles"][i]), float(hw["tile_utilisation"][i]),
                    float(cost["latency_s"][i]), float(cost["energy_j"][i]),
                    fits=bool(cost["fits"][i]),
                    # None when the method searched another accuracy (e.g. accuracy@1d)
                    val_accuracy=front.members[i].scores.get("accuracy"),
                    uniform=uniform_label(base, m.mapping), test_samples=samples,
                    drift_repeats=r.repeats if r else 0,
                    drift={float(t): Spread(r.mean[k], r.std[k], ci95(r.values[k]))
                           for k, t in enumerate(drift_times)} if r else {}))
            best = ", ".join(f"{v:.2f} ({time_label(t)})" for t, v in run.best.items())
            log(f"seed {seed}: {name}: test HV {run.hv_test:.4f}, best test accuracy {best} "
                f"on {samples} samples")


def uniform_label(supernet: Supernet, mapping: Mapping) -> str | None:
    """"all-<candidate>" when every searchable layer of `mapping` runs one candidate."""
    used = {mapping[n] for n in supernet.layer_names if n not in supernet.gate_names}
    return f"all-{used.pop()}" if len(used) == 1 else None


def _test_samples(task: Any, batch_size: int, seed: int, max_batches: int | None) -> int:
    loader = task.loaders(batch_size=batch_size, seed=seed).test
    n = 0
    for k, (_, y) in enumerate(loader):
        if max_batches is not None and k >= max_batches:
            break
        n += _batch_size((y,), {})
    return n


def _registered() -> tuple[str, ...]:
    from hetmap.search import strategy_names

    return strategy_names()


def _extra_candidates(strategy: str, options: dict[str, Any]) -> tuple[str, ...]:
    """Candidates `strategy` needs beyond the compared ones: harmonica's hybrids."""
    if strategy != "harmonica":
        return ()
    from hetmap.search.mappers.harmonica import required_candidates

    return required_candidates(options.get("fractions"))


def _extend(trained: Supernet, wider: Supernet) -> Supernet:
    """A copy of `wider` (the same model offering more candidates) holding `trained`'s
    weights and every state the two share (parameter and buffer names and shapes)."""
    out = copy.deepcopy(wider)
    own = out.state_dict()
    with torch.no_grad():
        for key, value in trained.state_dict().items():
            if key in own and own[key].shape == value.shape:
                own[key].copy_(value)
    for name, choice in out.choice_layers():  # the stage-2 noise scales, candidate by candidate
        known = trained.choice_layer(name).candidates
        for cand in choice.all_candidates():
            if cand.name in known:
                cand.set_noise_scale(known[cand.name].noise_scale)
    return out


def _weights_on(scratch: Supernet, source: Any) -> Supernet:
    """The supernet holding `source` (a supernet, used as is, or a state dict)."""
    if isinstance(source, Supernet):
        return source
    scratch.load_state_dict(source)
    return scratch


def _stage12(base: Supernet, task: Any, config: Any, seed: int) -> Supernet:
    """hetmap's stages 1 and 2 on a copy of the base supernet (shared by every method)."""
    from hetmap.training import TrainConfig, train_supernet

    cfg = config(seed) if callable(config) else config
    cfg = default_train_config(seed) if cfg is None else cfg
    cfg = cfg if isinstance(cfg, TrainConfig) else TrainConfig.from_dict(cfg)
    cfg = cfg.model_copy(update={"seed": seed, "stage3": cfg.stage3.model_copy(
        update={"steps": 0, "tau_mappings": 0})})
    sn = copy.deepcopy(base)
    train_supernet(sn, task, cfg)
    return sn


def _stage3(sn: Supernet, task: Any, cost_table: Any, ev: Evaluator,
            settings: dict[str, Any] | None, seed: int,
            objectives: Sequence[str] | None = None) -> int:
    """`mps`'s stage 3 (preference learning) on `sn`, ranking on `objectives` (None: the
    shared Evaluator's); returns the mappings it scored."""
    from hetmap.training import Stage3Config, make_config, train_preferences
    from hetmap.training.run import Run
    from hetmap.training.stages import make_evaluator

    defaults = {"steps": 10, "n_mappings": 8, "tau_mappings": 0, "bn_batches": ev.bn_batches,
                "val_batches": ev.val_batches, "eval_batch_size": ev.batch_size,
                "objectives": list(objectives or ev.names), "draws": ev.draws}
    s3 = Stage3Config(**(defaults | (settings or {})))
    cfg = make_config(seed=seed, progress=False, stage3=s3.model_dump())
    sn.set_noise_scale(cfg.stage2.target)
    run = Run(sn, task, cfg, None, None, ev.device, None, cost_table=cost_table)
    evaluator = make_evaluator(run)
    train_preferences(run, evaluator)
    sn.use(Mapping.uniform(sn, "fp32", fallback=sn.candidates(sn.layer_names[0])[0]))
    return int(evaluator.evaluations)
