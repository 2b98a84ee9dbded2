"""Tasks bundle data loaders, a model factory, a loss and a metric (see base.Task)."""

from hetmap.tasks.base import (
    Batch,
    Loaders,
    SealedLoader,
    Task,
    TrainDefaults,
    eval_mode,
    final_scoring,
    final_scoring_active,
    move_batch,
)
from hetmap.tasks.checkpoints import (
    load_checkpoint,
    read_metadata,
    read_state_dict,
    save_checkpoint,
)
from hetmap.tasks.registry import get_task, load_task, register_task, task_names

__all__ = [
    "Batch",
    "Loaders",
    "SealedLoader",
    "Task",
    "TrainDefaults",
    "eval_mode",
    "final_scoring",
    "final_scoring_active",
    "get_task",
    "load_checkpoint",
    "load_task",
    "move_batch",
    "read_metadata",
    "read_state_dict",
    "register_task",
    "save_checkpoint",
    "task_names",
]
