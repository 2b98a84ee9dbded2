"""The value that crosses every stage: which candidate each layer runs on."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from collections.abc import Mapping as AbcMapping
from typing import Any, Protocol

from hetmap.errors import MappingError, UnknownCandidateError
from hetmap.io import atomic_write_text

SCHEMA_VERSION = 1

# Width choices (MPAAS made searchable): a widened group's entry is "width:<first producer>"
# -> "narrow" (the original width) or "wide" (the adapted one). Module names never hold ":".
WIDTH_PREFIX = "width:"
NARROW, WIDE = "narrow", "wide"
WIDTHS = (NARROW, WIDE)


def is_width_choice(name: str) -> bool:
    """True for a width-choice entry of a mapping, False for a layer."""
    return name.startswith(WIDTH_PREFIX)


class LayerChoices(Protocol):
    """What a mapping is validated against (a Supernet provides it). `layer_names` are its
    searchable choices: layers, and width choices ("width:..." -> "narrow" | "wide")."""

    @property
    def layer_names(self) -> tuple[str, ...]: ...

    @property
    def fingerprint(self) -> str: ...

    def candidates(self, name: str) -> tuple[str, ...]: ...


class Mapping(AbcMapping[str, str]):
    """Immutable layer name -> candidate name, tagged with the model it was made for."""

    __slots__ = ("_choices", "_hash", "model")

    def __init__(self, choices: AbcMapping[str, str], model: str | None = None) -> None:
        self._choices = dict(choices)
        self.model = model
        self._hash: int | None = None

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def uniform(cls, supernet: LayerChoices, candidate: str, fallback: str | None = None) -> \
            Mapping:
        """Every searchable layer on `candidate` (or `fallback` where it is not offered).

        Width choices that offer neither take `wide`: a uniform mapping of an adapted
        supernet is the adapted network, as it was before widths became searchable."""
        choices = {}
        for name in supernet.layer_names:
            offered = supernet.candidates(name)
            if candidate in offered:
                choices[name] = candidate
            elif fallback is not None and fallback in offered:
                choices[name] = fallback
            elif is_width_choice(name):
                choices[name] = WIDE
            else:
                raise UnknownCandidateError(
                    f"candidate {candidate!r} is not offered for layer {name!r} "
                    f"(offered: {', '.join(offered)}); pass fallback=... to fill such layers")
        return cls(choices, supernet.fingerprint)

    def with_choice(self, layer: str, candidate: str) -> Mapping:
        choices = dict(self._choices)
        choices[layer] = candidate
        return Mapping(choices, self.model)

    # -- mapping protocol ------------------------------------------------------------------
    def __getitem__(self, layer: str) -> str:
        return self._choices[layer]

    def __iter__(self) -> Iterator[str]:
        return iter(self._choices)

    def __len__(self) -> int:
        return len(self._choices)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(tuple(sorted(self._choices.items())))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._choices == other._choices
        return NotImplemented

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for cand in self._choices.values():
            counts[cand] = counts.get(cand, 0) + 1
        summary = ", ".join(f"{c}: {n}" for c, n in sorted(counts.items()))
        return f"Mapping({len(self)} layers; {summary})"

    def key(self, order: tuple[str, ...]) -> tuple[str, ...]:
        """The choices as a tuple in a fixed layer order (a cache key)."""
        return tuple(self._choices[name] for name in order)

    # -- validation ------------------------------------------------------------------------
    def validate(self, supernet: LayerChoices) -> Mapping:
        """Raise a MappingError naming the first problem; returns self when valid."""
        if self.model is not None and self.model != supernet.fingerprint:
            raise MappingError(
                f"this mapping was made for another model (fingerprint {self.model}, "
                f"this supernet is {supernet.fingerprint}); build it from this supernet")
        known = set(supernet.layer_names)
        unknown = [name for name in self._choices if name not in known]
        if unknown:
            raise MappingError(f"mapping names layers the supernet does not have: "
                               f"{', '.join(unknown[:5])}")
        missing = [name for name in supernet.layer_names if name not in self._choices]
        if missing:
            raise MappingError(f"mapping has no candidate for layers: {', '.join(missing[:5])}"
                               + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
        for name, cand in self._choices.items():
            offered = supernet.candidates(name)
            if cand not in offered:
                raise UnknownCandidateError(
                    f"candidate {cand!r} is not offered for layer {name!r} "
                    f"(offered: {', '.join(offered)})")
        return self

    # -- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "model": self.model,
                "choices": dict(self._choices)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Mapping:
        version = d.get("schema_version")
        if version != SCHEMA_VERSION:
            raise MappingError(f"mapping schema_version {version!r} is not supported "
                               f"(this hetmap reads version {SCHEMA_VERSION})")
        choices = d.get("choices")
        if not isinstance(choices, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in choices.items()):
            raise MappingError("mapping 'choices' must be an object of layer name -> candidate")
        return cls(choices, d.get("model"))

    @classmethod
    def from_json(cls, text: str) -> Mapping:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise MappingError(f"mapping is not valid JSON: {err}") from None
        if not isinstance(data, dict):
            raise MappingError("mapping JSON must be an object")
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike[str]) -> None:
        atomic_write_text(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Mapping:
        try:
            with open(path) as fh:
                return cls.from_json(fh.read())
        except FileNotFoundError:
            raise MappingError(f"no mapping file at {path}") from None
