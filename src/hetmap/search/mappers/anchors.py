"""`anchors`: the uniform reference points every mapper is read against: all-digital at
each digital precision the layers offer (on the starting weights) and all-analog after
hardware-aware training (`train_steps`, early stopping; give it the same training budget
as the mappers it anchors). Width choices of an adapted supernet stay wide."""

from __future__ import annotations

from collections.abc import Sequence

from hetmap.errors import ConfigError
from hetmap.search.mappers._common import MapperStrategy, digital_start, uniform_or
from hetmap.search.problem import SearchProblem
from hetmap.search.strategy import register_strategy


@register_strategy("anchors")
class AnchorsStrategy(MapperStrategy):
    """digital: uniform precisions scored as they are (layers not offering one keep the
    first of `digital` they offer); analog: the candidate made uniform and trained."""

    name = "anchors"

    def __init__(self, digital: Sequence[str] = ("fp32", "fp16", "int8"),
                 analog: str | None = "analog", train_steps: int = 20,
                 patience: int | None = 2, eval_every: int = 5, **common: object) -> None:
        super().__init__(**common)  # type: ignore[arg-type]
        if not digital and analog is None:
            raise ConfigError("anchors needs at least one digital precision or analog")
        if train_steps < 0:
            raise ConfigError(f"train_steps must be >= 0, got {train_steps}")
        self.digital, self.analog = tuple(digital), analog
        self.train_steps, self.patience, self.eval_every = train_steps, patience, eval_every

    def run(self, problem: SearchProblem, seed: int = 0) -> None:
        work = self.start(problem, seed)
        sn = work.sn
        base = digital_start(sn, self.digital)
        offered = {c for n in sn.layer_names for c in sn.candidates(n)}
        for cand in self.digital:
            if cand in offered and not problem.exhausted():
                work.score([uniform_or(sn, cand, base)])
        if self.analog is not None and self.analog in offered and not problem.exhausted():
            mapping = uniform_or(sn, self.analog, base)
            work.finetune(mapping, self.train_steps, self.lr, patience=self.patience,
                          eval_every=self.eval_every)
            work.score([mapping])
        work.restore()
        self.stats.train_steps = work.steps
