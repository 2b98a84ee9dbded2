"""Element-wise steps of the analog layer, optionally fused with `torch.compile`.

Eager PyTorch makes one pass over memory per operation; the DAC (clip, scale, round, rescale),
the ADC (noise, quantize, bound) and the backward masks are each a handful of operations on
activation-sized tensors, which costs more than the convolution itself on CPU. Compiled,
each step is one loop. Arithmetic is written as in aihwkit-lightning (divide by the step,
round half to even, multiply back). When compilation fails (or HETMAP_NO_COMPILE=1) the
eager versions run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

log = logging.getLogger(__name__)


def dac_impl(xs: Tensor, r: Tensor, inp_res: float) -> Tensor:
    xc = torch.clamp(xs, -r, r)
    if inp_res <= 0:
        return xc
    res = (2 * r) / inp_res
    return (xc / res.clamp_min(torch.finfo(xs.dtype).tiny)).round() * res


def adc_impl(y: Tensor, noise: Tensor | None, std: Tensor | None, bound: Tensor | None,
             out_res: float) -> tuple[Tensor, Tensor | None]:
    """Output noise (standard normal `noise` scaled by `std`; drawn outside because eager
    `randn` is faster than inductor's on CPU), ADC quantization and bound; also the mask of
    outputs the bound did not clip."""
    if noise is not None and std is not None:
        y = y + noise * std
    if bound is None:
        return y, None
    if out_res > 0:
        res = (2 * bound) / out_res
        y = (y / res.clamp_min(torch.finfo(y.dtype).tiny)).round() * res
    keep = y.abs() <= bound
    return torch.clamp(y, -bound, bound), keep


def clip_weight_impl(weight: Tensor, sigma: float, per_channel: bool) -> Tensor:
    """Lightning's layer-Gaussian weight clip at `sigma` std (of each output row when
    `per_channel`), as `weight + delta` so that the gradient passes straight through."""
    w2 = weight.detach().reshape(weight.shape[0], -1)
    bound = sigma * (w2.std(1, keepdim=True) if per_channel else w2.std())
    return weight + (w2.clamp(-bound, bound).view_as(weight) - weight.detach())


def noisy_weight_impl(ws: Tensor, mask: Tensor | None, noise: Tensor | None,
                      factor: float | Tensor, per_channel: bool) -> tuple[Tensor, Tensor]:
    """One slice's weight (rows outside the slice masked to 0) plus weight noise: standard
    normal `noise` times `factor` times the abs max of each column (`per_channel`) or of the
    slice. Also returns the per-column abs max."""
    if mask is not None:
        ws = ws * mask
    wmax = ws.detach().abs().flatten(1).amax(1)
    if noise is None:
        return ws, wmax
    std = factor * (wmax if per_channel else wmax.amax())
    noise = noise * std.view(-1, *([1] * (ws.ndim - 1)))
    if mask is not None:
        noise = noise * mask
    return ws + noise, wmax


def input_grad_impl(gq: Tensor, xs: Tensor, r: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Gradient through the input clip, the per-element range-gradient sum
    (sum of min(sign * g, 0) over clipped inputs) and the number of clipped inputs."""
    upper, lower = xs >= r, xs <= -r
    contrib = torch.where(upper, gq.clamp(max=0), torch.where(lower, (-gq).clamp(max=0), 0.0))
    count = (upper | lower).to(gq.dtype).sum()
    gx = torch.where((xs > r) | (xs < -r), 0.0, gq)
    return gx, contrib.sum(), count


def clip_pairs_impl(flat: Tensor, sign: Tensor, gl: Tensor, wl: Tensor, offs: Tensor,
                    rmask: Tensor | None, geo: tuple[Any, ...], chunk: int | None
                    ) -> tuple[Tensor, Tensor]:
    """Lightning's per-unfolded-entry range-gradient sum over the clipped inputs `flat` (flat
    indices into the slice input): every (clipped input, kernel offset) pair whose output
    position exists has gradient gl[row] . wl[row']; returns the sum of min(sign * that, 0)
    and the number of pairs per clipped input. `geo` = (input shape without batch, output
    spatial shape, stride, padding, dilation, groups, channels per group in the slice)."""
    (cin, *sp), osp, stride, padding, dilation, g, nch = geo
    karea = offs.shape[1]
    coords, rem = [], flat
    for d in reversed(sp):
        coords.append(rem % d)
        rem = rem // d
    coords.reverse()
    ch, n_i = rem % cin, rem // cin
    grp, c_i = ch // nch, ch % nch
    kidx = torch.arange(karea, device=flat.device)
    ok = torch.ones(flat.shape[0], karea, dtype=torch.bool, device=flat.device)
    lin = n_i.unsqueeze(1)
    for d in range(len(sp)):
        num = coords[d].unsqueeze(1) + (padding[d] - offs[d] * dilation[d])
        o = torch.div(num, stride[d], rounding_mode="floor")
        ok = ok & (num >= 0) & (o < osp[d])
        if stride[d] > 1:
            ok = ok & (num % stride[d] == 0)
        lin = lin * osp[d] + o
    if rmask is not None:
        ok = ok & rmask[c_i.unsqueeze(1) * karea + kidx]
    okf = ok.to(gl.dtype)
    counts = okf.sum(1)
    grow = torch.where(ok, lin * g + grp.unsqueeze(1), 0).reshape(-1)
    wrow = ((kidx * g + grp.unsqueeze(1)) * nch + c_i.unsqueeze(1)).reshape(-1)
    weight = (okf * sign.unsqueeze(1)).reshape(-1)
    if chunk is None:
        dun = (gl[grow] * wl[wrow]).sum(1)
        return (dun * weight).clamp(max=0).sum(), counts
    total = torch.zeros((), dtype=gl.dtype, device=gl.device)
    for a in range(0, grow.shape[0], chunk):
        b = a + chunk
        dun = (gl.index_select(0, grow[a:b]) * wl.index_select(0, wrow[a:b])).sum(1)
        total = total + dun.mul_(weight[a:b]).clamp_(max=0).sum()
    return total, counts


_FUSED: dict[str, Callable[..., Any]] = {}
_FAILED: set[str] = set()


def fused(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` compiled (once per process), or `fn` itself if compilation is not possible or
    the environment sets HETMAP_NO_COMPILE=1 (e.g. short test runs)."""
    if name in _FAILED or os.environ.get("HETMAP_NO_COMPILE", "") not in ("", "0"):
        return fn
    if name not in _FUSED:
        # one graph per rank, dtype and set of optional (None) arguments, times the analog
        # layer kinds of a network, exceeds dynamo's default limit of 8 graphs per function
        # (past it the kernel silently runs eager); raised, never lowered
        limit = getattr(torch._dynamo.config, "recompile_limit", None)
        if isinstance(limit, int) and limit < 64:
            torch._dynamo.config.recompile_limit = 64
        _FUSED[name] = torch.compile(fn, dynamic=True)
    compiled = _FUSED[name]

    def call(*args: Any) -> Any:
        if name in _FAILED:
            return fn(*args)
        try:
            return compiled(*args)
        except Exception as err:  # any compiler failure means "run eager"
            log.warning("torch.compile of %s failed (%s); running eager", name, err)
            _FAILED.add(name)
            return fn(*args)
    return call
