"""Mechanics of the competing mappers on a tiny digits supernet."""

from __future__ import annotations

import itertools
from typing import ClassVar

import numpy as np
import pytest
import torch
from tests.evaluation.helpers import digits_supernet, digits_task

import hetmap.search.mappers  # noqa: F401 - registers the mappers
from hetmap import Mapping
from hetmap.errors import ConfigError
from hetmap.evaluation import Evaluator
from hetmap.search import Budget, get_strategy, search, strategy_names
from hetmap.search.mappers import (
    LionHeartStrategy,
    ODiMoStrategy,
    anchor_genomes,
    lionheart_rpu_config,
)
from hetmap.search.mappers._common import analog_rpu_config
from hetmap.search.mappers.lionheart import chip_tile, write_back
from hetmap.search.problem import SearchProblem

SMALL = {"batch_size": 32, "train_batches": 4}


@pytest.fixture(scope="module")
def sn():
    return digits_supernet()


def _ev(sn) -> Evaluator:
    return Evaluator(sn, digits_task(), bn_batches=1, val_batches=1, batch_size=64)


def _state(sn) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in sn.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _analog(m: Mapping) -> int:
    return sum(c == "analog" for c in m.values())


def test_mappers_are_registered_and_validate_options() -> None:
    assert {"anchors", "lionheart", "odimo", "nsga2"} <= set(strategy_names())
    with pytest.raises(ConfigError, match="thresholds"):
        get_strategy("lionheart", thresholds=(-1.0,))
    with pytest.raises(ConfigError, match="cost"):
        get_strategy("odimo", cost="area")


def test_anchors_score_uniform_mappings_without_touching_the_shared_supernet(sn) -> None:
    before = _state(sn)
    strat = get_strategy("anchors", train_steps=3, patience=None, **SMALL)
    front = search(sn, _ev(sn), strategy=strat, budget=10, seed=0)
    assert _same(before, _state(sn))  # trained on a private copy
    assert front.evaluations == 3  # fp32, int8 and the trained all-analog
    assert set(strat.snapshots) == {Mapping.uniform(sn, c) for c in ("fp32", "int8", "analog")}
    analog = Mapping.uniform(sn, "analog")
    assert not _same(strat.snapshots[analog], strat.snapshots[Mapping.uniform(sn, "fp32")])
    assert front.wall_s > 0


class _BreakOne(LionHeartStrategy):
    """Drift score: the baseline unless `bad` is analog, then 50 points lower."""

    bad = ""

    def drift_score(self, work, mapping, model=None):
        return 40.0 if mapping[self.bad] == "analog" else 90.0


def test_lionheart_reverts_a_layer_whose_conversion_breaks_accuracy(sn) -> None:
    strat = _BreakOne(thresholds=(2.0,), round_steps=2, max_rounds=1, **SMALL)
    _BreakOne.bad = sn.layer_names[1]
    front = search(sn, _ev(sn), strategy=strat, budget=50, seed=0)
    final = strat.finals[2.0]
    assert final[_BreakOne.bad] == "fp32"  # reverted
    assert all(final[n] == "analog" for n in sn.layer_names if n != _BreakOne.bad)
    kept = {layer: k for _, layer, _, k in strat.decisions}
    assert kept[_BreakOne.bad] is False and sum(kept.values()) == len(sn.layer_names) - 1
    assert front.evaluations == 1 + len(sn.layer_names)  # baseline + one per trial
    assert final in strat.snapshots  # scored with the weights it was retrained to
    # a budget stops the greedy loop
    short = search(sn, _ev(sn), strategy=_BreakOne(thresholds=(2.0,), round_steps=1,
                                                  max_rounds=1, **SMALL), budget=2)
    assert short.evaluations == 2


def test_lionheart_order_and_real_drift_score(sn) -> None:
    strat = LionHeartStrategy(repeats=1, drift_batches=1, **SMALL)
    problem = SearchProblem(sn, _ev(sn), Budget(evaluations=5))
    order = strat.layer_order(problem)
    macs = [sn.inventory[n].macs for n in order]
    assert macs == sorted(macs, reverse=True)
    work = strat.start(problem, 0)
    strat.rpu = analog_rpu_config(work.sn)
    assert sorted(order) == sorted(sn.layer_names)
    # an all-digital mapping does not drift: its score is the plain model's metric on the same
    # validation batches, with BatchNorm recalibrated for it as the Evaluator does
    from hetmap.evaluation import calibration_inputs, recalibrate_batchnorm

    fp32 = Mapping.uniform(sn, "fp32")
    loaders = work.task.loaders(batch_size=work.ev.batch_size, seed=work.seed)
    batches = list(itertools.islice(loaders.val, strat.drift_batches))
    plain = work.sn.model_for(fp32).eval()
    recalibrate_batchnorm(plain, calibration_inputs(loaders.train, work.ev.bn_batches))
    exact = work.task.metric(plain, batches, "cpu")
    assert strat.drift_score(work, fp32) == pytest.approx(exact)
    # all-analog is programmed and drifted with the strategy's seed: the same score again
    analog = Mapping.uniform(sn, "analog")
    score = strat.drift_score(work, analog)
    assert 0.0 <= score <= 100.0
    assert strat.drift_score(work, analog) == score
    assert strat.stats.extra_evaluations == 3


