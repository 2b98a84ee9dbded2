"""One registry rule for everything hetmap looks up by name (models, candidates, search
strategies, tasks, hardware presets): `register` refuses to overwrite unless `replace=True`,
an entry may be a lazy "package.module:attr" import path (resolved on first `get`), and an
unknown name is a HetmapError listing the registered ones."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar, cast

from hetmap.errors import ConfigError, HetmapError

T = TypeVar("T")


def resolve_path(path: str, what: str = "object") -> Any:
    """The object a "package.module:attr" path names; ConfigErrors say which part is wrong."""
    module, sep, attr = path.partition(":")
    if not sep or not module or not attr:
        raise ConfigError(f"{what} path {path!r} must look like 'package.module:factory'")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"cannot import the {what} module {module!r} of {path!r}: {exc}") from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"module {module!r} has no attribute {attr!r} ({what} path {path!r})")
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """Named entries of one kind.

    `kind` names them in messages ("model", "search strategy"); `key` normalises names
    (models accept "small-cnn" for "small_cnn"); `error` is the HetmapError an unknown name
    raises and `hint` is appended to its message; `entries` are the built-ins."""

    def __init__(self, kind: str, entries: Mapping[str, T | str] | None = None, *,
                 key: Callable[[str], str] = str, error: type[HetmapError] = ConfigError,
                 hint: str = "") -> None:
        self.kind = kind
        self._key = key
        self._error = error
        self._hint = hint
        self._entries: dict[str, T | str] = {}
        for name, entry in (entries or {}).items():
            self.register(name, entry)

    def register(self, name: str, entry: T | str, *, replace: bool = False) -> T | str:
        """Add `entry` (or a "module:attr" path to it) under `name`; returns `entry`."""
        key = self._key(name)
        if key in self._entries and not replace:
            raise ConfigError(f"{self.kind} {name!r} is already registered; pass replace=True "
                              "to replace it")
        self._entries[key] = entry
        return entry

    def decorator(self, name: str, *, replace: bool = False) -> Callable[[T], T]:
        """`@registry.decorator("name")` registers the decorated object."""
        def add(entry: T) -> T:
            self.register(name, entry, replace=replace)
            return entry
        return add

    def get(self, name: str) -> T:
        """The entry under `name`, a lazy path resolved (once) to its object."""
        key = self._key(name)
        try:
            entry = self._entries[key]
        except KeyError:
            raise self._error(f"unknown {self.kind} {name!r}; registered: "
                              f"{', '.join(self.names()) or '(none)'}{self._hint}") from None
        if isinstance(entry, str):
            entry = self._entries[key] = cast(T, resolve_path(entry, self.kind))
        return entry

    def build(self, name: str, **options: Any) -> Any:
        """Call the factory under `name` with `options`; options it does not accept are a
        ConfigError naming them."""
        factory = cast(Callable[..., Any], self.get(name))
        try:
            return factory(**options)
        except TypeError as exc:
            raise ConfigError(f"{self.kind} {name!r} does not accept the options "
                              f"{sorted(options)}: {exc}") from None

    def names(self) -> tuple[str, ...]:
        """Registered names in registration order."""
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) in self._entries
