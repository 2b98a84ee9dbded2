"""One whole run: pretrain (or load) -> [MPAAS adapt] -> supernet -> staged training ->
search -> drift and cost of the chosen mappings -> report and export.

Every stage leaves its artifact in the run directory (see docs/report.md for the schemas);
the long stages (pretraining, supernet training) resume from their checkpoints, the short
ones (search, drift, cost, report) are recomputed deterministically from the seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from hetmap.config import RunConfig, load_config
from hetmap.errors import ConfigError
from hetmap.io import atomic_write_json
from hetmap.mapping import WIDE, Mapping
from hetmap.report.comparison import DAY, drift_key
from hetmap.rundir import RunDir
from hetmap.supernet import Supernet, build_supernet
from hetmap.training.run import TrainMetrics

if TYPE_CHECKING:
    from hetmap.training import PretrainMetrics

Log = Callable[[str], Any]

# The task option that a config's `task.data` path fills, per registered task.
DATA_OPTION = {"cifar10": "root", "cifar100": "root", "squad": "train_file",
               "coco-seg": "train_annotations"}


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]
    front: Any  # hetmap.search.ParetoFront
    report: Path | None
    seconds: float


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: 'cuda' was asked for but no CUDA device is available; "
                          "use 'auto' or 'cpu'")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def make_task(cfg: RunConfig) -> Any:
    """The configured task, with the configured model and data path passed to its factory."""
    from hetmap.tasks import get_task

    options = dict(cfg.task.options)
    if "name" in cfg.model.model_fields_set:  # else the task's own default model
        options.setdefault("model", cfg.model.name)
    for key, value in cfg.model.options.items():
        options.setdefault(key, value)
    if cfg.task.data is not None:
        options[DATA_OPTION.get(cfg.task.name, "root")] = str(cfg.task.data)
    return get_task(cfg.task.name, **options)


def starting_model(cfg: RunConfig, task: Any, run: RunDir, device: torch.device,
                   log: Log) -> tuple[torch.nn.Module, PretrainMetrics | None]:
    """The full-precision model: the user's checkpoint, this run's earlier pretraining, or
    a fresh pretraining (saved as safetensors)."""
    from hetmap.tasks.checkpoints import load_checkpoint
    from hetmap.training import pretrain

    torch.manual_seed(cfg.seed)
    model = task.build_model()
    saved = run.root / RunDir.PRETRAINED
    if cfg.model.checkpoint is not None or saved.exists():
        path = cfg.model.checkpoint or saved
        load_checkpoint(model, path)
        log(f"loaded full-precision weights from {path}")
        return model.to(device).eval(), None
    log(f"pretraining {cfg.model.name} on {cfg.task.name} (full precision)")
    model, metrics = pretrain(task, model, epochs=cfg.model.pretrain_epochs, device=device,
                              seed=cfg.seed, out=saved, log=log)
    run.write_json(RunDir.PRETRAIN, metrics.to_dict())
    return model.eval(), metrics


def anchor_mappings(sn: Supernet, candidates: Sequence[str]) -> dict[str, Mapping]:
    """All-<candidate> reference mappings (layers that do not offer it stay fp32)."""
    anchors = {}
    for cand in candidates:
        if cand == "skip":
            continue
        anchors[f"all-{cand}"] = Mapping.uniform(sn, cand, fallback="fp32")
    return anchors


def pick_for_drift(front: Any, k: int = 3, low: float = 0.5, high: float = 0.95) -> list[int]:
    """Front members worth the drift evaluation: the most accurate ones with a real analog
    share (between `low` and `high`), topped up with the most accurate overall."""
    members = list(front)
    order = sorted(range(len(members)), key=lambda i: -members[i].scores.get("accuracy", 0.0))
    mixed = [i for i in order if low <= members[i].scores.get("analog_mac_ratio", 0.0) <= high]
    chosen = mixed[:k]
    chosen += [i for i in order if i not in chosen][:k - len(chosen)]
    return chosen


def drift_measured(named: dict[str, tuple[str, Mapping]], front: Any,
                   members: int | None) -> set[str]:
    """The mappings whose drift is measured: every anchor, and every front member or
    `members` of them spread from the most digital to the most analog."""
    from hetmap.search import spread

    if members is None:
        return set(named)
    return {n for n, (kind, _) in named.items() if kind == "anchor"} | {
        f"front-{i}" for i in spread(front.members, members)}


MIN_SAMPLES = 500  # fewer scored samples than this: the figure is printed with a warning


def _row(name: str, kind: str, mapping: Mapping, val: float | None, test: float | None,
         sn: Supernet, cost: Any, drift: Any | None) -> dict[str, Any]:
    """One summary row: validation (selection) and test (reported) accuracy, test accuracy
    after programming and drift (aihwkit; mean, std and 95 % interval over draws), the
    mapping's hardware quantities and cost."""
    obj = sn.objectives(mapping)
    widths = {"wide_groups": sum(mapping[g] == WIDE for g in sn.gate_names),
              "width_groups": len(sn.gate_names)} if sn.gate_names else {}
    day: dict[str, float | None] = {"mean": None, "std": None, "ci95": None}
    if drift is not None and DAY in drift.times:
        i = drift.times.index(DAY)
        day = {"mean": drift.mean[i], "std": drift.std[i], "ci95": drift.ci95[i]}
    return {"name": name, "kind": kind, "val_accuracy": val, "test_accuracy": test, **widths,
            drift_key(DAY): day["mean"], drift_key(DAY) + "_std": day["std"],
            drift_key(DAY) + "_ci95": day["ci95"],
            "analog_mac_ratio": obj.analog_mac_ratio,
            "analog_mac_ratio_total": obj.analog_mac_ratio_total,
            "digital_weight_bytes": obj.digital_weight_bytes,
            "analog_tiles": obj.analog_tiles, "latency_s": cost.latency_s,
            "energy_j": cost.energy_j,
            "mapping": mapping.to_dict()}


