"""Deploying a mapping with narrow width choices builds the original shapes physically."""

from __future__ import annotations

import pytest
import torch
from tests.width_models import NARROW, width_case
from torch import nn

from hetmap import Mapping

pytest.importorskip("aihwkit")

from aihwkit.nn import AnalogConv2d, AnalogLinear

from hetmap.evaluation import deploy, evaluate_drift


@pytest.fixture(scope="module", params=["convhead", "depthwise"])
def case(request):
    return width_case(request.param)


def _shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    inner = getattr(model, "module", model)
    out = {}
    for name, m in inner.named_modules():
        if isinstance(m, AnalogLinear | AnalogConv2d):
            out[name] = (m.out_features, m.in_features) if isinstance(m, AnalogLinear) \
                else (m.out_channels, m.in_channels)
        elif isinstance(m, nn.Linear | nn.Conv2d | nn.BatchNorm2d) or hasattr(m, "candidate"):
            out[name] = tuple(m.weight.shape[:2])  # plain layers, CandidateLayers, norms
    return out


def test_digital_narrow_deploy_equals_the_supernet_path(case) -> None:
    sn = case.sn
    mapping = case.with_widths(Mapping.uniform(sn, "int8"), NARROW)
    mapping = mapping.with_choice(sn.layer_names[0], "fp32")
    model = deploy(sn, mapping)
    assert _shapes(model) == _shapes(case.model)
    with torch.no_grad():
        assert torch.allclose(model(case.x), sn.use(mapping)(case.x), atol=1e-6)


def test_analog_narrow_deploy_has_the_original_tiles(case) -> None:
    sn = case.sn
    mapping = case.with_widths(Mapping.uniform(sn, "analog"), NARROW)
    if "dw" in mapping:  # aihwkit has no grouped convolutions
        mapping = mapping.with_choice("dw", "int8")
    model = deploy(sn, mapping)
    assert _shapes(model) == _shapes(case.model)
    inner = getattr(model, "module", model)
    consumer = sn.gate(sn.gate_names[0]).group.consumers[0]
    tile = next(inner.get_submodule(consumer).analog_tiles())
    learned = sn.choice_layer(consumer).narrow_candidates["analog"].input_range
    assert tile.input_range.item() == pytest.approx(learned.detach().abs()[0].item())
    y = sn.use(mapping)(case.x).argmax(1).detach()
    res = evaluate_drift(sn, mapping, [(case.x, y)], times=(1.0,), repeats=1)
    assert 0.0 <= res.mean[0] <= 100.0
