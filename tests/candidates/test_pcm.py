"""The fast PCM mode against aihwkit: per-weight noise statistics on the same weights, the
drifted analog layer's outputs, and reproducibility by seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hetmap.candidates.analog import AnalogCandidate, AnalogConfig
from hetmap.candidates.analog.engine import clip_weight
from hetmap.candidates.analog.pcm import LayerDraws, PCMDraws, PCMModel
from hetmap.errors import ConfigError
from hetmap.layers import LayerSpec

aihwkit = pytest.importorskip("aihwkit")

from aihwkit.inference import GlobalDriftCompensation, PCMLikeNoiseModel  # noqa: E402

DAY = 86400.0
CFG = AnalogConfig(fuse=False, init_from_data=0)


def _layer(out: int = 24, inp: int = 40, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    layer = nn.Linear(inp, out)
    with torch.no_grad():  # heavy tails: some weights near each column's max, most small
        layer.weight.copy_(torch.randn(out, inp) ** 3)
    return layer


def _conv(seed: int = 0) -> nn.Conv2d:
    torch.manual_seed(seed)
    layer = nn.Conv2d(6, 10, 3, padding=1)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape) ** 3)
    return layer


def _candidate(layer: nn.Module, config: AnalogConfig = CFG) -> AnalogCandidate:
    cand = AnalogCandidate("fc", LayerSpec.from_module(layer), config).eval()
    with torch.no_grad():
        cand.input_range.fill_(1.5)
    return cand


def _normalised(w: torch.Tensor) -> torch.Tensor:
    return w / w.abs().amax(1, keepdim=True)


def _z(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample z of the difference of means."""
    se = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    return float(abs(a.mean() - b.mean()) / max(se, 1e-12))


def _bins(target: np.ndarray) -> list[np.ndarray]:
    g = np.abs(target)
    return [g < 0.05, (g >= 0.05) & (g < 0.3), g >= 0.3]


def test_model_from_aihwkit_has_its_coefficients() -> None:
    ref = PCMLikeNoiseModel(g_max=25.0)
    ours = PCMModel.from_aihwkit(ref, GlobalDriftCompensation())
    assert ours == PCMModel()
    assert list(ours.prog_coeff) == list(ref.prog_coeff) and ours.t_0 == ref.t_0
    assert not PCMModel.from_aihwkit(ref).drift_compensation


def test_programming_and_drift_exponents_match_aihwkit() -> None:
    """Programmed-weight error (mean, std) and drift exponents (mean, std), per range of
    target conductance, equal aihwkit's PCMLikeNoiseModel on the same weights within
    sampling error (|z| < 4 for means, std ratio within 6 %)."""
    layer, draws = _layer(), 200
    w = clip_weight(layer.weight.detach(), CFG)
    target = _normalised(w)
    ld = LayerDraws(_candidate(layer).plan, CFG, w, PCMModel(), draws, seed=3, name="fc")
    tile = ld.slices[0].tiles[0]
    ours_err = (tile.prog - target).numpy()
    ours_nu_p, ours_nu_m = (n.numpy() for n in tile.nu)

    ref = PCMLikeNoiseModel(g_max=25.0)
    torch.manual_seed(0)
    ref_err, ref_nu_p, ref_nu_m = [], [], []
    for _ in range(draws):
        prog, (nu_p, nu_m) = ref.apply_programming_noise(target)
        ref_err.append((prog - target).numpy())
        ref_nu_p.append(nu_p.numpy())
        ref_nu_m.append(nu_m.numpy())
    ref_err, ref_nu_p, ref_nu_m = map(np.stack, (ref_err, ref_nu_p, ref_nu_m))

    t = target.numpy()
    for mask in _bins(t):
        for a, b in ((ours_err, ref_err), (ours_nu_p, ref_nu_p), (ours_nu_m, ref_nu_m)):
            a_m, b_m = a[:, mask], b[:, mask]
            assert _z(a_m, b_m) < 4.0
            assert abs(a_m.std() / b_m.std() - 1.0) < 0.06


def test_drifted_weights_match_aihwkit() -> None:
    """After a day: the drifted weight error (mean, std per range) equals aihwkit's
    apply_drift_noise applied to aihwkit's programmed weights and exponents."""
    layer, draws = _layer(), 200
    w = clip_weight(layer.weight.detach(), CFG)
    target = _normalised(w)
    ld = LayerDraws(_candidate(layer).plan, CFG, w, PCMModel(drift_compensation=False),
                    draws, seed=4, name="fc")
    weights, alpha = ld.at(DAY)[0]
    assert alpha is None
    wmax = w.abs().amax(1, keepdim=True)
    ours = (weights / wmax - target).numpy()

    ref = PCMLikeNoiseModel(g_max=25.0)
    torch.manual_seed(1)
    theirs = []
    for _ in range(draws):
        prog, nus = ref.apply_programming_noise(target)
        theirs.append((ref.apply_drift_noise(prog, nus, DAY) - target).numpy())
    theirs = np.stack(theirs)
    for mask in _bins(target.numpy()):
        a, b = ours[:, mask], theirs[:, mask]
        assert _z(a, b) < 4.0
        assert abs(a.std() / b.std() - 1.0) < 0.06
    # drift is visible: large weights shrink by a factor well below 1 after a day
    large = target.abs() >= 0.3
    assert float((weights.mean(0) / w)[large].mean()) < 0.8


