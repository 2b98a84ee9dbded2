"""Feasible fronts: the chip's tile budget is a hard constraint of every search."""

from __future__ import annotations

import numpy as np
import pytest
from tests.evaluation.helpers import digits_supernet

from hetmap.evaluation import Evaluator
from hetmap.hardware import HardwareSpec, load_hardware
from hetmap.hardware.table import cost_of, table_for
from hetmap.mapping import Mapping
from hetmap.search import chip_constraints, search

OBJECTIVES = ("analog_mac_ratio", "digital_weight_bytes")  # all-analog is their optimum


@pytest.fixture(scope="module")
def sn():
    return digits_supernet()


def _chip(sn, policy: str) -> HardwareSpec:
    """hermes-pcm with one tile fewer than all-analog needs."""
    all_analog = Mapping.uniform(sn, "analog", fallback="fp32")
    need = int(sn.objectives(all_analog).analog_tiles)
    data = load_hardware("hermes-pcm").model_dump()
    data["name"] = f"small-{policy}"
    data["analog"]["n_tiles"] = need - 1
    data["on_tile_overflow"] = policy
    return HardwareSpec.model_validate(data)


def test_no_over_budget_mapping_is_on_the_front(sn) -> None:
    hw = _chip(sn, "error")
    table = table_for(sn, hw)
    ev = Evaluator(sn, None, objectives=OBJECTIVES, cost_table=table)
    assert [str(c) for c in chip_constraints(ev)] == ["tile_overflow<=0"]
    front = search(sn, ev, strategy="mps", budget=48, seed=0, pop_size=8)
    assert len(front) >= 1 and front.feasible
    overflow = ev.scores(front.mappings, extra=("tile_overflow",))
    assert all(s["tile_overflow"] == 0 for s in overflow)
    for m in front.mappings:  # every member can be costed strictly: nothing crashes later
        cost_of(sn, m, table=table)
    # the unconstrained optimum (all-analog) was evaluated and does not fit
    all_analog = Mapping.uniform(sn, "analog", fallback="fp32")
    assert ev.scores([all_analog], extra=("tile_overflow",))[0]["tile_overflow"] > 0
    assert all_analog not in front.mappings


def test_a_reprogramming_chip_costs_overflow_instead(sn) -> None:
    hw = _chip(sn, "reprogram")
    ev = Evaluator(sn, None, objectives=OBJECTIVES, cost_table=table_for(sn, hw))
    assert chip_constraints(ev) == ()
    front = search(sn, ev, strategy="mps", budget=48, seed=0, pop_size=8)
    overflow = np.array([s["tile_overflow"] for s in
                         ev.scores(front.mappings, extra=("tile_overflow",))])
    assert overflow.max() > 0  # all-analog is optimal and allowed: it pays in reprogramming


def test_no_cost_table_no_chip_constraint(sn) -> None:
    assert chip_constraints(Evaluator(sn, None, objectives=OBJECTIVES)) == ()


def test_an_infeasible_front_still_fits_the_chip(sn) -> None:
    # nothing meets digital_weight_bytes <= -1000, and all-analog (0 bytes) violates it least
    # even with its tile overflow added: the front is the least violating mappings that fit
    hw = _chip(sn, "error")
    ev = Evaluator(sn, None, objectives=OBJECTIVES, cost_table=table_for(sn, hw))
    front = search(sn, ev, strategy="mps", budget=48, seed=0, pop_size=8,
                   constraints=["digital_weight_bytes<=-1000"])
    assert not front.feasible and len(front) >= 1
    overflow = ev.scores(front.mappings, extra=("tile_overflow",))
    assert all(s["tile_overflow"] == 0 for s in overflow)
    assert Mapping.uniform(sn, "analog", fallback="fp32") not in front.mappings
