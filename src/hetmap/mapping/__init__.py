"""The Mapping value type (layer -> candidate), its validation and JSON form. No torch."""

from hetmap.mapping.mapping import (
    NARROW,
    SCHEMA_VERSION,
    WIDE,
    WIDTH_PREFIX,
    WIDTHS,
    LayerChoices,
    Mapping,
    is_width_choice,
)

__all__ = ["NARROW", "SCHEMA_VERSION", "WIDE", "WIDTHS", "WIDTH_PREFIX", "LayerChoices",
           "Mapping", "is_width_choice"]
