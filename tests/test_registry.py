"""The one registry rule behind models, candidates, strategies, tasks and hardware presets."""

from __future__ import annotations

import pytest

from hetmap.candidates.registry import CANDIDATES, register_candidate
from hetmap.errors import ConfigError, UnknownCandidateError
from hetmap.hardware.loader import PRESETS
from hetmap.models.registry import MODELS
from hetmap.registry import Registry
from hetmap.search.strategy import STRATEGIES
from hetmap.tasks.registry import TASKS


def test_register_get_names_and_refused_overwrite() -> None:
    reg: Registry[int] = Registry("number", {"one": 1})
    reg.register("two", 2)
    assert reg.names() == ("one", "two") and reg.get("two") == 2 and "one" in reg
    with pytest.raises(ConfigError, match="'one' is already registered; pass replace=True"):
        reg.register("one", 11)
    reg.register("one", 11, replace=True)
    assert reg.get("one") == 11


def test_unknown_name_lists_the_registered_ones() -> None:
    reg: Registry[int] = Registry("number", {"one": 1, "two": 2}, hint=" (or a path)")
    with pytest.raises(ConfigError, match=r"unknown number 'three'; registered: one, two \(or"):
        reg.get("three")


def test_lazy_paths_resolve_on_first_get_and_keys_normalise() -> None:
    reg: Registry[object] = Registry("thing", {"join": "os.path:join"},
                                     key=lambda n: n.lower())
    import os.path

    assert reg.get("JOIN") is os.path.join
    with pytest.raises(ConfigError, match="cannot import"):
        Registry("thing", {"x": "no_such_module_xyz:f"}).get("x")


def test_build_names_options_the_factory_refuses() -> None:
    reg: Registry[object] = Registry("maker", {"pair": lambda a=1: (a, a)})
    assert reg.build("pair", a=2) == (2, 2)
    with pytest.raises(ConfigError, match=r"maker 'pair' does not accept the options \['b'\]"):
        reg.build("pair", b=3)


def test_every_lookup_by_name_shares_the_rule() -> None:
    for reg in (MODELS, CANDIDATES, STRATEGIES, TASKS, PRESETS):
        assert isinstance(reg, Registry) and reg.names()
        with pytest.raises(ConfigError, match="already registered"):
            reg.register(reg.names()[0], reg.get(reg.names()[0]))
    with pytest.raises(UnknownCandidateError, match="registered: fp32"):
        CANDIDATES.get("int3")
    with pytest.raises(ConfigError, match="already registered"):
        register_candidate("fp32", CANDIDATES.get("fp16"))
