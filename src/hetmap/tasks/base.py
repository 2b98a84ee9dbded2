"""The Task protocol: everything training, search and evaluation need to know about a
problem, so that they never special-case classification, segmentation or QA.

A batch is always `(inputs, targets)`: inputs a tensor or a dict of tensors (Hugging Face
keyword inputs), targets a tensor. Three splits, one rule: train (weights, BatchNorm
calibration), validation (every selection: stage-3 ranking, search, the competing mappers'
decisions, early stopping) and test (reporting only). The test loader is sealed
(`SealedLoader`): iterating it outside `final_scoring()` raises ProtocolError, so no
selection step can read it by accident."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from hetmap.errors import ProtocolError
from hetmap.inputs import ModelInput, to_device

Batch = tuple[ModelInput, Tensor]

_FINAL: contextvars.ContextVar[str | None] = contextvars.ContextVar("hetmap_final_scoring",
                                                                     default=None)


@contextmanager
def final_scoring(purpose: str = "final scoring") -> Iterator[None]:
    """Open the test split for reporting; selection code never runs inside this block."""
    token = _FINAL.set(purpose)
    try:
        yield
    finally:
        _FINAL.reset(token)


def final_scoring_active() -> bool:
    """Whether the caller is inside `final_scoring()`."""
    return _FINAL.get() is not None


class SealedLoader:
    """A test-split loader that refuses iteration outside `final_scoring()`; everything else
    (len, dataset, batch_size) is the wrapped DataLoader's."""

    def __init__(self, loader: DataLoader, split: str = "test") -> None:
        self.loader = loader
        self.split = split

    def __iter__(self) -> Iterator[Any]:
        if not final_scoring_active():
            raise ProtocolError(
                f"the {self.split} split is for reporting only and was read before final "
                "scoring; select on the validation split (loaders.val) and read the test "
                "split inside `with hetmap.tasks.final_scoring():`")
        return iter(self.loader)

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str) -> Any:
        if name == "loader":  # not yet set (e.g. during unpickling)
            raise AttributeError(name)
        return getattr(self.loader, name)


class Loaders(NamedTuple):
    """train: shuffled, augmented; val: selection; test: sealed, reporting only."""

    train: DataLoader
    val: DataLoader
    test: SealedLoader

    @classmethod
    def sealed(cls, train: DataLoader, val: DataLoader, test: DataLoader) -> Loaders:
        return cls(train, val, test if isinstance(test, SealedLoader) else SealedLoader(test))


@dataclass(frozen=True)
class TrainDefaults:
    """The task's own full-precision training recipe, used by `pretrain` unless overridden."""

    epochs: int = 10
    lr: float = 0.1
    batch_size: int = 128
    optimizer: str = "sgd"  # "sgd" (momentum 0.9, nesterov) or "adamw"
    weight_decay: float = 5e-4


@runtime_checkable
class Task(Protocol):
    name: str
    metric_name: str  # "accuracy", "mIoU", "F1": all in percent, higher is better
    defaults: TrainDefaults

    def loaders(self, batch_size: int = 128, seed: int = 0) -> Loaders:
        """Train (shuffled, augmented), val and test loaders; deterministic for a seed."""
        ...

    def build_model(self) -> nn.Module:
        """A fresh, untrained model for this task (seed torch before calling)."""
        ...

    def loss(self, output: Any, target: Tensor) -> Tensor:
        """Scalar training loss from a raw model output and the batch targets."""
        ...

    def metric(self, model: nn.Module, loader: DataLoader,
               device: torch.device | str = "cpu") -> float:
        """Score of `model` on `loader` in percent, higher is better; leaves the model's
        train/eval mode as it found it."""
        ...

    def example_input(self, batch_size: int = 1) -> ModelInput:
        """A real input batch (as fed to the model), for scanning and tracing."""
        ...


def move_batch(batch: Batch, device: torch.device | str) -> Batch:
    inputs, targets = batch
    return to_device(inputs, device), targets.to(device)


class eval_mode:  # lower case: used like torch.no_grad
    """Evaluate without gradients in eval mode, then restore the model's previous mode."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.was_training = model.training

    def __enter__(self) -> nn.Module:
        self._grad = torch.no_grad()
        self._grad.__enter__()
        self.model.eval()
        return self.model

    def __exit__(self, *exc: object) -> None:
        self.model.train(self.was_training)
        self._grad.__exit__(*exc)
