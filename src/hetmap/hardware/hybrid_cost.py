"""The cost of a hybrid candidate (Harmonica: hetmap.candidates.hybrid) from one layer's
analog and digital costs, written into the CostTable's per-candidate fields.

The layer is placed on the analog core as the analog candidate is (every row's tiles, the
same vectors and MVM time, the same input bytes) and its sensitive rows run at the same
time on the digital core at the split's precision. Assumed (docs/compare.md, Harmonica):
the digital part costs `share` of the whole layer at that precision (latency, energy,
weight reads, weight bytes); the two parts run concurrently, so the layer takes the longer
of the two (with analog replication on, the table's analog duration rule replaces it);
energies add; the analog energy is the whole layer's (its rows stay driven).
"""

from __future__ import annotations

from typing import Any

from hetmap.candidates.hybrid import HybridSplit, digital_share
from hetmap.hardware.spec import ANALOG
from hetmap.inventory import LayerInfo


def hybrid_cost(table: Any, i: int, j: int, layer: LayerInfo, split: HybridSplit,
                cache: Any) -> None:
    """Fill column (i, j) of `table` (a CostTable) for `split` on `layer`."""
    share = digital_share(layer.spec, split.fraction)
    table._cost(i, j, layer, split.digital, None, cache)
    latency, energy = table.latency[i, j], table.energy[i, j]
    weight_energy, weight_bytes = table.weight_energy[i, j], table.weight_bytes[i, j]
    table.weight_energy[i, j] = table.weight_bytes[i, j] = 0.0
    table._cost(i, j, layer, ANALOG, ANALOG, cache)
    table.latency[i, j] = max(table.latency[i, j], share * latency)
    table.energy[i, j] += share * energy
    table.weight_energy[i, j] = share * weight_energy
    table.weight_bytes[i, j] = share * weight_bytes
