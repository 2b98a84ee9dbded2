"""MPAAS model adaptation: widen inner dimensions so analog layers fill the tiles they hold.

A layer whose weight matrix leaves a tile half empty costs the same tiles, latency and
energy as a full one. `adapt` widens every widenable group (see `graph.py`) to the largest
width that keeps the tile count of all its layers unchanged (or within a tile budget), with
an initialisation that computes the original function (see `widen.py`), so the extra
capacity comes for free and training starts from the original model.
"""

from __future__ import annotations

import copy
import fnmatch
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from torch import Tensor, nn

from hetmap.adaptation.graph import Skipped, WidenGroup, groups_from_shapes, record_shapes
from hetmap.adaptation.widen import Init, widen_group
from hetmap.errors import ConfigError
from hetmap.inputs import ModelInput, call_model, output_tensors
from hetmap.inventory import check_tile, normalize_model
from hetmap.inventory.scan import check_model, check_patterns, no_mappable_layer
from hetmap.layers import LayerSpec, is_mappable

KINDS = ("conv", "linear", "attention")


class AdaptPolicy(BaseModel):
    """How far to widen. `extra_tiles` > 0 lets a group take that many more tiles.

    A pydantic model: the run config's `adapt` section is this policy (plus `search`), so
    every setting has one source. Bad values raise a ConfigError naming the field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_factor: float = Field(4.0, ge=1.0, description="new width <= max_factor x old width")
    multiple_of: int = Field(8, ge=1, description="new widths are multiples of this "
                                                  "(alignment)")
    extra_tiles: int = Field(0, ge=0, description="tiles a group may add over its count")
    kinds: tuple[str, ...] = Field(KINDS, description="kinds of groups widened")
    init: Init = Field("zero", description="zero: fresh units with zero outgoing weights; "
                                           "net2wider: copies")
    exclude: tuple[str, ...] = Field((), description="layer names or glob patterns never "
                                                     "widened")
    residual: bool = Field(False, description="also widen residual streams (all writers and "
                                              "readers at once)")
    # more depthwise channels cost MVMs on hardware that runs depthwise group by group
    depthwise: bool = Field(True, description="widen groups with a depthwise conv inside")
    seed: int = Field(0, description="seeds the fresh units")
    verify_tol: float = Field(1e-4, description="a widening that moves outputs more "
                                                "(relative) is undone")
    # With a hardware model (adapt(..., hardware=...)): how much a group's all-analog latency
    # and energy may rise, as a fraction (None: no limit). Widening inside a tile is free in
    # latency except where a depthwise conv runs group by group; energy always rises a little
    # (more rows driven, more devices conducting), so it is unlimited by default.
    max_latency_increase: float | None = Field(
        0.0, ge=0.0, description="how much a group's all-analog latency on the run's hardware "
                                 "may rise (fraction; null: no limit)")
    max_energy_increase: float | None = Field(
        None, ge=0.0, description="the same for energy (null: no limit)")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError("invalid adapt policy: " + "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            ) from None

    # validation inside an enclosing model (the run config) skips this wrapper, so its
    # errors keep pydantic's field paths ("adapt.max_factor")
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, kinds: tuple[str, ...]) -> tuple[str, ...]:
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown kinds {sorted(unknown)}; choose from {list(KINDS)}")
        return kinds


@dataclass(frozen=True)
class GroupReport:
    """One widened (or examined) group: widths, per-layer tiles and group utilisation."""

    kind: str
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    middles: tuple[str, ...]
    found_by: str
    old_width: int
    new_width: int
    tiles_before: dict[str, int]
    tiles_after: dict[str, int]
    util_before: float
    util_after: float
    params_before: int
    params_after: int
    note: str = ""
    latency_ratio: float = math.nan  # all-analog after / before (nan without a hardware model)
    energy_ratio: float = math.nan

    @property
    def name(self) -> str:
        return _group_label(self.producers, self.consumers)

    @property
    def widened(self) -> bool:
        return self.new_width > self.old_width


@dataclass(frozen=True)
class AdaptReport:
    """What `adapt` did, with model totals before and after (counted as `hetmap.scan` does)."""

    tile: tuple[int, int]
    policy: AdaptPolicy
    groups: tuple[GroupReport, ...]
    skipped: tuple[Skipped, ...]
    untraced: tuple[str, ...]  # submodules torch.fx could not trace (patterns used there)
    tiles_before: int
    util_before: float
    params_before: int
    tiles_after: int
    util_after: float
    params_after: int
    max_abs_diff: float  # between original and adapted outputs, eval mode, example input
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def widened(self) -> tuple[GroupReport, ...]:
        return tuple(g for g in self.groups if g.widened)

    def __str__(self) -> str:
        w = max([28, *(len(g.name) for g in self.groups)])
        head = (f"{'group (producer -> consumer)':<{w}} {'kind':<9} {'width':>11} "
                f"{'tiles':>9} {'util':>15}")
        lines = [head, "-" * len(head)]
        for g in self.groups:
            tb, ta = sum(g.tiles_before.values()), sum(g.tiles_after.values())
            lines.append(f"{g.name:<{w}} {g.kind:<9} "
                         f"{f'{g.old_width}->{g.new_width}':>11} {f'{tb}->{ta}':>9} "
                         f"{f'{g.util_before:.1%}->{g.util_after:.1%}':>15}"
                         + (f"  ({g.note})" if g.note else ""))
        lines.append("-" * len(head))
        lines.append(f"widened {len(self.widened)} of {len(self.groups)} groups at tile "
                     f"{self.tile[0]}x{self.tile[1]}; {len(self.skipped)} layers not widenable")
        lines.append(f"tiles {self.tiles_before} -> {self.tiles_after}, utilisation "
                     f"{self.util_before:.1%} -> {self.util_after:.1%}, params "
                     f"{self.params_before:,} -> {self.params_after:,}, max |diff| "
                     f"{self.max_abs_diff:.2e}")
        for s in self.skipped:
            lines.append(f"  skipped {s.layer}: {s.reason}")
        if self.untraced:
            more = f" and {len(self.untraced) - 3} more" if len(self.untraced) > 3 else ""
            lines.append(f"  torch.fx could not trace {', '.join(self.untraced[:3])}{more}; "
                         "structural patterns were used there")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tile"] = list(self.tile)
        d["policy"] = self.policy.model_dump(mode="json")
        d["skipped"] = [{"layer": s.layer, "reason": s.reason} for s in self.skipped]
        for g in d["groups"]:
            for key in ("producers", "consumers", "middles"):
                g[key] = list(g[key])
            for key in ("latency_ratio", "energy_ratio"):  # JSON has no NaN
                g[key] = None if math.isnan(g[key]) else g[key]
        d["untraced"] = list(self.untraced)
        return d


def _common_prefix(names: tuple[str, ...]) -> str:
    parts = [n.split(".") for n in names]
    common = 0
    while all(len(p) > common + 1 and p[common] == parts[0][common] for p in parts):
        common += 1
    return ".".join(parts[0][:common])


def _join(names: tuple[str, ...]) -> str:
    """'query', 'key' -> '{query,key}'; long lists (residual streams) are cut short."""
    if len(names) == 1:
        return names[0]
    shown = list(names) if len(names) <= 3 else [*names[:2], f"+{len(names) - 2} more"]
    return "{" + ",".join(shown) + "}"


def _group_label(producers: tuple[str, ...], consumers: tuple[str, ...]) -> str:
    """'a.b.query', 'a.b.key' -> 'a.b.out' reads 'a.b: {query,key} -> out'."""
    prefix = _common_prefix(producers + consumers)
    if not prefix:
        return f"{_join(producers)} -> {_join(consumers)}"
    cut = len(prefix) + 1
    return (f"{prefix}: {_join(tuple(p[cut:] for p in producers))} -> "
            f"{_join(tuple(c[cut:] for c in consumers))}")


# -- width choice -----------------------------------------------------------------------------

def _specs(model: nn.Module, group: WidenGroup) -> dict[str, LayerSpec]:
    modules = dict(model.named_modules())
    return {n: LayerSpec.from_module(modules[n]) for n in group.layers
            if is_mappable(modules[n])}


def _widened_specs(specs: dict[str, LayerSpec], group: WidenGroup, width: int
                   ) -> dict[str, LayerSpec]:
    out = {}
    for name, spec in specs.items():
        if name in group.producers or name in group.consumers:  # a layer may be both
            out[name] = spec.with_features(
                in_features=width if name in group.consumers else None,
                out_features=width * group.fused if name in group.producers else None)
        else:  # depthwise middle: channels in == out, groups follow
            out[name] = spec.with_features(width, width)
    return out


def _tiles(specs: dict[str, LayerSpec], tile: tuple[int, int]) -> dict[str, int]:
    return {n: s.tiles(tile) for n, s in specs.items()}


def _util(specs: dict[str, LayerSpec], tile: tuple[int, int]) -> float:
    cells = sum(s.tiles(tile) for s in specs.values()) * tile[0] * tile[1]
    return sum(s.weight_numel for s in specs.values()) / cells if cells else 0.0


class GroupCost:
    """All-analog latency and energy of a group's layers on a hardware model, at any width:
    each layer keeps the input vectors it sees per inference (its MACs / rows x cols)."""

    def __init__(self, hardware: Any, shapes: dict[str, list[tuple]]) -> None:
        from hetmap.hardware import load_hardware
        from hetmap.hardware.analog_model import analog_shape_cost

        hw = load_hardware(hardware)
        if hw.analog is None:
            raise ConfigError(f"hardware {hw.name!r} has no analog core to adapt to")
        self.core = hw.analog
        self.shapes = shapes
        self._shape_cost = analog_shape_cost  # imported here: hardware is optional for adapt

    def __call__(self, specs: dict[str, LayerSpec], original: dict[str, LayerSpec]
                 ) -> tuple[float, float]:
        latency = energy = 0.0
        for name, spec in specs.items():
            old = original[name]
            vectors = sum(math.prod(s) // s[-1 if old.kind == "linear" else 1]
                          for s in self.shapes.get(name, []))
            cost = self._shape_cost(spec, max(1, vectors), self.core)
            latency, energy = latency + cost.latency_s, energy + cost.energy_j
        return latency, energy


def _within(policy: AdaptPolicy, before: tuple[float, float], after: tuple[float, float]
            ) -> bool:
    for limit, old, new in zip((policy.max_latency_increase, policy.max_energy_increase),
                               before, after):
        if limit is not None and new > old * (1.0 + limit) * (1 + 1e-12):
            return False
    return True


def choose_width(specs: dict[str, LayerSpec], group: WidenGroup, tile: tuple[int, int],
                 policy: AdaptPolicy, cost: GroupCost | None = None) -> int:
    """Largest width within the policy whose tiles fit the budget and, with a cost model,
    whose latency and energy stay within the policy's limits (the old width if none)."""
    budget = sum(_tiles(specs, tile).values()) + policy.extra_tiles
    before = cost(specs, specs) if cost else (0.0, 0.0)
    step = group.heads  # attention widens every head by the same amount
    top = math.floor(group.width * policy.max_factor / step) * step
    for width in range(top, group.width, -step):
        if width % policy.multiple_of:
            continue
        wide = _widened_specs(specs, group, width)
        if sum(_tiles(wide, tile).values()) > budget:
            continue
        if cost is None or _within(policy, before, cost(wide, specs)):
            return width
    return group.width


