"""Every bad input issue 19 lists gets a HetmapError that says what is wrong and how to fix it."""

from __future__ import annotations

import pytest
import torch
from tests.models_for_tests import TinyMLP
from torch import nn

from hetmap import adapt, build_supernet, scan
from hetmap.adaptation import AdaptPolicy
from hetmap.errors import ConfigError, HetmapError, InputShapeError, ModelError


def mlp() -> nn.Module:  # 8 -> 16 -> 4: no layer keeps its input's shape
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def meta_model() -> nn.Module:
    with torch.device("meta"):
        return mlp()


def test_adapt_with_a_wrong_shape_input() -> None:
    with pytest.raises(InputShapeError, match="failed on the example input .*tensor of shape "
                                              r"\(2, 5\).*Pass an input the model accepts"):
        adapt(mlp(), torch.randn(2, 5))


@pytest.mark.parametrize("entry", ["adapt", "build_supernet", "scan"])
def test_a_meta_device_model(entry: str) -> None:
    call = {"adapt": adapt, "build_supernet": build_supernet, "scan": scan}[entry]
    with pytest.raises(ModelError, match=f"{entry}: Sequential has tensors on the meta device"
                                         ".*Load real weights first"):
        call(meta_model(), torch.randn(2, 8))


def test_candidates_as_a_bare_string() -> None:
    with pytest.raises(ConfigError, match=r"got the string 'fp32'; write candidates=\['fp32'\]"):
        build_supernet(mlp(), torch.randn(2, 8), candidates="fp32")


def test_only_skip_on_a_net_with_nothing_skippable() -> None:
    with pytest.raises(ConfigError, match=r"'skip' is only offered on layers whose output keeps "
                                          r".*add a computing candidate such as 'fp32'"):
        build_supernet(mlp(), torch.randn(2, 8), candidates=("skip",))


def test_exclude_patterns_that_match_nothing() -> None:
    with pytest.raises(ConfigError, match=r"exclude pattern\(s\) \['no_such_layer'\] match no "
                                          "layer of the model; layer names are module paths "
                                          "such as 0, 2"):
        build_supernet(mlp(), torch.randn(2, 8), exclude=("0", "no_such_layer"))
    with pytest.raises(ConfigError, match=r"AdaptPolicy.exclude pattern\(s\) \['fc9\*'\] match "
                                          "no layer"):
        adapt(TinyMLP(), torch.randn(2, 8), policy=AdaptPolicy(exclude=("fc9*",)))
    with pytest.raises(ConfigError, match="got the string 'fc1'"):
        build_supernet(TinyMLP(), torch.randn(2, 8), exclude="fc1")
    sn = build_supernet(mlp(), torch.randn(2, 8), exclude=("0",))  # a matching one still works
    assert sn.layer_names == ("2",)


@pytest.mark.parametrize("tile", [(64.7, 64), (64, 64.0), ("64", 64), (True, 64)])
@pytest.mark.parametrize("entry", ["adapt", "build_supernet", "scan"])
def test_tiles_must_be_whole_numbers(entry: str, tile: tuple) -> None:
    call = {"adapt": adapt, "build_supernet": build_supernet, "scan": scan}[entry]
    with pytest.raises(ConfigError, match="tile (rows|cols) must be a whole number.*e.g. "
                                          r"\(512, 512\)"):
        call(mlp(), torch.randn(2, 8), tile=tile)


@pytest.mark.parametrize("tile", [(0, 64), (64, -8)])
@pytest.mark.parametrize("entry", ["adapt", "build_supernet", "scan"])
def test_tiles_must_be_positive(entry: str, tile: tuple) -> None:
    call = {"adapt": adapt, "build_supernet": build_supernet, "scan": scan}[entry]
    with pytest.raises(ConfigError, match="tile sizes must be positive"):
        call(mlp(), torch.randn(2, 8), tile=tile)


@pytest.mark.parametrize("tile", [64, (64, 64, 64), "64x64"])
def test_a_tile_is_a_pair(tile: object) -> None:
    with pytest.raises(ConfigError, match=r"tile must be a pair \(rows, cols\)"):
        scan(mlp(), torch.randn(2, 8), tile=tile)  # type: ignore[arg-type]


def test_numpy_integers_are_whole_numbers() -> None:
    np = pytest.importorskip("numpy")
    inv = scan(mlp(), torch.randn(2, 8), tile=(np.int64(64), 32))
    assert inv.tile == (64, 32) and all(type(v) is int for v in inv.tile)


def test_adapt_of_a_model_with_no_mappable_layer() -> None:
    with pytest.raises(ModelError, match=r"Sequential has no mappable layer .*nothing to map or "
                                         "widen"):
        adapt(nn.Sequential(nn.ReLU(), nn.Flatten()), torch.randn(2, 8))


def test_every_error_is_a_hetmap_error() -> None:
    for err in (ConfigError, ModelError, InputShapeError):
        assert issubclass(err, HetmapError)
