"""Mechanics of the competing mappers on a tiny digits supernet."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.evaluation.helpers import digits_supernet, digits_task

import hetmap.search.mappers  # noqa: F401 - registers the mappers
from hetmap import Mapping
from hetmap.errors import ConfigError
from hetmap.evaluation import Evaluator
from hetmap.search import Budget, get_strategy, search, strategy_names
from hetmap.search.mappers import LionHeartStrategy, ODiMoStrategy
from hetmap.search.mappers._common import analog_rpu_config
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
    assert front.wall_time > 0


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
    score = strat.drift_score(work, Mapping.uniform(sn, "analog"))
    assert 0.0 <= score <= 100.0


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


def test_compare_tables_every_method_on_the_same_footing(tmp_path) -> None:
    from hetmap.compare import compare

    task = digits_task()
    torch.manual_seed(0)
    model = task.build_model()
    small = {"batch_size": 32, "train_batches": 2}
    result = compare(task, model, "hermes-pcm", methods=("anchors", "odimo"),
                     budgets={"anchors": 4, "odimo": 2},
                     options={"anchors": {"train_steps": 1, "patience": None, **small},
                              "odimo": {"lambdas": (0.0, 5.0), "steps": 2,
                                        "finetune_steps": 0, **small}},
                     candidates=("fp32", "int8", "analog"), bn_batches=1, val_batches=1,
                     batch_size=64, drift_repeats=1, drift_batches=1, drift_members=1,
                     out=tmp_path, log=lambda s: None)
    assert [s["method"] for s in result.summary] == ["anchors", "odimo"]
    assert {r["method"] for r in result.rows} == {"anchors", "odimo"}
    drifted = [r for r in result.rows if r["acc_1d"] is not None]
    assert len(drifted) == 2  # one per method
    csv_text = result.to_csv()
    assert csv_text.splitlines()[0].startswith("method,member,accuracy,acc_1s")
    assert len(csv_text.splitlines()) == 1 + len(result.rows)
    assert "| anchors |" in result.to_markdown()
    for name in ("compare.md", "compare.csv", "fronts.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert result.method("odimo")["evaluations"] <= 2
