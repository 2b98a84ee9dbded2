"""The list schedule on hand-computed graphs: two branches on two cores overlap, one queue
serialises, streaming producers let consumers start early."""

import numpy as np
import pytest

from hetmap.hardware.schedule import list_schedule

# A -> (B, C) -> D: a two-branch graph
DEPS = [(), (0,), (0,), (1, 2)]
DUR = [2.0, 3.0, 4.0, 1.0]
NO_STREAM = [False] * 4
ZERO = [0.0] * 4


def test_two_branches_on_two_cores_overlap():
    # A, C on the digital queue 0; B on analog tiles (no queue); D on the vector queue 1
    s = list_schedule(DEPS, DUR, [0, -1, 0, 1], NO_STREAM, ZERO, 1, 2)
    # A 0-2; B 2-5 beside C 2-6; D waits for both: 6-7
    assert s.latency_s[0] == pytest.approx(7.0)
    assert s.busy_s[0].tolist() == pytest.approx([6.0, 1.0])


def test_one_queue_serialises_the_branches():
    s = list_schedule(DEPS, DUR, [0, 0, 0, 0], NO_STREAM, ZERO, 1, 1)
    assert s.latency_s[0] == pytest.approx(10.0)  # the plain sum


def test_per_mapping_queues_in_one_batch():
    queue_b = np.array([-1, 0])  # mapping 0: B analog; mapping 1: B digital
    s = list_schedule(DEPS, DUR, [0, queue_b, 0, 1], NO_STREAM, ZERO, 2, 2)
    # mapping 1: A 0-2, B 2-5, C 5-9 (queue busy), D 9-10
    assert s.latency_s.tolist() == pytest.approx([7.0, 10.0])


def test_streaming_chain_pipelines():
    # analog a (4 s, first row after 1 s) feeds analog b (2 s, a row takes 0.5 s)
    deps, dur, fill = [(), (0,)], [4.0, 2.0], [1.0, 0.5]
    on = list_schedule(deps, dur, [-1, -1], [True, True], fill, 1, 1, pipeline=True)
    # b starts at 1 s, cannot end before a's end + one of its rows: max(1 + 2, 4 + 0.5)
    assert on.latency_s[0] == pytest.approx(4.5)
    off = list_schedule(deps, dur, [-1, -1], [True, True], fill, 1, 1, pipeline=False)
    assert off.latency_s[0] == pytest.approx(6.0)
    # a digital consumer (not streaming) waits for the whole producer
    mixed = list_schedule(deps, dur, [-1, 0], [True, False], fill, 1, 1, pipeline=True)
    assert mixed.latency_s[0] == pytest.approx(6.0)
