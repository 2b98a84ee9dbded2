"""nn.LSTM/GRU/RNN and their cells rewritten with their gate matmuls as Linear layers
(hetmap.inventory.recurrent): the same function, bit for bit on PyTorch's CPU kernels."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hetmap.errors import ModelError
from hetmap.inventory import normalize_model
from hetmap.inventory.recurrent import MappedCell, MappedRecurrent
from hetmap.inventory.work import countable_kernels


def _flat(out: object) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    assert isinstance(out, tuple)
    return [t for part in out for t in _flat(part)]


LAYERS = [
    lambda: nn.LSTM(5, 7, num_layers=2, batch_first=True, bidirectional=True),
    lambda: nn.GRU(5, 7, num_layers=2),
    lambda: nn.RNN(5, 7, nonlinearity="relu", bias=False),
    lambda: nn.RNN(5, 7, num_layers=3, bidirectional=True, batch_first=True),
]


@pytest.mark.parametrize("make", LAYERS)
def test_recurrent_layers_are_bit_exact(make) -> None:
    torch.manual_seed(0)
    rnn = make().eval()
    mapped = MappedRecurrent.from_module(rnn)
    x = torch.randn(3, 4, 5)
    with countable_kernels(), torch.no_grad():  # oneDNN off, as the scan runs
        for args in ((x,), (x[0],)):  # batched and unbatched
            for a, b in zip(_flat(rnn(*args)), _flat(mapped(*args)), strict=True):
                assert torch.equal(a, b)
        d = 2 if rnn.bidirectional else 1
        h0 = torch.randn(rnn.num_layers * d, 4 if not rnn.batch_first else 3, 7)
        hx = (h0, torch.randn_like(h0)) if isinstance(rnn, nn.LSTM) else h0
        for a, b in zip(_flat(rnn(x, hx)), _flat(mapped(x, hx)), strict=True):
            assert torch.equal(a, b)


@pytest.mark.parametrize("cls", [nn.LSTMCell, nn.GRUCell, nn.RNNCell])
def test_cells_are_bit_exact(cls) -> None:
    torch.manual_seed(0)
    cell = cls(5, 7)
    mapped = MappedCell.from_module(cell)
    x = torch.randn(4, 5)
    with torch.no_grad():
        for args in ((x,), (x[0],)):
            for a, b in zip(_flat(cell(*args)), _flat(mapped(*args)), strict=True):
                assert torch.equal(a, b)


def test_normalize_rewrites_them_and_keeps_their_attributes() -> None:
    model = nn.Sequential(nn.LSTM(5, 7, num_layers=2, dropout=0.2), nn.GRUCell(3, 4))
    out = normalize_model(model)
    assert isinstance(out[0], MappedRecurrent) and isinstance(out[1], MappedCell)
    assert isinstance(model[0], nn.LSTM)  # the user's model is left alone
    assert (out[0].num_layers, out[0].hidden_size, out[0].dropout) == (2, 7, 0.2)
    names = [n for n, m in out.named_modules() if isinstance(m, nn.Linear)]
    assert names == ["0.ih_l0", "0.hh_l0", "0.ih_l1", "0.hh_l1", "1.ih", "1.hh"]


def test_gradients_reach_every_gate_weight() -> None:
    torch.manual_seed(0)
    mapped = MappedRecurrent.from_module(nn.GRU(5, 7, num_layers=2, bidirectional=True))
    mapped(torch.randn(3, 2, 5))[0].pow(2).sum().backward()
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0)
               for p in mapped.parameters())


def test_projected_lstm_stays_and_packed_input_is_refused() -> None:
    projected = nn.LSTM(5, 7, proj_size=3)
    assert normalize_model(projected) is projected  # not rewritten: unmapped digital work
    mapped = MappedRecurrent.from_module(nn.LSTM(5, 7))
    packed = nn.utils.rnn.pack_padded_sequence(torch.randn(3, 2, 5), [3, 2])
    with pytest.raises(ModelError, match="PackedSequence"):
        mapped(packed)
