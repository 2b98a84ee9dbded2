"""What a mappable layer computes, independent of where it runs.

A `LayerSpec` holds the hyper-parameters of a Linear/Conv1d/Conv2d so that every candidate
(digital, analog, skip) can run the same operation on shared weights, and so that the
inventory, cost model and MPAAS adaptation can reason about shapes without a module.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LayerKind = Literal["linear", "conv1d", "conv2d"]

MAPPABLE_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d)


@dataclass(frozen=True)
class LayerSpec:
    """Shape and hyper-parameters of one Linear/Conv layer (PyTorch weight layout)."""

    kind: LayerKind
    in_features: int
    out_features: int
    kernel_size: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    padding: tuple[int, ...] | str = ()
    dilation: tuple[int, ...] = ()
    groups: int = 1
    padding_mode: str = "zeros"
    bias: bool = True

    @classmethod
    def from_module(cls, module: nn.Module) -> LayerSpec:
        if isinstance(module, nn.Linear):
            return cls("linear", module.in_features, module.out_features,
                       bias=module.bias is not None)
        if isinstance(module, nn.Conv1d | nn.Conv2d):
            if isinstance(module, nn.ConvTranspose1d | nn.ConvTranspose2d):
                raise TypeError("transposed convolutions are not mappable")
            kind: LayerKind = "conv1d" if isinstance(module, nn.Conv1d) else "conv2d"
            padding = module.padding if isinstance(module.padding, str) else tuple(module.padding)
            return cls(kind, module.in_channels, module.out_channels,
                       tuple(module.kernel_size), tuple(module.stride), padding,
                       tuple(module.dilation), module.groups, module.padding_mode,
                       module.bias is not None)
        raise TypeError(f"{type(module).__name__} is not a mappable layer type")

    # -- crossbar view -------------------------------------------------------------------
    @property
    def kernel_area(self) -> int:
        return math.prod(self.kernel_size) if self.kernel_size else 1

    @property
    def rows(self) -> int:
        """Crossbar rows: inputs one output column sums over (in/groups x kernel area)."""
        return (self.in_features // self.groups) * self.kernel_area

    @property
    def cols(self) -> int:
        """Crossbar columns: one per output channel/feature."""
        return self.out_features

    @property
    def weight_shape(self) -> tuple[int, ...]:
        if self.kind == "linear":
            return (self.out_features, self.in_features)
        return (self.out_features, self.in_features // self.groups, *self.kernel_size)

    @property
    def weight_numel(self) -> int:
        return math.prod(self.weight_shape)

    @property
    def params(self) -> int:
        return self.weight_numel + (self.out_features if self.bias else 0)

    def tiles(self, tile: tuple[int, int]) -> int:
        """Number of (rows x cols) tiles this layer's weight matrix needs."""
        return math.ceil(self.rows / tile[0]) * math.ceil(self.cols / tile[1])

    def tile_utilisation(self, tile: tuple[int, int]) -> float:
        return self.weight_numel / (self.tiles(tile) * tile[0] * tile[1])

    def with_features(self, in_features: int | None = None,
                      out_features: int | None = None) -> LayerSpec:
        """The same layer with other channel counts (used by MPAAS widening)."""
        new_in = self.in_features if in_features is None else in_features
        new_out = self.out_features if out_features is None else out_features
        groups = self.groups
        if groups > 1 and groups == self.in_features == self.out_features:  # depthwise stays so
            groups = new_in
        return replace(self, in_features=new_in, out_features=new_out, groups=groups)

    # -- computation ---------------------------------------------------------------------
    def forward(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        """Run the layer's operation with the given (possibly quantized/noisy) weight."""
        if self.kind == "linear":
            return F.linear(x, weight, bias)
        conv = F.conv1d if self.kind == "conv1d" else F.conv2d
        padding: Any = self.padding
        if self.padding_mode != "zeros":
            x = F.pad(x, self.reversed_padding(), mode=self.padding_mode)
            padding = 0
        return conv(x, weight, bias, self.stride, padding, self.dilation, self.groups)

    def reversed_padding(self) -> tuple[int, ...]:
        assert not isinstance(self.padding, str), "string padding only with padding_mode='zeros'"
        out: list[int] = []
        for p in reversed(self.padding):
            out += [p, p]
        return tuple(out)

    def make_module(self) -> nn.Module:
        """A fresh PyTorch module with this spec (random weights)."""
        if self.kind == "linear":
            return nn.Linear(self.in_features, self.out_features, bias=self.bias)
        cls = nn.Conv1d if self.kind == "conv1d" else nn.Conv2d
        return cls(self.in_features, self.out_features, self.kernel_size, self.stride,
                   self.padding, self.dilation, self.groups, self.bias, self.padding_mode)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LayerSpec:
        d = dict(d)
        for key in ("kernel_size", "stride", "dilation"):
            d[key] = tuple(d.get(key, ()))
        if not isinstance(d.get("padding", ()), str):
            d["padding"] = tuple(d.get("padding", ()))
        return cls(**d)


def macs_of_call(spec: LayerSpec, x: Tensor, y: Tensor) -> int:
    """Multiply-accumulates one call performed, from its real input and output."""
    if spec.kind == "linear":
        return (x.numel() // spec.in_features) * spec.in_features * spec.out_features
    return y.numel() * spec.rows


def is_mappable(module: nn.Module) -> bool:
    return isinstance(module, MAPPABLE_TYPES) and not isinstance(
        module, nn.ConvTranspose1d | nn.ConvTranspose2d)


def weight_and_bias(module: nn.Module) -> tuple[nn.Parameter, nn.Parameter | None]:
    weight = module.weight
    bias = getattr(module, "bias", None)
    assert isinstance(weight, torch.Tensor)
    return weight, bias