def split_sizes(task: Any) -> dict[str, int]:
    """Samples in each split (the test split's size is not data: reading it is allowed)."""
    loaders = task.loaders(batch_size=256, seed=0)
    return {name: len(getattr(loaders, name).dataset) for name in ("train", "val", "test")}


def sample_warnings(sizes: dict[str, int], minimum: int = MIN_SAMPLES) -> list[str]:
    return [f"the {split} split has only {n} samples (< {minimum}): its figures have wide "
            "error bars" for split, n in sizes.items() if split != "train" and n < minimum]


@dataclass
class Session:
    """One run directory opened for work: its config, task, device and the supernet (built
    lazily from the run's own pretrained weights and, once trained, its trained state)."""

    cfg: RunConfig
    rd: RunDir
    device: torch.device
    task: Any
    log: Log
    resume: bool = False
    _sn: Supernet | None = None
    _table: Any = None

    @classmethod
    def open(cls, config: RunConfig | str | Path | None, run_dir: str | Path, *,
             force: bool = False, resume: bool = False, log: Log = print) -> Session:
        """A new run directory (or, with resume, a used one) for `config`."""
        cfg = config if isinstance(config, RunConfig) else load_config(config)
        rd = RunDir.create(run_dir, force=force, resume=resume)
        rd.write_config(cfg)
        device = resolve_device(cfg.device)
        rd.write_environment(cfg.seed, str(device))
        return cls(cfg, rd, device, make_task(cfg), log, resume)

    @classmethod
    def existing(cls, run_dir: str | Path, log: Log = print) -> Session:
        """A run directory made by an earlier `hetmap run`/`train`, with its config."""
        rd = RunDir.open(run_dir)
        if not rd.exists(RunDir.CONFIG):
            raise ConfigError(f"{run_dir} has no {RunDir.CONFIG}: it is not a hetmap run "
                              "directory")
        cfg = load_config(rd.path(RunDir.CONFIG))
        return cls(cfg, rd, resolve_device(cfg.device), make_task(cfg), log, True)

    @property
    def wants_cost(self) -> bool:
        from hetmap.evaluation import get_objective

        return any(get_objective(o).source == "cost" for o in self.cfg.search.objectives)

    @property
    def supernet(self) -> Supernet:
        if self._sn is None:
            self._sn = self._build_supernet()
        return self._sn

    def _build_supernet(self) -> Supernet:
        cfg = self.cfg
        model, _ = starting_model(cfg, self.task, self.rd, self.device, self.log)
        example = self.task.example_input(8)
        widths: tuple[Any, ...] = ()
        from hetmap.config import analog_for_hardware
        from hetmap.hardware import load_hardware

        hw = load_hardware(cfg.hardware)
        analog = analog_for_hardware(cfg.analog, hw)  # the chip's tiles and DAC/ADC
        if cfg.method == "mpaas":
            from hetmap.adaptation import adapt, width_groups

            # widen against the chip's tiles; widenings may not slow its analog core down
            model, adapt_report = adapt(model, example, tile=analog.tile,
                                        policy=cfg.adapt.policy(cfg.seed),
                                        hardware=hw if hw.analog is not None else None)
            self.rd.write_json(RunDir.ADAPT, adapt_report.to_dict())
            self.log(str(adapt_report))
            if cfg.adapt.search:
                widths = width_groups(adapt_report)
                self.log(f"{len(widths)} widened groups are searchable width choices")
        sn = build_supernet(model, example, candidates=cfg.candidates, analog=analog,
                            tile=analog.tile, exclude=cfg.exclude,
                            widths=widths).to(self.device)
        trained = self.rd.root / RunDir.SUPERNET
        if trained.exists():
            from hetmap.tasks.checkpoints import load_checkpoint

            load_checkpoint(sn, trained)
            self.log(f"loaded the trained supernet from {trained}")
        self.rd.write_json(RunDir.INVENTORY, sn.inventory.to_dict())
        n_layers = len(sn.layer_names) - len(sn.gate_names)
        self.log(f"supernet: {n_layers} searchable layers, candidates "
                 f"{', '.join(cfg.candidates)}; {sn.inventory.total_macs:,} MACs per inference")
        return sn

    @property
    def table(self) -> Any:
        if self._table is None:
            from hetmap.hardware import load_hardware
            from hetmap.hardware.table import table_for

            hw = load_hardware(self.cfg.hardware)
            self.log(f"cost table on {hw.name} (ZigZag, cached on disk after the first run)")
            # traced on one example: every op of the inference is costed, not only the
            # mappable layers
            self._table = table_for(self.supernet, hw, example_input=self.task.example_input(1))
        return self._table

    def evaluator(self, split: str = "val") -> Any:
        """The run's Evaluator on `split` ("val": selection; "test": reporting, inside
        final_scoring()). It always holds the cost table, so every search sees the chip's
        tile budget (search.chip_constraints)."""
        from hetmap.evaluation import Evaluator

        return Evaluator(self.supernet, self.task, objectives=self.cfg.search.objectives,
                         cost_table=self.table, split=split, draws=self.cfg.search.draws,
                         bn_batches=self.cfg.train.stage3.bn_batches, device=self.device,
                         seed=self.cfg.seed)




