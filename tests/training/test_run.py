"""hetmap.training.run: the typed training metrics and their flat train.json form."""

from __future__ import annotations

import pytest

from hetmap.errors import ConfigError
from hetmap.training import TrainMetrics


def test_train_metrics_round_trip_through_train_json_keys() -> None:
    m = TrainMetrics(fp32_val=91.5, tau_after=0.4, losses={2: 0.3, 1: 0.5},
                     sensitivity={"conv1": 0.2}, stage3_evaluations=64)
    flat = m.to_dict()
    assert flat == {"fp32_val": 91.5, "tau_after": 0.4, "stage1/loss": 0.5,
                    "stage2/loss": 0.3, "sensitivity/conv1": 0.2,
                    "stage3/evaluations": 64.0}  # tau_before unmeasured: no key
    assert TrainMetrics.from_dict(flat) == m
    assert TrainMetrics.from_dict({}) == TrainMetrics()


def test_an_unknown_training_metric_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="unknown training metric 'stage3_evals'"):
        TrainMetrics.from_dict({"stage3_evals": 3})
