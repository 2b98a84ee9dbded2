"""The hybrid candidate (Harmonica): its limits, its row selection, and its objective,
cost and deployment bookkeeping."""

from __future__ import annotations

import pytest
import torch
from tests.evaluation.helpers import digits_supernet, eager_analog
from torch import nn

from hetmap import Mapping
from hetmap.candidates import HybridCandidate, HybridSplit, make_candidate, register_hybrid
from hetmap.candidates.analog import AnalogCandidate
from hetmap.candidates.digital import IntCandidate
from hetmap.candidates.hybrid import digital_rows, digital_share, hybrid_split, sensitive_rows
from hetmap.errors import ConfigError
from hetmap.layers import LayerSpec

CONV = LayerSpec.from_module(nn.Conv2d(3, 6, 3, padding=1))


def _pair(fraction: float) -> tuple[HybridCandidate, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    hybrid = HybridCandidate("h", CONV, HybridSplit(fraction), eager_analog()).eval()
    return hybrid, torch.randn(6, 3, 3, 3), torch.randn(4, 3, 8, 8)


def test_fraction_zero_is_the_analog_candidate() -> None:
    hybrid, w, x = _pair(0.0)
    analog = AnalogCandidate("analog", CONV, eager_analog()).eval()
    b = torch.randn(6)
    torch.manual_seed(1)
    ours = hybrid(x, w, b)
    torch.manual_seed(1)
    assert torch.equal(ours, analog(x, w, b))
    assert hybrid.rows == 0


def test_fraction_one_is_its_digital_format() -> None:
    hybrid, w, x = _pair(1.0)
    int8 = IntCandidate("int8", CONV, 8, 8).eval()
    for cand in (hybrid, int8):
        cand.observe(x, w)
    b = torch.randn(6)
    assert torch.equal(hybrid(x, w, b), int8(x, w, b))
    assert hybrid.rows == CONV.rows == 27


def test_split_parts_sum_to_the_layer_and_run_on_their_own_engines() -> None:
    hybrid, w, x = _pair(0.2)
    analog_w, digital_w = hybrid.split_weight(w)
    assert torch.equal(analog_w + digital_w, w)
    assert int((digital_w.reshape(6, -1) != 0).any(0).sum()) == digital_rows(CONV, 0.2) == 5
    hybrid.set_noise_scale(0.0)  # no non-ideality: the exact layer
    assert torch.allclose(hybrid(x, w, None), CONV.forward(x, w, None), atol=1e-5)
    hybrid.set_noise_scale(1.0)
    assert hybrid.analog.noise_scale == hybrid.digital.noise_scale == 1.0
    hybrid.digital.observe(x, w)
    torch.manual_seed(2)
    ours = hybrid(x, w, None)
    torch.manual_seed(2)
    parts = hybrid.analog(x, analog_w, None) + hybrid.digital(x, digital_w, None)
    assert torch.equal(ours, parts)


def test_selection_takes_the_rows_of_largest_squared_weight_sum() -> None:
    w = torch.full((4, 10), 0.1)
    w[:, 7] = 1.0  # row 7: large everywhere
    w[0, 2] = 1.5  # row 2: one outlier (2.25 + 3 x 0.01 < 4 x 1.0)
    w[1:, 5] = 0.9  # row 5: 3 x 0.81 + 0.01 = 2.44 > row 2's 2.28
    assert set(sensitive_rows(w, 1).tolist()) == {7}
    assert set(sensitive_rows(w, 2).tolist()) == {7, 5}
    assert set(sensitive_rows(w, 3).tolist()) == {7, 5, 2}
    spec = LayerSpec("linear", 10, 4)
    hybrid = HybridCandidate("h", spec, HybridSplit(0.2), eager_analog())
    assert hybrid.row_mask(w).nonzero()[:, 1].tolist() == [5, 7]
    # a conv row is one (input channel, kernel position): the flattened kernel index
    wc = torch.zeros(6, 3, 3, 3)
    wc[:, 1, 2, 0] = 1.0
    assert sensitive_rows(wc, 1).tolist() == [1 * 9 + 2 * 3 + 0]


def test_names_registry_and_validation() -> None:
    assert HybridSplit(0.05).name == "hybrid5" and HybridSplit(0.025).name == "hybrid2p5"
    assert HybridSplit(0.05, "int4").name == "hybrid5_int4"
    assert register_hybrid(0.3) == "hybrid30" and hybrid_split("hybrid30") == HybridSplit(0.3)
    assert hybrid_split("analog") is None
    cand = make_candidate("hybrid5", CONV, analog=eager_analog())
    assert isinstance(cand, HybridCandidate) and cand.digital_fraction == 0.05
    assert cand.target == "analog" and cand.weight_bits == 8
    with pytest.raises(ConfigError, match="fraction"):
        HybridSplit(1.5)
    with pytest.raises(ConfigError, match="digital"):
        HybridSplit(0.1, "fp16")


def test_objectives_count_the_digital_rows_digitally() -> None:
    sn = digits_supernet(("fp32", "int8", "analog", "hybrid10"))
    analog = sn.table.evaluate(Mapping.uniform(sn, "analog"))
    hybrid = sn.table.evaluate(Mapping.uniform(sn, "hybrid10"))
    inv = sn.inventory
    digital_macs = sum(digital_share(inv[n].spec, 0.1) * inv[n].macs for n in sn.layer_names)
    total = sum(inv[n].macs for n in sn.layer_names)
    assert hybrid.analog_mac_ratio == pytest.approx(1 - digital_macs / total)
    assert 0 < hybrid.analog_mac_ratio < analog.analog_mac_ratio == 1.0
    assert hybrid.digital_weight_bytes == pytest.approx(sum(
        digital_share(inv[n].spec, 0.1) * inv[n].spec.weight_numel for n in sn.layer_names))
    assert hybrid.analog_tiles == analog.analog_tiles


def test_cost_table_adds_the_digital_part_to_the_analog_layer() -> None:
    from hetmap.hardware import table_for

    sn = digits_supernet(("int8", "analog", "hybrid10"))
    table = table_for(sn, "hermes-pcm")
    cols = {c: table.offered[sn.layer_names[0]].index(c) for c in ("int8", "analog", "hybrid10")}
    for i, name in enumerate(table.names):
        share = digital_share(sn.inventory[name].spec, 0.1)
        a, d, h = (cols[c] for c in ("analog", "int8", "hybrid10"))
        assert table.energy[i, h] == pytest.approx(table.energy[i, a] + share * table.energy[i, d])
        assert table.weight_bytes[i, h] == pytest.approx(share * table.weight_bytes[i, d])
        assert table.tiles[i, h] == table.tiles[i, a] and table.core[i, h] == table.core[i, a]
        assert table.latency[i, h] >= table.latency[i, a]


def test_drift_deploys_the_analog_rows_to_aihwkit_and_keeps_the_digital_rows() -> None:
    from aihwkit.nn.modules.base import AnalogLayerBase

    from hetmap.candidates.hybrid import HybridLayer
    from hetmap.evaluation.drift import deploy

    sn = digits_supernet(("fp32", "int8", "analog", "hybrid10")).eval()
    mapping = Mapping.uniform(sn, "hybrid10")
    model = deploy(sn, mapping)
    hybrids = [m for m in model.modules() if isinstance(m, HybridLayer)]
    assert hybrids and all(isinstance(h.analog, AnalogLayerBase) for h in hybrids)
    assert all(isinstance(h.digital, IntCandidate) for h in hybrids)
    name = next(n for n in sn.layer_names
                if 0 < sn.candidate(n, "hybrid10").rows < sn.inventory[n].spec.rows)
    cand = sn.candidate(name, "hybrid10")
    layer = next(h for n, h in model.named_modules() if n.endswith(name) and
                 isinstance(h, HybridLayer))
    mask = cand.row_mask(sn.choice_layer(name).weight)[0]
    analog_w, _ = layer.analog.get_weights()
    assert torch.all(analog_w.reshape(analog_w.shape[0], -1)[:, mask] == 0)
    assert torch.all(layer.digital_weight.reshape(analog_w.shape[0], -1)[:, ~mask] == 0)
