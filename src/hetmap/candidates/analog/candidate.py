"""The `analog` candidate: a layer on AIMC tiles with hardware-aware-training non-idealities.

The candidate owns only its learned input ranges (one per tile row slice) and their
initialisation counters; the weight and bias are the shared ones passed at call time.

Input ranges start as the running mean of `init_std_alpha` x std of the first
`init_from_data` training batches (lightning's rule). Ranges first observed in eval mode
(`Supernet.calibrate`, as `build_supernet` does on the example input) are provisional: they
serve evaluation before any training, and the first training forward starts the mean afresh
from train-mode inputs. Eval-mode activations can differ wildly from train-mode ones (an
untrained BatchNorm passes raw activations in eval mode and normalises them in training), and
ranges fitted to one would clip every input of the other, leaving no gradient past the clip.
`noise_scale` (stage-2 ramp) scales output and weight noise and blends the DAC/ADC
quantization in (`x + s * (q(x) - x)`); at 0 the exact layer runs, at 1 the target config.

A transposed convolution runs as the direct convolution of its zero-stuffed input
(`LayerSpec.conv_equivalent`): the tile plan, input ranges and PCM draws are those of that
convolution, whose crossbar holds the flipped, in/out-swapped weight. Its input ranges are
initialised on the zero-stuffed input the DACs drive.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from hetmap.candidates.analog.config import AnalogConfig
from hetmap.candidates.analog.engine import Ctx, analog_forward, init_input_range
from hetmap.candidates.analog.plan import build_plan
from hetmap.candidates.base import Candidate
from hetmap.layers import LayerSpec


class AnalogCandidate(Candidate):
    """Runs the layer on the fast engine, or on aihwkit-lightning (`config.backend`)."""

    target = "analog"

    def __init__(self, name: str, spec: LayerSpec, config: AnalogConfig) -> None:
        super().__init__(name, spec)
        self.config = config
        self.plan = build_plan(_crossbar_spec(spec), config.tile_rows, config.fuse)
        n = len(self.plan.slices)
        self.input_range: nn.Parameter | None
        if config.input_range:
            self.input_range = nn.Parameter(torch.full((n,), config.init_value),
                                            requires_grad=config.learn_input_range)
            self.register_buffer("input_range_update_idx", torch.zeros(n))
        else:
            self.register_parameter("input_range", None)
            self.register_buffer("input_range_update_idx", None)
        self._ranges_done = config.init_from_data == 0
        self._provisional = False  # ranges so far come only from eval-mode forwards
        self._rpu: dict[float, Any] = {}

    def respec(self, spec: LayerSpec) -> None:
        """Fewer output columns (or depthwise channels) keep the tile row slices, so the
        learned input ranges carry over; the tile plan is rebuilt for the new shape."""
        plan = build_plan(_crossbar_spec(spec), self.config.tile_rows, self.config.fuse)
        if len(plan.slices) != self.n_slices:
            raise ValueError(f"{spec} splits into {len(plan.slices)} tile row slices, not "
                             f"{self.n_slices}: its input ranges do not carry over")
        super().respec(spec)
        self.plan = plan

    @property
    def n_slices(self) -> int:
        return len(self.plan.slices)

    @property
    def ranges_initialised(self) -> bool:
        """True once every input range has seen `init_from_data` batches."""
        if not self._ranges_done and self.input_range_update_idx is not None:
            self._ranges_done = bool(
                (self.input_range_update_idx >= self.config.init_from_data).all())
        return self._ranges_done or self.input_range is None

    def observe(self, x: Tensor, weight: Tensor) -> None:
        if self.input_range is None:
            return
        self._restart_provisional_ranges()
        if self.ranges_initialised:
            return
        assert self.input_range_update_idx is not None
        if not self.training and not bool(self.input_range_update_idx.any()):
            self._provisional = True
        if self.spec.transposed:
            x = self.spec.stuff(x)
        init_input_range(self.plan, x.detach(), self.input_range, self.input_range_update_idx,
                         self.config)

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._provisional = False  # ranges from a checkpoint are kept as they were saved

    def _restart_provisional_ranges(self) -> None:
        """In training, forget ranges that only eval-mode inputs set (see the module doc)."""
        if self.training and self._provisional and self.input_range_update_idx is not None:
            self.input_range_update_idx.zero_()
            self._ranges_done = self.config.init_from_data == 0
            self._provisional = False

    def lightning_config(self) -> Any:
        """The aihwkit-lightning config at the current noise scale (cached)."""
        if self.noise_scale not in self._rpu:
            self._rpu[self.noise_scale] = self.config.to_lightning(self.noise_scale)
        return self._rpu[self.noise_scale]

    def run(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if self.noise_scale == 0.0:
            return self.spec.forward(x, weight, bias)
        if self.config.backend != "lightning" and self.training:
            self.observe(x, weight)
        if self.spec.transposed:  # the crossbar's direct convolution (see the module doc)
            x, weight = self.spec.stuff(x), self.spec.conv_weight(weight)
        if self.config.backend == "lightning":
            from hetmap.candidates.analog.lightning_backend import lightning_run

            if self.training:
                self._restart_provisional_ranges()

            return lightning_run(self.plan, self.lightning_config(), x, weight, bias,
                                 self.input_range, self.input_range_update_idx, self.training,
                                 self.config)
        ctx = Ctx(self.plan, self.config, self.training, self.noise_scale)
        return analog_forward(ctx, x, weight, bias, self.input_range)

    @property
    def bias_bits(self) -> int:
        return 32  # the bias is added digitally, in fp32, after the tiles' partial sums

    def extra_repr(self) -> str:
        return f"{self.name}, target=analog, slices={self.n_slices}, " \
               f"backend={self.config.backend}"


def _crossbar_spec(spec: LayerSpec) -> LayerSpec:
    """The layer a crossbar runs: a transposed convolution's direct equivalent."""
    return spec.conv_equivalent() if spec.transposed else spec
