"""The tile plan of one analog layer: how its crossbar rows split into tile slices, and the
per-slice weight views, masks and conv arguments the numerics (`engine`) run on.

A linear layer's rows are its inputs; a convolution's are (input channel, kernel offset)
pairs, so a slice covers whole input channels where it can and masks the rows of a channel
only partly in it. Grouped convolutions count as `groups` crossbars sharing each slice's
input range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from hetmap.errors import ConfigError
from hetmap.layers import LayerSpec


def split_sizes(size: int, max_size: int) -> list[int]:
    """Row slice sizes exactly as aihwkit-lightning splits a layer over tiles."""
    if max_size <= 0:
        return [size]
    n = (size + max_size - 1) // max_size
    base, extra = divmod(size, n)
    return [base + (i < extra) for i in range(n)]


@dataclass(frozen=True)
class Slice:
    """One tile row slice: crossbar rows [row_lo, row_hi) of each group, which use input
    channels [ch_lo, ch_hi) of that group; `partial` when a channel's kernel is split."""

    ch_lo: int
    ch_hi: int
    row_lo: int
    row_hi: int
    partial: bool

    @property
    def rows(self) -> int:
        return self.row_hi - self.row_lo


@dataclass
class Plan:
    """Static layout of one layer on tiles plus the conv arguments the kernels need."""

    spec: LayerSpec
    slices: list[Slice]
    cin_g: int
    karea: int
    stride: list[int] = field(default_factory=list)
    padding: list[int] = field(default_factory=list)
    dilation: list[int] = field(default_factory=list)
    fuse: bool = False
    _cache: dict[Any, Tensor] = field(default_factory=dict, repr=False)
    # eval-path hook: while set (by hetmap.candidates.analog.pcm), eval forwards run
    # `drawn.forward(ctx, x, clipped weight, input ranges)`: a PCM draw at a time t
    drawn: Any = field(default=None, repr=False, compare=False)

    @property
    def is_conv(self) -> bool:
        return self.spec.kind != "linear"

    @property
    def one_to_one(self) -> bool:
        """Whether every input element feeds exactly one unfolded entry (a linear layer, or
        a 1x1 convolution with stride 1 and no padding): lightning's unfolded input-range
        gradient then equals the folded one."""
        if not self.is_conv:
            return True
        return all(k == 1 for k in self.spec.kernel_size) and all(
            st == 1 for st in self.stride) and all(p == 0 for p in self.padding)

    @property
    def groups(self) -> int:
        return self.spec.groups if self.is_conv else 1

    @property
    def out_g(self) -> int:
        return self.spec.out_features // self.groups

    def row_mask(self, s: Slice, device: torch.device, dtype: torch.dtype) -> Tensor:
        """(channels of the slice, *kernel) 0/1 mask of the rows the slice holds."""
        key = ("mask", s, device, dtype)
        if key not in self._cache:
            rows = torch.arange(s.ch_lo * self.karea, s.ch_hi * self.karea, device=device)
            m = ((rows >= s.row_lo) & (rows < s.row_hi)).to(dtype)
            self._cache[key] = m.view(s.ch_hi - s.ch_lo, *self.spec.kernel_size)
        return self._cache[key]

    # -- slicing the input, the weight and their gradients --------------------------------
    def take(self, x: Tensor, s: Slice) -> Tensor:
        if not self.is_conv:
            return x if s.ch_hi - s.ch_lo == x.shape[-1] else x[..., s.ch_lo:s.ch_hi]
        if s.ch_hi - s.ch_lo == self.cin_g:
            return x
        if self.groups == 1:
            return x[:, s.ch_lo:s.ch_hi]
        xg = x.unflatten(1, (self.groups, self.cin_g))[:, :, s.ch_lo:s.ch_hi]
        return xg.flatten(1, 2)

    def put(self, grad_x: Tensor | None, g: Tensor, s: Slice, like: Tensor) -> Tensor:
        """Add the gradient of one slice's input into the full input gradient."""
        if not self.is_conv:
            if s.ch_hi - s.ch_lo == like.shape[-1]:
                return g if grad_x is None else grad_x.add_(g)
            grad_x = torch.zeros_like(like) if grad_x is None else grad_x
            grad_x[..., s.ch_lo:s.ch_hi] += g
            return grad_x
        if s.ch_hi - s.ch_lo == self.cin_g:
            return g if grad_x is None else grad_x.add_(g)
        grad_x = torch.zeros_like(like) if grad_x is None else grad_x
        view = grad_x.unflatten(1, (self.groups, self.cin_g))
        view[:, :, s.ch_lo:s.ch_hi] += g.unflatten(1, (self.groups, s.ch_hi - s.ch_lo))
        return grad_x

    def weight_slice(self, w: Tensor, s: Slice) -> Tensor:
        ws = w[:, s.ch_lo:s.ch_hi] if s.ch_hi - s.ch_lo != w.shape[1] else w
        if s.partial:
            ws = ws * self.row_mask(s, w.device, w.dtype)
        return ws

    # -- the crossbar matrix-vector products --------------------------------------------
    def mvm(self, x: Tensor, w: Tensor) -> Tensor:
        if not self.is_conv:
            return F.linear(x, w)
        return torch.convolution(x, w, None, self.stride, self.padding, self.dilation, False,
                                 [0] * len(self.stride), self.groups)

    def mvm_backward(self, g: Tensor, x: Tensor, w: Tensor, need_x: bool,
                     need_w: bool) -> tuple[Tensor | None, Tensor | None]:
        if not self.is_conv:
            gx = g @ w if need_x else None
            gw = g.reshape(-1, g.shape[-1]).t() @ x.reshape(-1, x.shape[-1]) if need_w else None
            return gx, gw
        gx, gw, _ = torch.ops.aten.convolution_backward(
            g, x, w, None, self.stride, self.padding, self.dilation, False,
            [0] * len(self.stride), self.groups, [need_x, need_w, False])
        return gx, gw

    def channel_view(self, v: Tensor, ndim: int) -> Tensor:
        """A per-output-channel vector shaped to broadcast against an output."""
        return v.view(-1, *([1] * (ndim - 2))) if self.is_conv else v

    # -- statistics of the unfolded input (what lightning sees) --------------------------
    def coverage(self, x: Tensor, s: Slice) -> Tensor | None:
        """How many unfolded entries of the slice each input element feeds (None: all 1)."""
        if not self.is_conv:
            return None
        sp = tuple(x.shape[2:])
        key = ("cov", s, sp, x.device, x.dtype)
        if key not in self._cache:
            nch = s.ch_hi - s.ch_lo
            w = self.row_mask(s, x.device, x.dtype).unsqueeze(0)
            xin = torch.zeros(1, nch, *sp, device=x.device, dtype=x.dtype)
            out = torch.convolution(xin, w, None, self.stride, self.padding, self.dilation,
                                    False, [0] * len(sp), 1)
            cov, _, _ = torch.ops.aten.convolution_backward(
                torch.ones_like(out), xin, w, None, self.stride, self.padding, self.dilation,
                False, [0] * len(sp), 1, [True, False, False])
            self._cache[key] = cov[0]
            self._cache[("L", *key)] = torch.tensor(math.prod(out.shape[2:]))
        return self._cache[key]

    def unfolded_std(self, xs: Tensor, s: Slice) -> Tensor:
        """`torch.std` of the slice's unfolded input, as lightning's range init uses it."""
        cov = self.coverage(xs, s)
        if cov is None:
            return xs.std()
        xd = xs.double().unflatten(1, (self.groups, s.ch_hi - s.ch_lo))
        cd = cov.double()
        positions = int(self._cache[("L", "cov", s, tuple(xs.shape[2:]), xs.device, xs.dtype)])
        n = float(positions * s.rows * xs.shape[0] * self.groups)
        s1 = (xd * cd).sum()
        s2 = (xd * xd * cd).sum()
        var = (s2 - s1 * s1 / n) / max(n - 1.0, 1.0)
        return var.clamp_min(0.0).sqrt().to(xs.dtype)


