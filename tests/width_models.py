"""Adapted models with searchable width choices, shared by the width-choice tests."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tests.adaptation.adapt_models import ConvHead
from torch import nn

from hetmap import AnalogConfig, Mapping, Supernet, adapt, build_supernet
from hetmap.adaptation import width_groups
from hetmap.mapping import NARROW, WIDE


class DepthwiseBlock(nn.Module):
    """expand 1x1 -> BN -> ReLU -> depthwise 3x3 -> BN -> ReLU -> project 1x1 -> pool -> fc:
    one group with a depthwise conv and two BatchNorms in the middle, then a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.expand = nn.Conv2d(3, 12, 1)
        self.bn1 = nn.BatchNorm2d(12)
        self.dw = nn.Conv2d(12, 12, 3, padding=1, groups=12)
        self.bn2 = nn.BatchNorm2d(12)
        self.project = nn.Conv2d(12, 6, 1)
        self.fc = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn2(self.dw(torch.relu(self.bn1(self.expand(x))))))
        return self.fc(self.project(h).mean(dim=(2, 3)))


def _randomise_bn(model: nn.Module) -> nn.Module:
    """Non-trivial BatchNorm statistics, so a wrong channel slice shows in the output."""
    gen = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return model


@dataclass
class WidthCase:
    model: nn.Module  # the original
    wide: nn.Module  # adapted (every group widened)
    x: torch.Tensor
    sn: Supernet  # on `wide`, with width choices
    base: Supernet  # on `model`
    full: Supernet  # on `wide`, no width choices

    def with_widths(self, layers: Mapping, width: str) -> Mapping:
        """`layers`' layer choices (any supernet's) with every width choice on `width`."""
        choices = {n: layers[n] for n in self.sn.layer_names if n in layers}
        choices.update({g: width for g in self.sn.gate_names})
        return Mapping(choices, self.sn.fingerprint)

    def layers_of(self, mapping: Mapping, sn: Supernet) -> Mapping:
        """`mapping`'s layer choices for `sn` (base or full)."""
        return Mapping({n: mapping[n] for n in sn.layer_names}, sn.fingerprint)


CANDIDATES = ("fp32", "int8", "analog")
TILE = (32, 32)


def width_case(kind: str = "convhead", candidates: tuple[str, ...] = CANDIDATES) -> WidthCase:
    torch.manual_seed(0)
    if kind == "convhead":
        model, x = ConvHead(), torch.randn(4, 3, 8, 8)
    else:
        model, x = DepthwiseBlock(), torch.randn(4, 3, 6, 6)
    model = _randomise_bn(model).eval()
    wide, report = adapt(model, x, tile=TILE)
    groups = width_groups(report)
    assert groups, "the test model should have widenable groups"
    eager = {"fuse": False} if "fuse" in AnalogConfig.model_fields else {}
    analog = AnalogConfig(tile_rows=TILE[0], tile_cols=TILE[1], **eager)

    def make(m: nn.Module, widths=()) -> Supernet:
        return build_supernet(m, x, candidates=candidates, analog=analog, widths=widths).eval()

    return WidthCase(model, wide, x, make(wide, groups), make(model), make(wide))


__all__ = ["NARROW", "WIDE", "DepthwiseBlock", "WidthCase", "width_case"]
