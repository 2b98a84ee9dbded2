"""Model factories by name, so configs and tasks can say `model: resnet20` instead of code."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from hetmap.models.fcn import fcn_resnet
from hetmap.models.mobilenetv2_cifar import mobilenetv2_cifar
from hetmap.models.resnet_cifar import resnet_cifar
from hetmap.models.small_cnn import small_cnn
from hetmap.registry import Registry

ModelFactory = Callable[..., nn.Module]


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


MODELS: Registry[ModelFactory] = Registry("model", {
    **{f"resnet{d}": partial(resnet_cifar, d) for d in (8, 20, 32, 56)},
    **{f"fcn_resnet{d}": partial(fcn_resnet, depth=d) for d in (8, 20)},
    "mobilenetv2": mobilenetv2_cifar,
    "small_cnn": small_cnn,
}, key=_key)


def register_model(name: str, factory: ModelFactory, *, replace: bool = False) -> None:
    MODELS.register(name, factory, replace=replace)


def model_names() -> tuple[str, ...]:
    return tuple(sorted(MODELS.names()))


def build_model(name: str, **kwargs: object) -> nn.Module:
    """Build a registered model; keyword arguments go to its factory (num_classes, ...)."""
    return MODELS.build(name, **kwargs)
