"""Competing mappers behind hetmap's search interface, registered on import: `anchors`
(uniform all-digital / all-analog references), `lionheart` (greedy conversion with
retraining and drift-aware acceptance), `odimo` (differentiable soft-mixture mapping),
`nsga2` (pymoo NSGA-II with a brief fine-tune per candidate). Each trains a private copy
of the supernet and keeps the weights behind every mapping it scored (`snapshots`)."""

from hetmap.search.mappers._common import (
    MapperStrategy,
    WorkCopy,
    anchor_genomes,
)
from hetmap.search.mappers.anchors import AnchorsStrategy
from hetmap.search.mappers.lionheart import LionHeartStrategy, lionheart_rpu_config
from hetmap.search.mappers.nsga2 import NSGA2Strategy
from hetmap.search.mappers.odimo import ODiMoStrategy, cost_rows, expected_cost

__all__ = ["AnchorsStrategy", "LionHeartStrategy", "MapperStrategy", "NSGA2Strategy",
           "ODiMoStrategy", "WorkCopy", "anchor_genomes", "cost_rows",
           "expected_cost", "lionheart_rpu_config"]
