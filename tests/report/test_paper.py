"""hetmap.report.paper: the published figures and the reading of a table against them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hetmap.report.comparison import Spread, TileFit
from hetmap.report.paper import ACCURACY, METHODS, agreement, discussion, paper_metric
from hetmap.report.results import MethodFigures


def _summary(**columns: dict[str, float]) -> list[MethodFigures]:
    methods = dict.fromkeys(m for col in columns.values() for m in col)
    return [MethodFigures(m, 3, **{key: Spread(col[m], 0.1) if m in col else None
                                   for key, col in columns.items()}) for m in methods]


def test_published_rows_match_the_reference() -> None:
    assert all(len(row) == len(METHODS) for row in ACCURACY.values())
    assert paper_metric("ResNet20 / CIFAR-10")["mpaas"] == 94.2
    assert "lionheart" not in paper_metric("MobileBERT / SQuAD")  # not published there
    with pytest.raises(KeyError, match="choose from"):
        paper_metric("ResNet99 / nowhere")


def test_agreement_counts_pairs_ordered_as_the_paper() -> None:
    s = _summary(test_1d={"mps": 90.0, "lionheart": 85.0, "all-analog": 88.0, "random": 1.0})
    agree, total, wrong = agreement(s, "test_1d", paper_metric("ResNet20 / CIFAR-10"))
    # paper: mps 90.8 > lionheart 84.25, all-analog 83.6 < lionheart: one pair flips; random
    # has no published figure
    assert (agree, total) == (2, 3) and wrong == ["all-analog vs lionheart"]


def test_discussion_states_each_column_from_the_numbers() -> None:
    s = _summary(test_1d={"all-fp32": 97.0, "all-analog": 90.0, "mps": 95.0, "lionheart": 93.0},
                 analog_mac_ratio={"mps": 0.8, "mpaas": 0.75},
                 tile_utilisation={"mps": 0.1, "mpaas": 0.2},
                 paper_latency_s={"all-fp32": 2e-3, "all-analog": 5e-4, "mps": 1e-3},
                 paper_energy_j={"all-fp32": 3e-4, "mps": 1e-4},
                 wall_s={"mps": 10.0, "lionheart": 50.0, "odimo": 20.0},
                 compute_passes={"mps": 1e5, "lionheart": 4e5}, hv_test={"mps": 0.5,
                                                                           "lionheart": 0.4})
    text = discussion(s, "accuracy", "ResNet20 / CIFAR-10")
    assert "6 of 6 method pairs ordered as in the paper" in text
    assert "MPS over all-analog: +5.00 points here, +7.20 in the paper" in text
    assert "80% / 75% here, 88% / 73% in the paper" in text
    assert "10.0% -> 20.0% here, 9.2% -> 15.0% in the paper" in text
    assert "all-FP32 / MPS = 2.00x here, 2.19x on the paper's ResNet-20" in text
    assert "all-FP32 / MPS = 3.00x here, 2.85x" in text
    assert "LionHeart / MPS = 5.00x in wall time and 4.00x in sample-passes here, 3.81x" in text
    assert "hypervolume** (not in the paper): mps > lionheart" in text
    # another model: orderings against its row, cost figures held out
    other = discussion(s, "accuracy", "MobileNetV2 / CIFAR-10")
    assert "MobileNetV2 / CIFAR-10" in other and "held out" in other
    assert "no closer published model" in discussion(s, "accuracy", None)
    assert "No all-analog row" not in text  # it has one


def test_discussion_says_why_a_case_has_no_all_analog_row() -> None:
    s = _summary(test_1d={"all-fp32": 97.0, "mps": 95.0})
    fit = TileFit(tiles=194, chip_tiles=64, tile="256x256", fits=False)
    text = discussion(s, "accuracy", "MobileNetV2 / CIFAR-10", fit)
    assert ("No all-analog row: the all-analog mapping needs 194 tiles of 256x256 and the "
            "chip has 64") in text
    assert "MPS over all-analog: n/a" in text
    # it would have fitted: the row is missing for another reason, and no tile claim is made
    assert "needs" not in discussion(s, "accuracy", None, replace(fit, fits=True))
