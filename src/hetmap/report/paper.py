"""The paper's published figures (../shared/REFERENCE.md, the authors' raw data) and the
per-column reading of a results table against them, for `hetmap reproduce`.

A summary is one `MethodFigures` per method (`hetmap.report.results.summarise`). Every
sentence here is computed from the summary and the figures below; nothing is typed in by
hand after a run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hetmap.report.comparison import TileFit
from hetmap.report.results import MethodFigures

METHODS = ("all-fp32", "all-analog", "harmonica", "odimo", "lionheart", "mps", "mpaas")
# task metric per model (CIFAR-10 top-1 %, COCO mIoU %, SQuAD score %), in METHODS order
ACCURACY: dict[str, tuple[float | None, ...]] = {
    "ResNet8 / CIFAR-10": (88.65, 85.1, 87.41, 86.5, 87.85, 88.5, 90.1),
    "ResNet20 / CIFAR-10": (92.0, 83.6, 87.23, 84.3, 84.25, 90.8, 94.2),
    "MobileNetV2 / CIFAR-10": (90.1, 87.0, 86.0, 88.1, 85.6, 89.5, 92.5),
    "ResNet18 / COCO": (50.3, 45.1, 45.3, 46.8, 45.7, 50.8, 52.1),
    "MobileBERT / SQuAD": (91.3, 89.5, None, None, None, 90.8, 92.1),
}
# analog MAC ratio (MPS, MPAAS) and tile utilisation (MPS, MPAAS), where published
MAC_RATIO = {"ResNet8 / CIFAR-10": (0.70, 0.72), "ResNet20 / CIFAR-10": (0.88, 0.73),
             "MobileNetV2 / CIFAR-10": (0.83, 0.74), "MobileBERT / SQuAD": (0.59, 0.61)}
UTILISATION = {"ResNet8 / CIFAR-10": (0.035, 0.281), "ResNet20 / CIFAR-10": (0.092, 0.150),
               "MobileBERT / SQuAD": (0.62, 0.67)}  # (the BERT figures are BERT-base's)
# ResNet-20 latency (ms) and energy (µJ) per sample; the other rows are held out
LATENCY = {"all-fp32": 2.30, "all-analog": 0.95, "mps": 1.05, "mpaas": 1.15}
ENERGY = {"all-fp32": 232.8, "all-analog": 76.2, "mps": 81.6, "mpaas": 89.7}
SEARCH_TIME = {"odimo": 3.8, "lionheart": 6.1, "mpaas": 2.0, "mps": 1.6}  # units not stated

Summary = Sequence[MethodFigures]


def paper_metric(row: str) -> dict[str, float]:
    """The paper's task metric per method for one model row (methods it lacks left out)."""
    if row not in ACCURACY:
        raise KeyError(f"no published row {row!r}; choose from {', '.join(ACCURACY)}")
    return {m: v for m, v in zip(METHODS, ACCURACY[row], strict=True) if v is not None}


def _means(summary: Summary, key: str) -> dict[str, float]:
    return {s.method: v for s in summary if (v := s.mean(key)) is not None}


def agreement(summary: Summary, key: str, paper: Mapping[str, float]
              ) -> tuple[int, int, list[str]]:
    """Pairs of methods that `key` orders as `paper` does, out of the pairs both have (ties
    in the paper skipped); and the disagreeing pairs as 'a vs b'."""
    ours = _means(summary, key)
    names = sorted(set(ours) & set(paper))
    agree, total, wrong = 0, 0, []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if paper[a] == paper[b]:
                continue
            total += 1
            if (ours[a] - ours[b]) * (paper[a] - paper[b]) > 0:
                agree += 1
            else:
                wrong.append(f"{a} vs {b}")
    return agree, total, wrong


def _order(values: Mapping[str, float]) -> str:
    """Methods from the highest value down."""
    return " > ".join(m for m, _ in sorted(values.items(), key=lambda kv: -kv[1])) or "-"


def _pairs(summary: Summary, key: str, paper: Mapping[str, float], what: str) -> str:
    """'A of T <what>' and the pairs that disagree."""
    agree, total, wrong = agreement(summary, key, paper)
    return f"{agree} of {total} {what}" + (f" (not: {', '.join(wrong)})" if wrong else "")


def _pct(values: Mapping[str, float], method: str, digits: int = 0) -> str:
    return f"{values[method]:.{digits}%}" if method in values else "-"


def _ratio(values: Mapping[str, float], num: str, den: str) -> str:
    if num in values and den in values and values[den] > 0:
        return f"{values[num] / values[den]:.2f}x"
    return "n/a"


