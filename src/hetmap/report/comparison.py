"""A comparison's results (`hetmap.compare`) and how they are shown: per method and seed
its compute (sample-passes, seconds), evaluations and test-split figures; per re-scored
front member one row; the Markdown tables, the CSV and the hypervolume-vs-compute plot.

Statistics over seeds are mean ± sample std (`mean_std`); a member's spread over PCM
programmings also carries its 95 % interval (`ci95`).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hetmap.errors import ConfigError
from hetmap.io import atomic_write_bytes, atomic_write_text
from hetmap.mapping import Mapping
from hetmap.search import ParetoFront

FEW_SAMPLES = 500  # figures from fewer samples are printed with a warning
_UNITS = ((31536000.0, "year"), (86400.0, "day"), (3600.0, "h"), (60.0, "min"), (1.0, "s"))


def time_label(t: float) -> str:
    """1 s, 1 h, 1 day, 1 year, 0 s ..."""
    for size, unit in _UNITS:
        if t >= size and (t / size).is_integer():
            n = int(t / size)
            return f"{n} {unit}{'s' if n > 1 and len(unit) > 2 else ''}"
    return f"{t:g} s"


DAY, YEAR = 86400.0, 31536000.0


def time_name(t: float) -> str:
    """'0s', '1d', '1y' (else '<t>s'): the suffix naming a drift time in a column."""
    return {0.0: "0s", DAY: "1d", YEAR: "1y"}.get(float(t), f"{t:g}s")


def drift_key(t: float) -> str:
    """The one name of the test-split metric `t` seconds after programming (mean over
    programmings; `_std` and `_ci95` name its spread), e.g. test_1d, in every artifact."""
    return f"test_{time_name(t)}"


@dataclass
class Compute:
    """What a method spent: sample-passes (training: forward + backward; evaluation: forward
    only), wall and CPU seconds."""

    train_passes: int = 0
    eval_passes: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0

    @property
    def passes(self) -> int:
        return self.train_passes + self.eval_passes

    def __add__(self, other: Compute) -> Compute:
        return Compute(self.train_passes + other.train_passes,
                       self.eval_passes + other.eval_passes, self.wall_s + other.wall_s,
                       self.cpu_s + other.cpu_s)


# -- statistics ------------------------------------------------------------------------------
def ci95(values: Sequence[float]) -> float:
    """Half-width of the 95 % confidence interval of the mean (Student t)."""
    n = len(values)
    if n < 2:
        return float("nan")
    from scipy.stats import t

    return float(t.ppf(0.975, n - 1) * np.std(values, ddof=1) / math.sqrt(n))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    v = [float(x) for x in values if x is not None and not math.isnan(float(x))]
    if not v:
        return float("nan"), float("nan")
    return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0


def fmt(mean: float, std: float, digits: int = 2) -> str:
    if math.isnan(mean):
        return "-"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def fmt_passes(mean: float, std: float) -> str:
    return f"{mean:.3g} ± {std:.2g}"


# -- records --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Spread:
    """A figure over repeats (seeds or PCM programmings): mean, sample std and the 95 %
    half-width of the mean (nan where it has no meaning, e.g. one repeat)."""

    mean: float
    std: float = 0.0
    ci95: float = float("nan")

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Spread:
        """mean ± sample std of the finite values (nan, nan for none)."""
        mean, std = mean_std([v for v in values if v is not None])
        return cls(mean, std)

    def __str__(self) -> str:
        return fmt(self.mean, self.std)


@dataclass(frozen=True)
class MappingRecord:
    """One front member of one method and seed, re-scored on the test split: one name per
    quantity (hetmap.evaluation's), values in SI units (seconds, joules, bytes); units are
    applied only when formatting. `drift`: time after programming (s) -> the test metric
    over PCM programmings (aihwkit) where the member was drift-scored."""

    method: str
    seed: int
    member: int
    mapping: Mapping
    test_accuracy: float
    analog_mac_ratio: float
    digital_weight_bytes: float
    analog_tiles: int
    tile_utilisation: float
    latency_s: float
    energy_j: float
    fits: bool = True
    val_accuracy: float | None = None  # None when the method searched another accuracy
    uniform: str | None = None  # "all-<candidate>" for a uniform mapping
    test_samples: int = 0
    drift_repeats: int = 0
    drift: dict[float, Spread] = field(default_factory=dict)

    def at(self, t: float) -> Spread | None:
        """The test metric `t` seconds after programming (None: not drift-scored)."""
        return self.drift.get(float(t))

    def to_row(self, times: Sequence[float]) -> dict[str, Any]:
        """The CSV row (COLUMNS, then per drift time its mean, std and 95 % half-width)."""
        out = {c: getattr(self, c) for c in COLUMNS}
        for t in times:
            d = self.at(t)
            out |= {drift_key(t) + suffix: None if d is None else getattr(d, name)
                    for suffix, name in (("", "mean"), ("_std", "std"), ("_ci95", "ci95"))}
        return out


COLUMNS = ("seed", "method", "member", "uniform", "val_accuracy", "test_accuracy",
           "test_samples", "drift_repeats", "analog_mac_ratio", "digital_weight_bytes",
           "analog_tiles", "fits", "tile_utilisation", "latency_s", "energy_j")


@dataclass(frozen=True)
class MethodSummary:
    """One method over seeds (mean ± std): the best drift-scored test metric per drift
    time, test and validation hypervolumes, evaluations and compute."""

    method: str
    seeds: int
    best: dict[float, Spread]
    hv_test: Spread
    hv_test_drift: Spread
    hv_val: Spread
    evaluations: Spread
    train_passes: Spread
    eval_passes: Spread
    wall_s: Spread
    cpu_s: Spread


@dataclass(frozen=True)
class Ratio:
    """Ours against another method: test hypervolume (ours / theirs), CPU time (theirs /
    ours)."""

    hv: float
    cpu_speedup: float


# -- results ---------------------------------------------------------------------------------
@dataclass
class MethodRun:
    """One method on one seed: its compute, evaluations, validation-as-searched curve
    (compute in sample-passes, hypervolume) and the test-split figures of its front."""

    method: str
    seed: int
    evaluations: int
    compute: Compute
    curve: list[tuple[int, float]]
    hv_val: float
    members: int
    stage3_evaluations: int = 0
    extra_evaluations: int = 0
    hv_test: float = 0.0
    hv_test_drift: float = 0.0  # test hypervolume of the drifted members at the last time
    best: dict[float, float] = field(default_factory=dict)  # time -> best test accuracy


@dataclass(frozen=True)
class TileFit:
    """Whether the all-analog mapping fits the chip: the crossbar tiles it needs against the
    chip's (`tile`: rows x cols)."""

    tiles: int
    chip_tiles: int
    tile: str
    fits: bool


@dataclass(frozen=True)
class ComparisonSettings:
    """What a comparison ran: its methods (labels) and seeds, each method's budget (as
    `Budget` prints it), the drift protocol, whether population methods got the uniform
    anchors, the all-analog mapping's tile fit, and the test samples each score read."""

    methods: tuple[str, ...] = ()
    seeds: tuple[int, ...] = ()
    budgets: tuple[tuple[str, str], ...] = ()  # (method, budget)
    drift_times: tuple[float, ...] = ()
    drift_repeats: int | None = None
    anchors: bool = False
    all_analog: TileFit | None = None
    test_samples: int | None = None


@dataclass
class Comparison:
    """runs: one per (method, seed); rows: one per re-scored front member; shared: the
    stage-1/2 compute per seed (every method starts from it); fronts: seed -> method ->
    front re-scored on the test split; settings: what was run."""

    runs: list[MethodRun]
    rows: list[MappingRecord]
    shared: dict[int, Compute] = field(default_factory=dict)
    fronts: dict[int, dict[str, ParetoFront]] = field(default_factory=dict)
    settings: ComparisonSettings = field(default_factory=ComparisonSettings)

    @property
    def seeds(self) -> list[int]:
        return sorted({r.seed for r in self.runs})

    @classmethod
    def merged(cls, parts: Sequence[Comparison]) -> Comparison:
        """One comparison of the same methods and settings run seed by seed apart (by
        `hetmap reproduce --jobs`); its seeds are theirs together."""
        if not parts:
            raise ConfigError("merged needs at least one comparison")
        first, seen = parts[0], set()
        for part in parts:
            if part.methods != first.methods:
                raise ConfigError(f"cannot merge comparisons of other methods: "
                                  f"{part.methods} vs {first.methods}")
            if seen & set(part.seeds):
                raise ConfigError(f"seeds {sorted(seen & set(part.seeds))} are in two of the "
                                  "comparisons merged")
            seen |= set(part.seeds)
        return cls([r for p in parts for r in p.runs], [r for p in parts for r in p.rows],
                   {s: c for p in parts for s, c in p.shared.items()},
                   {s: f for p in parts for s, f in p.fronts.items()},
                   replace(first.settings, seeds=tuple(sorted(seen))))

    @property
    def times(self) -> list[float]:
        return [float(t) for t in self.settings.drift_times]

    @property
    def all_analog(self) -> TileFit | None:
        """The all-analog mapping's tiles against the chip's (None: not recorded)."""
        return self.settings.all_analog

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(r.method for r in self.runs))

    def of(self, method: str) -> list[MethodRun]:
        runs = [r for r in self.runs if r.method == method]
        if not runs:
            raise ConfigError(f"method {method!r} was not compared")
        return runs

    def summary(self) -> list[MethodSummary]:
        """Per method: mean and std over seeds of every reported figure."""
        out = []
        for name in self.methods:
            runs = self.of(name)
            def over(get: Callable[[MethodRun], float], runs: list[MethodRun] = runs
                     ) -> Spread:
                return Spread.of([get(r) for r in runs])

            out.append(MethodSummary(
                method=name, seeds=len(runs),
                best={t: over(lambda r, t=t: r.best.get(t, float("nan"))) for t in self.times},
                hv_test=over(lambda r: r.hv_test), hv_test_drift=over(lambda r: r.hv_test_drift),
                hv_val=over(lambda r: r.hv_val), evaluations=over(lambda r: r.evaluations),
                train_passes=over(lambda r: r.compute.train_passes),
                eval_passes=over(lambda r: r.compute.eval_passes),
                wall_s=over(lambda r: r.compute.wall_s), cpu_s=over(lambda r: r.compute.cpu_s)))
        return out

    def ratios(self, ours: str = "mps",
               others: Sequence[str] = ("lionheart", "odimo", "harmonica")
               ) -> dict[str, Ratio]:
        """Per other method compared, the mean test hypervolume and CPU-time ratios."""
        s = {r.method: r for r in self.summary()}
        me = s[ours]
        return {other: Ratio(me.hv_test.mean / s[other].hv_test.mean
                             if s[other].hv_test.mean else float("inf"),
                             s[other].cpu_s.mean / me.cpu_s.mean
                             if me.cpu_s.mean else float("inf"))
                for other in others if other in s}

    def table(self) -> str:
        """One Markdown table, mean ± std over seeds per method (test split unless marked)."""
        samples = {r.test_samples for r in self.rows if r.test_samples}
        few = min(samples) < FEW_SAMPLES if samples else False
        warn = f" ⚠ <{FEW_SAMPLES} samples" if few else ""
        times = self.times
        last = time_label(times[-1]) if times else "-"
        head = ("| method | seeds | " + "".join(f"test acc {time_label(t)} (%) | "
                                               for t in times)
                + f"HV test | HV test {last} | HV val | evaluations | train sample-passes | "
                "eval sample-passes | wall s | CPU s |\n" + "|---" * (10 + len(times)) + "|\n")
        lines = [head]
        for s in self.summary():
            lines.append(
                f"| {s.method} | {s.seeds} | "
                + "".join(f"{s.best[t]}{warn} | " for t in times)
                + f"{fmt(s.hv_test.mean, s.hv_test.std, 4)} | "
                f"{fmt(s.hv_test_drift.mean, s.hv_test_drift.std, 4)} | "
                f"{fmt(s.hv_val.mean, s.hv_val.std, 4)} | "
                f"{fmt(s.evaluations.mean, s.evaluations.std, 1)} | "
                f"{fmt_passes(s.train_passes.mean, s.train_passes.std)} | "
                f"{fmt_passes(s.eval_passes.mean, s.eval_passes.std)} | "
                f"{fmt(s.wall_s.mean, s.wall_s.std, 0)} | {fmt(s.cpu_s.mean, s.cpu_s.std, 0)} |\n")
        if self.shared:
            sh = list(self.shared.values())
            lines.append(
                f"| (shared stage 1-2) | {len(sh)} | " + "- | " * (3 + len(self.times))
                + "0 | "
                f"{fmt_passes(*mean_std([c.train_passes for c in sh]))} | "
                f"{fmt_passes(*mean_std([c.eval_passes for c in sh]))} | "
                f"{fmt(*mean_std([c.wall_s for c in sh]), 0)} | "
                f"{fmt(*mean_std([c.cpu_s for c in sh]), 0)} |\n")
        return "".join(lines)

    def members_table(self, seed: int | None = None) -> str:
        seed = self.seeds[0] if seed is None else seed
        times = self.times
        lines = ["| method | # | val acc | test acc | "
                 + "".join(f"test {time_label(t)} (95 % CI) | " for t in times)
                 + "samples | analog MACs | digital MB | tiles | latency ms | energy uJ |\n"
                 + "|---" * (10 + len(times)) + "|\n"]
        for r in (r for r in self.rows if r.seed == seed):
            drift = " | ".join(f"{d.mean:.2f} ± {d.std:.2f} (±{d.ci95:.2f})"
                               if (d := r.at(t)) is not None else "-" for t in times)
            warn = " ⚠" if r.test_samples < FEW_SAMPLES else ""
            val = "-" if r.val_accuracy is None else f"{r.val_accuracy:.2f}"
            lines.append(f"| {r.method} | {r.member} | {val} | "
                         f"{r.test_accuracy:.2f} | {drift} | {r.test_samples}{warn} | "
                         f"{r.analog_mac_ratio:.2f} | {r.digital_weight_bytes / 1e6:.4f} | "
                         f"{r.analog_tiles}{'' if r.fits else ' (over)'} | "
                         f"{r.latency_s * 1e3:.4f} | {r.energy_j * 1e6:.3f} |\n")
        return "".join(lines)

    def to_markdown(self) -> str:
        s = self.settings
        notes = (f"Test split: {s.test_samples or '?'} samples, drift "
                 f"{s.drift_repeats or '?'} programmings per member, mean ± std over "
                 f"seeds {self.seeds}; per member mean ± std over programmings (95 % interval)."
                 " Compute in sample-passes (training: forward + backward; evaluation: "
                 "forward only); every method also starts from the shared stage-1/2 row.\n\n")
        return (notes + self.table() + f"\n\nFront members, seed {self.seeds[0]}:\n\n"
                + self.members_table())

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        columns = (*COLUMNS, *(drift_key(t) + x for t in self.times
                               for x in ("", "_std", "_ci95")))
        w.writerow(columns)
        for r in self.rows:
            row = r.to_row(self.times)
            w.writerow([_cell(row[c]) for c in columns])
        return buf.getvalue()

    def plot(self) -> bytes:
        """PNG: validation hypervolume (as searched) versus compute in sample-passes, every
        method and seed; test accuracy 1 day after programming versus analog MAC ratio."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
        for k, name in enumerate(self.methods):
            colour = f"C{k}"
            for j, run in enumerate(self.of(name)):
                shared = self.shared.get(run.seed, Compute()).passes
                if run.curve:
                    x = [shared + c for c, _ in run.curve]
                    axes[0].step(x, [h for _, h in run.curve], where="post", color=colour,
                                 alpha=0.8, label=name if j == 0 else None)
            last = self.times[-1] if self.times else float("nan")
            rows = sorted((r for r in self.rows if r.method == name
                           and r.seed == self.seeds[0] and r.at(last) is not None),
                          key=lambda r: r.analog_mac_ratio)
            if rows:
                axes[1].errorbar([r.analog_mac_ratio for r in rows],
                                 [r.at(last).mean for r in rows],  # type: ignore[union-attr]
                                 yerr=[r.at(last).ci95 for r in rows],  # type: ignore[union-attr]
                                 fmt="o-", color=colour, label=name, capsize=3)
        axes[0].set_xscale("log")
        axes[0].set_xlabel("compute (sample-passes, incl. shared stage 1-2)")
        axes[0].set_ylabel("hypervolume (validation, as searched)")
        axes[0].set_title("hypervolume vs compute")
        axes[1].set_xlabel("analog MAC ratio")
        axes[1].set_ylabel(f"test accuracy {time_label(self.times[-1]) if self.times else ''}"
                           " after programming (%)")
        axes[1].set_title(f"test split, seed {self.seeds[0]} (95 % interval)")
        for ax in axes:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        return buf.getvalue()

    def save(self, directory: str | os.PathLike[str]) -> dict[str, Path]:
        d = Path(directory)
        out = {"markdown": atomic_write_text(d / "compare.md", self.to_markdown()),
               "csv": atomic_write_text(d / "compare.csv", self.to_csv()),
               "plot": atomic_write_bytes(d / "compare.png", self.plot())}
        for seed, fronts in self.fronts.items():
            for name, front in fronts.items():
                front.save(d / f"front-{name}-seed{seed}")
        return out


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    return str(v)
