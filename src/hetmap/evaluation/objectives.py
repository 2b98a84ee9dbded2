"""Named objectives, constraints, Pareto ranking and hypervolume.

Accuracy at a horizon: `accuracy@<time>[:<statistic>]` names the task's metric `<time>`
after programming the analog layers on PCM (hetmap's fast estimate with aihwkit's
statistics, `hetmap.candidates.analog.pcm`), summarised over the Evaluator's `draws`:
`<time>` is seconds (`@3600`) or a number with a unit s, min, h, d, w, y (`@1s`, `@1h`,
`@1d`, `@1y`); `<statistic>` is `mean` (default), `mean-2std` or a percentile `p<N>`
(`p10`: the accuracy 90 % of programmed chips beat). E.g. `accuracy@1d`,
`accuracy@1y:p10`, constraint `accuracy@1d:mean-2std>=95`.

Every matrix here is in *minimisation form*: one row per mapping, one column per objective,
maximised objectives negated. Ranking and hypervolume are pymoo's (NonDominatedSorting, HV),
so hetmap's fronts are comparable with any pymoo-based mapper.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from hetmap.errors import ConfigError

Direction = Literal["max", "min"]
Source = Literal["task", "table", "cost"]

TIME_UNITS = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0,
              "y": 31536000.0}
_HORIZON = re.compile(r"^([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)([a-z]*)$")
_PERCENTILE = re.compile(r"^p([0-9]+(?:\.[0-9]+)?)$")
# what the Evaluator, the search config and stage 3 optimise unless told otherwise
DEFAULT_OBJECTIVES = ("accuracy", "analog_mac_ratio", "digital_weight_bytes")


@dataclass(frozen=True)
class Horizon:
    """A time after programming and the statistic over PCM draws reported there."""

    seconds: float
    statistic: str = "mean"  # "mean", "mean-2std" or "p<N>" (N-th percentile)

    def summarise(self, values: Sequence[float]) -> float:
        v = np.asarray(values, dtype=float)
        if v.size == 0:
            raise ConfigError("no draws to summarise")
        if self.statistic == "mean":
            return float(v.mean())
        if self.statistic == "mean-2std":
            return float(v.mean() - 2.0 * (v.std(ddof=1) if v.size > 1 else 0.0))
        m = _PERCENTILE.match(self.statistic)
        assert m is not None
        return float(np.percentile(v, float(m.group(1))))


def parse_horizon(name: str) -> Horizon:
    """The horizon of `accuracy@<time>[:<statistic>]` (one-line ConfigError when bad)."""
    _, _, rest = name.partition("@")
    when, _, stat = rest.partition(":")
    stat = stat or "mean"
    m = _HORIZON.match(when.strip())
    if not m or (m.group(2) or "s") not in TIME_UNITS:
        raise ConfigError(f"bad horizon {when!r} in {name!r}: give seconds or a number with a "
                          f"unit ({', '.join(TIME_UNITS)}), e.g. 'accuracy@1d' or "
                          "'accuracy@3600'")
    pm = _PERCENTILE.match(stat)
    if stat not in ("mean", "mean-2std") and not (pm and 0 <= float(pm.group(1)) <= 100):
        raise ConfigError(f"bad statistic {stat!r} in {name!r}: use mean, mean-2std or a "
                          "percentile p0..p100, e.g. 'accuracy@1d:p10'")
    return Horizon(float(m.group(1)) * TIME_UNITS[m.group(2) or "s"], stat)


def horizon_label(seconds: float) -> str:
    """'1 d', '1 h', '30 s': the largest unit that divides `seconds` evenly."""
    for unit, size in sorted(TIME_UNITS.items(), key=lambda kv: -kv[1]):
        if seconds >= size and float(seconds / size).is_integer():
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


@dataclass(frozen=True)
class Objective:
    """One score of a mapping: where it comes from and which way is better."""

    name: str
    direction: Direction
    source: Source  # task: the task's metric; table: ObjectiveTable; cost: CostTable
    unit: str  # SI (s, J, B) or "" for counts and ratios; formatting converts, data never
    description: str
    horizon: Horizon | None = None  # task metric after PCM programming and drift
    span: tuple[float, float] | None = None  # the range every mapping's value lies in

    @property
    def sign(self) -> float:
        """Multiplier into minimisation form."""
        return -1.0 if self.direction == "max" else 1.0


class _Objectives(dict[str, Objective]):
    """The named objectives; `accuracy@<horizon>` names are resolved on demand, so
    `name in OBJECTIVES` and `OBJECTIVES[name]` accept them (iteration lists the base)."""

    def __contains__(self, name: object) -> bool:
        if super().__contains__(name):
            return True
        try:
            return isinstance(name, str) and _horizon_objective(name) is not None
        except ConfigError:
            return False

    def __getitem__(self, name: str) -> Objective:
        if super().__contains__(name):
            return super().__getitem__(name)
        obj = _horizon_objective(name) if isinstance(name, str) else None
        if obj is None:
            raise KeyError(name)
        return obj

    def get(self, name: str, default: object = None) -> object:  # type: ignore[override]
        try:
            return self[name]
        except (KeyError, ConfigError):
            return default


def _horizon_objective(name: str) -> Objective | None:
    """The objective `accuracy@...` names (None for names without '@')."""
    base, at, _ = name.partition("@")
    if not at:
        return None
    if base != "accuracy":
        raise ConfigError(f"only accuracy has a horizon ({name!r}); write e.g. 'accuracy@1d'")
    h = parse_horizon(name)
    what = {"mean": "mean", "mean-2std": "mean - 2 std"}.get(h.statistic,
                                                             f"{h.statistic[1:]}th percentile")
    return Objective(name, "max", "task", "%",
                     f"{what} over PCM draws of the task's metric {horizon_label(h.seconds)} "
                     "after programming (hetmap's fast estimate of aihwkit's PCM model)", h)


# One name per quantity, the same in the Evaluator's scores, the supernet's and the cost
# model's tables, fronts, summaries, comparisons and reports; values in SI units (seconds,
# joules, bytes), a unit suffix where the quantity has one.
OBJECTIVES: dict[str, Objective] = _Objectives({o.name: o for o in (
    Objective("accuracy", "max", "task", "%",
              "the task's metric on the validation split (accuracy, mIoU, F1)"),
    Objective("analog_mac_ratio", "max", "table", "",
              "share of executed MACs that run on analog tiles", span=(0.0, 1.0)),
    Objective("digital_weight_bytes", "min", "table", "B",
              "weights and biases held in digital memory"),
    Objective("analog_tiles", "min", "table", "",
              "crossbar tiles the analog layers occupy"),
    Objective("tile_utilisation", "max", "table", "",
              "used cells / cells of the occupied tiles", span=(0.0, 1.0)),
    Objective("latency_s", "min", "cost", "s",
              "end-to-end latency of one inference from the hardware cost model"),
    Objective("energy_j", "min", "cost", "J",
              "energy of one inference from the hardware cost model"),
)})

# Quantities a constraint may name besides the objectives.
DERIVED: dict[str, str] = {
    "accuracy_drop": "reference accuracy (all-fp32 mapping) minus accuracy, in points",
    "tile_overflow": "analog tiles beyond the chip's budget (needs a cost table)",
    "total_params": "parameters of the model as mapped",
    "skipped_mac_ratio": "MACs removed by skipped layers / MACs of the model",
}


def get_objective(name: str) -> Objective:
    """The objective `name` (also `accuracy@<horizon>`); a ConfigError names what is wrong."""
    try:
        return OBJECTIVES[name]
    except KeyError:
        close = [o for o in OBJECTIVES if isinstance(name, str) and o.startswith(name + "_")]
        hint = f" (did you mean {close[0]!r}? names carry their SI unit)" if close else ""
        raise ConfigError(f"unknown objective {name!r}{hint}; choose from "
                          f"{', '.join(OBJECTIVES)} or accuracy@<time> (e.g. accuracy@1d)"
                          ) from None


def check_objectives(names: Sequence[str], has_cost_table: bool) -> tuple[Objective, ...]:
    """Resolve names; cost-model objectives need a cost table, and the error says how."""
    if isinstance(names, str):
        names = (names,)
    if not names:
        raise ConfigError("objectives must name at least one objective, e.g. "
                          f"{DEFAULT_OBJECTIVES}")
    if len(set(names)) != len(names):
        raise ConfigError(f"objectives repeat a name: {list(names)}")
    out = tuple(get_objective(n) for n in names)
    for o in out:
        if o.source == "cost" and not has_cost_table:
            raise ConfigError(
                f"objective {o.name!r} comes from the hardware cost model: pass "
                "cost_table=hetmap.hardware.table_for(supernet, 'hermes-pcm') (or your "
                "hardware spec) to the Evaluator, or drop it from objectives")
    return out


def to_minimisation(scores: Sequence[Mapping[str, float]],
                    objectives: Sequence[Objective]) -> np.ndarray:
    """(N, m) matrix of `scores` with maximised objectives negated."""
    F = np.array([[s[o.name] for o in objectives] for s in scores], dtype=float)
    return F.reshape(len(scores), len(objectives)) * np.array([o.sign for o in objectives])


# -- constraints ---------------------------------------------------------------------------
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
_PATTERN = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*(?:@[^<>=\s]*)?)\s*(<=|>=|<|>)\s*"
                      r"([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class Constraint:
    """`quantity op value`, e.g. accuracy_drop <= 1 or analog_mac_ratio >= 0.6."""

    name: str
    op: str
    value: float

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ConfigError(f"constraint operator must be one of {', '.join(_OPS)}, "
                              f"got {self.op!r}")
        if "@" in self.name:
            get_objective(self.name)  # a bad horizon says what is wrong with it
        elif self.name not in OBJECTIVES and self.name not in DERIVED:
            raise ConfigError(f"constraint on unknown quantity {self.name!r}; choose from "
                              f"{', '.join([*OBJECTIVES, *DERIVED])}")

    @classmethod
    def parse(cls, text: str | Constraint) -> Constraint:
        if isinstance(text, Constraint):
            return text
        m = _PATTERN.match(text)
        if not m:
            raise ConfigError(f"cannot parse constraint {text!r}; write it like "
                              "'accuracy_drop<=1', 'analog_mac_ratio>=0.6' or "
                              "'accuracy@1d>=95'")
        try:
            value = float(m.group(3))
        except ValueError:
            raise ConfigError(f"constraint {text!r} has no numeric bound") from None
        return cls(m.group(1), m.group(2), value)

    def satisfied(self, scores: Mapping[str, float]) -> bool:
        return _OPS[self.op](float(scores[self.name]), self.value)

    def violation(self, scores: Mapping[str, float]) -> float:
        """0 when satisfied, else how far the quantity is past the bound (> 0)."""
        if self.satisfied(scores):
            return 0.0
        gap = abs(float(scores[self.name]) - self.value)
        return max(gap, 1e-12)  # a strict bound met with equality still counts as violated

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value:g}"


def parse_constraints(items: Sequence[str | Constraint] | str | None) -> tuple[Constraint, ...]:
    if items is None:
        return ()
    if isinstance(items, str):
        items = [s for s in items.split(",") if s.strip()]
    return tuple(Constraint.parse(c) for c in items)


# -- ranking -------------------------------------------------------------------------------
def _as_matrix(F: np.ndarray) -> np.ndarray:
    F = np.asarray(F, dtype=float)
    if F.ndim == 1:
        F = F[:, None]
    if F.ndim != 2:
        raise ConfigError(f"an objective matrix must be (mappings, objectives), got {F.shape}")
    return F


def pareto_ranks(F: np.ndarray) -> np.ndarray:
    """Front index of every row of a minimisation-form matrix (0 = non-dominated)."""
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    F = _as_matrix(F)
    if len(F) == 0:
        return np.zeros(0, dtype=int)
    _, rank = NonDominatedSorting().do(F, return_rank=True)
    return np.asarray(rank, dtype=int)


def non_dominated(F: np.ndarray) -> np.ndarray:
    """Sorted row indices of the first front (rows no other row dominates; ties are kept)."""
    F = _as_matrix(F)
    if len(F) == 0:
        return np.zeros(0, dtype=int)
    return np.flatnonzero(pareto_ranks(F) == 0)


def crowding_distance(F: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of the rows of one front (inf at the extremes)."""
    F = _as_matrix(F)
    n, m = F.shape
    if n <= 2:
        return np.full(n, np.inf)
    dist = np.zeros(n)
    for j in range(m):
        order = np.argsort(F[:, j], kind="stable")
        span = F[order[-1], j] - F[order[0], j]
        dist[order[0]] = dist[order[-1]] = np.inf
        if span > 0:
            dist[order[1:-1]] += (F[order[2:], j] - F[order[:-2], j]) / span
    return dist


