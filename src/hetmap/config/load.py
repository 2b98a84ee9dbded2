"""Reading a config: YAML file + `--set a.b=value` overrides -> RunConfig, with every failure
turned into one ConfigError line that names the field and what it accepts."""

from __future__ import annotations

import json
import os
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from hetmap.config.schema import RunConfig
from hetmap.errors import ConfigError


def parse_override(text: str) -> tuple[list[str], Any]:
    """'search.budget=50' -> (['search', 'budget'], 50); the value is read as YAML, so
    lists (`candidates=[fp32,int8]`), numbers, booleans and null keep their types."""
    key, sep, raw = text.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(p.strip() for p in parts):
        raise ConfigError(f"--set {text!r} must look like key.subkey=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML "
                          f"({str(err).splitlines()[0]})") from None
    return [p.strip() for p in parts], value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of `data` with each 'a.b=value' set (missing sections are created)."""
    import copy

    data = copy.deepcopy(data)
    for text in overrides:
        parts, value = parse_override(text)
        node = data
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {'.'.join(parts[:i + 1])} is a value, "
                                  "not a section")
            node = child
        node[parts[-1]] = value
    return data


def _submodel(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel inside `X`, `X | None`, `list[X]`, `dict[str, X]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            found = _submodel(arg)
            if found is not None:
                return found
    return None


def _model_at(loc: Sequence[Any]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = RunConfig
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int) or part not in model.model_fields:
            continue  # list index or pydantic's union tag
        model = _submodel(model.model_fields[part].annotation)
    return model


def format_error(err: ValidationError, source: str | None = None) -> str:
    """One line: where (dotted field path), what is wrong, what is allowed, what was given."""
    errors = err.errors()
    first = errors[0]
    loc = [p for p in first["loc"]]
    field = ".".join(str(p) for p in loc) or "<top level>"
    msg = first["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if first["type"] == "extra_forbidden":
        parent = _model_at(loc[:-1])
        where = ".".join(str(p) for p in loc[:-1]) or "the top level"
        allowed = ", ".join(parent.model_fields) if parent else "?"
        msg = f"unknown key {loc[-1]!r} in {where}; allowed keys: {allowed}"
    elif first["type"] == "missing":
        msg = "required key is missing"
    else:
        msg = msg[:1].lower() + msg[1:]
        given = first.get("input")
        if not isinstance(given, dict) and first["type"] != "value_error":
            text = repr(given)
            msg += f" (got {text if len(text) < 60 else text[:57] + '...'})"
    more = f" (and {len(errors) - 1} more problem{'s' * (len(errors) > 2)})" \
        if len(errors) > 1 else ""
    head = f"{source}: " if source else ""
    return f"{head}{field}: {msg}{more}"


def validate_config(data: Any, source: str | None = None,
                    base_dir: str | os.PathLike[str] | None = None) -> RunConfig:
    """A RunConfig from a dict, or a ConfigError with one line from `format_error`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source or 'config'}: the top level must be a mapping of "
                          f"sections, got {type(data).__name__}")
    try:
        return RunConfig.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as err:
        raise ConfigError(format_error(err, source)) from None


def read_yaml(path: str | os.PathLike[str]) -> Any:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"no config file at {path}; `hetmap config example > {path.name}` "
                          "writes one") from None
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{path.name}:{where}: not valid YAML ({problem})") from None


def load_config(path: str | os.PathLike[str] | None = None,
                overrides: Sequence[str] = ()) -> RunConfig:
    """The config in `path` (None: the defaults, i.e. the demo) with `overrides` applied.
    Relative paths in the file are relative to the file's folder; in overrides, to the
    current directory."""
    data: dict[str, Any] = {}
    source, base = "config", Path.cwd()
    if path is not None:
        raw = read_yaml(path)
        if raw is not None and not isinstance(raw, dict):
            raise ConfigError(f"{Path(path).name}: the top level must be a mapping of "
                              f"sections, got {type(raw).__name__}")
        data, source, base = raw or {}, Path(path).name, Path(path).resolve().parent
    # relative paths given on the command line are relative to the current directory
    overrides = [_absolute_override(text) for text in overrides]
    return validate_config(apply_overrides(data, overrides), source, base)


_PATH_KEYS = ("task.data", "model.checkpoint", "hardware")


def _absolute_override(text: str) -> str:
    parts, value = parse_override(text)
    key = ".".join(parts)
    if key not in _PATH_KEYS or not isinstance(value, str) or not value:
        return text
    if key == "hardware" and not value.endswith((".yaml", ".yml")):
        return text  # a preset name
    return f"{key}={json.dumps(str(Path(value).expanduser().absolute()))}"


def dump_config(cfg: RunConfig) -> str:
    """The config as YAML (every value, defaults included): the run directory's snapshot."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
