"""Settings of the three-stage supernet training, validated by pydantic so that a bad value
fails before any compute with an error naming the field."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hetmap.errors import ConfigError
from hetmap.evaluation.objectives import DEFAULT_OBJECTIVES

RampShape = Literal["linear", "cosine", "step"]
STAGE1_NOISE = 0.25  # default stage-1 noise level (bench/stage1_ablation.py)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KDConfig(_Strict):
    """Knowledge distillation from the original model (teacher) on every sub-step."""

    enabled: bool = True
    alpha: float = Field(0.5, ge=0.0, le=1.0, description="weight of the distillation term")
    temperature: float = Field(2.0, gt=0.0)
    kind: Literal["kl", "mse"] = Field(
        "kl", description="kl: softmax over dim 1 of the main output; mse: raw outputs")


class WeightStage(_Strict):
    """Shared settings of the two weight-training stages (fair sub-steps per step)."""

    epochs: int = Field(2, ge=0)
    max_steps: int | None = Field(None, ge=1, description="cap on optimizer steps")
    lr: float = Field(0.01, gt=0.0)
    optimizer: Literal["sgd", "adamw"] = "sgd"
    weight_decay: float = Field(0.0, ge=0.0)
    lr_schedule: Literal["constant", "cosine"] = "cosine"
    grad_clip: float = Field(5.0, gt=0.0)


class Stage1Config(WeightStage):
    """Fair training, warm-started from the trained model.

    noise_scale: strength of every candidate's non-idealities during stage 1, the same
    knob stage 2 ramps (int/float candidates blend `s` of their rounding in, analog ones
    scale their output and weight noise by `s` and blend `s` of their DAC/ADC quantization
    in). At 0 every candidate runs the exact fp32 layer, so the K fair passes of a step are
    K identical passes (only skip and width choices differ); the default is a low level, so
    that fairness trains the shared weights on candidates that differ, and stage 2's ramp
    starts from it (`stage2.start` unset). bench/stage1_ablation.py measures the choice."""

    noise_scale: float = Field(STAGE1_NOISE, ge=0.0, le=1.0)


class Stage2Config(WeightStage):
    """Fair training while non-idealities and quantization ramp from `start` to `target`.

    start: None (default) continues from stage 1's level: inside a TrainConfig it is set to
    `stage1.noise_scale`, so the noise never drops between the stages (0 on its own)."""

    epochs: int = Field(3, ge=0)
    schedule: RampShape = "linear"
    start: float | None = Field(None, ge=0.0, le=1.0,
                                description="ramp start; None: stage1.noise_scale")
    target: float = Field(1.0, ge=0.0, le=1.0)
    ramp_fraction: float = Field(
        0.7, gt=0.0, le=1.0, description="share of the stage spent ramping; then hold target")
    steps: int = Field(4, ge=1, description="levels of the 'step' schedule")
    sensitivity_scaled: bool = Field(
        False, description="ramp faster on layers whose loss barely moves at full noise")
    sensitivity_min_fraction: float = Field(
        0.3, gt=0.0, le=1.0, description="ramp share of the least sensitive layer")
    sensitivity_batches: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Stage2Config:
        if self.start is not None and self.target < self.start:
            raise ValueError(f"target ({self.target}) must be >= start ({self.start})")
        return self

    @property
    def ramp_start(self) -> float:
        return 0.0 if self.start is None else self.start


class Stage3Config(_Strict):
    """Rank-preserving preference learning: weights frozen, only the logits learn."""

    steps: int = Field(100, ge=0)
    n_mappings: int = Field(32, ge=2, description="mappings sampled and ranked per step")
    exploration: float = Field(0.5, ge=0.0, le=1.0,
                               description="share of uniformly sampled mappings")
    margin: float = Field(0.5, ge=0.0, description="hinge margin on log-probability gaps")
    lr: float = Field(0.05, gt=0.0)
    objectives: tuple[str, ...] = Field(
        DEFAULT_OBJECTIVES, description="what stage 3 ranks mappings on (with a cost model, "
        "latency and energy too); in a run config, unset: search.objectives")
    bn_batches: int = Field(4, ge=0, description="Evaluator: BN recalibration batches")
    val_batches: int | None = Field(None, ge=1, description="Evaluator: None = whole split")
    eval_batch_size: int = Field(256, ge=1)
    draws: int = Field(8, ge=1, description="Evaluator: PCM draws per mapping for "
                                            "accuracy@<time> objectives")
    tau_mappings: int = Field(64, ge=0, description="fresh mappings for Kendall tau (0: skip)")


class TrainConfig(_Strict):
    """All of it. `batch_size` is per process; `seed` fixes paths, data order and noise."""

    seed: int = 0
    batch_size: int = Field(64, ge=1)
    stage1: Stage1Config = Stage1Config()
    stage2: Stage2Config = Stage2Config()
    stage3: Stage3Config = Stage3Config()
    kd: KDConfig = KDConfig()
    checkpoint_minutes: float = Field(5.0, gt=0.0, description="checkpoint at least this often")
    checkpoint_steps: int = Field(0, ge=0, description="also checkpoint every N steps (0: off)")
    explode_factor: float = Field(
        50.0, gt=1.0, description="stop when a loss exceeds this times the first losses")
    eval_each_epoch: bool = Field(True, description="val metric of the all-fp32 path")
    progress: bool = True

    @model_validator(mode="after")
    def _ramp_continues_stage1(self) -> TrainConfig:
        """An unset `stage2.start` becomes `stage1.noise_scale` (resolved here, so the
        checkpointed config holds the value the run used)."""
        if self.stage2.start is None:
            level = self.stage1.noise_scale
            if self.stage2.target < level:
                raise ValueError(f"stage2.target ({self.stage2.target}) is below "
                                 f"stage1.noise_scale ({level}), where stage 2's ramp starts; "
                                 "raise the target or set stage2.start")
            object.__setattr__(self, "stage2", self.stage2.model_copy(update={"start": level}))
        return self

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Validate, turning pydantic's error into a ConfigError naming the field(s)."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise config_error(exc) from None


def config_error(exc: ValidationError) -> ConfigError:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "config"
        parts.append(f"{where}: {err['msg']}")
    return ConfigError("invalid training config: " + "; ".join(parts))


def make_config(**overrides: Any) -> TrainConfig:
    """TrainConfig from nested keyword dicts, e.g. make_config(stage1={"epochs": 1})."""
    return TrainConfig.from_dict(overrides)
