from __future__ import annotations

import pytest
import torch
from tests.adaptation.adapt_models import ConvHead
from torch import nn

from hetmap.adaptation import WidenGroup, unit_map, widen_group


def test_unit_map_keeps_old_units_in_place_head_by_head() -> None:
    g = torch.Generator().manual_seed(0)
    zero = unit_map(4, 8, "zero", g, heads=2)  # heads of 2 -> heads of 4
    assert zero.tolist() == [0, 1, -1, -1, 2, 3, -1, -1]
    copy = unit_map(4, 8, "net2wider", g, heads=2)
    assert copy[:2].tolist() == [0, 1] and copy[4:6].tolist() == [2, 3]
    assert set(copy[2:4].tolist()) <= {0, 1} and set(copy[6:].tolist()) <= {2, 3}


def _mlp_with_bn() -> tuple[nn.Sequential, WidenGroup]:
    model = nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
    with torch.no_grad():  # non-trivial running statistics
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2)
        model[1].weight.uniform_(0.5, 2)
    return model, WidenGroup("linear", ("0",), ("3",), ("1",), 6, "test")


@pytest.mark.parametrize("init", ["zero", "net2wider"])
@pytest.mark.parametrize("train", [False, True])
def test_widening_through_batchnorm_keeps_outputs(init: str, train: bool) -> None:
    model, group = _mlp_with_bn()
    model.train(train)
    x = torch.randn(16, 5)
    with torch.no_grad():
        before = model(x)
        widen_group(model, group, 20, init, torch.Generator().manual_seed(1))  # type: ignore[arg-type]
        after = model(x)
    assert model[0].weight.shape == (20, 5) and model[3].weight.shape == (3, 20)
    assert model[1].running_mean.shape == (20,) and model[1].num_features == 20
    assert torch.allclose(before, after, atol=1e-6)


def test_net2wider_copies_units_and_splits_outgoing_weights() -> None:
    model, group = _mlp_with_bn()
    w_out = model[3].weight.detach().clone()
    widen_group(model, group, 12, "net2wider", torch.Generator().manual_seed(1))
    new = model[3].weight.detach()
    # each old column is now shared by its copies: the columns of one source sum to it
    src = [int(torch.argmin((model[0].weight[j] - model[0].weight[:6]).abs().sum(1)))
           for j in range(12)]
    for i in range(6):
        cols = [j for j in range(12) if src[j] == i]
        assert torch.allclose(new[:, cols].sum(1), w_out[:, i], atol=1e-6)


def test_zero_init_units_are_trainable() -> None:
    model, group = _mlp_with_bn()
    widen_group(model, group, 12, "zero", torch.Generator().manual_seed(1))
    assert torch.count_nonzero(model[3].weight[:, 6:]) == 0
    assert model[0].weight[6:].abs().sum() > 0  # fresh producer rows are random
    model.train()
    model(torch.randn(8, 5)).square().sum().backward()
    assert model[3].weight.grad[:, 6:].abs().sum() > 0  # new columns get gradient


def test_depthwise_middle_follows() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.ReLU6(),
                          nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.BatchNorm2d(4),
                          nn.ReLU6(), nn.Conv2d(4, 2, 1)).eval()
    group = WidenGroup("conv", ("0",), ("6",), ("1", "3", "4"), 4, "test")
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        before = model(x)
        widen_group(model, group, 10, "zero", torch.Generator().manual_seed(0))
        after = model(x)
    dw = model[3]
    assert (dw.in_channels, dw.out_channels, dw.groups) == (10, 10, 10)
    assert dw.weight.shape == (10, 1, 3, 3)
    assert torch.allclose(before, after, atol=1e-6)


def test_conv_to_linear_through_pool_and_flatten() -> None:
    model = ConvHead().eval()
    group = WidenGroup("conv", ("conv",), ("fc1",), ("bn",), 8, "test")
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        before = model(x)
        widen_group(model, group, 24, "net2wider", torch.Generator().manual_seed(0))
        assert torch.allclose(before, model(x), atol=1e-6)
    assert model.fc1.in_features == 24 and model.conv.out_channels == 24
