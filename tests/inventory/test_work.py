"""Every MAC of the forward is counted (issue 19): mappable layers plus the unmapped work."""

from __future__ import annotations

import json
import re
import warnings

import pytest
import torch
from tests.coverage_models import ARCHITECTURES, functional, lstm, reference_macs, unet
from tests.models_for_tests import TinyTransformer

from hetmap import Inventory, scan


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_total_macs_match_flop_counter(name: str) -> None:
    model, x = ARCHITECTURES[name]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inv = scan(model, x)
    ref = reference_macs(model, x)
    assert abs(inv.total_macs - ref) <= 0.01 * ref
    assert inv.mappable_macs == sum(layer.macs for layer in inv)
    assert inv.total_macs == inv.mappable_macs + sum(w.macs for w in inv.unmapped)
    assert 0.0 < inv.mappable_share <= 1.0


def test_attention_matmuls_are_unmapped_activation_work() -> None:
    inv = scan(TinyTransformer(), torch.randn(2, 5, 6))  # 5 tokens, 16 wide, 2 heads
    (work,) = inv.unmapped
    assert (work.where, work.op, work.kind, work.module_type) == \
        ("attn", "bmm", "activations", "SplitMultiheadAttention")
    assert work.macs == 2 * 5 * 5 * 16  # q k^T and weights v, per sequence
    assert inv.total_macs == inv.mappable_macs + 800


class ProjectedLSTM(torch.nn.Module):
    """An LSTM with projections (proj_size): hetmap does not rewrite it, so it stays digital
    'layer' work."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.rnn = torch.nn.LSTM(16, 32, batch_first=True, proj_size=8)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.rnn(x)[0][:, -1])


def test_an_unrewritten_recurrent_layer_is_listed_with_its_macs() -> None:
    inv = scan(ProjectedLSTM(), torch.randn(2, 12, 16))
    gates = 12 * (4 * 32 * (16 + 8) + 32 * 8)  # gates from x and the projected h, projection
    assert {w.where for w in inv.unmapped} == {"rnn"}
    assert {w.kind for w in inv.unmapped} == {"layer"}
    assert inv.unmapped_macs == gates
    assert inv.names == ("fc",) and inv.mappable_share == pytest.approx(32 / (gates + 32))


def test_recurrent_and_transposed_layers_are_mappable_and_counted_once() -> None:
    model, x = lstm()  # 2 layers, 16 -> 32 hidden, 12 steps
    inv = scan(model, x)
    assert inv.unmapped == () and inv.mappable_share == 1.0
    assert inv.names == ("rnn.ih_l0", "rnn.hh_l0", "rnn.ih_l1", "rnn.hh_l1", "fc")
    assert inv["rnn.ih_l0"].macs == 12 * 16 * 128 and inv["rnn.ih_l0"].calls == 1
    assert inv["rnn.hh_l1"].macs == 12 * 32 * 128 and inv["rnn.hh_l1"].calls == 12
    assert inv.total_macs == reference_macs(model, x)
    model, x = unet()
    inv = scan(model, x)
    assert inv.unmapped == () and inv["up"].kind == "conv_transpose2d"
    assert inv["up"].macs == 8 * 8 * 16 * 8 * 2 * 2  # 8x8 input, 16 -> 8 channels, 2x2 kernel
    assert inv.total_macs == reference_macs(model, x)


def test_functional_calls_on_parameters_warn_with_their_call_site() -> None:
    model, x = functional()
    with pytest.warns(UserWarning) as record:
        inv = scan(model, x)
    messages = sorted(str(w.message) for w in record if "on its parameters" in str(w.message))
    assert len(messages) == 2
    assert re.match(r"Functional calls convolution on its parameters at .*coverage_models\.py:"
                    r"\d+ \(13,824 MACs per inference\)", messages[0])
    assert messages[1].startswith("Functional calls mm on its parameters")
    kinds = {w.op: w for w in inv.unmapped}
    assert kinds["convolution"].kind == kinds["mm"].kind == "functional"
    assert kinds["convolution"].macs == 8 * 8 * 8 * 27 and kinds["mm"].macs == 80
    assert "coverage_models.py" in kinds["mm"].site


def test_unmapped_work_round_trips_and_prints() -> None:
    inv = scan(ProjectedLSTM(), torch.randn(2, 12, 16))
    again = Inventory.from_json(inv.to_json())
    assert again.unmapped == inv.unmapped and again.total_macs == inv.total_macs
    d = json.loads(inv.to_json())
    assert d["total_macs"] == inv.total_macs and d["mappable_macs"] == inv.mappable_macs
    text = str(inv)
    assert f"unmapped work (digital): {inv.unmapped_macs:,} MACs" in text
    assert re.search(r"rnn \(LSTM\) +\w+ +layer +[\d,]+", text)


def test_a_model_without_unmapped_work_lists_none() -> None:
    from hetmap.models import resnet_cifar

    inv = scan(resnet_cifar(8), torch.randn(2, 3, 16, 16))
    assert inv.unmapped == () and inv.total_macs == inv.mappable_macs
    assert inv.mappable_share == 1.0


def test_objectives_expose_both_analog_shares() -> None:
    from hetmap import Mapping, build_supernet

    sn = build_supernet(ProjectedLSTM(), torch.randn(2, 12, 16), candidates=("fp32", "analog"),
                        calibrate=False)
    obj = sn.objectives(Mapping.uniform(sn, "analog"))
    assert obj.analog_mac_ratio == 1.0  # every mappable MAC (the classifier) is analog
    inv = sn.inventory
    assert obj.analog_mac_ratio_total == pytest.approx(inv.mappable_macs / inv.total_macs)
    assert obj.analog_mac_ratio_total < 0.001  # the LSTM, 99.9 % of the work, stays digital
    digital = sn.objectives(Mapping.uniform(sn, "fp32"))
    assert digital.analog_mac_ratio == digital.analog_mac_ratio_total == 0.0
