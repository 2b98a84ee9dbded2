from __future__ import annotations

import pytest
import torch
from tests.models_for_tests import TinyMLP, TinyTransformer, tiny_bert_qa
from torch import nn

from hetmap import (
    AnalogConfig,
    Mapping,
    MappingError,
    UnknownCandidateError,
    build_supernet,
)
from hetmap.errors import ConfigError
from hetmap.models import mobilenetv2_cifar, resnet_cifar


def _bert_inputs(batch: int = 2, seq: int = 10) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return {"input_ids": torch.randint(0, 100, (batch, seq), generator=gen),
            "attention_mask": torch.ones(batch, seq, dtype=torch.long)}


def _outputs(model: nn.Module, x) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        out = model(**x) if isinstance(x, dict) else model(x)
    if hasattr(out, "start_logits"):
        return torch.cat([out.start_logits, out.end_logits], dim=-1)
    return out


CASES = {
    "resnet20": (lambda: resnet_cifar(20), lambda: torch.randn(4, 3, 32, 32)),
    "mobilenetv2": (lambda: mobilenetv2_cifar(), lambda: torch.randn(2, 3, 32, 32)),
    "bert_qa": (lambda: tiny_bert_qa()[0], _bert_inputs),
    "mha": (lambda: TinyTransformer(), lambda: torch.randn(3, 7, 6)),
}


@pytest.fixture(params=list(CASES))
def case(request):
    make_model, make_input = CASES[request.param]
    model = make_model().eval()
    x = make_input()
    return model, x


def test_all_fp32_path_equals_original(case) -> None:
    model, x = case
    sn = build_supernet(model, x, candidates=("fp32", "int8", "analog"))
    sn.use(Mapping.uniform(sn, "fp32"))
    diff = (_outputs(sn, x) - _outputs(model, x)).abs().max().item()
    assert diff <= 1e-6


def test_all_int8_path_is_close_to_original(case) -> None:
    # Per-channel 8-bit weights and per-tensor 8-bit activations calibrated on this very
    # input: each layer's error is below half a quantization step (<0.4% of its range), and
    # the deepest net compounds it over ~50 layers, so relative error stays within 5%.
    model, x = case
    sn = build_supernet(model, x, candidates=("fp32", "int8"))
    sn.use(Mapping.uniform(sn, "int8"))
    ref, out = _outputs(model, x), _outputs(sn, x)
    rel = (out - ref).norm() / ref.norm()
    assert 0 < rel.item() < 0.05


def test_all_analog_without_non_idealities_equals_fp32(case) -> None:
    model, x = case
    sn = build_supernet(model, x, candidates=("fp32", "analog"), analog=AnalogConfig.ideal())
    sn.use(Mapping.uniform(sn, "analog"))
    diff = (_outputs(sn, x) - _outputs(model, x)).abs().max().item()
    assert diff <= 1e-4


def test_mapping_json_round_trip_gives_identical_objectives_and_outputs(tmp_path) -> None:
    model, x = resnet_cifar(8).eval(), torch.randn(2, 3, 32, 32)
    sn = build_supernet(model, x, candidates=("fp32", "int8", "int4", "analog", "skip"))
    mapping = sn.sample(torch.Generator().manual_seed(3))
    path = tmp_path / "mapping.json"
    mapping.save(path)
    loaded = Mapping.load(path)
    assert loaded == mapping and loaded.model == sn.fingerprint
    assert sn.objectives(loaded) == sn.objectives(mapping)
    out1 = _outputs(sn.use(mapping), x)
    out2 = _outputs(sn.use(loaded), x)
    assert torch.equal(out1, out2)


def test_exact_objectives_on_a_hand_counted_model() -> None:
    model = TinyMLP()
    sn = build_supernet(model, torch.randn(2, 8), candidates=("fp32", "int8", "analog"),
                        tile=(16, 16))
    m = Mapping({"fc1": "analog", "fc2": "int8", "fc3": "fp32"}, sn.fingerprint)
    obj = sn.objectives(m)
    macs = {"fc1": 8 * 16, "fc2": 16 * 16, "fc3": 16 * 4}
    assert obj.analog_mac_ratio == pytest.approx(macs["fc1"] / sum(macs.values()))
    # analog fc1: its 16 biases, added digitally in fp32; int8: 256 weights at 1 byte + 16
    # biases at 4 bytes; fp32: (64 + 4) * 4 bytes
    assert obj.digital_weight_bytes == 16 * 4 + 256 + 16 * 4 + (64 + 4) * 4
    assert obj.analog_tiles == 1
    assert obj.tile_utilisation == pytest.approx(8 * 16 / 256)
    assert obj.total_params == sum(p.numel() for p in model.parameters())
    assert obj.skipped_mac_ratio == 0


