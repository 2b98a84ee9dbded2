"""Shared scoring (hetmap.evaluation.shared) against the naive loop: same statistics, same
logits, same scores, bounded memory, and the naive loop where the model cannot be traced."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from tests.evaluation.helpers import digits_task, eager_analog
from torch import nn

from hetmap import Mapping, build_supernet
from hetmap.evaluation import Evaluator
from hetmap.evaluation.batchnorm import batchnorms, recalibrate_batchnorm
from hetmap.evaluation.shared import SharedPaths

CANDIDATES = ("fp32", "int8", "int4", "analog")


class InplaceResNet(nn.Module):
    """Digits-sized residual net writing into its activations (inplace ReLU, add_)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(4)
        self.conv3 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(x)))
        x = x.add_(self.bn3(self.conv3(out)))  # writes into an activation of a shorter prefix
        return self.fc(x.relu_().mean((2, 3)))


class Branchy(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, 16)
        self.bn = nn.BatchNorm1d(16)
        self.fc2 = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bn(self.fc1(x.flatten(1)))
        if h.sum() > 0:
            h = h.relu()
        return self.fc2(h)


def _supernet(model: nn.Module):
    task = digits_task()
    torch.manual_seed(0)
    return build_supernet(model, task.example_input(16), candidates=CANDIDATES,
                          analog=eager_analog()), task


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return _supernet(InplaceResNet())


def _mappings(sn, n: int, seed: int = 0) -> list[Mapping]:
    """`n` random mappings, plus neighbours of the first differing only in the last layer
    (a shared prefix) and of the second differing only in the first (none)."""
    g = torch.Generator().manual_seed(seed)
    ms = [sn.sample(g) for _ in range(n)]
    first, last = sn.layer_names[0], sn.layer_names[-1]
    ms += [Mapping({**ms[0], last: c}, sn.fingerprint) for c in sn.candidates(last)]
    ms += [Mapping({**ms[1], first: c}, sn.fingerprint) for c in sn.candidates(first)]
    return list(dict.fromkeys(ms))


def _inputs(task, n: int):
    loaders = task.loaders(batch_size=32, seed=0)
    return [x for x, _ in itertools.islice(loaders.train, n)]


def test_shared_statistics_and_logits_equal_the_naive_loop(resnet) -> None:
    sn, task = resnet
    sn.eval()
    ms = _mappings(sn, 6)
    bn_inputs, val = _inputs(task, 2), _inputs(task, 4)[2:]
    shared = SharedPaths(sn, batchnorms(sn), group_size=4)
    with sn.keeping_paths():
        for group in shared.groups(ms):
            chunk = [ms[i] for i in group]
            stats = shared.recalibrate(chunk, bn_inputs)
            outputs = shared.outputs(chunk, val, stats)
            for m, out in zip(chunk, outputs):
                sn.use(m)
                recalibrate_batchnorm(sn, bn_inputs)
                expected = [bn.running_mean.clone() for bn in batchnorms(sn)]
                with torch.no_grad():
                    for x, y in zip(val, out):
                        assert torch.equal(sn(x), y)
                shared.load(m, stats)
                for bn, mean in zip(batchnorms(sn), expected):
                    assert torch.equal(bn.running_mean, mean)
    # several mappings share their first layers: fewer distinct statistics than mappings
    stats = shared.recalibrate(ms, bn_inputs)
    assert len(stats) < len(ms) * len(batchnorms(sn))


def test_evaluator_shared_scores_equal_the_naive_ones(resnet) -> None:
    sn, task = resnet
    ms = _mappings(sn, 5, seed=1)
    kw = {"bn_batches": 2, "batch_size": 32, "val_batches": 2, "draws": 2}
    naive, shared = (Evaluator(sn, task, sharing=s, group_size=3, **kw) for s in (False, True))
    assert naive.shared_paths() is None and shared.shared_paths() is not None
    assert shared.accuracies(ms) == naive.accuracies(ms)
    assert shared.accuracies_at(ms[:3], 3600.0) == naive.accuracies_at(ms[:3], 3600.0)
    # a horizon and the eval-mode score asked for at once (one shared recalibration)
    fresh = Evaluator(sn, task, sharing=True, group_size=3, **kw)
    rows = fresh.scores(ms[:3], extra=("accuracy@1h",))
    assert [r["accuracy"] for r in rows] == naive.accuracies(ms[:3])
    assert [r["accuracy@1h"] for r in rows] == [
        r["accuracy@1h"] for r in naive.scores(ms[:3], extra=("accuracy@1h",))]


def test_compare_charges_shared_scoring_as_the_naive_loop(resnet) -> None:
    from hetmap.compare import Meter

    sn, task = resnet
    ms = _mappings(sn, 4, seed=2)
    kw = {"bn_batches": 2, "batch_size": 32, "val_batches": 2}
    charged = []
    for sharing in (False, True):
        with Meter() as m:
            Evaluator(sn, task, sharing=sharing, group_size=3, **kw).accuracies(ms)
        charged.append((m.train_passes, m.eval_passes))
    # the same sample-passes either way: no layer call of the shared run counted on its own
    assert charged[1] == charged[0] and charged[0][0] == 0 and charged[0][1] >= 4 * 4 * 32


def test_activations_held_are_bounded_by_the_group_size(resnet) -> None:
    sn, task = resnet
    ms = _mappings(sn, 12, seed=2)
    x = _inputs(task, 1)
    peaks = {}
    for size in (1, 4, 12):
        shared = SharedPaths(sn, batchnorms(sn), group_size=size)
        for group in shared.groups(ms):
            assert len(group) <= size
            shared.outputs([ms[i] for i in group], x, {})
        peaks[size] = shared.peak_values
    width = peaks[1]  # live activations of one mapping
    assert peaks[4] <= 4 * width and peaks[12] <= 12 * width
    assert peaks[1] < peaks[12]


def test_untraceable_models_are_scored_one_by_one() -> None:
    sn, task = _supernet(Branchy())
    ev = Evaluator(sn, task, bn_batches=1, batch_size=32, val_batches=1)
    assert ev.shared_paths() is None
    ms = _mappings(sn, 3)
    assert ev.accuracies(ms) == Evaluator(sn, task, bn_batches=1, batch_size=32,
                                          val_batches=1, sharing=False).accuracies(ms)


def test_a_search_finds_the_same_front_shared_and_naive(resnet) -> None:
    from hetmap.search import search

    sn, task = resnet
    fronts = []
    for sharing in (False, True):
        ev = Evaluator(sn, task, bn_batches=1, batch_size=32, val_batches=1, sharing=sharing)
        fronts.append(search(sn, ev, strategy="mps", budget=12, seed=0, pop_size=6))
    assert fronts[0].mappings == fronts[1].mappings
    assert np.array_equal(fronts[0].matrix(), fronts[1].matrix())
