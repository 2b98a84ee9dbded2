"""Candidate names and the factory that builds them for a layer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hetmap.candidates.base import Candidate
from hetmap.candidates.digital import FloatCandidate, IntCandidate
from hetmap.candidates.hybrid import HYBRID_FRACTIONS, HybridSplit, add_split, hybrid_factory
from hetmap.candidates.skip import SkipCandidate
from hetmap.errors import UnknownCandidateError
from hetmap.layers import LayerSpec

Factory = Callable[[LayerSpec, dict[str, Any]], Candidate]


def _analog(spec: LayerSpec, options: dict[str, Any]) -> Candidate:
    from hetmap.candidates.analog import AnalogCandidate, AnalogConfig

    return AnalogCandidate("analog", spec, options.get("analog") or AnalogConfig())


_FACTORIES: dict[str, Factory] = {
    "fp32": lambda spec, o: FloatCandidate("fp32", spec),
    "fp16": lambda spec, o: FloatCandidate("fp16", spec),
    "bf16": lambda spec, o: FloatCandidate("bf16", spec),
    "int8": lambda spec, o: IntCandidate("int8", spec, 8, o.get("int8_act_bits", 8)),
    "int4": lambda spec, o: IntCandidate("int4", spec, 4, o.get("int4_act_bits", 4)),
    "analog": _analog,
    "skip": lambda spec, o: SkipCandidate("skip", spec),
}
_FACTORIES.update({add_split(s): hybrid_factory(s)
                   for s in (HybridSplit(f) for f in HYBRID_FRACTIONS)})


def candidate_names() -> tuple[str, ...]:
    return tuple(_FACTORIES)


def register_candidate(name: str, factory: Factory) -> None:
    """Add a user candidate: `factory(spec, options) -> Candidate`."""
    if not name.isidentifier():
        raise ValueError(f"candidate names must be identifiers, got {name!r}")
    _FACTORIES[name] = factory


def register_hybrid(fraction: float, digital: str = "int8") -> str:
    """Add the hybrid candidate computing `fraction` of each layer's rows on `digital`
    (hetmap.candidates.hybrid); returns its name (e.g. "hybrid20")."""
    split = HybridSplit(float(fraction), digital)
    if split.name not in _FACTORIES:
        _FACTORIES[add_split(split)] = hybrid_factory(split)
    return split.name


def check_candidate(name: str) -> None:
    if name not in _FACTORIES:
        raise UnknownCandidateError(
            f"unknown candidate {name!r}; choose from {', '.join(_FACTORIES)}")


def make_candidate(name: str, spec: LayerSpec, **options: Any) -> Candidate:
    """Build candidate `name` for a layer of shape `spec` (options: analog=AnalogConfig,
    int8_act_bits, int4_act_bits)."""
    check_candidate(name)
    return _FACTORIES[name](spec, options)
