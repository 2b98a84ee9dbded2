"""The analog tile configuration, in aihwkit-lightning's terms.

Field names follow aihwkit-lightning's `TorchInferenceRPUConfig` so that a config can be handed
to it (`to_lightning`) and to aihwkit (`to_aihwkit`, for drift evaluation of deployed models).
Defaults follow aihwkit's hardware-aware-training preset (Rasch et al. 2023): 8-bit DAC/ADC
(254 levels), output bound 10, output noise 0.04, weight noise 0.0175 relative to the channel
maximum (aihwkit remaps channel-wise, so noise and bound are per output channel), learned input
ranges initialised from data, 512x512 tiles. In a run the tiles and the DAC/ADC resolution
follow the hardware spec instead (`with_geometry`, called by `build_supernet(tile=...)` and by
the run config): a config may set them only to the same values.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hetmap.errors import ConfigError

WeightNoiseType = Literal["none", "add_normal", "add_normal_per_channel"]
ClipType = Literal["none", "layer_gaussian", "layer_gaussian_per_channel"]


GEOMETRY = ("tile_rows", "tile_cols", "inp_res", "out_res")  # what the hardware decides


def converter_levels(bits: int) -> float:
    """Levels of a `bits`-bit DAC/ADC as aihwkit counts them: 2**bits - 2 (254 for 8 bits,
    symmetric around zero)."""
    if bits <= 1:
        raise ConfigError(f"a converter needs at least 2 bits, got {bits}")
    return float(2 ** bits - 2)


class _HybridMethod:
    """`AnalogConfig.ideal()` on the class (defaults) or `cfg.ideal()` on an instance."""

    def __init__(self, func: Any) -> None:
        self.func = func

    def __get__(self, obj: Any, owner: type) -> Any:
        def bound(**overrides: Any) -> Any:
            return self.func(obj if obj is not None else owner(), **overrides)
        bound.__doc__ = self.func.__doc__
        return bound


class AnalogConfig(BaseModel):
    """Non-idealities of one analog tile; `<= 0` resolutions/bounds mean "off"."""

    model_config = ConfigDict(frozen=True, extra="forbid", ignored_types=(_HybridMethod,))

    tile_rows: int = Field(512, gt=0, description="crossbar rows (lightning max_input_size)")
    tile_cols: int = Field(512, gt=0, description="crossbar columns")
    inp_res: float = Field(254.0, description="DAC levels (<= 0: no input quantization)")
    out_res: float = Field(254.0, description="ADC levels (<= 0: no output quantization)")
    out_bound: float = Field(10.0, description="ADC bound in units of input range x w_max")
    out_noise: float = Field(0.04, ge=0.0, description="output noise std (training only)")
    out_noise_per_channel: bool = True
    weight_noise: float = Field(0.0175, ge=0.0, description="weight noise std (modifier.std_dev)")
    weight_noise_type: WeightNoiseType = "add_normal_per_channel"
    clip_type: ClipType = "layer_gaussian_per_channel"
    clip_sigma: float = Field(2.5, gt=0.0)
    input_range: bool = Field(True, description="clip inputs at a (learned) input range")
    learn_input_range: bool = True
    init_value: float = Field(3.0, gt=0.0)
    init_from_data: int = Field(100, ge=0, description="batches averaged to initialise ranges")
    init_std_alpha: float = Field(3.0, gt=0.0)
    input_range_decay: float = Field(0.001, ge=0.0)
    input_min_percentage: float = Field(0.95, ge=0.0, le=1.0)
    range_grad: Literal["unfolded", "folded"] = Field(
        "unfolded", description="input-range gradient of convolutions: 'unfolded' clamps it "
        "per im2col entry exactly like lightning (costly: visits every clipped input once per "
        "kernel offset); 'folded' clamps it per input element (cheap; equal for linear layers "
        "and non-overlapping convs)")
    fuse: bool = Field(True, description="fuse element-wise steps with torch.compile "
                       "(compiles once per process; eager fallback)")
    backend: Literal["hetmap", "lightning"] = "hetmap"

    @model_validator(mode="after")
    def _consistent(self) -> AnalogConfig:
        needs_range = self.inp_res > 0 or self.out_res > 0 or self.out_noise > 0 \
            or self.out_bound > 0
        if needs_range and not self.input_range:
            raise ValueError("input_range must be True when inp_res, out_res, out_bound or "
                             "out_noise is enabled (they are relative to the input range)")
        if self.out_res > 0 and self.out_bound <= 0:
            raise ValueError("out_bound must be > 0 when out_res > 0 (the ADC needs a range)")
        return self

    @property
    def tile(self) -> tuple[int, int]:
        return (self.tile_rows, self.tile_cols)

    @property
    def has_weight_noise(self) -> bool:
        return self.weight_noise > 0 and self.weight_noise_type != "none"

    def with_geometry(self, source: str, *, tile: tuple[int, int] | None = None,
                      dac_bits: int | None = None, adc_bits: int | None = None
                      ) -> AnalogConfig:
        """This config on `source`'s tiles and converters (`source` names them in errors,
        e.g. "hardware 'hermes-pcm'"). A field left at its default takes the given value; a
        field set explicitly (pydantic's `model_fields_set`) to another value is a
        ConfigError naming both values. Fields taken from `source` count as set afterwards,
        so a second, different geometry is refused too."""
        wanted: dict[str, tuple[float, str]] = {}
        if tile is not None:
            wanted["tile_rows"] = (int(tile[0]), f"{tile[0]}-row tiles")
            wanted["tile_cols"] = (int(tile[1]), f"{tile[1]}-column tiles")
        if dac_bits is not None:
            wanted["inp_res"] = (converter_levels(dac_bits),
                                 f"{dac_bits}-bit DACs ({converter_levels(dac_bits):g} levels)")
        if adc_bits is not None:
            wanted["out_res"] = (converter_levels(adc_bits),
                                 f"{adc_bits}-bit ADCs ({converter_levels(adc_bits):g} levels)")
        update: dict[str, float] = {}
        for name, (value, what) in wanted.items():
            mine = getattr(self, name)
            if mine == value:
                continue
            if name in self.model_fields_set:
                shown = f"{mine:g}" if isinstance(mine, float) else str(mine)
                raise ConfigError(
                    f"the analog config sets {name}={shown} but {source} has {what} "
                    f"({name}={value:g}); leave {name} unset to follow {source}, or set it to "
                    f"{value:g}")
            update[name] = value
        return self.model_copy(update=update) if update else self

    @_HybridMethod
    def ideal(self, **overrides: Any) -> AnalogConfig:
        """The same tiles with every non-ideality off: equals the exact layer."""
        return self.model_copy(update=dict(
            inp_res=-1.0, out_res=-1.0, out_bound=0.0, out_noise=0.0, weight_noise=0.0,
            weight_noise_type="none", clip_type="none", input_range=False) | overrides)

    def to_lightning(self, noise_scale: float = 1.0) -> Any:
        """The equivalent aihwkit-lightning `TorchInferenceRPUConfig` (noise scaled by
        `noise_scale`; weight clipping is applied by hetmap in the forward pass)."""
        from aihwkit_lightning.simulator.configs import (
            TorchInferenceRPUConfig,
            WeightClipType,
            WeightNoiseInjectionType,
        )

        rpu = TorchInferenceRPUConfig()
        rpu.forward.inp_res = self.inp_res
        rpu.forward.out_res = self.out_res
        rpu.forward.out_bound = self.out_bound
        rpu.forward.out_noise = self.out_noise * noise_scale
        rpu.forward.out_noise_per_channel = self.out_noise_per_channel
        rpu.modifier.std_dev = self.weight_noise * noise_scale
        rpu.modifier.noise_type = {
            "none": WeightNoiseInjectionType.NONE,
            "add_normal": WeightNoiseInjectionType.ADD_NORMAL,
            "add_normal_per_channel": WeightNoiseInjectionType.ADD_NORMAL_PER_CHANNEL,
        }[self.weight_noise_type if self.weight_noise > 0 else "none"]
        rpu.clip.type = {
            "none": WeightClipType.NONE,
            "layer_gaussian": WeightClipType.LAYER_GAUSSIAN,
            "layer_gaussian_per_channel": WeightClipType.LAYER_GAUSSIAN_PER_CHANNEL,
        }[self.clip_type]
        rpu.clip.sigma = self.clip_sigma
        rpu.mapping.max_input_size = self.tile_rows
        self._set_input_range(rpu.pre_post.input_range)
        return rpu

    def _set_input_range(self, ir: Any) -> None:
        """Both libraries name the input-range parameters alike."""
        ir.enable = self.input_range
        ir.learn_input_range = self.learn_input_range
        ir.init_value = self.init_value
        ir.init_from_data = self.init_from_data
        ir.init_std_alpha = self.init_std_alpha
        ir.decay = self.input_range_decay
        ir.input_min_percentage = self.input_min_percentage

    def to_aihwkit(self) -> Any:
        """An aihwkit `InferenceRPUConfig` with the same DAC/ADC/output-noise/tile settings,
        the same weight-to-ADC-range scaling (per column with per-channel clipping, else per
        tile), PCM-like programming/drift noise (g_max=25) and global drift compensation.
        With that noise off, aihwkit's forward equals hetmap's eval-mode analog path (see
        tests/evaluation/test_deploy_equals_search.py)."""
        from aihwkit.inference import GlobalDriftCompensation, PCMLikeNoiseModel
        from aihwkit.simulator.configs import InferenceRPUConfig
        from aihwkit.simulator.parameters.enums import (
            BoundManagementType,
            NoiseManagementType,
            WeightModifierType,
            WeightRemapType,
        )

        rpu = InferenceRPUConfig()
        fwd = rpu.forward
        fwd.inp_res = self.inp_res if self.inp_res > 0 else -1
        fwd.out_res = self.out_res if self.out_res > 0 else -1
        fwd.out_bound = self.out_bound if self.out_bound > 0 else -1
        fwd.out_noise = self.out_noise
        fwd.is_perfect = False
        fwd.bound_management = BoundManagementType.NONE
        fwd.noise_management = NoiseManagementType.NONE
        # The ADC range scales with the weight maximum per column (per-channel clipping) or
        # per row slice of the layer, exactly as in hetmap's analog path (engine.row_wmax),
        # so that the deployed model computes what the search scored. Splitting columns over
        # tiles changes nothing per column; per slice it would split the maximum, so the
        # columns then stay on one tile as in hetmap's engine (and aihwkit-lightning).
        per_channel = self.clip_type == "layer_gaussian_per_channel"
        rpu.mapping.max_input_size = self.tile_rows
        rpu.mapping.max_output_size = self.tile_cols if per_channel else 0
        rpu.mapping.digital_bias = True
        rpu.mapping.weight_scaling_omega = 1.0
        rpu.mapping.weight_scaling_columnwise = per_channel
        rpu.remap.type = WeightRemapType.CHANNELWISE_SYMMETRIC if per_channel \
            else WeightRemapType.LAYERWISE_SYMMETRIC
        if self.has_weight_noise:
            rpu.modifier.type = WeightModifierType.ADD_NORMAL
            rpu.modifier.std_dev = self.weight_noise
        self._set_input_range(rpu.pre_post.input_range)
        rpu.noise_model = PCMLikeNoiseModel(g_max=25.0)
        rpu.drift_compensation = GlobalDriftCompensation()
        return rpu
