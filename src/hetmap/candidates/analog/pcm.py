"""PCM programming noise, conductance drift, 1/f read noise and global drift compensation
on hetmap's analog engine: a fast estimate of the accuracy a chip delivers at time t after
programming, with the statistics of aihwkit's `PCMLikeNoiseModel` + `GlobalDriftCompensation`.

What aihwkit does when a deployed model (`hetmap.evaluation.deploy`: InferenceRPUConfig,
columnwise weight scaling with omega 1) is programmed and drifted, per tile (a crossbar: one
row slice x one block of <= tile_cols outputs), and what this module reproduces:

1. Mapping: each output column is divided by its abs max over the tile's rows (the digital
   out-scale), the tile is converted to a conductance pair per weight,
   g+ = g_max * max(w, 0), g- = g_max * max(-w, 0) (`SinglePairConductanceConverter`).
2. Programming (`program_weights`): both devices get Gaussian noise with the polynomial std
   sum_i c_i (g/g_max)^i (scaled by g_max / 25 uS), clamped at 0; each device draws its drift
   exponent nu = |mu(g) + sigma(g) n| from its *target* conductance. The programmed weight is
   (g+ - g-) / g_max. Global drift compensation reads the tile out with one-hot inputs
   (`eye`) through the noisy forward (output noise, ADC, bound) and keeps mean |readout|.
3. Drift to t (`drift_weights`): the programmed weights are converted to conductances again
   (abs max of the programmed tile -> g_max, so only one device of a pair is non-zero), each
   device drifts as g (1 + t/t0)^-nu with the nu drawn at programming, accumulates 1/f read
   noise std |g| q_s(g) sqrt(log((t + t0 + t_read) / (2 t_read))), clamped at 0; the tile
   is read out again and its outputs multiplied by alpha = baseline / mean |readout|.
4. Inference: inputs are clipped at the learned input range and DAC-quantized, the tile's
   MVM gets output noise (`forward.out_noise`, fresh per forward), ADC quantization and
   bound, then the out-scale, alpha and the digital bias.

Everything is vectorised over draws: programming all draws of a layer is one set of tensor
ops, done once per mapping, and each (time, draw) then runs the engine's eval path on its
drawn weights; nothing of aihwkit (conversion, C++ tiles) is involved. `LayerDraws` holds
one layer's draws; `PCMDraws` holds a model's and is what the Evaluator uses: inside
`with draws.at(t, d): ...` every analog candidate of the model runs draw d at time t.

Reproducibility: draw d of a layer depends only on (seed, the layer's module path, the
number of draws, d) (all draws of a tile come from one generator call, so draw d with 6 draws
is not draw d with 12), the drift at t on (seed, that path, t), and the forward's output
noise on (seed, d), so the same seed and draw count give the same draws in any order of
times and mappings; the global torch RNG is left as it was.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from hetmap.candidates.analog import kernels, native
from hetmap.candidates.analog.config import AnalogConfig
from hetmap.candidates.analog.engine import Ctx, dac
from hetmap.candidates.analog.plan import Plan, split_sizes
from hetmap.errors import ConfigError

_ZERO_CLIP = 1e-7  # aihwkit's floor on abs max and relative conductance


@dataclass(frozen=True)
class PCMModel:
    """aihwkit's `PCMLikeNoiseModel` (single device pair, g_min 0) and whether
    `GlobalDriftCompensation` is applied; the defaults are `PCMLikeNoiseModel(g_max=25)`."""

    g_max: float = 25.0
    prog_coeff: tuple[float, ...] = (0.26348, 1.9650, -1.1731)
    prog_coeff_g_max_reference: float = 25.0
    t_read: float = 250.0e-9
    t_0: float = 20.0
    prog_noise_scale: float = 1.0
    read_noise_scale: float = 1.0
    drift_scale: float = 1.0
    drift_compensation: bool = True

    def __post_init__(self) -> None:
        if self.g_max <= 0 or self.t_0 <= 0 or self.t_read <= 0:
            raise ConfigError(f"PCMModel needs positive g_max, t_0 and t_read, got {self}")

    @classmethod
    def from_aihwkit(cls, noise_model: Any, drift_compensation: Any = None) -> PCMModel:
        """The same statistics as an aihwkit `PCMLikeNoiseModel` (and compensation)."""
        from aihwkit.inference import GlobalDriftCompensation, PCMLikeNoiseModel
        from aihwkit.inference.converter.conductance import SinglePairConductanceConverter

        conv = getattr(noise_model, "g_converter", None)
        if type(noise_model) is not PCMLikeNoiseModel or \
                type(conv) is not SinglePairConductanceConverter or conv.g_min != 0.0:
            raise ConfigError("the fast PCM mode reproduces aihwkit's PCMLikeNoiseModel with "
                              "a SinglePairConductanceConverter(g_min=0) only; got "
                              f"{noise_model}")
        if drift_compensation is not None and \
                type(drift_compensation) is not GlobalDriftCompensation:
            raise ConfigError("the fast PCM mode reproduces GlobalDriftCompensation only; got "
                              f"{drift_compensation}")
        return cls(float(noise_model.g_max), tuple(float(c) for c in noise_model.prog_coeff),
                   float(noise_model.prog_coeff_g_max_reference), float(noise_model.t_read),
                   float(noise_model.t_0), float(noise_model.prog_noise_scale),
                   float(noise_model.read_noise_scale), float(noise_model.drift_scale),
                   drift_compensation is not None)

    # -- per-device statistics (aihwkit's formulas, on tensors of any shape) -----------------
    def programming_std(self, g: Tensor) -> Tensor:
        rel = g / self.g_max
        sig = torch.full_like(g, self.prog_coeff[0])
        power = torch.ones_like(g)
        for c in self.prog_coeff[1:]:
            power = power * rel
            sig = sig + c * power
        return sig * (self.g_max / self.prog_coeff_g_max_reference)

    def program(self, g_target: Tensor, noise: Tensor) -> Tensor:
        """Programmed conductance from standard normal `noise`."""
        sig = self.programming_std(g_target)
        return (g_target + self.prog_noise_scale * sig * noise).clamp_(min=0.0)

    def drift_exponent(self, g_target: Tensor, noise: Tensor) -> Tensor:
        rel = (g_target / self.g_max).abs().clamp(min=_ZERO_CLIP)
        mu = (-0.0155 * rel.log() + 0.0244).clamp(min=0.049, max=0.1)
        sig = (-0.0125 * rel.log() - 0.0059).clamp(min=0.008, max=0.045)
        return (mu + sig * noise).abs() * self.drift_scale

    def drift(self, g_prog: Tensor, nu: Tensor, t: float, noise: Tensor) -> Tensor:
        """Conductance `t` seconds after programming: drift plus accumulated 1/f noise."""
        tt = t + self.t_0
        g = g_prog * (tt / self.t_0) ** (-nu) if tt > self.t_0 else g_prog
        q_s = (0.0088 / ((g_prog.abs() / self.g_max) ** 0.65).clamp(min=1e-3)).clamp(max=0.2)
        sig = q_s * math.sqrt(math.log((tt + self.t_read) / (2 * self.t_read)))
        return (g + g.abs() * self.read_noise_scale * sig * noise).clamp_(min=0.0)

    def conductances(self, w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(g+, g-, scale) of tiles `w` (..., out, rows): the abs max of each tile maps to
        g_max; `scale` (..., 1, 1) converts back (w = (g+ - g-) / scale)."""
        scale = self.g_max / w.abs().amax((-2, -1), keepdim=True).clamp(min=_ZERO_CLIP)
        sw = w * scale
        return sw.clamp(0.0, self.g_max), (-sw).clamp(0.0, self.g_max), scale


