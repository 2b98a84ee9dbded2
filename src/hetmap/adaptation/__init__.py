"""MPAAS model adaptation: widen inner layers so analog layers fill their tiles, keeping the
model's function (`adapt`), with the pair finding and widening it is built from."""

from hetmap.adaptation.adapt import AdaptPolicy, AdaptReport, GroupReport, adapt, choose_width
from hetmap.adaptation.choices import width_groups
from hetmap.adaptation.graph import Skipped, WidenGroup, find_groups
from hetmap.adaptation.widen import unit_map, widen_group

__all__ = ["AdaptPolicy", "AdaptReport", "GroupReport", "Skipped", "WidenGroup", "adapt",
           "choose_width", "find_groups", "unit_map", "widen_group", "width_groups"]