# -- checking that the function is kept -------------------------------------------------------

def _outputs(model: nn.Module, example_input: ModelInput) -> list[Tensor]:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return [t.detach().float() for t in output_tensors(call_model(model, example_input))]
    finally:
        model.train(was_training)


def _max_diff(a: list[Tensor], b: list[Tensor]) -> float:
    if len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b, strict=True)):
        return math.inf
    return max((float((x - y).abs().max()) for x, y in zip(a, b, strict=True) if x.numel()),
               default=0.0)


def _snapshot(model: nn.Module, group: WidenGroup) -> dict[str, nn.Module]:
    modules = dict(model.named_modules())
    names = ([group.owner] if group.owner else []) + list(group.layers)
    return {n: copy.deepcopy(modules[n]) for n in names}


def _restore(model: nn.Module, saved: dict[str, nn.Module]) -> None:
    for name, module in saved.items():
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, module)


# -- the entry point --------------------------------------------------------------------------

def adapt(model: nn.Module, example_input: ModelInput, tile: tuple[int, int] = (512, 512),
          policy: AdaptPolicy | None = None, verify: bool = True, hardware: Any = None
          ) -> tuple[nn.Module, AdaptReport]:
    """A widened copy of `model` that computes the same function, and a report.

    The original is left untouched; the copy is a plain `nn.Module` (with projections
    normalised as `hetmap.scan` does), so `scan` and `build_supernet` work on it. With
    `verify`, the outputs on `example_input` (eval mode) are compared with the original's;
    if they moved by more than `policy.verify_tol` (relative to the output scale), groups
    are redone one by one and each one that moves them is left unwidened. With `hardware`
    (a HardwareSpec or preset name), widths also keep each group's all-analog latency and
    energy within `policy.max_latency_increase` / `max_energy_increase`.
    """
    tile = check_tile(tile)
    policy = policy or AdaptPolicy()
    check_model(model, "adapt")
    adapted = normalize_model(copy.deepcopy(model), inplace=True)
    modules = [(n, m) for n, m in adapted.named_modules() if n]
    if not any(is_mappable(m) for _, m in modules):
        raise no_mappable_layer(model)
    check_patterns(policy.exclude, [n for n, _ in modules], "AdaptPolicy.exclude")
    shapes, output = record_shapes(adapted, example_input)  # normalising is exact
    groups, skipped, untraced = groups_from_shapes(adapted, shapes, policy.residual)
    before = _totals(adapted, shapes, tile)
    reference = [t.detach().float() for t in output_tensors(output)]
    limit = policy.verify_tol * max(1.0, max((float(t.abs().max()) for t in reference
                                              if t.numel()), default=1.0))
    cost = GroupCost(hardware, shapes) if hardware is not None else None
    reports = _widen_all(adapted, groups, tile, policy, None, cost)
    diff = _max_diff(reference, _outputs(adapted, example_input)) if verify else math.nan
    if diff > limit:
        # some widening broke the function: redo group by group, undoing the culprits
        adapted = normalize_model(copy.deepcopy(model), inplace=True)
        reports = _widen_all(adapted, groups, tile, policy, (example_input, reference, limit),
                             cost)
        diff = _max_diff(reference, _outputs(adapted, example_input))
    after = _totals(adapted, shapes, tile)
    report = AdaptReport(tile, policy, tuple(reports), tuple(skipped), tuple(untraced),
                         *before, *after, diff)
    adapted.train(model.training)
    return adapted, report