def hypervolume(F: np.ndarray, ref: Sequence[float] | np.ndarray,
                ideal: Sequence[float] | np.ndarray | None = None) -> float:
    """Hypervolume (pymoo HV) dominated by the rows of minimisation-form `F` up to `ref`.

    Normalisation: with `ideal` given, each objective is scaled so that `ideal` maps to 0
    and `ref` to 1, i.e. the result is the fraction of the box [ideal, ref] that F
    dominates, in [0, 1] whatever the objectives' units. Without it, the raw volume in the
    objectives' own units. Rows not strictly better than `ref` in every objective add
    nothing."""
    from pymoo.indicators.hv import HV

    F = _as_matrix(F)
    ref = np.asarray(ref, dtype=float)
    if ref.shape != (F.shape[1],):
        raise ConfigError(f"reference point has {ref.size} values for {F.shape[1]} objectives")
    if ideal is not None:
        ideal = np.asarray(ideal, dtype=float)
        span = ref - ideal
        if ideal.shape != ref.shape or np.any(span <= 0):
            raise ConfigError("ideal must be better (smaller) than ref in every objective")
        F = (F - ideal) / span
        ref = np.ones_like(ref)
    F = F[np.all(ref > F, axis=1)]
    if len(F) == 0:
        return 0.0
    return float(HV(ref_point=ref)(F))
