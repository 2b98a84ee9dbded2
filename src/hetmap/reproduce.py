"""`hetmap reproduce`: the paper's comparison, re-made on offline data by one command.

For every case (a task and a network) the same pretrained model goes through
`hetmap.compare` with every method on the same footing (shared stage-1/2 supernet, compute
in sample-passes, selection on validation, every figure on the test split, aihwkit PCM drift
for the reported members), MPAAS through a second comparison on the adapted network, and
the results land in one folder: results.md (tables, figures, discussion), results.csv and
results.json (one row per case x method x seed), and PNG figures.

Per method and seed the *reported member* is the drift-scored front member with the best
test metric one day after programming among those with >= 70 % of their MACs in analog (else
the most analog one; the anchors: each uniform mapping); its figures are then averaged over
seeds (mean ± std). Budgets are stated in the header of results.md.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from hetmap.compare import MethodSpec, adapted_model, compare
from hetmap.errors import ConfigError, TrainingError
from hetmap.io import atomic_write_bytes, atomic_write_text
from hetmap.report.comparison import (
    DAY,
    YEAR,
    Comparison,
    MappingRecord,
    TileFit,
    drift_key,
)
from hetmap.report.results import SCHEMA_VERSION, TIMES, ReportedRow, markdown_table, summarise
from hetmap.training.pretrain import PretrainMetrics

Log = Callable[[str], Any]
ANCHORS = ("all-fp32", "all-int8", "all-analog")


@dataclass(frozen=True)
class Budgets:
    """What every method gets (the same for all of them; see docs/compare.md)."""

    seeds: int
    pretrain_epochs: int
    stage_steps: int  # shared stage 1 and stage 2 steps
    evaluations: int  # random, mps, mps@1d, nsga2 (mps: plus its stage 3)
    stage3_steps: int
    train_steps: int  # training batches per LionHeart round / ODiMo phase / anchor
    drift_repeats: int
    drift_members: int
    drift_batches: int | None  # test batches per drift score (None: the whole test split)
    val_batches: int | None  # validation batches per selection score (None: the whole split)
    lh_rounds: int
    lh_evaluations: int  # LionHeart's budget: every trial conversion scored counts as one
    draws: int  # PCM draws per mapping for mps@1d's accuracy@1d
    batch_size: int  # training and scoring batches (tasks whose default is smaller keep it)


# --quick exercises every task and method end to end on small networks (QUICK_CASES); its
# figures mean nothing
QUICK = Budgets(seeds=1, pretrain_epochs=1, stage_steps=2, evaluations=4, stage3_steps=1,
                train_steps=1, drift_repeats=2, drift_members=1, drift_batches=1,
                val_batches=1, lh_rounds=1, lh_evaluations=6, draws=2, batch_size=16)
# FULL: the table's budgets for the whole table (four cases, three seeds each) as one
# `hetmap reproduce --jobs 2` on a 2-core machine (the header of docs/results/results.md
# says how long it took). LionHeart's evaluations cover both thresholds' greedy walks, hence
# twice the others'.
FULL = Budgets(seeds=3, pretrain_epochs=3, stage_steps=16, evaluations=16, stage3_steps=4,
               train_steps=4, drift_repeats=2, drift_members=2, drift_batches=2,
               val_batches=4, lh_rounds=1, lh_evaluations=32, draws=3, batch_size=64)
# the heavy cases' scale-down, the same for every method of the case: per seed at an earlier
# FULL (stage_steps 16, 24 evaluations) a MobileNetV2 (width 0.5) shared stage 1-2 took 428 s,
# mps@1d 488 s, LionHeart 365 s and MPS 195 s (hetmap compare at a73a002, one thread). At
# 12 evaluations (LionHeart 24) the table took 133.8 min at 4e84580 with its cases whole, one
# per process: MiniLM 98.6, MobileNetV2 90.1, ResNet-20 43.6, FCN 18.0 min.
HEAVY = {"stage_steps": 8, "evaluations": 10, "val_batches": 2, "lh_evaluations": 20,
         "draws": 2}
# all-MiniLM-L6-v2 also pretrains its fresh QA head longer (8 epochs of 15 steps; at 3 its
# validation F1 was 22 %, and methods that retrain won by training the head, docs/results
# at aa66fd6), and trains 3 steps per LionHeart round / ODiMo phase / anchor (at 4, a seed's
# LionHeart took 830 s and ODiMo 460 s of its 33 min, docs/results at 1de1b76)
MINILM = {**HEAVY, "pretrain_epochs": 8, "train_steps": 3}
# the longest synthetic question + paragraph is 41 tokens: 48 truncates nothing (a test
# checks it) and a forward took 0.47x the time it takes at the task's default 96 (one /tmp
# probe: batch 16, one thread)
MINILM_LENGTH = 48
MOSTLY_ANALOG = 0.7  # the reported member's analog MAC share (the paper's regime)


@dataclass(frozen=True)
class Case:
    """One row group of the table: a registered task with its network."""

    key: str
    title: str
    task: str
    options: dict[str, Any] = field(default_factory=dict)
    mpaas: bool = True
    paper: str | None = None  # the closest published model row (hetmap.report.paper)
    budgets: dict[str, Any] = field(default_factory=dict)  # FULL's fields this case scales
    # down (the same for every method of the case; --quick ignores them)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.budgets) - {f.name for f in fields(Budgets)})
        if unknown:
            raise ConfigError(f"case {self.key!r}: budgets {unknown} are not Budgets fields; "
                              f"choose from {', '.join(f.name for f in fields(Budgets))}")

    def budgets_for(self, b: Budgets, quick: bool) -> Budgets:
        """The budgets this case runs: `b` with the case's scale-down (none for --quick)."""
        return b if quick or not self.budgets else replace(b, **self.budgets)


