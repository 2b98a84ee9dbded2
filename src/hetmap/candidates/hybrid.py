"""`hybrid<p>`: Harmonica's split of one layer (Behnam et al., IPDPS 2024, after HybridAC,
arXiv 2208.13896): the few variation-sensitive weights computed on a digital accelerator,
the rest on the analog tiles, the two outputs summed. Sources and every assumed choice:
docs/compare.md, "Harmonica".

Granularity: whole crossbar rows (one input element of every output column: an input
feature of a Linear, one (channel, kernel position) of a Conv), so the digital unit needs only
those inputs. Criterion: a row's sensitivity is the sum of its squared weights (under
conductance-proportional programming noise and drift, a row's output error grows with it);
the `digital_rows(spec, fraction)` rows of largest sensitivity are selected from the weights
passed at call time, like every candidate's. The digital part is fake-quantized as the
`digital` integer candidate (per-output-channel symmetric weights on its own rows, so its
scale is set by the outliers it took; per-tensor affine inputs); the analog part is the
analog candidate on the remaining rows (the selected rows programmed to zero). The bias is
added once, on the analog side as the analog candidate adds it. At fraction 0 the candidate
is the analog candidate; at fraction 1 it is its digital candidate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from hetmap.candidates.base import Candidate
from hetmap.candidates.digital import IntCandidate
from hetmap.errors import ConfigError
from hetmap.layers import LayerSpec

HYBRID_FRACTIONS = (0.02, 0.05, 0.1)  # registered by default: hybrid2, hybrid5, hybrid10
_DIGITAL_BITS = {"int8": 8, "int4": 4}


@dataclass(frozen=True)
class HybridSplit:
    """fraction: the share of a layer's crossbar rows computed digitally (rounded per layer,
    `digital_rows`); digital: the integer candidate those rows run as."""

    fraction: float
    digital: str = "int8"

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraction <= 1.0:
            raise ConfigError(f"hybrid fraction must be in [0, 1], got {self.fraction}")
        if self.digital not in _DIGITAL_BITS:
            raise ConfigError(f"hybrid digital part must be one of {sorted(_DIGITAL_BITS)}, "
                              f"got {self.digital!r}")

    @property
    def name(self) -> str:
        """hybrid5 (5 %, int8), hybrid2.5 -> hybrid2p5, int4 digital part: hybrid5_int4."""
        pct = f"{self.fraction * 100:g}".replace(".", "p")
        return f"hybrid{pct}" + ("" if self.digital == "int8" else f"_{self.digital}")


_SPLITS: dict[str, HybridSplit] = {}


def add_split(split: HybridSplit) -> str:
    _SPLITS[split.name] = split
    return split.name


def hybrid_split(candidate: str) -> HybridSplit | None:
    """The split of hybrid candidate `candidate`, None for any other candidate name."""
    return _SPLITS.get(candidate)


def digital_rows(spec: LayerSpec, fraction: float) -> int:
    """Crossbar rows of `spec` computed digitally at `fraction` (rounded to nearest)."""
    return min(spec.rows, round(fraction * spec.rows))


def digital_share(spec: LayerSpec, fraction: float) -> float:
    """The share of `spec`'s weights (and MACs) its hybrid at `fraction` computes digitally."""
    return digital_rows(spec, fraction) / spec.rows if spec.rows else 0.0


def sensitive_rows(weight: Tensor, k: int) -> Tensor:
    """Indices of the k crossbar rows with the largest sum of squared weights."""
    w2 = weight.detach().reshape(weight.shape[0], -1).pow(2).sum(dim=0)
    return torch.topk(w2, k, sorted=False).indices


class HybridCandidate(Candidate):
    """`analog` on most rows plus an integer candidate on the sensitive ones.

    target is "analog": its layer occupies tiles (every row's, the selected ones programmed to
    zero); `digital_fraction` tells the objective and cost tables the rest."""

    target = "analog"

    def __init__(self, name: str, spec: LayerSpec, split: HybridSplit, analog_config: Any,
                 act_bits: int = 8) -> None:
        from hetmap.candidates.analog import AnalogCandidate

        super().__init__(name, spec)
        self.split = split
        self.analog = AnalogCandidate("analog", spec, analog_config)
        self.digital = IntCandidate(split.digital, spec, _DIGITAL_BITS[split.digital], act_bits)

    @property
    def config(self) -> Any:
        """The analog part's AnalogConfig (what its tiles hold; used by deploy)."""
        return self.analog.config

    @property
    def digital_fraction(self) -> float:
        return self.split.fraction

    @property
    def weight_bits(self) -> int:
        return self.digital.weight_bits

    @property
    def rows(self) -> int:
        return digital_rows(self.spec, self.split.fraction)

    def set_noise_scale(self, scale: float) -> None:
        super().set_noise_scale(scale)
        self.analog.set_noise_scale(scale)
        self.digital.set_noise_scale(scale)

    def respec(self, spec: LayerSpec) -> None:
        self.analog.respec(spec)
        self.digital.respec(spec)
        super().respec(spec)

    def row_mask(self, weight: Tensor) -> Tensor:
        """(1, rows) boolean: True on the rows computed digitally."""
        mask = torch.zeros(self.spec.rows, dtype=torch.bool, device=weight.device)
        mask[sensitive_rows(weight, self.rows)] = True
        return mask[None, :]

    def split_weight(self, weight: Tensor) -> tuple[Tensor, Tensor]:
        """(analog part, digital part) of `weight`: each zero on the other's rows."""
        mask = self.row_mask(weight)
        flat = weight.reshape(weight.shape[0], -1)
        zero = torch.zeros((), dtype=weight.dtype, device=weight.device)
        return (torch.where(mask, zero, flat).view_as(weight),
                torch.where(mask, flat, zero).view_as(weight))

    def observe(self, x: Tensor, weight: Tensor) -> None:
        analog, _ = self.split_weight(weight)
        self.analog.observe(x, analog)
        self.digital.observe(x, weight)

    def run(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        k = self.rows
        if k == 0:
            return self.analog(x, weight, bias)
        if k == self.spec.rows:
            return self.digital(x, weight, bias)
        analog, digital = self.split_weight(weight)
        return self.analog(x, analog, bias) + self.digital(x, digital, None)

    def extra_repr(self) -> str:
        return f"{self.name}, target=analog, digital {self.split.digital} on " \
               f"{self.rows}/{self.spec.rows} rows"


class HybridLayer(nn.Module):
    """The deployed form of a hybrid layer: `analog` (a plain layer holding the analog rows,
    which aihwkit converts) plus the digital candidate on the sensitive rows."""

    def __init__(self, analog: nn.Module, digital_weight: Tensor, digital: Candidate) -> None:
        super().__init__()
        self.analog = analog
        self.digital_weight = nn.Parameter(digital_weight.detach().clone(), requires_grad=False)
        self.digital = digital

    def forward(self, x: Tensor) -> Tensor:
        return self.analog(x) + self.digital(x, self.digital_weight, None)


def hybrid_factory(split: HybridSplit) -> Any:
    """A registry factory for `split`: `factory(spec, options) -> HybridCandidate`."""
    def make(spec: LayerSpec, options: dict[str, Any]) -> Candidate:
        from hetmap.candidates.analog import AnalogConfig

        bits = options.get(f"{split.digital}_act_bits", _DIGITAL_BITS[split.digital])
        return HybridCandidate(split.name, spec, split, options.get("analog") or AnalogConfig(),
                               bits)
    return make
