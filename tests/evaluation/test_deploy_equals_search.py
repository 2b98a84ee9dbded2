"""Deployed = searched: with programming noise, drift and read noise off, aihwkit's forward of
the deployed model equals hetmap's eval-mode path of the mapping the Evaluator scored
(analog weights clipped as in training, BatchNorm recalibrated for the mapping on the same
training batches), for a conv net and a transformer."""

from __future__ import annotations

import copy

import pytest
import torch
from tests.coverage_models import lstm, unet
from tests.models_for_tests import TinyTransformer

from hetmap import AnalogConfig, Mapping, build_supernet
from hetmap.candidates.analog.engine import clip_weight
from hetmap.evaluation import Evaluator, calibration_inputs, recalibrate_batchnorm
from hetmap.tasks import get_task

pytest.importorskip("aihwkit")

from aihwkit.inference import PCMLikeNoiseModel
from aihwkit.nn.modules.base import AnalogLayerBase

from hetmap.evaluation.drift import (
    _analog_tiles_by_slice,
    _drift,
    _program,
    deploy,
    evaluate_drift,
)

RTOL = 1e-4  # of the output's largest magnitude (float32 rounding is ~1e-6 of it)
CONFIG = AnalogConfig(fuse=False)


def noiseless(config: AnalogConfig):
    """The config's aihwkit rpu config with programming, drift and read noise off."""
    rpu = config.to_aihwkit()
    rpu.forward.out_noise = 0.0
    rpu.noise_model = PCMLikeNoiseModel(g_max=25.0, prog_noise_scale=0.0,
                                        read_noise_scale=0.0, drift_scale=0.0)
    return rpu


def with_outliers(model: torch.nn.Module) -> torch.nn.Module:
    """Weights beyond the 2.5-sigma clip, as training produces (fresh uniform-initialised
    weights never reach it, so clipping would change nothing)."""
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.view(-1)[::7] *= 6.0
    return model


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def scored_and_deployed(sn, mapping, xs, bn_inputs, deployed_bn=None):
    """(hetmap's eval-mode outputs with the Evaluator's recalibration, aihwkit's outputs of
    the deployed model after programming and one day of drift, all noise off, the model).
    deployed_bn: other recalibration inputs for the deployed model."""
    ref = copy.deepcopy(sn).use(mapping)
    recalibrate_batchnorm(ref, bn_inputs)
    model = deploy(sn, mapping, rpu_config=noiseless(sn.options.analog),
                   bn_inputs=bn_inputs if deployed_bn is None else deployed_bn)
    torch.manual_seed(0)
    _program(model)
    _drift(model, 86400.0)
    with torch.no_grad():
        return (torch.cat([ref.eval()(x) for x in xs]), torch.cat([model(x) for x in xs]),
                model)


def check_components(sn, mapping, model) -> int:
    """Every analog layer of the deployed model holds the clipped weights, the learned input
    range of each row slice, the config's DAC/ADC/bound and the per-column weight maximum
    as its out-scaling. Returns how many weights the clip changed."""
    clipped = 0
    analog = {n: m for n, m in getattr(model, "module", model).named_modules()
              if isinstance(m, AnalogLayerBase) and n in mapping and mapping[n] == "analog"}
    assert analog and len(analog) == sum(c == "analog" for c in mapping.values())
    for name, layer in analog.items():
        cand = sn.candidate(name, "analog")
        weight = sn.choice_layer(name).weight.detach()
        expected = clip_weight(weight, cand.config).reshape(weight.shape[0], -1)
        clipped += int((expected != weight.reshape(weight.shape[0], -1)).sum())
        slices = _analog_tiles_by_slice(layer)
        assert len(slices) == cand.n_slices == len(cand.plan.slices)
        for s, tiles, r in zip(cand.plan.slices, slices, cand.input_range.detach().abs()):
            rows = expected[:, s.row_lo:s.row_hi]
            for tile in tiles:  # the columns of one row slice, maybe over several tiles
                assert tile.input_range.item() == pytest.approx(r.item(), rel=1e-6)
                fwd = tile.rpu_config.forward
                assert (fwd.inp_res, fwd.out_res, fwd.out_bound) == \
                    (cand.config.inp_res, cand.config.out_res, cand.config.out_bound)
            scales = torch.cat([t.get_mapping_scales().flatten() for t in tiles])
            torch.testing.assert_close(scales, rows.abs().amax(1), rtol=1e-6, atol=0)
            w = torch.cat([t.get_weights(apply_weight_scaling=True)[0] for t in tiles])
            torch.testing.assert_close(w, rows, rtol=1e-5, atol=1e-7)
    return clipped