def stage_train(s: Session) -> TrainMetrics:
    """Stages 1-3 (resumable); saves the trained supernet as safetensors."""
    from hetmap.tasks.checkpoints import save_checkpoint
    from hetmap.training import train_supernet

    if s.rd.exists(RunDir.SUPERNET) and s.rd.exists(RunDir.TRAIN):
        # already trained; the supernet loads it
        return TrainMetrics.from_dict(s.rd.read_json(RunDir.TRAIN))
    sn = s.supernet
    train_cfg = s.cfg.train.model_copy(update={"seed": s.cfg.seed})
    try:
        trained = train_supernet(sn, s.task, train_cfg, run_dir=s.rd.path(RunDir.TRAIN_DIR),
                                 device=s.device, resume=s.resume,
                                 cost_table=s.table if s.wants_cost else None)
    except KeyboardInterrupt:
        s.log(f"interrupted: the last checkpoint is in {s.rd.root / RunDir.TRAIN_DIR}; "
              f"continue with `hetmap resume {s.rd.root}`")
        raise
    save_checkpoint(sn, s.rd.path(RunDir.SUPERNET))
    s.rd.write_json(RunDir.TRAIN, trained.metrics.to_dict())
    return trained.metrics


def stage_search(s: Session) -> Any:
    """The configured strategy and budget -> front.json / front.csv."""
    from hetmap.search import Budget, search

    cfg = s.cfg
    budget = Budget(evaluations=cfg.search.evaluations, seconds=cfg.search.seconds)
    s.log(f"search: {cfg.search.strategy}, budget {budget}")
    front = search(s.supernet, s.evaluator(), cfg.search.strategy, budget, seed=cfg.seed,
                   constraints=cfg.search.constraints)
    front.save(s.rd.root)
    s.log(f"front: {len(front)} Pareto-optimal mappings from {front.evaluations} evaluations "
          f"in {front.wall_s:.1f} s")
    return front


