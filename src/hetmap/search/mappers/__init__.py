"""Competing mappers behind hetmap's search interface, registered on import: `anchors`
(uniform all-digital / all-analog references), `lionheart` (greedy conversion with
retraining and drift-aware acceptance), `odimo` (differentiable soft-mixture mapping),
`nsga2` (pymoo NSGA-II with a brief fine-tune per candidate), `harmonica` (every layer
analog with its variation-sensitive rows digital, a sweep of the digital share). Each
works on a private copy of the supernet and keeps the weights behind every mapping it
scored (`snapshots`)."""

from hetmap.search.mappers._common import (
    MapperStats,
    MapperStrategy,
    WorkCopy,
    anchor_genomes,
)
from hetmap.search.mappers.anchors import AnchorsStrategy
from hetmap.search.mappers.harmonica import HarmonicaStrategy, hybrid_candidates, share_state
from hetmap.search.mappers.lionheart import LionHeartStrategy, lionheart_rpu_config
from hetmap.search.mappers.nsga2 import NSGA2Strategy
from hetmap.search.mappers.odimo import ODiMoStrategy, cost_rows, expected_cost

__all__ = ["AnchorsStrategy", "HarmonicaStrategy", "LionHeartStrategy", "MapperStats",
           "MapperStrategy",
           "NSGA2Strategy", "ODiMoStrategy", "WorkCopy", "anchor_genomes", "cost_rows",
           "expected_cost", "hybrid_candidates", "lionheart_rpu_config", "share_state"]
