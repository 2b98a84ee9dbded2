"""A search budget: a number of distinct mappings evaluated and/or wall-clock seconds."""

from __future__ import annotations

from dataclasses import dataclass

from hetmap.errors import ConfigError


@dataclass(frozen=True)
class Budget:
    """Stop after `evaluations` distinct mappings or `seconds`, whichever comes first."""

    evaluations: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.evaluations is None and self.seconds is None:
            raise ConfigError("a budget needs evaluations=... and/or seconds=...")
        if self.evaluations is not None and self.evaluations <= 0:
            raise ConfigError(f"budget evaluations must be positive, got {self.evaluations}")
        if self.seconds is not None and self.seconds <= 0:
            raise ConfigError(f"budget seconds must be positive, got {self.seconds}")

    @classmethod
    def of(cls, budget: Budget | int | float | dict | None) -> Budget:
        """A Budget from a Budget, an evaluation count (int), seconds (float) or a dict."""
        if isinstance(budget, Budget):
            return budget
        if isinstance(budget, bool) or budget is None:
            raise ConfigError("budget must be a Budget, an int (evaluations), a float "
                              "(seconds) or {'evaluations': ..., 'seconds': ...}")
        if isinstance(budget, int):
            return cls(evaluations=budget)
        if isinstance(budget, float):
            return cls(seconds=budget)
        if isinstance(budget, dict):
            unknown = set(budget) - {"evaluations", "seconds"}
            if unknown:
                raise ConfigError(f"unknown budget keys {sorted(unknown)}; use evaluations, "
                                  "seconds")
            return cls(**budget)
        raise ConfigError(f"budget of type {type(budget).__name__} is not understood")
