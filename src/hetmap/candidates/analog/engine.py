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
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from hetmap.candidates.analog import kernels, native
from hetmap.candidates.analog.config import AnalogConfig
from hetmap.candidates.analog.plan import Plan, Slice

_CHUNK = 1 << 22  # clipped (input, kernel offset) pairs handled at once for the range gradient


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
