from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hetmap.errors import ConfigError, TrainingError
from hetmap.tasks import final_scoring, get_task, load_checkpoint, read_metadata
from hetmap.training import pretrain


@pytest.fixture(scope="module")
def digits():
    return get_task("digits")


def test_pretrain_learns_saves_and_reloads(digits, tmp_path: Path) -> None:
    out = tmp_path / "digits.safetensors"
    lines: list[str] = []
    model, metrics = pretrain(digits, epochs=4, lr=0.05, seed=1, out=out, progress=False,
                              log=lines.append)
    assert metrics.test > 70.0  # chance is 10%
    assert metrics.steps == 4 * len(digits.loaders(64).train)
    assert any("test accuracy" in line and " s " in line for line in lines)  # wall time
    assert not model.training
    fresh = load_checkpoint(digits.build_model(), out)
    test = digits.loaders(64).test
    with final_scoring():
        assert digits.metric(fresh, test) == pytest.approx(metrics.test)
    meta = read_metadata(out)
    assert meta["task"] == "digits" and float(meta["test"]) == pytest.approx(metrics.test,
                                                                            abs=1e-3)


def test_pretrain_is_deterministic_by_seed(digits) -> None:
    a, _ = pretrain(digits, max_steps=5, seed=3, progress=False, log=lambda s: None)
    b, _ = pretrain(digits, max_steps=5, seed=3, progress=False, log=lambda s: None)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(),
                                                 b.state_dict().values()))


def test_pretrain_by_name_and_bad_options() -> None:
    _, metrics = pretrain("digits", max_steps=2, optimizer="adamw", lr=1e-3, progress=False,
                          log=lambda s: None)
    assert metrics.steps == 2
    with pytest.raises(ConfigError, match="optimizer"):
        pretrain("digits", optimizer="lbfgs", progress=False)


def test_divergence_is_a_training_error(digits, monkeypatch) -> None:
    monkeypatch.setattr(type(digits), "loss", lambda self, out, y: out.sum() * float("nan"))
    with pytest.raises(TrainingError, match="learning rate"):
        pretrain(digits, max_steps=3, progress=False, log=lambda s: None)
