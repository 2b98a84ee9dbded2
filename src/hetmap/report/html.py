"""HTML pieces of the report: one self-contained page (inline CSS, PNGs as data URIs, no
script, no network), readable offline and printable."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from html import escape
from pathlib import Path

from hetmap.mapping import is_width_choice
from hetmap.report.artifacts import ESTIMATE, Cost, Layer, Row, Summary
from hetmap.report.plots import CANDIDATE_COLOURS, EXTRA_COLOURS

CSS = """
:root { --ink:#1d2433; --muted:#5f6b7a; --line:#e3e7ec; --accent:#1f4e79; --bg:#f6f8fa; }
* { box-sizing:border-box; }
body { margin:0; font:14px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
       sans-serif; color:var(--ink); background:var(--bg); }
header { background:var(--accent); color:#fff; padding:28px 48px 22px; }
header h1 { margin:0 0 4px; font-size:24px; font-weight:600; letter-spacing:.2px; }
header p { margin:0; opacity:.85; }
dl.meta { display:flex; flex-wrap:wrap; gap:6px 28px; margin:16px 0 0; font-size:13px; }
dl.meta div { display:flex; gap:6px; } dl.meta dt { opacity:.7; } dl.meta dd { margin:0; }
nav { padding:10px 48px; background:#fff; border-bottom:1px solid var(--line);
      font-size:13px; position:sticky; top:0; }
nav a { color:var(--accent); text-decoration:none; margin-right:22px; font-weight:500; }
main { max-width:1320px; margin:0 auto; padding:8px 48px 48px; }
section { background:#fff; border:1px solid var(--line); border-radius:8px;
          padding:20px 26px; margin:22px 0; }
section h2 { margin:0 0 4px; font-size:18px; font-weight:600; }
p.intro { margin:0 0 14px; color:var(--muted); max-width:900px; }
p.note { margin:8px 0; padding:10px 14px; background:#fff8e6; border-left:3px solid #e0a500;
         color:#6b5000; }
figure { margin:12px 0 4px; } figure img { max-width:100%; height:auto; display:block; }
figcaption { color:var(--muted); font-size:12px; margin-top:4px; }
table { border-collapse:collapse; width:100%; font-size:13px;
        font-variant-numeric:tabular-nums; }
th, td { padding:7px 10px; border-bottom:1px solid var(--line); text-align:right;
         white-space:nowrap; }
th { background:#f0f3f6; color:#394150; font-weight:600; position:sticky; top:0; }
th:first-child, td:first-child, td.text { text-align:left; }
tr.anchor td { background:#fafbfc; color:#394150; }
tr.anchor td:first-child { font-style:italic; }
td.best { font-weight:700; color:var(--accent); }
span.kind { display:inline-block; font-size:11px; padding:1px 7px; border-radius:9px;
            background:#e8eef5; color:var(--accent); margin-left:6px; font-style:normal; }
span.kind.front { background:#e7f4ea; color:#2f7a3f; }
td.cand { text-align:center; color:#fff; font-size:12px; font-weight:600; }
details { margin-top:12px; } summary { cursor:pointer; color:var(--accent); font-weight:500; }
.scroll { overflow-x:auto; max-height:560px; overflow-y:auto; border:1px solid var(--line);
          border-radius:6px; margin-top:8px; }
footer { color:var(--muted); font-size:12px; text-align:center; padding:0 0 30px; }
"""

# (key, header, formatter, better): better is "max", "min" or None (not highlighted)
Column = tuple[str, str, str, str | None]
COLUMNS: tuple[Column, ...] = (
    ("val_accuracy", "validation {metric} (selection)", "pct", None),
    ("test_accuracy", "test {metric}", "pct", "max"),
    ("test_1d", "test {metric} after 1 day (aihwkit)", "pm", "max"),
    ("analog_mac_ratio", "analog MACs (of mappable layers)", "ratio", "max"),
    ("analog_mac_ratio_total", "analog MACs (of all MACs)", "ratio", None),
    ("digital_weight_bytes", "digital memory", "bytes", "min"),
    ("analog_tiles", "analog tiles", "int", "min"),
    ("latency_s", "latency", "seconds", "min"),
    ("energy_j", "energy", "joules", "min"),
)


def _si(value: float, unit: str, prefixes: Sequence[tuple[float, str]]) -> str:
    for scale, prefix in prefixes:
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    scale, prefix = prefixes[-1]
    return f"{value / scale:.3g} {prefix}{unit}"


def fmt(value: float | None, kind: str, std: float | None = None) -> str:
    """A table cell; '–' for a value that was not measured."""
    if value is None:
        return "–"
    if kind == "pct":
        return f"{value:.2f} %"
    if kind == "pm":
        return f"{value:.2f} ± {std:.2f} %" if std is not None else f"{value:.2f} %"
    if kind == "ratio":
        return f"{value * 100:.1f} %"
    if kind == "int":
        return f"{value:.0f}"
    if kind == "bytes":
        return _si(value, "B", ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1, "")))
    if kind == "seconds":
        return _si(value, "s", ((1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n")))
    if kind == "joules":
        return _si(value, "J", ((1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p")))
    return f"{value:g}"


def image(path: Path, alt: str, caption: str = "") -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{escape(alt)}">'
            f"{cap}</figure>")


def note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def section(anchor: str, title: str, intro: str, body: str) -> str:
    return (f'<section id="{anchor}"><h2>{escape(title)}</h2>'
            f'<p class="intro">{escape(intro)}</p>{body}</section>')


def _best(rows: Sequence[Row], key: str, better: str | None) -> float | None:
    values = [r.scores.get(key) for r in rows if r.scores.get(key) is not None]
    if not values or better is None or len(values) < 2:
        return None
    return max(values) if better == "max" else min(values)  # type: ignore[type-var]


def summary_columns(summary: Summary) -> tuple[Column, ...]:
    """COLUMNS, with one column per drift-aware objective the search ranked by after the
    validation accuracy: hetmap's estimate, labelled as such (the 1-day column is
    aihwkit's measurement on test)."""
    estimates = tuple((ESTIMATE + name, f"validation {name} (hetmap estimate)", "pct", None)
                      for name in summary.estimates)
    return COLUMNS[:1] + estimates + COLUMNS[1:]


def anchors_first(summary: Summary) -> list[Row]:
    return sorted(summary.rows, key=lambda r: r.kind != "anchor")


def cell(row: Row, key: str, kind: str) -> str:
    """One summary cell as text (the 1-day column with its spread over draws)."""
    std = row.scores.get("test_1d_std") if kind == "pm" else None
    return fmt(row.scores.get(key), kind, std)


def summary_table(summary: Summary) -> str:
    """Anchors first, then the chosen front mappings; the best value of each column bold."""
    rows = anchors_first(summary)
    columns = summary_columns(summary)
    head = "".join(f"<th>{escape(h.format(metric=summary.metric))}</th>"
                   for _, h, _, _ in columns)
    out = [f'<table class="summary"><thead><tr><th>mapping</th>{head}</tr></thead><tbody>']
    best = {key: _best(rows, key, better) for key, _, _, better in columns}
    for r in rows:
        cells = []
        for key, _, kind, _ in columns:
            value = r.scores.get(key)
            cls = ' class="best"' if value is not None and value == best[key] else ""
            cells.append(f"<td{cls}>{escape(cell(r, key, kind))}</td>")
        tag = f'<span class="kind {r.kind}">{r.kind}</span>'
        out.append(f'<tr class="{r.kind}"><td>{escape(r.name)}{tag}</td>{"".join(cells)}</tr>')
    out.append("</tbody></table>")
    return "".join(out)


def _text_colour(colour: str) -> str:
    light = colour in (CANDIDATE_COLOURS["skip"], CANDIDATE_COLOURS["int4"])
    return "#1d2433" if light else "#fff"


def layer_table(rows: Sequence[Row], layers: Sequence[Layer]) -> str:
    """Layers x mappings, each cell the candidate on its colour; then the width choices of an
    adapted model (narrow: original width, wide: adapted), if the mappings have any."""
    total = sum(la.macs for la in layers) or 1.0
    head = "".join(f"<th>{escape(r.name)}</th>" for r in rows)
    out = [f'<div class="scroll"><table class="layers"><thead><tr><th>layer</th><th>MACs</th>'
           f"<th>share</th>{head}</tr></thead><tbody>"]
    extra: list[str] = []

    def cells(name: str) -> str:
        out = []
        for r in rows:
            cand = (r.mapping or {}).get(name, "fixed")
            if cand not in CANDIDATE_COLOURS and cand not in extra:
                extra.append(cand)
            colour = CANDIDATE_COLOURS.get(cand) or EXTRA_COLOURS[extra.index(cand) % 6]
            out.append(f'<td class="cand" style="background:{colour};'
                       f'color:{_text_colour(colour)}">{escape(cand)}</td>')
        return "".join(out)

    for la in layers:
        out.append(f'<tr><td class="text">{escape(la.name)}</td><td>{la.macs:,.0f}</td>'
                   f'<td>{la.macs / total * 100:.1f} %</td>{cells(la.name)}</tr>')
    widths = dict.fromkeys(n for r in rows for n in (r.mapping or {}) if is_width_choice(n))
    for name in widths:
        out.append(f'<tr><td class="text">{escape(name)}</td><td>-</td><td>-</td>'
                   f"{cells(name)}</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def cost_table(costs: Sequence[Cost]) -> str:
    cores = list(dict.fromkeys(k for c in costs for k in c.cores))
    head = "".join(f"<th>{escape(k)} latency</th><th>{escape(k)} energy</th>" for k in cores)
    out = [f"<table><thead><tr><th>mapping</th><th>latency</th><th>energy</th>"
           f"<th>tiles used / budget</th>{head}</tr></thead><tbody>"]
    for c in costs:
        tiles = "–" if c.analog_tiles is None else (
            f"{c.analog_tiles:.0f}" + ("" if c.tile_budget is None else f" / {c.tile_budget:.0f}"))
        per_core = "".join(
            f"<td>{fmt(c.cores.get(k, {}).get('latency_s'), 'seconds')}</td>"
            f"<td>{fmt(c.cores.get(k, {}).get('energy_j'), 'joules')}</td>" for k in cores)
        out.append(f"<tr><td>{escape(c.name)}</td><td>{fmt(c.latency_s, 'seconds')}</td>"
                   f"<td>{fmt(c.energy_j, 'joules')}</td><td>{tiles}</td>{per_core}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def page(title: str, subtitle: str, meta: Sequence[tuple[str, str]],
         sections: Sequence[tuple[str, str, str]], footer: str) -> str:
    """sections: (anchor, nav label, html)."""
    dl = "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>" for k, v in meta)
    nav = "".join(f'<a href="#{a}">{escape(label)}</a>' for a, label, _ in sections)
    body = "".join(html for _, _, html in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>{escape(title)}</h1><p>{escape(subtitle)}</p>"
            f'<dl class="meta">{dl}</dl></header><nav>{nav}</nav><main>{body}</main>'
            f"<footer>{escape(footer)}</footer></body></html>\n")
