"""Three splits, one rule: the test split is sealed until final scoring."""

from __future__ import annotations

import pytest
import torch

from hetmap.errors import ConfigError, ProtocolError
from hetmap.evaluation import Evaluator
from hetmap.mapping import Mapping
from hetmap.supernet import build_supernet
from hetmap.tasks import SealedLoader, final_scoring, final_scoring_active, get_task


@pytest.fixture(scope="module")
def task():
    return get_task("digits", width=4)


def test_test_loader_refuses_iteration_before_final_scoring(task) -> None:
    loaders = task.loaders(batch_size=64)
    assert isinstance(loaders.test, SealedLoader)
    assert len(loaders.test) > 0 and len(loaders.test.dataset) > 0  # size is not data
    with pytest.raises(ProtocolError, match="reporting only"):
        next(iter(loaders.test))
    assert not final_scoring_active()
    with final_scoring():
        assert final_scoring_active()
        _, y = next(iter(loaders.test))
        assert len(y) == 64
    assert not final_scoring_active()
    next(iter(loaders.val))  # validation is always open


def test_evaluator_scores_the_split_it_is_given(task) -> None:
    torch.manual_seed(0)
    sn = build_supernet(task.build_model(), task.example_input(4), candidates=("fp32",))
    val = Evaluator(sn, task, objectives=("accuracy",), bn_batches=0)
    test = Evaluator(sn, task, objectives=("accuracy",), bn_batches=0, split="test")
    m = Mapping.uniform(sn, "fp32")
    val.accuracy(m)  # selection works outside the seal
    with pytest.raises(ProtocolError):
        test.accuracy(m)
    with final_scoring():
        acc = test.accuracy(m)
    loaders = task.loaders(256)
    with final_scoring():
        expected = task.metric(sn, loaders.test)
    assert acc == pytest.approx(expected)
    with pytest.raises(ConfigError, match="split"):
        Evaluator(sn, task, objectives=("accuracy",), split="train")
