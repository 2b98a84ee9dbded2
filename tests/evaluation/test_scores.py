"""hetmap.evaluation.scores: one checked vocabulary for a scored mapping's figures."""

from __future__ import annotations

import pickle

import pytest

from hetmap.errors import ConfigError
from hetmap.evaluation import Scores, is_score_name
from hetmap.search import Member


@pytest.mark.parametrize("name", [
    "accuracy", "analog_mac_ratio", "digital_weight_bytes", "latency_s", "energy_j",
    "accuracy@1d", "accuracy@1y:p10", "accuracy_drop", "tile_overflow", "accuracy_search",
    "accuracy@1d_search", "accuracy_std", "drift_time_s", "test_accuracy", "test_1d",
    "test_1y_std", "test_0s_ci95", "test_3600s"])
def test_the_vocabulary_takes_every_name_an_artifact_writes(name) -> None:
    assert is_score_name(name)


@pytest.mark.parametrize("name", [
    "latency", "digital_bytes", "acc_1d", "test_accuracy_1day_mean", "test@86400",
    "wall_time_s", "accuracy@", "test_1d_mean", "bogus_search"])
def test_retired_and_misspelt_names_are_refused(name) -> None:
    assert not is_score_name(name)
    with pytest.raises(ConfigError, match=f"unknown score '{name}'"):
        Scores({name: 1.0})


def test_scores_are_read_only_floats_and_grow_by_union() -> None:
    s = Scores({"accuracy": 90, "analog_mac_ratio": 0.5})
    assert s["accuracy"] == 90.0 and isinstance(s["accuracy"], float)
    with pytest.raises(TypeError):
        s["accuracy"] = 1.0  # type: ignore[index]
    more = s | {"test_accuracy": 89.0}
    assert dict(more) == {"accuracy": 90.0, "analog_mac_ratio": 0.5, "test_accuracy": 89.0}
    assert "test_accuracy" not in s  # the union is a new record
    assert more == {"accuracy": 90.0, "analog_mac_ratio": 0.5, "test_accuracy": 89.0}
    assert pickle.loads(pickle.dumps(more)) == more


def test_a_member_checks_the_scores_it_is_given() -> None:
    from hetmap import Mapping

    m = Member(Mapping({"a": "fp32"}), {"accuracy": 1.0})
    assert isinstance(m.scores, Scores)
    with pytest.raises(ConfigError, match="unknown score 'latency'"):
        Member(Mapping({"a": "fp32"}), {"latency": 1.0})
