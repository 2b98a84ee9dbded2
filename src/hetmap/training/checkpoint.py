"""Resumable training state: one atomic file with weights, preferences, optimizer, progress
and every RNG state, written only from a finite state, so the file on disk is always the
last good one. Read back with torch.load(weights_only=True): plain tensors and Python
scalars/containers only, no pickled objects."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hetmap.errors import DataError
from hetmap.io import atomic_torch_save

CHECKPOINT = "checkpoint.pt"
VERSION = 1


def rng_state() -> dict[str, Any]:
    """This process's torch, CUDA, Python and NumPy RNG states as plain data."""
    py = random.getstate()
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                  float(gauss)],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, keys, gauss = state["python"]
    random.setstate((version, tuple(keys), gauss))
    name, keys_t, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys_t.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_path(run_dir: str | os.PathLike[str]) -> Path:
    return Path(run_dir) / CHECKPOINT


def save_state(run_dir: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write the training state atomically (a crash mid-write keeps the previous file)."""
    return atomic_torch_save(checkpoint_path(run_dir), {"version": VERSION, **state})


def load_state(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The saved training state, or None when the run directory holds none."""
    path = checkpoint_path(run_dir)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DataError(f"training checkpoint {path} cannot be read ({exc}); delete it to "
                        "start over") from None
    if not isinstance(state, dict) or state.get("version") != VERSION:
        raise DataError(f"{path} is not a hetmap training checkpoint (version {VERSION})")
    return state
