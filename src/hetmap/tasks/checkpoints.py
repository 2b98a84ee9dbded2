"""Checkpoints without pickle: hetmap writes safetensors; it reads safetensors, or a .pt
file through torch.load(weights_only=True), which refuses arbitrary Python objects."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from hetmap.errors import DataError, ModelError
from hetmap.io import atomic_write_bytes


def save_checkpoint(model: nn.Module | Mapping[str, Tensor], path: str | os.PathLike[str],
                    metadata: Mapping[str, object] | None = None) -> Path:
    """Write a state dict as safetensors, atomically. Tensors that share storage (tied
    weights) are cloned so that safetensors accepts them; loading restores both names."""
    from safetensors.torch import save

    state = model.state_dict() if isinstance(model, nn.Module) else model
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    return atomic_write_bytes(path, save(tensors, metadata=meta))


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """The tensors of a .safetensors or a .pt/.pth/.bin file, safely."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"checkpoint {p} does not exist")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(p))
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # an UnpicklingError for anything but plain tensors
        raise DataError(f"{p} cannot be read safely (weights_only=True): {exc}. Save a plain "
                        "state_dict (torch.save(model.state_dict(), path)) or safetensors") from exc
    for key in ("state_dict", "model_state_dict", "model"):  # common training wrappers
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise DataError(f"{p} holds no state dict of tensors")
    return dict(obj)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The string metadata stored in a safetensors header (task, metric values, ...)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        return dict(fh.metadata() or {})


def load_checkpoint(model: nn.Module, path: str | os.PathLike[str],
                    strict: bool = True) -> nn.Module:
    """Load weights into `model` in place and return it; names what does not match."""
    state = read_state_dict(path)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise ModelError(f"checkpoint {path} does not fit the model: {exc}") from None
    if strict and (missing or unexpected):
        raise ModelError(f"checkpoint {path} does not fit the model: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}; is it for another model or task?")
    return model
