"""`harmonica`: the hybrid of Behnam et al. (Harmonica, IPDPS 2024; HybridAC, arXiv
2208.13896): every analog-capable layer on the analog accelerator with its few
variation-sensitive weights computed on a digital one (`hetmap.candidates.hybrid`), without
retraining.

Harmonica maps the whole network onto its hybrid accelerator; its one tunable is the share
of weights moved to the digital part. The strategy sweeps the hybrid candidates the supernet
offers (`fractions`: their digital shares; default: every hybrid offered), one uniform
mapping each, from the smallest share up, and (`limits`) the two ends of that sweep: all
analog (share 0) and every layer on the hybrids' digital precision (share 1). Each is
scored through the search problem, so each counts as one evaluation within the budget.

No retraining (HybridAC's selection "does not require retraining"): the hybrids run on the
shared weights the supernet's stage 1-2 trained, and before scoring each hybrid takes the
trained state of its layer's siblings (`share_state`): the analog candidate's learned input
ranges (the analog rows are the same tiles) and the integer candidate's input observer.
Layers offering no hybrid keep the digital baseline (`digital_start`). Assumed choices:
docs/compare.md, "Harmonica".
"""

from __future__ import annotations

from collections.abc import Sequence

from hetmap.candidates.hybrid import HybridCandidate, hybrid_split
from hetmap.errors import ConfigError
from hetmap.search.mappers._common import MapperStrategy, digital_start, uniform_or
from hetmap.search.problem import SearchProblem
from hetmap.search.strategy import register_strategy
from hetmap.supernet import Supernet


def hybrid_candidates(supernet: Supernet) -> list[str]:
    """The hybrid candidates any searchable layer offers, by digital share."""
    names = {c for n in supernet.layer_names for c in supernet.candidates(n)
             if hybrid_split(c) is not None}
    return sorted(names, key=lambda c: hybrid_split(c).fraction)  # type: ignore[union-attr]


def share_state(supernet: Supernet) -> None:
    """Give every hybrid candidate the trained state of its layer's analog candidate (input
    ranges) and of the integer candidate its digital part runs as (input observer)."""
    for _, choice in supernet.choice_layers():
        for cand in choice.all_candidates():
            if not isinstance(cand, HybridCandidate):
                continue
            siblings = choice.candidates
            if "analog" in siblings:
                cand.analog.load_state_dict(siblings["analog"].state_dict())
            if cand.split.digital in siblings:
                cand.digital.load_state_dict(siblings[cand.split.digital].state_dict())


@register_strategy("harmonica")
class HarmonicaStrategy(MapperStrategy):
    """fractions: the digital shares swept (each must be offered as a hybrid candidate,
    e.g. 0.05 -> "hybrid5"); None: every hybrid the supernet offers; limits: also score
    all-analog and all-digital at the hybrids' precision (where the layers offer them);
    digital: the baseline precision order for layers offering no hybrid."""

    name = "harmonica"

    def __init__(self, fractions: Sequence[float] | None = None, limits: bool = True,
                 digital: Sequence[str] = ("fp32", "fp16", "int8"), **common: object) -> None:
        super().__init__(**common)  # type: ignore[arg-type]
        if fractions is not None and (not fractions or any(not 0 < f < 1 for f in fractions)):
            raise ConfigError(f"fractions must be in (0, 1), got {list(fractions)}")
        self.fractions = None if fractions is None else tuple(sorted(float(f)
                                                                     for f in fractions))
        self.limits, self.digital = limits, tuple(digital)
        self.swept: list[str] = []  # the candidates of the last run, in scoring order

    def sweep(self, supernet: Supernet) -> list[str]:
        """The uniform candidates to score, in order."""
        offered = hybrid_candidates(supernet)
        if self.fractions is not None:
            by_fraction = {hybrid_split(c).fraction: c for c in offered}  # type: ignore[union-attr]
            missing = [f for f in self.fractions if f not in by_fraction]
            if missing:
                raise ConfigError(f"harmonica: no hybrid candidate for fractions {missing}; "
                                  f"offered: {offered or 'none'} (register_hybrid(f) and "
                                  "offer it in build_supernet(candidates=...))")
            offered = [by_fraction[f] for f in self.fractions]
        if not offered:
            raise ConfigError("harmonica needs hybrid candidates: build the supernet with "
                              "e.g. candidates=[..., 'hybrid2', 'hybrid5', 'hybrid10'] "
                              "(compare() adds them when it runs harmonica)")
        names = list(offered)
        if self.limits:
            digital = {hybrid_split(c).digital for c in offered}  # type: ignore[union-attr]
            names = ["analog", *names, *sorted(digital)]
        every = {c for n in supernet.layer_names for c in supernet.candidates(n)}
        return [c for c in names if c in every]

    def run(self, problem: SearchProblem, seed: int = 0) -> None:
        work = self.start(problem, seed)
        sn = work.sn
        share_state(sn)
        work.base = work.state()  # the trained weights plus the shared state, unretrained
        base = digital_start(sn, self.digital)
        self.swept = []
        for cand in self.sweep(sn):
            if problem.exhausted():
                break
            work.score([uniform_or(sn, cand, base)])
            self.swept.append(cand)
        work.restore()
        self.stats.train_steps = work.steps


def required_candidates(fractions: Sequence[float] | None = None) -> tuple[str, ...]:
    """The hybrid candidates `harmonica` with `fractions` (None: the registered defaults)
    needs the supernet to offer, registered where missing."""
    from hetmap.candidates.hybrid import HYBRID_FRACTIONS
    from hetmap.candidates.registry import register_hybrid

    return tuple(register_hybrid(f) for f in sorted(fractions or HYBRID_FRACTIONS))