@dataclass
class _Tile:
    """One crossbar: rows of one slice, outputs [lo, hi) of the layer."""

    lo: int
    hi: int
    prog: Tensor  # (draws, outputs, rows) programmed normalised weights
    nu: tuple[Tensor, Tensor]  # drift exponents of the g+ and g- devices
    baseline: Tensor | None  # (draws,) mean |readout| after programming


@dataclass
class _Slice:
    wmax: Tensor  # (out,) out-scale: abs max per output over the slice's rows
    tiles: list[_Tile]
    drifted: dict[float, tuple[Tensor, Tensor | None]] = field(default_factory=dict)


def _stable_seed(*parts: Any) -> int:
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 62) - 1)


class LayerDraws:
    """`draws` programmed states of one analog layer's (clipped) weight; weights at a time t
    are drifted once for all draws and kept."""

    def __init__(self, plan: Plan, config: AnalogConfig, weight: Tensor, model: PCMModel,
                 draws: int, seed: int, name: str, out_noise: bool = True) -> None:
        if draws <= 0:
            raise ConfigError(f"draws must be positive, got {draws}")
        self.plan, self.config, self.model = plan, config, model
        self.draws, self.seed, self.name = draws, seed, name
        self.out_noise = config.out_noise if out_noise else 0.0
        self.shape, self.dtype = tuple(weight.shape), weight.dtype
        self.slices = [self._program(i, weight.detach()) for i in range(len(plan.slices))]

    # -- geometry ---------------------------------------------------------------------------
    def _blocks(self) -> list[tuple[int, int]]:
        """Output ranges of the tiles of one row slice (per group, <= tile_cols each)."""
        out, lo = [], 0
        for _ in range(self.plan.groups):
            for size in split_sizes(self.plan.out_g, self.config.tile_cols):
                out.append((lo, lo + size))
                lo += size
        return out

    def _rows(self, ws: Tensor, i: int) -> Tensor:
        """(out, rows) crossbar matrix of slice i from its engine-layout weight slice."""
        s, karea = self.plan.slices[i], self.plan.karea
        flat = ws.reshape(ws.shape[0], -1)
        start = s.row_lo - s.ch_lo * karea
        return flat[:, start:start + s.rows]

    def _engine_layout(self, rows: Tensor, i: int) -> Tensor:
        """(draws, out, rows) back to (draws, *weight slice shape) with the masked rows 0."""
        s, karea = self.plan.slices[i], self.plan.karea
        nch = s.ch_hi - s.ch_lo
        d, out = rows.shape[0], rows.shape[1]
        if s.partial or nch * karea != s.rows:
            full = rows.new_zeros(d, out, nch * karea)
            start = s.row_lo - s.ch_lo * karea
            full[:, :, start:start + s.rows] = rows
            rows = full
        return rows.reshape(d, out, nch, *self.plan.spec.kernel_size) if self.plan.is_conv \
            else rows.reshape(d, out, nch)

    # -- programming and drift ------------------------------------------------------------
    def _gen(self, *key: Any) -> torch.Generator:
        g = torch.Generator()
        g.manual_seed(_stable_seed(self.seed, self.name, *key))
        return g

    def _randn(self, gen: torch.Generator, shape: tuple[int, ...], like: Tensor) -> Tensor:
        return torch.randn(shape, generator=gen, dtype=like.dtype).to(like.device)

    def _readout(self, w: Tensor, gen: torch.Generator) -> Tensor:
        """aihwkit's global-drift readout: mean |forward(eye)| of tiles `w` (d, out, rows)
        through the output noise, ADC and bound (in normalised units); (d,)."""
        cfg = self.config
        y = w
        if cfg.out_noise > 0:
            y = y + cfg.out_noise * self._randn(gen, tuple(w.shape), w)
        if cfg.out_bound > 0:
            if cfg.out_res > 0:
                res = 2 * cfg.out_bound / cfg.out_res
                y = (y / res).round() * res
            y = y.clamp(-cfg.out_bound, cfg.out_bound)
        return y.abs().mean((-2, -1)).clamp(min=1e-4)

    def _program(self, i: int, weight: Tensor) -> _Slice:
        plan, model, d = self.plan, self.model, self.draws
        target = self._rows(plan.weight_slice(weight, plan.slices[i]), i).float()
        wmax = target.abs().amax(1)
        wmax = torch.where(wmax == 0, torch.ones_like(wmax), wmax)
        norm = target / wmax[:, None]
        gen = self._gen("program", i)
        tiles = []
        for lo, hi in self._blocks():
            w = norm[lo:hi]
            gp, gm, scale = model.conductances(w)
            shape = (d, *w.shape)
            pp = model.program(gp.expand(shape), self._randn(gen, shape, w))
            pm = model.program(gm.expand(shape), self._randn(gen, shape, w))
            nu = (model.drift_exponent(gp.expand(shape), self._randn(gen, shape, w)),
                  model.drift_exponent(gm.expand(shape), self._randn(gen, shape, w)))
            prog = (pp - pm) / scale
            base = self._readout(prog, gen) if model.drift_compensation else None
            tiles.append(_Tile(lo, hi, prog, nu, base))
        return _Slice(wmax, tiles)

    def at(self, t: float) -> list[tuple[Tensor, Tensor | None]]:
        """Per row slice: (draws, *weight slice) drifted weights in the layer's units and the
        (draws, out) drift-compensation factors (None without compensation)."""
        out = []
        for i, sl in enumerate(self.slices):
            if t not in sl.drifted:
                sl.drifted[t] = self._drift_slice(i, sl, t)
            out.append(sl.drifted[t])
        return out

    def _drift_slice(self, i: int, sl: _Slice, t: float) -> tuple[Tensor, Tensor | None]:
        model = self.model
        gen = self._gen("drift", i, float(t))
        rows, alphas = [], []
        for tile in sl.tiles:
            gp, gm, scale = model.conductances(tile.prog)
            fp = model.drift(gp, tile.nu[0], t, self._randn(gen, tuple(gp.shape), gp))
            fm = model.drift(gm, tile.nu[1], t, self._randn(gen, tuple(gm.shape), gm))
            w = (fp - fm) / scale
            rows.append(w)
            if tile.baseline is not None:
                alpha = tile.baseline / self._readout(w, gen)
                alphas.append(alpha[:, None].expand(-1, tile.hi - tile.lo))
        drifted = torch.cat(rows, 1) * sl.wmax[None, :, None]
        weights = self._engine_layout(drifted, i).to(self.dtype)
        alpha = torch.cat(alphas, 1) if alphas else None
        return weights, alpha

    # -- the forward of one draw --------------------------------------------------------------
    def forward(self, c: Ctx, x: Tensor, weight: Tensor, ir: Tensor | None, t: float,
                draw: int) -> Tensor:
        """The layer (without bias) on draw `draw` at time `t`: the engine's eval path with
        the drifted weights, inference output noise and drift compensation."""
        if tuple(weight.shape) != self.shape:
            raise ConfigError(f"layer {self.name!r} changed shape since it was programmed "
                              f"({self.shape} -> {tuple(weight.shape)}); program again")
        plan, cfg = c.plan, c.config
        out: Tensor | None = None
        for i, (s, (ws_all, alpha_all)) in enumerate(zip(plan.slices, self.at(t))):
            r = None if ir is None else ir[i]
            xq = dac(plan.take(x, s), r, cfg, 1.0)
            ws = ws_all[draw].to(device=x.device, dtype=x.dtype)
            y = plan.mvm(xq, ws)
            del xq
            if r is not None:
                y = self._adc(plan, y, r, self.slices[i].wmax.to(y.device, y.dtype))
            if alpha_all is not None:
                y = y * plan.channel_view(alpha_all[draw].to(y.device, y.dtype), y.ndim)
            out = y if out is None else out.add_(y)
        assert out is not None
        return out

    def _adc(self, plan: Plan, y: Tensor, r: Tensor, wmax: Tensor) -> Tensor:
        """Output noise, ADC and bound of one tile slice's partial sum (aihwkit's forward:
        in tile units noise `out_noise`, bound `out_bound`, scaled by r x out-scale)."""
        cfg = self.config
        scale = wmax * r
        std = scale * self.out_noise if self.out_noise > 0 else None
        bound = scale * cfg.out_bound if cfg.out_bound > 0 else None
        if std is None and bound is None:
            return y
        if y.is_contiguous() and native.usable(y):
            inner = math.prod(y.shape[2:]) if plan.is_conv else 1
            return native.adc(y, std, bound, cfg.out_res, inner)[0]
        std = None if std is None else plan.channel_view(std, y.ndim)
        noise = None if std is None else torch.randn_like(y)
        if bound is None:
            return y + noise * std  # type: ignore[operator]
        return kernels.adc_impl(y, noise, std, plan.channel_view(bound, y.ndim),
                                cfg.out_res)[0]


