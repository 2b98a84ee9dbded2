"""Analytic cost of a layer on the analog (AIMC) core, calibrated to published chip figures.

ZigZag 3.9.1's AIMC model (`ImcArray`) describes SRAM-based bit-sliced macros with 28 nm
technology constants and ADC/DAC energy formulas built into the code: it cannot take a PCM
device, a per-conversion ADC energy or a measured MVM time, so it cannot be held to HERMES.
The analog core is therefore costed here from the spec, per tile MVM:

    energy = rows_used x E_dac + cols_converted x E_adc + rows_used x cols_used x E_cell + E_tile

summed over the layer's tiles and input vectors, plus the digital post-processing of the
outputs (partial-sum adds across row tiles, `postprocess_energy_pj` per output for the affine
correction / activation in the tile's local digital unit). Every column of an active tile
converts (cols_converted = tile columns) unless the spec says unused columns are power-gated
(`column_gating`). All tiles of a layer work in parallel (weights stationary), so one copy of a
layer takes `vectors x mvm time` (times the passes if it alone needs more tiles than the chip
has); replication (hetmap.hardware.table) divides the vectors among copies.

Grouped and depthwise convolutions are packed block-diagonally: as many groups per tile as
fit both its rows and its columns, one MVM per output position for all groups of a tile (the
off-diagonal devices stay unprogrammed). A group larger than a tile is tiled on its own.
tests/hardware/test_calibration.py holds this to Le Gallo et al. 2023.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hetmap.hardware.spec import AnalogCore
from hetmap.hardware.zigzag_backend import LayerCost, analog_vectors
from hetmap.inventory import LayerInfo
from hetmap.layers import LayerSpec


@dataclass(frozen=True)
class AnalogPlacement:
    """How one copy of a layer sits on tiles and how many MVMs an inference needs."""

    tiles: int
    vectors: int  # input vectors per inference (sequential MVMs for one copy)
    mvm_s: float  # seconds per vector (includes passes when the layer exceeds the chip)
    energy_per_vector_j: float


def mvm_seconds(core: AnalogCore) -> float:
    """One MVM: integration plus, when `adc_share` columns share an ADC, the extra
    conversions each ADC does in turn."""
    return (core.mvm_latency_ns + (core.adc_share - 1) * core.adc_conversion_ns) * 1e-9


def place(layer: LayerInfo, core: AnalogCore) -> AnalogPlacement:
    """A scanned layer on the core (its input vectors from its MACs)."""
    return place_shape(layer.spec, analog_vectors(layer), core)


def place_shape(spec: LayerSpec, vectors: int, core: AnalogCore) -> AnalogPlacement:
    """A layer of shape `spec` presented `vectors` input vectors per inference."""
    g = spec.groups
    rows_g, cols_g = spec.rows, spec.cols // g  # one group's block
    per_tile = min(core.tile_rows // rows_g, core.tile_cols // cols_g) if g > 1 else 0
    if per_tile >= 1:  # block-diagonal packing: `per_tile` groups share a tile
        tiles = math.ceil(g / per_tile)
        row_tiles = 1
    else:  # dense layer, or groups too large to share a tile: each group tiled alone
        row_tiles = math.ceil(rows_g / core.tile_rows)
        tiles = g * row_tiles * math.ceil(cols_g / core.tile_cols)
    rows, cols = rows_g * g, spec.cols  # inputs driven and outputs produced per vector
    converted = cols * row_tiles if core.column_gating else tiles * core.tile_cols
    per_vector_pj = (rows * core.dac_energy_pj * (1 if per_tile else math.ceil(
                         cols_g / core.tile_cols))
                     + converted * core.adc_energy_pj
                     + rows_g * cols * core.cell_energy_fj * 1e-3
                     + tiles * core.tile_overhead_pj
                     + cols * (row_tiles - 1) * core.partial_sum_energy_pj
                     + cols * core.postprocess_energy_pj)
    passes = math.ceil(tiles / core.n_tiles)
    return AnalogPlacement(tiles, max(1, vectors), passes * mvm_seconds(core),
                           per_vector_pj * 1e-12)


def analog_layer_cost(layer: LayerInfo, core: AnalogCore) -> LayerCost:
    """One copy of the layer, alone: latency and energy per inference."""
    return analog_shape_cost(layer.spec, analog_vectors(layer), core)


def analog_shape_cost(spec: LayerSpec, vectors: int, core: AnalogCore) -> LayerCost:
    """One copy of a layer of shape `spec` presented `vectors` input vectors per
    inference, alone: latency and energy per inference."""
    p = place_shape(spec, vectors, core)
    return LayerCost(latency_s=p.vectors * p.mvm_s, energy_j=p.vectors * p.energy_per_vector_j,
                     cycles=float(p.vectors * round(p.mvm_s / mvm_seconds(core))),
                     ideal_cycles=float(p.vectors))
