"""CIFAR folders in the real python-pickle format, written small."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from hetmap.errors import DataError
from hetmap.tasks import get_task
from hetmap.tasks.cifar import read_batch, read_cifar


def _write(path: Path, obj: object) -> None:
    with path.open("wb") as fh:
        pickle.dump(obj, fh, protocol=2)


def _batch(n: int, seed: int, key: bytes = b"labels", classes: int = 10) -> dict:
    rng = np.random.default_rng(seed)
    labels = [int(v) for v in rng.integers(0, classes, n)]
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    # the originals are Python 2 pickles: byte-string keys
    return {b"batch_label": b"training batch", key: labels, b"data": data,
            b"filenames": [b"img%d.png" % i for i in range(n)]}


@pytest.fixture
def cifar10_root(tmp_path: Path) -> Path:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i in range(1, 6):
        _write(folder / f"data_batch_{i}", _batch(40, i))
    _write(folder / "test_batch", _batch(30, 9))
    return tmp_path


def test_read_cifar10_layout(cifar10_root: Path) -> None:
    xtr, ytr, xte, _ = read_cifar(cifar10_root)
    assert xtr.shape == (200, 3, 32, 32) and xte.shape == (30, 3, 32, 32)
    raw = _batch(40, 1)
    # channel-major rows: the first 1024 bytes are the red plane, row by row
    assert np.array_equal(xtr[0, 0].ravel(), raw[b"data"][0, :1024])
    assert np.array_equal(xtr[0, 2, 31], raw[b"data"][0, 3072 - 32:])
    assert ytr[:40].tolist() == raw[b"labels"]


def test_cifar10_task_holds_out_validation_and_augments(cifar10_root: Path) -> None:
    task = get_task("cifar10", root=cifar10_root, model="resnet8")
    assert len(task.train_split) + len(task.val_split) == 200 and len(task.test_split) == 30
    assert 15 <= len(task.val_split) <= 25
    loaders = task.loaders(16, seed=0)
    x, _ = next(iter(loaders.train))
    assert x.shape == (16, 3, 32, 32)
    assert task.build_model()(x).shape == (16, 10)
    xa = next(iter(task.loaders(16, seed=0).val))[0]
    xb = next(iter(task.loaders(16, seed=1).val))[0]
    assert torch.equal(xa, xb)  # no augmentation at evaluation


def test_cifar100_fine_labels(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name, n in (("train", 50), ("test", 20)):
        b = _batch(n, 1, b"fine_labels", 100)
        b[b"coarse_labels"] = [0] * n
        _write(folder / name, b)
    task = get_task("cifar100", root=folder, model="resnet8")
    assert task.build_model().fc.out_features == 100
    assert len(task.test_split) == 20


class _Evil:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (os.makedirs, (self.target,))


def test_a_pickle_that_runs_code_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    _write(tmp_path / "data_batch_1", {b"data": _Evil(str(target))})
    with pytest.raises(DataError, match="refusing"):
        read_batch(tmp_path / "data_batch_1")
    assert not target.exists()


def test_missing_folder_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data_batch_1"):
        read_cifar(tmp_path)
