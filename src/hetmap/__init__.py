"""hetmap: decide, layer by layer, where a deep network runs on a chip that mixes analog
in-memory-computing tiles with digital units, and reshape the network to fit the chip."""

from hetmap.candidates import Candidate, CandidateLayer, make_candidate, register_candidate
from hetmap.candidates.analog import AnalogCandidate, AnalogConfig
from hetmap.errors import (
    ConfigError,
    DataError,
    HetmapError,
    InputShapeError,
    MappingError,
    ModelError,
    TrainingError,
    UnknownCandidateError,
)
from hetmap.inventory import Inventory, LayerInfo, scan
from hetmap.layers import LayerSpec
from hetmap.mapping import Mapping
from hetmap.supernet import Objectives, Supernet, build_supernet

__version__ = "0.1.0"

__all__ = [
    "AnalogCandidate", "AnalogConfig", "Candidate", "CandidateLayer", "ConfigError",
    "DataError", "HetmapError", "InputShapeError", "Inventory", "LayerInfo", "LayerSpec",
    "Mapping", "MappingError", "ModelError", "Objectives", "Supernet", "TrainingError",
    "UnknownCandidateError", "__version__", "build_supernet", "make_candidate",
    "register_candidate", "scan",
]
