"""Hardware model: latency, energy and tile budget of any mapping on a heterogeneous
analog/digital system, from ZigZag-backed per-layer costs cached on disk."""

from hetmap.hardware.cost import LayerRecord, MappingCost
from hetmap.hardware.graph import OpGraph, OpNode, trace_graph
from hetmap.hardware.loader import load_hardware, parse_hardware, preset_names, register_preset
from hetmap.hardware.spec import (
    AnalogCore,
    DigitalCore,
    HardwareSpec,
    Link,
    Precision,
    ZigzagOptions,
)
from hetmap.hardware.table import BASELINES, CostTable, baselines, cost_of, table_for
from hetmap.hardware.zigzag_backend import LayerCost, ZigzagCache, default_cache_dir

__all__ = ["BASELINES", "AnalogCore", "CostTable", "DigitalCore", "HardwareSpec", "LayerCost",
           "LayerRecord", "Link", "MappingCost", "OpGraph", "OpNode", "Precision", "ZigzagCache",
           "ZigzagOptions",
           "baselines", "cost_of", "default_cache_dir", "load_hardware", "parse_hardware",
           "preset_names", "register_preset", "table_for", "trace_graph"]
