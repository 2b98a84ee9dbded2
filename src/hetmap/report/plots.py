"""The report's figures. Built on matplotlib's object API (Figure + Agg canvas, no pyplot),
so they render headless, leave no global state and can be drawn from any thread."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from hetmap.report.artifacts import Cost, DriftCurve, Layer, Row

CANDIDATE_COLOURS = {
    "fp32": "#1f4e79", "bf16": "#2e75b6", "fp16": "#5b9bd5", "int8": "#2f8f46",
    "int4": "#8cc56a", "analog": "#e07a1f", "skip": "#d0d0d0", "fixed": "#7f7f7f",
}
EXTRA_COLOURS = ["#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#d62728"]
ANALOG_CORE_COLOUR = "#e07a1f"
CORE_COLOURS = ["#1f4e79", "#2f8f46", "#9467bd", "#8c564b", "#17becf", "#bcbd22"]
ANCHOR_MARKERS = ["s", "D", "^", "v", "P", "X", "*"]
TIME_TICKS = ((1.0, "1 s"), (60.0, "1 min"), (3600.0, "1 h"), (86400.0, "1 d"),
              (604800.0, "1 w"), (2592000.0, "1 mo"), (31536000.0, "1 y"),
              (315360000.0, "10 y"))
DPI = 110


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _style(ax, title: str | None = None) -> None:  # type: ignore[no-untyped-def]
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(True, color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)
    if title:
        ax.set_title(title, loc="left", fontsize=11, fontweight="bold", color="#222")


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, facecolor="white")
    return path


def candidate_colour(name: str, seen: list[str]) -> str:
    if name in CANDIDATE_COLOURS:
        return CANDIDATE_COLOURS[name]
    if name not in seen:
        seen.append(name)
    return EXTRA_COLOURS[seen.index(name) % len(EXTRA_COLOURS)]


def _kb(value: float | None) -> float:
    return (value or 0.0) / 1e3


def pareto(front: Sequence[Row], anchors: Sequence[Row], evaluated: Sequence[dict],
           path: Path, metric: str = "accuracy", y_key: str = "accuracy") -> Path:
    """Score `y_key` against analog MAC share (and against energy when known); colour =
    digital memory; the front as a step line; anchors as labelled black markers;
    `evaluated` (every mapping the search scored) as grey dots."""
    xs = [("analog_mac_ratio", "analog MAC share (%)", 100.0, False)]
    if any(r.scores.get("energy_j") is not None for r in [*front, *anchors]):
        xs.append(("energy_j", "energy per inference (µJ)", 1e6, True))
    fig = _figure(6.2 * len(xs), 4.4)
    axes = fig.subplots(1, len(xs), squeeze=False)[0]
    sizes = [r.scores.get("digital_weight_bytes") for r in front] or \
        [r.scores.get("digital_weight_bytes") for r in anchors]
    known = [s for s in sizes if s is not None]
    norm = Normalize(min(known) / 1e3, max(known) / 1e3) if known else Normalize(0, 1)
    mappable = None
    for ax, (key, label, scale, log) in zip(axes, xs):
        _style(ax)
        pts = [(e[key] * scale, e[y_key]) for e in evaluated
               if e.get(key) is not None and e.get(y_key) is not None]
        if pts:
            ax.scatter(*zip(*pts), s=10, color="#c8c8c8", label="evaluated", zorder=1)
        members = [r for r in front if r.scores.get(key) is not None
                   and r.scores.get(y_key) is not None]
        if members:
            x = [(r.scores[key] or 0.0) * scale for r in members]
            y = [r.scores[y_key] or 0.0 for r in members]
            sx, sy = staircase(x, y, maximize_x=not log)
            ax.step(sx, sy, where="post" if log else "pre", color="#9aa3ad", linewidth=1, zorder=2)
            colours = [_kb(r.scores.get("digital_weight_bytes")) for r in members]
            mappable = ax.scatter(x, y, c=colours,
                                  cmap="viridis", norm=norm, s=46, edgecolors="white",
                                  linewidths=0.6, zorder=3, label="Pareto front")
        placed: list[tuple[float, float]] = []
        for i, r in enumerate(anchors):
            if r.scores.get(key) is None or r.scores.get(y_key) is None:
                continue
            x0, y0 = (r.scores[key] or 0.0) * scale, r.scores[y_key] or 0.0
            ax.scatter([x0], [y0], marker=ANCHOR_MARKERS[i % len(ANCHOR_MARKERS)], s=70,
                       color="black", zorder=4, label=r.name)
            clash = sum(1 for p in placed if _close(p, (x0, y0), log))
            placed.append((x0, y0))
            ax.annotate(r.name, (x0, y0), textcoords="offset points",
                        xytext=(7, 4 - 11 * clash), fontsize=8, color="#222")
        if log:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(label)
        ax.set_ylabel(f"{metric} (%)")
    axes[0].legend(loc="lower left", fontsize=8, frameon=False)
    if mappable is not None:
        fig.colorbar(mappable, ax=list(axes), label="digital weight memory (kB)", shrink=0.9)
    return _save(fig, path)


def staircase(x: Sequence[float], y: Sequence[float], maximize_x: bool) \
        -> tuple[list[float], list[float]]:
    """The 2-D non-dominated points (y maximised; x maximised or minimised), sorted by x,
    as the corners of a step line."""
    pts = sorted(zip(x, y), key=lambda p: (p[0], p[1]))
    if maximize_x:
        pts = pts[::-1]
    out: list[tuple[float, float]] = []
    for px, py in pts:  # walking from the best x: keep points that raise y
        if not out or py > out[-1][1]:
            out.append((px, py))
    out.sort()
    return [p[0] for p in out], [p[1] for p in out]


def _close(a: tuple[float, float], b: tuple[float, float], log: bool) -> bool:
    if log and a[0] > 0 and b[0] > 0:
        return abs(a[0] / b[0] - 1) < 0.15 and abs(a[1] - b[1]) < 0.15
    return abs(a[0] - b[0]) < 3 and abs(a[1] - b[1]) < 0.15


def mapping_chart(rows: Sequence[Row], layers: Sequence[Layer], path: Path) -> Path:
    """One bar per mapping; segments are layers in execution order, width ∝ MACs, colour =
    candidate ("fixed": a layer excluded from the search)."""
    total = sum(la.macs for la in layers) or 1.0
    fig = _figure(11.5, 0.9 + 0.48 * len(rows))
    ax = fig.subplots()
    _style(ax)
    ax.grid(False)
    seen: list[str] = []
    used: dict[str, str] = {}
    for i, row in enumerate(rows):
        left = 0.0
        for la in layers:
            cand = (row.mapping or {}).get(la.name, "fixed")
            colour = candidate_colour(cand, seen)
            used.setdefault(cand, colour)
            width = la.macs / total * 100
            ax.barh(i, width, left=left, height=0.72, color=colour, edgecolor="white",
                    linewidth=0.5)
            left += width
    ax.set_yticks(range(len(rows)), [r.name for r in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of MACs (%), layers in execution order")
    order = [c for c in CANDIDATE_COLOURS if c in used] + [c for c in used
                                                          if c not in CANDIDATE_COLOURS]
    ax.legend(handles=[Patch(color=used[c], label=c) for c in order], ncols=len(order),
              loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False, fontsize=9)
    return _save(fig, path)


def drift(curves: Sequence[DriftCurve], path: Path, metric: str = "accuracy") -> Path:
    """Metric after programming on a log time axis, mean ± std over programming draws."""
    fig = _figure(8.5, 4.4)
    ax = fig.subplots()
    _style(ax)
    lo = min(min(c.times) for c in curves)
    hi = max(max(c.times) for c in curves)
    for i, c in enumerate(curves):
        ax.errorbar(c.times, c.mean, yerr=c.std, marker=ANCHOR_MARKERS[i % 7], markersize=5,
                    capsize=3, linewidth=1.5, label=c.name)
    ax.set_xscale("log")
    ticks = [(t, lab) for t, lab in TIME_TICKS if lo / 1.5 <= t <= hi * 1.5]
    if ticks:
        ax.set_xticks([t for t, _ in ticks], [lab for _, lab in ticks])
        ax.minorticks_off()
    ax.set_xlim(lo / 2, hi * 2)
    ax.set_xlabel("time after programming")
    ax.set_ylabel(f"{metric} (%)")
    ax.legend(fontsize=8, frameon=False, loc="best")
    return _save(fig, path)


def core_colours(costs: Sequence[Cost]) -> dict[str, str]:
    cores = list(dict.fromkeys(k for c in costs for k in c.cores))
    cores += [la.core for c in costs for la in c.layers if la.core not in cores]
    digital = [c for c in dict.fromkeys(cores) if "analog" not in c.lower()]
    return {core: ANALOG_CORE_COLOUR if "analog" in core.lower()
            else CORE_COLOURS[digital.index(core) % len(CORE_COLOURS)]
            for core in dict.fromkeys(cores)}


def cost_layers(cost: Cost, path: Path, colours: dict[str, str] | None = None) -> Path:
    """Latency and energy of each layer, coloured by the core it runs on; the input transfer
    from another core is stacked on top (hatched)."""
    colours = colours or core_colours([cost])
    layers = [la for la in cost.layers if la.core != "none"] or cost.layers
    n = len(layers)
    fig = _figure(max(8.0, min(16.0, 2.5 + 0.32 * n)), 5.0)
    axes = fig.subplots(2, 1, sharex=True)
    x = range(n)
    for ax, key, scale, unit in ((axes[0], "latency", 1e6, "latency (µs)"),
                                 (axes[1], "energy", 1e6, "energy (µJ)")):
        _style(ax)
        own = [getattr(la, f"{key}_{'s' if key == 'latency' else 'j'}") * scale for la in layers]
        xfer = [getattr(la, f"transfer_{key}_{'s' if key == 'latency' else 'j'}") * scale
                for la in layers]
        col = [colours.get(la.core, "#999") for la in layers]
        ax.bar(x, own, color=col, width=0.8)
        ax.bar(x, xfer, bottom=own, color="white", edgecolor=col, hatch="////", width=0.8,
               linewidth=0.6)
        ax.set_ylim(0, max([o + t for o, t in zip(own, xfer)] + [1e-30]) * 1.08)
        ax.set_ylabel(unit)
    axes[1].set_xticks(list(x), [_short(la.name) for la in layers], rotation=60, ha="right",
                       fontsize=7 if n > 24 else 8)
    handles = [Patch(color=c, label=core) for core, c in colours.items()
               if any(la.core == core for la in layers)]
    handles.append(Patch(facecolor="white", edgecolor="#555", hatch="////",
                         label="transfer between cores"))
    axes[0].legend(handles=handles, ncols=len(handles), loc="lower left",
                   bbox_to_anchor=(0, 1.0), frameon=False, fontsize=9)
    axes[0].set_title(cost.name, loc="right", fontsize=10, color="#444")
    return _save(fig, path)


def cost_cores(costs: Sequence[Cost], path: Path) -> Path:
    """Latency and energy per core for each mapping (per-layer sums, transfers included)."""
    colours = core_colours(costs)
    fig = _figure(max(7.0, 2.0 + 1.1 * len(costs)) * 2 / 1.6, 4.2)
    axes = fig.subplots(1, 2)
    names = [c.name for c in costs]
    for ax, key, unit in ((axes[0], "latency_s", "latency (µs)"),
                          (axes[1], "energy_j", "energy (µJ)")):
        _style(ax)
        bottom = [0.0] * len(costs)
        for core, colour in colours.items():
            vals = [c.cores.get(core, {}).get(key, 0.0) * 1e6 for c in costs]
            ax.bar(names, vals, bottom=bottom, color=colour, label=core, width=0.65)
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax.set_ylim(0, max([*bottom, 1e-30]) * 1.08)
        ax.set_ylabel(unit)
        ax.tick_params(axis="x", rotation=30 if len(costs) > 3 else 0)
        for lab in ax.get_xticklabels():
            lab.set_horizontalalignment("right" if len(costs) > 3 else "center")
    axes[0].legend(frameon=False, fontsize=9, ncols=len(colours), loc="lower left",
                   bbox_to_anchor=(0, 1.0))
    return _save(fig, path)


def _short(name: str, width: int = 22) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1):]

