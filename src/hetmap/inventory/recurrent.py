"""`nn.LSTM` / `nn.GRU` / `nn.RNN` and their cells with every gate matmul an `nn.Linear`.

PyTorch's recurrent layers keep their weights as bare parameters used inside one fused
kernel, so no candidate could run them. Their work is two matrix-vector products per step,
`W_ih x_t` and `W_hh h_{t-1}` (all gates stacked, PyTorch's layout): `MappedRecurrent` and
`MappedCell` compute the same function with those products as Linear layers (`ih_l0`,
`hh_l0`, `ih_l0_reverse`, ... as PyTorch names the weights), which hetmap maps one by one -
on analog tiles each is a crossbar holding its weight, reused at every time step.

The arithmetic is PyTorch's CPU one, step for step: the input projection of a layer runs
once over the whole sequence, then each step adds `hh(h)` and applies the gates in the same
order, so the all-fp32 output is bit-exact against the original module with oneDNN off (as
`hetmap.inventory.work` runs the scan) and within float rounding with it.

Not rewritten (they stay unmapped digital work, listed in `Inventory.unmapped`): LSTMs with
`proj_size > 0`. A `PackedSequence` input is refused with a ModelError.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hetmap.errors import ModelError

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}
RECURRENT_TYPES: tuple[type[nn.Module], ...] = (nn.LSTM, nn.GRU, nn.RNN)
CELL_TYPES: tuple[type[nn.Module], ...] = (nn.LSTMCell, nn.GRUCell, nn.RNNCell)


def _mode_of(module: nn.Module) -> str:
    if isinstance(module, nn.LSTM | nn.LSTMCell):
        return "LSTM"
    if isinstance(module, nn.GRU | nn.GRUCell):
        return "GRU"
    return "RNN_RELU" if module.nonlinearity == "relu" else "RNN_TANH"  # type: ignore[union-attr]


def _linear_from(weight: Tensor, bias: Tensor | None) -> nn.Linear:
    out_f, in_f = weight.shape
    layer = nn.Linear(in_f, out_f, bias=bias is not None).to(weight.device, weight.dtype)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
    return layer


def _step(mode: str, pre: Tensor, hh: nn.Module, h: Tensor, c: Tensor | None
          ) -> tuple[Tensor, Tensor | None]:
    """One time step given the input projection `pre` (PyTorch's cell arithmetic)."""
    if mode == "LSTM":
        assert c is not None
        i, f, g, o = (hh(h) + pre).chunk(4, -1)
        c = (f.sigmoid() * c).add_(i.sigmoid() * g.tanh())
        return o.sigmoid() * c.tanh(), c
    if mode == "GRU":
        ir, iz, inn = pre.chunk(3, -1)
        hr, hz, hn = hh(h).chunk(3, -1)
        r, z = (hr + ir).sigmoid(), (hz + iz).sigmoid()
        n = (inn + hn * r).tanh()
        return (h - n).mul_(z).add_(n), None
    y = hh(h) + pre
    return (y.tanh() if mode == "RNN_TANH" else y.relu()), None


def _refuse_packed(x: Any) -> None:
    if isinstance(x, nn.utils.rnn.PackedSequence):
        raise ModelError("hetmap maps recurrent layers on padded tensors, not a "
                         "PackedSequence; give the layer the padded batch "
                         "(nn.utils.rnn.pad_packed_sequence) instead")


class MappedRecurrent(nn.Module):
    """Drop-in for nn.LSTM / nn.GRU / nn.RNN (same forward signature and outputs)."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False) -> None:
        super().__init__()
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional, self.proj_size = dropout, bidirectional, 0
        gates = _GATES[mode] * hidden_size
        for layer in range(num_layers):
            width = input_size if layer == 0 else hidden_size * self.directions
            for suffix in self.suffixes(layer):
                self.add_module(f"ih{suffix}", nn.Linear(width, gates, bias=bias))
                self.add_module(f"hh{suffix}", nn.Linear(hidden_size, gates, bias=bias))

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def suffixes(self, layer: int) -> tuple[str, ...]:
        base = f"_l{layer}"
        return (base, base + "_reverse") if self.bidirectional else (base,)

    @classmethod
    def from_module(cls, rnn: nn.RNNBase) -> MappedRecurrent:
        new = cls(_mode_of(rnn), rnn.input_size, rnn.hidden_size, rnn.num_layers, rnn.bias,
                  rnn.batch_first, float(rnn.dropout), rnn.bidirectional)
        for layer in range(rnn.num_layers):
            for suffix in new.suffixes(layer):
                for part in ("ih", "hh"):
                    bias = getattr(rnn, f"bias_{part}{suffix}") if rnn.bias else None
                    setattr(new, f"{part}{suffix}",
                            _linear_from(getattr(rnn, f"weight_{part}{suffix}"), bias))
        new.train(rnn.training)
        return new

    def forward(self, input: Tensor, hx: Any = None) -> tuple[Tensor, Any]:
        _refuse_packed(input)
        lstm = self.mode == "LSTM"
        batched = input.dim() == 3
        x = input if batched else input.unsqueeze(1)
        if self.batch_first and batched:
            x = x.transpose(0, 1)
        n = self.num_layers * self.directions
        if hx is None:
            zeros = x.new_zeros(n, x.shape[1], self.hidden_size)
            h0, c0 = zeros, (zeros if lstm else None)
        else:
            h0, c0 = hx if lstm else (hx, None)
            if not batched:
                h0, c0 = h0.unsqueeze(1), (None if c0 is None else c0.unsqueeze(1))
        hs, cs = [], []
        for layer in range(self.num_layers):
            outs = []
            for d, suffix in enumerate(self.suffixes(layer)):
                k = layer * self.directions + d
                out, h, c = self._direction(x, suffix, d == 1, h0[k],
                                            None if c0 is None else c0[k])
                outs.append(out)
                hs.append(h)
                cs.append(c)
            x = outs[0] if len(outs) == 1 else torch.cat(outs, -1)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        out = x.transpose(0, 1) if self.batch_first and batched else x
        h_n = torch.stack(hs)
        c_n = torch.stack(cs) if lstm else None  # type: ignore[arg-type]
        if not batched:
            out, h_n = out.squeeze(1), h_n.squeeze(1)
            c_n = None if c_n is None else c_n.squeeze(1)
        return out, ((h_n, c_n) if lstm else h_n)

    def _direction(self, x: Tensor, suffix: str, reverse: bool, h: Tensor, c: Tensor | None
                   ) -> tuple[Tensor, Tensor, Tensor | None]:
        pre = getattr(self, f"ih{suffix}")(x)  # the whole sequence at once, as PyTorch does
        hh = getattr(self, f"hh{suffix}")
        steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
        outs: list[Tensor] = [x] * x.shape[0]
        for t in steps:
            h, c = _step(self.mode, pre[t], hh, h, c)
            outs[t] = h
        return torch.stack(outs), h, c

    def extra_repr(self) -> str:
        return f"{self.mode}, {self.input_size}, {self.hidden_size}, " \
               f"num_layers={self.num_layers}, bidirectional={self.bidirectional}"


class MappedCell(nn.Module):
    """Drop-in for nn.LSTMCell / nn.GRUCell / nn.RNNCell (one step; `ih`, `hh` Linears)."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, bias: bool = True
                 ) -> None:
        super().__init__()
        self.mode, self.input_size, self.hidden_size, self.bias = \
            mode, input_size, hidden_size, bias
        gates = _GATES[mode] * hidden_size
        self.ih = nn.Linear(input_size, gates, bias=bias)
        self.hh = nn.Linear(hidden_size, gates, bias=bias)

    @classmethod
    def from_module(cls, cell: nn.RNNCellBase) -> MappedCell:
        new = cls(_mode_of(cell), cell.input_size, cell.hidden_size, cell.bias)
        new.ih = _linear_from(cell.weight_ih, cell.bias_ih if cell.bias else None)
        new.hh = _linear_from(cell.weight_hh, cell.bias_hh if cell.bias else None)
        new.train(cell.training)
        return new

    def forward(self, input: Tensor, hx: Any = None) -> Any:
        lstm = self.mode == "LSTM"
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)
        if hx is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            h, c = zeros, (zeros if lstm else None)
        else:
            h, c = hx if lstm else (hx, None)
            if not batched:
                h, c = h.unsqueeze(0), (None if c is None else c.unsqueeze(0))
        h, c = _step(self.mode, self.ih(x), self.hh, h, c)
        if not batched:
            h, c = h.squeeze(0), (None if c is None else c.squeeze(0))
        return (h, c) if lstm else h

    def extra_repr(self) -> str:
        return f"{self.mode}, {self.input_size}, {self.hidden_size}"


def is_rewritable(module: nn.Module) -> bool:
    """A recurrent module `map_recurrent` rewrites (LSTMs with projections are not)."""
    if isinstance(module, CELL_TYPES):
        return True
    return isinstance(module, RECURRENT_TYPES) and not getattr(module, "proj_size", 0)


def map_recurrent(model: nn.Module) -> int:
    """Replace every rewritable recurrent module of `model` in place; returns how many."""
    count = 0
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if is_rewritable(child):
                new = MappedCell.from_module(child) if isinstance(child, CELL_TYPES) \
                    else MappedRecurrent.from_module(child)  # type: ignore[arg-type]
                setattr(parent, child_name, new)
                count += 1
    return count
