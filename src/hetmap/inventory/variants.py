"""Shape variants of layers whose width is a searchable choice (MPAAS made searchable).

A widened group (producers -> channel-wise middles -> consumers) can run at its original
(`narrow`) or adapted (`wide`) width. The inventory is measured on the wide model; a
layer's narrow shapes are derived from it exactly (MACs, activations and shapes scale with
the channel counts), so the objective and cost tables can hold every variant and a
mapping's width choices select among them without another forward pass.

Each layer has at most one gate on its input side (it consumes a group) and one on its
output side (it produces a group or is a depthwise middle of one). Variant index
v = in_narrow + 2 * out_narrow: 0 is the measured (all-wide) layer, so tables without
width choices keep one variant and their old layout.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, replace

import numpy as np

from hetmap.errors import ConfigError
from hetmap.inventory.scan import Inventory, LayerInfo
from hetmap.layers import LayerSpec
from hetmap.mapping import NARROW, WIDTH_PREFIX

VARIANTS = 4  # (in wide|narrow) x (out wide|narrow)


@dataclass(frozen=True)
class WidthGroup:
    """A widened group as plain data: which layers it touches and its two widths.

    other_params: parameters outside mappable layers (BatchNorm, PReLU middles) per unit of
    the width, so the narrow choice can count the parameters it removes."""

    producers: tuple[str, ...]
    middles: tuple[str, ...]
    consumers: tuple[str, ...]
    narrow: int
    wide: int
    other_params: int = 0

    def __post_init__(self) -> None:
        if not self.producers or not self.consumers:
            raise ConfigError("a width group needs at least one producer and one consumer")
        if not 0 < self.narrow < self.wide:
            raise ConfigError(f"width group {self.name!r}: need 0 < narrow < wide, got "
                              f"{self.narrow} and {self.wide}")

    @property
    def name(self) -> str:
        """The mapping key: stable (the first producer) and never a module name (':')."""
        return f"{WIDTH_PREFIX}{self.producers[0]}"


def narrowed(info: LayerInfo, spec: LayerSpec, tile: tuple[int, int]) -> LayerInfo:
    """`info` with the channel counts of `spec` (same kind, kernel and calls)."""
    old = info.spec
    macs = info.macs * spec.rows * spec.cols // (old.rows * old.cols)
    in_act = info.in_activations * spec.in_features // old.in_features
    out_act = info.out_activations * spec.out_features // old.out_features
    axis = -1 if spec.kind == "linear" else 1
    in_shape, out_shape = list(info.input_shape), list(info.output_shape)
    in_shape[axis], out_shape[axis] = spec.in_features, spec.out_features
    return replace(info, spec=spec, macs=macs, input_shape=tuple(in_shape),
                   output_shape=tuple(out_shape), in_activations=in_act,
                   out_activations=out_act, tiles=spec.tiles(tile),
                   tile_utilisation=spec.tile_utilisation(tile),
                   skippable=info.skippable and tuple(in_shape) == tuple(out_shape))


@dataclass(frozen=True)
class ShapeVariants:
    """Per layer (in `order`): its gates and its VARIANTS LayerInfos, plus the parameters
    outside mappable layers each variant removes (charged to a group's first producer)."""

    order: tuple[str, ...]
    gates: tuple[str, ...]
    in_gate: np.ndarray  # (layers,) gate index, len(gates) for none
    out_gate: np.ndarray
    layers: tuple[tuple[LayerInfo, ...], ...]
    removed_params: np.ndarray  # (layers, VARIANTS)

    def variant_of(self, choices: AbcMapping[str, str]) -> np.ndarray:
        """(layers,) variant index of one set of choices (absent gates are wide)."""
        return self.variants_of([choices])[0]

    def variants_of(self, mappings: Sequence[AbcMapping[str, str]]) -> np.ndarray:
        """(N, layers) variant indices of a batch (vectorised over layers; absent gates are
        wide)."""
        narrow = np.zeros((len(mappings), len(self.gates) + 1), dtype=np.int64)
        for k, g in enumerate(self.gates):
            narrow[:, k] = [m.get(g) == NARROW for m in mappings]
        return narrow[:, self.in_gate] + 2 * narrow[:, self.out_gate]


def _roles(groups: Sequence[WidthGroup], names: Iterable[str]
           ) -> tuple[dict[str, int], dict[str, int], set[str]]:
    known = set(names)
    ins: dict[str, int] = {}
    outs: dict[str, int] = {}
    middles: set[str] = set()
    for k, g in enumerate(groups):
        for name in g.consumers:
            if name in ins:
                raise ConfigError(f"layer {name!r} consumes two width groups")
            ins[name] = k
        for name in (*g.producers, *g.middles):
            if name not in known:
                continue  # a non-mappable middle (BatchNorm): no layer variant
            if name in outs:
                raise ConfigError(f"layer {name!r} produces two width groups")
            outs[name] = k
            if name in g.middles:
                middles.add(name)
    return ins, outs, middles


def shape_variants(inventory: Inventory, groups: Sequence[WidthGroup]) -> ShapeVariants:
    """Every layer's VARIANTS shapes under the width choices of `groups`."""
    ins, outs, middles = _roles(groups, inventory.names)
    layers = []
    removed = np.zeros((len(inventory), VARIANTS), dtype=np.int64)
    first = {g.producers[0]: g for g in groups}
    for i, info in enumerate(inventory):
        row = []
        for v in range(VARIANTS):
            n_in = groups[ins[info.name]].narrow if v & 1 and info.name in ins else None
            n_out = groups[outs[info.name]].narrow if v & 2 and info.name in outs else None
            if info.name in middles and n_out is not None:
                n_in = n_out  # depthwise: channels in == out
            row.append(info if n_in is None and n_out is None else narrowed(
                info, info.spec.with_features(n_in, n_out), inventory.tile))
            g = first.get(info.name)
            if g is not None and v & 2:
                removed[i, v] = g.other_params * (g.wide - g.narrow)
        layers.append(tuple(row))
    n = len(groups)
    return ShapeVariants(
        inventory.names, tuple(g.name for g in groups),
        np.array([ins.get(name, n) for name in inventory.names], dtype=np.int64),
        np.array([outs.get(name, n) for name in inventory.names], dtype=np.int64),
        tuple(layers), removed)
