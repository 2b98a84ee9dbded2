"""Tasks by name. Built-ins are registered as import paths so that importing hetmap.tasks
pulls in neither transformers nor pycocotools; a user's own task is any
"package.module:factory" path whose factory returns an object following the Task protocol."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from hetmap.errors import ConfigError
from hetmap.tasks.base import Task

TaskFactory = Callable[..., Task]

_TASKS: dict[str, str | TaskFactory] = {
    "mnist": "hetmap.tasks.classification:mnist_task",
    "digits": "hetmap.tasks.classification:digits_task",
    "cifar10": "hetmap.tasks.cifar:cifar10_task",
    "cifar100": "hetmap.tasks.cifar:cifar100_task",
    "mnist-seg": "hetmap.tasks.segmentation:mnist_seg_task",
    "coco-seg": "hetmap.tasks.coco:coco_seg_task",
    "squad": "hetmap.tasks.qa:squad_task",
    "synthetic-qa": "hetmap.tasks.synthetic_qa:synthetic_qa_task",
}


def register_task(name: str, factory: TaskFactory | str, *, overwrite: bool = False) -> None:
    """Register a factory (or a "module:attr" path to one) under `name`."""
    if name in _TASKS and not overwrite:
        raise ConfigError(f"task {name!r} is already registered; pass overwrite=True to replace")
    _TASKS[name] = factory


def task_names() -> list[str]:
    return sorted(_TASKS)


def _resolve(path: str) -> TaskFactory:
    module, sep, attr = path.partition(":")
    if not sep or not module or not attr:
        raise ConfigError(f"task path {path!r} must look like 'package.module:factory'")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"cannot import the task module {module!r} of {path!r}: {exc}") from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"module {module!r} has no attribute {attr!r} (task path {path!r})")
        obj = getattr(obj, part)
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
    return _check(_resolve(path)(**options), path)


def get_task(name: str, **options: Any) -> Task:
    """A registered task by name, or a user's by "package.module:factory" path."""
    entry = _TASKS.get(name)
    if entry is None:
        if ":" in name:
            return load_task(name, **options)
        raise ConfigError(f"unknown task {name!r}; registered: {', '.join(task_names())}, or "
                          "give a 'package.module:factory' path to your own")
    factory = _resolve(entry) if isinstance(entry, str) else entry
    try:
        task = factory(**options)
    except TypeError as exc:
        raise ConfigError(f"task {name!r} does not accept the options {sorted(options)}: "
                          f"{exc}") from None
    return _check(task, name)
