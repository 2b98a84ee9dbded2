"""Every strategy handles width choices: mappings carry them, and none crashes."""

from __future__ import annotations

import pytest
from tests.evaluation.helpers import digits_task, digits_width_supernet

import hetmap.search.mappers  # noqa: F401 - registers the mappers
from hetmap.evaluation import Evaluator
from hetmap.mapping import NARROW, WIDE, WIDTHS
from hetmap.search import get_strategy, search
from hetmap.search.mappers.odimo import cost_rows

SMALL = {"batch_size": 32, "train_batches": 2}


@pytest.fixture(scope="module")
def sn():
    sn = digits_width_supernet()
    assert len(sn.gate_names) >= 2
    return sn


def _hw_ev(sn) -> Evaluator:
    # wide groups fill their tiles better but hold more digital bytes: a trade-off in width
    return Evaluator(sn, None, objectives=("tile_utilisation", "digital_weight_bytes"))


def _ev(sn) -> Evaluator:
    return Evaluator(sn, digits_task(), bn_batches=1, val_batches=1, batch_size=64)


def _widths(front, sn) -> set[str]:
    for member in front:
        member.mapping.validate(sn)
    return {member.mapping[g] for member in front for g in sn.gate_names}


@pytest.mark.parametrize("strategy", ["random", "mps"])
def test_generic_strategies_search_the_widths(sn, strategy: str) -> None:
    front = search(sn, _hw_ev(sn), strategy=strategy, budget=60, seed=0)
    assert _widths(front, sn) == {NARROW, WIDE}


def test_nsga2_treats_widths_as_genes(sn) -> None:
    strat = get_strategy("nsga2", pop_size=4, finetune_steps=1, **SMALL)
    front = search(sn, _ev(sn), strategy=strat, budget=8, seed=0)
    assert len(front) > 0 and _widths(front, sn) <= set(WIDTHS)


def test_anchors_and_lionheart_keep_the_adapted_widths(sn) -> None:
    front = search(sn, _ev(sn), strategy=get_strategy("anchors", train_steps=1, patience=None,
                                                      **SMALL), budget=5, seed=0)
    assert _widths(front, sn) == {WIDE}
    strat = get_strategy("lionheart", thresholds=(5.0,), round_steps=1, max_rounds=1,
                         repeats=1, drift_batches=1, **SMALL)
    front = search(sn, _ev(sn), strategy=strat, budget=3, seed=0)
    assert _widths(front, sn) == {WIDE}
    assert all(not layer.startswith("width:") for _, layer, _, _ in strat.decisions)


def test_odimo_learns_the_widths_with_the_layers(sn) -> None:
    rows = cost_rows(sn, "digital_share")
    assert len(rows) == len(sn.layer_names)
    assert all(float(r.abs().sum()) == 0.0 for r in rows[-len(sn.gate_names):])
    strat = get_strategy("odimo", lambdas=(0.0,), steps=2, finetune_steps=1, **SMALL)
    front = search(sn, _ev(sn), strategy=strat, budget=2, seed=0)
    mapping = strat.results[0.0]
    assert all(mapping[g] in WIDTHS for g in sn.gate_names)
    assert _widths(front, sn) <= set(WIDTHS)
