"""hetmap: decide, layer by layer, where a deep network runs on a chip that mixes analog
in-memory-computing tiles with digital units, and reshape the network to fit the chip."""

from hetmap._version import __version__
from hetmap.adaptation import AdaptPolicy, AdaptReport, adapt
from hetmap.candidates import Candidate, CandidateLayer, make_candidate, register_candidate
from hetmap.candidates.analog import AnalogCandidate, AnalogConfig
from hetmap.errors import (
    ConfigError,
    DataError,
    HetmapError,
    InputShapeError,
    MappingError,
    ModelError,
    ProtocolError,
    TrainingError,
    UnknownCandidateError,
)
from hetmap.evaluation import Evaluator, evaluate_drift
from hetmap.inventory import Inventory, LayerInfo, scan
from hetmap.layers import LayerSpec
from hetmap.mapping import Mapping
from hetmap.pipeline import run
from hetmap.search import Budget, ParetoFront, search  # `hetmap.search(...)` is the function
from hetmap.supernet import Objectives, Supernet, build_supernet
from hetmap.tasks import final_scoring

__all__ = [
    "AdaptPolicy",
    "AdaptReport",
    "AnalogCandidate",
    "AnalogConfig",
    "Budget",
    "Candidate",
    "CandidateLayer",
    "ConfigError",
    "DataError",
    "Evaluator",
    "HetmapError",
    "InputShapeError",
    "Inventory",
    "LayerInfo",
    "LayerSpec",
    "Mapping",
    "MappingError",
    "ModelError",
    "Objectives",
    "ParetoFront",
    "ProtocolError",
    "Supernet",
    "TrainingError",
    "UnknownCandidateError",
    "__version__",
    "adapt",
    "build_supernet",
    "evaluate_drift",
    "final_scoring",
    "make_candidate",
    "register_candidate",
    "run",
    "scan",
    "search",
]
