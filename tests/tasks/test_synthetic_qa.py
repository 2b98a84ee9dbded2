"""The synthetic QA task: valid SQuAD v1.1, answers are spans, reproducible by seed."""

from __future__ import annotations

import json

import pytest

from hetmap.errors import ConfigError
from hetmap.tasks.qa import read_squad
from hetmap.tasks.synthetic_qa import synthetic_squad, write_synthetic_squad


def test_every_answer_is_the_span_it_points_at_and_ids_are_unique(tmp_path) -> None:
    path = write_synthetic_squad(tmp_path / "syn.json", questions=57, seed=3)
    examples = read_squad(path)  # the squad reader accepts it
    assert len(examples) == 57 and len({e.id for e in examples}) == 57
    for e in examples:
        start = e.answer_starts[0]
        assert e.context[start:start + len(e.answers[0])] == e.answers[0]
        # the person asked about is in the paragraph, with distractor facts around
        assert e.question.split()[-1].rstrip("?") in e.context
        assert e.context.count(".") >= 2


def test_reproducible_by_seed_and_checked() -> None:
    a, b = synthetic_squad(40, seed=1), synthetic_squad(40, seed=1)
    assert json.dumps(a) == json.dumps(b) != json.dumps(synthetic_squad(40, seed=2))
    with pytest.raises(ConfigError, match="at least 10"):
        synthetic_squad(3)
    with pytest.raises(ConfigError, match="facts_per_paragraph"):
        synthetic_squad(40, facts_per_paragraph=0)
