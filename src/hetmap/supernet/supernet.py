"""The mixed-precision supernetwork: the user's model with every mappable layer replaced by
a choice layer over hardware candidates sharing that layer's trained weights."""

from __future__ import annotations

import contextlib
import copy
import fnmatch
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hetmap.candidates import Candidate, make_candidate
from hetmap.candidates.analog import AnalogConfig
from hetmap.candidates.registry import check_candidate
from hetmap.errors import ConfigError, MappingError, UnknownCandidateError
from hetmap.inputs import ModelInput, call_model
from hetmap.inventory import Inventory, normalize_model, scan
from hetmap.inventory.scan import check_model, check_pattern_list, check_patterns, check_tile
from hetmap.inventory.variants import ShapeVariants, WidthGroup, shape_variants
from hetmap.mapping import NARROW, WIDE, Mapping
from hetmap.supernet.choice import ChoiceLayer, Mode
from hetmap.supernet.objectives import CandidateFacts, Objectives, ObjectiveTable
from hetmap.supernet.options import SupernetOptions
from hetmap.supernet.width import (
    GatedChoiceLayer,
    WidthGate,
    materialize,
    other_params_per_unit,
)

DEFAULT_CANDIDATES = ("fp32", "int8", "analog")


class Supernet(nn.Module):
    """A model whose mappable layers each choose among candidates.

    `layer_names` are the searchable choices: the searchable layers, then the width choices
    of an adapted model (`gate_names`, "width:<producer>" -> "narrow" | "wide"; see
    hetmap.supernet.width). Layers excluded at build time keep one fixed candidate, still
    count in the objectives, and need no entry in a Mapping.
    """

    def __init__(self, model: nn.Module, inventory: Inventory,
                 choices: dict[str, ChoiceLayer], searchable: tuple[str, ...],
                 options: SupernetOptions, gates: Sequence[WidthGate] = ()) -> None:
        super().__init__()
        self.model = model
        self.inventory = inventory
        self._choices = choices  # plain dict: the layers are registered through `model`
        self._searchable = searchable
        self.options = options  # frozen: how it was built (tile, analog config, ...)
        self.width_gates = nn.ModuleList(gates)  # no state at all without width choices
        self._gates: dict[str, WidthGate] = {g.layer_name: g for g in gates}
        self.variants: ShapeVariants | None = \
            shape_variants(inventory, [g.group for g in gates]) if gates else None
        facts = {}
        for layer in choices.values():
            for cand in layer.all_candidates():
                facts[cand.name] = CandidateFacts(cand.target, cand.weight_bits, cand.bias_bits,
                                                  cand.digital_fraction)
        offered = {name: layer.names for name, layer in choices.items()}
        self.table = ObjectiveTable(inventory, inventory.names, offered, facts, self.variants)
        self._columns = [(col, name, {c: j for j, c in enumerate(offered[name])})
                         for col, name in enumerate(inventory.names) if name in searchable]

    # -- structure -------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    @property
    def layer_names(self) -> tuple[str, ...]:
        """Every searchable choice: layers, then width choices."""
        return self._searchable + tuple(self._gates)

    @property
    def gate_names(self) -> tuple[str, ...]:
        return tuple(self._gates)

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

    def gate(self, name: str) -> WidthGate:
        try:
            return self._gates[name]
        except KeyError:
            raise UnknownCandidateError(f"the supernet has no width choice {name!r}") from None

    def _choice(self, name: str) -> ChoiceLayer | WidthGate:
        return self._gates[name] if name in self._gates else self.choice_layer(name)

    def candidates(self, name: str) -> tuple[str, ...]:
        return self._choice(name).names

    def candidate(self, layer: str, candidate: str) -> Candidate:
        return self.choice_layer(layer).candidates[candidate]

    # -- paths -----------------------------------------------------------------------------
    def use(self, mapping: Mapping) -> Supernet:
        """Single-path mode on `mapping` (validated first)."""
        mapping.validate(self)
        for name in self.layer_names:
            choice = self._choice(name)
            choice.active, choice.mode = mapping[name], "single"
        for name, layer in self._choices.items():
            if name not in mapping:
                layer.mode = "single"
        return self

    def current_mapping(self) -> Mapping:
        return Mapping({n: self._choice(n).active for n in self.layer_names}, self.fingerprint)

    @contextlib.contextmanager
    def keeping_paths(self) -> Iterator[Supernet]:
        """Restore every choice's active option and mode on exit (scoring borrows paths)."""
        saved = [(c, c.active, c.mode) for c in (*self._choices.values(), *self._gates.values())]
        try:
            yield self
        finally:
            for choice, active, mode in saved:
                choice.active, choice.mode = active, mode

    def sample(self, generator: torch.Generator | None = None,
               from_preferences: bool = False) -> Mapping:
        """A random mapping: uniform over each choice's options, or drawn from its
        preferences."""
        choices = {}
        for name in self.layer_names:
            choice = self._choice(name)
            if from_preferences:
                probs = choice.probabilities().detach().cpu()
                i = int(torch.multinomial(probs, 1, generator=generator).item())
            else:
                i = int(torch.randint(len(choice.names), (1,), generator=generator).item())
            choices[name] = choice.names[i]
        return Mapping(choices, self.fingerprint)

    def set_mode(self, mode: Mode, tau: float = 1.0, gumbel: bool = False) -> Supernet:
        """`single` (current active choices), `soft` (mixture by preferences) or `calibrate`."""
        if mode not in ("single", "soft", "calibrate"):
            raise ConfigError(f"mode must be 'single', 'soft' or 'calibrate', got {mode!r}")
        if tau <= 0:
            raise ConfigError(f"tau must be positive, got {tau}")
        for choice in (*self._choices.values(), *self._gates.values()):
            choice.mode, choice.tau, choice.gumbel = mode, tau, gumbel
        return self

    # -- preferences -----------------------------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        """Preference logits in `layer_names` order."""
        return [self._choice(n).logits for n in self.layer_names]

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        arch |= {id(layer.logits) for layer in self._choices.values()}
        return [p for p in self.parameters() if id(p) not in arch]

    def preferences(self) -> dict[str, dict[str, float]]:
        out = {}
        for name in self.layer_names:
            choice = self._choice(name)
            probs = choice.probabilities().detach().cpu().tolist()
            out[name] = dict(zip(choice.names, probs))
        return out

    def log_prob(self, mapping: Mapping) -> Tensor:
        """Log-probability of `mapping` under the preferences (differentiable)."""
        total = None
        for name in self.layer_names:
            choice = self._choice(name)
            lp = torch.log_softmax(choice.logits, dim=0)[choice.index(mapping[name])]
            total = lp if total is None else total + lp
        assert total is not None
        return total

    # -- non-idealities and calibration ----------------------------------------------------
    def set_noise_scale(self, scale: float, candidates: Iterable[str] | None = None,
                        layers: Iterable[str] | None = None) -> None:
        wanted = None if candidates is None else set(candidates)
        for name in (self._choices if layers is None else layers):
            if name in self._gates:
                continue  # a width choice has no non-idealities of its own
            for cand in self._choices[name].all_candidates():
                if wanted is None or cand.name in wanted:
                    cand.set_noise_scale(scale)

    @torch.no_grad()
    def calibrate(self, batches: Iterable[ModelInput]) -> Supernet:
        """Let every candidate observe real inputs on the exact (fp32) path: sets int
        activation ranges and analog input ranges. Restores the previous modes."""
        was_training = self.training
        self.eval()
        with self.keeping_paths():
            self.set_mode("calibrate")
            try:
                for batch in batches:
                    call_model(self.model, batch)
            finally:
                self.train(was_training)
        return self

    # -- objectives ------------------------------------------------------------------------
    def objectives(self, mapping: Mapping) -> Objectives:
        mapping.validate(self)
        return self.table.evaluate(self.full_choices(mapping))

    def full_choices(self, mapping: Mapping) -> dict[str, str]:
        """Every layer's candidate under `mapping`, the layers it leaves out (excluded or
        unsearched) on their first candidate."""
        choices = {name: layer.names[0] for name, layer in self._choices.items()}
        choices.update(mapping)
        return choices

    def mapping_indices(self, mappings: Sequence[Mapping]) -> Any:
        """(N, all layers) table columns for vectorised objectives and costs: the candidate
        index (excluded layers: 0, their only one), plus the shape variant the width choices
        select times the table width (see ObjectiveTable)."""
        idx = np.zeros((len(mappings), len(self.table.order)), dtype=np.int64)
        for col, name, lookup in self._columns:
            idx[:, col] = [lookup[m[name]] for m in mappings]
        if self.variants is not None:
            for m in mappings:  # a missing width must not silently score as wide
                missing = [g for g in self.gate_names if g not in m]
                if missing:
                    raise MappingError(f"the mapping has no width for {', '.join(missing)}; "
                                       f"choose {NARROW!r} or {WIDE!r} for each")
            idx += self.table.width * self.variants.variants_of(mappings)
        return idx

    # -- deployment ------------------------------------------------------------------------
    def model_for(self, mapping: Mapping) -> nn.Module:
        """A copy of the model as `mapping` builds it: every choice layer on its candidate
        (single mode), narrow width choices physically narrowed (the original shapes), no
        width choice left. The supernet is not changed."""
        full = self.full_choices(mapping.validate(self))
        model = copy.deepcopy(self.model)
        materialize(model, {n: full[n] == NARROW for n in self._gates},
                    [g.group for g in self._gates.values()])
        for name, module in model.named_modules():
            if isinstance(module, ChoiceLayer):
                module.active, module.mode = full[name], "single"
        return model


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def build_supernet(model: nn.Module, example_input: ModelInput,
                   candidates: Sequence[str] = DEFAULT_CANDIDATES,
                   analog: AnalogConfig | None = None, exclude: Sequence[str] = (),
                   fixed: str = "fp32",
                   tile: tuple[int, int] | None = None, calibrate: bool = True,
                   widths: Sequence[WidthGroup] = (), **candidate_options: Any) -> Supernet:
    """Wrap every mappable layer of (a copy of) `model` in a choice layer.

    candidates: names for every layer; `skip` is added only where it keeps the network valid
        (never on a width group's producers or consumers, whose shapes the choice changes).
    analog: an `AnalogConfig` (defaults to aihwkit's HWA preset values).
    exclude: layer names or glob patterns that stay on the `fixed` candidate.
    tile: crossbar tile (rows, cols) of the objectives *and* the analog engine (default: the
        analog config's); an analog config that sets another tile is a ConfigError. For a
        chip's tiles and DAC/ADC use `hetmap.config.analog_for_hardware(analog, hw)`.
    calibrate: observe the example input so int and analog ranges start from data.
    widths: groups of an adapted `model` (widened with init="zero") whose width becomes a
        searchable narrow/wide choice (see hetmap.supernet.width).
    """
    candidates = _check_arguments(model, candidates, exclude, fixed)
    analog = analog if analog is not None else AnalogConfig()
    if tile is not None:  # the engine simulates the tiles the objectives count
        tile = check_tile(tile)
        analog = analog.with_geometry(f"build_supernet(tile={tile})", tile=tile)
    tile = analog.tile  # positive integers (AnalogConfig validates them)
    net = normalize_model(copy.deepcopy(model), inplace=True)
    inventory = scan(net, example_input, tile=tile)
    check_patterns(exclude, inventory.names, "exclude")
    modules = dict(net.named_modules())
    gates = _gates(net, inventory, widths)
    consumed = {c: gate for gate in gates for c in gate.group.consumers}
    shaped = {n for gate in gates for n in (*gate.group.producers, *gate.group.consumers)}
    choices: dict[str, ChoiceLayer] = {}
    searchable = []
    options = SupernetOptions(candidates, tuple(exclude), fixed, analog,
                              tuple(candidate_options.items()))
    for info in inventory:
        excluded = _matches(info.name, exclude)
        skippable = info.skippable and info.name not in shaped
        names = (fixed,) if excluded else tuple(
            c for c in candidates if c != "skip" or skippable)
        if not names:
            names = (fixed,)
            excluded = True
        layer = modules[info.name]
        device = layer.weight.device
        cands = _make_candidates(names, info.spec, options, device)
        gate = consumed.get(info.name)
        choice = ChoiceLayer(info.name, layer, cands) if gate is None else GatedChoiceLayer(
            info.name, layer, cands, _make_candidates(
                names, info.spec.with_features(in_features=gate.group.narrow), options, device),
            gate)
        net.set_submodule(info.name, choice)
        choices[info.name] = choice
        if not excluded:
            searchable.append(info.name)
    if not searchable:
        raise _nothing_searchable(candidates, exclude)
    sn = Supernet(net, inventory, choices, tuple(searchable), options, gates)
    sn.train(net.training)  # a new Module starts in training mode; keep the model's mode
    if calibrate:
        sn.calibrate([example_input])
    return sn


