"""How a supernet was built, as one frozen typed value (`Supernet.options`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hetmap.candidates.analog import AnalogConfig
from hetmap.errors import ConfigError


@dataclass(frozen=True)
class SupernetOptions:
    """The build settings every later stage reads back from a supernet.

    candidates: offered to every searchable layer; exclude: layer names or glob patterns kept
    on `fixed`; analog: the analog candidate's configuration, whose tile (`tile`) is the
    crossbar (rows, cols) of the objectives, the analog engine and the cost model;
    candidate_options: the further keyword options candidate factories were built with
    (e.g. int8_act_bits), as sorted (name, value) pairs.
    """

    candidates: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    fixed: str = "fp32"
    analog: AnalogConfig = field(default_factory=AnalogConfig)
    candidate_options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "candidates", tuple(self.candidates))
        object.__setattr__(self, "exclude", tuple(self.exclude))
        object.__setattr__(self, "candidate_options",
                           tuple(sorted((str(k), v) for k, v in self.candidate_options)))
        if not isinstance(self.analog, AnalogConfig):
            raise ConfigError(f"analog must be an AnalogConfig, got {type(self.analog).__name__}")
        if "analog" in dict(self.candidate_options):
            raise ConfigError("the analog configuration is the 'analog' field, not a "
                              "candidate option")

    @property
    def tile(self) -> tuple[int, int]:
        """The one crossbar tile (rows, cols): the analog config's."""
        return self.analog.tile

    def candidate_kwargs(self) -> dict[str, Any]:
        """The keyword options candidate factories receive (`make_candidate(name, spec,
        **kwargs)`): the candidate options plus `analog`."""
        return dict(self.candidate_options, analog=self.analog)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; candidate options that are not JSON scalars are written as their repr
        (and so do not round-trip through `from_dict`)."""
        scalar = (bool, int, float, str, type(None))
        return {"candidates": list(self.candidates), "exclude": list(self.exclude),
                "fixed": self.fixed, "tile": list(self.tile),
                "analog": self.analog.model_dump(mode="json"),
                "candidate_options": {k: v if isinstance(v, scalar) else repr(v)
                                      for k, v in self.candidate_options}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SupernetOptions:
        return cls(tuple(d["candidates"]), tuple(d.get("exclude", ())), d.get("fixed", "fp32"),
                   AnalogConfig.model_validate(d["analog"]),
                   tuple(dict(d.get("candidate_options", {})).items()))
