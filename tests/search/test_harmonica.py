"""`harmonica`: every layer on one hybrid, a sweep of the digital share, no retraining."""

from __future__ import annotations

import pytest
import torch
from tests.evaluation.helpers import digits_supernet, digits_task

from hetmap.errors import ConfigError
from hetmap.evaluation import Evaluator
from hetmap.search import Budget, get_strategy, search, strategy_names
from hetmap.search.mappers import HarmonicaStrategy, hybrid_candidates, share_state
from hetmap.search.mappers.harmonica import required_candidates

CANDIDATES = ("fp32", "int8", "analog", "hybrid2", "hybrid5", "hybrid10")


@pytest.fixture(scope="module")
def sn():
    return digits_supernet(CANDIDATES)


def _ev(sn) -> Evaluator:
    return Evaluator(sn, digits_task(), bn_batches=1, val_batches=1, batch_size=64)


def test_sweeps_the_offered_hybrids_between_all_analog_and_all_digital(sn) -> None:
    assert "harmonica" in strategy_names()
    before = {k: v.clone() for k, v in sn.state_dict().items()}
    strat = get_strategy("harmonica", batch_size=32, train_batches=1)
    front = search(sn, _ev(sn), strategy=strat, budget=Budget(evaluations=10), seed=0)
    assert strat.swept == ["analog", "hybrid2", "hybrid5", "hybrid10", "int8"]
    assert front.evaluations == 5 and strat.stats.train_steps == 0  # no retraining
    scored = strat.problem.mappings
    for mapping in scored:
        mapping.validate(sn)
        assert len(set(mapping.values())) == 1  # one candidate, every layer
    ratios = [strat.problem.archive[m]["analog_mac_ratio"] for m in scored]
    assert ratios[0] == 1.0 and ratios[-1] == 0.0 and ratios == sorted(ratios, reverse=True)
    assert len(set(ratios)) == 5  # each share a distinct trade-off
    assert {m.mapping for m in front.members} <= set(scored) == set(strat.snapshots)
    assert all(torch.equal(v, sn.state_dict()[k]) for k, v in before.items())  # a private copy


def test_budget_and_fractions_are_respected(sn) -> None:
    strat = HarmonicaStrategy(fractions=(0.05,), limits=False, batch_size=32, train_batches=1)
    front = search(sn, _ev(sn), strategy=strat, budget=Budget(evaluations=10), seed=0)
    assert strat.swept == ["hybrid5"] and front.evaluations == 1
    strat = HarmonicaStrategy(batch_size=32, train_batches=1)
    front = search(sn, _ev(sn), strategy=strat, budget=Budget(evaluations=2), seed=0)
    assert strat.swept == ["analog", "hybrid2"] and front.evaluations == 2
    with pytest.raises(ConfigError, match="no hybrid candidate"):
        search(sn, _ev(sn), strategy=HarmonicaStrategy(fractions=(0.3,)),
               budget=Budget(evaluations=4))
    with pytest.raises(ConfigError, match="fractions"):
        HarmonicaStrategy(fractions=(0.0,))


def test_needs_hybrid_candidates() -> None:
    plain = digits_supernet()
    assert hybrid_candidates(plain) == []
    with pytest.raises(ConfigError, match="hybrid candidates"):
        search(plain, _ev(plain), strategy="harmonica", budget=Budget(evaluations=4))
    assert required_candidates() == ("hybrid2", "hybrid5", "hybrid10")
    assert required_candidates((0.25,)) == ("hybrid25",)


def test_hybrids_take_the_trained_analog_ranges_and_int8_observers() -> None:
    sn = digits_supernet(CANDIDATES)
    name = sn.layer_names[0]
    choice = sn.choice_layer(name)
    with torch.no_grad():
        choice.candidates["analog"].input_range.fill_(0.37)
    share_state(sn)
    for cand in ("hybrid2", "hybrid5", "hybrid10"):
        hybrid = sn.candidate(name, cand)
        assert torch.all(hybrid.analog.input_range == 0.37)
        assert torch.equal(hybrid.digital.observer.max_val,
                           choice.candidates["int8"].observer.max_val)
