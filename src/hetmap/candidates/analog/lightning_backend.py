"""Run an analog candidate through aihwkit-lightning's own PyTorch code (the reference).

Uses lightning's `TorchLinear.linear` on the candidate's shared weight and its input-range
parameter, on the unfolded input for convolutions, exactly as lightning's `AnalogConv2d`
does. Grouped convolutions (which lightning rejects) run group by group, sharing the input
range; their range initialisation is then done here, once per batch over all groups.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from hetmap.candidates.analog.engine import clip_weight, init_input_range
from hetmap.candidates.analog.plan import Plan, split_sizes


def _torch_linear() -> Any:
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # lightning prints about triton on import
        from aihwkit_lightning.nn.modules.torch_utils.torch_linear import TorchLinear
    return TorchLinear


def lightning_run(plan: Plan, rpu: Any, x: Tensor, weight: Tensor, bias: Tensor | None,
                  ir: Tensor | None, count: Tensor | None, training: bool,
                  config: Any) -> Tensor:
    """The layer on lightning's code; `ir`/`count` are updated in place like lightning."""
    linear = _torch_linear().linear
    spec = plan.spec
    w = clip_weight(weight, config)
    out_q = rpu.forward.out_res > 0
    in_sizes = split_sizes(plan.cin_g * plan.karea, rpu.mapping.max_input_size)
    if spec.kind == "linear":
        return linear(x, w, bias, ir, count, None, None, None, in_sizes, training, rpu, out_q)
    if spec.padding_mode != "zeros":
        x = F.pad(x, spec.reversed_padding(), mode=spec.padding_mode)
    if spec.kind == "conv1d":
        x, w = x.unsqueeze(-2), w.unsqueeze(-2)
        ks, st, pd, dl = (1, *spec.kernel_size), [1, *plan.stride], [0, *plan.padding], \
            [1, *plan.dilation]
    else:
        ks, st, pd, dl = spec.kernel_size, plan.stride, plan.padding, plan.dilation
    groups = spec.groups
    if groups > 1 and training and ir is not None and count is not None:
        init_input_range(plan, x.squeeze(-2) if spec.kind == "conv1d" else x, ir, count, config)
        count = torch.full_like(count, float(config.init_from_data))
    outs = []
    cin_g, out_g = plan.cin_g, plan.out_g
    for gi in range(groups):
        xg = x[:, gi * cin_g:(gi + 1) * cin_g]
        cols = F.unfold(xg, kernel_size=ks, dilation=dl, padding=pd, stride=st)
        wg = w[gi * out_g:(gi + 1) * out_g].reshape(out_g, -1)
        y = linear(cols.transpose(-1, -2).contiguous(), wg, None, ir, count, None, None, None,
                   in_sizes, training, rpu, out_q)
        outs.append(y.transpose(-1, -2))
    out = torch.cat(outs, dim=1) if groups > 1 else outs[0]
    osp = [(i + 2 * p - d * (k - 1) - 1) // t + 1
           for i, k, t, p, d in zip(x.shape[2:], ks, st, pd, dl)]
    out = out.reshape(x.shape[0], spec.out_features, *osp)
    if spec.kind == "conv1d":
        out = out.squeeze(-2)
    if bias is not None:
        out = out + plan.channel_view(bias, out.ndim)
    return out
