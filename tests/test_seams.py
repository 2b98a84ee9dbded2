"""Public seams between packages: an Evaluator moved onto other weights (`Evaluator.on`),
a search problem scored through it, and a supernet's full choices."""

from __future__ import annotations

import copy

import torch
from tests.evaluation.helpers import digits_supernet, digits_task

from hetmap import Mapping
from hetmap.evaluation import Evaluator
from hetmap.search import Budget
from hetmap.search.problem import SearchProblem


def test_evaluator_on_another_supernet_keeps_every_setting() -> None:
    sn, task = digits_supernet(), digits_task()
    ev = Evaluator(sn, task, objectives=("accuracy", "analog_mac_ratio"), bn_batches=1,
                   val_batches=1, batch_size=32, seed=3, draws=2,
                   accuracy_range=(10.0, 90.0))
    other = copy.deepcopy(sn)
    moved = ev.on(other)
    assert moved.supernet is other and moved.task is task and moved.pcm is ev.pcm
    for name in ("names", "bn_batches", "split", "val_batches", "batch_size", "device",
                 "seed", "draws", "accuracy_range", "cost_table"):
        assert getattr(moved, name) == getattr(ev, name), name
    test = ev.on(other, split="test", val_batches=None)  # the final scoring's Evaluator
    assert (test.split, test.val_batches, test.seed, test.draws) == ("test", None, 3, 2)
    assert moved.val_batches == 1  # unset: kept
    fp32 = Mapping.uniform(sn, "fp32")
    ev.scores([fp32])
    assert fp32 in ev.cache and not moved.cache  # its own caches
    with torch.no_grad():
        for p in other.parameters():
            p.neg_()  # other weights, same problem
    problem = SearchProblem(sn, ev, Budget(evaluations=4))
    done = ev.evaluations
    problem.evaluate(problem.encode([fp32]), evaluator=moved)
    assert problem.evaluations == 1 and problem.evaluator is ev and ev.evaluations == done
    assert problem.archive[fp32]["accuracy"] == moved.cache[fp32]


def test_full_choices_fill_the_layers_a_mapping_leaves_out() -> None:
    sn = digits_supernet()
    first = sn.layer_names[0]
    full = sn.full_choices(Mapping({first: "int8"}, sn.fingerprint))
    assert full[first] == "int8" and set(full) == set(sn.all_layer_names)
    assert all(full[n] == sn.candidates(n)[0] for n in sn.all_layer_names if n != first)
