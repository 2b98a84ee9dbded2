from __future__ import annotations

import pytest
import torch

from hetmap.errors import ConfigError
from hetmap.models import FCNResNet, SmallCNN, build_model, model_names, register_model


@pytest.mark.parametrize("name", ["resnet8", "resnet20", "small_cnn", "small-cnn"])
def test_classifiers_build_by_name(name: str) -> None:
    model = build_model(name, num_classes=7, in_channels=1)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 7)


def test_mobilenet_and_deep_resnets_are_registered() -> None:
    names = model_names()
    assert {"resnet8", "resnet20", "resnet32", "resnet56", "mobilenetv2", "small_cnn",
            "fcn_resnet8"} <= set(names)
    m = build_model("mobilenetv2", num_classes=5, width_mult=0.25)
    assert m(torch.randn(1, 3, 32, 32)).shape == (1, 5)
    assert len(build_model("resnet56").layer1) == 9  # (56 - 2) / 6 blocks per stage


def test_small_cnn_accepts_8x8_digits() -> None:
    assert SmallCNN(10, 1)(torch.randn(3, 1, 8, 8)).shape == (3, 10)


@pytest.mark.parametrize("size", [32, 28])
def test_fcn_predicts_every_pixel(size: int) -> None:
    model = build_model("fcn_resnet8", num_classes=11, in_channels=1)
    assert isinstance(model, FCNResNet)
    assert model(torch.randn(2, 1, size, size)).shape == (2, 11, size, size)
    # the backbone's classifier is dropped: every parameter is used by a forward pass
    out = model(torch.randn(1, 1, size, size)).sum()
    out.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_unknown_model_and_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="resnet20"):
        build_model("resnet9")
    with pytest.raises(ConfigError, match="colour"):
        build_model("resnet8", colour=3)


def test_register_model_refuses_silent_overwrite() -> None:
    with pytest.raises(ConfigError, match="already registered"):
        register_model("resnet8", SmallCNN)
    register_model("test_tiny_cnn", lambda **kw: SmallCNN(width=4, **kw))
    assert build_model("test-tiny-cnn", num_classes=3)(torch.randn(1, 1, 8, 8)).shape == (1, 3)
