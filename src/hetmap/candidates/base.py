"""The candidate protocol: one way of running a layer on shared weights.

A candidate never owns the layer's weight or bias: the choice layer (or `CandidateLayer`, the
stand-alone drop-in) passes them at call time, so every candidate of a layer trains the same
weights, as in the paper's weight-sharing supernetwork. Candidates may own small parameters
of their own (an analog learned input range) and buffers (activation observers).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from torch import Tensor, nn

from hetmap.layers import LayerSpec

Target = Literal["digital", "analog", "none"]


class Candidate(nn.Module):
    """Base class. Subclasses set `target` and implement `run`."""

    target: ClassVar[Target] = "digital"

    def __init__(self, name: str, spec: LayerSpec) -> None:
        super().__init__()
        self.name = name
        self.spec = spec
        self.noise_scale = 1.0
        self.calibrating = False

    @property
    def weight_bits(self) -> int:
        """Bits per weight stored in digital memory (0 when none is stored digitally)."""
        return 0

    @property
    def bias_bits(self) -> int:
        return 0

    @property
    def digital_fraction(self) -> float:
        """Of an analog-target candidate, the share of its weights computed digitally at
        `weight_bits` (a hybrid's; 0 for every other candidate)."""
        return 0.0

    def set_noise_scale(self, scale: float) -> None:
        """Strength of this candidate's non-idealities in [0, 1] (the stage-2 ramp)."""
        if not 0.0 <= scale <= 1.0:
            raise ValueError(f"noise scale must be in [0, 1], got {scale}")
        self.noise_scale = float(scale)

    def respec(self, spec: LayerSpec) -> None:
        """Run on a narrowed copy of the layer (MPAAS deployment of a narrow width)."""
        self.spec = spec

    def observe(self, x: Tensor, weight: Tensor) -> None:
        """See one calibration batch of this layer's input (observers, input ranges)."""

    def run(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return self.run(x, weight, bias)

    def extra_repr(self) -> str:
        return f"{self.name}, target={self.target}"


class CandidateLayer(nn.Module):
    """A stand-alone drop-in for the original layer that runs one candidate."""

    def __init__(self, layer: nn.Module, candidate: Candidate) -> None:
        super().__init__()
        self.weight = layer.weight
        self.bias = getattr(layer, "bias", None)
        self.candidate = candidate

    def forward(self, x: Tensor) -> Tensor:
        if self.candidate.calibrating:
            self.candidate.observe(x, self.weight)
        return self.candidate(x, self.weight, self.bias)
