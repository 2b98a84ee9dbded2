"""A tiny supernet on sklearn digits, shared by the evaluation and search tests."""

from __future__ import annotations

from functools import cache

import torch

from hetmap import AnalogConfig, Supernet, build_supernet
from hetmap.tasks import Task, get_task


def eager_analog() -> AnalogConfig:
    """The default analog config without torch.compile fusion (compiling costs more than
    these tiny tests run)."""
    return AnalogConfig(**({"fuse": False} if "fuse" in AnalogConfig.model_fields else {}))


@cache
def digits_task() -> Task:
    return get_task("digits", width=4)


def digits_supernet(candidates: tuple[str, ...] = ("fp32", "int8", "analog")) -> Supernet:
    task = digits_task()
    torch.manual_seed(0)
    model = task.build_model()
    return build_supernet(model, task.example_input(16), candidates=candidates,
                          analog=eager_analog())


def digits_width_supernet(candidates: tuple[str, ...] = ("fp32", "int8", "analog")
                          ) -> Supernet:
    """The digits model adapted to 512 x 512 tiles, each widened group a width choice."""
    from hetmap import adapt
    from hetmap.adaptation import width_groups

    task = digits_task()
    torch.manual_seed(0)
    model = task.build_model().eval()
    x = task.example_input(16)
    wide, report = adapt(model, x, tile=(512, 512))
    return build_supernet(wide, x, candidates=candidates, analog=eager_analog(),
                          widths=width_groups(report))
