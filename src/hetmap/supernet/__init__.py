"""The supernetwork: choice layers, width choices, path modes, preferences and exact
objectives."""

from hetmap.inventory.variants import WidthGroup
from hetmap.supernet.choice import ChoiceLayer
from hetmap.supernet.objectives import Objectives, ObjectiveTable
from hetmap.supernet.options import SupernetOptions
from hetmap.supernet.supernet import DEFAULT_CANDIDATES, Supernet, build_supernet
from hetmap.supernet.width import GatedChoiceLayer, WidthGate

__all__ = ["DEFAULT_CANDIDATES", "ChoiceLayer", "GatedChoiceLayer", "ObjectiveTable",
           "Objectives", "Supernet", "SupernetOptions", "WidthGate", "WidthGroup", "build_supernet"]
