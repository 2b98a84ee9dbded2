"""Tiny layers and a tiny digital core so real ZigZag calls take well under a second."""

from __future__ import annotations

import pytest

from hetmap.hardware import HardwareSpec, load_hardware
from hetmap.inventory import LayerInfo
from hetmap.layers import LayerSpec


def make_layer(name: str, spec: LayerSpec, input_shape: tuple[int, ...],
               output_shape: tuple[int, ...], tile: tuple[int, int] = (256, 256)) -> LayerInfo:
    out_numel = 1
    for d in output_shape:
        out_numel *= d
    in_numel = 1
    for d in input_shape:
        in_numel *= d
    return LayerInfo(name, spec, out_numel * spec.rows, 1, input_shape, output_shape, in_numel,
                     out_numel, spec.tiles(tile), spec.tile_utilisation(tile), False)


@pytest.fixture
def tiny_hw() -> HardwareSpec:
    data = load_hardware("hermes-pcm").model_dump()
    data["name"] = "tiny"
    data["digital"][0]["precisions"] = {
        "int8": {"array_rows": 8, "array_cols": 8, "mac_energy_pj": 0.23, "weight_bits": 8,
                 "act_bits": 8},
        "fp32": {"array_rows": 4, "array_cols": 4, "mac_energy_pj": 4.6, "weight_bits": 32,
                 "act_bits": 32}}
    data["zigzag"] = {"lpf_limit": 3}
    return HardwareSpec.model_validate(data)
