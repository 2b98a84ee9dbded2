"""AnalogConfig: defaults, validation and conversion to lightning / aihwkit configs."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from hetmap.candidates.analog import AnalogConfig


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