def _check_arguments(model: Any, candidates: Sequence[str], exclude: Sequence[str],
                     fixed: str) -> tuple[str, ...]:
    """The candidate names, deduplicated, once the arguments make sense (or a HetmapError)."""
    check_model(model, "build_supernet")
    if isinstance(candidates, str):
        raise ConfigError(f"candidates must be a list of candidate names, got the string "
                          f"{candidates!r}; write candidates=[{candidates!r}]")
    check_pattern_list(exclude, "exclude")
    names = tuple(dict.fromkeys(candidates))
    if not names:
        raise ConfigError("candidates must name at least one candidate")
    for name in (*names, fixed):
        check_candidate(name)
    return names


def _nothing_searchable(candidates: tuple[str, ...], exclude: Sequence[str]) -> ConfigError:
    if set(candidates) == {"skip"}:
        return ConfigError("candidates=['skip'] offers no choice on this model: 'skip' is "
                           "only offered on layers whose output keeps their input's shape, "
                           "and no layer here does; add a computing candidate such as "
                           "'fp32', 'int8' or 'analog'")
    return ConfigError(f"every mappable layer is excluded by {list(exclude)}; exclude fewer "
                       "layers")


def _make_candidates(names: Sequence[str], spec: Any, options: SupernetOptions,
                     device: torch.device) -> dict[str, Candidate]:
    kwargs = options.candidate_kwargs()
    return {c: make_candidate(c, spec, **kwargs).to(device) for c in names}