@pytest.fixture(scope="module")
def conv_case():
    task = get_task("digits", width=4)
    torch.manual_seed(0)
    model = with_outliers(task.build_model()).eval()
    loaders = task.loaders(batch_size=64, seed=0)
    xs = [b[0] for b in loaders.val]
    # 16-row tiles: several row slices per conv, kernels split across slices
    sn = build_supernet(model, xs[0], candidates=("fp32", "int8", "analog"), analog=CONFIG,
                        tile=(16, 16)).eval()
    mapping = Mapping.uniform(sn, "analog").with_choice(sn.layer_names[0], "int8")
    return task, sn, mapping, xs, calibration_inputs(loaders.train, 2)


def test_conv_net_deployed_equals_the_scored_path(conv_case) -> None:
    _, sn, mapping, xs, bn = conv_case
    assert any(cand.n_slices > 1 and any(s.partial for s in cand.plan.slices)
               for name in mapping if mapping[name] == "analog"
               for cand in [sn.candidate(name, "analog")])
    ours, theirs, model = scored_and_deployed(sn, mapping, xs, bn)
    assert relative(theirs, ours) <= RTOL
    assert check_components(sn, mapping, model) > 0  # the clip mattered (deployed unclipped)
    # before: the supernet's shared BatchNorm statistics
    _, shared, _ = scored_and_deployed(sn, mapping, xs, bn, deployed_bn=())
    assert relative(shared, ours) > 100 * RTOL


def test_transformer_deployed_equals_the_scored_path() -> None:
    torch.manual_seed(0)
    model = with_outliers(TinyTransformer()).eval()
    xs = [torch.randn(64, 7, 6) for _ in range(4)]
    sn = build_supernet(model, xs[0], candidates=("fp32", "analog"), analog=CONFIG,
                        tile=(8, 8)).eval()
    mapping = Mapping.uniform(sn, "analog")
    ours, theirs, deployed = scored_and_deployed(sn, mapping, xs, [])
    assert relative(theirs, ours) <= RTOL
    assert check_components(sn, mapping, deployed) > 0


@pytest.mark.parametrize("clip_type", ["layer_gaussian", "none"])
def test_layerwise_adc_ranges_match_too(conv_case, clip_type: str) -> None:
    """Without per-channel clipping hetmap scales the ADC range by the slice's maximum, not
    each column's: aihwkit's mapping must do the same (it scaled per column before)."""
    task, _, _, xs, bn = conv_case
    torch.manual_seed(0)
    model = with_outliers(task.build_model()).eval()
    sn = build_supernet(model, xs[0], candidates=("fp32", "analog"),
                        analog=AnalogConfig(fuse=False, clip_type=clip_type),
                        tile=(16, 4)).eval()
    ours, theirs, _ = scored_and_deployed(sn, Mapping.uniform(sn, "analog"), xs, bn)
    assert relative(theirs, ours) <= RTOL


def test_drift_scores_what_the_evaluator_scored(conv_case) -> None:
    task, sn, mapping, _, _ = conv_case
    ev = Evaluator(sn, task, objectives=("accuracy", "analog_mac_ratio"), bn_batches=2,
                   batch_size=64, seed=0)
    drift = evaluate_drift(sn, mapping, task, times=(86400.0,), repeats=1,
                           rpu_config=noiseless(sn.options.analog), bn_batches=2,
                           batch_size=64, seed=0)
    assert drift.mean[0] == ev.accuracy(mapping)
    shared = evaluate_drift(sn, mapping, task, times=(86400.0,), repeats=1,
                            rpu_config=noiseless(sn.options.analog), bn_batches=0,
                            batch_size=64, seed=0)
    assert shared.mean[0] != drift.mean[0]  # the shared statistics score another model


