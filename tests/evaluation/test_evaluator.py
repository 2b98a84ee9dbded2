from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch
from tests.evaluation.helpers import digits_supernet, digits_task

from hetmap import Mapping
from hetmap.errors import ConfigError
from hetmap.evaluation import Evaluator
from hetmap.tasks import move_batch


@pytest.fixture(scope="module")
def setup():
    sn = digits_supernet()
    return sn, digits_task()


def _val(task, n=1, batch_size=64):
    loaders = task.loaders(batch_size=batch_size, seed=0)
    return [move_batch(b, "cpu") for b in itertools.islice(loaders.val, n)]


def test_fp32_accuracy_equals_the_plain_model(setup) -> None:
    sn, task = setup
    torch.manual_seed(0)
    model = task.build_model().eval()  # same init as the supernet's copy
    ev = Evaluator(sn, task, bn_batches=0, val_batches=1, batch_size=64)
    expected = task.metric(model, _val(task), "cpu")
    assert ev.accuracy(Mapping.uniform(sn, "fp32")) == pytest.approx(expected)


def test_bn_recalibration_matches_cumulative_average(setup) -> None:
    sn, task = setup
    ev = Evaluator(sn, task, bn_batches=2, val_batches=1, batch_size=64)
    torch.manual_seed(0)
    model = task.build_model()
    loaders = task.loaders(batch_size=64, seed=0)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for x, _ in itertools.islice(loaders.train, 2):
            model(x)
    expected = task.metric(model.eval(), _val(task), "cpu")
    got = ev.accuracy(Mapping.uniform(sn, "fp32"))
    assert got == pytest.approx(expected)
    assert got != Evaluator(sn, task, bn_batches=0, val_batches=1, batch_size=64).accuracy(
        Mapping.uniform(sn, "fp32"))


def test_evaluation_leaves_the_supernet_unchanged(setup) -> None:
    sn, task = setup
    sn.train()
    sn.set_mode("soft")
    before = copy.deepcopy(sn.state_dict())
    ev = Evaluator(sn, task, bn_batches=1, val_batches=1, batch_size=64)
    gen = torch.Generator().manual_seed(1)
    ev.scores([sn.sample(gen) for _ in range(3)])
    after = sn.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert sn.training
    assert all(layer.mode == "soft" for _, layer in sn.choice_layers())
    sn.set_mode("single")
    sn.eval()


def test_cache_and_determinism(setup) -> None:
    sn, task = setup
    gen = torch.Generator().manual_seed(2)
    maps = [sn.sample(gen) for _ in range(3)]
    ev = Evaluator(sn, task, bn_batches=1, val_batches=1, batch_size=64)
    first = ev.scores(maps)
    n = ev.evaluations
    assert ev.scores(maps) == first and ev.evaluations == n  # cached
    assert set(ev.cache) == set(maps)
    fresh = Evaluator(sn, task, bn_batches=1, val_batches=1, batch_size=64)
    assert fresh.scores(maps[::-1]) == first[::-1]


def test_hardware_scores_and_matrix(setup) -> None:
    sn, task = setup
    ev = Evaluator(sn, task, bn_batches=0, val_batches=1, batch_size=64)
    m = Mapping.uniform(sn, "analog").with_choice("fc", "int8")
    s = ev.scores([m], extra=("accuracy_drop", "total_params"))[0]
    hw = sn.objectives(m)
    assert s["analog_mac_ratio"] == pytest.approx(hw.analog_mac_ratio)
    assert s["digital_weight_bytes"] == pytest.approx(hw.digital_weight_bytes)
    assert s["total_params"] == hw.total_params
    ref = ev.accuracy(Mapping.uniform(sn, "fp32"))
    assert s["accuracy_drop"] == pytest.approx(ref - s["accuracy"])
    F = ev.matrix([m])
    assert F[0].tolist() == [-s["accuracy"], -s["analog_mac_ratio"], s["digital_weight_bytes"]]
    ideal, ref_pt = ev.reference_point()
    assert np.all(ideal < ref_pt) and np.all(F[0] <= ref_pt)


def test_objective_errors(setup) -> None:
    sn, task = setup
    with pytest.raises(ConfigError, match="cost_table"):
        Evaluator(sn, task, objectives=("accuracy", "latency_s"))
    with pytest.raises(ConfigError, match="needs a task"):
        Evaluator(sn, None)
    ev = Evaluator(sn, None, objectives=("analog_mac_ratio", "digital_weight_bytes"))
    assert ev.scores([Mapping.uniform(sn, "fp32")])[0]["analog_mac_ratio"] == 0.0
    assert ev.evaluations == 0  # hardware-only scores run no model


def test_indices_match_the_supernet(setup) -> None:
    sn, _ = setup
    gen = torch.Generator().manual_seed(4)
    maps = [sn.sample(gen) for _ in range(20)]
    ev = Evaluator(sn, None, objectives=("analog_mac_ratio",))
    idx = ev.indices(maps)
    # by hand: each layer's column is its chosen candidate's position among those it offers
    expected = np.array([[sn.candidates(n).index(m[n]) for n in sn.all_layer_names]
                         for m in maps])
    assert np.array_equal(idx, expected)
    assert len({tuple(row) for row in idx}) > 10  # the sample is not one mapping repeated
    hw = ev.hardware(maps)  # the vectorised gather agrees with scoring one mapping at a time
    for i, m in enumerate(maps):
        obj = sn.objectives(m)
        assert hw["analog_mac_ratio"][i] == pytest.approx(obj.analog_mac_ratio)
        assert hw["digital_weight_bytes"][i] == pytest.approx(obj.digital_weight_bytes)
        assert hw["analog_tiles"][i] == obj.analog_tiles


def test_latency_and_energy_come_from_the_cost_table(setup) -> None:
    from hetmap.hardware.table import cost_of, table_for

    sn, _ = setup
    table = table_for(sn, "hermes-pcm")
    ev = Evaluator(sn, None, objectives=("latency_s", "energy_j", "analog_mac_ratio"),
                   cost_table=table)
    maps = [Mapping.uniform(sn, "analog"), Mapping.uniform(sn, "int8").with_choice("fc", "fp32")]
    for m, s in zip(maps, ev.scores(maps)):
        cost = cost_of(sn, m, table=table)
        assert s["latency_s"] == pytest.approx(cost.latency_s)
        assert s["energy_j"] == pytest.approx(cost.energy_j)
