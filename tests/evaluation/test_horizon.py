"""Objectives and constraints at a horizon after PCM programming: `accuracy@1d[:stat]`."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from hetmap import AnalogConfig, Mapping, build_supernet
from hetmap.candidates.analog.pcm import PCMDraws
from hetmap.config import validate_config
from hetmap.errors import ConfigError
from hetmap.evaluation import Evaluator, get_objective
from hetmap.evaluation.objectives import OBJECTIVES, Constraint, Horizon, parse_constraints
from hetmap.tasks.image import accuracy

pytest.importorskip("aihwkit")


@pytest.mark.parametrize(("name", "seconds", "stat"), [
    ("accuracy@1d", 86400.0, "mean"), ("accuracy@1s", 1.0, "mean"),
    ("accuracy@1h", 3600.0, "mean"), ("accuracy@1y", 31536000.0, "mean"),
    ("accuracy@3600", 3600.0, "mean"), ("accuracy@30min:p10", 1800.0, "p10"),
    ("accuracy@1d:mean-2std", 86400.0, "mean-2std"), ("accuracy@0", 0.0, "mean")])
def test_horizon_names_parse(name: str, seconds: float, stat: str) -> None:
    obj = get_objective(name)
    assert obj.horizon == Horizon(seconds, stat)
    assert obj.direction == "max" and obj.source == "task" and obj.name == name
    assert name in OBJECTIVES and OBJECTIVES[name] == obj


@pytest.mark.parametrize(("name", "what"), [
    ("accuracy@soon", "bad horizon 'soon'"), ("accuracy@1q", "bad horizon '1q'"),
    ("accuracy@", "bad horizon ''"), ("accuracy@1d:median", "bad statistic 'median'"),
    ("accuracy@1d:p200", "bad statistic 'p200'"), ("latency@1d", "only accuracy")])
def test_bad_horizons_give_one_line_errors(name: str, what: str) -> None:
    with pytest.raises(ConfigError, match=what) as err:
        get_objective(name)
    assert "\n" not in str(err.value)
    assert name not in OBJECTIVES
    with pytest.raises(ConfigError, match=what):
        Constraint.parse(f"{name}>=90")
    with pytest.raises(ConfigError, match=what) as err:
        validate_config({"search": {"objectives": [name, "analog_mac_ratio"]}})
    assert "\n" not in str(err.value)


def test_constraints_and_config_accept_horizons() -> None:
    c = parse_constraints("accuracy@1d:mean-2std>=95, analog_mac_ratio>=0.5")
    assert c[0] == Constraint("accuracy@1d:mean-2std", ">=", 95.0)
    assert c[0].satisfied({"accuracy@1d:mean-2std": 95.5})
    cfg = validate_config({"search": {
        "objectives": ["accuracy@1y:p10", "analog_mac_ratio"], "draws": 4,
        "constraints": ["accuracy@1d>=90"]}})
    assert cfg.search.draws == 4


def test_statistics_over_draws() -> None:
    v = [90.0, 92.0, 94.0, 96.0, 98.0]
    assert Horizon(1.0).summarise(v) == 94.0
    assert Horizon(1.0, "mean-2std").summarise(v) == pytest.approx(94 - 2 * np.std(v, ddof=1))
    assert Horizon(1.0, "p10").summarise(v) == pytest.approx(np.percentile(v, 10))


# -- an Evaluator with accuracy@1d -------------------------------------------------------
class _Chain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 8)
        self.fc2 = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.fc1(x))


def _sensitive_setup():
    """fc1 is noise-sensitive on PCM, fc2 robust, both exact in eval mode: fc1 passes the
    informative features through tiny weights next to a huge weight on an input that is
    always 0 (which sets each column's conductance scale); fc2 is a plain classifier."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(512, 8, generator=gen)
    x[:, 7] = 0.0
    model = _Chain()
    with torch.no_grad():
        model.fc1.weight.copy_(torch.eye(8) * 0.02)
        model.fc1.weight[:, 7] = 1.0
        model.fc1.bias.zero_()
        model.fc2.weight.copy_(torch.randn(4, 8, generator=gen))
        model.fc2.weight[:, 7] = 0.0
        model.fc2.bias.zero_()
        # fc1 scales by 0.02; fc2 sees x * 0.02: labels from the exact model
        y = model(x).argmax(1)
    batches = [(x[i:i + 128], y[i:i + 128]) for i in range(0, 512, 128)]
    task = SimpleNamespace(
        name="chain", loaders=lambda batch_size, seed: SimpleNamespace(
            train=batches, val=batches, test=batches),
        metric=lambda model, val, device: accuracy(model, val, device))
    config = AnalogConfig(fuse=False, init_from_data=0, out_res=-1.0, clip_type="none")
    sn = build_supernet(model, x[:16], candidates=("fp32", "analog"), analog=config)
    for name, r in (("fc1", 3.0), ("fc2", 0.1)):
        with torch.no_grad():
            sn.candidate(name, "analog").input_range.fill_(r)
    sensitive = Mapping({"fc1": "analog", "fc2": "fp32"}, sn.fingerprint)
    robust = Mapping({"fc1": "fp32", "fc2": "analog"}, sn.fingerprint)
    return sn, task, sensitive, robust


def test_accuracy_at_a_day_ranks_the_noise_sensitive_mapping_below_the_robust_one() -> None:
    sn, task, sensitive, robust = _sensitive_setup()
    plain = Evaluator(sn, task, objectives=("accuracy",), bn_batches=0)
    a_s, a_r = plain.accuracies([sensitive, robust])
    assert a_s >= a_r >= 98.0  # drift ignored: the sensitive mapping ranks first (or ties)
    ev = Evaluator(sn, task, objectives=("accuracy@1d", "accuracy@1d:p10"), bn_batches=0,
                   draws=4)
    F = ev.matrix([sensitive, robust])
    assert F[0, 0] > F[1, 0] + 20.0 and F[0, 1] > F[1, 1] + 20.0  # minimisation form
    rows = ev.scores([sensitive, robust], extra=("accuracy",))
    assert rows[1]["accuracy@1d"] >= 80.0 and rows[0]["accuracy"] == a_s
    # the per-draw values are the task's metric on each PCM draw of the mapping, and the
    # objective is their mean
    sn.use(sensitive)
    pcm = PCMDraws(sn.eval(), 4, seed=0)
    by_hand = []
    for d in range(4):
        with pcm.at(86400.0, d):
            by_hand.append(accuracy(sn, task.loaders(0, 0).val, "cpu"))
    per_draw = ev.accuracies_at([sensitive], 86400.0)[0]
    assert per_draw == pytest.approx(by_hand) and len(set(per_draw)) > 1
    assert rows[0]["accuracy@1d"] == pytest.approx(np.mean(by_hand))
    # the same seed gives the same draws; another seed other draws
    again = Evaluator(sn, task, objectives=("accuracy@1d",), bn_batches=0, draws=4)
    assert again.accuracies_at([sensitive], 86400.0) == ev.accuracies_at([sensitive], 86400.0)
    other = Evaluator(sn, task, objectives=("accuracy@1d",), bn_batches=0, draws=4, seed=1)
    assert other.accuracies_at([sensitive], 86400.0) != ev.accuracies_at([sensitive], 86400.0)


def test_constraint_at_a_horizon_is_scored() -> None:
    sn, task, sensitive, robust = _sensitive_setup()
    ev = Evaluator(sn, task, objectives=("accuracy", "analog_mac_ratio"), bn_batches=0,
                   draws=2)
    (c,) = parse_constraints("accuracy@1h>=70")
    rows = ev.scores([sensitive, robust], extra=(c.name,))
    assert not c.satisfied(rows[0]) and c.satisfied(rows[1])


def test_bad_draws() -> None:
    sn, task, _, _ = _sensitive_setup()
    with pytest.raises(ConfigError, match="draws"):
        Evaluator(sn, task, draws=0)


@pytest.mark.parametrize("strategy", ["random", "mps"])
def test_search_on_accuracy_at_a_day(strategy: str) -> None:
    """The whole space (4 mappings) searched on accuracy@1d under a 1-day constraint: the
    front holds the robust mapping, never the sensitive one (which leads in eval mode)."""
    from hetmap.search import search

    sn, task, sensitive, robust = _sensitive_setup()
    ev = Evaluator(sn, task, objectives=("accuracy@1d", "analog_mac_ratio"), bn_batches=0,
                   draws=2)
    front = search(sn, ev, strategy, budget=4, constraints=["accuracy@1d>=70"])
    mappings = [m.mapping for m in front]
    assert robust in mappings and sensitive not in mappings
    assert all(m.scores["accuracy@1d"] >= 70 for m in front)