def stage_evaluate(s: Session, front: Any = None) -> dict[str, Any]:
    """Anchors and every front member, scored for the report: validation accuracy (what
    selection saw), then inside `final_scoring()` test accuracy and test accuracy after
    programming and drift (aihwkit, `drift.repeats` draws per time), hardware and cost ->
    drift.json, cost.json, summary.json. The test split is read here and nowhere before."""
    from hetmap.evaluation import DriftResult, evaluate_drift
    from hetmap.hardware.table import cost_of
    from hetmap.search import ParetoFront
    from hetmap.tasks import final_scoring

    cfg, sn = s.cfg, s.supernet
    front = front if front is not None else ParetoFront.load(s.rd.path(RunDir.FRONT))
    named: dict[str, tuple[str, Mapping]] = {
        name: ("anchor", m) for name, m in anchor_mappings(sn, cfg.candidates).items()}
    for i, member in enumerate(front):
        named[f"front-{i}"] = ("front", member.mapping)
    measured = drift_measured(named, front, cfg.drift.members)
    mappings = [m for _, m in named.values()]
    val_ev = s.evaluator("val")
    val = dict(zip(named, val_ev.accuracies(mappings)))
    # drift-aware objectives (accuracy@1d, ...) the search used: hetmap's PCM-mode estimate
    # on validation, reported beside aihwkit's measurement on test
    horizons = [n for n in val_ev.names if n != "accuracy" and "@" in n]
    estimates = dict(zip(named, val_ev.scores(mappings))) if horizons else {}
    sizes = split_sizes(s.task)
    warnings = sample_warnings(sizes)
    for w in warnings:
        s.log(f"warning: {w}")

    drifts: dict[str, Any] = {}
    by_mapping: dict[Mapping, str] = {}  # a front member that is an anchor is measured once
    with final_scoring("stage_evaluate"):
        test = dict(zip(named, s.evaluator("test").accuracies(mappings)))
        for name, (_, mapping) in named.items():
            if name not in measured:
                continue
            if mapping in by_mapping:  # the same deployment, seed and draws: the same result
                drifts[name] = drifts[by_mapping[mapping]]
                continue
            by_mapping[mapping] = name
            if sn.objectives(mapping).analog_mac_ratio == 0:
                # nothing analog, nothing drifts: the deployed model is the scored one, so
                # its test accuracy holds at every time (one draw, no spread)
                drifts[name] = DriftResult(tuple(cfg.drift.times),
                                           [[test[name]] for _ in cfg.drift.times],
                                           s.task.metric_name, mapping, cfg.seed,
                                           split="test", samples=sizes["test"])
                continue
            s.log(f"drift: {name} at {len(cfg.drift.times)} times x {cfg.drift.repeats} "
                  f"programming draws on the test split ({sizes['test']} samples)")
            drifts[name] = evaluate_drift(sn, mapping, s.task, times=cfg.drift.times,
                                          repeats=cfg.drift.repeats, seed=cfg.seed,
                                          split="test", device=s.device,
                                          bn_batches=cfg.train.stage3.bn_batches)
    metric = s.task.metric_name
    s.rd.write_json(RunDir.DRIFT, {"metric": f"test {metric} (%)", "split": "test",
                                   "source": "aihwkit", "mappings": [
        {"name": name, **result.to_dict()} for name, result in drifts.items()]})

    table = s.table
    costs = {name: cost_of(sn, m, table=table) for name, (_, m) in named.items()}
    s.rd.write_json(RunDir.COST, {"hardware": table.hw.name, "mappings": [
        {"name": name, **cost.to_dict()} for name, cost in costs.items()]})

    rows = [_row(name, kind, m, val[name], test[name], sn, costs[name], drifts.get(name))
            for name, (kind, m) in named.items()]
    for row in rows:
        if horizons:
            row["val_estimates"] = {h: estimates[row["name"]][h] for h in horizons}
    trained = TrainMetrics.from_dict(s.rd.read_json(RunDir.TRAIN)) \
        if s.rd.exists(RunDir.TRAIN) else TrainMetrics()
    stage3 = trained.stage3_evaluations  # mps ranks mappings in stage 3 too
    search_info = {"strategy": front.strategy, "evaluations": front.evaluations,
                   "stage3_evaluations": stage3,
                   "evaluations_total": front.evaluations + stage3,
                   "wall_s": front.wall_s, "hv_val": front.hypervolume()}
    if len(front) and "accuracy" in front.objectives:  # the same members, scored on test
        members = [f"front-{i}" for i in range(len(front))]
        search_info["hv_test"] = front.rescored(
            "accuracy", [test[n] for n in members], prune=False).hypervolume()
        day = [r[drift_key(DAY)] for r in rows if r["kind"] == "front"]
        if all(v is not None for v in day):  # 1 day is among drift.times
            search_info["hv_test_1d"] = front.rescored(
                "accuracy", day, prune=False).hypervolume()
    summary = {"schema_version": RunDir.SCHEMA_VERSION, "task": cfg.task.name,
               "metric": metric, "split": "test",
               "selection_split": "val", "samples": sizes, "warnings": warnings,
               "drift": {"repeats": cfg.drift.repeats, "times_s": list(cfg.drift.times),
                         "source": "aihwkit", "split": "test"},
               "estimates": {"objectives": horizons, "source": "hetmap PCM mode",
                             "split": "val", "draws": cfg.search.draws} if horizons else {},
               "hardware": table.hw.name, "method": cfg.method, "rows": rows,
               "train": trained.to_dict(),
               "search": search_info}
    s.rd.write_json(RunDir.SUMMARY, summary)
    _save_tested_front(s.rd.root, front, rows)
    return summary


