"""Width choices: each group MPAAS widened runs at its original (narrow) or adapted (wide)
width, so the search decides per group whether adapting pays.

Weight sharing, exact narrow path: adaptation with init="zero" appends fresh units after
the original ones and gives the consumers zero columns for them, so reading only the first
`narrow` input channels of every consumer *is* the original model. The supernet therefore
keeps one (wide) set of weights; a narrow choice makes the group's consumers slice their
input and weight (`GatedChoiceLayer`, with its own candidates built for the narrow shape,
since analog input ranges, tile plans and int observers depend on it). Producers and
channel-wise middles keep computing the wide output in simulation - the extra units are
then simply unread, and BatchNorm statistics stay those of the shared wide layer. This is
exact for digital producers; an analog producer's noise and clip scales are those of the
wide layer. Deployment (`materialize`) removes the extra units physically, so aihwkit
tiles see the original shapes.

Attention groups are not gated: their extra per-head query/key dims change the scores and
the head layout interleaves old and new units, so they stay wide.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from hetmap.candidates.base import Candidate
from hetmap.inventory.variants import WidthGroup
from hetmap.layers import is_mappable
from hetmap.mapping import NARROW, WIDE, WIDTHS
from hetmap.supernet.choice import ChoiceLayer, Mode, Preferences


class WidthGate(Preferences, nn.Module):
    """The choice point of one widened group: preference logits over (narrow, wide)."""

    def __init__(self, group: WidthGroup, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.group = group
        self.layer_name = group.name
        self.names: tuple[str, ...] = WIDTHS
        self.logits = nn.Parameter(torch.zeros(len(WIDTHS), device=device))
        self.active: str = WIDE  # the adapted network until a mapping says otherwise
        self.mode: Mode = "single"
        self.tau = 1.0
        self.gumbel = False

    def extra_repr(self) -> str:
        g = self.group
        return f"{self.layer_name}: {g.narrow} | {g.wide}, active={self.active}"


class GatedChoiceLayer(ChoiceLayer):
    """A consumer of a widened group: reads all its input channels, or (narrow) only the
    first `narrow` ones through its narrow candidates. Soft mode mixes both by the gate's
    preferences, so differentiable mappers learn the width too."""

    def __init__(self, name: str, layer: nn.Module, candidates: dict[str, Candidate],
                 narrow_candidates: dict[str, Candidate], gate: WidthGate) -> None:
        super().__init__(name, layer, candidates)
        self.narrow = gate.group.narrow
        self.narrow_spec = self.spec.with_features(in_features=self.narrow)
        self.narrow_candidates = nn.ModuleDict(narrow_candidates)
        object.__setattr__(self, "gate", gate)  # shared with other consumers: not a child

    def all_candidates(self) -> Iterator[Candidate]:
        yield from super().all_candidates()
        yield from self.narrow_candidates.values()  # type: ignore[misc]

    def narrow_input(self, x: Tensor) -> Tensor:
        return x[..., :self.narrow] if self.spec.kind == "linear" else x[:, :self.narrow]

    def narrow_weight(self) -> Tensor:
        return self.weight[:, :self.narrow]

    def forward(self, x: Tensor) -> Tensor:
        gate: WidthGate = self.gate  # type: ignore[assignment]
        if self.mode == "calibrate":
            with torch.no_grad():
                for cand in self.narrow_candidates.values():
                    cand.observe(self.narrow_input(x), self.narrow_weight())
            return super().forward(x)
        if self.mode == "single":
            if gate.active == NARROW:
                return self.narrow_candidates[self.active](
                    self.narrow_input(x), self.narrow_weight(), self.bias)
            return super().forward(x)
        w = gate.mixture_weights()
        narrow = self.mixture(self.narrow_candidates, self.narrow_input(x), self.narrow_weight())
        return w[0] * narrow + w[1] * super().forward(x)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, narrow in={self.narrow}"


def other_params_per_unit(model: nn.Module, middles: Iterable[str], wide: int) -> int:
    """Parameters per unit of the width held by non-mappable middles (BatchNorm affine,
    per-channel PReLU): what a narrow choice removes besides the layers' own weights."""
    modules = dict(model.named_modules())
    total = 0
    for name in middles:
        module = modules[name]
        if isinstance(module, ChoiceLayer) or is_mappable(module):
            continue  # a depthwise layer: counted with the layers' own shapes
        total += sum(p.numel() // wide for p in module.parameters(recurse=False)
                     if p.dim() and p.shape[0] == wide)
    return total


# -- deployment: the network a mapping's widths build, physically --------------------------

def _param(t: Tensor, like: nn.Parameter | None) -> nn.Parameter:
    return nn.Parameter(t.detach().clone(), requires_grad=like is None or like.requires_grad)


def _fixed(layer: GatedChoiceLayer, narrow: bool) -> ChoiceLayer:
    """A plain choice layer running the gated one's narrow (or wide) path."""
    spec = layer.narrow_spec if narrow else layer.spec
    holder = spec.make_module().to(layer.weight.device)
    holder.weight = _param(layer.narrow_weight(), layer.weight) if narrow else layer.weight
    holder.bias = layer.bias
    cands = layer.narrow_candidates if narrow else layer.candidates
    fixed = ChoiceLayer(layer.layer_name, holder, dict(cands.items()))  # type: ignore[arg-type]
    with torch.no_grad():
        fixed.logits.copy_(layer.logits)
    fixed.active, fixed.mode, fixed.tau, fixed.gumbel = \
        layer.active, layer.mode, layer.tau, layer.gumbel
    return fixed


def _slice_out(module: nn.Module, n: int) -> None:
    """Keep the first `n` output units of a producer or channel-wise middle."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        for key in ("running_mean", "running_var"):
            buf = getattr(module, key)
            if buf is not None:
                setattr(module, key, buf[:n].clone())
        module.num_features = n
    elif isinstance(module, nn.PReLU):
        module.num_parameters = n
    for key in ("weight", "bias"):
        p = getattr(module, key, None)
        if isinstance(p, nn.Parameter):
            setattr(module, key, _param(p[:n], p))
    if isinstance(module, ChoiceLayer):
        spec = module.spec
        depthwise = spec.groups > 1 and spec.groups == spec.in_features == spec.out_features
        module.spec = spec.with_features(n if depthwise else None, n)
        for cand in module.all_candidates():
            cand.respec(module.spec)
    elif isinstance(module, nn.Conv1d | nn.Conv2d):
        if module.groups == module.in_channels == module.out_channels:
            module.in_channels = module.groups = n
        module.out_channels = n
    elif isinstance(module, nn.Linear):
        module.out_features = n


def materialize(model: nn.Module, narrow: dict[str, bool], groups: Iterable[WidthGroup]
                ) -> nn.Module:
    """Turn (a copy of) a supernet's model into the network its width choices build, in
    place: gated consumers become plain choice layers on their chosen path, and each narrow
    group's producers and middles keep only their first `narrow` units. `narrow` maps each
    group's name to True for its narrow choice."""
    for name, module in list(model.named_modules()):
        if isinstance(module, GatedChoiceLayer):
            gate: Any = module.gate
            model.set_submodule(name, _fixed(module, narrow[gate.layer_name]))
    modules = dict(model.named_modules())
    for group in groups:
        if narrow[group.name]:
            for name in (*group.producers, *group.middles):
                _slice_out(modules[name], group.narrow)
    return model
