from __future__ import annotations

import sys
import textwrap

import pytest
import torch

from hetmap.errors import ConfigError
from hetmap.tasks import Task, get_task, load_task, move_batch, register_task, task_names


def test_builtin_names_are_registered() -> None:
    assert {"mnist", "digits", "cifar10", "cifar100", "mnist-seg", "coco-seg",
            "squad"} <= set(task_names())


def test_digits_task_follows_the_protocol() -> None:
    task = get_task("digits")
    assert isinstance(task, Task)
    assert task.name == "digits" and task.metric_name == "accuracy"
    x = task.example_input(4)
    assert x.shape == (4, 1, 8, 8)
    out = task.build_model()(x)
    assert task.loss(out, torch.tensor([0, 1, 2, 3])).ndim == 0


def test_loaders_are_deterministic_by_seed() -> None:
    task = get_task("digits")
    first = [next(iter(task.loaders(32, seed=s).train))[1] for s in (3, 3, 4)]
    assert torch.equal(first[0], first[1])
    assert not torch.equal(first[0], first[2])
    val_a, val_b = (next(iter(task.loaders(32, seed=s).val))[0] for s in (3, 4))
    assert torch.equal(val_a, val_b)  # evaluation order does not depend on the seed


def test_move_batch_handles_dict_inputs() -> None:
    inputs, _ = move_batch(({"a": torch.ones(2)}, torch.zeros(2)), "cpu")
    assert isinstance(inputs, dict) and inputs["a"].device.type == "cpu"


def test_unknown_task_and_bad_option_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="registered"):
        get_task("imagenet")
    with pytest.raises(ConfigError, match="colour"):
        get_task("digits", colour=1)
    with pytest.raises(ConfigError, match="already registered"):
        register_task("mnist", "x:y")


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_user_tasks.py").write_text(textwrap.dedent("""
        from hetmap.tasks.classification import digits_task

        def make(width=8):
            return digits_task(width=width)

        def not_a_task():
            return 42
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_user_tasks"
    sys.modules.pop("my_user_tasks", None)


def test_user_task_loads_from_an_import_path(user_module: str) -> None:
    task = load_task(f"{user_module}:make", width=4)
    assert task.build_model().fc.in_features == 16  # 4 * width
    assert get_task(f"{user_module}:make").name == "digits"
    register_task("my-digits", f"{user_module}:make")
    assert get_task("my-digits", width=4).build_model().fc.in_features == 16


def test_user_task_errors(user_module: str) -> None:
    with pytest.raises(ConfigError, match=r"package\.module:factory"):
        load_task("no_colon_here")
    with pytest.raises(ConfigError, match="cannot import"):
        load_task("no_such_module_xyz:make")
    with pytest.raises(ConfigError, match="no attribute"):
        load_task(f"{user_module}:missing")
    with pytest.raises(ConfigError, match="not a Task"):
        load_task(f"{user_module}:not_a_task")
