"""One analog geometry: the tile the objectives count is the tile the engine simulates and the
cost model charges."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hetmap import AnalogConfig, Mapping, build_supernet
from hetmap.errors import ConfigError
from hetmap.hardware.table import cost_of, table_for


def _wide_linear(**kwargs) -> object:
    model = nn.Sequential(nn.Linear(1280, 10)).eval()
    return build_supernet(model, torch.randn(2, 1280), candidates=("analog",), **kwargs)


def test_a_1280_input_linear_on_256_tiles_is_five_row_tiles_everywhere() -> None:
    sn = _wide_linear(tile=(256, 256), analog=AnalogConfig(fuse=False))
    name = sn.layer_names[0]
    cand = sn.candidate(name, "analog")
    assert cand.config.tile == (256, 256) and sn.options.tile == (256, 256)
    assert cand.n_slices == 5 and cand.input_range.numel() == 5  # the engine (was 3)
    assert [s.rows for s in cand.plan.slices] == [256] * 5
    mapping = Mapping.uniform(sn, "analog")
    assert sn.objectives(mapping).analog_tiles == 5  # the objectives
    table = table_for(sn, "hermes-pcm")
    assert int(table.tiles[0, 0]) == 5  # the cost table
    assert cost_of(sn, mapping, table=table).analog_tiles == 5
    with torch.no_grad():  # and the engine runs on them
        assert sn.use(mapping)(torch.randn(3, 1280)).shape == (3, 10)


def test_without_a_tile_the_analog_config_decides() -> None:
    sn = _wide_linear(analog=AnalogConfig(tile_rows=640, fuse=False))
    assert sn.candidate(sn.layer_names[0], "analog").n_slices == 2
    assert sn.options.tile == (640, 512) == sn.inventory.tile
    assert sn.objectives(Mapping.uniform(sn, "analog")).analog_tiles == 2


def test_an_analog_config_on_other_tiles_is_refused_naming_both() -> None:
    with pytest.raises(ConfigError, match=r"tile_rows=512.*256-row tiles"):
        _wide_linear(tile=(256, 256), analog=AnalogConfig(tile_rows=512))
    with pytest.raises(ConfigError, match=r"tile_cols=128.*256-column tiles"):
        _wide_linear(tile=(256, 256), analog=AnalogConfig(tile_cols=128))
    ok = _wide_linear(tile=(256, 256), analog=AnalogConfig(tile_rows=256, fuse=False))
    assert ok.options.analog.tile == (256, 256)
