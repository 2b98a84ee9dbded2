"""Image tasks held in memory: classification (accuracy) and semantic segmentation (mIoU)
share one implementation that differs only in model, metric and augmentation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from hetmap.inputs import call_model, first_output_tensor
from hetmap.tasks.base import Loaders, TrainDefaults, eval_mode, move_batch
from hetmap.tasks.data import Augment, ImageCollate, Split, SplitDataset, make_loader

IGNORE_INDEX = 255  # segmentation pixels that count neither in the loss nor in mIoU

MetricFn = Callable[[nn.Module, DataLoader, "torch.device | str"], float]


def accuracy(model: nn.Module, loader: DataLoader, device: torch.device | str = "cpu") -> float:
    """Top-1 accuracy in percent."""
    correct = total = 0
    with eval_mode(model):
        for batch in loader:
            x, y = move_batch(batch, device)
            pred = first_output_tensor(call_model(model, x)).argmax(1)
            correct += int((pred == y).sum())
            total += y.numel()
    return 100.0 * correct / max(total, 1)


def confusion_matrix(model: nn.Module, loader: DataLoader, num_classes: int,
                     device: torch.device | str = "cpu") -> Tensor:
    """(true, predicted) pixel counts over a whole loader, ignoring IGNORE_INDEX pixels."""
    cm = torch.zeros(num_classes, num_classes, dtype=torch.long)
    with eval_mode(model):
        for batch in loader:
            x, y = move_batch(batch, device)
            pred = first_output_tensor(call_model(model, x)).argmax(1)
            keep = y != IGNORE_INDEX
            idx = y[keep].long() * num_classes + pred[keep].long()
            cm += torch.bincount(idx.cpu(), minlength=num_classes ** 2).view(num_classes, -1)
    return cm


def iou_from_confusion(cm: Tensor) -> Tensor:
    """Per-class IoU; NaN for classes absent from both truth and prediction."""
    tp = cm.diag().double()
    union = cm.sum(0).double() + cm.sum(1).double() - tp
    return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))


def mean_iou(model: nn.Module, loader: DataLoader, num_classes: int,
             device: torch.device | str = "cpu") -> float:
    """Dataset-level mIoU in percent over the classes present (background included)."""
    iou = iou_from_confusion(confusion_matrix(model, loader, num_classes, device))
    return 100.0 * float(iou[~iou.isnan()].mean()) if (~iou.isnan()).any() else 0.0


@dataclass
class ImageTask:
    """A classification or segmentation task over in-memory image splits.

    `kind` is "classification" (targets: class per image) or "segmentation" (targets:
    class per pixel, IGNORE_INDEX for unlabelled pixels)."""

    name: str
    kind: str
    train_split: Split = field(repr=False)
    val_split: Split = field(repr=False)
    test_split: Split = field(repr=False)
    num_classes: int
    model_factory: Callable[[], nn.Module] = field(repr=False)
    mean: Sequence[float]
    std: Sequence[float]
    augment: Augment | None = field(default=None, repr=False)
    defaults: TrainDefaults = field(default_factory=TrainDefaults)
    class_names: list[str] | None = None

    @property
    def metric_name(self) -> str:
        return "accuracy" if self.kind == "classification" else "mIoU"

    def _collate(self, augment: Augment | None, seed: int) -> ImageCollate:
        return ImageCollate(self.mean, self.std, augment, seed)

    def loaders(self, batch_size: int = 128, seed: int = 0) -> Loaders:
        def plain(split: Split) -> DataLoader:
            return make_loader(SplitDataset(split), batch_size, train=False, seed=seed,
                               collate=self._collate(None, seed))

        train = make_loader(SplitDataset(self.train_split), batch_size, train=True, seed=seed,
                            collate=self._collate(self.augment, seed + 1))
        return Loaders.sealed(train, plain(self.val_split), plain(self.test_split))

    def build_model(self) -> nn.Module:
        return self.model_factory()

    def loss(self, output: Any, target: Tensor) -> Tensor:
        return F.cross_entropy(first_output_tensor(output), target.long(),
                               ignore_index=IGNORE_INDEX)

    def metric(self, model: nn.Module, loader: DataLoader,
               device: torch.device | str = "cpu") -> float:
        if self.kind == "classification":
            return accuracy(model, loader, device)
        return mean_iou(model, loader, self.num_classes, device)

    def example_input(self, batch_size: int = 1) -> Tensor:
        n = min(batch_size, len(self.train_split))
        x, _ = self._collate(None, 0).transform(self.train_split.x[:n], self.train_split.y[:n])
        if n < batch_size:  # tiny data set: repeat to the requested batch size
            x = x.repeat((batch_size + n - 1) // n, 1, 1, 1)[:batch_size]
        return x
