"""The run config's analog section follows the hardware: the chip's tiles and DAC/ADC."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from hetmap import AnalogConfig
from hetmap.config import RunConfig, analog_for_hardware, dump_config, load_config
from hetmap.errors import ConfigError


def test_a_run_on_hermes_pcm_simulates_its_256x256_tiles_and_8_bit_converters() -> None:
    cfg = load_config(None)
    assert cfg.hardware == "hermes-pcm"
    assert cfg.analog.tile == (256, 256)  # AnalogConfig's own default is 512 x 512
    assert (cfg.analog.inp_res, cfg.analog.out_res) == (254.0, 254.0)
    assert load_config(None, ["analog.out_noise=0.02"]).analog.tile == (256, 256)
    assert RunConfig().analog.tile == (256, 256)


def test_an_analog_section_that_disagrees_with_the_hardware_names_both_values() -> None:
    with pytest.raises(ConfigError, match=r"analog: .*tile_rows=512.*'hermes-pcm' has "
                                          r"256-row tiles"):
        load_config(None, ["analog.tile_rows=512"])
    with pytest.raises(ConfigError, match=r"out_res=62.*8-bit ADCs \(254 levels\)"):
        load_config(None, ["analog.out_res=62"])
    with pytest.raises(ValueError, match="inp_res=-1"):  # an ideal DAC is another chip
        RunConfig(analog=AnalogConfig.ideal())
    assert load_config(None, ["analog.tile_rows=256"]).analog.tile == (256, 256)


def test_the_hardware_file_decides_and_the_snapshot_reloads(tmp_path: Path) -> None:
    from hetmap.hardware import load_hardware

    spec = load_hardware("hermes-pcm").model_dump(mode="json")
    spec["analog"].update(tile_rows=128, tile_cols=64, dac_bits=6, adc_bits=7)
    hw_file = tmp_path / "chip.yaml"
    hw_file.write_text(yaml.safe_dump(spec))
    cfg = load_config(None, [f"hardware={hw_file}"])
    assert cfg.analog.tile == (128, 64) and (cfg.analog.inp_res, cfg.analog.out_res) == (62, 126)
    snapshot = tmp_path / "config.yaml"
    snapshot.write_text(dump_config(cfg))
    assert load_config(snapshot) == cfg
    digital = load_config(None, ["hardware=digital-int8-fp16"])  # no analog core: unchanged
    assert digital.analog == AnalogConfig()
    with pytest.raises(ConfigError, match="tile_rows=256"):
        analog_for_hardware(AnalogConfig(tile_rows=256), hw_file)


def test_a_session_on_hermes_pcm_builds_256x256_engine_tiles(tmp_path: Path) -> None:
    from hetmap.pipeline import Session, make_task
    from hetmap.tasks.checkpoints import save_checkpoint

    cfg = load_config(None, ["task.name=digits", "device=cpu", "train.progress=false",
                             "candidates=[fp32, analog]"])
    torch.manual_seed(0)
    weights = save_checkpoint(make_task(cfg).build_model(), tmp_path / "w.safetensors")
    cfg = load_config(None, ["task.name=digits", "device=cpu", "candidates=[fp32, analog]",
                             f"model.checkpoint={weights}"])
    sn = Session.open(cfg, tmp_path / "run", log=lambda _m: None).supernet
    assert sn.options.tile == sn.inventory.tile == (256, 256)
    analog = [sn.candidate(n, "analog") for n in sn.layer_names]
    assert analog and all(c.config.tile == (256, 256) for c in analog)
    assert all(len(c.plan.slices) == -(-c.spec.rows // 256) for c in analog)
