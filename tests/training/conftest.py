"""Training tests run tiny models: one torch thread is as fast, and much faster than two
when the CI machine is busy (oversubscribed threads spin)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
