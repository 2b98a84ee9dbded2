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
from hetmap.registry import Registry

Factory = Callable[[LayerSpec, dict[str, Any]], Candidate]


def _analog(spec: LayerSpec, options: dict[str, Any]) -> Candidate:
    from hetmap.candidates.analog import AnalogCandidate, AnalogConfig

    return AnalogCandidate("analog", spec, options.get("analog") or AnalogConfig())


CANDIDATES: Registry[Factory] = Registry("candidate", {
    "fp32": lambda spec, o: FloatCandidate("fp32", spec),
    "fp16": lambda spec, o: FloatCandidate("fp16", spec),
    "bf16": lambda spec, o: FloatCandidate("bf16", spec),
    "int8": lambda spec, o: IntCandidate("int8", spec, 8, o.get("int8_act_bits", 8)),
    "int4": lambda spec, o: IntCandidate("int4", spec, 4, o.get("int4_act_bits", 4)),
    "analog": _analog,
    "skip": lambda spec, o: SkipCandidate("skip", spec),
}, error=UnknownCandidateError)
for _split in (HybridSplit(f) for f in HYBRID_FRACTIONS):
    CANDIDATES.register(add_split(_split), hybrid_factory(_split))


def candidate_names() -> tuple[str, ...]:
    return tuple(sorted(CANDIDATES.names()))


def register_candidate(name: str, factory: Factory, *, replace: bool = False) -> None:
    """Add a user candidate: `factory(spec, options) -> Candidate`."""
    if not name.isidentifier():
        raise ValueError(f"candidate names must be identifiers, got {name!r}")
    CANDIDATES.register(name, factory, replace=replace)


def register_hybrid(fraction: float, digital: str = "int8") -> str:
    """Add the hybrid candidate computing `fraction` of each layer's rows on `digital`
    (hetmap.candidates.hybrid); returns its name (e.g. "hybrid20")."""
    split = HybridSplit(float(fraction), digital)
    if split.name not in CANDIDATES:
        CANDIDATES.register(add_split(split), hybrid_factory(split))
    return split.name


def check_candidate(name: str) -> None:
    CANDIDATES.get(name)


def make_candidate(name: str, spec: LayerSpec, **options: Any) -> Candidate:
    """Build candidate `name` for a layer of shape `spec` (options: analog=AnalogConfig,
    int8_act_bits, int4_act_bits)."""
    return CANDIDATES.get(name)(spec, options)