CASES = (
    Case("minilm-qa", "all-MiniLM-L6-v2 / synthetic QA (generated)", "synthetic-qa",
         {"questions": 300, "max_length": MINILM_LENGTH}, paper="MobileBERT / SQuAD",
         budgets=MINILM),
    # width 0.5: a training step of the full-width MobileNetV2 took 4.7x ResNet-20's at
    # 28x28, batch 64, one thread, and 2.1x at half width (one probe run on this 2-core
    # machine, not a bench): the full width does not fit the 2-hour table
    Case("mobilenetv2x0.5-mnist", "MobileNetV2 (width 0.5) / MNIST 5k", "mnist",
         {"model": "mobilenetv2", "width_mult": 0.5}, paper="MobileNetV2 / CIFAR-10",
         budgets=HEAVY),
    Case("resnet20-mnist", "ResNet-20 / MNIST 5k", "mnist", {"model": "resnet20"},
         paper="ResNet20 / CIFAR-10"),
    Case("fcn-mnistseg", "FCN-ResNet-8 / mnist-seg", "mnist-seg", {},
         paper="ResNet18 / COCO"),
)  # (heaviest first: with --jobs the lightest case's seeds fill the gaps at the end)
QUICK_CASES = (  # one per task, small enough for CI
    Case("resnet8-mnist", "ResNet-8 / MNIST 5k", "mnist", {"model": "resnet8"},
         paper="ResNet8 / CIFAR-10"),
    Case("fcn-mnistseg", "FCN-ResNet-8 / mnist-seg", "mnist-seg", {},
         paper="ResNet18 / COCO"),
    Case("minilm2-qa", "all-MiniLM-L6-v2, first 2 layers / synthetic QA (generated)",
         "synthetic-qa", {"questions": 120, "layers": 2}, paper="MobileBERT / SQuAD"),
)


def cases_for(names: Sequence[str] | None = None, cifar10: str | None = None,
              quick: bool = False) -> list[Case]:
    """The default cases (--quick: QUICK_CASES), or those named from either list, plus the
    CIFAR-10 ones when a path is given."""
    cases = list(QUICK_CASES if quick else CASES)
    if cifar10 is not None:
        if not Path(cifar10).exists():
            raise ConfigError(f"--cifar10 {cifar10!r} does not exist; give the folder holding "
                              "cifar-10-batches-py")
        cases += [Case(f"{m}-cifar10", f"{t} / CIFAR-10", "cifar10",
                       {"model": m, "root": str(cifar10)}, paper=row)
                  for m, t, row in (("resnet20", "ResNet-20", "ResNet20 / CIFAR-10"),
                                    ("mobilenetv2", "MobileNetV2", "MobileNetV2 / CIFAR-10"))]
    if names:
        pool = {c.key: c for c in (*CASES, *QUICK_CASES, *cases)}
        unknown = [n for n in names if n not in pool]
        if unknown:
            raise ConfigError(f"unknown cases {unknown}; choose from {', '.join(sorted(pool))}")
        cases = [pool[n] for n in dict.fromkeys(names)]
    return cases


