"""Where hetmap's accuracy@1d and aihwkit's 1-day accuracy part: every analog layer of a
trained supernet's mapping in isolation, hetmap's fast PCM path against the aihwkit layer
`deploy` built for it, on the same (clean) input the layer sees in the network.

For each analog layer: the clean output c (hetmap's eval-mode path), then per draw the
output y at 1 day of both implementations; printed per layer: the gain <y, c> / <c, c>
(what drift compensation should keep near 1) and the relative residual ||y - gain c|| /
||c|| (programming noise, read noise, output noise, quantization), mean +- std over draws;
below each layer, the structured part of the error: the std over output channels of the
per-channel gain and the rms per-channel mean error relative to the rms of c.
A layer where the two columns part is where the estimate goes wrong.

Usage: .venv/bin/python bench/drift_layers.py [--model resnet8] [--draws 8] [--t 86400]
Uses the supernet cached by bench/drift_surrogate.py (trained there if missing).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from drift_surrogate import add_training_args, trained_supernet
from hetmap import Mapping
from hetmap.candidates.analog.pcm import PCMDraws
from hetmap.evaluation import deploy
from hetmap.evaluation.batchnorm import calibration_inputs, recalibrate_batchnorm
from hetmap.inputs import call_model
from hetmap.tasks import move_batch


def layer_inputs(sn, names: list[str], x) -> dict[str, torch.Tensor]:
    """The input each named ChoiceLayer sees in the (eval-mode) network on batch x."""
    seen: dict[str, torch.Tensor] = {}
    layers = dict(sn.choice_layers())
    hooks = [layers[n].register_forward_pre_hook(
        lambda _m, args, n=n: seen.__setitem__(n, args[0].detach().clone())) for n in names]
    try:
        call_model(sn, x)
    finally:
        for h in hooks:
            h.remove()
    return seen


def channel_stats(ys: list[torch.Tensor], c: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per draw: the std over output channels of each channel's gain <y_k, c_k> / <c_k, c_k>,
    and the rms over channels of each channel's mean error (y - c over the batch and
    positions) relative to the rms of c: structured errors that every image sees alike."""
    dims = [0, *range(2, c.ndim)]
    cc = (c * c).sum(dims)
    rms = float(c.pow(2).mean().sqrt())
    spread = np.array([float(((y * c).sum(dims) / cc.clamp(min=1e-12)).std()) for y in ys])
    offset = np.array([float((y - c).mean(dims).pow(2).mean().sqrt()) / rms for y in ys])
    return spread, offset


def stats(ys: list[torch.Tensor], c: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    cc = float((c * c).sum())
    gains = np.array([float((y * c).sum()) / cc for y in ys])
    resid = np.array([float((y - g * c).norm()) / float(c.norm()) for y, g in zip(ys, gains)])
    return gains, resid


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="resnet8")
    parser.add_argument("--draws", type=int, default=8)
    parser.add_argument("--t", type=float, default=86400.0)
    parser.add_argument("--batch", type=int, default=64)
    add_training_args(parser)
    args = parser.parse_args()
    sn, task = trained_supernet(args.model, args)
    mapping = Mapping.uniform(sn, "analog")
    loaders = task.loaders(batch_size=256, seed=0)
    bn_inputs = calibration_inputs(loaders.train, 4, "cpu")
    x = move_batch(next(iter(loaders.val)), "cpu")[0][:args.batch]
    names = [n for n, _ in sn.choice_layers() if mapping[n] == "analog"]
    with torch.no_grad():
        dep = deploy(sn, mapping, bn_inputs=bn_inputs)
        root = getattr(dep, "module", dep)
        sn.eval()
        sn.use(mapping)
        recalibrate_batchnorm(sn, bn_inputs)
        inputs = layer_inputs(sn, names, x)
        layers = dict(sn.choice_layers())
        pcm = PCMDraws(sn, args.draws, seed=0)
        print(f"{args.model}, all-analog, t = {args.t:g} s, {args.draws} draws, "
              f"{args.batch} validation images; gain / residual mean +- std over draws")
        print(f"{'layer':28s} {'hetmap gain':>15s} {'aihwkit gain':>15s} "
              f"{'hetmap resid':>15s} {'aihwkit resid':>15s}")
        for name in names:
            xin = inputs[name]
            clean = layers[name](xin)
            ours = []
            for d in range(args.draws):
                with pcm.at(args.t, d):
                    ours.append(layers[name](xin))
            analog = root.get_submodule(name)
            theirs = []
            for d in range(args.draws):
                torch.manual_seed(100 + d)
                analog.program_analog_weights()
                analog.drift_analog_weights(args.t)
                theirs.append(analog(xin))
            bias = layers[name].bias
            if bias is not None:  # compare the analog MVM part: the bias is digital
                view = (1, -1) + (1,) * (clean.ndim - 2)
                clean = clean - bias.view(view)
                ours = [y - bias.view(view) for y in ours]
                theirs = [y - bias.view(view) for y in theirs]
            row(name, stats(ours, clean), stats(theirs, clean))
            row("  per channel: spread/offset", channel_stats(ours, clean),
                channel_stats(theirs, clean))


def row(name: str, ours: tuple[np.ndarray, np.ndarray],
        theirs: tuple[np.ndarray, np.ndarray]) -> None:
    (go, ro), (gt, rt) = ours, theirs
    print(f"{name:28s} {go.mean():7.3f} +- {go.std():5.3f} {gt.mean():7.3f} +- "
          f"{gt.std():5.3f} {ro.mean():7.3f} +- {ro.std():5.3f} {rt.mean():7.3f} +- "
          f"{rt.std():5.3f}", flush=True)


if __name__ == "__main__":
    main()