@pytest.mark.parametrize("build", [unet, lstm])
def test_transposed_and_recurrent_layers_deploy_as_scored(build) -> None:
    """A U-Net's ConvTranspose2d (deployed as its zero-stuffed input into an AnalogConv2d:
    aihwkit has no analog transposed conv) and an LSTM's gate matmuls (AnalogLinear inside
    hetmap's recurrence), all analog, with several row slices.

    The U-Net runs without ADC quantization: on its zero-stuffed input hetmap's engine and
    aihwkit's tile put 4 of its 4096 outputs a few ADC levels apart (with the ADC off they
    agree to 5e-7); a plain Conv2d fed the same stuffed input shows the same 4, so it is an
    engine/aihwkit difference of the ADC, not the transposed conv's deployment."""
    model, x = build()
    model = with_outliers(model)
    xs = [x, torch.randn_like(x)]
    config = CONFIG.model_copy(update={"out_res": -1.0}) if build is unet else CONFIG
    sn = build_supernet(model, x, candidates=("fp32", "analog"), analog=config,
                        tile=(16, 16)).eval()
    mapping = Mapping.uniform(sn, "analog")
    ours, theirs, deployed = scored_and_deployed(sn, mapping, xs, [])
    assert relative(theirs, ours) <= RTOL
    converted = [type(m).__name__ for n, m in deployed.named_modules()
                 if isinstance(m, AnalogLayerBase) and n.rsplit(".", 1)[-1] != "module"]
    assert len([c for c in converted if c.startswith(("AnalogConv", "AnalogLinear"))]) == \
        len(sn.inventory)
    if build is unet:
        up = getattr(deployed, "module", deployed).get_submodule("up")
        assert type(up[1]).__name__ == "AnalogConv2d"


class _Grouped(torch.nn.Module):
    """A depthwise-separable block with a grouped conv: aihwkit has no grouped AnalogConv,
    so deploy splits each grouped layer into one conv per group (GroupedConv)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.dw = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.grouped = torch.nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.head = torch.nn.Linear(8, 10)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.relu(self.grouped(torch.relu(self.dw(x))))
        return self.head(x.mean((2, 3)))


def test_grouped_convolutions_deploy_as_one_analog_conv_per_group() -> None:
    from hetmap.evaluation.drift import GroupedConv
    from hetmap.search.mappers.lionheart import write_back

    torch.manual_seed(0)
    model = with_outliers(_Grouped()).eval()
    xs = [torch.randn(16, 1, 8, 8) for _ in range(2)]
    # 16-row tiles: the grouped conv's 4 x 9 = 36 rows per group span three row slices
    sn = build_supernet(model, xs[0], candidates=("fp32", "analog"), analog=CONFIG,
                        tile=(16, 16)).eval()
    mapping = Mapping.uniform(sn, "analog")
    ours, theirs, deployed = scored_and_deployed(sn, mapping, xs, ())
    assert relative(theirs, ours) <= RTOL
    root = getattr(deployed, "module", deployed)
    assert isinstance(root.dw, GroupedConv) and len(root.dw.parts) == 8
    assert all(isinstance(p, AnalogLayerBase) for p in root.grouped.parts)
    # LionHeart's write-back puts each group's weights back in its rows
    other = copy.deepcopy(sn)
    with torch.no_grad():
        for name in ("dw", "grouped"):
            other.choice_layer(name).weight.zero_()
    write_back(other, deployed)
    for name in ("dw", "grouped"):
        want = clip_weight(sn.choice_layer(name).weight.detach(),
                           sn.candidate(name, "analog").config)
        torch.testing.assert_close(other.choice_layer(name).weight, want, rtol=1e-4,
                                   atol=1e-6)
