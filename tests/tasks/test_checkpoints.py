from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn

from hetmap.errors import DataError, ModelError
from hetmap.models import resnet_cifar, small_cnn
from hetmap.tasks import load_checkpoint, read_metadata, read_state_dict, save_checkpoint


def test_safetensors_round_trip_with_metadata(tmp_path: Path) -> None:
    model = resnet_cifar(8)
    model.eval()
    path = save_checkpoint(model, tmp_path / "sub" / "r8.safetensors", {"task": "x", "val": 97.5})
    assert path.read_bytes()[8:9] == b"{"  # a safetensors header, not a zip/pickle
    assert [p.name for p in path.parent.iterdir()] == ["r8.safetensors"]  # no temp left
    fresh = load_checkpoint(resnet_cifar(8), path).eval()
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(fresh(x), model(x))
    assert torch.equal(fresh.bn1.running_var, model.bn1.running_var)
    assert read_metadata(path) == {"task": "x", "val": "97.5"}


def test_tied_weights_can_be_saved(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Embedding(5, 3), nn.Linear(3, 5, bias=False))
    model[1].weight = model[0].weight
    load_checkpoint(model, save_checkpoint(model, tmp_path / "tied.safetensors"))


def test_plain_pt_state_dicts_load_with_weights_only(tmp_path: Path) -> None:
    model = small_cnn()
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, tmp_path / "m.pt")
    fresh = load_checkpoint(small_cnn(), tmp_path / "m.pt")
    assert torch.equal(fresh.fc.weight, model.fc.weight)


class _Evil:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (os.makedirs, (self.target,))


def test_pickles_that_run_code_are_refused(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    torch.save({"w": torch.ones(1), "x": _Evil(str(target))}, tmp_path / "evil.pt")
    with pytest.raises(DataError, match="safely"):
        read_state_dict(tmp_path / "evil.pt")
    assert not target.exists()


def test_mismatches_name_the_problem(tmp_path: Path) -> None:
    path = save_checkpoint(small_cnn(num_classes=10), tmp_path / "a.safetensors")
    with pytest.raises(ModelError, match="does not fit"):
        load_checkpoint(small_cnn(num_classes=3), path)
    with pytest.raises(ModelError, match="missing"):
        load_checkpoint(resnet_cifar(8, in_channels=1), path)
    load_checkpoint(nn.Sequential(), path, strict=False)
    with pytest.raises(DataError, match="does not exist"):
        load_checkpoint(small_cnn(), tmp_path / "none.safetensors")
