"""The fast analog engine against aihwkit-lightning (the reference), layer by layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hetmap.candidates.analog import AnalogCandidate, AnalogConfig
from hetmap.layers import LayerSpec

QUIET = AnalogConfig(out_noise=0.0, weight_noise=0.0, tile_rows=20, init_from_data=2, fuse=False)

LAYERS = {
    "linear_split": (lambda: nn.Linear(50, 7), (4, 3, 50)),
    "linear_one_tile": (lambda: nn.Linear(12, 5), (6, 12)),
    "conv2d_split_partial": (lambda: nn.Conv2d(5, 6, 3, padding=1, stride=2), (3, 5, 9, 9)),
    # ten outputs: the range gradient reads the output gradient channels-last
    "conv2d_wide_split": (lambda: nn.Conv2d(5, 10, 3, padding=1), (2, 5, 6, 6)),
    # 1x1: the unfolded range gradient is the folded one
    "conv2d_pointwise_split": (lambda: nn.Conv2d(30, 6, 1), (2, 30, 5, 5)),
    "conv2d_one_tile": (lambda: nn.Conv2d(2, 4, 3, padding=1), (3, 2, 7, 7)),
    "conv2d_grouped_split": (lambda: nn.Conv2d(8, 6, 3, padding=1, groups=2), (2, 8, 6, 6)),
    "conv2d_depthwise": (lambda: nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False),
                         (3, 4, 6, 6)),
    "conv1d_split": (lambda: nn.Conv1d(7, 6, 3, padding=2, dilation=2), (3, 7, 11)),
}


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach() - b.detach()).norm() / b.detach().norm().clamp_min(1e-30))


def _step(cand: AnalogCandidate, x: torch.Tensor, layer: nn.Module) -> list[torch.Tensor]:
    layer.zero_grad(set_to_none=True)
    if cand.input_range is not None:
        cand.input_range.grad = None
    x = x.clone().requires_grad_(True)
    y = cand(x, layer.weight, layer.bias)
    gy = torch.randn(y.shape, dtype=y.dtype, generator=torch.Generator().manual_seed(1))
    (y * gy).sum().backward()
    out = [y.detach(), x.grad, layer.weight.grad]
    if cand.input_range is not None:
        out += [cand.input_range.grad, cand.input_range.detach().clone()]
    return out


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("update", [{}, {"out_bound": 0.4}, {"inp_res": -1.0, "out_res": -1.0}])
def test_noise_off_matches_lightning(name: str, update: dict) -> None:
    """Outputs, input/weight/input-range gradients and range init equal lightning's (float64
    so that ADC rounding cannot flip on summation order). out_bound 0.4 forces clipping."""
    torch.manual_seed(0)
    make, shape = LAYERS[name]
    layer = make().double()
    x = torch.randn(shape, dtype=torch.float64) * 2
    spec = LayerSpec.from_module(layer)
    results = []
    for backend in ("hetmap", "lightning"):
        cfg = QUIET.model_copy(update=dict(backend=backend, **update))
        cand = AnalogCandidate("analog", spec, cfg).double().train()
        _step(cand, x, layer)  # first call initialises the range from data
        results.append(_step(cand, x * 1.5, layer))
    assert (cand.n_slices > 1) == ("split" in name)
    for got, ref in zip(*results):
        assert _rel(got, ref) < 1e-5


def test_lightning_backend_equals_lightning_modules() -> None:
    """The reference backend (shared weight) reproduces lightning's own layers."""
    from hetmap.candidates.analog.lightning_backend import _torch_linear

    _torch_linear()
    from aihwkit_lightning.nn import AnalogConv2d, AnalogLinear

    torch.manual_seed(0)
    cfg = QUIET.model_copy(update={"backend": "lightning", "clip_type": "layer_gaussian"})
    for layer, x in [(nn.Linear(30, 4), torch.randn(5, 30)),
                     (nn.Conv2d(3, 4, 3, padding=1), torch.randn(2, 3, 6, 6))]:
        layer = layer.double()
        x = x.double()
        cls = AnalogLinear if isinstance(layer, nn.Linear) else AnalogConv2d
        ref = cls.from_digital(layer, cfg.to_lightning()).double().train()
        ref.clip_weights()
        cand = AnalogCandidate("analog", LayerSpec.from_module(layer), cfg).double().train()
        for _ in range(2):
            y_ref = ref(x)
            y = cand(x, layer.weight, layer.bias)
            assert _rel(y.detach(), y_ref.detach()) < 1e-10
        assert torch.allclose(cand.input_range.detach(), ref.input_range.detach())


