from __future__ import annotations

import torch
from tests.adaptation.adapt_models import (
    ConvHead,
    InputResidual,
    NormInBetween,
    TokenBatchNorm,
    Untraceable,
    bert_input,
    small_bert_config,
)
from tests.models_for_tests import TinyTransformer, TwiceCalled
from torch import nn

from hetmap.adaptation import find_groups
from hetmap.inventory import normalize_model
from hetmap.models import mobilenetv2_cifar, resnet_cifar


def _by_producer(groups):
    return {g.producers[0]: g for g in groups}


def test_resnet_groups_are_the_inner_block_convs_only() -> None:
    groups, skipped, untraced = find_groups(resnet_cifar(20).eval(), torch.randn(1, 3, 16, 16))
    assert untraced == []
    inner = {f"layer{s}.{b}.conv1" for s in (1, 2, 3) for b in range(3)}
    assert set(_by_producer(groups)) == inner
    g = _by_producer(groups)["layer2.0.conv1"]
    assert g.consumers == ("layer2.0.conv2",) and g.middles == ("layer2.0.bn1",)
    assert (g.kind, g.width, g.found_by) == ("conv", 32, "fx")
    reasons = {s.layer: s.reason for s in skipped}
    assert "residual" in reasons["layer1.0.conv2"] and "residual" in reasons["conv1"]
    assert "residual" in reasons["layer2.0.shortcut.0"]
    assert "model output" in reasons["fc"]


def test_mobilenet_expansion_goes_through_the_depthwise_conv() -> None:
    groups, skipped, _ = find_groups(mobilenetv2_cifar().eval(), torch.randn(1, 3, 16, 16))
    by = _by_producer(groups)
    g = by["features.3.conv.0"]  # 24 -> 144 expand, dw 144, project 144 -> 24 (residual)
    assert g.consumers == ("features.3.conv.6",)
    assert g.middles == ("features.3.conv.1", "features.3.conv.3", "features.3.conv.4")
    assert g.width == 144
    # the stem feeds the first block's depthwise conv, then its projection
    assert by["features.0.0"].consumers == ("features.1.conv.3",)
    assert "features.1.conv.0" in by["features.0.0"].middles
    # the last 1x1 conv feeds the classifier through pool and flatten
    assert by["features.18.0"].consumers == ("classifier",)
    reasons = {s.layer: s.reason for s in skipped}
    assert "residual" in reasons["features.3.conv.6"]


def test_pool_flatten_and_chained_groups() -> None:
    groups, _, _ = find_groups(ConvHead(pool=1).eval(), torch.randn(2, 3, 8, 8))
    by = _by_producer(groups)
    assert by["conv"].consumers == ("fc1",) and by["conv"].middles == ("bn",)
    assert by["fc1"].consumers == ("fc2",) and by["fc1"].kind == "linear"


def test_flatten_over_space_is_not_widenable() -> None:
    groups, skipped, _ = find_groups(ConvHead(pool=2).eval(), torch.randn(2, 3, 8, 8))
    assert "conv" not in _by_producer(groups)
    assert "merges the channels" in {s.layer: s.reason for s in skipped}["conv"]


def test_cross_channel_ops_and_shared_weights_block_widening() -> None:
    _, skipped, _ = find_groups(NormInBetween().eval(), torch.randn(2, 6))
    assert "mixes channels" in {s.layer: s.reason for s in skipped}["fc1"]
    _, skipped, _ = find_groups(TokenBatchNorm().eval(), torch.randn(2, 4, 6))
    assert "another axis" in {s.layer: s.reason for s in skipped}["fc1"]
    groups, skipped, _ = find_groups(TwiceCalled().eval(), torch.randn(2, 10))
    assert groups == [] and "more than once" in {s.layer: s.reason for s in skipped}["shared"]


def test_untraceable_model_falls_back_to_its_children() -> None:
    groups, skipped, untraced = find_groups(Untraceable().eval(), torch.randn(3, 6))
    assert untraced == ["<model>"]
    by = _by_producer(groups)
    assert by["body.0"].consumers == ("body.3",) and by["body.0"].middles == ("body.1",)
    assert by["body.3"].consumers == ("body.5",)
    assert "body.5" in {s.layer for s in skipped}


def test_attention_patterns() -> None:
    model = normalize_model(TinyTransformer().eval())
    groups, _, _ = find_groups(model, torch.randn(2, 5, 6))
    (g,) = [g for g in groups if g.kind == "attention"]
    assert g.producers == ("attn.q_proj", "attn.k_proj", "attn.v_proj")
    assert (g.consumers, g.heads, g.width, g.owner) == (("attn.out_proj",), 4, 16, "attn")


def test_bert_attention_and_ffn_found_by_pattern() -> None:
    from transformers import BertModel

    model = BertModel(small_bert_config()).eval()
    groups, skipped, untraced = find_groups(model, bert_input())
    assert "<model>" in untraced
    kinds = {(g.kind, g.producers[0], g.consumers[0], g.found_by) for g in groups}
    for i in range(2):
        p = f"encoder.layer.{i}"
        assert ("attention", f"{p}.attention.self.query", f"{p}.attention.output.dense",
                "pattern:bert-attention") in kinds
        assert ("linear", f"{p}.intermediate.dense", f"{p}.output.dense",
                "pattern:ffn") in kinds
    reasons = {s.layer: s.reason for s in skipped}
    assert "residual" in reasons["encoder.layer.0.output.dense"]


def test_tied_weights_are_not_widened() -> None:
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 2))
    other = nn.Linear(6, 6)
    other.weight = model[2].weight  # tied to a module outside the forward
    holder = nn.ModuleDict({"net": model, "other": other})

    class Wrap(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.holder = holder

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.holder["net"](x)

    groups, skipped, _ = find_groups(Wrap().eval(), torch.randn(2, 4))
    assert groups == []
    assert any("shares its weights" in s.reason for s in skipped)


def test_residual_streams_group_every_writer_and_reader() -> None:
    groups, _, _ = find_groups(resnet_cifar(8).eval(), torch.randn(1, 3, 8, 8), residual=True)
    by = _by_producer(groups)
    stem = by["conv1"]
    assert stem.producers == ("conv1", "layer1.0.conv2") and stem.found_by == "fx:residual"
    assert set(stem.consumers) == {"layer1.0.conv1", "layer2.0.conv1", "layer2.0.shortcut.0"}
    assert set(stem.middles) == {"bn1", "layer1.0.bn2"}
    last = by["layer3.0.conv2"]
    assert set(last.producers) == {"layer3.0.conv2", "layer3.0.shortcut.0"}
    assert last.consumers == ("fc",)
    assert "layer1.0.conv1" in by  # inner groups are still there


def test_a_stream_from_the_model_input_is_not_widened() -> None:
    groups, skipped, _ = find_groups(InputResidual().eval(), torch.randn(2, 6), residual=True)
    assert set(_by_producer(groups)) == {"fc1"}
    assert "model input" in {s.layer: s.reason for s in skipped}["fc2"]
