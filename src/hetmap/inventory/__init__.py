"""Finding mappable layers and measuring them: MACs from a real forward, tile footprint."""

from hetmap.inventory.attention import SplitMultiheadAttention
from hetmap.inventory.normalize import normalize_model
from hetmap.inventory.scan import Inventory, LayerInfo, check_tile, scan
from hetmap.inventory.variants import ShapeVariants, WidthGroup, shape_variants
from hetmap.inventory.work import UnmappedWork

__all__ = ["Inventory", "LayerInfo", "ShapeVariants", "SplitMultiheadAttention", "UnmappedWork",
           "WidthGroup", "check_tile", "normalize_model", "scan", "shape_variants"]