def method_setup(b: Budgets) -> tuple[list[str | MethodSpec], dict[str, Any],
                                       dict[str, dict[str, Any]]]:
    """The methods of the table with their budgets and options (bench/compare.py's rules)."""
    from hetmap.search import strategy_names

    steps, common = b.train_steps, {"batch_size": b.batch_size, "train_batches": 16}
    drifted = MethodSpec("mps@1d", "mps", {"pop_size": 8},
                         objectives=("accuracy@1d", "analog_mac_ratio", "digital_weight_bytes"))
    methods: list[str | MethodSpec] = ["anchors", "random", "mps", drifted, "lionheart",
                                       "odimo", "nsga2"]
    if "harmonica" in strategy_names():
        methods.append("harmonica")
    options = {
        "anchors": {"digital": ("fp32", "int8"), "train_steps": 2 * steps, **common},
        "mps": {"pop_size": 8}, "random": {"pop_size": 8},
        "lionheart": {"thresholds": (1.0, 5.0), "round_steps": steps, "patience": 1,
                      "max_rounds": b.lh_rounds, "repeats": b.drift_repeats,
                      "drift_batches": b.drift_batches, **common},
        "odimo": {"lambdas": (0.0, 0.5, 4.0), "warmup_steps": steps, "steps": 2 * steps,
                  "finetune_steps": max(1, steps // 2), **common},
        "nsga2": {"pop_size": 6, "finetune_steps": 2, **common},
    }
    budgets = {"anchors": 4, "random": b.evaluations, "mps": b.evaluations,
               "mps@1d": b.evaluations, "lionheart": b.lh_evaluations,
               "odimo": 8, "nsga2": b.evaluations, "harmonica": b.evaluations}
    return methods, budgets, options


# -- one case --------------------------------------------------------------------------------
@dataclass
class CaseResult:
    case: Case
    metric: str
    rows: list[ReportedRow]  # one per method x seed (the reported member)
    figures: list[Path]  # written by run_case into the results folder
    pretrain: PretrainMetrics | None  # None: its model came from the cache
    seconds: float
    revision: str = ""  # the revision that ran it ("": this one)
    all_analog: TileFit | None = None  # its tiles against the chip's; None: not recorded


@dataclass
class CasePart:
    """Some seeds of a case, compared (`--jobs` runs a case seed by seed, in parallel):
    its comparisons (main, and mpaas on the adapted network) and their reported rows."""

    case: Case
    seeds: tuple[int, ...]
    metric: str
    comparisons: dict[str, Comparison]
    rows: dict[str, list[ReportedRow]]  # comparison name -> its reported rows
    pretrain: PretrainMetrics | None  # None: its model came from the cache
    seconds: float


def pretrained(case: Case, b: Budgets, out: Path, quick: bool, log: Log = print
               ) -> tuple[Any, Any, PretrainMetrics | None]:
    """The case's task, its pretrained model and the pretraining's metrics, trained once
    and cached under out/cache (keyed by the task, its options and epochs; a lock keeps two
    processes from training the same one)."""
    import fcntl

    import torch

    from hetmap.tasks import get_task, load_checkpoint
    from hetmap.training import pretrain

    b = case.budgets_for(b, quick)
    task = get_task(case.task, **case.options)
    torch.manual_seed(0)
    model = task.build_model()
    made = hashlib.sha256(json.dumps([case.task, case.options, b.pretrain_epochs],
                                     sort_keys=True, default=str).encode()).hexdigest()[:8]
    ckpt = out / "cache" / f"{case.key}-{'quick' if quick else 'full'}-{made}.safetensors"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    with open(ckpt.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        metrics_file = ckpt.with_suffix(".json")
        metrics: PretrainMetrics | None = None
        if ckpt.exists():
            load_checkpoint(model, ckpt)
            if metrics_file.exists():
                metrics = PretrainMetrics.from_dict(json.loads(metrics_file.read_text()))
        else:
            model, metrics = pretrain(task, model, epochs=b.pretrain_epochs, out=ckpt,
                                      progress=False, log=log)
            atomic_write_text(metrics_file, json.dumps(metrics.to_dict()))
    return task, model.eval(), metrics



def run_part(case: Case, b: Budgets, out: Path, quick: bool, seeds: Sequence[int] | None = None,
             log: Log = print) -> CasePart:
    """Compare every method of the case on `seeds` (None: all of the budgets' seeds) from
    the cached pretrained model, and cost the reported members on the second chip."""
    start = time.perf_counter()
    task, model, metrics = pretrained(case, b, out, quick, log=log)
    b = case.budgets_for(b, quick)
    every = list(range(b.seeds))
    seeds = every if seeds is None else [int(s) for s in seeds]
    folder = case.key + ("" if seeds == every else "-seed" + "-".join(map(str, seeds)))
    from hetmap.training import make_config

    methods, budgets, options = method_setup(b)
    n, batch = b.stage_steps, min(b.batch_size, task.defaults.batch_size)

    def train_config(seed: int) -> Any:
        return make_config(seed=seed, batch_size=batch,
                           progress=False, eval_each_epoch=False,
                           stage1={"epochs": 1, "max_steps": n},
                           stage2={"epochs": 1, "max_steps": n})

    common = dict(train_config=train_config, candidates=("fp32", "int8", "int4", "analog"),
                  stage3={"steps": b.stage3_steps, "n_mappings": 8, "draws": b.draws},
                  drift_times=TIMES, drift_repeats=b.drift_repeats,
                  drift_batches=b.drift_batches, drift_members=b.drift_members,
                  seeds=seeds, batch_size=batch, bn_batches=2, draws=b.draws,
                  val_batches=b.val_batches, log=log)
    comparisons = {"main": compare(task, model, "hermes-pcm", methods, budgets, options,
                                   out=out / "runs" / folder, **common)}
    models = {"main": model}
    # MPAAS as the paper runs it: every widenable group widened to fill its tiles
    adapted = adapted_model(model, task, "hermes-pcm") if case.mpaas else None
    if adapted is not None:
        models["mpaas"] = adapted
        comparisons["mpaas"] = compare(
            task, adapted, "hermes-pcm", [MethodSpec("mpaas", "mps", {"pop_size": 8})],
            {"mpaas": b.evaluations}, {}, out=out / "runs" / f"{folder}-mpaas", **common)
    rows = {name: reported_rows(case.key, cmp, _second_chip(models[name], task, _used(cmp)))
            for name, cmp in comparisons.items()}
    return CasePart(case, tuple(seeds), task.metric_name, comparisons, rows, metrics,
                    time.perf_counter() - start)


def finish_case(parts: Sequence[CasePart], out: Path) -> CaseResult:
    """The case from its parts (every seed once): their comparisons merged, the case's
    figures drawn into `out`; its seconds are the parts' summed."""
    parts = sorted(parts, key=lambda p: p.seeds)
    case = parts[0].case
    comparisons = {name: Comparison.merged([p.comparisons[name] for p in parts])
                   for name in parts[0].comparisons}
    rows = [r for name in comparisons for p in parts for r in p.rows[name]]
    figures = plots(case, parts[0].metric, rows, comparisons, out)
    return CaseResult(case, parts[0].metric, rows, figures,
                      next((p.pretrain for p in parts if p.pretrain is not None), None),
                      sum(p.seconds for p in parts), revision(),
                      comparisons["main"].all_analog)


def run_case(case: Case, b: Budgets, out: Path, quick: bool, log: Log = print) -> CaseResult:
    """Pretrain (cached under out/cache), compare every method on every seed, cost on two
    chips, draw the case's figures into `out`."""
    return finish_case([run_part(case, b, out, quick, log=log)], out)


def _used(cmp: Comparison) -> tuple[str, ...]:
    """Every candidate a front member of the comparison uses (harmonica adds hybrids)."""
    from hetmap.candidates.registry import candidate_names

    used = {m.mapping[layer] for fronts in cmp.fronts.values() for front in fronts.values()
            for m in front.members for layer in m.mapping}  # width choices are not candidates
    return tuple(sorted(used & set(candidate_names()) - {"fp32", "int8", "int4", "analog"}))


def _second_chip(model: Any, task: Any, extra: tuple[str, ...] = ()
                 ) -> Callable[[Any], tuple[float, float]]:
    """Latency and energy of a mapping on the paper's simulated system (mps-paper); `extra`:
    candidates beyond the shared four that the mappings use."""
    from hetmap.candidates.analog import AnalogConfig
    from hetmap.config import analog_for_hardware
    from hetmap.hardware import table_for
    from hetmap.supernet import build_supernet

    analog = analog_for_hardware(AnalogConfig(), "hermes-pcm")
    sn = build_supernet(model, task.example_input(8), candidates=(
        "fp32", "int8", "int4", "analog", *extra), analog=analog)
    table = table_for(sn, "mps-paper", example_input=task.example_input(1))

    def cost(mapping: Any) -> tuple[float, float]:  # (latency_s, energy_j)
        c = table.evaluate_indices(np.asarray(sn.mapping_indices([mapping])), check_tiles=False)
        return float(c["latency_s"][0]), float(c["energy_j"][0])

    return cost


def reported_rows(case: str, cmp: Comparison,
                  second: Callable[[Any], tuple[float, float]]) -> list[ReportedRow]:
    """Per method (anchors: per uniform mapping) and seed, the reported member's row;
    `second`: a mapping's (latency_s, energy_j) on the paper's system."""
    runs = {(r.method, r.seed): r for r in cmp.runs}
    out = []
    for seed in cmp.seeds:
        shared = cmp.shared.get(seed)
        for name in cmp.methods:
            scored = [r for r in cmp.rows if r.seed == seed and r.method == name
                      and r.at(DAY) is not None]
            if name == "anchors":
                picks = [(r.uniform, r) for r in scored if r.uniform in ANCHORS]
            else:
                picks = [(name, reported_member(scored))] if scored else []
            run = runs[(name, seed)]
            for label, r in picks:
                drift = {}
                for t in TIMES:
                    d = r.at(t)
                    drift[drift_key(t)] = None if d is None else d.mean
                    drift[drift_key(t) + "_std"] = None if d is None else d.std
                paper_latency_s, paper_energy_j = second(r.mapping)
                search = {} if name == "anchors" else dict(
                    hv_test=run.hv_test, hv_test_1y=run.hv_test_drift,
                    evaluations=run.evaluations,
                    compute_passes=run.compute.passes + (shared.passes if shared else 0),
                    wall_s=run.compute.wall_s)
                out.append(ReportedRow(
                    case=case, method=str(label), seed=seed, mapping=r.mapping,
                    test_accuracy=r.test_accuracy, **drift,
                    analog_mac_ratio=r.analog_mac_ratio,
                    digital_weight_bytes=r.digital_weight_bytes, analog_tiles=r.analog_tiles,
                    fits=r.fits, tile_utilisation=r.tile_utilisation, latency_s=r.latency_s,
                    energy_j=r.energy_j, paper_latency_s=paper_latency_s,
                    paper_energy_j=paper_energy_j, **search))
    return out


def reported_member(rows: Sequence[MappingRecord]) -> MappingRecord:
    """The best 1-day test metric among drift-scored members with at least MOSTLY_ANALOG of
    their MACs on analog tiles (what the paper's table compares); with none that analog,
    the most analog member (ties: the better at 1 day)."""
    def day(r: MappingRecord) -> float:
        return r.at(DAY).mean  # type: ignore[union-attr]

    analog = [r for r in rows if r.analog_mac_ratio >= MOSTLY_ANALOG]
    if analog:
        return max(analog, key=day)
    return max(rows, key=lambda r: (r.analog_mac_ratio, day(r)))


# -- writing ---------------------------------------------------------------------------------
def plots(case: Case, metric: str, rows: Sequence[ReportedRow],
          comparisons: dict[str, Comparison], folder: Path) -> list[Path]:
    """fronts (1-day metric vs analog share and vs energy), HV vs compute, drift curves of
    the reported members (`rows`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = case.key
    paths = []
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for cmp in comparisons.values():
        seed = cmp.seeds[0]
        for k, name in enumerate(cmp.methods):
            members = [r for r in cmp.rows if r.seed == seed and r.method == name
                       and r.at(DAY) is not None]
            if not members:
                continue
            label = "anchors (uniform)" if name == "anchors" else name
            colour = f"C{k + (7 if name == 'mpaas' else 0)}"
            for ax, x, scale in ((axes[0], "analog_mac_ratio", 1.0), (axes[1], "energy_j", 1e6)):
                ordered = sorted(members, key=lambda r: getattr(r, x))
                ax.errorbar([getattr(r, x) * scale for r in ordered],
                            [r.at(DAY).mean for r in ordered],  # type: ignore[union-attr]
                            yerr=[r.at(DAY).std for r in ordered],  # type: ignore[union-attr]
                            fmt="o", color=colour, label=label, capsize=3)
    for ax, x in ((axes[0], "analog MAC ratio"), (axes[1], "energy µJ (hermes-pcm)")):
        ax.set_xlabel(x)
        ax.set_ylabel(f"test {metric} 1 day after programming")
    axes[1].set_xscale("log")
    for s in summarise(rows):
        ys = [s.mean(drift_key(t)) for t in TIMES]
        if all(y is not None for y in ys):
            axes[2].plot([1.0, DAY, YEAR], ys, "o-", label=s.method)
    axes[2].set_xscale("log")
    axes[2].set_xlabel("time after programming (s; 0 s drawn at 1 s)")
    axes[2].set_ylabel(f"test {metric}, reported member")
    axes[0].set_title(f"{case.title}: fronts (seed 0)")
    axes[2].set_title("drift, mean over seeds")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(_save(fig, folder / f"{key}-fronts.png"))
    plt.close(fig)
    for name, cmp in comparisons.items():
        suffix = "" if name == "main" else f"-{name}"
        paths.append(atomic_write_bytes(folder / f"{key}{suffix}-compute.png", cmp.plot()))
    return paths


def _save(fig: Any, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return atomic_write_bytes(path, buf.getvalue())


def revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=Path(__file__).parent, timeout=10, check=True)
        # "+uncommitted" when the package's code differs from HEAD (a results folder
        # being rewritten does not count)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                "."], capture_output=True, text=True,
                               cwd=Path(__file__).parent, timeout=10).stdout.strip()
        return rev.stdout.strip() + ("+uncommitted" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        from hetmap._version import __version__

        return f"hetmap {__version__}"


def machine() -> str:
    import torch

    return (f"{platform.platform()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}, torch {torch.__version__}"
            + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""))


@dataclass(frozen=True)
class RunInfo:
    """What produced a table: the command, its revision and machine, its wall time."""

    command: str
    budgets: Budgets
    seconds: float
    revision: str = field(default_factory=lambda: revision())
    machine: str = field(default_factory=lambda: machine())


def write_results(results: Sequence[CaseResult], folder: Path, run: RunInfo,
                  running: Sequence[str] = (), failed: dict[str, str] | None = None) -> Path:
    """results.md, results.csv and results.json of the finished cases; `running`: the cases
    not finished yet (named in the header: a partial table). results.json holds all that
    results.md is made of, so `render` can rewrite the text without rerunning."""
    from hetmap.report.paper import discussion

    b = run.budgets
    folder.mkdir(parents=True, exist_ok=True)
    now = revision()
    earlier = [r for r in results if r.revision not in ("", run.revision)]
    lines = ["# hetmap results: the paper's comparison, re-made\n",
             f"Generated by `{run.command}` at revision {run.revision} on {run.machine}, in "
             f"{run.seconds / 60:.1f} min. Do not edit: rerun the command.\n",
             *([f"Text rendered from the run's results.json by `hetmap reproduce --render` "
                f"at revision {now} (the figures are the run's).\n"] if now != run.revision
               else []),
             *([f"**Partial: still running {', '.join(running)}.**\n"] if running else []),
             *([f"**Failed: {title} ({why}).**\n" for title, why in (failed or {}).items()]),
             *(["Reused by `--resume` from earlier invocations with the same budgets: "
                + ", ".join(f"{r.case.title} (revision {r.revision})" for r in earlier)
                + ".\n"] if earlier else []),
             "Every figure is on the **test** split (selection on validation), mean ± std "
             f"over {b.seeds} seed(s); drift figures are aihwkit PCM programming + drift "
             f"(mean over {b.drift_repeats} programmings). Per method and seed the reported "
             "member is the drift-scored front member with the best 1-day test metric among "
             f"those with >= {MOSTLY_ANALOG:.0%} of their MACs in analog (else the most "
             "analog one); the anchors are the uniform mappings. Latency and energy: one "
             "inference on the hermes-pcm preset (the chip simulated in training) and on "
             "mps-paper (the paper's system, fitted to its ResNet-20 row only; see "
             "docs/hardware.md). Compute: sample-passes including the shared stage 1-2; wall "
             "s: the method's own search (the shared stage 1-2 not included). HV: "
             "hypervolume of the front re-scored on test (accuracy, analog MAC ratio, digital "
             "bytes).\n",
             f"Budgets (the same for every method; a case that scales them down says so in "
             f"its section): `{json.dumps(asdict(b))}`.\n"]
    records = []
    for res in results:
        summary = summarise(res.rows)
        lines += [f"\n## {res.case.title}\n",
                  f"Test metric: {res.metric}. {len(res.rows)} reported rows, "
                  f"{res.seconds / 60:.1f} min in one process (its seeds' jobs summed)."
                  + (f" Budgets scaled down for this case (every method alike): "
                     f"`{json.dumps(res.case.budgets)}`." if res.case.budgets else "") + "\n",
                  markdown_table(summary, res.metric),
                  "\n" + discussion(summary, res.metric, res.case.paper, res.all_analog)]
        lines += [f"\n![{p.stem}]({p.name})\n" for p in res.figures]
        records += [r.to_dict() for r in res.rows]
    lines.append(DISCUSSION)
    state = {"schema_version": SCHEMA_VERSION, "run": {**asdict(run), "budgets": asdict(b)},
             "cases": [{"case": asdict(r.case), "metric": r.metric, "seconds": r.seconds,
                        "figures": [p.name for p in r.figures],
                        "pretrain": None if r.pretrain is None else r.pretrain.to_dict(),
                        "revision": r.revision or run.revision, "all_analog":
                            None if r.all_analog is None else asdict(r.all_analog)}
                       for r in results], "running": list(running),
             "failed": dict(failed or {}), "rows": records}
    atomic_write_text(folder / "results.json", json.dumps(state, indent=1, default=str))
    keys = [f.name for f in fields(ReportedRow) if f.name != "mapping"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(keys)
    writer.writerows(["" if r.get(k) is None else r[k] for k in keys] for r in records)
    atomic_write_text(folder / "results.csv", buf.getvalue())
    return atomic_write_text(folder / "results.md", "\n".join(lines))


def load_results(folder: str | os.PathLike[str]
                 ) -> tuple[RunInfo, list[CaseResult], list[str], dict[str, str]]:
    """The run, its finished cases, the titles of those still running and those that
    failed (title -> error), from the results.json a run left in `folder`."""
    folder = Path(folder)
    path = folder / "results.json"
    try:
        state = json.loads(path.read_text())
        run = state["run"]
        info = RunInfo(run["command"], Budgets(**run["budgets"]), float(run["seconds"]),
                       run["revision"], run["machine"])
        version = state.get("schema_version", 1)
        if version not in (1, SCHEMA_VERSION):
            raise ValueError(f"schema_version {version!r} is newer than this hetmap's "
                             f"({SCHEMA_VERSION})")
        by_case: dict[str, list[ReportedRow]] = {}
        for r in state["rows"]:
            by_case.setdefault(r["case"], []).append(ReportedRow.from_dict(r, version))
        results = [CaseResult(Case(**c["case"]), c["metric"], by_case.get(c["case"]["key"], []),
                              [folder / f for f in c["figures"]],
                              PretrainMetrics.from_dict(c["pretrain"])
                              if c["pretrain"] else None,
                              float(c["seconds"]), c.get("revision", info.revision),
                              None if c.get("all_analog") is None
                              else TileFit(**c["all_analog"]))
                   for c in state["cases"]]
        return (info, results, list(state.get("running", ())),
                dict(state.get("failed", {})))
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist: run `hetmap reproduce --out {folder}` "
                          "first") from None
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"{path} is not a results.json written by hetmap reproduce "
                          f"({type(err).__name__}: {err}); rerun the command") from None


def render(folder: str | os.PathLike[str]) -> Path:
    """Rewrite results.md and results.csv from the results.json a run left in `folder`
    (after a change to how the table is written; the figures and numbers stay the run's)."""
    info, results, running, failed = load_results(folder)
    return write_results(results, Path(folder), info, running=running, failed=failed)


DISCUSSION = """
## Why this table and the paper's can differ

- **Scale.** These are small offline tasks on a 2-core CPU with budgets in the header, not
  CIFAR-10/COCO/SQuAD with the paper's training: absolute figures are not comparable with
  `../shared/REFERENCE.md`, only the ordering of methods is, and MNIST-scale tasks saturate
  (methods within a point of each other are ties at this test-set size).
- **Drift.** The paper scores after drift; so does this table (1 day, 1 year). `mps@1d`
  searches on hetmap's PCM estimate of the 1-day accuracy and is re-scored by aihwkit like
  every other method.
- **Latency and energy.** hermes-pcm is the real chip's published figures; mps-paper is
  fitted to the paper's ResNet-20 row only, so its ratios on other networks are a check of
  the cost model, not a fit.
- **Where an ordering disagrees** with the paper's, the likely reasons are the short
  budgets (competitors that retrain per candidate, LionHeart and ODiMo, are the most hurt by
  a few training steps), the easier tasks (small accuracy gaps between methods) and the
  single-chip model (all methods share hetmap's analog engine and aihwkit's PCM model).
"""


def reproduce(out: str | os.PathLike[str] = "docs/results", quick: bool = False,
              cases: Sequence[str] | None = None, cifar10: str | None = None,
              command: str = "hetmap reproduce", log: Log = print, jobs: int = 1,
              resume: bool = False) -> Path:
    """Run every case and method, write results.md/csv/json and figures into `out`.

    jobs: processes at once, each with an equal share of the CPU threads (on a few cores
    two 1-thread processes get more done than one 2-thread process: the small operations
    of these networks do not parallelise); with jobs > 1 every (case, seed) is a job of its
    own (`seed_jobs`), so the workers stay balanced, and a case is written when its last
    seed is in. results.md is rewritten after
    every finished case (naming those still running), so an interrupted run keeps its
    finished cases; `resume` reuses them (same budgets required) and runs the rest. The
    header's minutes then add up the invocations."""
    if jobs < 1:
        raise ConfigError(f"jobs must be >= 1, got {jobs}")
    folder = Path(out)
    b = QUICK if quick else FULL
    todo = cases_for(cases, cifar10, quick)
    start = time.perf_counter()
    done: dict[str, CaseResult] = {}
    before = 0.0  # seconds recorded by the invocations resumed from
    if resume and (folder / "results.json").exists():
        info, earlier, _, _ = load_results(folder)
        if info.budgets != b:
            raise ConfigError(f"{folder / 'results.json'} was run with other budgets "
                              f"({asdict(info.budgets)}); --resume needs the same: drop "
                              "--resume or give another --out")
        wanted = {c.key: c for c in todo}
        done = {r.case.key: r for r in earlier if wanted.get(r.case.key) == r.case}
        before = info.seconds
        log(f"== resumed: {', '.join(r.case.title for r in done.values()) or 'nothing'}")
        changed = [r.case.title for r in earlier
                   if r.case.key in wanted and r.case.key not in done]
        if changed:
            log(f"== rerun (their case changed since): {', '.join(changed)}")

    failed: dict[str, str] = {}  # case title -> the error (the other cases go on)
    run = RunInfo(command, b, before)  # its revision and machine, read once

    def write() -> Path:
        return write_results([done[c.key] for c in todo if c.key in done], folder,
                             replace(run, seconds=before + time.perf_counter() - start),
                             running=[c.title for c in todo
                                      if c.key not in done and c.title not in failed],
                             failed=failed)

    def finished(res: CaseResult | None, case: Case | None = None,
                 err: BaseException | None = None) -> Path:
        if res is not None:
            done[res.case.key] = res
            log(f"== {res.case.title}: done in {res.seconds / 60:.1f} min")
        elif case is not None:
            failed[case.title] = f"{type(err).__name__}: {err}"
            log(f"== {case.title}: FAILED ({failed[case.title]})")
        return write()

    def outcome(path: Path) -> Path:
        if failed:
            raise TrainingError(f"{len(failed)} case(s) failed (the others are in {path}): "
                                + "; ".join(f"{t}: {e}" for t, e in failed.items()))
        return path

    path = folder / "results.md"
    todo_run = [c for c in todo if c.key not in done]
    if not todo_run:  # everything reused: the table rewritten
        return write()
    if jobs == 1:
        for case in todo_run:
            log(f"== {case.title}")
            try:
                path = finished(run_case(case, b, folder, quick, log=log))
            except Exception as err:  # a failing case is reported; the others still run
                path = finished(None, case, err)
        return outcome(path)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, (os.cpu_count() or 1) // jobs)
    order = seed_jobs(todo_run, b, quick)
    parts: dict[str, list[CasePart]] = {c.key: [] for c in todo_run}
    with ProcessPoolExecutor(min(jobs, len(order)), mp_context=multiprocessing.get_context(
            "spawn"), initializer=_worker, initargs=(threads,),
            max_tasks_per_child=1) as pool:  # a job's memory goes with its process
        futures = {pool.submit(_part_in_worker, case, b, folder, quick, seed): (case, seed)
                   for case, seed in order}
        log(f"== {len(todo_run)} cases as {len(order)} seed jobs on {jobs} processes x "
            f"{threads} thread(s)")
        for future in as_completed(futures):
            case, seed = futures[future]
            if case.title in failed:
                continue
            try:
                part = future.result()
                log(f"== {case.title}, seed {seed}: done in {part.seconds / 60:.1f} min")
                parts[case.key].append(part)
                if len(parts[case.key]) == case.budgets_for(b, quick).seeds:
                    path = finished(finish_case(parts.pop(case.key), folder))
            except Exception as err:  # a failing case is reported; the others still run
                for other, (c, _) in futures.items():
                    if c.key == case.key:
                        other.cancel()
                path = finished(None, case, err)
    return outcome(path)


def seed_jobs(cases: Sequence[Case], b: Budgets, quick: bool) -> list[tuple[Case, int]]:
    """The (case, seed) jobs of `reproduce --jobs` in the order they start: every case's
    first seed (which pretrains it), then the other seeds case by case; cases are listed
    heaviest first, so no two jobs pretrain the same model at once and the last jobs to
    start are the lightest."""
    seeds = {c.key: range(c.budgets_for(b, quick).seeds) for c in cases}
    return ([(c, 0) for c in cases]
            + [(c, s) for c in cases for s in seeds[c.key] if s > 0])


def _worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _part_in_worker(case: Case, b: Budgets, folder: Path, quick: bool, seed: int) -> CasePart:
    def log(line: str) -> None:
        print(f"[{case.key} seed {seed}] {line}", flush=True)

    log(f"== {case.title}, seed {seed}")
    return run_part(case, b, folder, quick, seeds=[seed], log=log)
