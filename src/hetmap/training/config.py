"""Settings of the three-stage supernet training, validated by pydantic so that a bad value
fails before any compute with an error naming the field."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hetmap.errors import ConfigError

RampShape = Literal["linear", "cosine", "step"]


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

    noise_scale: strength of the candidates' non-idealities here; 0 (default) trains the
    network's paths (skip, precision structure) before stage 2 ramps the noise in."""

    noise_scale: float = Field(0.0, ge=0.0, le=1.0)


class Stage2Config(WeightStage):
    """Fair training while non-idealities and quantization ramp from `start` to `target`."""

    epochs: int = Field(3, ge=0)
    schedule: RampShape = "linear"
    start: float = Field(0.0, ge=0.0, le=1.0)
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
        if self.target < self.start:
            raise ValueError(f"target ({self.target}) must be >= start ({self.start})")
        return self


class Stage3Config(_Strict):
    """Rank-preserving preference learning: weights frozen, only the logits learn."""

    steps: int = Field(100, ge=0)
    n_mappings: int = Field(32, ge=2, description="mappings sampled and ranked per step")
    exploration: float = Field(0.5, ge=0.0, le=1.0,
                               description="share of uniformly sampled mappings")
    margin: float = Field(0.5, ge=0.0, description="hinge margin on log-probability gaps")
    lr: float = Field(0.05, gt=0.0)
    objectives: tuple[str, ...] = ("accuracy", "analog_mac_ratio", "digital_weight_bytes")
    bn_batches: int = Field(4, ge=0, description="Evaluator: BN recalibration batches")
    val_batches: int | None = Field(None, ge=1, description="Evaluator: None = whole split")
    eval_batch_size: int = Field(256, ge=1)
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
