"""The mixed-precision supernetwork: the user's model with every mappable layer replaced by
a choice layer over hardware candidates sharing that layer's trained weights."""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hetmap.candidates import Candidate, make_candidate
from hetmap.candidates.registry import check_candidate
from hetmap.errors import ConfigError, UnknownCandidateError
from hetmap.inputs import ModelInput, call_model
from hetmap.inventory import Inventory, normalize_model, scan
from hetmap.inventory.scan import check_tile
from hetmap.mapping import Mapping
from hetmap.supernet.choice import ChoiceLayer, Mode
from hetmap.supernet.objectives import CandidateFacts, Objectives, ObjectiveTable

DEFAULT_CANDIDATES = ("fp32", "int8", "analog")


class Supernet(nn.Module):
    """A model whose mappable layers each choose among candidates.

    `layer_names` are the searchable layers; layers excluded at build time keep one fixed
    candidate, still count in the objectives, and need no entry in a Mapping.
    """

    def __init__(self, model: nn.Module, inventory: Inventory,
                 choices: dict[str, ChoiceLayer], searchable: tuple[str, ...],
                 options: dict[str, Any]) -> None:
        super().__init__()
        self.model = model
        self.inventory = inventory
        self._choices = choices  # plain dict: the layers are registered through `model`
        self._searchable = searchable
        self.options = options
        facts = {}
        for layer in choices.values():
            for cand in layer.candidates.values():
                facts[cand.name] = CandidateFacts(cand.target, cand.weight_bits, cand.bias_bits)
        offered = {name: layer.names for name, layer in choices.items()}
        self.table = ObjectiveTable(inventory, inventory.names, offered, facts)

    # -- structure -------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    @property
    def layer_names(self) -> tuple[str, ...]:
        return self._searchable

    @property
    def all_layer_names(self) -> tuple[str, ...]:
        return self.inventory.names

    @property
    def fingerprint(self) -> str:
        return self.inventory.fingerprint

    def choice_layer(self, name: str) -> ChoiceLayer:
        try:
            return self._choices[name]
        except KeyError:
            raise UnknownCandidateError(f"the supernet has no layer named {name!r}") from None

    def choice_layers(self) -> Iterator[tuple[str, ChoiceLayer]]:
        return iter(self._choices.items())

    def candidates(self, name: str) -> tuple[str, ...]:
        return self.choice_layer(name).names

    def candidate(self, layer: str, candidate: str) -> Candidate:
        return self.choice_layer(layer).candidates[candidate]

    # -- paths -----------------------------------------------------------------------------
    def use(self, mapping: Mapping) -> Supernet:
        """Single-path mode on `mapping` (validated first)."""
        mapping.validate(self)
        for name in self._searchable:
            layer = self._choices[name]
            layer.active, layer.mode = mapping[name], "single"
        for name, layer in self._choices.items():
            if name not in mapping:
                layer.mode = "single"
        return self

    def current_mapping(self) -> Mapping:
        return Mapping({n: self._choices[n].active for n in self._searchable}, self.fingerprint)

    def sample(self, generator: torch.Generator | None = None,
               from_preferences: bool = False) -> Mapping:
        """A random mapping: uniform over each layer's candidates, or drawn from its
        preferences."""
        choices = {}
        for name in self._searchable:
            layer = self._choices[name]
            if from_preferences:
                probs = layer.probabilities().detach().cpu()
                i = int(torch.multinomial(probs, 1, generator=generator).item())
            else:
                i = int(torch.randint(len(layer.names), (1,), generator=generator).item())
            choices[name] = layer.names[i]
        return Mapping(choices, self.fingerprint)

    def set_mode(self, mode: Mode, tau: float = 1.0, gumbel: bool = False) -> Supernet:
        """`single` (current active choices), `soft` (mixture by preferences) or `calibrate`."""
        if mode not in ("single", "soft", "calibrate"):
            raise ConfigError(f"mode must be 'single', 'soft' or 'calibrate', got {mode!r}")
        if tau <= 0:
            raise ConfigError(f"tau must be positive, got {tau}")
        for layer in self._choices.values():
            layer.mode, layer.tau, layer.gumbel = mode, tau, gumbel
        return self

    # -- preferences -----------------------------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        return [self._choices[n].logits for n in self._searchable]

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        arch |= {id(layer.logits) for layer in self._choices.values()}
        return [p for p in self.parameters() if id(p) not in arch]

    def preferences(self) -> dict[str, dict[str, float]]:
        out = {}
        for name in self._searchable:
            layer = self._choices[name]
            probs = layer.probabilities().detach().cpu().tolist()
            out[name] = dict(zip(layer.names, probs))
        return out

    def log_prob(self, mapping: Mapping) -> Tensor:
        """Log-probability of `mapping` under the preferences (differentiable)."""
        total = None
        for name in self._searchable:
            layer = self._choices[name]
            lp = torch.log_softmax(layer.logits, dim=0)[layer.index(mapping[name])]
            total = lp if total is None else total + lp
        assert total is not None
        return total

    # -- non-idealities and calibration ----------------------------------------------------
    def set_noise_scale(self, scale: float, candidates: Iterable[str] | None = None,
                        layers: Iterable[str] | None = None) -> None:
        wanted = None if candidates is None else set(candidates)
        for name in (self._choices if layers is None else layers):
            for cand in self._choices[name].candidates.values():
                if wanted is None or cand.name in wanted:
                    cand.set_noise_scale(scale)

    @torch.no_grad()
    def calibrate(self, batches: Iterable[ModelInput]) -> Supernet:
        """Let every candidate observe real inputs on the exact (fp32) path: sets int
        activation ranges and analog input ranges. Restores the previous modes."""
        modes = {name: layer.mode for name, layer in self._choices.items()}
        was_training = self.training
        self.eval()
        self.set_mode("calibrate")
        try:
            for batch in batches:
                call_model(self.model, batch)
        finally:
            for name, layer in self._choices.items():
                layer.mode = modes[name]
            self.train(was_training)
        return self

    # -- objectives ------------------------------------------------------------------------
    def objectives(self, mapping: Mapping) -> Objectives:
        mapping.validate(self)
        return self.table.evaluate(self._full_choices(mapping))

    def _full_choices(self, mapping: Mapping) -> dict[str, str]:
        choices = {name: layer.names[0] for name, layer in self._choices.items()}
        choices.update(mapping)
        return choices

    def mapping_indices(self, mappings: Sequence[Mapping]) -> Any:
        """(N, all layers) candidate indices for vectorised objectives."""
        return np.stack([self.table.indices(self._full_choices(m)) for m in mappings])


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def build_supernet(model: nn.Module, example_input: ModelInput,
                   candidates: Sequence[str] = DEFAULT_CANDIDATES,
                   analog: Any = None, exclude: Sequence[str] = (), fixed: str = "fp32",
                   tile: tuple[int, int] | None = None, calibrate: bool = True,
                   **candidate_options: Any) -> Supernet:
    """Wrap every mappable layer of (a copy of) `model` in a choice layer.

    candidates: names for every layer; `skip` is added only where it keeps the network valid.
    analog: an `AnalogConfig` (defaults to aihwkit's HWA preset values).
    exclude: layer names or glob patterns that stay on the `fixed` candidate.
    tile: crossbar tile (rows, cols); defaults to the analog config's.
    calibrate: observe the example input so int and analog ranges start from data.
    """
    from hetmap.candidates.analog import AnalogConfig

    candidates = tuple(dict.fromkeys(candidates))
    if not candidates:
        raise ConfigError("candidates must name at least one candidate")
    for name in (*candidates, fixed):
        check_candidate(name)
    analog = analog if analog is not None else AnalogConfig()
    tile = check_tile(tile if tile is not None else analog.tile)
    net = normalize_model(copy.deepcopy(model), inplace=True)
    inventory = scan(net, example_input, tile=tile)
    modules = dict(net.named_modules())
    choices: dict[str, ChoiceLayer] = {}
    searchable = []
    options = dict(candidate_options, analog=analog)
    for info in inventory:
        excluded = _matches(info.name, exclude)
        names = (fixed,) if excluded else tuple(
            c for c in candidates if c != "skip" or info.skippable)
        if not names:
            names = (fixed,)
            excluded = True
        layer = modules[info.name]
        cands = {c: make_candidate(c, info.spec, **options).to(layer.weight.device)
                 for c in names}
        choice = ChoiceLayer(info.name, layer, cands)
        net.set_submodule(info.name, choice)
        choices[info.name] = choice
        if not excluded:
            searchable.append(info.name)
    if not searchable:
        raise ConfigError(f"every mappable layer is excluded by {list(exclude)}; "
                          "exclude fewer layers")
    sn = Supernet(net, inventory, choices, tuple(searchable),
                  {"candidates": candidates, "exclude": tuple(exclude), "fixed": fixed,
                   "tile": tile})
    sn.train(net.training)  # a new Module starts in training mode; keep the model's mode
    if calibrate:
        sn.calibrate([example_input])
    return sn
