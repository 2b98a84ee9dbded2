from __future__ import annotations

import importlib
import json

import pytest
import torch
from tests.adaptation.adapt_models import SelfLoopResidual, bert_input, small_bert_config
from tests.models_for_tests import TinyTransformer
from torch import nn

from hetmap.adaptation import AdaptPolicy, adapt
from hetmap.errors import ConfigError, ModelError
from hetmap.inventory import scan
from hetmap.models import mobilenetv2_cifar, resnet_cifar

TILE = (256, 256)


def _max_diff(a: nn.Module, b: nn.Module, x) -> float:
    a.eval()
    b.eval()
    with torch.no_grad():
        ya, yb = a(**x) if isinstance(x, dict) else a(x), b(**x) if isinstance(x, dict) else b(x)
    ya = ya if isinstance(ya, torch.Tensor) else ya[0]
    yb = yb if isinstance(yb, torch.Tensor) else yb[0]
    return float((ya - yb).abs().max())


def _check_tiles_and_growth(model: nn.Module, adapted: nn.Module, x, report) -> None:
    before, after = scan(model, x, TILE), scan(adapted, x, TILE)
    assert (report.tiles_before, report.params_before) == (before.total_tiles,
                                                           before.total_params)
    assert (report.tiles_after, report.params_after) == (after.total_tiles, after.total_params)
    assert before.names == after.names
    for old, new in zip(before, after, strict=True):  # every layer keeps its tile count
        assert new.tiles == old.tiles, old.name
        assert new.tile_utilisation >= old.tile_utilisation
    assert after.total_params > before.total_params


@pytest.fixture(scope="module")
def resnet() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = resnet_cifar(20).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, as after training
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model, torch.randn(2, 3, 8, 8)


@pytest.fixture(scope="module")
def resnet8() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return resnet_cifar(8).eval(), torch.randn(2, 3, 8, 8)


@pytest.mark.parametrize("init", ["zero", "net2wider"])
def test_resnet20_keeps_function_tiles_and_grows(resnet, init: str) -> None:
    model, x = resnet
    state = {k: v.clone() for k, v in model.state_dict().items()}
    adapted, report = adapt(model, x, TILE, AdaptPolicy(init=init))  # type: ignore[arg-type]
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())  # untouched
    assert _max_diff(model, adapted, x) <= 1e-5 and report.max_abs_diff <= 1e-5
    _check_tiles_and_growth(model, adapted, x, report)
    assert report.tiles_after == report.tiles_before
    assert report.util_after > report.util_before and report.params_after > report.params_before
    assert len(report.widened) == 9
    g = {g.producers[0]: g for g in report.groups}["layer1.0.conv1"]
    # conv2 rows = width x 9 must stay within one 256-row tile: 28 -> multiple of 8 -> 24
    assert (g.old_width, g.new_width) == (16, 24)
    assert adapted.layer1[0].conv1.out_channels == 24 and adapted.layer1[0].bn1.num_features == 24


def test_mobilenetv2_keeps_function_and_tiles() -> None:
    model = mobilenetv2_cifar().eval()
    x = torch.randn(1, 3, 8, 8)
    adapted, report = adapt(model, x, TILE)
    assert _max_diff(model, adapted, x) <= 1e-5
    _check_tiles_and_growth(model, adapted, x, report)
    g = {g.producers[0]: g for g in report.groups}["features.3.conv.0"]
    assert (g.old_width, g.new_width) == (144, 256)
    dw = adapted.features[3].conv[3]
    assert dw.groups == dw.in_channels == dw.out_channels == 256


@pytest.mark.parametrize(("qa", "init"), [(False, "zero"), (True, "net2wider")])
def test_bert_encoder_keeps_function(qa: bool, init: str) -> None:
    from transformers import BertForQuestionAnswering, BertModel

    torch.manual_seed(0)
    x = bert_input()
    model = (BertForQuestionAnswering if qa else BertModel)(small_bert_config()).eval()
    adapted, report = adapt(model, x, TILE, AdaptPolicy(init=init))  # type: ignore[arg-type]
    assert _max_diff(model, adapted, x) <= 1e-5
    _check_tiles_and_growth(model, adapted, x, report)
    assert {g.kind for g in report.widened} == {"attention", "linear"}
    encoder = adapted.bert.encoder if qa else adapted.encoder
    attn = encoder.layer[0].attention.self
    assert attn.attention_head_size == 32 and attn.query.out_features == 128  # 4 heads x 32
    assert encoder.layer[0].intermediate.dense.out_features == 256