class PCMDraws:
    """Draws of every analog layer of `module` (a supernet on its active mapping, or any
    model of analog CandidateLayers), programmed lazily from the weights each layer runs
    with. `with draws.at(t, d): model(x)` runs draw d at t seconds after programming."""

    def __init__(self, module: nn.Module, draws: int, *, seed: int = 0,
                 model: PCMModel | None = None, out_noise: bool = True) -> None:
        from hetmap.candidates.analog.candidate import AnalogCandidate

        if draws <= 0:
            raise ConfigError(f"draws must be positive, got {draws}")
        self.draws, self.seed = draws, seed
        self.model = model or PCMModel()
        self.out_noise = out_noise
        # each layer's draws are seeded by its module path: a candidate's own name is its
        # kind ("analog" in every layer of a supernet), which would give every layer of
        # the same shape the same noise and correlate their errors within a draw
        self.names = {id(m): path or m.name for path, m in module.named_modules()
                      if isinstance(m, AnalogCandidate)}
        self.candidates = [m for m in module.modules() if isinstance(m, AnalogCandidate)]
        for cand in self.candidates:
            if cand.config.backend != "hetmap":
                raise ConfigError(f"layer {cand.name!r} runs on the {cand.config.backend!r} "
                                  "backend; the fast PCM mode needs AnalogConfig(backend="
                                  "'hetmap')")
        self.layers: dict[int, LayerDraws] = {}

    def layer(self, c: Ctx, weight: Tensor, name: str) -> LayerDraws:
        key = id(c.plan)
        if key not in self.layers:
            self.layers[key] = LayerDraws(c.plan, c.config, weight, self.model, self.draws,
                                          self.seed, name, self.out_noise)
        return self.layers[key]

    @contextmanager
    def at(self, t: float, draw: int) -> Iterator[PCMDraws]:
        """Every analog candidate runs draw `draw` at `t` s; the forward's output noise is
        seeded by (seed, draw) and the global RNG restored afterwards."""
        if not 0 <= draw < self.draws:
            raise ConfigError(f"draw {draw} out of range: {self.draws} draws")
        if t < 0:
            raise ConfigError(f"time must be >= 0 s after programming, got {t}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_stable_seed(self.seed, "forward", draw))
            for cand in self.candidates:
                cand.plan.drawn = _Active(self, self.names[id(cand)], float(t), draw)
            try:
                yield self
            finally:
                for cand in self.candidates:
                    cand.plan.drawn = None


@dataclass(frozen=True)
class _Active:
    """What a plan runs while a draw is active (`Plan.drawn`, the engine's eval hook)."""

    draws: PCMDraws
    name: str
    t: float
    draw: int

    def forward(self, c: Ctx, x: Tensor, weight: Tensor, ir: Tensor | None) -> Tensor:
        layer = self.draws.layer(c, weight, self.name)
        return layer.forward(c, x, weight, ir, self.t, self.draw)
