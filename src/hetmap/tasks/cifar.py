"""CIFAR-10/100 from the standard python folders (`cifar-10-batches-py`: data_batch_1..5,
test_batch; `cifar-100-python`: train, test), read without torchvision.

Those files are pickles; they are read with an unpickler that only admits the numpy array
constructors such files contain, so a tampered file cannot run code."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hetmap.errors import DataError
from hetmap.tasks.base import TrainDefaults
from hetmap.tasks.classification import channel_stats, model_factory
from hetmap.tasks.data import Split, random_crop_flip, stratified_split
from hetmap.tasks.image import ImageTask

_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
            ("numpy", "ndarray"), ("numpy", "dtype"),
            ("_codecs", "encode")}  # how Python 3 writes bytes in protocol-2 pickles


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR file")


def read_batch(path: Path) -> dict[str, Any]:
    """One CIFAR batch file as a dict with str keys (the originals are Python 2 pickles)."""
    if not path.is_file():
        raise DataError(f"CIFAR file {path} does not exist")
    try:
        with path.open("rb") as fh:
            raw = _ArrayUnpickler(fh, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise DataError(f"{path} is not a CIFAR python batch file: {exc}") from exc
    if not isinstance(raw, dict):
        raise DataError(f"{path} holds a {type(raw).__name__}, not a CIFAR batch dict")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}


def _images(batch: dict[str, Any], path: Path) -> np.ndarray:
    data = np.asarray(batch.get("data"), dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{path}: 'data' must be N x 3072 uint8 (32x32 RGB), got {data.shape}")
    return data.reshape(-1, 3, 32, 32)


def read_cifar(root: str | os.PathLike[str], classes: int = 10
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images, train labels, test images, test labels) from a CIFAR folder; `root`
    may be the batch folder itself or its parent."""
    base = Path(root)
    folder = "cifar-10-batches-py" if classes == 10 else "cifar-100-python"
    if (base / folder).is_dir():
        base = base / folder
    names = ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"]) if classes == 10 \
        else (["train"], ["test"])
    key = "labels" if classes == 10 else "fine_labels"
    out: list[np.ndarray] = []
    for group in names:
        xs, ys = [], []
        for name in group:
            batch = read_batch(base / name)
            if key not in batch:
                raise DataError(f"{base / name} has no '{key}' (is it CIFAR-{classes}?)")
            xs.append(_images(batch, base / name))
            ys.append(np.asarray(batch[key], dtype=np.int64))
        out += [np.concatenate(xs), np.concatenate(ys)]
    if out[1].max() >= classes or out[1].min() < 0:
        raise DataError(f"labels in {base} are outside 0..{classes - 1}")
    return out[0], out[1], out[2], out[3]


def cifar_task(root: str | os.PathLike[str], classes: int = 10, model: str = "resnet20",
               val_fraction: float = 0.1, split_seed: int = 0, **model_kw: object) -> ImageTask:
    xtr, ytr, xte, yte = read_cifar(root, classes)
    val_idx, train_idx = stratified_split(ytr, (val_fraction,), split_seed)
    full = Split(torch.from_numpy(xtr), torch.from_numpy(ytr))
    train, val = full.take(train_idx), full.take(val_idx)
    test = Split(torch.from_numpy(xte), torch.from_numpy(yte))
    mean, std = channel_stats(train)
    return ImageTask(f"cifar{classes}", "classification", train, val, test, classes,
                     model_factory(model, classes, 3, **model_kw), mean, std,
                     augment=random_crop_flip(4, flip=True),
                     defaults=TrainDefaults(epochs=30, lr=0.1, batch_size=128))


def cifar10_task(root: str | os.PathLike[str] = "data", model: str = "resnet20",
                 **kw: Any) -> ImageTask:
    return cifar_task(root, 10, model, **kw)


def cifar100_task(root: str | os.PathLike[str] = "data", model: str = "resnet20",
                  **kw: Any) -> ImageTask:
    return cifar_task(root, 100, model, **kw)
