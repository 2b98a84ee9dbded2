"""Example inputs come as a tensor, a tuple of positional tensors, or a dict of keyword
tensors (Hugging Face style); these helpers call a model with any of them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from hetmap.errors import InputShapeError

ModelInput = Tensor | Sequence[Any] | Mapping[str, Any]


def call_model(model: nn.Module, example_input: ModelInput) -> Any:
    if isinstance(example_input, Mapping):
        return model(**example_input)
    if isinstance(example_input, list | tuple):
        return model(*example_input)
    return model(example_input)


def first_tensor(example_input: ModelInput) -> Tensor:
    values = (example_input.values() if isinstance(example_input, Mapping)
              else example_input if isinstance(example_input, list | tuple) else [example_input])
    for value in values:
        if isinstance(value, Tensor):
            return value
    raise InputShapeError("the example input holds no tensor; pass a tensor, a tuple of "
                          "tensors or a dict of tensors")


def batch_size_of(example_input: ModelInput) -> int:
    t = first_tensor(example_input)
    if t.dim() == 0:
        raise InputShapeError("the example input is a scalar; give it a batch dimension")
    return int(t.shape[0])


def to_device(example_input: ModelInput, device: torch.device | str) -> ModelInput:
    if isinstance(example_input, Mapping):
        return {k: to_device(v, device) for k, v in example_input.items()}
    if isinstance(example_input, list | tuple):
        return type(example_input)(to_device(v, device) for v in example_input)
    if isinstance(example_input, Tensor):
        return example_input.to(device)
    return example_input


def first_output_tensor(output: Any) -> Tensor:
    """The main tensor of a model's output (logits of a HF ModelOutput, first of a tuple)."""
    if isinstance(output, Tensor):
        return output
    if isinstance(output, Mapping):
        for value in output.values():
            if isinstance(value, Tensor):
                return value
    if isinstance(output, list | tuple):
        for value in output:
            if isinstance(value, Tensor):
                return value
    raise TypeError(f"cannot find a tensor in a model output of type {type(output).__name__}")


def output_tensors(output: Any) -> list[Tensor]:
    """Every tensor of a model output (a tensor, a dict such as Hugging Face's outputs, or
    nested lists/tuples), in order."""
    if isinstance(output, Tensor):
        return [output]
    if isinstance(output, dict):
        return [t for v in output.values() for t in output_tensors(v)]
    if isinstance(output, list | tuple):
        return [t for v in output for t in output_tensors(v)]
    return []
