"""The Mapping value type (layer -> candidate), its validation and JSON form. No torch."""

from hetmap.mapping.mapping import SCHEMA_VERSION, LayerChoices, Mapping

__all__ = ["SCHEMA_VERSION", "LayerChoices", "Mapping"]
