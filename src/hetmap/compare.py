"""Every mapper on the same footing: one task, one pretrained model, one hardware spec.

All methods start from the same supernet (built once from the pretrained model) and the
same Evaluator settings, cost table and validation batches. `mps` and `random` search the
supernet after hetmap's staged training (its time is added to theirs); the other mappers
train private copies and keep the weights behind each mapping they scored. Every front
member is then re-scored the same way, on the weights it was found with: task accuracy by
a fresh Evaluator, hardware numbers by the ObjectiveTable and the CostTable, accuracy at
1 s and 1 day after programming by `evaluate_drift` (aihwkit). Hypervolumes share one
normalisation (the Evaluator's ideal and reference points).
"""

from __future__ import annotations

import copy
import csv
import io
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

import hetmap.search.mappers  # noqa: F401 - registers the competing mappers
from hetmap.errors import ConfigError
from hetmap.evaluation import Evaluator
from hetmap.io import atomic_write_bytes, atomic_write_text
from hetmap.mapping import Mapping
from hetmap.search import Budget, Member, ParetoFront, get_strategy, search
from hetmap.search.mappers._common import analog_rpu_config, clone_evaluator
from hetmap.supernet import Supernet, build_supernet

METHODS = ("anchors", "random", "mps", "lionheart", "odimo", "nsga2")
SHARED = ("mps", "random")  # strategies that search the trained supernet's shared weights
COLUMNS = ("method", "member", "accuracy", "acc_1s", "acc_1s_std", "acc_1d", "acc_1d_std",
           "analog_mac_ratio", "digital_mb", "tiles", "fits", "latency_ms", "energy_uj",
           "wall_s", "cpu_s", "train_s", "evaluations", "hv", "hv_1d")


