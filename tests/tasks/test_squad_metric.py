"""Hand-made cases against the official SQuAD v1.1 definitions."""

from __future__ import annotations

import pytest

from hetmap.tasks.squad_metric import evaluate, exact_match_score, f1_score, normalize_answer


@pytest.mark.parametrize(("raw", "norm"), [
    ("The Cat!", "cat"),
    ("  an   apple,  a pear. ", "apple pear"),
    ("Theatre of the Absurd", "theatre of absurd"),  # 'the' only as a whole word
    ("U.S.-based", "usbased"),
    ("A", ""),
])
def test_normalize_answer(raw: str, norm: str) -> None:
    assert normalize_answer(raw) == norm


def test_exact_match_ignores_case_articles_punctuation() -> None:
    assert exact_match_score("An apple.", "apple") == 1.0
    assert exact_match_score("apples", "apple") == 0.0


def test_f1_is_token_overlap() -> None:
    # prediction [cat, sat], truth [cat, sat, down]: P = 1, R = 2/3, F1 = 0.8
    assert f1_score("the cat sat", "cat sat down") == pytest.approx(0.8)
    assert f1_score("dog", "cat") == 0.0
    assert f1_score("", "cat") == 0.0
    # counts are clipped: [a a b] is normalised to [b] ('a' is an article)
    assert f1_score("x x y", "x y y") == pytest.approx(2 / 3)


def test_evaluate_takes_max_over_truths_and_zero_for_unanswered() -> None:
    data = [{"title": "t", "paragraphs": [{"context": "c", "qas": [
        {"id": "q1", "question": "?", "answers": [{"text": "Paris", "answer_start": 0},
                                                  {"text": "the city of Paris",
                                                   "answer_start": 0}]},
        {"id": "q2", "question": "?", "answers": [{"text": "blue sky", "answer_start": 0}]},
        {"id": "q3", "question": "?", "answers": [{"text": "x", "answer_start": 0}]},
    ]}]}]
    preds = {"q1": "city of Paris", "q2": "sky"}  # q3 unanswered
    scores = evaluate(data, preds)
    # q1: EM 1 (second truth), F1 1; q2: EM 0, F1 2/3 (P 1, R 1/2); q3: 0
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)
