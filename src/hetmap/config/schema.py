"""The run configuration: one pydantic model per section, unknown keys forbidden everywhere,
so a typo fails at load time with the field named instead of being ignored.

Defaults are the demonstration run (embedded MNIST 5k, small CNN, fp32/int8/int4/analog on
the Hermes-like PCM system), so an empty file is a valid config.
Relative paths are resolved against the config file's folder (validation context
`base_dir`), so a config can be versioned next to its data."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hetmap.adaptation import AdaptPolicy
from hetmap.candidates.analog import AnalogConfig
from hetmap.errors import ConfigError
from hetmap.evaluation.objectives import DEFAULT_OBJECTIVES
from hetmap.training import TrainConfig

_UNITS = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 31536000.0}


class Section(BaseModel):
    """Base of every section: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _resolve(path: Path | None, info: ValidationInfo) -> Path | None:
    if path is None:
        return None
    path = path.expanduser()
    base = (info.context or {}).get("base_dir")
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return path


def _existing(path: Path | None, info: ValidationInfo, what: str) -> Path | None:
    path = _resolve(path, info)
    if path is not None and not path.exists():
        raise ValueError(f"{what} {str(path)!r} does not exist; fix the path or remove the key")
    return path


class TaskSection(Section):
    """What is learned and evaluated."""

    name: str = Field("mnist", description="registered task (mnist, digits, cifar10, ...) or "
                                            "'package.module:factory' for your own")
    data: Path | None = Field(None, description="dataset folder or file for tasks that read "
                                                 "one from disk (null: embedded data)")
    options: dict[str, Any] = Field(default_factory=dict,
                                    description="keyword arguments of the task factory")

    @field_validator("name")
    @classmethod
    def _known_task(cls, name: str) -> str:
        from hetmap.tasks import task_names

        if ":" not in name and name not in task_names():
            raise ValueError(f"unknown task {name!r}; allowed: {', '.join(task_names())} or "
                             "'package.module:factory'")
        return name

    @field_validator("data")
    @classmethod
    def _data_exists(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        return _existing(path, info, "dataset path")


class ModelSection(Section):
    """The network to map: a registered architecture, optionally with trained weights."""

    name: str = Field("small_cnn", description="registered model (small_cnn, resnet20, ...) "
                                                "or 'package.module:factory'")
    options: dict[str, Any] = Field(default_factory=dict,
                                    description="keyword arguments of the model factory")
    checkpoint: Path | None = Field(None, description="trained weights to start from (null: "
                                                       "pretrain in full precision first)")
    pretrain_epochs: int | None = Field(None, gt=0, description="epochs of that full-precision "
                                                                "pretraining (null: the task's "
                                                                "default)")

    @field_validator("name")
    @classmethod
    def _known_model(cls, name: str) -> str:
        from hetmap.models import model_names

        key = name.strip().lower().replace("-", "_")
        if ":" not in name and key not in model_names():
            raise ValueError(f"unknown model {name!r}; allowed: {', '.join(model_names())} or "
                             "'package.module:factory'")
        return name

    @field_validator("checkpoint")
    @classmethod
    def _checkpoint_exists(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        return _existing(path, info, "checkpoint")


class SearchSection(Section):
    """How mappings are searched once the supernet is trained."""

    strategy: str = Field("mps", description="search strategy (see hetmap.search)")
    evaluations: int | None = Field(128, gt=0, description="budget: distinct mappings scored")
    seconds: float | None = Field(None, gt=0, description="budget: wall-clock limit")
    objectives: list[str] = Field(
        default_factory=lambda: list(DEFAULT_OBJECTIVES),
        description="what the Pareto front trades off (and, unless train.stage3.objectives "
                    "is set, what stage 3 ranks on); latency and energy come from the "
                    "hardware cost model; accuracy@1d (@1h, @1y, @<seconds>; :mean, "
                    ":mean-2std, :p10) is the accuracy after PCM programming and drift")
    constraints: list[str] = Field(
        default_factory=list, description="'quantity op value', e.g. 'accuracy_drop<=1', "
                                          "'analog_mac_ratio>=0.6', 'accuracy@1d>=95'")
    draws: int = Field(8, ge=1, description="PCM programming draws per mapping for "
                                            "accuracy@<time> objectives and constraints")

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, name: str) -> str:
        allowed = strategy_names()
        if name not in allowed:
            raise ValueError(f"unknown strategy {name!r}; allowed: {', '.join(allowed)}")
        return name

    @field_validator("objectives")
    @classmethod
    def _objectives(cls, objs: list[str]) -> list[str]:
        from hetmap.evaluation import get_objective

        for name in objs:
            try:
                get_objective(name)
            except ConfigError as err:
                raise ValueError(str(err)) from None
        if len(set(objs)) != len(objs) or len(objs) < 2:
            raise ValueError("objectives must name at least two different objectives")
        return objs

    @field_validator("constraints")
    @classmethod
    def _constraints(cls, items: list[str]) -> list[str]:
        from hetmap.evaluation import parse_constraints

        try:
            parse_constraints(items)
        except ConfigError as err:
            raise ValueError(str(err)) from None
        return items

    @model_validator(mode="after")
    def _budget(self) -> SearchSection:
        if self.evaluations is None and self.seconds is None:
            raise ValueError("give a budget: evaluations and/or seconds")
        return self


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string such as '1s', '30 min', '1h', '1d', '1y'."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9.eE+-]+)\s*([a-z]*)\s*", value)
        if m and (m.group(2) or "s") in _UNITS:
            try:
                return float(m.group(1)) * _UNITS[m.group(2) or "s"]
            except ValueError:
                pass
    raise ValueError(f"{value!r} is not a duration; give seconds or a number with a unit "
                     f"({', '.join(_UNITS)}), e.g. '1d'")