def _totals(model: nn.Module, shapes: dict[str, list[tuple]], tile: tuple[int, int]
            ) -> tuple[int, float, int]:
    """Tiles and utilisation of the layers the forward called (as `scan` counts them), and
    all parameters."""
    specs = [LayerSpec.from_module(m) for n, m in model.named_modules()
             if n in shapes and is_mappable(m)]
    tiles = sum(s.tiles(tile) for s in specs)
    util = sum(s.weight_numel for s in specs) / max(1, tiles * tile[0] * tile[1])
    return tiles, util, sum(p.numel() for p in model.parameters())


def _widen_all(model: nn.Module, groups: list[WidenGroup], tile: tuple[int, int],
               policy: AdaptPolicy, check: tuple[ModelInput, list[Tensor], float] | None,
               cost: GroupCost | None = None) -> list[GroupReport]:
    """Widen every group in order; with `check`, verify each one and undo it if it fails."""
    generator = torch.Generator().manual_seed(policy.seed)
    reports: list[GroupReport] = []
    for group in groups:
        specs = _specs(model, group)
        note = _excluded(group, policy)
        width = group.width if note else choose_width(specs, group, tile, policy, cost)
        if not note and width == group.width:
            note = "no wider size keeps its tiles within the budget" + (
                " and its latency/energy within the policy's limits" if cost else "")
        if width > group.width:
            saved = _snapshot(model, group) if check else {}
            widen_group(model, group, width, policy.init, generator)
            if check:
                example_input, reference, limit = check
                diff = _max_diff(reference, _outputs(model, example_input))
                if diff > limit:
                    _restore(model, saved)
                    note, width = f"undone: outputs moved by {diff:.2e}", group.width
        new_specs = _specs(model, group)
        ratios = (math.nan, math.nan)
        if cost is not None:
            (lat0, en0), (lat1, en1) = cost(specs, specs), cost(new_specs, specs)
            ratios = (lat1 / lat0 if lat0 else math.nan, en1 / en0 if en0 else math.nan)
        reports.append(GroupReport(
            group.kind, group.producers, group.consumers, group.middles, group.found_by,
            group.width, width, _tiles(specs, tile), _tiles(new_specs, tile),
            _util(specs, tile), _util(new_specs, tile), _params(specs), _params(new_specs),
            note, *ratios))
    return reports


def _params(specs: dict[str, LayerSpec]) -> int:
    return sum(s.params for s in specs.values())


def _excluded(group: WidenGroup, policy: AdaptPolicy) -> str:
    if group.kind not in policy.kinds:
        return f"kind {group.kind!r} not in policy.kinds"
    if not policy.depthwise and group.depthwise:
        return "has a depthwise conv inside and policy.depthwise is off"
    for name in group.layers:
        if any(fnmatch.fnmatchcase(name, pat) for pat in policy.exclude):
            return f"{name} excluded by policy"
    return ""
