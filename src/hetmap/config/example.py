"""`hetmap config example`: a commented YAML of every setting at its default, generated from
the models' field descriptions so that it can never drift from what is validated."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from hetmap.config.schema import RunConfig

HEADER = """\
# hetmap run configuration. Every key is optional: these values are the defaults
# (the demonstration: embedded MNIST 5k, small CNN, Hermes-like PCM chip).
# Unknown keys are errors. Override any value on the command line:
#   hetmap run config.yaml --set search.evaluations=50 --set candidates=[fp32,int8,analog]
# Relative paths are relative to this file's folder.
"""


def _scalar(value: Any) -> str:
    return json.dumps(value)  # JSON is YAML: strings quoted, lists in flow style


def _doc(model: type[BaseModel]) -> str:
    return (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else ""


def _emit(model: BaseModel, indent: int, lines: list[str]) -> None:
    pad = "  " * indent
    dumped = model.model_dump(mode="json")
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            if indent == 0:
                lines.append("")
            doc = info.description or _doc(type(value))
            if doc:
                lines.append(f"{pad}# {doc}")
            lines.append(f"{pad}{name}:")
            _emit(value, indent + 1, lines)
            continue
        if info.description:
            lines.append(f"{pad}# {info.description}")
        lines.append(f"{pad}{name}: {_scalar(dumped[name])}")


def example_config() -> str:
    """The documented default config; `load_config` of it equals `RunConfig()`."""
    lines: list[str] = []
    _emit(RunConfig(), 0, lines)
    return HEADER + "\n".join(lines).lstrip("\n") + "\n"
