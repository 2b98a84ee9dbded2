"""Finding mappable layers and measuring them: MACs from a real forward, tile footprint."""

from hetmap.inventory.attention import SplitMultiheadAttention
from hetmap.inventory.normalize import normalize_model
from hetmap.inventory.scan import Inventory, LayerInfo, check_tile, scan

__all__ = ["Inventory", "LayerInfo", "SplitMultiheadAttention", "check_tile",
           "normalize_model", "scan"]