def test_split_multihead_attention_widens_heads() -> None:
    model = TinyTransformer().eval()
    x = torch.randn(2, 5, 6)
    adapted, _ = adapt(model, x, (64, 64))
    assert _max_diff(model, adapted, x) <= 1e-5
    assert adapted.attn.head_dim == 16 and adapted.attn.out_proj.in_features == 64


def test_policy_limits(resnet8) -> None:
    model, x = resnet8
    _, report = adapt(model, x, (512, 512), AdaptPolicy(max_factor=2.0, multiple_of=16))
    for g in report.groups:
        assert g.new_width <= 2 * g.old_width and g.new_width % 16 == 0
    _, report = adapt(model, x, TILE, AdaptPolicy(kinds=("linear",)))
    assert report.widened == () and "not in policy.kinds" in report.groups[0].note
    _, report = adapt(model, x, TILE, AdaptPolicy(exclude=("layer1.*",)))
    assert {g.producers[0] for g in report.widened} == {"layer2.0.conv1", "layer3.0.conv1"}


def test_tile_budget_allows_more_width(resnet8) -> None:
    model, x = resnet8
    _, strict = adapt(model, x, TILE)
    _, loose = adapt(model, x, TILE, AdaptPolicy(extra_tiles=2))
    for s, g in zip(strict.groups, loose.groups, strict=True):
        assert g.new_width >= s.new_width
        assert sum(g.tiles_after.values()) <= sum(g.tiles_before.values()) + 2
    assert loose.tiles_after > strict.tiles_after


def test_a_widening_that_breaks_the_function_is_undone(resnet8, monkeypatch) -> None:
    model, x = resnet8
    adapt_module = importlib.import_module("hetmap.adaptation.adapt")
    real = adapt_module.widen_group

    def broken(m: nn.Module, group, width, init, gen) -> None:
        real(m, group, width, init, gen)
        if group.producers[0] == "layer2.0.conv1":
            with torch.no_grad():
                m.get_submodule(group.consumers[0]).weight.add_(0.5)

    monkeypatch.setattr(adapt_module, "widen_group", broken)
    adapted, report = adapt(model, x, TILE)
    bad = {g.producers[0]: g for g in report.groups}["layer2.0.conv1"]
    assert not bad.widened and bad.note.startswith("undone")
    assert len(report.widened) == 2 and report.max_abs_diff <= 1e-5
    assert _max_diff(model, adapted, x) <= 1e-5


def test_report_prints_and_serialises(resnet8) -> None:
    model, x = resnet8
    _, report = adapt(model, x, TILE)
    text = str(report)
    assert "layer1.0: conv1 -> conv2" in text and "16->24" in text
    assert "skipped fc: its channels reach the model output" in text
    d = json.loads(json.dumps(report.to_dict()))
    assert d["tiles_before"] == d["tiles_after"] and len(d["groups"]) == 3
    assert d["groups"][0]["tiles_before"] == {"layer1.0.conv1": 1, "layer1.0.conv2": 1}


def test_bad_arguments_raise_clear_errors() -> None:
    with pytest.raises(ConfigError, match="max_factor"):
        AdaptPolicy(max_factor=0.5)
    with pytest.raises(ConfigError, match="unknown kinds"):
        AdaptPolicy(kinds=("conv", "lstm"))
    with pytest.raises(ConfigError, match="tile"):
        adapt(nn.Linear(2, 2), torch.randn(1, 2), (0, 4))
    with pytest.raises(ModelError):
        adapt("not a model", torch.randn(1, 2))  # type: ignore[arg-type]


def test_depthwise_groups_can_be_left_alone() -> None:
    model = mobilenetv2_cifar(width_mult=0.5).eval()
    _, report = adapt(model, torch.randn(1, 3, 8, 8), TILE, AdaptPolicy(depthwise=False))
    widened = {g.producers[0] for g in report.widened}
    assert widened == {"features.1.conv.3", "features.17.conv.6"}  # no depthwise inside
    assert "depthwise" in {g.producers[0]: g for g in report.groups}["features.3.conv.0"].note


def test_adapted_model_builds_a_supernet() -> None:
    from hetmap import build_supernet

    model = resnet_cifar(8).eval()
    x = torch.randn(2, 3, 8, 8)
    adapted, report = adapt(model, x, TILE)
    supernet = build_supernet(adapted, x, candidates=("fp32", "int8"), tile=TILE)
    assert supernet.inventory.total_tiles == report.tiles_after
    assert supernet.inventory["layer1.0.conv1"].spec.out_features == 24
    assert supernet(x).shape == (2, 10)