def conv_padding(spec: LayerSpec) -> list[int]:
    """Numeric padding of a conv spec ('same' only where it is symmetric)."""
    if not isinstance(spec.padding, str):
        return list(spec.padding) if spec.padding_mode == "zeros" else [0] * len(spec.padding)
    if spec.padding == "valid":
        return [0] * len(spec.kernel_size)
    pads = []
    for k, d in zip(spec.kernel_size, spec.dilation):
        total = d * (k - 1)
        if total % 2:
            raise ConfigError(f"padding='same' with kernel {spec.kernel_size} is asymmetric; "
                              "the analog candidate needs symmetric padding (use numbers)")
        pads.append(total // 2)
    return pads


def build_plan(spec: LayerSpec, tile_rows: int, fuse: bool = False) -> Plan:
    karea = spec.kernel_area if spec.kind != "linear" else 1
    cin_g = spec.in_features // (spec.groups if spec.kind != "linear" else 1)
    slices, lo = [], 0
    for size in split_sizes(cin_g * karea, tile_rows):
        hi = lo + size
        slices.append(Slice(lo // karea, -(-hi // karea), lo, hi,
                            lo % karea != 0 or hi % karea != 0))
        lo = hi
    if spec.kind == "linear":
        return Plan(spec, slices, cin_g, 1)
    return Plan(spec, slices, cin_g, karea, list(spec.stride), conv_padding(spec),
                list(spec.dilation), fuse)
