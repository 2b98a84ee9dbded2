"""Stage 2's ramp: how strong the non-idealities are at each step, globally or per layer.

`ramp_value` is a pure function of progress, so a resumed run recomputes exactly the scale
the interrupted one used. The sensitivity-scaled ramp measures (it does not guess) how much
the loss moves when one layer alone runs its noisiest candidates at full strength, and lets
layers that barely react reach the target earlier."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from hetmap.inputs import call_model
from hetmap.mapping import Mapping
from hetmap.supernet import Supernet
from hetmap.tasks.base import Batch, Task, move_batch
from hetmap.training.config import Stage2Config


def ramp_shape(progress: float, shape: str, steps: int = 4) -> float:
    """0 -> 1 over progress in [0, 1]: linear, half-cosine, or `steps` equal stairs."""
    p = min(max(progress, 0.0), 1.0)
    if shape == "linear":
        return p
    if shape == "cosine":
        return 0.5 * (1.0 - math.cos(math.pi * p))
    if shape == "step":
        return min(math.floor(p * steps) / steps, 1.0) if p < 1.0 else 1.0
    raise ValueError(f"unknown ramp shape {shape!r}")


def ramp_value(cfg: Stage2Config, progress: float, fraction: float = 1.0) -> float:
    """Noise scale at `progress` (share of stage 2 done); a layer with `fraction` < 1 reaches
    the target after `fraction * ramp_fraction` of the stage."""
    p = progress / (cfg.ramp_fraction * fraction)
    start = cfg.ramp_start
    return start + (cfg.target - start) * ramp_shape(p, cfg.schedule, cfg.steps)


def layer_scales(cfg: Stage2Config, progress: float,
                 fractions: dict[str, float] | None) -> dict[str, float] | float:
    """One scale for every layer, or one per layer when the ramp is sensitivity-scaled."""
    if not fractions:
        return ramp_value(cfg, progress)
    return {name: ramp_value(cfg, progress, f) for name, f in fractions.items()}


def apply_scales(supernet: Supernet, scales: dict[str, float] | float) -> None:
    if isinstance(scales, dict):
        for name, s in scales.items():
            supernet.set_noise_scale(s, layers=[name])
    else:
        supernet.set_noise_scale(scales)


@torch.no_grad()
def measure_sensitivity(supernet: Supernet, task: Task, batches: Sequence[Batch],
                        device: torch.device | str) -> dict[str, float]:
    """Loss increase when layer l alone runs each of its candidates at full noise (the others
    on their first candidate, noise off); the largest increase over candidates, per layer.
    Measured in training mode (noise on) with eval-mode BN; every buffer, parameter and RNG
    state is restored afterwards, so measuring changes nothing in the run."""
    was_training = supernet.training
    saved = {k: v.clone() for k, v in supernet.state_dict().items()}
    base_map = Mapping({n: supernet.candidates(n)[0] for n in supernet.layer_names},
                       supernet.fingerprint)
    supernet.train()
    _freeze_norms(supernet)
    supernet.set_noise_scale(0.0)

    def loss_of(mapping: Mapping) -> float:
        supernet.use(mapping)
        total = 0.0
        for batch in batches:
            x, y = move_batch(batch, device)
            total += float(task.loss(call_model(supernet, x), y))
        return total / len(batches)

    state = torch.get_rng_state()
    torch.manual_seed(0)  # the measurement must not depend on (or move) the run's RNG
    base = loss_of(base_map)
    out = {}
    try:
        for name in supernet.layer_names:
            supernet.set_noise_scale(1.0, layers=[name])
            worst = 0.0
            for cand in supernet.candidates(name):
                worst = max(worst, loss_of(base_map.with_choice(name, cand)) - base)
            supernet.set_noise_scale(0.0, layers=[name])
            out[name] = worst
    finally:
        torch.set_rng_state(state)
        supernet.load_state_dict(saved)
        supernet.train(was_training)
    return out


def _freeze_norms(supernet: Supernet) -> None:
    for m in supernet.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


def sensitivity_fractions(sensitivity: dict[str, float], min_fraction: float) -> dict[str, float]:
    """Ramp share per layer: the most sensitive layer ramps over the whole ramp, the least
    over `min_fraction` of it, linearly in between."""
    top = max(sensitivity.values()) if sensitivity else 0.0
    if top <= 0.0:
        return {name: 1.0 for name in sensitivity}
    return {name: min_fraction + (1.0 - min_fraction) * max(s, 0.0) / top
            for name, s in sensitivity.items()}