def test_odimo_regulariser_moves_the_mapping_toward_analog(sn) -> None:
    strat = ODiMoStrategy(lambdas=(0.0, 0.3, 30.0), steps=8, arch_lr=0.1, cost="digital_share",
                          finetune_steps=0, **SMALL)
    front = search(sn, _ev(sn), strategy=strat, budget=10, seed=0)
    counts = [_analog(strat.results[lam]) for lam in (0.0, 0.3, 30.0)]
    assert counts == sorted(counts) and counts[-1] == len(sn.layer_names) > counts[0]
    assert front.evaluations == len(set(strat.results.values()))


def test_nsga2_returns_a_non_dominated_set_of_fine_tuned_mappings(sn) -> None:
    strat = get_strategy("nsga2", pop_size=4, finetune_steps=1, **SMALL)
    front = search(sn, _ev(sn), strategy=strat, budget=10, seed=1)
    assert front.evaluations == 10 and len(front) >= 1
    F = front.matrix()
    for i in range(len(F)):
        for j in range(len(F)):
            assert not (np.all(F[i] <= F[j]) and np.any(F[i] < F[j]))
    assert len(strat.snapshots) == 10 and strat.generations >= 1


def test_lionheart_trains_with_its_published_recipe_on_the_chips_tiles(sn) -> None:
    from aihwkit.inference import GlobalDriftCompensation, PCMLikeNoiseModel
    from aihwkit.simulator.parameters.enums import WeightClipType, WeightModifierType

    rpu = lionheart_rpu_config((256, 128))
    assert rpu.modifier.type == WeightModifierType.MULT_NORMAL
    assert rpu.modifier.std_dev == 0.08 and rpu.modifier.rel_to_actual_wmax
    assert rpu.forward.out_noise == 0.06
    assert rpu.forward.inp_res == rpu.forward.out_res == 1 / 254  # 8-bit DAC and ADC
    assert rpu.clip.type == WeightClipType.FIXED_VALUE and rpu.clip.fixed_value == 1.0
    assert isinstance(rpu.noise_model, PCMLikeNoiseModel) and rpu.noise_model.g_max == 25.0
    assert isinstance(rpu.drift_compensation, GlobalDriftCompensation)
    assert (rpu.mapping.max_input_size, rpu.mapping.max_output_size) == (256, 128)
    from hetmap.hardware import load_hardware, table_for

    ev = Evaluator(sn, digits_task(), cost_table=table_for(sn, "hermes-pcm"), bn_batches=1,
                   val_batches=1, batch_size=64)
    assert chip_tile(SearchProblem(sn, ev, Budget(evaluations=1))) == \
        load_hardware("hermes-pcm").analog.tile


def test_write_back_carries_the_deployed_weights_into_the_supernet(sn) -> None:
    import copy

    from hetmap.evaluation.drift import deploy

    work_sn = copy.deepcopy(sn)
    layer = sn.layer_names[0]
    mapping = Mapping.uniform(sn, "fp32").with_choice(layer, "analog")
    model = deploy(work_sn, mapping, rpu_config=lionheart_rpu_config(), input_ranges="config")
    before = work_sn.model.get_submodule(layer).weight.detach().clone()
    analog = model.get_submodule(layer)
    w, b = analog.get_weights()
    analog.set_weights(2.0 * w, b)
    bn = next(n for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d))
    model.get_submodule(bn).running_mean.fill_(0.25)
    write_back(work_sn, model)
    after = work_sn.model.get_submodule(layer).weight.detach()
    assert torch.allclose(after, 2.0 * before, rtol=1e-4, atol=1e-6)
    assert torch.all(work_sn.model.get_submodule(bn).running_mean == 0.25)


class _Scripted(LionHeartStrategy):
    """Drift scores from a script: the early stopping decides on them alone."""

    script: ClassVar[list[float]] = []

    def drift_score(self, work, mapping, model=None):
        self._count()
        return self.script.pop(0) if model is not None else 90.0


