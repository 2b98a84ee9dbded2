"""The small policies of supernet training: config errors, fair paths, ramps, sensitivity,
distillation, the hinge loss, Kendall tau and per-epoch data order."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from tests.models_for_tests import TinyMLP

from hetmap.errors import ConfigError
from hetmap.supernet import build_supernet
from hetmap.training import KDConfig, Stage2Config, make_config
from hetmap.training.fair import distill_loss, fair_paths, step_generator, teacher_target
from hetmap.training.ramp import (
    layer_scales,
    measure_sensitivity,
    ramp_shape,
    ramp_value,
    sensitivity_fractions,
)
from hetmap.training.rank import kendall_tau, pairwise_hinge, sample_mappings
from hetmap.training.schedule import epoch_seed, reseed_loader


@pytest.fixture
def tiny_sn():
    return build_supernet(TinyMLP(), torch.randn(4, 8),
                          candidates=("fp32", "int8", "analog", "skip"))


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"stage2\.ramp_fraction"):
        make_config(stage2={"ramp_fraction": 0})
    with pytest.raises(ConfigError, match=r"stage3\.n_mapings"):
        make_config(stage3={"n_mapings": 8})
    with pytest.raises(ConfigError, match="target"):
        make_config(stage2={"start": 0.8, "target": 0.5})
    assert make_config(stage1={"epochs": 1}).stage1.epochs == 1
    with pytest.raises(ConfigError, match=r"stage2\.target \(0\.2\) is below stage1\.noise_scale"):
        make_config(stage1={"noise_scale": 0.5}, stage2={"target": 0.2})


def test_stage2_ramp_starts_where_stage1_left_the_noise() -> None:
    default = make_config()
    assert 0.0 < default.stage1.noise_scale < default.stage2.target  # stage 1 trains noise
    assert default.stage2.start == default.stage1.noise_scale
    cfg = make_config(stage1={"noise_scale": 0.3})
    assert cfg.stage2.start == 0.3
    assert layer_scales(cfg.stage2, 0.0, None) == pytest.approx(0.3)
    assert layer_scales(cfg.stage2, 1.0, None) == pytest.approx(1.0)
    assert make_config(stage1={"noise_scale": 0.3}, stage2={"start": 0.0}).stage2.start == 0.0
    again = make_config(**cfg.model_dump(mode="json"))  # a checkpointed config round-trips
    assert again == cfg


def test_fair_paths_train_every_candidate_of_every_layer(tiny_sn) -> None:
    paths = fair_paths(tiny_sn, step_generator(0, 1, 0))
    k = max(len(tiny_sn.candidates(n)) for n in tiny_sn.layer_names)
    assert len(paths) == k == 4  # fc2 also offers skip
    for name in tiny_sn.layer_names:
        used = Counter(p[name] for p in paths)
        assert set(used) == set(tiny_sn.candidates(name))
        if len(tiny_sn.candidates(name)) == k:
            assert set(used.values()) == {1}
    again = fair_paths(tiny_sn, step_generator(0, 1, 0))
    assert again == paths  # same (seed, stage, step): same paths on every rank
    others = [fair_paths(tiny_sn, step_generator(0, 1, s)) for s in range(1, 6)]
    assert any(o != paths for o in others)


def test_ramp_shapes_and_per_layer_fractions() -> None:
    assert ramp_shape(0.0, "cosine") == 0.0 and ramp_shape(1.0, "cosine") == 1.0
    assert ramp_shape(0.25, "cosine") < ramp_shape(0.25, "linear") == 0.25
    assert ramp_shape(0.3, "step", 4) == 0.25 and ramp_shape(0.99, "step", 4) == 0.75
    cfg = Stage2Config(ramp_fraction=0.5, start=0.1, target=0.9)
    assert ramp_value(cfg, 0.0) == pytest.approx(0.1)
    assert ramp_value(cfg, 0.25) == pytest.approx(0.5)
    assert ramp_value(cfg, 0.6) == pytest.approx(0.9)  # holds the target after the ramp
    fr = sensitivity_fractions({"a": 0.0, "b": 1.0, "c": 0.5}, 0.2)
    assert fr == pytest.approx({"a": 0.2, "b": 1.0, "c": 0.6})
    scales = layer_scales(Stage2Config(ramp_fraction=1.0), 0.3, fr)
    assert isinstance(scales, dict)
    assert scales["a"] == 1.0 > scales["c"] > scales["b"] == pytest.approx(0.3)


def test_sensitivity_is_measured_and_changes_nothing(tiny_sn) -> None:
    class Classify:  # the one Task method the measurement needs
        def loss(self, out, y):
            return torch.nn.functional.cross_entropy(out, y)

    x = torch.randn(32, 8)
    batches = [(x, torch.randint(0, 4, (32,)))]
    before = {k: v.clone() for k, v in tiny_sn.state_dict().items()}
    rng = torch.get_rng_state()
    sens = measure_sensitivity(tiny_sn, Classify(), batches, "cpu")
    assert set(sens) == set(tiny_sn.layer_names)
    assert all(v >= 0 for v in sens.values()) and max(sens.values()) > 0
    assert torch.equal(torch.get_rng_state(), rng)
    for k, v in tiny_sn.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_distillation_loss() -> None:
    kd = KDConfig(temperature=2.0)
    t = torch.randn(16, 10)

    def kd_loss(student: torch.Tensor, teacher: torch.Tensor, cfg: KDConfig = kd) -> float:
        return float(distill_loss(student, teacher_target(teacher, cfg), cfg))

    assert kd_loss(t.clone(), t) == pytest.approx(0.0, abs=1e-6)
    assert kd_loss(torch.randn(16, 10), t) > 0.01
    seg = torch.randn(2, 5, 4, 4)  # per-pixel class logits
    assert kd_loss(seg + 0.5, seg) == pytest.approx(0.0, abs=1e-6)
    assert kd_loss(t + 1.0, t, KDConfig(kind="mse")) == pytest.approx(1.0)


def test_pairwise_hinge_pushes_better_ranks_up() -> None:
    lp = torch.zeros(3, requires_grad=True)
    ranks = np.array([0, 1, 1])
    loss = pairwise_hinge(lp, ranks, margin=1.0)
    assert float(loss.detach()) == pytest.approx(1.0)
    loss.backward()
    assert lp.grad[0] < 0 < lp.grad[1]  # descent raises the best, lowers the others
    good = torch.tensor([3.0, 1.0, 0.0])
    assert float(pairwise_hinge(good, ranks, margin=1.0)) == 0.0
    assert float(pairwise_hinge(lp, np.zeros(3), 1.0).detach()) == 0.0  # one front: no pairs


def test_kendall_tau_sign_and_undefined_case() -> None:
    ranks = np.array([0, 1, 2, 3])
    assert kendall_tau(np.array([4.0, 3.0, 2.0, 1.0]), ranks) == pytest.approx(1.0)
    assert kendall_tau(np.array([1.0, 2.0, 3.0, 4.0]), ranks) == pytest.approx(-1.0)
    assert kendall_tau(np.zeros(4), ranks) == 0.0  # uniform preferences


def test_sample_mappings_exploration_share(tiny_sn) -> None:
    for layer_logits in tiny_sn.arch_parameters():
        with torch.no_grad():
            layer_logits.fill_(-30.0)
            layer_logits[0] = 30.0  # preferences put everything on the first candidate
    ms = sample_mappings(tiny_sn, 40, 0.5, torch.Generator().manual_seed(0))
    first = [all(m[n] == tiny_sn.candidates(n)[0] for n in tiny_sn.layer_names) for m in ms]
    assert all(first[20:])  # preference samples
    assert not all(first[:20])  # uniform samples explore


def test_epoch_order_depends_only_on_seed_and_epoch() -> None:
    from hetmap.tasks import get_task

    loader = get_task("digits").loaders(64, 0).train

    def first_batch(epoch: int) -> torch.Tensor:
        reseed_loader(loader, epoch_seed(0, 1, epoch))
        return next(iter(loader))[0]

    a = first_batch(0)
    first_batch(1)
    assert torch.equal(first_batch(0), a)
    assert not torch.equal(first_batch(1), a)
