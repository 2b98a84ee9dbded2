"""Supernet.options: one frozen, typed record of how the supernet was built."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest
import torch
from tests.models_for_tests import TinyMLP

from hetmap import AnalogConfig, build_supernet
from hetmap.errors import ConfigError
from hetmap.supernet import SupernetOptions


def test_options_are_typed_frozen_and_carry_the_analog_config() -> None:
    analog = AnalogConfig(out_noise=0.01, fuse=False)
    sn = build_supernet(TinyMLP(), torch.randn(4, 8), candidates=("fp32", "int8", "analog"),
                        analog=analog, exclude=("fc3",), int8_act_bits=6)
    opts = sn.options
    assert isinstance(opts, SupernetOptions)
    assert opts.analog == analog and opts.candidates == ("fp32", "int8", "analog")
    assert opts.exclude == ("fc3",) and opts.fixed == "fp32"
    assert opts.candidate_options == (("int8_act_bits", 6),)
    assert sn.candidate("fc1", "int8").act_bits == 6  # the options reached the candidates
    assert sn.candidate("fc1", "analog").config.out_noise == 0.01
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.tile = (4, 4)  # type: ignore[misc]
    assert copy.deepcopy(opts) == opts


def test_options_round_trip_through_json() -> None:
    sn = build_supernet(TinyMLP(), torch.randn(4, 8), analog=AnalogConfig(out_noise=0.02))
    text = json.dumps(sn.options.to_dict())
    again = SupernetOptions.from_dict(json.loads(text))
    assert again == sn.options and again.analog.out_noise == 0.02


def test_options_refuse_an_analog_candidate_option() -> None:
    with pytest.raises(ConfigError, match="'analog' field"):
        SupernetOptions(("fp32",), candidate_options=(("analog", AnalogConfig()),))
