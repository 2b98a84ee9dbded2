"""recalibrate_batchnorm: the one recalibration the Evaluator and deploy share."""

from __future__ import annotations

import torch
from torch import nn

from hetmap.evaluation import batchnorms, calibration_inputs, recalibrate_batchnorm


def _net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Dropout(0.5),
                        nn.Linear(6, 2), nn.BatchNorm1d(2, momentum=0.3))
    return net.train()


def test_cumulative_average_over_the_inputs_in_eval_mode() -> None:
    net = _net()
    xs = [torch.randn(8, 4) * 3 + 1 for _ in range(3)]
    assert recalibrate_batchnorm(net, xs) == 2 == len(batchnorms(net))
    assert not net.training and all(not m.training for m in net.modules())
    bn = net[1]
    with torch.no_grad():
        h = torch.cat([net[0](x) for x in xs])
    torch.testing.assert_close(bn.running_mean, h.mean(0))  # equal-sized batches
    per_batch = torch.stack([net[0](x).var(0) for x in xs]).detach()
    torch.testing.assert_close(bn.running_var, per_batch.mean(0))  # cumulative average
    assert bn.momentum == 0.1 and net[5].momentum == 0.3  # momenta as before


def test_no_inputs_leave_the_statistics() -> None:
    net = _net()
    before = net[1].running_mean.clone()
    assert recalibrate_batchnorm(net, []) == 0
    assert torch.equal(net[1].running_mean, before)


def test_calibration_inputs_take_the_first_training_batches() -> None:
    batches = [(torch.full((2, 4), float(i)), torch.zeros(2)) for i in range(5)]
    got = calibration_inputs(iter(batches), 3)
    assert [float(x[0, 0]) for x in got] == [0.0, 1.0, 2.0]