def _save_tested_front(root: Path, front: Any, rows: list[dict[str, Any]]) -> None:
    """front.json / front.csv again, each member's validation scores (as searched) now
    joined by its test-split figures."""
    from hetmap.search import Member

    tested = {r["name"]: r for r in rows if r["kind"] == "front"}
    keys = ("test_accuracy", drift_key(DAY), drift_key(DAY) + "_std")
    members = []
    for i, m in enumerate(front):
        row = tested[f"front-{i}"]
        members.append(Member(m.mapping, {**m.scores, **{k: row[k] for k in keys
                                                         if row[k] is not None}}))
    front.with_members(members).save(root)


def stage_export(s: Session, member: int | None = None) -> Path:
    """Front member `member` (default: the most accurate on validation with a real analog
    share) as mapping.json plus a deployable aihwkit model in export/, and its reported
    figures (test split, from summary.json) as export/scores.json."""
    from hetmap.export import export
    from hetmap.search import ParetoFront

    front = ParetoFront.load(s.rd.path(RunDir.FRONT))
    if member is None:
        chosen = pick_for_drift(front, k=1)
        if not chosen:
            raise ConfigError("the front is empty: nothing to export")
        member = chosen[0]
    if not 0 <= member < len(front):
        raise ConfigError(f"member must be in 0..{len(front) - 1}, got {member}")
    out = s.rd.path(RunDir.EXPORT)
    from hetmap.evaluation import calibration_inputs

    ev = s.evaluator()  # BatchNorm recalibrated on the Evaluator's own training batches
    bn = calibration_inputs(s.task.loaders(batch_size=ev.batch_size, seed=ev.seed).train,
                            ev.bn_batches, s.device)
    export(s.supernet, front[member].mapping, out, bn_inputs=bn)
    if s.rd.exists(RunDir.SUMMARY):  # the model card: the member's reported figures
        summary = s.rd.read_json(RunDir.SUMMARY)
        row = next((r for r in summary["rows"] if r["name"] == f"front-{member}"), None)
        if row is not None:
            context = ("split", "metric", "selection_split", "samples", "drift", "hardware")
            atomic_write_json(s.rd.path(RunDir.SCORES), {
                **{k: summary[k] for k in context if k in summary},
                **{k: v for k, v in row.items() if k not in ("mapping", "kind")}})
    s.log(f"exported front-{member} to {out}")
    return out


def run(config: RunConfig | str | Path | None = None, run_dir: str | Path = "runs/run", *,
        force: bool = False, resume: bool = False, log: Log = print,
        report: bool = True) -> RunResult:
    """Run the whole flow of `config` (a RunConfig, a YAML path, or None for the demo)
    into `run_dir`; returns the summary, the front and the report's path."""
    start = time.perf_counter()
    s = Session.open(config, run_dir, force=force, resume=resume, log=log)
    stage_train(s)
    front = stage_search(s)
    summary = stage_evaluate(s, front)
    if len(front):
        stage_export(s)
    report_path = None
    if report:
        from hetmap.report import build_report

        report_path = build_report(s.rd.root)
    seconds = time.perf_counter() - start
    s.rd.log({"event": "done", "seconds": seconds})
    return RunResult(s.rd.root, summary, front, report_path, seconds)


__all__ = [
    "RunResult",
    "Session",
    "anchor_mappings",
    "drift_measured",
    "make_task",
    "pick_for_drift",
    "resolve_device",
    "run",
    "stage_evaluate",
    "stage_export",
    "stage_search",
    "stage_train",
]
