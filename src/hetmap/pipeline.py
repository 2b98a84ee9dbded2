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
from typing import Any

import torch

from hetmap.config import RunConfig, load_config
from hetmap.errors import ConfigError
from hetmap.mapping import Mapping
from hetmap.rundir import RunDir
from hetmap.supernet import Supernet, build_supernet

Log = Callable[[str], Any]

# The task option that a config's `task.data` path fills, per registered task.
DATA_OPTION = {"cifar10": "root", "cifar100": "root", "squad": "train_file",
               "coco-seg": "train_annotations"}
DAY = 86400.0


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
    options.setdefault("model", cfg.model.name)
    for key, value in cfg.model.options.items():
        options.setdefault(key, value)
    if cfg.task.data is not None:
        options[DATA_OPTION.get(cfg.task.name, "root")] = str(cfg.task.data)
    return get_task(cfg.task.name, **options)


def starting_model(cfg: RunConfig, task: Any, run: RunDir, device: torch.device,
                   log: Log) -> tuple[torch.nn.Module, dict[str, float]]:
    """The full-precision model: the user's checkpoint, this run's earlier pretraining, or
    a fresh pretraining (saved as safetensors)."""
    from hetmap.tasks.checkpoints import load_checkpoint
    from hetmap.training import pretrain

    torch.manual_seed(cfg.seed)
    model = task.build_model()
    saved = run.root / "pretrained.safetensors"
    if cfg.model.checkpoint is not None or saved.exists():
        path = cfg.model.checkpoint or saved
        load_checkpoint(model, path)
        log(f"loaded full-precision weights from {path}")
        return model.to(device).eval(), {}
    log(f"pretraining {cfg.model.name} on {cfg.task.name} (full precision)")
    model, metrics = pretrain(task, model, device=device, seed=cfg.seed, out=saved,
                              log=log)
    run.write_json("pretrain.json", metrics)
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


def _row(name: str, kind: str, mapping: Mapping, scores: dict[str, float], sn: Supernet,
         cost: Any, drift: Any | None) -> dict[str, Any]:
    obj = sn.objectives(mapping)
    day = drift.at(DAY) if drift is not None and DAY in drift.times else (None, None)
    return {"name": name, "kind": kind, "accuracy": scores.get("accuracy"),
            "accuracy_1day_mean": day[0], "accuracy_1day_std": day[1],
            "analog_mac_ratio": obj.analog_mac_ratio, "digital_bytes": obj.digital_weight_bytes,
            "tiles": obj.analog_tiles, "latency_s": cost.latency_s, "energy_j": cost.energy_j,
            "mapping": mapping.to_dict()}


def _cost_record(name: str, cost: Any) -> dict[str, Any]:
    record = {"name": name, **cost.to_dict()}
    cores: dict[str, dict[str, float]] = {}
    for layer in record.get("layers", []):
        core = cores.setdefault(layer["core"], {"latency_s": 0.0, "energy_j": 0.0})
        core["latency_s"] += layer["latency_s"] + layer.get("transfer_latency_s", 0.0)
        core["energy_j"] += (layer["energy_j"] + layer.get("transfer_energy_j", 0.0)
                             + layer.get("weight_load_energy_j", 0.0))
    record["cores"] = cores
    return record