def _aihwkit_layer(layer: nn.Module, config: AnalogConfig) -> nn.Module:
    from aihwkit.nn import AnalogConv2d, AnalogLinear

    from hetmap.evaluation import torch_rpu_config

    rpu = torch_rpu_config(config.to_aihwkit())
    if isinstance(layer, nn.Linear):
        analog = AnalogLinear(layer.in_features, layer.out_features, bias=True, rpu_config=rpu)
    else:
        analog = AnalogConv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                              padding=layer.padding, bias=True, rpu_config=rpu)
    analog.set_weights(clip_weight(layer.weight.detach(), config), layer.bias.detach())
    for tile in analog.analog_tiles():
        tile.input_range.data.fill_(1.5)
    return analog.eval()


@pytest.mark.parametrize(("kind", "tile_rows"), [("linear", 512), ("linear", 16),
                                                 ("conv", 512), ("conv", 20)])
def test_layer_outputs_after_a_day_match_aihwkit(kind: str, tile_rows: int) -> None:
    """An analog layer programmed and drifted one day, with aihwkit's output noise, drift
    compensation and ADC: mean and spread over draws of every output equal those of
    aihwkit's AnalogLinear/AnalogConv2d programmed and drifted the same way (one tile, and
    row tiles that split a channel's kernel)."""
    config = CFG.model_copy(update={"tile_rows": tile_rows})
    layer, draws = (_layer(), 60) if kind == "linear" else (_conv(), 40)
    shape = (16, layer.in_features) if kind == "linear" else (2, 6, 8, 8)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(5))
    cand = _candidate(layer, config)
    pcm = PCMDraws(cand, draws, seed=2)
    ours = []
    with torch.no_grad():
        for d in range(draws):
            with pcm.at(DAY, d):
                ours.append(cand(x, layer.weight, layer.bias))
        analog = _aihwkit_layer(layer, config)
        theirs = []
        for d in range(draws):
            torch.manual_seed(100 + d)
            analog.program_analog_weights()
            analog.drift_analog_weights(DAY)
            theirs.append(analog(x))
        exact = layer(x)  # the output scale
    ours_t, theirs_t = torch.stack(ours), torch.stack(theirs)
    scale = float(exact.std())
    # bias of the mean relative to the output scale, and spread relative to aihwkit's
    mean_gap = float((ours_t.mean(0) - theirs_t.mean(0)).abs().mean()) / scale
    spread = float(ours_t.std(0).mean() / theirs_t.std(0).mean())
    se = float(theirs_t.std(0).mean()) / scale * np.sqrt(2.0 / draws)
    assert mean_gap < 2.5 * se  # without drift compensation: 7 x se
    assert 0.93 < spread < 1.07  # without output noise: 0.82-0.92; without drift: 0.76-0.83


def test_draws_reproducible_by_seed_and_rng_untouched() -> None:
    layer = _layer()
    x = torch.randn(8, layer.in_features)

    def run(seed: int, order: tuple[float, ...]) -> dict[float, torch.Tensor]:
        cand = _candidate(layer)
        pcm = PCMDraws(cand, 3, seed=seed)
        out = {}
        with torch.no_grad():
            for t in order:
                with pcm.at(t, 1):
                    out[t] = cand(x, layer.weight, layer.bias)
        return out

    state = torch.get_rng_state()
    a = run(7, (1.0, DAY))
    assert torch.equal(torch.get_rng_state(), state)
    b = run(7, (DAY, 1.0))  # another order of times: the same draws
    c = run(8, (1.0, DAY))
    for t in (1.0, DAY):
        assert torch.equal(a[t], b[t])
        assert not torch.equal(a[t], c[t])
    with torch.no_grad():
        plain = _candidate(layer)(x, layer.weight, layer.bias)
    assert not torch.equal(a[DAY], plain)  # the draw changes the output, eval-mode not


def test_bad_draws_and_times() -> None:
    cand = _candidate(_layer())
    with pytest.raises(ConfigError, match="draws"):
        PCMDraws(cand, 0)
    pcm = PCMDraws(cand, 2)
    with pytest.raises(ConfigError, match="out of range"), pcm.at(1.0, 2):
        pass
    with pytest.raises(ConfigError, match=">= 0"), pcm.at(-1.0, 0):
        pass


def test_layers_of_a_supernet_draw_independent_noise() -> None:
    """Two analog layers with the same shape and weights get different programming noise in
    the same draw: draws are seeded by the layer, not by the candidate's kind ("analog"
    in every layer), which made their errors identical."""
    from hetmap import Mapping, build_supernet

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8))
    with torch.no_grad():
        model[2].weight.copy_(model[0].weight)
    sn = build_supernet(model, torch.randn(16, 8), candidates=("fp32", "analog"), analog=CFG)
    sn.use(Mapping.uniform(sn, "analog")).eval()
    pcm = PCMDraws(sn, 2, seed=0)
    with torch.no_grad(), pcm.at(DAY, 0):
        sn(torch.randn(4, 8))
    first, second = (ld.slices[0].tiles[0].prog for ld in pcm.layers.values())
    assert len(pcm.layers) == 2 and not torch.allclose(first, second)
