"""Fast analog forward/backward with aihwkit-lightning's numerics and native conv/matmul kernels.

aihwkit-lightning unfolds convolutions (im2col) and runs each tile slice as a matmul. Here a
tile slice of a convolution is a convolution over the input channels whose crossbar rows fall
in that slice (weights of a channel only partly in the slice are masked), so no unfold is ever
materialised. Per slice, as in lightning: clip the input at the learned range and DAC-quantize
it, add weight noise (training), compute the partial sum, add output noise (training),
ADC-quantize and clip at the output bound; partial sums add up digitally, then the bias.

One autograd Function does the whole layer so that nothing but the layer input (which the
previous layer keeps anyway), the small noisy weights and the output-clip masks (only if
something clipped) is saved; the quantized input is recomputed in backward. The input-range
gradient equals lightning's, which clamps the gradient of every *unfolded* entry separately:
it is computed sparsely over the clipped inputs only.

Grouped convolutions count as `groups` crossbars (one per group) that share the input range of
each row slice; the weight maximum that scales noise and bound is taken per group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from hetmap.candidates.analog import kernels, native
from hetmap.candidates.analog.config import AnalogConfig
from hetmap.errors import ConfigError
from hetmap.layers import LayerSpec

_CHUNK = 1 << 22  # clipped (input, kernel offset) pairs handled at once for the range gradient


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


# -- the pieces of the analog computation ---------------------------------------------------
def clip_weight(weight: Tensor, config: AnalogConfig) -> Tensor:
    """Lightning's layer-Gaussian weight clip, applied in the forward pass with a
    straight-through gradient (lightning clips after every optimizer step; hetmap weights are
    shared with other candidates, so they are never clipped in place)."""
    if config.clip_type == "none":
        return weight
    fn = kernels.fused("clip_weight", kernels.clip_weight_impl) if config.fuse \
        else kernels.clip_weight_impl
    # a 2-D view, not the parameter: one dynamic-shape graph serves every layer (dynamo
    # specialises on a parameter's shape and rank and would recompile per layer)
    w2 = weight.reshape(weight.shape[0], -1)
    return fn(w2, config.clip_sigma, config.clip_type != "layer_gaussian").view_as(weight)


def noisy_weight(c: Ctx, s: Slice, weight: Tensor, need_wmax: bool
                 ) -> tuple[Tensor, Tensor | None]:
    """Slice `s` of the (clipped) weight with weight noise when training, and the abs max
    of each of its columns when needed (one fused pass when `fuse`)."""
    plan, cfg = c.plan, c.config
    ws = weight[:, s.ch_lo:s.ch_hi] if s.ch_hi - s.ch_lo != weight.shape[1] else weight
    noisy = c.training and cfg.has_weight_noise
    if not (noisy or need_wmax):
        return plan.weight_slice(weight, s), None
    mask = plan.row_mask(s, ws.device, ws.dtype) if s.partial else None
    noise = torch.randn_like(ws) if noisy else None  # eager: as many draws as before
    fn = kernels.fused("noisy_weight", kernels.noisy_weight_impl) if cfg.fuse \
        else kernels.noisy_weight_impl
    # a view, not the parameter (see clip_weight), and the factor a tensor: the noise ramp
    # changes it every step, and a float would be compiled in as a constant
    return fn(ws.view_as(ws), mask, noise, ws.new_tensor(cfg.weight_noise * c.scale),
              cfg.weight_noise_type == "add_normal_per_channel")


def row_wmax(plan: Plan, ws: Tensor, per_channel: bool) -> Tensor:
    """Abs max per crossbar column (output) of one slice; reduced per group unless per
    channel. Returns a (out,) vector."""
    wmax = ws.detach().abs().flatten(1).amax(1)
    if per_channel:
        return wmax
    g = plan.groups
    return wmax.view(g, -1).amax(1, keepdim=True).expand(g, plan.out_g).reshape(-1)


def dac(xs: Tensor, r: Tensor | None, config: AnalogConfig, scale: float) -> Tensor:
    """Clip at the input range and quantize (lightning's `UniformQuantize` arithmetic)."""
    if r is None:
        return xs
    if scale >= 1.0:
        if config.fuse:
            return kernels.fused("dac", kernels.dac_impl)(xs, r, config.inp_res)
        return kernels.dac_impl(xs, r, config.inp_res)
    xc = torch.clamp(xs, -r, r)
    if config.inp_res <= 0:
        return xc
    res = (2 * r) / config.inp_res
    xq = xc / res.clamp_min(torch.finfo(xs.dtype).tiny)
    xq = xq.round_().mul_(res)
    return xq if scale >= 1.0 else xc.add_(xq.sub_(xc), alpha=scale)


@dataclass
class Ctx:
    """Everything one analog call needs besides tensors."""

    plan: Plan
    config: AnalogConfig
    training: bool
    scale: float


def _forward(c: Ctx, x: Tensor, weight: Tensor, ir: Tensor | None
             ) -> tuple[Tensor, list[Tensor], list[Tensor | None]]:
    cfg, plan = c.config, c.plan
    out: Tensor | None = None
    noisy_ws: list[Tensor] = []
    keeps: list[Tensor | None] = []
    for i, s in enumerate(plan.slices):
        r = None if ir is None else ir[i]
        xq = dac(plan.take(x, s), r, cfg, c.scale)
        need_wmax = (r is not None and (cfg.out_bound > 0 or cfg.out_res > 0 or (
            c.training and cfg.out_noise > 0)))
        ws, wmax = noisy_weight(c, s, weight, need_wmax)
        noisy_ws.append(ws)
        y = plan.mvm(xq, ws)
        del xq
        if r is not None and wmax is not None:
            y, keep = _adc(c, y, r, wmax)
            keeps.append(keep)
        else:
            keeps.append(None)
        out = y if out is None else out.add_(y)
    assert out is not None
    return out, noisy_ws, keeps


def _adc(c: Ctx, y: Tensor, r: Tensor, wmax: Tensor) -> tuple[Tensor, Tensor | None]:
    """Output noise (training), ADC quantization and bound of one partial sum; returns the
    mask of outputs the bound did not clip (None when nothing clipped)."""
    cfg, plan = c.config, c.plan
    std = bound = None
    if c.training and cfg.out_noise > 0:
        wm = row_wmax(plan, wmax.view(-1, 1), cfg.out_noise_per_channel)
        std = plan.channel_view(
            wm * (cfg.out_noise * c.scale / math.sqrt(len(plan.slices)) * r), y.ndim)
    if cfg.out_bound > 0:
        wm = row_wmax(plan, wmax.view(-1, 1), cfg.clip_type == "layer_gaussian_per_channel")
        bound = plan.channel_view((r * cfg.out_bound) * wm, y.ndim)
    if c.scale >= 1.0 and y.is_contiguous() and native.usable(y):
        inner = math.prod(y.shape[2:]) if plan.is_conv else 1
        return native.adc(y, std, bound, cfg.out_res, inner)
    if c.scale >= 1.0:
        fn = kernels.fused("adc", kernels.adc_impl) if cfg.fuse else kernels.adc_impl
        y, keep = fn(y, None if std is None else torch.randn_like(y), std, bound, cfg.out_res)
    else:  # noise ramp: blend the quantization in
        if std is not None:
            y = y + torch.randn_like(y) * std
        keep = None
        if bound is not None:
            if cfg.out_res > 0:
                res = (2 * bound) / cfg.out_res
                yq = (y / res.clamp_min(torch.finfo(y.dtype).tiny)).round_().mul_(res)
                y = y.add_(yq.sub_(y), alpha=c.scale)
            keep = y.abs() <= bound
            y = torch.clamp(y, -bound, bound)
    if keep is not None and bool(keep.all()):
        keep = None
    return y, keep


def _kept(grad: Tensor, keep: Tensor) -> Tensor:
    """The output gradient where the bound did not clip; `keep` is a bool mask or, from the
    native ADC, one packed to bits."""
    if keep.dtype == torch.uint8:
        return native.where_bits(grad, keep).view_as(grad)
    return torch.where(keep, grad, 0.0)


def _input_grad(c: Ctx, i: int, x: Tensor, r: Tensor, gq: Tensor, gout: Tensor, ws: Tensor,
                grads: _Grads) -> Tensor | None:
    """Gradients through the input clip of slice `i`: the input's (added into `grads`) and
    the input range's (returned)."""
    plan, cfg = c.plan, c.config
    s = plan.slices[i]
    folded = cfg.range_grad == "folded" or plan.one_to_one
    if not (folded and plan.groups == 1) and plan.is_conv and x.dim() <= 4 \
            and native.usable(x, gq, gout, ws):
        return _native_input_grad(c, i, x, r, gq, gout, ws, grads)
    xs = plan.take(x, s)
    if folded and plan.groups == 1:
        fn = kernels.fused("input_grad", kernels.input_grad_impl) if cfg.fuse \
            else kernels.input_grad_impl
        gx, total, count = fn(gq, xs, r)
        grad = None
        if grads.need_r:
            grad = total * r
            if cfg.input_range_decay > 0:
                pct = 1.0 - count / float(xs.numel())
                grad = grad + cfg.input_range_decay * r * (pct > cfg.input_min_percentage)
    else:
        grad = _range_grad(c, s, xs, r, gq, gout, ws) if grads.need_r else None
        gx = gq.masked_fill_((xs > r) | (xs < -r), 0.0)
    grads.add_input(s, gx, x)
    return grad


@dataclass
class _Grads:
    """The gradients one backward builds up over the slices, and the output gradient in
    channels-last order for the range gradient, converted once per distinct tensor."""

    plan: Plan
    need_x: bool
    need_r: bool
    x: Tensor | None = None
    _rows_of: Tensor | None = None
    _rows: Tensor | None = None

    def add_input(self, s: Slice, g: Tensor, like: Tensor) -> None:
        if self.need_x:
            self.x = self.plan.put(self.x, g, s, like)

    def input_buffer(self, like: Tensor) -> Tensor | None:
        """The input gradient for the native kernel to write into (every slice's channels
        are written, so it starts uninitialised)."""
        if self.need_x and self.x is None:
            self.x = torch.empty(like.shape, dtype=like.dtype, device=like.device)
        return self.x

    def rows(self, gout: Tensor) -> Tensor:
        """`gout` (4-d) for reading one output position's channels of a group at once:
        channels-last when a group has many outputs, else as it is."""
        if self.plan.out_g < 8:
            return gout
        if self._rows_of is not gout:
            self._rows_of, self._rows = gout, gout.contiguous(memory_format=torch.channels_last)
        assert self._rows is not None
        return self._rows


def _native_input_grad(c: Ctx, i: int, x: Tensor, r: Tensor, gq: Tensor, gout: Tensor,
                       ws: Tensor, grads: _Grads) -> Tensor | None:
    """`_input_grad` of a convolution slice by the C++ kernel (conv1d as 2-d with height 1),
    reading the slice's channels from the whole input and writing the input gradient in
    place."""
    plan = c.plan
    s = plan.slices[i]
    gx = grads.input_buffer(x)
    if x.dim() == 3:
        x, gout = x.unsqueeze(2), gout.unsqueeze(2)
    x = x.contiguous()
    g, nch, og = plan.groups, s.ch_hi - s.ch_lo, plan.out_g
    two_d = (lambda v: list(v)) if len(plan.stride) == 2 else (lambda v: [1, *v])
    acc = max(0, plan.slices[i - 1].ch_hi - s.ch_lo) if i > 0 else 0
    geo = [*x.shape[2:], *gout.shape[2:], *two_d(plan.spec.kernel_size), *two_d(plan.stride),
           *(plan.padding if len(plan.padding) == 2 else [0, *plan.padding]),
           *two_d(plan.dilation), g, s.ch_lo, acc]
    wl = ws.reshape(g, og, nch, plan.karea).permute(3, 0, 2, 1).reshape(-1, og)
    rmask = plan.row_mask(s, x.device, torch.bool).reshape(-1) if s.partial else None
    total, counts = native.clip_grad(x, gq, None if gx is None else gx.view(x.shape), r,
                                     grads.need_r, grads.rows(gout), wl, rmask, geo)
    if not grads.need_r:
        return None
    return _decayed(c, r, total, counts,
                    float(x.shape[0] * math.prod(gout.shape[2:]) * s.rows))


def _range_grad(c: Ctx, s: Slice, xs: Tensor, r: Tensor, gq: Tensor, gout: Tensor,
                ws: Tensor) -> Tensor:
    """Lightning's input-range gradient for one slice: r * (sum over clipped unfolded entries
    of min(sign * grad, 0)) + decay * r where few inputs clip."""
    plan, cfg = c.plan, c.config
    upper, lower = xs >= r, xs <= -r
    clipped = upper | lower
    if cfg.range_grad == "folded" or plan.one_to_one:
        sgn_g = torch.where(upper, gq, torch.where(lower, -gq, 0.0))
        total = sgn_g.clamp_(max=0).sum()
        if plan.groups == 1:
            counts = clipped.sum().reshape(1).to(xs.dtype)
        else:
            counts = clipped.unflatten(1, (plan.groups, -1)).transpose(0, 1).reshape(
                plan.groups, -1).sum(1).to(xs.dtype)
        n_per_group = float(xs.numel() // plan.groups)
    else:
        total, counts = _unfolded_clip_grad(plan, s, xs, upper, clipped, gout, ws)
        n_per_group = float(xs.shape[0] * math.prod(gout.shape[2:]) * s.rows)
    return _decayed(c, r, total, counts, n_per_group)


def _decayed(c: Ctx, r: Tensor, total: Tensor, counts: Tensor, n_per_group: float) -> Tensor:
    """Lightning's range gradient from the clipped-entry sum and counts: r * total, plus a
    decay of r for every group where too few entries clip."""
    cfg = c.config
    grad = total * r
    if cfg.input_range_decay > 0:
        pct = 1.0 - counts / n_per_group
        grad = grad + cfg.input_range_decay * r * (pct > cfg.input_min_percentage).sum()
    return grad


def _unfolded_clip_grad(plan: Plan, s: Slice, xs: Tensor, upper: Tensor, clipped: Tensor,
                        gout: Tensor, ws: Tensor) -> tuple[Tensor, Tensor]:
    """Sum over clipped unfolded entries of min(sign * d(unfolded input), 0), where the
    gradient of an unfolded entry (input p, kernel offset k) is sum_o gout[o, l] * w[o, c, k]
    for the output position l that reads p through k. Also counts clipped unfolded entries
    per group. Only clipped inputs are visited (row gathers from channels-last copies)."""
    g, nch, og = plan.groups, s.ch_hi - s.ch_lo, plan.out_g
    dev, dt = xs.device, xs.dtype
    counts = torch.zeros(g, dtype=dt, device=dev)
    total = torch.zeros((), dtype=dt, device=dev)
    flat = clipped.reshape(-1).nonzero().squeeze(1)
    if flat.numel() == 0:
        return total, counts
    sign = torch.where(upper.reshape(-1)[flat], 1.0, -1.0).to(dt)
    karea = math.prod(plan.spec.kernel_size)
    gl = gout.movedim(1, -1).reshape(-1, og)  # rows: ((n, *out position), group)
    wl = ws.reshape(g, og, nch, karea).permute(3, 0, 2, 1).reshape(-1, og)  # (k, group, c)
    offs = torch.tensor(_kernel_offsets(plan.spec.kernel_size), device=dev).t()  # (d, karea)
    rmask = plan.row_mask(s, dev, torch.bool).reshape(-1) if s.partial else None
    geo = (tuple(xs.shape[1:]), tuple(gout.shape[2:]), tuple(plan.stride),
           tuple(plan.padding), tuple(plan.dilation), g, nch)
    if plan.fuse:
        total, pairs = kernels.fused("clip_pairs", kernels.clip_pairs_impl)(
            flat, sign, gl, wl, offs, rmask, geo, None)
    else:
        total, pairs = kernels.clip_pairs_impl(flat, sign, gl, wl, offs, rmask, geo,
                                               max(1, _CHUNK // og))
    grp = torch.div(flat, math.prod(xs.shape[2:]), rounding_mode="floor") % xs.shape[1] // nch
    return total, counts.index_add_(0, grp, pairs)


def _kernel_offsets(ksize: tuple[int, ...]) -> list[tuple[int, ...]]:
    offs: list[tuple[int, ...]] = [()]
    for k in ksize:
        offs = [(*o, i) for o in offs for i in range(k)]
    return offs


class AnalogFunction(torch.autograd.Function):
    """The analog layer (without bias) as one autograd node."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, ir: Tensor | None,  # type: ignore[override]
                c: Ctx) -> Tensor:
        out, noisy_ws, keeps = _forward(c, x, weight, ir)
        ctx.c = c
        ctx.keeps = keeps
        ctx.has_ir = ir is not None
        ctx.save_for_backward(x, ir if ir is not None else x.new_empty(0), *noisy_ws)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Any:  # type: ignore[override]
        c: Ctx = ctx.c
        plan = c.plan
        x, ir, *noisy_ws = ctx.saved_tensors
        need_x, need_w, need_r = ctx.needs_input_grad[0], ctx.needs_input_grad[1], \
            ctx.has_ir and ctx.needs_input_grad[2]
        grads = _Grads(plan, need_x, bool(need_r))
        grad_w: Tensor | None = None
        grad_r = torch.zeros_like(ir) if need_r else None
        for i, (s, ws, keep) in enumerate(zip(plan.slices, noisy_ws, ctx.keeps)):
            gs = grad if keep is None else _kept(grad, keep)
            r = ir[i] if ctx.has_ir else None
            xq = dac(plan.take(x, s), r, c.config, c.scale)
            gq, gw = plan.mvm_backward(gs, xq, ws, need_x or need_r, need_w)
            del xq
            if gw is not None:
                if len(plan.slices) == 1:
                    grad_w = gw
                else:
                    if grad_w is None:
                        full = list(gw.shape)
                        full[1] = plan.cin_g
                        grad_w = gw.new_zeros(full)
                    part = grad_w[:, s.ch_lo:s.ch_hi]
                    if s.partial:
                        part.addcmul_(gw, plan.row_mask(s, gw.device, gw.dtype))
                    else:
                        part += gw
            if gq is None:
                continue
            if r is None:
                grads.add_input(s, gq, x)
                continue
            gr = _input_grad(c, i, x, r, gq, gs, ws, grads)
            if grad_r is not None and gr is not None:
                grad_r[i] = gr
        grad_x = grads.x
        return grad_x, grad_w, grad_r, None


def analog_forward(c: Ctx, x: Tensor, weight: Tensor, bias: Tensor | None,
                   ir: Tensor | None) -> Tensor:
    """Run one analog layer: the weight clip, the tiles and the digital bias."""
    spec = c.plan.spec
    if spec.kind != "linear" and spec.padding_mode != "zeros":
        x = F.pad(x, spec.reversed_padding(), mode=spec.padding_mode)
    w = clip_weight(weight, c.config)
    if ir is not None and ir.dtype != x.dtype:
        ir = ir.to(x.dtype)
    if c.plan.drawn is not None and not c.training:
        out = c.plan.drawn.forward(c, x, w, ir)
    else:
        out = AnalogFunction.apply(x, w, ir, c)
    if bias is not None:
        out = out + c.plan.channel_view(bias, out.ndim)
    return out


@torch.no_grad()
def init_input_range(plan: Plan, x: Tensor, ir: Tensor, count: Tensor, config: AnalogConfig,
                     ) -> None:
    """Lightning's input-range initialisation, with a coverage floor: running mean, over the
    first `init_from_data` batches, of `init_std_alpha * std` of each slice's (unfolded)
    input, raised where needed so that `input_min_percentage` of the batch's inputs lie
    inside the range. The clip is symmetric about 0 while std is about the mean: an input
    with an offset and a small spread (pooled features at batch size 1) would otherwise be
    clipped whole and pass no gradient. Zero-mean inputs keep lightning's value (3 std
    already holds 99.7 % of a Gaussian)."""
    spec = plan.spec
    if spec.kind != "linear" and spec.padding_mode != "zeros":
        x = F.pad(x, spec.reversed_padding(), mode=spec.padding_mode)
    for i, s in enumerate(plan.slices):
        idx = count[i]
        if idx >= config.init_from_data:
            continue
        xs = plan.take(x, s)
        std = plan.unfolded_std(xs, s)
        if std > 0.0:
            value = torch.maximum(config.init_std_alpha * std.float(),
                                  _coverage(xs, config.input_min_percentage))
            ir.data[i] = ((ir.data[i].float() * idx + value) / (idx + 1)).to(dtype=ir.dtype)
            count[i] += 1
        ir.data[i] = ir.data[i].abs()


def _coverage(xs: Tensor, share: float) -> Tensor:
    """The smallest range that holds `share` of the entries of `xs` (|x| quantile)."""
    flat = xs.detach().abs().flatten().float()
    k = min(flat.numel(), max(1, math.ceil(share * flat.numel())))
    return flat.kthvalue(k).values
