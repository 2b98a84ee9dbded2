"""Function-preserving widening of one group, layer type by layer type.

A *unit map* says, for every unit of the widened dimension, which old unit it comes from:
old units keep their index; new units either copy a random old unit (Net2WiderNet: the
consumers' incoming weights of all copies are divided by the copy count, so the sum is
unchanged) or are fresh (-1: random producer rows, zero consumer columns, so they add
nothing until training moves those columns). Both keep the function exactly in eval mode,
BatchNorm included, since every op in between is channel-wise.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from hetmap.adaptation.graph import WidenGroup, is_depthwise
from hetmap.inventory import SplitMultiheadAttention

Init = Literal["zero", "net2wider"]


def unit_map(width: int, new_width: int, init: Init, generator: torch.Generator,
             heads: int = 1) -> Tensor:
    """Source unit of each of `new_width` units, head by head (old units keep their place)."""
    d, nd = width // heads, new_width // heads
    parts = []
    for h in range(heads):
        old = torch.arange(h * d, (h + 1) * d)
        if init == "net2wider":
            extra = h * d + torch.randint(0, d, (nd - d,), generator=generator)
        else:
            extra = torch.full((nd - d,), -1, dtype=torch.long)
        parts += [old, extra]
    return torch.cat(parts)


def _counts(src: Tensor, width: int) -> Tensor:
    return torch.bincount(src[src >= 0], minlength=width).clamp(min=1)


def _gather(t: Tensor, src: Tensor, dim: int, fresh: Tensor | float) -> Tensor:
    """`t` re-indexed along `dim` by `src`; positions with src == -1 get `fresh`."""
    out = t.index_select(dim, src.clamp(min=0))  # a new tensor
    new = (src < 0).nonzero().flatten()
    if new.numel():
        if isinstance(fresh, Tensor):
            value = fresh.to(out.dtype)
        else:
            shape = list(out.shape)
            shape[dim] = new.numel()
            value = torch.full(shape, fresh, dtype=out.dtype)
        out.index_copy_(dim, new, value)
    return out


def _split(t: Tensor, src: Tensor, dim: int, width: int) -> Tensor:
    """Divide every copied unit by how many copies of its source exist."""
    scale = torch.ones(len(src), dtype=t.dtype)
    old = src >= 0
    scale[old] = 1.0 / _counts(src, width)[src[old]].to(t.dtype)
    shape = [1] * t.dim()
    shape[dim] = len(src)
    return t * scale.view(shape)


def _random_like(weight: Tensor, rows: int, generator: torch.Generator) -> Tensor:
    """Fresh rows with the spread of the existing ones (fan-in scaling if that is degenerate)."""
    std = float(weight.std()) if weight.numel() > 1 else 0.0
    if not math.isfinite(std) or std == 0.0:
        std = 1.0 / math.sqrt(max(1, weight[0].numel()))
    shape = (rows, *weight.shape[1:])
    return torch.randn(shape, generator=generator, dtype=torch.float32).to(weight.dtype) * std


def _set(module: nn.Module, name: str, value: Tensor) -> None:
    old = getattr(module, name)
    if isinstance(old, nn.Parameter):
        setattr(module, name, nn.Parameter(value.to(old.device), requires_grad=old.requires_grad))
    else:
        setattr(module, name, value.to(old.device))


def _set_width(module: nn.Module, in_width: int | None = None,
               out_width: int | None = None) -> None:
    if isinstance(module, nn.Linear):
        module.in_features = in_width or module.in_features
        module.out_features = out_width or module.out_features
    else:
        module.in_channels = in_width or module.in_channels
        module.out_channels = out_width or module.out_channels


@torch.no_grad()
def widen_out(module: nn.Module, src: Tensor, generator: torch.Generator, *,
              fresh_zero: bool = False, split: bool = False, scale: float = 1.0) -> None:
    """Widen a producer's output units (weight rows and bias)."""
    weight = module.weight.detach().cpu()
    new = (src < 0).sum().item()
    fresh = torch.zeros((new, *weight.shape[1:])) if fresh_zero else \
        _random_like(weight, int(new), generator)
    w = _gather(weight, src, 0, fresh)
    if split:
        w = _split(w, src, 0, weight.shape[0])
    _set(module, "weight", w * scale)
    if module.bias is not None:
        b = _gather(module.bias.detach().cpu(), src, 0, 0.0)
        if split:
            b = _split(b, src, 0, weight.shape[0])
        _set(module, "bias", b * scale)
    _set_width(module, out_width=len(src))


@torch.no_grad()
def widen_in(module: nn.Module, src: Tensor, *, split: bool = True) -> None:
    """Widen a consumer's input units: copies share the old column, fresh ones are zero."""
    weight = module.weight.detach().cpu()
    w = _gather(weight, src, 1, 0.0)
    if split:
        w = _split(w, src, 1, weight.shape[1])
    _set(module, "weight", w)
    _set_width(module, in_width=len(src))


