"""Bring a user's model into the form every hetmap stage works on.

Three rewrites, all exact: `nn.MultiheadAttention` gets explicit q/k/v/out Linear layers,
`nn.LSTM`/`nn.GRU`/`nn.RNN` and their cells get their input-to-hidden and hidden-to-hidden
matmuls as Linear layers (`hetmap.inventory.recurrent`), and Hugging Face `Conv1D` (GPT-2
style, weight stored in x out) becomes an `nn.Linear`. Layer
names stay those of the user's model, so a mapping reads naturally.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from hetmap.inventory.attention import split_attention
from hetmap.inventory.recurrent import is_rewritable, map_recurrent


def is_hf_conv1d(module: nn.Module) -> bool:
    cls = type(module)
    return cls.__name__ == "Conv1D" and cls.__module__.startswith("transformers")


def needs_normalizing(model: nn.Module) -> bool:
    return any(isinstance(m, nn.MultiheadAttention) or is_hf_conv1d(m) or is_rewritable(m)
               for m in model.modules())


def _hf_conv1d_to_linear(module: nn.Module) -> nn.Linear:
    weight = module.weight  # (in, out)
    linear = nn.Linear(weight.shape[0], weight.shape[1], bias=module.bias is not None)
    linear = linear.to(weight.device, weight.dtype)
    with torch.no_grad():
        linear.weight.copy_(weight.t())
        if module.bias is not None:
            linear.bias.copy_(module.bias)
    return linear


def normalize_model(model: nn.Module, inplace: bool = False) -> nn.Module:
    """The model with every mappable projection as a standard Linear/Conv module."""
    if not needs_normalizing(model):
        return model
    if not inplace:
        model = copy.deepcopy(model)
    split_attention(model)
    map_recurrent(model)
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if is_hf_conv1d(child):
                setattr(parent, child_name, _hf_conv1d_to_linear(child))
    return model
