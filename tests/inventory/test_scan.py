from __future__ import annotations

import json

import pytest
import torch
from tests.models_for_tests import TinyTransformer, TwiceCalled, tiny_bert_qa
from torch import nn

from hetmap import InputShapeError, Inventory, ModelError, scan
from hetmap.errors import ConfigError
from hetmap.models import mobilenetv2_cifar, resnet_cifar
from hetmap.models.mobilenetv2_cifar import CIFAR_SETTINGS, _round


def conv_macs(h: int, w: int, cout: int, cin_per_group: int, k: int) -> int:
    return h * w * cout * cin_per_group * k * k


def resnet20_macs() -> int:
    total = conv_macs(32, 32, 16, 3, 3)  # stem
    size, cin = 32, 16
    for stage, cout in enumerate((16, 32, 64)):
        for block in range(3):
            stride = 2 if stage > 0 and block == 0 else 1
            size_out = size // stride
            total += conv_macs(size_out, size_out, cout, cin, 3)  # conv1
            total += conv_macs(size_out, size_out, cout, cout, 3)  # conv2
            if stride != 1 or cin != cout:
                total += conv_macs(size_out, size_out, cout, cin, 1)  # shortcut
            size, cin = size_out, cout
    return total + 64 * 10


def mobilenetv2_macs() -> int:
    size, cin = 32, 32
    total = conv_macs(32, 32, 32, 3, 3)
    for t, c, n, s in CIFAR_SETTINGS:
        cout = _round(c)
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            if t != 1:
                total += conv_macs(size, size, hidden, cin, 1)
            size = size // stride
            total += conv_macs(size, size, hidden, 1, 3)  # depthwise
            total += conv_macs(size, size, cout, hidden, 1)
            cin = cout
    total += conv_macs(size, size, 1280, cin, 1)
    return total + 1280 * 10


def test_resnet20_macs_match_analytic_count() -> None:
    inv = scan(resnet_cifar(20), torch.randn(2, 3, 32, 32), tile=(512, 512))
    assert inv.total_macs == resnet20_macs() == 40_813_184
    assert len(inv) == 22  # 19 convs + 2 shortcuts + fc
    first = inv["conv1"]
    assert (first.rows, first.cols, first.tiles) == (27, 16, 1)
    assert first.tile_utilisation == pytest.approx(27 * 16 / 512**2)


def test_mobilenetv2_depthwise_rows_and_macs() -> None:
    inv = scan(mobilenetv2_cifar(), torch.randn(1, 3, 32, 32))
    assert inv.total_macs == mobilenetv2_macs()
    dw = [layer for layer in inv if layer.spec.groups > 1]
    assert dw and all(layer.rows == 9 and layer.spec.groups == layer.cols for layer in dw)


def test_bert_qa_macs_and_names() -> None:
    model, cfg = tiny_bert_qa()
    batch, seq = 2, 12
    inputs = {"input_ids": torch.randint(0, 100, (batch, seq)),
              "attention_mask": torch.ones(batch, seq, dtype=torch.long)}
    inv = scan(model, inputs, tile=(64, 64))
    h, i = cfg.hidden_size, cfg.intermediate_size
    per_layer = 4 * seq * h * h + 2 * seq * h * i
    assert inv.mappable_macs == cfg.num_hidden_layers * per_layer + seq * h * 2
    attention = 2 * seq * seq * h  # scores q k^T and their weighted sum of v, per layer
    assert inv.total_macs == inv.mappable_macs + cfg.num_hidden_layers * attention
    assert "bert.encoder.layer.0.attention.self.query" in inv
    assert inv["qa_outputs"].cols == 2


def test_multihead_attention_projections_are_mappable() -> None:
    model = TinyTransformer()
    seq, batch = 5, 3
    inv = scan(model, torch.randn(batch, seq, 6))
    names = {layer.name for layer in inv}
    assert {"attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.out_proj"} <= names
    expected = seq * (6 * 16 + 4 * 16 * 16 + 16 * 3)
    assert inv.mappable_macs == expected
    assert inv.total_macs == expected + 2 * seq * seq * 16
    assert isinstance(model.attn, nn.MultiheadAttention)  # the user's model is untouched


def test_module_called_twice_counts_twice() -> None:
    inv = scan(TwiceCalled(), torch.randn(4, 10))
    assert inv["shared"].calls == 2
    assert inv["shared"].macs == 2 * 100
    assert inv.total_macs == 200 + 20


def test_hf_conv1d_is_scanned_as_linear() -> None:
    from transformers.pytorch_utils import Conv1D

    model = nn.Sequential(Conv1D(12, 5), nn.ReLU(), nn.Linear(12, 3))
    inv = scan(model, torch.randn(2, 5))
    assert inv["0"].weight_shape == (12, 5)
    assert inv.total_macs == 5 * 12 + 12 * 3


def test_tiles_split_rows_and_columns() -> None:
    inv = scan(nn.Sequential(nn.Linear(300, 700)), torch.randn(1, 300), tile=(256, 256))
    layer = inv["0"]
    assert layer.tiles == 2 * 3
    assert layer.tile_utilisation == pytest.approx(300 * 700 / (6 * 256 * 256))


def test_skippable_only_where_shape_is_kept() -> None:
    inv = scan(resnet_cifar(8), torch.randn(1, 3, 32, 32))
    assert inv["layer1.0.conv2"].skippable
    assert not inv["conv1"].skippable  # 3 -> 16 channels
    assert not inv["layer2.0.conv1"].skippable  # stride 2


def test_json_round_trip_and_table() -> None:
    inv = scan(resnet_cifar(8), torch.randn(1, 3, 32, 32))
    again = Inventory.from_json(inv.to_json())
    assert again == inv and again.fingerprint == inv.fingerprint
    assert json.loads(inv.to_json())["total_macs"] == inv.total_macs
    text = str(inv)
    assert "layer1.0.conv1" in text and f"{inv.total_macs:,}" in text


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ModelError, match="no mappable layer"):
        scan(nn.Sequential(nn.ReLU()), torch.randn(1, 3))
    with pytest.raises(InputShapeError, match="example input"):
        scan(resnet_cifar(8), torch.randn(1, 5, 32, 32))
    with pytest.raises(ConfigError, match="positive"):
        scan(resnet_cifar(8), torch.randn(1, 3, 32, 32), tile=(0, 256))
