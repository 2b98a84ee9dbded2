"""Model factories by name, so configs and tasks can say `model: resnet20` instead of code."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from hetmap.errors import ConfigError
from hetmap.models.fcn import fcn_resnet
from hetmap.models.mobilenetv2_cifar import mobilenetv2_cifar
from hetmap.models.resnet_cifar import resnet_cifar
from hetmap.models.small_cnn import small_cnn

ModelFactory = Callable[..., nn.Module]

_MODELS: dict[str, ModelFactory] = {
    **{f"resnet{d}": partial(resnet_cifar, d) for d in (8, 20, 32, 56)},
    **{f"fcn_resnet{d}": partial(fcn_resnet, depth=d) for d in (8, 20)},
    "mobilenetv2": mobilenetv2_cifar,
    "small_cnn": small_cnn,
}


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def register_model(name: str, factory: ModelFactory, *, overwrite: bool = False) -> None:
    key = _key(name)
    if key in _MODELS and not overwrite:
        raise ConfigError(f"model {name!r} is already registered; pass overwrite=True to replace")
    _MODELS[key] = factory


def model_names() -> list[str]:
    return sorted(_MODELS)


def build_model(name: str, **kwargs: object) -> nn.Module:
    """Build a registered model; keyword arguments go to its factory (num_classes, ...)."""
    try:
        factory = _MODELS[_key(name)]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; registered models: "
                          f"{', '.join(model_names())}") from None
    try:
        return factory(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"model {name!r} does not accept these options "
                          f"{sorted(kwargs)}: {exc}") from None
