"""Exact hardware objectives of a mapping, from the inventory and the candidates' targets.

Everything is precomputed per (layer, candidate) into small arrays, so a mapping - or a batch
of thousands - is scored by gathering and summing; no model run is needed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from hetmap.candidates.hybrid import digital_share
from hetmap.inventory import Inventory, LayerInfo
from hetmap.inventory.variants import VARIANTS, ShapeVariants


@dataclass(frozen=True)
class Objectives:
    """Hardware-side scores of one mapping."""

    # analog MACs / MACs the mappable layers execute (skipped layers execute none): the share
    # a mapping decides. Work no mappable layer does (attention score matmuls, LSTM/GRU,
    # ConvTranspose, functional calls: Inventory.unmapped) is not in this denominator.
    analog_mac_ratio: float
    # weights and biases held in digital memory (an analog layer's bias is added digitally)
    digital_weight_bytes: float
    analog_tiles: int
    tile_utilisation: float  # used cells / cells of the tiles analog layers occupy
    total_params: int  # parameters of the model as mapped (skipped layers removed)
    skipped_mac_ratio: float  # MACs removed by skip / MACs of the network at its widths
    # analog MACs / every MAC the forward executes, unmapped (digital) work included
    analog_mac_ratio_total: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CandidateFacts:
    target: str  # "digital", "analog" or "none"
    weight_bits: int
    bias_bits: int
    # analog-target only: rows computed digitally at weight_bits (a hybrid; per layer,
    # `hetmap.candidates.hybrid.digital_share` of the weights and MACs)
    digital_fraction: float = 0.0


class ObjectiveTable:
    """Per-(layer, candidate) contributions; layers in `order`, candidates by index.

    With width choices (`variants`), column v * width + j holds candidate j on the layer's
    shape variant v (see hetmap.inventory.variants); without them there is one variant and
    column j is candidate j."""

    def __init__(self, inventory: Inventory, order: tuple[str, ...],
                 offered: dict[str, tuple[str, ...]], facts: dict[str, CandidateFacts],
                 variants: ShapeVariants | None = None) -> None:
        self.order = order
        self.offered = offered
        self.variants = variants
        n_layers = len(order)
        self.width = max(len(offered[name]) for name in order)
        n_variants = VARIANTS if variants is not None else 1
        shape = (n_layers, n_variants * self.width)
        self.analog_macs = np.zeros(shape)
        self.executed_macs = np.zeros(shape)
        self.macs = np.zeros(shape)  # of the layer's variant, executed or not
        self.digital_bytes = np.zeros(shape)
        self.tiles = np.zeros(shape, dtype=np.int64)
        self.cells = np.zeros(shape)
        self.params = np.zeros(shape, dtype=np.int64)
        self.tile_cells = inventory.tile[0] * inventory.tile[1]
        self.other_params = inventory.other_params
        self.unmapped_macs = inventory.unmapped_macs  # always executed, always digital
        for i, name in enumerate(order):
            for v in range(n_variants):
                layer = inventory[name] if variants is None else variants.layers[i][v]
                removed = 0 if variants is None else int(variants.removed_params[i, v])
                self._fill(i, v * self.width, layer, offered[name], facts, removed)

    def _fill(self, i: int, start: int, layer: LayerInfo, offered: tuple[str, ...],
              facts: dict[str, CandidateFacts], removed_params: int) -> None:
        spec = layer.spec
        bias = spec.out_features if spec.bias else 0
        for j, cand in enumerate(offered, start):
            f = facts[cand]
            self.macs[i, j] = layer.macs
            self.params[i, j] = -removed_params  # parameters outside mappable layers
            if f.target == "none":
                continue
            self.executed_macs[i, j] = layer.macs
            self.params[i, j] += spec.params
            weights = spec.weight_numel
            if f.target == "analog":  # the weights sit on tiles, the bias digitally
                share = digital_share(spec, f.digital_fraction)  # a hybrid's digital rows
                self.analog_macs[i, j] = layer.macs * (1.0 - share)
                self.tiles[i, j] = layer.tiles  # a hybrid's digital rows are not repacked
                self.cells[i, j] = weights * (1.0 - share)
                weights = weights * share
            self.digital_bytes[i, j] = (weights * f.weight_bits + bias * f.bias_bits) / 8

    def indices(self, choices: dict[str, str]) -> np.ndarray:
        idx = np.array([self.offered[name].index(choices[name]) for name in self.order])
        if self.variants is not None:
            idx += self.width * self.variants.variant_of(choices)
        return idx

    def evaluate_indices(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """Objectives of a batch of mappings given as an (N, layers) index array."""
        idx = np.atleast_2d(idx)
        rows = np.arange(len(self.order))[None, :]

        def total(table: np.ndarray) -> np.ndarray:
            return table[rows, idx].sum(axis=1)

        executed = total(self.executed_macs)
        analog = total(self.analog_macs)
        tiles = total(self.tiles)
        cells = total(self.cells)
        everything = executed + self.unmapped_macs
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(executed > 0, analog / executed, 0.0)
            ratio_total = np.where(everything > 0, analog / everything, 0.0)
            util = np.where(tiles > 0, cells / (tiles * self.tile_cells), 0.0)
        return {
            "analog_mac_ratio": ratio,
            "digital_weight_bytes": total(self.digital_bytes),
            "analog_tiles": tiles,
            "tile_utilisation": util,
            "total_params": total(self.params) + self.other_params,
            "skipped_mac_ratio": 1.0 - executed / total(self.macs),
            "analog_mac_ratio_total": ratio_total,
        }

    def evaluate(self, choices: dict[str, str]) -> Objectives:
        values = self.evaluate_indices(self.indices(choices))
        return Objectives(
            analog_mac_ratio=float(values["analog_mac_ratio"][0]),
            digital_weight_bytes=float(values["digital_weight_bytes"][0]),
            analog_tiles=int(values["analog_tiles"][0]),
            tile_utilisation=float(values["tile_utilisation"][0]),
            total_params=int(values["total_params"][0]),
            skipped_mac_ratio=float(values["skipped_mac_ratio"][0]),
            analog_mac_ratio_total=float(values["analog_mac_ratio_total"][0]),
        )
