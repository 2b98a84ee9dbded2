"""The official SQuAD v1.1 evaluation (evaluate-v1.1.py), reproduced exactly: answers are
normalised (lowercase, punctuation and the articles a/an/the removed, whitespace collapsed),
EM and token-level F1 take the maximum over the ground truths, and unanswered questions
score 0. Results are in percent."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

_PUNCT = set(string.punctuation)


def normalize_answer(s: str) -> str:
    s = "".join(ch for ch in s.lower() if ch not in _PUNCT)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1_score(prediction: str, ground_truth: str) -> float:
    pred = normalize_answer(prediction).split()
    truth = normalize_answer(ground_truth).split()
    num_same = sum((Counter(pred) & Counter(truth)).values())
    if num_same == 0:
        return 0.0
    precision, recall = num_same / len(pred), num_same / len(truth)
    return 2 * precision * recall / (precision + recall)


def exact_match_score(prediction: str, ground_truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))


def metric_max_over_ground_truths(metric: Callable[[str, str], float], prediction: str,
                                  ground_truths: Sequence[str]) -> float:
    return max(metric(prediction, gt) for gt in ground_truths)


def score_predictions(questions: Iterable[tuple[str, Sequence[str]]],
                      predictions: Mapping[str, str]) -> dict[str, float]:
    """EM and F1 (percent) over (question id, ground-truth texts) pairs."""
    em = f1 = 0.0
    total = 0
    for qid, truths in questions:
        total += 1
        if qid not in predictions:
            continue
        em += metric_max_over_ground_truths(exact_match_score, predictions[qid], truths)
        f1 += metric_max_over_ground_truths(f1_score, predictions[qid], truths)
    return {"exact_match": 100.0 * em / max(total, 1), "f1": 100.0 * f1 / max(total, 1)}


def evaluate(dataset: Sequence[Mapping[str, Any]], predictions: Mapping[str, str]) -> dict[str,
                                                                                         float]:
    """As the official script: `dataset` is the "data" list of a SQuAD v1.1 JSON file."""
    questions = ((qa["id"], [a["text"] for a in qa["answers"]])
                 for article in dataset for paragraph in article["paragraphs"]
                 for qa in paragraph["qas"])
    return score_predictions(questions, predictions)
