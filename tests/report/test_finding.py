"""hetmap.report.finding: the sentence on what the search found, and the text table."""

from __future__ import annotations

from hetmap.report.artifacts import Row, Summary
from hetmap.report.finding import finding, summary_text


def _row(name: str, kind: str, day: float | None, ratio: float, test: float = 99.0,
         energy: float | None = None) -> Row:
    return Row(name, kind, {"test_accuracy": test, "test_1d": day,
                            "test_1d_std": 0.5, "analog_mac_ratio": ratio,
                            "energy_j": energy})


ANCHORS = [_row("all-fp32", "anchor", 98.0, 0.0, test=98.0, energy=4e-6),
           _row("all-analog", "anchor", 90.0, 1.0, energy=1e-6)]


def test_the_best_mostly_analog_member_against_the_anchors() -> None:
    rows = [*ANCHORS, _row("front-0", "front", 97.5, 0.2),  # more accurate, but mostly digital
            _row("front-1", "front", 95.0, 0.8, energy=2e-6),
            _row("front-2", "front", 93.0, 0.9)]
    text = finding(Summary(rows))
    assert text.startswith("The search found front-1, with 80% of its MACs in analog")
    assert "95.00 ± 0.50 %" in text and "5.0 points above all-analog (90.00 ± 0.50 %)" in text
    assert "3.0 points below all-fp32 (98.00 %)" in text and "2.00x less energy" in text


def test_more_energy_is_said_as_more() -> None:
    rows = [*ANCHORS, _row("front-0", "front", 95.0, 0.8, energy=8e-6)]
    assert "2.00x more energy per inference than all-fp32" in finding(Summary(rows))


def test_it_says_so_when_the_search_found_nothing_better() -> None:
    rows = [*ANCHORS, _row("front-0", "front", 89.0, 0.9)]
    assert finding(Summary(rows)).startswith("The search found nothing better than all-analog")
    rows = [*ANCHORS, _row("front-0", "front", 97.0, 0.3)]
    assert "no mapping with at least 50%" in finding(Summary(rows))
    assert "nothing to compare" in finding(Summary([_row("front-0", "front", None, 0.9)]))


def test_the_text_table_is_aligned_with_anchors_first() -> None:
    rows = [_row("front-0", "front", 95.0, 0.8), *ANCHORS]
    lines = summary_text(Summary(rows)).splitlines()
    assert lines[0].startswith("mapping") and set(lines[1]) <= {"-", " "}
    assert [line.split()[0] for line in lines[2:]] == ["all-fp32", "all-analog", "front-0"]
    assert "95.00 ± 0.50 %" in lines[4]
    assert "validation" not in lines[0]  # a column nobody measured is left out
