"""The supernetwork: choice layers, path modes, preferences and exact objectives."""

from hetmap.supernet.choice import ChoiceLayer
from hetmap.supernet.objectives import Objectives, ObjectiveTable
from hetmap.supernet.supernet import DEFAULT_CANDIDATES, Supernet, build_supernet

__all__ = ["DEFAULT_CANDIDATES", "ChoiceLayer", "ObjectiveTable", "Objectives", "Supernet",
           "build_supernet"]