def run(config: RunConfig | str | Path | None = None, run_dir: str | Path = "runs/run", *,
        force: bool = False, resume: bool = False, log: Log = print,
        report: bool = True) -> RunResult:
    """Run the whole flow of `config` (a RunConfig, a YAML path, or None for the demo)
    into `run_dir`; returns the summary, the front and the report's path."""
    from hetmap.evaluation import Evaluator, evaluate_drift
    from hetmap.export import export
    from hetmap.hardware import load_hardware
    from hetmap.hardware.table import cost_of, table_for
    from hetmap.search import Budget, search
    from hetmap.training import train_supernet

    start = time.perf_counter()
    cfg = config if isinstance(config, RunConfig) else load_config(config)
    rd = RunDir.create(run_dir, force=force, resume=resume)
    rd.write_config(cfg)
    device = resolve_device(cfg.device)
    rd.write_environment(cfg.seed, str(device))
    task = make_task(cfg)

    model, _ = starting_model(cfg, task, rd, device, log)
    example = task.example_input(8)
    if cfg.method == "mpaas":
        from hetmap.adaptation import adapt

        model, adapt_report = adapt(model, example, tile=cfg.analog.tile)
        rd.write_json("adapt.json", adapt_report.to_dict())
        log(str(adapt_report))
    sn = build_supernet(model, example, candidates=cfg.candidates, analog=cfg.analog,
                        exclude=cfg.exclude)
    rd.write_json("inventory.json", sn.inventory.to_dict())
    log(f"supernet: {len(sn.layer_names)} searchable layers, candidates "
        f"{', '.join(cfg.candidates)}; {sn.inventory.total_macs:,} MACs per inference")

    hw = load_hardware(cfg.hardware)
    log(f"cost table on {hw.name} (ZigZag, cached on disk after the first run)")
    table = table_for(sn, hw)
    wants_cost = any(o in ("latency", "energy") for o in cfg.search.objectives)

    train_cfg = cfg.train.model_copy(update={"seed": cfg.seed})
    trained = train_supernet(sn, task, train_cfg, run_dir=rd.path("train"), device=device,
                             resume=resume, cost_table=table if wants_cost else None)
    rd.write_json("train.json", trained.metrics)

    evaluator = Evaluator(sn, task, objectives=cfg.search.objectives,
                          cost_table=table if wants_cost else None,
                          bn_batches=cfg.train.stage3.bn_batches, device=device, seed=cfg.seed)
    budget = Budget(evaluations=cfg.search.evaluations, seconds=cfg.search.seconds)
    log(f"search: {cfg.search.strategy}, budget {budget}")
    front = search(sn, evaluator, cfg.search.strategy, budget, seed=cfg.seed,
                   constraints=cfg.search.constraints)
    front.save(rd.root)
    log(f"front: {len(front)} Pareto-optimal mappings from {front.evaluations} evaluations "
        f"in {front.wall_time:.1f} s")

    named: dict[str, tuple[str, Mapping]] = {
        name: ("anchor", m) for name, m in anchor_mappings(sn, cfg.candidates).items()}
    drift_names = [n for n in named if n == "all-analog"]
    for i, member in enumerate(front):
        named[f"front-{i}"] = ("front", member.mapping)
    drift_names += [f"front-{i}" for i in pick_for_drift(front)]
    scores = dict(zip(named, evaluator.scores([m for _, m in named.values()])))

    drifts: dict[str, Any] = {}
    for name in drift_names:
        log(f"drift: {name} at {len(cfg.drift.times)} times x {cfg.drift.repeats} repeats")
        drifts[name] = evaluate_drift(sn, named[name][1], task, times=cfg.drift.times,
                                      repeats=cfg.drift.repeats, seed=cfg.seed, split="val",
                                      device=device)
    rd.write_json("drift.json", {"metric": f"validation {task.metric_name} (%)", "mappings": [
        {"name": name, **result.to_dict()} for name, result in drifts.items()]})

    costs = {name: cost_of(sn, m, table=table) for name, (_, m) in named.items()}
    rd.write_json("cost.json", {"hardware": hw.name, "mappings": [
        _cost_record(name, cost) for name, cost in costs.items()]})

    rows = [_row(name, kind, m, scores[name], sn, costs[name], drifts.get(name))
            for name, (kind, m) in named.items()]
    summary = {"task": cfg.task.name, "metric": f"validation {task.metric_name} (%)",
               "hardware": hw.name, "method": cfg.method, "rows": rows,
               "train": trained.metrics, "search": {
                   "strategy": front.strategy, "evaluations": front.evaluations,
                   "wall_time_s": front.wall_time, "hypervolume": front.hypervolume()}}
    rd.write_json("summary.json", summary)

    chosen = pick_for_drift(front, k=1)
    if chosen:
        export(sn, front[chosen[0]].mapping, rd.path("export"))
        log(f"exported front-{chosen[0]} to {rd.root / 'export'}")
    report_path = None
    if report:
        from hetmap.report import build_report

        report_path = build_report(rd.root)
    seconds = time.perf_counter() - start
    rd.log({"event": "done", "seconds": seconds})
    return RunResult(rd.root, summary, front, report_path, seconds)


__all__ = ["RunResult", "anchor_mappings", "make_task", "pick_for_drift",
           "resolve_device", "run"]