def test_gpt2_mlp_widens_through_its_gelu_module() -> None:
    from transformers import GPT2Config, GPT2Model

    torch.manual_seed(0)
    config = GPT2Config(n_embd=32, n_layer=1, n_head=4, n_inner=96, vocab_size=100,
                        n_positions=16, bos_token_id=0, eos_token_id=0)
    model = GPT2Model(config).eval()
    x = {"input_ids": torch.randint(0, 100, (2, 6))}
    adapted, report = adapt(model, x, TILE)
    g, attention = sorted(report.widened, key=lambda g: g.kind != "linear")
    assert (g.producers, g.new_width) == (("h.0.mlp.c_fc",), 256)
    assert attention.producers == ("h.0.attn.c_attn",)  # the fused q/k/v widens too
    assert _max_diff(model, adapted, x) <= 1e-5


def test_residual_streams_keep_function_and_tiles(resnet) -> None:
    model, x = resnet
    adapted, report = adapt(model, x, TILE, AdaptPolicy(residual=True, init="net2wider"))
    assert _max_diff(model, adapted, x) <= 1e-5
    _check_tiles_and_growth(model, adapted, x, report)
    _, inner_only = adapt(model, x, TILE)
    assert report.util_after > inner_only.util_after
    assert adapted.conv1.out_channels == adapted.layer1[2].conv2.out_channels == 24
    assert adapted.fc.in_features > 64


@pytest.mark.parametrize("init", ["zero", "net2wider"])
def test_a_layer_reading_and_writing_one_stream_widens_both_sides(init: str) -> None:
    model = SelfLoopResidual().eval()
    x = torch.randn(3, 6)
    adapted, report = adapt(model, x, (64, 64), AdaptPolicy(residual=True, init=init))  # type: ignore[arg-type]
    (g,) = report.widened
    assert "fc" in g.producers and "fc" in g.consumers
    assert adapted.fc.weight.shape == (g.new_width, g.new_width)
    assert _max_diff(model, adapted, x) <= 1e-5


def test_hardware_model_vetoes_widenings_that_cost_latency() -> None:
    from hetmap.hardware import load_hardware

    model = mobilenetv2_cifar(width_mult=0.5).eval()
    x = torch.randn(1, 3, 8, 8)
    _, free = adapt(model, x, TILE)
    # depthwise convs are packed block-diagonally, so on the full chip no widening is slower;
    # with a single tile there are no free tiles for copies, and wider layers take longer
    hw = load_hardware("hermes-pcm")
    hw = hw.model_copy(update={"analog": hw.analog.model_copy(update={
        "n_tiles": 1, "tile_rows": TILE[0], "tile_cols": TILE[1]})})
    _, capped = adapt(model, x, TILE, hardware=hw)
    assert len(free.widened) > 2
    vetoed = {g.producers[0] for g in free.widened} - {g.producers[0] for g in capped.widened}
    assert vetoed == {f"features.{i}.conv.0" for i in (8, 9, 10, 11)}
    for g in capped.groups:
        assert g.latency_ratio <= 1.0 + 1e-9
    assert "latency/energy" in {g.producers[0]: g for g in capped.groups}[
        "features.8.conv.0"].note
    loose = AdaptPolicy(max_latency_increase=None)
    _, unlimited = adapt(model, x, TILE, loose, hardware=hw)
    assert {g.producers[0] for g in unlimited.widened} == {g.producers[0] for g in free.widened}
    assert max(g.latency_ratio for g in unlimited.widened) > 1.0


def test_energy_limit_bounds_each_group(resnet8) -> None:
    resnet8, x = resnet8
    _, report = adapt(resnet8, x, TILE, hardware="hermes-pcm")
    assert report.widened and all(g.energy_ratio > 1.0 for g in report.widened)
    json.dumps(report.to_dict())  # ratios serialise
    _, none = adapt(resnet8, x, TILE, AdaptPolicy(max_energy_increase=0.0),
                    hardware="hermes-pcm")
    assert not none.widened  # every extra column drives devices: no widening is free
    cap = 0.01
    _, some = adapt(resnet8, x, TILE, AdaptPolicy(max_energy_increase=cap),
                    hardware="hermes-pcm")
    assert all(g.energy_ratio <= 1 + cap + 1e-9 for g in some.groups)
    with pytest.raises(ConfigError, match="max_energy_increase"):
        AdaptPolicy(max_energy_increase=-0.1)
