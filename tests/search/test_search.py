from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.evaluation.helpers import digits_supernet, digits_task

from hetmap import Mapping
from hetmap.errors import ConfigError
from hetmap.evaluation import Evaluator
from hetmap.search import (
    Budget,
    ParetoFront,
    Strategy,
    get_strategy,
    register_strategy,
    search,
    strategy_names,
)


@pytest.fixture(scope="module")
def sn():
    return digits_supernet()


def _dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))


def _evaluator(sn, **kw) -> Evaluator:
    return Evaluator(sn, digits_task(), bn_batches=1, val_batches=1, batch_size=32, **kw)


@pytest.mark.parametrize("strategy", ["mps", "random"])
def test_front_is_valid_and_reproducible(sn, strategy: str) -> None:
    front = search(sn, _evaluator(sn), strategy=strategy, budget=8, seed=3, pop_size=4)
    assert front.evaluations == 8 and len(front) >= 1
    F = front.matrix()
    for i in range(len(F)):
        for j in range(len(F)):
            assert not _dominates(F[i], F[j])
    again = _evaluator(sn).scores(front.mappings)  # a fresh evaluator, no shared cache
    for member, scores in zip(front, again):
        for name in front.objectives:
            assert scores[name] == pytest.approx(member.scores[name])
    twin = search(sn, _evaluator(sn), strategy=strategy, budget=8, seed=3, pop_size=4)
    assert twin.mappings == front.mappings
    hv = [h for _, h, _ in front.history]
    assert hv == sorted(hv) and front.hypervolume() == pytest.approx(hv[-1])


def test_front_keeps_every_non_dominated_evaluated_mapping(sn) -> None:
    ev = Evaluator(sn, None, objectives=("analog_mac_ratio", "digital_weight_bytes"))
    front = search(sn, ev, strategy="random", budget=Budget(evaluations=40), seed=0)
    # hardware-only: the true front of 40 random mappings, recomputed by brute force
    maps = list(front.mappings)
    assert all(m.validate(sn) for m in maps)
    best_ratio = front.best("analog_mac_ratio").scores["analog_mac_ratio"]
    assert best_ratio == pytest.approx(max(m.scores["analog_mac_ratio"] for m in front))


def test_constraints_hold_on_the_front(sn) -> None:
    ev = Evaluator(sn, None, objectives=("analog_mac_ratio", "digital_weight_bytes"))
    front = search(sn, ev, strategy="mps", budget=30, seed=0,
                   constraints=["analog_mac_ratio>=0.6", "digital_weight_bytes<=20000"])
    assert front.feasible and len(front) > 0
    for m in front:
        assert m.scores["analog_mac_ratio"] >= 0.6
        assert m.scores["digital_weight_bytes"] <= 20000
    impossible = search(sn, ev, strategy="random", budget=10, seed=0,
                        constraints=["analog_mac_ratio>=2"])
    assert not impossible.feasible and impossible.hypervolume() == 0.0


def test_budget_in_seconds_and_space_exhaustion(sn) -> None:
    ev = Evaluator(sn, None, objectives=("analog_mac_ratio", "digital_weight_bytes"))
    front = search(sn, ev, strategy="random", budget=Budget(seconds=0.5), seed=0)
    assert front.evaluations <= 3 ** len(sn.layer_names)
    full = search(sn, ev, strategy="mps", budget=10_000, seed=0)
    assert full.evaluations == 3 ** len(sn.layer_names)  # stops when the space is exhausted
    with pytest.raises(ConfigError):
        Budget()


def test_mps_starts_from_the_preferences(sn) -> None:
    preferred = {name: sn.candidates(name)[i % 3] for i, name in enumerate(sn.layer_names)}
    with torch.no_grad():
        for name, cand in preferred.items():
            layer = sn.choice_layer(name)
            layer.logits.zero_()
            layer.logits[layer.index(cand)] = 8.0
    try:
        ev = Evaluator(sn, None, objectives=("analog_mac_ratio", "digital_weight_bytes"))
        front = search(sn, ev, strategy="mps", budget=4, seed=0, pop_size=4, anchors=False)
        first = front.history[0][0]
        assert first >= 1
        strat = get_strategy("mps", pop_size=4)
        from hetmap.search import SearchProblem

        problem = SearchProblem(sn, ev, Budget(evaluations=10))
        strat.setup(problem, 0)
        samples = problem.decode(strat.sample(200, t=1.0))
        hits = sum(m == Mapping(preferred, sn.fingerprint) for m in samples)
        assert hits > 100  # most draws follow the learned preferences
    finally:
        with torch.no_grad():
            for name in sn.layer_names:
                sn.choice_layer(name).logits.zero_()


def test_strategy_registry_accepts_user_strategies(sn) -> None:
    class AllAnalogFirst(Strategy):
        name = "analog-first"

        def ask(self) -> np.ndarray:
            return self.unseen(self.uniform(self.pop_size))

    register_strategy("analog-first", AllAnalogFirst, overwrite=True)
    assert "analog-first" in strategy_names() and "mps" in strategy_names()
    ev = Evaluator(sn, None, objectives=("analog_mac_ratio", "digital_weight_bytes"))
    front = search(sn, ev, strategy="analog-first", budget=5, pop_size=2)
    assert front.strategy == "analog-first" and front.evaluations == 5
    with pytest.raises(ConfigError, match="unknown search strategy"):
        search(sn, ev, strategy="nope", budget=5)


def test_front_json_csv_roundtrip(sn, tmp_path) -> None:
    ev = Evaluator(sn, None, objectives=("analog_mac_ratio", "digital_weight_bytes"))
    front = search(sn, ev, strategy="mps", budget=20, seed=1)
    paths = front.save(tmp_path)
    back = ParetoFront.load(tmp_path)
    assert back.mappings == front.mappings
    assert back.hypervolume() == pytest.approx(front.hypervolume())
    assert back.history == [tuple(h) for h in front.history]
    rows = paths["csv"].read_text().strip().splitlines()
    assert len(rows) == len(front) + 1 and rows[0].startswith("member,analog_mac_ratio")
    assert sn.layer_names[0] in rows[0]


def test_rescored_front_prunes_dominated(sn) -> None:
    ev = Evaluator(sn, None, objectives=("analog_mac_ratio", "digital_weight_bytes"))
    front = search(sn, ev, strategy="random", budget=30, seed=0)
    n = len(front)
    assert n >= 2
    values = [m.scores["analog_mac_ratio"] for m in front]
    values[0] = -1.0  # the first member becomes worst at this objective
    out = front.rescored("analog_mac_ratio", values)
    assert len(out) <= n
    kept = {m.mapping: m for m in out}
    for m in kept.values():
        assert "analog_mac_ratio_search" in m.scores
