"""In-memory datasets and batch-level augmentation in plain torch (no torchvision).

Images stay uint8 in memory (CIFAR would be 600 MB as float); the collate function turns a
batch into normalised float and applies random augmentation from its own seeded generator,
so a loader is reproducible from its seed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from hetmap.errors import DataError

Augment = Callable[[Tensor, Tensor, torch.Generator], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class Split:
    """Inputs (N, C, H, W; uint8 images or float) and targets of one split."""

    x: Tensor
    y: Tensor

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise DataError(f"split has {len(self.x)} inputs but {len(self.y)} targets")

    def __len__(self) -> int:
        return len(self.x)

    def take(self, index: Tensor | np.ndarray) -> Split:
        index = torch.as_tensor(index, dtype=torch.long)
        return Split(self.x[index], self.y[index])


class SplitDataset(Dataset):
    def __init__(self, split: Split) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.split.x[i], self.split.y[i]


class ImageCollate:
    """Stack, scale uint8 to [0, 1], augment (train only), normalise per channel."""

    def __init__(self, mean: Sequence[float], std: Sequence[float],
                 augment: Augment | None = None, seed: int = 0) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.augment = augment
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, samples: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
        x = torch.stack([s[0] for s in samples])
        y = torch.stack([s[1] for s in samples])
        return self.transform(x, y)

    def transform(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        if self.augment is not None:
            x, y = self.augment(x, y, self.generator)
        return (x - self.mean) / self.std, y


def random_crop_flip(pad: int = 4, flip: bool = True) -> Augment:
    """Random crop after zero padding, and random horizontal flip (classification only)."""

    def augment(x: Tensor, y: Tensor, g: torch.Generator) -> tuple[Tensor, Tensor]:
        n, _, h, w = x.shape
        if pad > 0:
            xp = F.pad(x, (pad, pad, pad, pad))
            off = torch.randint(0, 2 * pad + 1, (n, 2), generator=g)
            rows = (off[:, :1] + torch.arange(h)).view(n, 1, h, 1)
            cols = (off[:, 1:] + torch.arange(w)).view(n, 1, 1, w)
            x = xp[torch.arange(n).view(n, 1, 1, 1), torch.arange(x.shape[1]).view(1, -1, 1, 1),
                   rows, cols]
        if flip:
            mask = (torch.rand(n, generator=g) < 0.5).view(n, 1, 1, 1)
            x = torch.where(mask, x.flip(-1), x)
        return x, y

    return augment


def stratified_split(labels: np.ndarray, fractions: Sequence[float],
                     seed: int) -> list[np.ndarray]:
    """Index sets with `fractions` of every class each (the rest goes last), reproducible."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        bounds = np.cumsum([round(f * len(idx)) for f in fractions])
        for k, chunk in enumerate(np.split(idx, bounds)):
            parts[k].append(chunk)
    return [rng.permutation(np.concatenate(p)) for p in parts]


def make_loader(dataset: Dataset, batch_size: int, *, train: bool, seed: int,
                collate: Callable | None = None) -> DataLoader:
    gen = torch.Generator().manual_seed(seed) if train else None
    # a last training batch of one sample would break BatchNorm: drop the remainder
    drop = train and len(dataset) > batch_size  # type: ignore[arg-type]
    return DataLoader(dataset, batch_size=batch_size, shuffle=train, generator=gen,
                      collate_fn=collate, drop_last=drop)
