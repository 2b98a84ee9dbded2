"""The result of a search: the non-dominated mappings with their scores, how the front grew
(hypervolume per evaluation count) and what it cost; saved as JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import KW_ONLY, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hetmap.errors import ConfigError, MappingError
from hetmap.evaluation.objectives import OBJECTIVES, get_objective, hypervolume, non_dominated
from hetmap.evaluation.scores import Scores
from hetmap.io import atomic_write_text
from hetmap.mapping import Mapping
from hetmap.rundir import RunDir

# 2: scores use hetmap.evaluation's quantity names (latency_s, energy_j; 1 said latency, energy)
SCHEMA_VERSION = 3  # 3: wall_s (was wall_time_s)


@dataclass(frozen=True)
class Member:
    """One mapping on the front and its scores (objectives plus constraint quantities)."""

    mapping: Mapping
    scores: Scores  # a plain dict given is checked into one

    def __post_init__(self) -> None:
        if not isinstance(self.scores, Scores):
            object.__setattr__(self, "scores", Scores(self.scores))

    def to_dict(self) -> dict[str, Any]:
        return {"scores": self.scores.to_dict(), "mapping": self.mapping.to_dict()}


@dataclass
class ParetoFront:
    """Non-dominated mappings (no member dominates another), best first by the first
    objective. `history` holds (evaluations, hypervolume, seconds) after every batch;
    `ideal`/`ref` are the normalisation `hypervolume()` uses by default. `split` is the
    data split the task scores (accuracy) were measured on: "val" for a search, which
    selects; scores added after the search under other names (test_accuracy, ...) say
    their split in their name."""

    members: list[Member]
    objectives: tuple[str, ...]
    _: KW_ONLY
    constraints: tuple[str, ...] = ()
    history: list[tuple[int, float, float]] = field(default_factory=list)
    evaluations: int = 0
    wall_s: float = 0.0
    strategy: str = ""
    seed: int = 0
    ideal: np.ndarray | None = None
    ref: np.ndarray | None = None
    feasible: bool = True  # False: nothing met the constraints; members violate least
    split: str = "val"

    def __post_init__(self) -> None:
        self.objectives = tuple(self.objectives)
        for name in self.objectives:
            get_objective(name)
        first = get_objective(self.objectives[0])
        self.members = sorted(self.members, key=lambda m: first.sign * m.scores[first.name])

    # -- access -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self) -> Iterator[Member]:
        return iter(self.members)

    def __getitem__(self, i: int) -> Member:
        return self.members[i]

    @property
    def mappings(self) -> list[Mapping]:
        return [m.mapping for m in self.members]

    def matrix(self) -> np.ndarray:
        """(members, objectives) in minimisation form."""
        signs = np.array([get_objective(n).sign for n in self.objectives])
        F = np.array([[m.scores[n] for n in self.objectives] for m in self.members], float)
        return F.reshape(len(self.members), len(self.objectives)) * signs

    def hypervolume(self, ref: Sequence[float] | None = None,
                    ideal: Sequence[float] | None = None) -> float:
        """Normalised hypervolume with the search's (ideal, ref) unless given; with only
        `ref` given, the raw volume (see hetmap.evaluation.hypervolume). 0 when nothing
        met the constraints."""
        if ref is None:
            if self.ref is None:
                raise ConfigError("this front has no stored reference point; pass ref=...")
            ref, ideal = self.ref, self.ideal if ideal is None else ideal
        if not self.members or not self.feasible:
            return 0.0  # an infeasible front covers nothing, as in the search's history
        return hypervolume(self.matrix(), ref, ideal)

    def best(self, objective: str) -> Member:
        """The member best at `objective`."""
        sign = get_objective(objective).sign if objective in OBJECTIVES else 1.0
        if not self.members:
            raise ConfigError("the front is empty")
        return min(self.members, key=lambda m: sign * m.scores[objective])

    def evaluations_to_reach(self, hv: float) -> int | None:
        """Evaluations after which this search's hypervolume first reached `hv`."""
        for evals, value, _ in self.history:
            if value >= hv - 1e-12:
                return evals
        return None

    def rescored(self, name: str, values: Sequence[float], prune: bool = True) -> ParetoFront:
        """A copy with score `name` replaced by `values` (the old value kept as
        `<name>_search`), e.g. accuracy after drift; `prune` drops members that the new
        scores make dominated."""
        if len(values) != len(self.members):
            raise ConfigError(f"{len(values)} values for {len(self.members)} members")
        members = [Member(m.mapping, {**m.scores, f"{name}_search": m.scores[name],
                                      name: float(v)})
                   for m, v in zip(self.members, values)]
        out = self.with_members(members)
        return out.pruned() if prune else out

    def pruned(self) -> ParetoFront:
        """This front without the members another member dominates."""
        keep = non_dominated(self.matrix()) if self.members else []
        return self.with_members([self.members[i] for i in keep])

    def with_members(self, members: Sequence[Member]) -> ParetoFront:
        """This front's settings, history and normalisation with other members."""
        return replace(self, members=list(members), history=list(self.history))

    # -- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        hv = self.hypervolume() if self.ref is not None else None
        return {
            "schema_version": SCHEMA_VERSION,
            "strategy": self.strategy, "seed": self.seed,
            "objectives": [{"name": n, "direction": get_objective(n).direction}
                           for n in self.objectives],
            "constraints": list(self.constraints),
            "feasible": self.feasible, "split": self.split,
            "evaluations": self.evaluations, "wall_s": self.wall_s,
            "hypervolume": hv,
            "ideal": None if self.ideal is None else [float(v) for v in self.ideal],
            "ref": None if self.ref is None else [float(v) for v in self.ref],
            "history": [{"evaluations": e, "hypervolume": h, "seconds": s}
                        for e, h, s in self.history],
            "members": [m.to_dict() for m in self.members],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ParetoFront:
        if d.get("schema_version") != SCHEMA_VERSION:
            raise MappingError(f"front schema_version {d.get('schema_version')!r} is not "
                               f"supported (this hetmap reads {SCHEMA_VERSION}): rerun the "
                               "search that wrote it")
        return cls(
            [Member(Mapping.from_dict(m["mapping"]), dict(m["scores"])) for m in d["members"]],
            tuple(o["name"] for o in d["objectives"]),
            constraints=tuple(d.get("constraints", ())),
            history=[(h["evaluations"], h["hypervolume"], h["seconds"])
                     for h in d.get("history", [])],
            evaluations=d.get("evaluations", 0), wall_s=d.get("wall_s", 0.0),
            strategy=d.get("strategy", ""), seed=d.get("seed", 0),
            ideal=_array(d.get("ideal")), ref=_array(d.get("ref")),
            feasible=d.get("feasible", True), split=d.get("split", "val"))

    @classmethod
    def from_json(cls, text: str) -> ParetoFront:
        try:
            return cls.from_dict(json.loads(text))
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise MappingError(f"not a valid front JSON: {err}") from None

    def to_csv(self) -> str:
        """One row per member: its scores, then one column per layer with its candidate.
        Task-score columns name their split (`val_accuracy` for a search's scores)."""
        keys = list(self.objectives) + sorted(
            {k for m in self.members for k in m.scores} - set(self.objectives))
        layers = list(self.members[0].mapping) if self.members else []
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        head = [f"{self.split}_{k}" if k in OBJECTIVES and OBJECTIVES[k].source == "task"
                else k for k in keys]
        w.writerow(["member", *head, *layers])
        for i, m in enumerate(self.members):
            w.writerow([i, *(repr(float(m.scores[k])) if k in m.scores else "" for k in keys),
                        *(m.mapping[n] for n in layers)])
        return buf.getvalue()

    def save(self, directory: str | os.PathLike[str]) -> dict[str, Path]:
        """Write front.json and front.csv atomically into `directory`."""
        d = Path(directory)
        return {"json": atomic_write_text(d / RunDir.FRONT, self.to_json() + "\n"),
                "csv": atomic_write_text(d / RunDir.FRONT_CSV, self.to_csv())}

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ParetoFront:
        """From front.json or the directory holding it."""
        p = Path(path)
        p = p / RunDir.FRONT if p.is_dir() else p
        try:
            return cls.from_json(p.read_text())
        except FileNotFoundError:
            raise MappingError(f"no front file at {p}") from None


def spread(members: Sequence[Member], k: int, key: str = "analog_mac_ratio") -> list[int]:
    """Indices of up to k members spread evenly along `key` (the drift evaluation's picks:
    from the most digital to the most analog member)."""
    order = sorted(range(len(members)), key=lambda i: members[i].scores[key])
    if len(order) <= k:
        return order
    return [order[round(float(j))] for j in np.linspace(0, len(order) - 1, k)]


def _array(v: Sequence[float] | None) -> np.ndarray | None:
    return None if v is None else np.asarray(v, dtype=float)
