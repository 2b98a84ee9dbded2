"""`skip`: the layer is removed (identity). Offered only where the layer keeps its input's
shape on every call, so the network stays valid with no hidden projection."""

from __future__ import annotations

from torch import Tensor

from hetmap.candidates.base import Candidate


class SkipCandidate(Candidate):
    target = "none"

    def run(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return x
