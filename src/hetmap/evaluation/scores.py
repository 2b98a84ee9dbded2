"""`Scores`: the figures of one scored mapping, under the one vocabulary every artifact uses.

A read-only mapping from a quantity's name to its value (SI units, natural direction). Its
names are checked when it is made, so a misspelt or retired name fails where it is written,
not as a missing column three packages later. The names are:
- the objectives (`OBJECTIVES`: accuracy, analog_mac_ratio, digital_weight_bytes, latency_s,
  ...) and `accuracy@<time>[:<statistic>]`;
- the constraint quantities (`DERIVED`: accuracy_drop, tile_overflow, ...);
- `<objective>_search`: the value the search saw, kept when a front is re-scored;
- `accuracy_std` and `drift_time_s`: the spread and the time of a drift re-scoring;
- the test split's figures: `test_accuracy` and `test_<time>` (the metric after drift, e.g.
  `test_1d`, `test_3600s`) with `_std` / `_ci95` for their spread.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from hetmap.errors import ConfigError
from hetmap.evaluation.objectives import DERIVED, get_objective

SPREAD_NAMES = ("accuracy_std", "drift_time_s")
_TEST = re.compile(r"^test_(accuracy|1d|1y|[0-9][0-9.e+]*s)(_std|_ci95)?$")


def is_score_name(name: str) -> bool:
    """Whether `name` is in the vocabulary of scores (module docstring)."""
    if name in DERIVED or name in SPREAD_NAMES or _TEST.match(name):
        return True
    base = name[:-len("_search")] if name.endswith("_search") else name
    try:
        get_objective(base)
    except ConfigError:
        return False
    return True


def check_score_name(name: Any) -> str:
    if not isinstance(name, str) or not is_score_name(name):
        raise ConfigError(f"unknown score {name!r}: scores are named by an objective "
                          "(accuracy, analog_mac_ratio, digital_weight_bytes, latency_s, "
                          "energy_j, ..., accuracy@<time>), a constraint quantity "
                          f"({', '.join(DERIVED)}), <objective>_search, "
                          f"{', '.join(SPREAD_NAMES)}, test_accuracy or test_<time> "
                          "(e.g. test_1d, with _std / _ci95)")
    return name


class Scores(Mapping[str, float]):
    """The figures of one scored mapping: read-only, every name checked, values floats.
    `scores | {"test_accuracy": 91.0}` is a new Scores with more (or replaced) figures."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, float] | None = None, **more: float) -> None:
        merged = {**(values or {}), **more}
        self._values = {check_score_name(k): float(v) for k, v in merged.items()}

    def __getitem__(self, name: str) -> float:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __or__(self, other: Mapping[str, float]) -> Scores:
        return Scores({**self._values, **other})

    def __repr__(self) -> str:
        return f"Scores({self._values!r})"

    def __reduce__(self) -> tuple[Any, ...]:  # pickles (spawned workers) as a plain dict
        return (Scores, (self._values,))

    def to_dict(self) -> dict[str, float]:
        return dict(self._values)