def test_lionheart_retrains_until_its_score_queue_stops_improving(sn) -> None:
    _Scripted.script = [50.0, 60.0, 55.0, 99.0]
    strat = _Scripted(thresholds=(50.0,), round_steps=1, patience=1, max_rounds=5, **SMALL)
    problem = SearchProblem(sn, _ev(sn), Budget(evaluations=5))
    work = strat.start(problem, 0)
    strat.rpu = lionheart_rpu_config()
    mapping = Mapping.uniform(sn, "fp32").with_choice(sn.layer_names[0], "analog")
    best, scores = strat.retrain(work, mapping, key=0)
    assert (best, scores) == (60.0, [50.0, 60.0, 55.0])  # round 3 did not beat round 2
    assert work.steps == 3 and strat.stats.extra_evaluations == 3


def test_odimo_warms_up_and_anneals_the_temperature(sn) -> None:
    strat = ODiMoStrategy(lambdas=(0.5,), steps=4, warmup_steps=2, tau=2.0, tau_end=0.25,
                          finetune_steps=0, cost="digital_share", **SMALL)
    assert strat.temperature(0) == 2.0 and abs(strat.temperature(3) - 0.25) < 1e-12
    problem = SearchProblem(sn, _ev(sn), Budget(evaluations=2))
    work = strat.start(problem, 0)
    before = [p.detach().clone() for p in work.sn.weight_parameters()]
    strat.warm_up(work)
    assert all(float(p.abs().max()) == 0.0 for p in work.sn.arch_parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, work.sn.weight_parameters()))
    search(sn, _ev(sn), strategy=strat, budget=2, seed=0)
    assert strat.taus == sorted(strat.taus, reverse=True) and len(strat.taus) == 4
    assert strat.taus[0] == 2.0 and abs(strat.taus[-1] - 0.25) < 1e-12


def test_nsga2_anchors_seed_its_first_population(sn) -> None:
    ev = _ev(sn)
    genomes = anchor_genomes(SearchProblem(sn, ev, Budget(evaluations=1)))
    pop = len(genomes) + 1
    strat = get_strategy("nsga2", pop_size=pop, finetune_steps=0, anchors=True, **SMALL)
    search(sn, ev, strategy=strat, budget=pop, seed=0)
    uniform = {Mapping.uniform(sn, c) for c in ("fp32", "int8", "analog")}
    assert uniform <= set(strat.snapshots)
    plain = get_strategy("nsga2", pop_size=pop, finetune_steps=0, **SMALL)
    search(sn, _ev(sn), strategy=plain, budget=pop, seed=0)
    assert not uniform <= set(plain.snapshots)


def test_lionheart_baseline_is_the_digital_network_without_drift(sn) -> None:
    strat = LionHeartStrategy(repeats=2, drift_batches=1, **SMALL)
    problem = SearchProblem(sn, _ev(sn), Budget(evaluations=5))
    work = strat.start(problem, 0)
    strat.rpu = lionheart_rpu_config()
    from hetmap.evaluation import calibration_inputs, recalibrate_batchnorm

    digital = Mapping.uniform(sn, "fp32")
    loaders = digits_task().loaders(batch_size=work.ev.batch_size, seed=work.seed)
    batches = list(itertools.islice(loaders.val, 1))
    model = work.sn.model_for(digital).eval()  # BatchNorm as the Evaluator recalibrates it
    recalibrate_batchnorm(model, calibration_inputs(loaders.train, work.ev.bn_batches))
    plain = float(digits_task().metric(model, batches, "cpu"))
    assert strat.drift_score(work, digital) == pytest.approx(plain)


def test_lionheart_keeps_one_copy_of_each_trials_weights(sn) -> None:
    """The thresholds' shared trials hold the very weights each trial was scored with (a
    second copy per trial ran a transformer out of memory)."""
    strat = LionHeartStrategy(thresholds=(1.0, 50.0), round_steps=1, max_rounds=1,
                              repeats=1, drift_batches=1, **SMALL)
    search(sn, _ev(sn), strategy=strat, budget=8, seed=0)
    assert strat.trials
    order = strat.layer_order(SearchProblem(sn, _ev(sn), Budget(evaluations=8)))
    for (current, k), (_, state) in strat.trials.items():
        assert state is strat.snapshots[current.with_choice(order[k], "analog")], (current, k)


def test_release_memory_trims_glibcs_arenas() -> None:
    import platform

    from hetmap._memory import release_memory

    assert release_memory() is (platform.libc_ver()[0] == "glibc")
