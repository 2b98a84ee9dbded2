"""Recurrent layers (their gate matmuls) and transposed convolutions as choice layers:
exact fp32 path, every candidate on the shared weights, MACs and bytes counted once."""

from __future__ import annotations

import pytest
import torch
from tests.coverage_models import gru, lstm, unet
from torch import nn

from hetmap import Mapping, build_supernet
from hetmap.candidates import make_candidate
from hetmap.candidates.analog import AnalogConfig
from hetmap.inventory.work import countable_kernels
from hetmap.layers import LayerSpec

EAGER = AnalogConfig(fuse=False)
TRANSPOSED = [
    (nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1), (2, 4, 5, 5)),
    (nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 1), padding=(2, 0), dilation=(1, 2),
                        groups=2), (2, 4, 5, 7)),
    (nn.ConvTranspose1d(4, 8, 5, stride=3, padding=4, groups=4, bias=False), (2, 4, 9)),
]


@pytest.mark.parametrize("build", [lstm, gru, unet])
def test_fp32_path_is_bit_exact(build) -> None:
    model, x = build()
    sn = build_supernet(model, x, candidates=("fp32", "int8", "analog"), analog=EAGER)
    sn.use(Mapping.uniform(sn, "fp32")).eval()
    with countable_kernels(), torch.no_grad():  # PyTorch's own (oneDNN-free) RNN kernels
        assert torch.equal(sn(x), model(x))


@pytest.mark.parametrize("build", [lstm, unet])
def test_analog_training_step_reaches_every_weight(build) -> None:
    model, x = build()
    sn = build_supernet(model, x, candidates=("fp32", "analog"), analog=EAGER)
    sn.use(Mapping.uniform(sn, "analog")).train()
    sn(x).pow(2).mean().backward()
    for name, layer in sn.choice_layers():
        assert layer.weight.grad is not None and bool(layer.weight.grad.abs().sum() > 0), name
        ranges = layer.candidates["analog"].input_range
        assert ranges.grad is not None, name


def test_recurrent_and_transposed_layers_get_every_candidate() -> None:
    for build, layers in ((lstm, ("rnn.ih_l0", "rnn.hh_l1")), (unet, ("up",))):
        model, x = build()
        sn = build_supernet(model, x, candidates=("fp32", "int8", "analog"))
        for name in layers:
            assert sn.candidates(name) == ("fp32", "int8", "analog")


@pytest.mark.parametrize(("module", "shape"), TRANSPOSED)
def test_transposed_conv_is_the_conv_of_its_stuffed_input(module, shape) -> None:
    torch.manual_seed(0)
    x = torch.randn(shape)
    spec = LayerSpec.from_module(module)
    assert spec.weight_shape == tuple(module.weight.shape)
    assert type(spec.make_module()) is type(module)
    eq = spec.conv_equivalent()
    y = eq.forward(spec.stuff(x), spec.conv_weight(module.weight), module.bias)
    torch.testing.assert_close(y, module(x), rtol=0, atol=1e-5)
    assert torch.equal(spec.stuffing_module()(x), spec.stuff(x))
    assert torch.equal(spec.transposed_weight(spec.conv_weight(module.weight)), module.weight)
    assert spec.rows == eq.rows and spec.cols == eq.cols
    analog = make_candidate("analog", spec, analog=EAGER.ideal()).eval()
    torch.testing.assert_close(analog(x, module.weight, module.bias), module(x), rtol=0,
                               atol=1e-5)


def test_int8_transposed_conv_quantizes_per_output_channel() -> None:
    torch.manual_seed(0)
    module = nn.ConvTranspose2d(3, 5, 2, stride=2)
    with torch.no_grad():
        module.weight[:, 0] *= 100.0  # output channel 0 is large, the others small
    cand = make_candidate("int8", LayerSpec.from_module(module))
    q = cand.quantize_weight(module.weight.detach())
    assert q.shape == module.weight.shape
    for o in range(5):  # 127 levels per output channel: each channel keeps its resolution
        w, wq = module.weight.detach()[:, o], q[:, o]
        assert float((w - wq).abs().max()) <= float(w.abs().max()) / 127 * 0.51


def test_analog_layers_count_their_digital_bias_bytes() -> None:
    model, x = unet()
    sn = build_supernet(model, x, candidates=("fp32", "analog"), calibrate=False)
    biases = sum(info.spec.out_features for info in sn.inventory if info.spec.bias)
    obj = sn.objectives(Mapping.uniform(sn, "analog"))
    assert obj.digital_weight_bytes == biases * 4  # fp32 biases added after the tiles
    fp32 = sn.objectives(Mapping.uniform(sn, "fp32"))
    assert fp32.digital_weight_bytes == sum(info.params for info in sn.inventory) * 4