def _gates(net: nn.Module, inventory: Inventory, widths: Sequence[WidthGroup]
           ) -> list[WidthGate]:
    """One width choice per group, checked against the model (the widened units must be
    there, every producer and consumer a called layer)."""
    modules = dict(net.named_modules())
    device = next((p.device for p in net.parameters()), None)
    gates = []
    for group in widths:
        for name in (*group.producers, *group.consumers):
            if name not in inventory:
                raise ConfigError(f"width group {group.name!r}: {name!r} is not a mappable "
                                  "layer the forward calls")
        for name in group.middles:
            if name not in modules:
                raise ConfigError(f"width group {group.name!r}: no module named {name!r}")
        width = inventory[group.consumers[0]].spec.in_features
        if width != group.wide:
            raise ConfigError(f"width group {group.name!r} is {group.wide} wide but "
                              f"{group.consumers[0]!r} reads {width} channels: build the "
                              "supernet on the adapted model")
        if group.name in inventory:
            raise ConfigError(f"width choice {group.name!r} collides with a layer name")
        per_unit = other_params_per_unit(net, group.middles, group.wide)
        gates.append(WidthGate(replace(group, other_params=per_unit), device))
    if len({g.layer_name for g in gates}) < len(gates):
        raise ConfigError("two width groups share their first producer")
    return gates