def test_skip_offered_only_where_valid_and_removes_work() -> None:
    model = resnet_cifar(8).eval()
    sn = build_supernet(model, torch.randn(1, 3, 32, 32), candidates=("fp32", "skip"))
    assert "skip" in sn.candidates("layer1.0.conv2")
    assert "skip" not in sn.candidates("conv1")
    m = Mapping.uniform(sn, "fp32").with_choice("layer1.0.conv2", "skip")
    obj = sn.objectives(m)
    conv = sn.inventory["layer1.0.conv2"]
    assert obj.skipped_mac_ratio == pytest.approx(conv.macs / sn.inventory.total_macs)
    assert obj.total_params == sum(p.numel() for p in model.parameters()) - conv.params
    sn.use(m)
    assert sn(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_sample_soft_mode_preferences_and_log_prob() -> None:
    model = TinyMLP()
    x = torch.randn(4, 8)
    sn = build_supernet(model, x, candidates=("fp32", "int8", "analog"))
    a = sn.sample(torch.Generator().manual_seed(0))
    b = sn.sample(torch.Generator().manual_seed(0))
    assert a == b
    prefs = sn.preferences()
    assert set(prefs) == {"fc1", "fc2", "fc3"}
    assert all(sum(p.values()) == pytest.approx(1.0) for p in prefs.values())
    with torch.no_grad():
        sn.choice_layer("fc1").logits.copy_(torch.tensor([0.0, 0.0, 50.0]))
    assert sn.preferences()["fc1"]["analog"] > 0.999
    lp = sn.log_prob(Mapping.uniform(sn, "fp32"))
    assert lp.item() == pytest.approx(-50 + 2 * torch.log(torch.tensor(1 / 3)).item(), abs=1e-3)
    lp.backward()
    assert sn.choice_layer("fc1").logits.grad is not None
    # soft mode with all preference on fp32 reproduces the fp32 path
    with torch.no_grad():
        for name in sn.layer_names:
            sn.choice_layer(name).logits.copy_(torch.tensor([60.0, 0.0, 0.0]))
    sn.set_mode("soft")
    soft = sn(x)
    sn.use(Mapping.uniform(sn, "fp32"))
    assert torch.allclose(soft, sn(x), atol=1e-5)
    assert len(sn.arch_parameters()) == 3
    assert all(p.dim() != 1 or p.numel() != 3 for p in sn.weight_parameters())


def test_excluded_layers_stay_fixed_and_out_of_mappings() -> None:
    sn = build_supernet(resnet_cifar(8), torch.randn(1, 3, 32, 32),
                        exclude=("conv1", "fc"), fixed="int8")
    assert "conv1" not in sn.layer_names and "fc" not in sn.layer_names
    assert sn.candidates("conv1") == ("int8",)
    m = Mapping.uniform(sn, "analog")
    assert "fc" not in m
    obj = sn.objectives(m)
    first_last = sn.inventory["conv1"].macs + sn.inventory["fc"].macs
    assert obj.analog_mac_ratio == pytest.approx(1 - first_last / sn.inventory.total_macs)


def test_errors_name_the_problem() -> None:
    x = torch.randn(1, 3, 32, 32)
    sn = build_supernet(resnet_cifar(8), x, candidates=("fp32", "int8"))
    with pytest.raises(UnknownCandidateError, match="'int3'"):
        build_supernet(resnet_cifar(8), x, candidates=("fp32", "int3"))
    with pytest.raises(UnknownCandidateError, match="'analog' is not offered for layer"):
        sn.use(Mapping.uniform(sn, "fp32").with_choice("conv1", "analog"))
    other = build_supernet(TinyMLP(), torch.randn(1, 8))
    with pytest.raises(MappingError, match="another model"):
        sn.use(Mapping.uniform(other, "fp32"))
    with pytest.raises(MappingError, match="layers the supernet does not have"):
        sn.use(Mapping({**Mapping.uniform(sn, "fp32"), "nope": "fp32"}))
    with pytest.raises(MappingError, match="no candidate for layers"):
        sn.use(Mapping({"conv1": "fp32"}))
    with pytest.raises(ConfigError, match="positive"):
        build_supernet(resnet_cifar(8), x, tile=(-1, 4))
    with pytest.raises(ConfigError, match="excluded"):
        build_supernet(TinyMLP(), torch.randn(1, 8), exclude=("*",))


def test_user_model_is_not_modified() -> None:
    model = TinyTransformer()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sn = build_supernet(model, torch.randn(2, 5, 6))
    with torch.no_grad():
        for p in sn.weight_parameters():
            p.add_(1.0)
    assert isinstance(model.attn, nn.MultiheadAttention)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_bert_supernet_runs_a_training_step() -> None:
    model, _ = tiny_bert_qa()
    x = _bert_inputs()
    sn = build_supernet(model, x, candidates=("fp32", "int8", "analog"))
    sn.train()
    sn.use(sn.sample(torch.Generator().manual_seed(2)))
    out = sn(**x)
    loss = out.start_logits.pow(2).mean() + out.end_logits.pow(2).mean()
    loss.backward()
    grads = [p.grad for p in sn.weight_parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