@dataclass
class Comparison:
    """rows: one per re-scored front member (method-level columns repeated);
    summary: one per method; fronts: the re-scored fronts."""

    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    fronts: dict[str, ParetoFront] = field(default_factory=dict)

    def method(self, name: str) -> dict[str, Any]:
        for row in self.summary:
            if row["method"] == name:
                return row
        raise ConfigError(f"method {name!r} was not compared")

    def ratios(self, ours: str = "mps", others: Sequence[str] = ("lionheart", "odimo")
               ) -> dict[str, dict[str, float]]:
        """Hypervolume (ours / theirs), wall-time and CPU-time (theirs / ours) ratios; CPU
        time is the steadier of the two on a shared machine."""
        me = self.method(ours)
        out = {}
        for other in others:
            if not any(r["method"] == other for r in self.summary):
                continue
            them = self.method(other)
            out[other] = {"hv": me["hv"] / them["hv"] if them["hv"] else float("inf"),
                          "hv_1d": me["hv_1d"] / them["hv_1d"] if them["hv_1d"] else
                          float("inf"),
                          "speedup": them["wall_s"] / me["wall_s"] if me["wall_s"] else
                          float("inf"),
                          "cpu_speedup": them["cpu_s"] / me["cpu_s"] if me["cpu_s"] else
                          float("inf")}
        return out

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(COLUMNS)
        for r in self.rows:
            w.writerow([_cell(r.get(c)) for c in COLUMNS])
        return buf.getvalue()

    def to_markdown(self) -> str:
        head = ("| method | evals | wall s | CPU s | train s | HV | HV (1 day) | members | "
                "best acc 1 d | max analog MAC ratio |\n" + "|---" * 10 + "|\n")
        lines = [head]
        for s in self.summary:
            lines.append(f"| {s['method']} | {s['evaluations']} | {s['wall_s']:.1f} | "
                         f"{s['cpu_s']:.1f} | {s['train_s']:.1f} | {s['hv']:.4f} | "
                         f"{s['hv_1d']:.4f} | "
                         f"{s['members']} | {s['best_acc_1d']:.2f} | "
                         f"{s['max_analog_ratio']:.2f} |\n")
        lines.append("\n| method | # | acc | acc 1 s | acc 1 day | analog MACs | digital MB | "
                     "tiles | latency ms | energy uJ |\n" + "|---" * 10 + "|\n")
        for r in self.rows:
            drift = (f"{r['acc_1s']:.2f} +- {r['acc_1s_std']:.2f} | "
                     f"{r['acc_1d']:.2f} +- {r['acc_1d_std']:.2f}") \
                if r.get("acc_1s") is not None else "- | -"
            lines.append(f"| {r['method']} | {r['member']} | {r['accuracy']:.2f} | {drift} | "
                         f"{r['analog_mac_ratio']:.2f} | {r['digital_mb']:.4f} | {r['tiles']}"
                         f"{'' if r['fits'] else ' (over)'} | {r['latency_ms']:.4f} | "
                         f"{r['energy_uj']:.3f} |\n")
        return "".join(lines)

    def plot(self) -> bytes:
        """PNG: accuracy (shared weights and 1 day after programming) vs analog MAC ratio."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
        for k, s in enumerate(self.summary):
            rows = sorted((r for r in self.rows if r["method"] == s["method"]),
                          key=lambda r: r["analog_mac_ratio"])
            colour = f"C{k}"
            x = [r["analog_mac_ratio"] for r in rows]
            axes[0].plot(x, [r["accuracy"] for r in rows], "o-", color=colour,
                         label=s["method"])
            d = [(r["analog_mac_ratio"], r["acc_1d"]) for r in rows if r["acc_1d"] is not None]
            if d:
                axes[1].plot(*zip(*d), "s-", color=colour, label=s["method"])
        axes[0].set_title("Evaluator accuracy (shared footing)")
        axes[1].set_title("accuracy 1 day after programming")
        for ax in axes:
            ax.set_xlabel("analog MAC ratio")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("accuracy (%)")
        axes[1].legend(fontsize=8)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        return buf.getvalue()

    def save(self, directory: str | os.PathLike[str]) -> dict[str, Path]:
        d = Path(directory)
        out = {"markdown": atomic_write_text(d / "compare.md", self.to_markdown()),
               "csv": atomic_write_text(d / "compare.csv", self.to_csv()),
               "plot": atomic_write_bytes(d / "fronts.png", self.plot())}
        for name, front in self.fronts.items():
            front.save(d / f"front-{name}")
        return out


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _spread(members: Sequence[Member], k: int) -> list[int]:
    """Indices of up to k members spread evenly along the analog MAC ratio."""
    order = sorted(range(len(members)), key=lambda i: members[i].scores["analog_mac_ratio"])
    if len(order) <= k:
        return order
    return [order[round(float(j))] for j in np.linspace(0, len(order) - 1, k)]


def compare(task: Any, model: nn.Module | None = None, hardware: Any = "hermes-pcm",
            methods: Sequence[str] = METHODS, budgets: dict[str, Any] | None = None,
            options: dict[str, dict[str, Any]] | None = None, *,
            candidates: Sequence[str] = ("fp32", "fp16", "int8", "analog"),
            analog: Any = None, train_config: Any = None, pretrain_epochs: int = 2,
            bn_batches: int = 2, val_batches: int | None = 2, batch_size: int = 128,
            accuracy_window: float = 25.0, drift_times: Sequence[float] = (1.0, 86400.0),
            drift_repeats: int = 3, drift_batches: int = 2, drift_members: int = 3,
            seed: int = 0, out: str | os.PathLike[str] | None = None,
            log: Callable[[str], Any] = print) -> Comparison:
    """Run every method in `methods` on one task, model and hardware; re-score the fronts.

    task: a Task or its name; model: the pretrained model (None: pretrain
    `pretrain_epochs` epochs); budgets: method -> Budget/int/float (default 24 evaluations);
    options: method -> strategy options; train_config: hetmap's staged training for
    mps/random (a TrainConfig or dict; default a short one); accuracy_window: hypervolume's
    accuracy range is (fp32 - window, 100); drift_members: front members per method
    evaluated after drift (spread along the analog MAC ratio); out: write compare.md,
    compare.csv, fronts.png and each front there."""
    from hetmap.hardware import table_for
    from hetmap.tasks import get_task

    task = get_task(task) if isinstance(task, str) else task
    unknown = [m for m in methods if m not in METHODS and m not in _registered()]
    if unknown:
        raise ConfigError(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    budgets = budgets or {}
    options = options or {}
    if model is None:
        from hetmap.training import pretrain

        model, _ = pretrain(task, epochs=pretrain_epochs, seed=seed, progress=False, log=log)
    model = model.eval()
    base = build_supernet(model, task.example_input(64), candidates=candidates,
                          analog=analog)
    t0 = time.perf_counter()
    cost_table = table_for(base, hardware)
    log(f"cost table: {time.perf_counter() - t0:.1f} s")
    ev0 = Evaluator(base, task, cost_table=cost_table, bn_batches=bn_batches,
                    val_batches=val_batches, batch_size=batch_size, seed=seed)
    fp32 = ev0.accuracy(Mapping.uniform(base, "fp32", fallback=candidates[0]))
    ev0.accuracy_range = (max(0.0, fp32 - accuracy_window), 100.0)
    log(f"fp32 accuracy {fp32:.2f}")

    trained: Supernet | None = None
    train_s = train_cpu = 0.0
    cpu_time: dict[str, float] = {}
    fronts: dict[str, ParetoFront] = {}
    weights: dict[str, Callable[[Mapping], Any]] = {}
    train_time: dict[str, float] = {}
    for name in methods:
        budget = Budget.of(budgets.get(name, 24))
        if name in SHARED:
            if trained is None:
                cpu = time.process_time()
                trained, train_s = _train(base, task, train_config, seed, log)
                train_cpu = time.process_time() - cpu
            sn, extra, extra_cpu = trained, train_s, train_cpu
        else:
            sn, extra, extra_cpu = base, 0.0, 0.0
        strat = get_strategy(name, **options.get(name, {}))
        log(f"{name}: searching ({budget})")
        cpu = time.process_time()
        front = search(sn, clone_evaluator(ev0, sn), strategy=strat, budget=budget, seed=seed)
        cpu_time[name] = time.process_time() - cpu + extra_cpu
        front.wall_time += extra
        fronts[name] = front
        train_time[name] = extra
        snaps = getattr(strat, "snapshots", {})
        weights[name] = (lambda m, s=snaps, owner=sn: s.get(m) if m in s else owner)
        log(f"{name}: {len(front)} on front, {front.evaluations} evaluations, "
            f"{front.wall_time:.1f} s")

    scratch = copy.deepcopy(base)
    rows, summary, rescored = [], [], {}
    rpu = analog_rpu_config(base)
    for name, front in fronts.items():
        members, drift = [], {}
        chosen = set(_spread(front.members, drift_members))
        for i, member in enumerate(front.members):
            sn = _weights_on(scratch, weights[name](member.mapping))
            ev = clone_evaluator(ev0, sn)
            scores = ev.scores([member.mapping])[0]
            members.append(Member(member.mapping, scores))
            if i in chosen:
                drift[i] = _drift(sn, member.mapping, task, drift_times, drift_repeats,
                                  drift_batches, batch_size, seed, rpu)
        hw = ev0.hardware([m.mapping for m in members])
        cost = cost_table.evaluate_indices(ev0.indices([m.mapping for m in members]),
                                           check_tiles=False)
        ideal, ref = ev0.reference_point()
        fr = ParetoFront(members, ev0.names, (), list(front.history), front.evaluations,
                         front.wall_time, name, seed, ideal, ref)
        rescored[name] = fr
        day = drift_times[-1]
        d_members = [Member(members[i].mapping, {**members[i].scores,
                                                 "accuracy": r.at(day)[0]})
                     for i, r in drift.items()]
        hv_1d = ParetoFront(d_members, ev0.names, (), [], 0, 0.0, name, seed, ideal,
                            ref).pruned().hypervolume() if d_members else 0.0
        hv = fr.pruned().hypervolume()
        for i, m in enumerate(members):
            r = drift.get(i)
            rows.append({
                "method": name, "member": i, "accuracy": m.scores["accuracy"],
                "acc_1s": r.at(drift_times[0])[0] if r else None,
                "acc_1s_std": r.at(drift_times[0])[1] if r else None,
                "acc_1d": r.at(day)[0] if r else None, "acc_1d_std": r.at(day)[1] if r else None,
                "analog_mac_ratio": float(hw["analog_mac_ratio"][i]),
                "digital_mb": float(hw["digital_weight_bytes"][i]) / 1e6,
                "tiles": int(cost["analog_tiles"][i]), "fits": bool(cost["fits"][i]),
                "latency_ms": float(cost["latency_s"][i]) * 1e3,
                "energy_uj": float(cost["energy_j"][i]) * 1e6,
                "wall_s": front.wall_time, "cpu_s": cpu_time[name],
                "train_s": train_time[name],
                "evaluations": front.evaluations, "hv": hv, "hv_1d": hv_1d})
        summary.append({"method": name, "evaluations": front.evaluations,
                        "wall_s": front.wall_time, "cpu_s": cpu_time[name],
                        "train_s": train_time[name], "hv": hv,
                        "hv_1d": hv_1d, "members": len(members),
                        "best_acc_1d": max((r.at(day)[0] for r in drift.values()),
                                           default=float("nan")),
                        "max_analog_ratio": float(np.max(hw["analog_mac_ratio"]))
                        if members else 0.0})
    result = Comparison(rows, summary, rescored)
    if out is not None:
        result.save(out)
    return result


def _registered() -> list[str]:
    from hetmap.search import strategy_names

    return strategy_names()


def _weights_on(scratch: Supernet, source: Any) -> Supernet:
    """The supernet holding `source` (a supernet, used as is, or a state dict)."""
    if isinstance(source, Supernet):
        return source
    scratch.load_state_dict(source)
    return scratch


def _drift(sn: Supernet, mapping: Mapping, task: Any, times: Sequence[float], repeats: int,
           batches: int, batch_size: int, seed: int, rpu: Any) -> Any:
    from hetmap.evaluation.drift import evaluate_drift

    return evaluate_drift(sn, mapping, task, times=tuple(times), repeats=repeats, seed=seed,
                          max_batches=batches, batch_size=batch_size, rpu_config=rpu)


def _train(base: Supernet, task: Any, config: Any, seed: int,
           log: Callable[[str], Any]) -> tuple[Supernet, float]:
    """hetmap's staged training on a copy of the base supernet; (supernet, seconds)."""
    from hetmap.training import make_config, train_supernet

    if config is None:
        config = make_config(
            seed=seed, batch_size=64, progress=False, eval_each_epoch=False,
            stage1={"epochs": 1, "max_steps": 10}, stage2={"epochs": 1, "max_steps": 10},
            stage3={"steps": 10, "n_mappings": 8, "tau_mappings": 0, "bn_batches": 1,
                    "val_batches": 1, "eval_batch_size": 128})
    start = time.perf_counter()
    sn = copy.deepcopy(base)
    train_supernet(sn, task, config)
    seconds = time.perf_counter() - start
    log(f"staged training for mps/random: {seconds:.1f} s")
    return sn, seconds
