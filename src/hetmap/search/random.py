"""`random`: uniform sampling of mappings, the first baseline every strategy must beat."""

from __future__ import annotations

import numpy as np

from hetmap.search.strategy import Strategy, register_strategy


@register_strategy("random")
class RandomStrategy(Strategy):
    """Each layer's candidate drawn uniformly, `pop_size` unseen mappings per round."""

    name = "random"

    def ask(self) -> np.ndarray:
        return self.unseen(self.uniform(2 * self.pop_size))[:self.pop_size]