def _no_all_analog(ours: Mapping[str, float], fit: TileFit | None) -> str:
    """Why the table has no all-analog row, when it has none."""
    if "all-analog" in ours:
        return ""
    if fit is None or fit.fits:
        return " No all-analog row."
    return (f" No all-analog row: the all-analog mapping needs {fit.tiles} tiles of "
            f"{fit.tile} and the chip has {fit.chip_tiles}, so it is not deployable "
            "and every front stops short of it; MPS over all-analog is therefore n/a, and "
            "Harmonica's hybrids, which keep every layer on the tiles, do not fit either "
            "(its reported member is its all-digital end).")


def discussion(summary: Summary, metric: str, row: str | None,
               all_analog: TileFit | None = None) -> str:
    """Markdown bullets, one per column group, reading `summary` against the paper's `row`
    (the published model closest to the case; None: the ResNet-20 row for orderings);
    `all_analog`: the all-analog mapping's tiles against the chip's (compare's
    all_analog_fit), which says why a case has no all-analog row."""
    ref = row if row in ACCURACY else "ResNet20 / CIFAR-10"
    lines = [f"Read against the paper's **{ref}** row"
             + ("" if row in ACCURACY else " (no closer published model)") + ":\n"]
    paper = paper_metric(ref)
    ours = _means(summary, "test_1d")
    gain = (f"{ours['mps'] - ours['all-analog']:+.2f}" if {"mps", "all-analog"} <= set(ours)
            else "n/a")
    lines.append(
        f"- **test {metric} at 1 day**: "
        + _pairs(summary, "test_1d", paper, "method pairs ordered as in the paper")
        + ". MPS over "
        f"all-analog: {gain} points here, {paper['mps'] - paper['all-analog']:+.2f} in the "
        f"paper. Here: {_order({m: v for m, v in ours.items() if m in paper})}; paper: "
        f"{_order(paper)}."
        + _no_all_analog(ours, all_analog))
    macs = _means(summary, "analog_mac_ratio")
    pub = MAC_RATIO.get(ref)
    lines.append(
        "- **analog MACs** of the reported MPS / MPAAS members: "
        f"{_pct(macs, 'mps')} / {_pct(macs, 'mpaas')} here"
        + (f", {pub[0]:.0%} / {pub[1]:.0%} in the paper" if pub else " (none published)")
        + ". (The reported member is the best at 1 day among front members with >= 70 % "
        "analog MACs, else the most analog member: a share under 70 % means some seeds' "
        "fronts held no member that analog.)")
    util = _means(summary, "tile_utilisation")
    pub = UTILISATION.get(ref)
    lines.append(
        "- **tile utilisation** MPS -> MPAAS: "
        f"{_pct(util, 'mps', 1)} -> {_pct(util, 'mpaas', 1)} here"
        + (f", {pub[0]:.1%} -> {pub[1]:.1%} in the paper" if pub else " (none published)")
        + ".")
    for key, name, published in (("paper_latency_s", "latency", LATENCY),
                                 ("paper_energy_j", "energy", ENERGY)):
        here = _means(summary, key)
        lines.append(
            f"- **{name} on mps-paper**: all-FP32 / MPS = {_ratio(here, 'all-fp32', 'mps')} "
            f"here, {_ratio(published, 'all-fp32', 'mps')} on the paper's ResNet-20; "
            + _pairs(summary, key, published, "pairs ordered as the paper's ResNet-20 row")
            + ("" if ref == "ResNet20 / CIFAR-10" else
               "; the paper's cost figures for models other than ResNet-20 are held out of "
               "the cost model's calibration and not used here") + ".")
    wall, passes = _means(summary, "wall_s"), _means(summary, "compute_passes")
    lines.append(
        f"- **search cost**: LionHeart / MPS = {_ratio(wall, 'lionheart', 'mps')} in wall "
        f"time and {_ratio(passes, 'lionheart', 'mps')} in sample-passes here, "
        f"{_ratio(SEARCH_TIME, 'lionheart', 'mps')} in the paper; ODiMo / MPS = "
        f"{_ratio(wall, 'odimo', 'mps')} here, {_ratio(SEARCH_TIME, 'odimo', 'mps')} in the "
        "paper; " + _pairs(summary, "wall_s", SEARCH_TIME,
                           "pairs ordered as the paper's search times")
        + ". (Wall time is each method's own search, without the shared stage 1-2 that MPS "
        "and random search start from; sample-passes include it.)")
    hv = _means(summary, "hv_test")
    lines.append(f"- **hypervolume** (not in the paper): {_order(hv)}.")
    return "\n".join(lines) + "\n"
