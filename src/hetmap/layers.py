"""What a mappable layer computes, independent of where it runs.

A `LayerSpec` holds the hyper-parameters of a Linear/Conv1d/Conv2d/ConvTranspose1d/
ConvTranspose2d so that every candidate (digital, analog, skip) can run the same operation on
shared weights, and so that the inventory, cost model and MPAAS adaptation can reason about
shapes without a module.

A transposed convolution is, on a crossbar, the direct convolution of its *zero-stuffed*
input (stride - 1 zeros between inputs, `dilation * (kernel - 1) - padding` of zero padding
each side, `output_padding` more on the end) with the flipped, in/out-swapped weight:
`conv_equivalent()`, `stuff()` and `conv_weight()` give that form, which the analog engine
runs (and drift deployment builds from torch and aihwkit modules). Its rows and columns are
those of that convolution: (in / groups) x kernel area rows, one column per output channel.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LayerKind = Literal["linear", "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d"]

MAPPABLE_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d,
                                               nn.ConvTranspose1d, nn.ConvTranspose2d)
_KINDS: dict[type[nn.Module], LayerKind] = {
    nn.Conv1d: "conv1d", nn.Conv2d: "conv2d", nn.ConvTranspose1d: "conv_transpose1d",
    nn.ConvTranspose2d: "conv_transpose2d"}
_MODULES: dict[str, type[nn.Module]] = {kind: cls for cls, kind in _KINDS.items()}
_CONV: dict[str, Any] = {"conv1d": F.conv1d, "conv2d": F.conv2d,
                         "conv_transpose1d": F.conv_transpose1d,
                         "conv_transpose2d": F.conv_transpose2d}


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
    output_padding: tuple[int, ...] = ()  # transposed convolutions only

    @classmethod
    def from_module(cls, module: nn.Module) -> LayerSpec:
        if isinstance(module, nn.Linear):
            return cls("linear", module.in_features, module.out_features,
                       bias=module.bias is not None)
        kind = next((k for t, k in _KINDS.items() if isinstance(module, t)), None)
        if kind is not None:
            assert isinstance(module, nn.modules.conv._ConvNd)
            padding = module.padding if isinstance(module.padding, str) else tuple(module.padding)
            out_pad = tuple(module.output_padding) if kind.startswith("conv_transpose") else ()
            return cls(kind, module.in_channels, module.out_channels,
                       tuple(module.kernel_size), tuple(module.stride), padding,
                       tuple(module.dilation), module.groups, module.padding_mode,
                       module.bias is not None, out_pad)
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
    def transposed(self) -> bool:
        return self.kind.startswith("conv_transpose")

    @property
    def weight_shape(self) -> tuple[int, ...]:
        if self.kind == "linear":
            return (self.out_features, self.in_features)
        if self.transposed:
            return (self.in_features, self.out_features // self.groups, *self.kernel_size)
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
        conv = _CONV[self.kind]
        if self.transposed:
            return conv(x, weight, bias, self.stride, self.padding, self.output_padding,
                        self.groups, self.dilation)
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

    # -- a transposed convolution as the direct convolution a crossbar runs ---------------
    def conv_equivalent(self) -> LayerSpec:
        """The direct convolution that computes this transposed one on `stuff(x)` with
        `conv_weight(weight)` (stride 1, the padding done by `stuff`)."""
        assert self.transposed, "only a transposed convolution has a direct equivalent"
        n = len(self.kernel_size)
        return LayerSpec(f"conv{n}d", self.in_features, self.out_features,  # type: ignore[arg-type]
                         self.kernel_size, (1,) * n, (0,) * n, self.dilation, self.groups,
                         "zeros", self.bias)

    def stuff(self, x: Tensor) -> Tensor:
        """The input zero-stuffed and padded as `conv_equivalent()` reads it."""
        n = len(self.kernel_size)
        if any(s > 1 for s in self.stride):
            size = [(length - 1) * s + 1 for length, s in zip(x.shape[-n:], self.stride)]
            out = x.new_zeros(*x.shape[:-n], *size)
            out[(..., *(slice(None, None, s) for s in self.stride))] = x
            x = out
        pads = self.stuffed_padding()
        return F.pad(x, pads) if any(pads) else x

    def stuffed_padding(self) -> tuple[int, ...]:
        """F.pad's (last dim first) padding of the zero-stuffed input; negative crops."""
        assert not isinstance(self.padding, str)
        pads: list[int] = []
        for k, d, p, op in reversed(list(zip(self.kernel_size, self.dilation, self.padding,
                                             self.output_padding))):
            pads += [d * (k - 1) - p, d * (k - 1) - p + op]
        return tuple(pads)

    def stuffing_module(self) -> nn.Module:
        """`stuff` as plain torch modules (for a deployed model that runs without hetmap):
        a fixed depthwise 1x1 transposed convolution of ones inserts the zeros, a constant
        pad adds the borders."""
        n = len(self.kernel_size)
        parts: list[nn.Module] = []
        if any(s > 1 for s in self.stride):
            cls = nn.ConvTranspose1d if n == 1 else nn.ConvTranspose2d
            spread = cls(self.in_features, self.in_features, 1, stride=self.stride,
                         groups=self.in_features, bias=False)
            spread.weight.requires_grad_(False)
            with torch.no_grad():
                spread.weight.fill_(1.0)
            parts.append(spread)
        pad_cls = nn.ConstantPad1d if n == 1 else nn.ConstantPad2d
        parts.append(pad_cls(self.stuffed_padding(), 0.0))
        return nn.Sequential(*parts)

    def conv_weight(self, weight: Tensor) -> Tensor:
        """A transposed convolution's (in, out/g, *k) weight as the (out, in/g, *k) weight
        of `conv_equivalent()`: in/out swapped within each group, kernel flipped."""
        g, n = self.groups, len(self.kernel_size)
        w = weight.unflatten(0, (g, -1)).transpose(1, 2).flatten(0, 1)
        return w.flip(list(range(2, 2 + n)))

    def transposed_weight(self, weight: Tensor) -> Tensor:
        """The inverse of `conv_weight`."""
        g, n = self.groups, len(self.kernel_size)
        w = weight.flip(list(range(2, 2 + n)))
        return w.unflatten(0, (g, -1)).transpose(1, 2).flatten(0, 1)

    def make_module(self) -> nn.Module:
        """A fresh PyTorch module with this spec (random weights)."""
        if self.kind == "linear":
            return nn.Linear(self.in_features, self.out_features, bias=self.bias)
        cls = _MODULES[self.kind]
        if self.transposed:
            return cls(self.in_features, self.out_features, self.kernel_size, self.stride,
                       self.padding, self.output_padding, self.groups, self.bias,
                       self.dilation, self.padding_mode)
        return cls(self.in_features, self.out_features, self.kernel_size, self.stride,
                   self.padding, self.dilation, self.groups, self.bias, self.padding_mode)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LayerSpec:
        d = dict(d)
        for key in ("kernel_size", "stride", "dilation", "output_padding"):
            d[key] = tuple(d.get(key, ()))
        if not isinstance(d.get("padding", ()), str):
            d["padding"] = tuple(d.get("padding", ()))
        return cls(**d)


def macs_of_call(spec: LayerSpec, x: Tensor, y: Tensor) -> int:
    """Multiply-accumulates one call performed, from its real input and output."""
    if spec.kind == "linear":
        return (x.numel() // spec.in_features) * spec.in_features * spec.out_features
    if spec.transposed:  # every input element meets (out / groups) x kernel-area weights
        return x.numel() * (spec.out_features // spec.groups) * spec.kernel_area
    return y.numel() * spec.rows


def is_mappable(module: nn.Module) -> bool:
    return isinstance(module, MAPPABLE_TYPES)


def weight_and_bias(module: nn.Module) -> tuple[nn.Parameter, nn.Parameter | None]:
    weight = module.weight
    bias = getattr(module, "bias", None)
    assert isinstance(weight, torch.Tensor)
    return weight, bias