@torch.no_grad()
def widen_channelwise(module: nn.Module, src: Tensor, generator: torch.Generator) -> None:
    """Widen a per-channel module between producer and consumer (BatchNorm, depthwise, PReLU)."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        for name, fresh in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0),
                            ("running_var", 1.0)):
            t = getattr(module, name)
            if t is not None:
                _set(module, name, _gather(t.detach().cpu(), src, 0, fresh))
        module.num_features = len(src)
    elif is_depthwise(module):
        weight = module.weight.detach().cpu()
        fresh = _random_like(weight, int((src < 0).sum()), generator)
        _set(module, "weight", _gather(weight, src, 0, fresh))
        if module.bias is not None:
            _set(module, "bias", _gather(module.bias.detach().cpu(), src, 0, 0.0))
        module.in_channels = module.out_channels = module.groups = len(src)
    elif isinstance(module, nn.PReLU):
        weight = module.weight.detach().cpu()
        _set(module, "weight", _gather(weight, src, 0, float(weight.mean())))
        module.num_parameters = len(src)
    else:
        raise TypeError(f"cannot widen {type(module).__name__} channel-wise")


def widen_group(model: nn.Module, group: WidenGroup, new_width: int, init: Init,
                generator: torch.Generator) -> None:
    """Widen one group of `model` in place from `group.width` to `new_width` units."""
    modules = dict(model.named_modules())
    src = unit_map(group.width, new_width, init, generator, group.heads)
    split = init == "net2wider"
    if group.kind == "attention":
        _widen_attention(modules, group, src, new_width, split, generator)
    else:
        for name in group.producers:
            widen_out(modules[name], src, generator)
        for name in group.middles:
            widen_channelwise(modules[name], src, generator)
    for name in group.consumers:
        widen_in(modules[name], src, split=split)


def _widen_attention(modules: dict[str, nn.Module], group: WidenGroup, src: Tensor,
                     new_width: int, split: bool, generator: torch.Generator) -> None:
    """Wider heads with unchanged scores: new query dims are zero (or split copies) and the
    query is rescaled by sqrt(d'/d) to undo the change of the 1/sqrt(head_dim) scaling."""
    d, nd = group.width // group.heads, new_width // group.heads
    owner = modules[group.owner]
    fused = group.fused > 1  # GPT-2: q, k, v are the blocks of one projection
    if fused:
        q, k, v = _unfuse(modules[group.producers[0]], group.width, group.fused)
    else:
        q, k, v = (modules[n] for n in group.producers)
    scaling = getattr(owner, "scaling", None)
    # scores scaled by 1/sqrt(head size) (computed, or held in `scaling`) need the query
    # rescaled; a fixed other scaling (T5's 1.0) stays and so does the query
    scaled = scaling is None or math.isclose(float(scaling), d ** -0.5)
    widen_out(q, src, generator, fresh_zero=not split, split=split,
              scale=math.sqrt(nd / d) if scaled else 1.0)
    widen_out(k, src, generator)
    widen_out(v, src, generator)
    if fused:
        _refuse(modules[group.producers[0]], (q, k, v))
        owner.split_size = new_width
    if isinstance(owner, SplitMultiheadAttention):  # embed_dim only sizes the head merge
        owner.head_dim, owner.embed_dim = nd, new_width
        return
    for attr in ("attention_head_size", "head_dim", "key_value_proj_dim"):
        if isinstance(getattr(owner, attr, None), int):
            setattr(owner, attr, nd)
    for attr in ("all_head_size", "inner_dim"):
        if isinstance(getattr(owner, attr, None), int):
            setattr(owner, attr, new_width)
    if scaling is not None and scaled:
        owner.scaling = nd ** -0.5


def _unfuse(qkv: nn.Linear, width: int, blocks: int) -> tuple[nn.Linear, nn.Linear, nn.Linear]:
    """The q, k and v blocks of a fused projection as three Linear layers (copies)."""
    if blocks != 3 or qkv.out_features != blocks * width:
        raise ValueError(f"a fused attention projection holds q, k and v ({3 * width} "
                         f"outputs for width {width}); got fused={blocks} and "
                         f"{qkv.out_features} outputs")
    parts = []
    for i in range(blocks):
        part = nn.Linear(qkv.in_features, width, bias=qkv.bias is not None)
        with torch.no_grad():
            part.weight.copy_(qkv.weight[i * width:(i + 1) * width])
            if qkv.bias is not None:
                part.bias.copy_(qkv.bias[i * width:(i + 1) * width])
        parts.append(part)
    return parts[0], parts[1], parts[2]


def _refuse(qkv: nn.Linear, parts: tuple[nn.Linear, ...]) -> None:
    """Write widened q, k, v blocks back into the fused projection."""
    _set(qkv, "weight", torch.cat([p.weight.detach() for p in parts]))
    if qkv.bias is not None:
        _set(qkv, "bias", torch.cat([p.bias.detach() for p in parts]))
    _set_width(qkv, out_width=sum(p.out_features for p in parts))
