"""Analog input ranges that work at any batch size (issue 19 point 4): ranges come from
train-mode inputs over the first batches, and always hold most of the inputs they see."""

from __future__ import annotations

import torch

from hetmap import Mapping, build_supernet
from hetmap.candidates.analog import AnalogCandidate, AnalogConfig
from hetmap.layers import LayerSpec
from hetmap.models import mobilenetv2_cifar

EAGER = AnalogConfig(fuse=False)


def _candidate(**update) -> AnalogCandidate:
    return AnalogCandidate("analog", LayerSpec("linear", 64, 8),
                           EAGER.model_copy(update=update))


def test_mobilenetv2_batch_1_all_analog_step_reaches_every_layer() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 3, 32, 32)
    sn = build_supernet(mobilenetv2_cifar(width_mult=0.5), x, candidates=("fp32", "analog"),
                        analog=EAGER)
    sn.use(Mapping.uniform(sn, "analog")).train()
    sn(x).pow(2).mean().backward()
    dead = [name for name, layer in sn.choice_layers()
            if layer.weight.grad is None or not bool(layer.weight.grad.abs().sum() > 0)]
    assert dead == []
    ranges = [layer.candidates["analog"].input_range for _, layer in sn.choice_layers()]
    assert all(r.grad is not None and torch.isfinite(r.grad).all() for r in ranges)


def test_a_zero_mean_input_keeps_lightnings_range() -> None:
    cand = _candidate().train()
    x = torch.randn(256, 64)
    cand(x, torch.randn(8, 64) * 0.1, None)
    assert torch.allclose(cand.input_range.detach(), 3.0 * x.std().expand(1))


def test_an_offset_input_with_little_spread_is_not_clipped_whole() -> None:
    cand = _candidate().train()
    x = 0.3 + 0.01 * torch.randn(1, 64)  # pooled features of one image: offset, tiny spread
    cand(x, torch.randn(8, 64) * 0.1, None)
    r = float(cand.input_range.detach())
    assert 3.0 * float(x.std()) < 0.1 < 0.3 < r  # lightning's 3 std would clip every entry
    assert float((x.abs() <= r).float().mean()) >= 0.95


def test_ranges_from_eval_mode_are_replaced_by_train_mode_statistics() -> None:
    cand = _candidate().eval()
    w = torch.randn(8, 64) * 0.1
    cand.observe(torch.randn(4, 64) * 0.01, w)  # calibration on eval-mode activations
    assert float(cand.input_range.detach()) < 0.1 and int(cand.input_range_update_idx) == 1
    cand.train()
    x = torch.randn(16, 64)
    cand(x, w, None)  # the first training batch starts the running mean afresh
    assert int(cand.input_range_update_idx) == 1
    assert torch.allclose(cand.input_range.detach(), 3.0 * x.std().expand(1))
    x2 = torch.randn(16, 64) * 2
    cand(x2, w, None)  # later batches average in, as lightning does
    assert int(cand.input_range_update_idx) == 2
    assert torch.allclose(cand.input_range.detach(), 1.5 * (x.std() + x2.std()).expand(1))


def test_ranges_set_in_training_are_kept_by_later_eval_calibration() -> None:
    cand = _candidate().train()
    x = torch.randn(16, 64)
    cand(x, torch.randn(8, 64) * 0.1, None)
    cand.eval()
    cand.observe(torch.randn(4, 64) * 0.01, torch.zeros(8, 64))  # adds to the mean
    assert int(cand.input_range_update_idx) == 2
    cand.train()
    cand(torch.randn(16, 64), torch.randn(8, 64) * 0.1, None)
    assert int(cand.input_range_update_idx) == 3  # not restarted: training had set them


def test_ranges_loaded_from_a_checkpoint_are_not_restarted() -> None:
    trained = _candidate().train()
    trained(torch.randn(16, 64), torch.randn(8, 64) * 0.1, None)
    fresh = _candidate().eval()
    fresh.observe(torch.randn(4, 64) * 0.01, torch.zeros(8, 64))  # provisional
    fresh.load_state_dict(trained.state_dict())  # a resumed run
    fresh.train()(torch.randn(16, 64) * 5, torch.randn(8, 64) * 0.1, None)
    assert int(fresh.input_range_update_idx) == 2  # continued, not restarted
