from __future__ import annotations

import numpy as np
import pytest

from hetmap.errors import ConfigError
from hetmap.evaluation import (
    OBJECTIVES,
    Constraint,
    hypervolume,
    non_dominated,
    pareto_ranks,
    parse_constraints,
    to_minimisation,
)
from hetmap.evaluation.objectives import check_objectives, crowding_distance


def test_registry_directions() -> None:
    assert OBJECTIVES["accuracy"].direction == "max"
    assert OBJECTIVES["analog_mac_ratio"].direction == "max"
    for name in ("digital_weight_bytes", "latency_s", "energy_j", "analog_tiles"):
        assert OBJECTIVES[name].direction == "min"


def test_cost_objectives_need_a_cost_table() -> None:
    with pytest.raises(ConfigError, match="cost_table"):
        check_objectives(("accuracy", "latency_s"), has_cost_table=False)
    assert len(check_objectives(("accuracy", "energy_j"), has_cost_table=True)) == 2
    with pytest.raises(ConfigError, match="unknown objective"):
        check_objectives(("speed",), has_cost_table=True)


def test_minimisation_form_negates_maximised() -> None:
    objs = check_objectives(("accuracy", "digital_weight_bytes"), False)
    F = to_minimisation([{"accuracy": 90.0, "digital_weight_bytes": 10.0}], objs)
    assert F.tolist() == [[-90.0, 10.0]]


def test_pareto_ranks_and_non_dominated() -> None:
    F = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [2.0, 2.0], [0.0, 1.0]])
    assert pareto_ranks(F).tolist() == [0, 0, 1, 2, 0]
    assert non_dominated(F).tolist() == [0, 1, 4]  # ties are kept
    assert pareto_ranks(np.zeros((0, 2))).size == 0


def test_hypervolume_normalised_and_raw() -> None:
    F = np.array([[0.5, 0.5]])
    assert hypervolume(F, [1.0, 1.0]) == pytest.approx(0.25)
    # scaled into the box [ideal, ref]: same fraction whatever the units
    assert hypervolume(F * 100, [100.0, 100.0], ideal=[0.0, 0.0]) == pytest.approx(0.25)
    two = np.array([[0.0, 0.5], [0.5, 0.0]])
    assert hypervolume(two, [1.0, 1.0]) == pytest.approx(0.75)
    assert hypervolume(np.array([[2.0, 0.0]]), [1.0, 1.0]) == 0.0  # outside ref


def test_crowding_extremes_infinite() -> None:
    d = crowding_distance(np.array([[0.0, 3.0], [1.0, 2.0], [3.0, 0.0]]))
    assert np.isinf(d[0]) and np.isinf(d[2]) and np.isfinite(d[1])


def test_constraints_parse_and_check() -> None:
    c = Constraint.parse("accuracy_drop<=1")
    assert (c.name, c.op, c.value) == ("accuracy_drop", "<=", 1.0)
    assert c.satisfied({"accuracy_drop": 0.5}) and c.violation({"accuracy_drop": 0.5}) == 0
    assert c.violation({"accuracy_drop": 3.0}) == pytest.approx(2.0)
    r = parse_constraints("analog_mac_ratio >= 0.6, latency_s<0.001")
    assert [str(x) for x in r] == ["analog_mac_ratio>=0.6", "latency_s<0.001"]
    assert not r[0].satisfied({"analog_mac_ratio": 0.5})
    with pytest.raises(ConfigError, match="cannot parse"):
        Constraint.parse("accuracy about 3")
    with pytest.raises(ConfigError, match="unknown quantity"):
        Constraint.parse("speed>=1")
