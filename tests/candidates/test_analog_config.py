"""AnalogConfig: defaults, validation and conversion to lightning / aihwkit configs."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from hetmap.candidates.analog import AnalogConfig
from hetmap.candidates.analog.config import converter_levels
from hetmap.errors import ConfigError


def test_defaults_follow_hwa_preset() -> None:
    cfg = AnalogConfig()
    assert cfg.tile == (512, 512)
    assert (cfg.inp_res, cfg.out_res, cfg.out_bound, cfg.out_noise) == (254, 254, 10, 0.04)
    assert cfg.weight_noise == 0.0175 and cfg.input_range and cfg.backend == "hetmap"
    ideal = cfg.ideal()
    assert ideal.tile == cfg.tile and not ideal.input_range and ideal.out_noise == 0


def test_validation_names_the_field() -> None:
    with pytest.raises(ValidationError, match="tile_rows"):
        AnalogConfig(tile_rows=0)
    with pytest.raises(ValidationError, match="input_range"):
        AnalogConfig(input_range=False)
    with pytest.raises(ValidationError, match="backend"):
        AnalogConfig(backend="cuda")


def test_with_geometry_fills_defaults_and_refuses_explicit_disagreement() -> None:
    assert converter_levels(8) == 254 and converter_levels(6) == 62
    chip = AnalogConfig(out_noise=0.02).with_geometry("chip", tile=(128, 64), dac_bits=6,
                                                      adc_bits=7)
    assert chip.tile == (128, 64) and (chip.inp_res, chip.out_res) == (62, 126)
    assert chip.out_noise == 0.02
    assert AnalogConfig(tile_rows=128).with_geometry("chip", tile=(128, 512)).tile == (128, 512)
    with pytest.raises(ConfigError, match=r"sets tile_rows=512 but chip has 128-row tiles"):
        AnalogConfig(tile_rows=512).with_geometry("chip", tile=(128, 64))
    with pytest.raises(ConfigError, match=r"sets inp_res=30 but chip has 6-bit DACs"):
        AnalogConfig(inp_res=30).with_geometry("chip", dac_bits=6)
    with pytest.raises(ConfigError, match="256-row"):  # the first geometry now counts as set
        chip.with_geometry("another chip", tile=(256, 256))


def test_to_lightning_fields() -> None:
    rpu = AnalogConfig(tile_rows=256, out_noise=0.02).to_lightning(noise_scale=0.5)
    assert rpu.mapping.max_input_size == 256
    assert rpu.forward.out_noise == pytest.approx(0.01)
    assert rpu.forward.inp_res == 254 and rpu.pre_post.input_range.enable


def test_to_aihwkit_builds_and_runs() -> None:
    pytest.importorskip("aihwkit")
    from aihwkit.nn import AnalogLinear

    rpu = AnalogConfig().to_aihwkit()
    assert rpu.forward.out_noise == 0.04 and rpu.mapping.max_input_size == 512
    layer = AnalogLinear(8, 3, rpu_config=rpu)
    assert layer(torch.randn(2, 8)).shape == (2, 3)