def test_ideal_config_equals_fp32_layer() -> None:
    torch.manual_seed(0)
    for name in ("linear_split", "conv2d_grouped_split", "conv1d_split"):
        make, shape = LAYERS[name]
        layer = make()
        x = torch.randn(shape)
        for backend in ("hetmap", "lightning"):
            cand = AnalogCandidate("analog", LayerSpec.from_module(layer),
                                   AnalogConfig.ideal(backend=backend, tile_rows=20)).train()
            assert _rel(cand(x, layer.weight, layer.bias), layer(x)) < 1e-4


def _noise_stats(cfg: AnalogConfig, n: int = 30) -> tuple[float, float]:
    torch.manual_seed(0)
    layer = nn.Conv2d(6, 8, 3, padding=1)
    x = torch.randn(4, 6, 5, 5)
    cand = AnalogCandidate("analog", LayerSpec.from_module(layer), cfg)
    cand.observe(x, layer.weight)
    with torch.no_grad():
        clean = cand.eval()(x, layer.weight, layer.bias)
        cand.train()
        diffs = torch.stack([cand(x, layer.weight, layer.bias) - clean for _ in range(n)])
    return float(diffs.mean()), float(diffs.std())


@pytest.mark.parametrize("kind", ["out", "weight_pc", "weight"])
def test_noise_statistics_match_lightning(kind: str) -> None:
    base = AnalogConfig(inp_res=-1, out_res=-1, out_bound=0, clip_type="none", tile_rows=30,
                        init_from_data=1, out_noise=0.0, weight_noise=0.0, fuse=False)
    update = {"out": {"out_noise": 0.1},
              "weight_pc": {"weight_noise": 0.05},
              "weight": {"weight_noise": 0.05, "weight_noise_type": "add_normal"}}[kind]
    stats = [_noise_stats(base.model_copy(update=dict(backend=b, **update)))
             for b in ("hetmap", "lightning")]
    (m0, s0), (m1, s1) = stats
    assert s0 > 0 and abs(s0 - s1) / s1 < 0.05
    assert abs(m0 - m1) < 0.05 * s1


def test_noise_scale_ramp() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(16, 4)
    x = torch.randn(8, 16)
    cand = AnalogCandidate("analog", LayerSpec.from_module(layer), AnalogConfig()).train()
    cand.set_noise_scale(0.0)
    assert torch.equal(cand(x, layer.weight, layer.bias), layer(x))
    with pytest.raises(ValueError):
        cand.set_noise_scale(1.5)
    cand.set_noise_scale(0.5)
    y = cand(x, layer.weight, layer.bias)
    assert y.shape == (8, 4) and not torch.equal(y, layer(x))


def test_fused_kernels_match_lightning() -> None:
    """The torch.compile'd element-wise steps keep lightning's numerics (incl. the exact
    unfolded range gradient with clipped outputs and a split conv)."""
    torch.manual_seed(0)
    make, shape = LAYERS["conv2d_split_partial"]
    layer = make().double()
    x = torch.randn(shape, dtype=torch.float64) * 2
    results = []
    for backend, fuse in (("hetmap", True), ("lightning", False)):
        cfg = QUIET.model_copy(update={"backend": backend, "fuse": fuse, "out_bound": 0.4})
        cand = AnalogCandidate("analog", LayerSpec.from_module(layer), cfg).double().train()
        _step(cand, x, layer)
        results.append(_step(cand, x * 1.5, layer))
    for got, ref in zip(*results):
        assert _rel(got, ref) < 1e-5


def test_folded_range_gradient_is_per_element() -> None:
    """range_grad='folded' equals lightning exactly for 1x1 convs (no overlapping patches)
    and keeps outputs and weight/input gradients identical for 3x3 ones."""
    torch.manual_seed(0)
    x = torch.randn(2, 6, 5, 5, dtype=torch.float64) * 2
    for layer, same_range_grad in ((nn.Conv2d(6, 4, 1), True), (nn.Conv2d(6, 4, 3), False)):
        layer = layer.double()
        results = []
        for backend, mode in (("hetmap", "folded"), ("lightning", "unfolded")):
            cfg = QUIET.model_copy(update={"backend": backend, "range_grad": mode})
            cand = AnalogCandidate("analog", LayerSpec.from_module(layer), cfg).double().train()
            _step(cand, x, layer)
            results.append(_step(cand, x * 1.5, layer))
        (y, gx, gw, gr, r), (y1, gx1, gw1, gr1, r1) = results
        for got, ref in ((y, y1), (gx, gx1), (gw, gw1), (r, r1)):
            assert _rel(got, ref) < 1e-5
        assert (_rel(gr, gr1) < 1e-5) == same_range_grad
