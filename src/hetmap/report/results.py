"""The table `hetmap reproduce` writes: per case, method and seed the reported member's
figures (`ReportedRow`), per method their mean ± std over seeds (`MethodFigures`), and the
Markdown table. Values are in SI units (seconds, joules, bytes) under hetmap.evaluation's
quantity names; the table converts to ms, µJ and MB only when it formats a cell.

results.json schema 2 holds `ReportedRow.to_dict()` per row; schema 1 (before the quantity
names were unified) wrote digital_mb, tiles, latency_ms, energy_uj, paper_latency_ms and
paper_energy_uj: `ReportedRow.from_dict` converts those rows on reading.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from hetmap.mapping import Mapping
from hetmap.report.comparison import DAY, YEAR, Spread

SCHEMA_VERSION = 2
TIMES = (0.0, DAY, YEAR)  # the table's drift times, named test_0s, test_1d, test_1y
# schema 1's unit-scaled columns: name -> (schema 2 name, factor into SI)
_SCHEMA1 = {"digital_mb": ("digital_weight_bytes", 1e6), "tiles": ("analog_tiles", 1.0),
            "latency_ms": ("latency_s", 1e-3), "energy_uj": ("energy_j", 1e-6),
            "paper_latency_ms": ("paper_latency_s", 1e-3),
            "paper_energy_uj": ("paper_energy_j", 1e-6)}


@dataclass(frozen=True)
class ReportedRow:
    """The reported member of one method (an anchor: one uniform mapping) on one case and
    seed: its test metric before and after drift (mean and std over PCM programmings), its
    hardware figures on hermes-pcm and mps-paper (`paper_*`), and for a searching method its
    search's hypervolume, evaluations and compute."""

    case: str
    method: str
    seed: int
    mapping: Mapping
    test_accuracy: float
    test_0s: float | None
    test_0s_std: float | None
    test_1d: float | None
    test_1d_std: float | None
    test_1y: float | None
    test_1y_std: float | None
    analog_mac_ratio: float
    digital_weight_bytes: float
    analog_tiles: int
    fits: bool
    tile_utilisation: float
    latency_s: float
    energy_j: float
    paper_latency_s: float
    paper_energy_j: float
    hv_test: float | None = None
    hv_test_1y: float | None = None
    evaluations: int | None = None
    compute_passes: int | None = None
    wall_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mapping": self.mapping.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], version: int = SCHEMA_VERSION) -> ReportedRow:
        """A row of results.json (`version` 1 rows are converted to SI names)."""
        d = dict(d)
        if version == 1:
            for old, (new, factor) in _SCHEMA1.items():
                if old in d:
                    v = d.pop(old)
                    d[new] = None if v is None else v * factor
            d["analog_tiles"] = int(d["analog_tiles"])
            d = {k: v for k, v in d.items() if k in {f.name for f in fields(cls)}}
        return cls(**{**d, "mapping": Mapping.from_dict(d["mapping"])})


# (field, header, digits, factor into the header's unit); {m}: the task metric
COLUMNS = (("test_0s", "{m} 0 s", 2, 1.0), ("test_1d", "{m} 1 day", 2, 1.0),
           ("test_1y", "{m} 1 year", 2, 1.0), ("analog_mac_ratio", "analog MACs", 2, 1.0),
           ("digital_weight_bytes", "digital MB", 4, 1e-6), ("analog_tiles", "tiles", 1, 1.0),
           ("tile_utilisation", "tile utilisation", 2, 1.0),
           ("latency_s", "latency ms (hermes-pcm)", 4, 1e3),
           ("energy_j", "energy µJ (hermes-pcm)", 3, 1e6),
           ("paper_latency_s", "latency ms (mps-paper)", 4, 1e3),
           ("paper_energy_j", "energy µJ (mps-paper)", 3, 1e6), ("hv_test", "HV test", 4, 1.0),
           ("evaluations", "evaluations", 1, 1.0), ("compute_passes", "sample-passes", 0, 1.0),
           ("wall_s", "wall s", 0, 1.0))


@dataclass(frozen=True)
class MethodFigures:
    """One method on one case: mean ± std over seeds of each column (None: not measured,
    e.g. the search figures of an anchor), in SI units like `ReportedRow`."""

    method: str
    seeds: int
    test_0s: Spread | None = None
    test_1d: Spread | None = None
    test_1y: Spread | None = None
    analog_mac_ratio: Spread | None = None
    digital_weight_bytes: Spread | None = None
    analog_tiles: Spread | None = None
    tile_utilisation: Spread | None = None
    latency_s: Spread | None = None
    energy_j: Spread | None = None
    paper_latency_s: Spread | None = None
    paper_energy_j: Spread | None = None
    hv_test: Spread | None = None
    evaluations: Spread | None = None
    compute_passes: Spread | None = None
    wall_s: Spread | None = None

    def mean(self, column: str) -> float | None:
        """The mean of `column` (None when not measured or not finite)."""
        s = getattr(self, column)
        return float(s.mean) if s is not None and math.isfinite(s.mean) else None


def summarise(rows: Sequence[ReportedRow]) -> list[MethodFigures]:
    """mean ± std over seeds per method (in the order first seen)."""
    out = []
    for name in dict.fromkeys(r.method for r in rows):
        mine = [r for r in rows if r.method == name]
        spreads = {}
        for key, *_ in COLUMNS:
            vals = [float(getattr(r, key)) for r in mine if getattr(r, key) is not None]
            spreads[key] = Spread.of(vals) if vals else None
        out.append(MethodFigures(name, len(mine), **spreads))
    return out


def markdown_table(summary: Sequence[MethodFigures], metric: str) -> str:
    """The per-method table, cells in the headers' units (ms, µJ, MB): mean ± std over
    seeds, the mean alone for a method run on one seed."""
    head = "| method | seeds | " + " | ".join(h.format(m=f"test {metric}")
                                             for _, h, _, _ in COLUMNS)
    lines = [head + " |", "|---" * (2 + len(COLUMNS)) + "|"]
    for s in summary:
        cells = []
        for key, _, digits, factor in COLUMNS:
            v = getattr(s, key)
            if v is None or not math.isfinite(v.mean):
                cells.append("-")
            else:
                mean, std = (".3g", ".2g") if digits == 0 else (f".{digits}f",) * 2
                cells.append(f"{v.mean * factor:{mean}}" + (  # one seed: no spread to state
                    f" ± {v.std * factor:{std}}" if s.seeds > 1 else ""))
        lines.append(f"| {s.method} | {s.seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
