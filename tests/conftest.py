"""Shared fixtures: small deterministic models and inputs used across the suite."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# torch.compile of the analog kernels costs ~30 s per process; the eager path has the same
# numerics (tested), so the suite runs eager.
os.environ.setdefault("HETMAP_NO_COMPILE", "1")
# One intra-op thread: the suite is many tiny models, where threads cost more than they
# give, and a shared 2-core CI machine oversubscribes easily.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
