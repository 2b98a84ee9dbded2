"""What a run found, in words and as a plain-text table: the sentence that says what the
search found that the anchors did not, and the summary table the CLI prints."""

from __future__ import annotations

from collections.abc import Sequence

from hetmap.report.artifacts import Row, Summary
from hetmap.report.html import COLUMNS, anchors_first, cell, fmt

DAY = "test_1d"
MOSTLY_ANALOG = 0.5  # a front member "runs mostly in analog" from this share of MACs


def _day(r: Row) -> float | None:
    return r.scores.get(DAY)


def _pm(r: Row) -> str:
    return fmt(_day(r), "pm", r.scores.get("test_1d_std"))


def _anchor(rows: Sequence[Row], name: str) -> Row | None:
    return next((r for r in rows if r.kind == "anchor" and r.name == name), None)


def finding(summary: Summary) -> str:
    """One sentence: the front member with the best 1-day test metric among those running
    at least half their MACs in analog, against the all-analog and all-fp32 anchors; said
    plainly when the search found nothing better than all-analog."""
    metric = summary.metric
    front = [r for r in summary.rows if r.kind == "front" and _day(r) is not None
             and r.scores.get("analog_mac_ratio") is not None]
    analog, fp32 = _anchor(summary.rows, "all-analog"), _anchor(summary.rows, "all-fp32")
    if not front or analog is None or _day(analog) is None:
        return ("No 1-day figures for both the front and the all-analog anchor: "
                "nothing to compare.")
    mostly = [r for r in front if (r.scores["analog_mac_ratio"] or 0) >= MOSTLY_ANALOG]
    if not mostly:
        share = max(r.scores["analog_mac_ratio"] or 0 for r in front)
        return (f"The front holds no mapping with at least {MOSTLY_ANALOG:.0%} of its MACs in "
                f"analog (at most {share:.0%}); all-analog scores {_pm(analog)} test "
                f"{metric} one day after programming.")
    best = max(mostly, key=lambda r: (_day(r), r.scores["analog_mac_ratio"]))
    gain = _day(best) - _day(analog)
    share = f"{best.scores['analog_mac_ratio']:.0%} of its MACs in analog"
    if gain <= 0:
        return (f"The search found nothing better than all-analog one day after "
                f"programming: its best mostly-analog mapping, {best.name} ({share}), scores "
                f"{_pm(best)} test {metric} against all-analog's {_pm(analog)}.")
    tail = ""
    if fp32 is not None and fp32.scores.get("test_accuracy") is not None:
        gap = fp32.scores["test_accuracy"] - _day(best)
        tail = (f" and {abs(gap):.1f} points {'below' if gap > 0 else 'above'} all-fp32 "
                f"({fmt(fp32.scores['test_accuracy'], 'pct')})")
        e_best, e_fp32 = best.scores.get("energy_j"), fp32.scores.get("energy_j")
        if e_best and e_fp32:
            ratio = e_fp32 / e_best
            tail += (f", at {ratio:.2f}x less energy per inference than all-fp32" if ratio >= 1
                     else f", at {1 / ratio:.2f}x more energy per inference than all-fp32")
    return (f"The search found {best.name}, with {share}, at {_pm(best)} test {metric} one "
            f"day after programming: {gain:.1f} points above all-analog ({_pm(analog)})"
            f"{tail}.")


def summary_text(summary: Summary) -> str:
    """The summary table as aligned plain text (anchors first), for a terminal."""
    rows = anchors_first(summary)
    cols = [(key, head.format(metric=summary.metric), kind) for key, head, kind, _ in COLUMNS
            if any(r.scores.get(key) is not None for r in rows)]
    table = [["mapping", *(head for _, head, _ in cols)]]
    table += [[r.name, *(cell(r, key, kind) for key, _, kind in cols)] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip()
             for line in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
