from __future__ import annotations

import time

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


class _Recording(Evaluator):
    """An evaluator that keeps every (mapping, scores) the search asked for."""

    def __init__(self, *args, delay: float = 0.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[Mapping, dict[str, float]]] = []
        self.delay = delay

    def scores(self, mappings, *args, **kwargs):
        out = super().scores(mappings, *args, **kwargs)
        self.seen += list(zip(mappings, out))
        if self.delay:
            time.sleep(self.delay)  # a slow evaluator, so a time budget is what stops it
        return out


def _brute_force_front(scored: list[tuple[Mapping, dict[str, float]]]) -> set[Mapping]:
    """Mappings no other one dominates (analog ratio maximised, digital bytes minimised)."""
    points = {m: np.array([-s["analog_mac_ratio"], s["digital_weight_bytes"]])
              for m, s in scored}
    return {m for m, p in points.items()
            if not any(_dominates(q, p) for n, q in points.items() if n != m)}


def test_front_keeps_every_non_dominated_evaluated_mapping(sn) -> None:
    ev = _Recording(sn, None, objectives=("analog_mac_ratio", "digital_weight_bytes"))
    front = search(sn, ev, strategy="random", budget=Budget(evaluations=40), seed=0)
    # hardware-only: the true front of the 40 mappings scored, recomputed by brute force
    assert len({m for m, _ in ev.seen}) == front.evaluations == 40
    assert all(m.validate(sn) for m in front.mappings)
    truth = _brute_force_front(ev.seen)
    assert set(front.mappings) == truth
    assert 2 <= len(truth) < 40  # a front, neither one mapping nor every one
    for member in front:  # scores are those the evaluator gave
        assert member.scores == pytest.approx(dict(ev.seen)[member.mapping])


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
    space = 3 ** len(sn.layer_names)
    ev = _Recording(sn, None, objectives=("analog_mac_ratio", "digital_weight_bytes"),
                    delay=0.1)
    front = search(sn, ev, strategy="random", budget=Budget(seconds=0.5), seed=0, pop_size=2)
    # the clock stopped it: the space is not exhausted, the budget was spent, and every batch
    # but the last started before it ran out
    assert 0 < front.evaluations < space
    assert front.wall_s >= 0.5
    seconds = [s for _, _, s in front.history]
    assert len(seconds) >= 2 and all(s < 0.5 for s in seconds[:-1]) and seconds[-1] >= 0.5
    full = search(sn, Evaluator(sn, None, objectives=("analog_mac_ratio",
                                                      "digital_weight_bytes")),
                  strategy="mps", budget=10_000, seed=0)
    assert full.evaluations == space  # stops when the space is exhausted
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

    register_strategy("analog-first", AllAnalogFirst, replace=True)
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
    # the member with the lowest analog ratio gets the most digital bytes: now worst at both,
    # so every other member dominates it
    worst = min(front, key=lambda m: m.scores["analog_mac_ratio"])
    old = [m.scores["digital_weight_bytes"] for m in front]
    values = [max(old) + 1.0 if m is worst else v for m, v in zip(front, old)]
    out = front.rescored("digital_weight_bytes", values)
    assert set(out.mappings) == set(front.mappings) - {worst.mapping}
    assert len(out) == n - 1
    for m in out:
        assert m.scores["digital_weight_bytes_search"] == m.scores["digital_weight_bytes"]
    kept = front.rescored("digital_weight_bytes", values, prune=False)
    assert len(kept) == n
    moved = next(m for m in kept if m.mapping == worst.mapping)
    assert moved.scores["digital_weight_bytes"] == max(old) + 1.0
    assert moved.scores["digital_weight_bytes_search"] == worst.scores["digital_weight_bytes"]



def test_keep_dominated_returns_every_evaluated_mapping_and_prunes_to_the_front(sn) -> None:
    ev = _Recording(sn, None, objectives=("analog_mac_ratio", "digital_weight_bytes"))
    every = search(sn, ev, strategy="random", budget=Budget(evaluations=40), seed=0,
                   keep_dominated=True)
    assert set(every.mappings) == {m for m, _ in ev.seen} and len(every) == 40
    assert set(every.pruned().mappings) == _brute_force_front(ev.seen)
