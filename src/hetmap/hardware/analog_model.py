"""Analytic cost of a layer on the analog (AIMC) core, calibrated to published chip figures.

ZigZag 3.9.1's AIMC model (`ImcArray`) describes SRAM-based bit-sliced macros with 28 nm
technology constants and ADC/DAC energy formulas built into the code: it cannot take a PCM
device, a per-conversion ADC energy or a measured MVM time, so it cannot be held to HERMES.
The analog core is therefore costed here from the spec, per tile MVM:

    energy = rows_used x E_dac + cols_converted x E_adc + rows_used x cols_used x E_cell + E_tile

summed over the layer's tiles and input vectors, plus digital partial-sum adds when a layer
spans several row tiles. Every column of an active tile converts (cols_converted = tile
columns) unless the spec says unused columns are power-gated (`column_gating`; then
cols_converted = cols_used): the HERMES core has one ADC per column and no such gating, while
a row without input draws no PWM pulse and an unprogrammed device no current. So widening a
layer inside the tiles it already holds (MPAAS) adds input and device energy, not ADC energy.
All tiles of a layer work in parallel (weights stationary), so a layer takes
`vectors x mvm_latency` (times the number of passes if it alone needs more tiles than the
chip has). tests/hardware/test_calibration.py holds this to Le Gallo et al. 2023.
"""

from __future__ import annotations

import math

from hetmap.hardware.spec import AnalogCore
from hetmap.hardware.zigzag_backend import LayerCost, analog_vectors
from hetmap.inventory import LayerInfo


def analog_layer_cost(layer: LayerInfo, core: AnalogCore) -> LayerCost:
    spec = layer.spec
    rows, cols = spec.rows, spec.cols
    row_tiles = math.ceil(rows / core.tile_rows)
    col_tiles = math.ceil(cols / core.tile_cols)
    tiles = row_tiles * col_tiles
    vectors = analog_vectors(layer) * spec.groups if spec.groups > 1 else analog_vectors(layer)
    converted = cols * row_tiles if core.column_gating else tiles * core.tile_cols
    per_vector_pj = (rows * col_tiles * core.dac_energy_pj
                     + converted * core.adc_energy_pj
                     + rows * cols * core.cell_energy_fj * 1e-3
                     + tiles * core.tile_overhead_pj
                     + cols * (row_tiles - 1) * core.partial_sum_energy_pj)
    passes = math.ceil(tiles / core.n_tiles)
    latency = vectors * passes * core.mvm_latency_ns * 1e-9
    return LayerCost(latency_s=latency, energy_j=vectors * per_vector_pj * 1e-12,
                     cycles=float(vectors * passes), ideal_cycles=float(vectors))