class DriftSection(Section):
    """When after programming accuracy is measured, and how often (PCM drift, aihwkit)."""

    times: list[float] = Field(default_factory=lambda: [1.0, 3600.0, 86400.0, 31536000.0],
                               description="seconds after programming (or '1h', '1d', '1y')")
    repeats: int = Field(5, ge=1, description="programming-noise draws per time (error bars)")
    members: int | None = Field(None, ge=1, description="front members measured (null: every "
                                                        "one; else this many spread from the "
                                                        "most digital to the most analog)")

    @field_validator("times", mode="before")
    @classmethod
    def _durations(cls, times: Any) -> Any:
        if not isinstance(times, list):
            return times
        out = [parse_duration(t) for t in times]
        if not out or any(t <= 0 for t in out):
            raise ValueError("times must be a non-empty list of positive durations")
        return sorted(set(out))


def strategy_names() -> tuple[str, ...]:
    from hetmap.search import strategy_names as names

    return names()




class AdaptSection(AdaptPolicy):
    """MPAAS widening (`method: mpaas`): `hetmap.adaptation.AdaptPolicy` itself, plus
    whether the widths become searchable choices."""

    search: bool = Field(True, description="each widened group's width (original or adapted) "
                                           "is a searchable choice; false: every group is "
                                           "widened, as MPAAS does")
    seed: int | None = Field(None, description="seeds the fresh units (null: the run's seed)")

    @model_validator(mode="after")
    def _searchable_needs_zero_init(self) -> AdaptSection:
        if self.search and self.init != "zero":
            raise ValueError("adapt.search needs init 'zero' (the narrow path must be the "
                             "original model); set adapt.search false to use net2wider")
        return self

    def policy(self, seed: int = 0) -> AdaptPolicy:
        """The `AdaptPolicy` these settings describe (`seed`, the run's, draws fresh units
        unless `adapt.seed` is set)."""
        fields = self.model_dump(exclude={"search", "seed"})
        return AdaptPolicy(**fields, seed=seed if self.seed is None else self.seed)


class RunConfig(Section):
    """Everything `hetmap run` needs; defaults reproduce the demonstration."""

    task: TaskSection = Field(default_factory=TaskSection)
    model: ModelSection = Field(default_factory=ModelSection)
    candidates: list[str] = Field(default_factory=lambda: ["fp32", "int8", "int4", "analog"],
                                  description="hardware candidates offered to every layer")
    exclude: list[str] = Field(default_factory=list,
                               description="layer names or glob patterns kept on fp32")
    hardware: str = Field("hermes-pcm", description="hardware preset name or YAML file")
    analog: AnalogConfig = Field(
        default_factory=AnalogConfig, validate_default=True,
        description="the analog candidate's non-idealities; its tile_rows, tile_cols, inp_res "
                    "and out_res follow the hardware's analog core (set them only to the same "
                    "values)")
    train: TrainConfig = Field(default_factory=TrainConfig)
    search: SearchSection = Field(default_factory=SearchSection)
    drift: DriftSection = Field(default_factory=DriftSection)
    seed: int = Field(0, ge=0, description="seeds data order, initialisation and search")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda if present")
    method: Literal["mps", "mpaas"] = Field(
        "mps", description="mps: map layers only; mpaas: also adapt the architecture")
    adapt: AdaptSection = Field(default_factory=AdaptSection)

    @field_validator("candidates")
    @classmethod
    def _known_candidates(cls, names: list[str]) -> list[str]:
        from hetmap.candidates import candidate_names

        allowed = candidate_names()
        for name in names:
            if name not in allowed:
                raise ValueError(f"unknown candidate {name!r}; allowed: {', '.join(allowed)}")
        if not names:
            raise ValueError(f"name at least one candidate; allowed: {', '.join(allowed)}")
        return list(dict.fromkeys(names))

    @field_validator("hardware")
    @classmethod
    def _known_hardware(cls, name: str, info: ValidationInfo) -> str:
        from hetmap.hardware.loader import preset_names

        if name in preset_names():
            return name
        path = _resolve(Path(name), info)
        assert path is not None
        if path.suffix in (".yaml", ".yml") and path.is_file():
            return str(path)
        raise ValueError(f"{name!r} is neither a preset ({', '.join(preset_names())}) nor an "
                         "existing .yaml file")

    @field_validator("analog")
    @classmethod
    def _analog_on_hardware(cls, analog: AnalogConfig, info: ValidationInfo) -> AnalogConfig:
        """The hardware's tiles and DAC/ADC (`hardware` is validated first: declared first)."""
        from hetmap.config.analog import analog_for_hardware

        hardware = info.data.get("hardware")
        if hardware is None:  # the hardware itself is invalid and reported as such
            return analog
        return analog_for_hardware(analog, hardware)  # a ConfigError is a ValueError

    @model_validator(mode="after")
    def _analog_needed(self) -> RunConfig:
        if self.method == "mpaas" and "analog" not in self.candidates:
            raise ValueError("method 'mpaas' adapts layers to analog tiles: add 'analog' to "
                             "candidates or use method 'mps'")
        return self

    @model_validator(mode="after")
    def _stage3_ranks_on_the_search_objectives(self) -> RunConfig:
        """Stage 3 learns the preferences `mps` samples from, so it ranks mappings on the
        objectives the search optimises unless `train.stage3.objectives` says otherwise
        (filled in here, so the snapshot records what stage 3 used)."""
        stage3 = self.train.stage3
        searched = tuple(self.search.objectives)
        if "objectives" not in stage3.model_fields_set and stage3.objectives != searched:
            train = self.train.model_copy(update={"stage3": stage3.model_copy(
                update={"objectives": searched})})
            object.__setattr__(self, "train", train)
        return self
