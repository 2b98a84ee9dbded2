"""Fixtures for the task tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny models are all thread synchronisation: on a busy 2-core machine, two torch threads
    made the short training tests here 10-15x slower than one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
