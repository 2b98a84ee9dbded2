"""Tasks by name. Built-ins are registered as import paths so that importing hetmap.tasks
pulls in neither transformers nor pycocotools; a user's own task is any
"package.module:factory" path whose factory returns an object following the Task protocol."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hetmap.errors import ConfigError
from hetmap.registry import Registry, resolve_path
from hetmap.tasks.base import Task

TaskFactory = Callable[..., Task]

TASKS: Registry[TaskFactory] = Registry("task", {
    "mnist": "hetmap.tasks.classification:mnist_task",
    "digits": "hetmap.tasks.classification:digits_task",
    "cifar10": "hetmap.tasks.cifar:cifar10_task",
    "cifar100": "hetmap.tasks.cifar:cifar100_task",
    "mnist-seg": "hetmap.tasks.segmentation:mnist_seg_task",
    "coco-seg": "hetmap.tasks.coco:coco_seg_task",
    "squad": "hetmap.tasks.qa:squad_task",
    "synthetic-qa": "hetmap.tasks.synthetic_qa:synthetic_qa_task",
}, hint=", or give a 'package.module:factory' path to your own")


def register_task(name: str, factory: TaskFactory | str, *, replace: bool = False) -> None:
    """Register a factory (or a "module:attr" path to one) under `name`."""
    TASKS.register(name, factory, replace=replace)


def task_names() -> tuple[str, ...]:
    return tuple(sorted(TASKS.names()))


def _factory(path: str) -> TaskFactory:
    obj = resolve_path(path, "task")
    if not callable(obj):
        raise ConfigError(f"{path!r} is not callable; it must be a factory returning a Task")
    return obj


def _check(task: object, origin: str) -> Task:
    if not isinstance(task, Task):
        missing = [a for a in ("name", "metric_name", "defaults", "loaders", "build_model",
                               "loss", "metric", "example_input") if not hasattr(task, a)]
        raise ConfigError(f"{origin} returned {type(task).__name__}, not a Task: it lacks "
                          f"{', '.join(missing)}")
    return task


def load_task(path: str, **options: Any) -> Task:
    """A user's task from "package.module:factory", called with `options`."""
    return _check(_factory(path)(**options), path)


def get_task(name: str, **options: Any) -> Task:
    """A registered task by name, or a user's by "package.module:factory" path."""
    if name not in TASKS and ":" in name:
        return load_task(name, **options)
    return _check(TASKS.build(name, **options), name)
