"""Load a hardware spec from a shipped preset name or a YAML path, with errors naming fields."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from hetmap.errors import ConfigError
from hetmap.hardware.spec import HardwareSpec
from hetmap.registry import Registry

PRESET_DIR = Path(__file__).parent / "presets"
PRESETS: Registry[Path] = Registry(
    "hardware preset", {p.stem: p for p in sorted(PRESET_DIR.glob("*.yaml"))})


def register_preset(name: str, path: str | os.PathLike[str], *, replace: bool = False) -> None:
    """Make a hardware YAML file loadable by `name`."""
    PRESETS.register(name, Path(path).expanduser(), replace=replace)


def preset_names() -> tuple[str, ...]:
    return tuple(sorted(PRESETS.names()))


def parse_hardware(data: Any, source: str = "hardware spec") -> HardwareSpec:
    """Validate a dict; pydantic's errors become one ConfigError naming every bad field."""
    try:
        return HardwareSpec.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"field '{'.'.join(str(p) for p in e['loc']) or '<root>'}': {e['msg']}"
            for e in err.errors())
        raise ConfigError(f"{source} is invalid: {problems}") from None


def load_hardware(name_or_path: str | os.PathLike[str] | HardwareSpec) -> HardwareSpec:
    """A preset ("hermes-pcm", "digital-int8-fp16") or a YAML file describing a system."""
    if isinstance(name_or_path, HardwareSpec):
        return name_or_path
    text = str(name_or_path)
    path = PRESETS.get(text) if text in PRESETS else Path(text).expanduser()
    if not path.is_file():
        raise ConfigError(f"unknown hardware {text!r}: not a preset "
                          f"({', '.join(preset_names())}) nor a YAML file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"hardware file {path} is not valid YAML: {err}") from None
    return parse_hardware(data, f"hardware {path.name}")
