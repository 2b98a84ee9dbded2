"""The choice layer: one mappable layer, its shared weights, its candidates and preferences."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hetmap.candidates.base import Candidate
from hetmap.layers import LayerSpec

Mode = Literal["single", "soft", "calibrate"]


class Preferences:
    """Learnable preferences over named options (`names`, `logits`, `tau`, `gumbel`), shared
    by choice layers and width choices."""

    names: tuple[str, ...]
    logits: nn.Parameter
    tau: float
    gumbel: bool
    training: bool

    def probabilities(self) -> Tensor:
        return F.softmax(self.logits, dim=0)

    def index(self, option: str) -> int:
        return self.names.index(option)

    def mixture_weights(self) -> Tensor:
        """Soft mode's weights: Gumbel-softmax while training with `gumbel`, else softmax."""
        if self.gumbel and self.training:
            return F.gumbel_softmax(self.logits, tau=self.tau, hard=False)
        return F.softmax(self.logits / self.tau, dim=0)


class ChoiceLayer(Preferences, nn.Module):
    """Runs the active candidate (single path), a softmax/Gumbel mixture of all of them
    (soft), or the exact layer while every candidate observes the input (calibrate)."""

    def __init__(self, name: str, layer: nn.Module, candidates: dict[str, Candidate]) -> None:
        super().__init__()
        if not candidates:
            raise ValueError(f"layer {name!r} needs at least one candidate")
        self.layer_name = name
        self.spec = LayerSpec.from_module(layer)
        self.weight = layer.weight
        self.register_parameter("bias", layer.bias)
        self.candidates = nn.ModuleDict(candidates)
        self.names: tuple[str, ...] = tuple(candidates)
        self.logits = nn.Parameter(torch.zeros(len(candidates), device=layer.weight.device))
        self.active: str = "fp32" if "fp32" in candidates else self.names[0]
        self.mode: Mode = "single"
        self.tau = 1.0
        self.gumbel = False

    def all_candidates(self) -> Iterator[Candidate]:
        """Every candidate instance this layer holds (a gated layer has narrow ones too)."""
        yield from self.candidates.values()  # type: ignore[misc]

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "single":
            return self.candidates[self.active](x, self.weight, self.bias)
        if self.mode == "calibrate":
            with torch.no_grad():
                for cand in self.candidates.values():
                    cand.observe(x, self.weight)
            return self.spec.forward(x, self.weight, self.bias)
        return self.mixture(self.candidates, x, self.weight)

    def mixture(self, candidates: nn.ModuleDict, x: Tensor, weight: Tensor) -> Tensor:
        """The soft mode's output: candidates mixed by (Gumbel-)softmax of the logits."""
        out = None
        for w, cand in zip(self.mixture_weights(), candidates.values()):
            y = w * cand(x, weight, self.bias)
            out = y if out is None else out + y
        assert out is not None
        return out

    def extra_repr(self) -> str:
        return f"{self.layer_name}: [{', '.join(self.names)}], active={self.active}, " \
               f"mode={self.mode}"
