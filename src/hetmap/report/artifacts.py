"""Readers for the JSON artifacts a run directory holds. The report reads only these files, so
any stage (or a user's own script) that writes them gets a report.

Every file may carry "schema_version": 3 (`RunDir.SCHEMA_VERSION`; version 1 named
digital_weight_bytes "digital_bytes", analog_tiles "tiles", latency_s "latency" and energy_j
"energy"; version 2 named test_1d "test_accuracy_1day_mean" (and its _std, _ci95), wall_s
"wall_time_s", stage3_evaluations "evaluations_stage3" and hv_* "hypervolume_*": such
files are refused with the new name, `RENAMED`). Numbers may be null where a stage did not
measure them; the report then prints "-". Schemas (details and examples: docs/report.md):

summary.json   {"task", "metric", "hardware", "split": "test", "samples"?: {split: n},
                "warnings"?: [str],
                "rows": [{"name", "kind": "anchor" | "front",
                          "val_accuracy" (selection), "test_accuracy" (reported),
                          "test_1d", "test_1d_std",
                          "test_1d_ci95", "analog_mac_ratio" (over the MACs
                          of mappable layers), "analog_mac_ratio_total" (over every MAC),
                          "digital_weight_bytes", "analog_tiles", "latency_s",
                          "energy_j",
                          "val_estimates"?: {objective: value} (hetmap's PCM-mode
                          estimate the search ranked by, validation split),
                          "mapping"?: {layer: candidate} | Mapping.to_dict()}]}
front.json     {"objectives": [...],
                "members": [{"name"?, "mapping": {layer: candidate} | Mapping.to_dict(),
                             "scores": {accuracy, analog_mac_ratio, digital_weight_bytes,
                                        analog_tiles, latency_s, energy_j (any subset)}}],
                "evaluated"?: [{"scores": {...}}]}      every scored mapping, drawn grey
               = ParetoFront.to_dict() (members unnamed: "front-<i>" in front order)
inventory.json Inventory.to_dict(): {"layers": [{"name", "macs", ...}], "total_macs", ...}
drift.json     {"metric", "split"?, "mappings": [{"name", "times": [s], "mean": [...],
                                                  "std": [...], "ci95"?: [...]}]}
               each item may be DriftResult.to_dict() plus "name" ("times_s" for "times")
cost.json      {"hardware", "mappings": [{"name", **MappingCost.to_dict(),
                                          "cores"?: {core: {"latency_s", "energy_j"}}}]}
               MappingCost.to_dict() gives "latency_s", "energy_j", "analog_tiles",
               "tile_budget" and "layers": [{"name", "candidate", "core", "latency_s",
               "energy_j", "weight_load_energy_j", "transfer_latency_s",
               "transfer_energy_j", "tiles"}].
In drift.json and cost.json "mappings" may also be an object keyed by mapping name.
Score keys are hetmap.evaluation's quantity names (one name per quantity, SI units).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hetmap.errors import HetmapError
from hetmap.rundir import RunDir

SCHEMA_VERSION = RunDir.SCHEMA_VERSION
SCORE_KEYS = ("val_accuracy", "test_accuracy", "test_1d",
              "test_1d_std", "test_1d_ci95", "analog_mac_ratio",
              "analog_mac_ratio_total", "digital_weight_bytes", "analog_tiles", "latency_s",
              "energy_j")
# older schemas' names of quantities that now have hetmap's one name: refused, not read
# (schema 1: the hardware quantities; schema 2: the test metric after drift, the search's)
RENAMED = {"digital_bytes": "digital_weight_bytes", "tiles": "analog_tiles",
           "latency": "latency_s", "energy": "energy_j",
           "test_accuracy_1day_mean": "test_1d", "test_accuracy_1day_std": "test_1d_std",
           "test_accuracy_1day_ci95": "test_1d_ci95", "wall_time_s": "wall_s",
           "evaluations_stage3": "stage3_evaluations", "hypervolume_val": "hv_val",
           "hypervolume_test": "hv_test", "hypervolume_test_1day": "hv_test_1d"}


def _current(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """`raw` unchanged; an ArtifactError if it names a quantity by an older schema's name."""
    old = next((k for k in RENAMED if k in raw), None)
    if old is not None:
        raise ArtifactError(f"{where}: {old!r} is an older schema's name of {RENAMED[old]!r}: "
                            "rename the key (or rerun the stage that wrote the file)")
    return raw


class ArtifactError(HetmapError, ValueError):
    """A run artifact does not follow its schema; the message names the file and key."""


def _need(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise ArtifactError(f"{where}: missing key {key!r}")
    value = obj[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__
                                                                          for k in kind)
        raise ArtifactError(f"{where}.{key}: expected {names}, got {type(value).__name__}")
    return value


def _version(obj: Any, name: str) -> None:
    if not isinstance(obj, dict):
        raise ArtifactError(f"{name}: the top level must be an object")
    version = obj.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise ArtifactError(f"{name}: schema_version {version!r} is not supported (this "
                            f"report reads {SCHEMA_VERSION})")


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ArtifactError(f"{where}: expected a number or null, got {value!r}")
    return float(value)


def choices_of(mapping: Any, where: str) -> dict[str, str]:
    """{layer: candidate} from a plain dict or a Mapping.to_dict()."""
    if isinstance(mapping, dict) and isinstance(mapping.get("choices"), dict):
        mapping = mapping["choices"]
    if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise ArtifactError(f"{where}: a mapping must be an object of layer -> candidate")
    return dict(mapping)


def _named_list(obj: dict[str, Any], name: str) -> list[dict[str, Any]]:
    items = _need(obj, "mappings", (list, dict), name)
    if isinstance(items, dict):
        items = [{"name": key, **value} for key, value in items.items()]
    for i, item in enumerate(items):
        _need(item, "name", str, f"{name}.mappings[{i}]")
    return items


ESTIMATE = "val_estimate:"  # score-key prefix of a row's val_estimates (hetmap's estimate)


@dataclass
class Row:
    name: str
    kind: str
    scores: dict[str, float | None]
    mapping: dict[str, str] | None = None


@dataclass
class Summary:
    rows: list[Row]
    task: str | None = None
    metric: str = "accuracy"
    hardware: str | None = None
    warnings: list[str] = field(default_factory=list)
    samples: dict[str, int] = field(default_factory=dict)
    estimates: list[str] = field(default_factory=list)  # objectives of rows' val_estimates


def read_summary(obj: Any) -> Summary:
    _version(obj, RunDir.SUMMARY)
    rows = []
    estimates: dict[str, None] = {}  # in order of first appearance
    for i, raw in enumerate(_need(obj, "rows", list, RunDir.SUMMARY)):
        where = f"summary.json.rows[{i}]"
        name = _need(raw, "name", str, where)
        raw = _current(raw, where)
        kind = raw.get("kind", "front")
        if kind not in ("anchor", "front"):
            raise ArtifactError(f"{where}.kind: expected 'anchor' or 'front', got {kind!r}")
        scores = {k: _number(raw.get(k), f"{where}.{k}") for k in SCORE_KEYS}
        est = raw.get("val_estimates") or {}
        if not isinstance(est, dict):
            raise ArtifactError(f"{where}.val_estimates: expected an object, got "
                                f"{type(est).__name__}")
        for objective, value in est.items():
            estimates.setdefault(str(objective), None)
            scores[ESTIMATE + str(objective)] = _number(value, f"{where}.val_estimates."
                                                               f"{objective}")
        mapping = choices_of(raw["mapping"], f"{where}.mapping") \
            if raw.get("mapping") is not None else None
        rows.append(Row(name, kind, scores, mapping))
    warnings = [str(w) for w in obj.get("warnings") or []]
    samples = {str(k): int(v) for k, v in (obj.get("samples") or {}).items()}
    return Summary(rows, obj.get("task"), obj.get("metric") or "accuracy", obj.get("hardware"),
                   warnings, samples, list(estimates))


@dataclass
class Front:
    members: list[Row]
    objectives: list[str] = field(default_factory=list)
    evaluated: list[dict[str, float | None]] = field(default_factory=list)


def _scores(raw: Any, where: str) -> dict[str, float | None]:
    scores = _current(_need(raw, "scores", dict, where), f"{where}.scores")
    return {k: _number(v, f"{where}.scores.{k}") for k, v in scores.items()
            if not isinstance(v, dict | list)}


def read_front(obj: Any) -> Front:
    _version(obj, RunDir.FRONT)
    members = []
    for i, raw in enumerate(_need(obj, "members", list, RunDir.FRONT)):
        where = f"front.json.members[{i}]"
        name = raw.get("name") or f"front-{i}" if isinstance(raw, dict) else f"front-{i}"
        mapping = choices_of(_need(raw, "mapping", dict, where), f"{where}.mapping")
        members.append(Row(str(name), "front", _scores(raw, where), mapping))
    evaluated = [_scores(raw, f"front.json.evaluated[{i}]")
                 for i, raw in enumerate(obj.get("evaluated") or [])]
    return Front(members, list(obj.get("objectives") or []), evaluated)


@dataclass
class Layer:
    name: str
    macs: float


def read_inventory(obj: Any) -> list[Layer]:
    layers = _need(obj, "layers", list, RunDir.INVENTORY)
    return [Layer(_need(la, "name", str, f"inventory.json.layers[{i}]"),
                  float(_need(la, "macs", int | float, f"inventory.json.layers[{i}]")))
            for i, la in enumerate(layers)]


@dataclass
class DriftCurve:
    name: str
    times: list[float]
    mean: list[float]
    std: list[float]


def read_drift(obj: Any) -> tuple[str, list[DriftCurve]]:
    _version(obj, RunDir.DRIFT)
    curves = []
    for i, raw in enumerate(_named_list(obj, RunDir.DRIFT)):
        where = f"drift.json.mappings[{i}]"
        key = "times" if "times" in raw else "times_s"  # DriftResult.to_dict() says times_s
        times = [float(t) for t in _need(raw, key, list, where)]
        mean = [float(m) for m in _need(raw, "mean", list, where)]
        std = [float(s) for s in raw.get("std") or [0.0] * len(times)]
        if not (len(times) == len(mean) == len(std)):
            raise ArtifactError(f"{where}: times, mean and std must have the same length")
        if any(t <= 0 for t in times):
            raise ArtifactError(f"{where}.times: must be positive seconds")
        curves.append(DriftCurve(raw["name"], times, mean, std))
    return str(obj.get("metric") or "accuracy"), curves


@dataclass
class LayerCost:
    name: str
    candidate: str
    core: str
    latency_s: float
    energy_j: float
    transfer_latency_s: float = 0.0
    transfer_energy_j: float = 0.0
    weight_load_energy_j: float = 0.0


@dataclass
class Cost:
    name: str
    latency_s: float | None
    energy_j: float | None
    layers: list[LayerCost]
    cores: dict[str, dict[str, float]]
    analog_tiles: float | None = None
    tile_budget: float | None = None


def read_cost(obj: Any) -> tuple[str | None, list[Cost]]:
    _version(obj, RunDir.COST)
    out = []
    for i, raw in enumerate(_named_list(obj, RunDir.COST)):
        where = f"cost.json.mappings[{i}]"
        layers = []
        for j, la in enumerate(raw.get("layers") or []):
            w = f"{where}.layers[{j}]"
            layers.append(LayerCost(
                _need(la, "name", str, w), str(la.get("candidate", "")),
                str(la.get("core") or "none"),
                *(_number(la.get(k, 0.0), f"{w}.{k}") or 0.0
                  for k in ("latency_s", "energy_j", "transfer_latency_s",
                            "transfer_energy_j", "weight_load_energy_j"))))
        cores = raw.get("cores")
        if cores is None:
            cores = core_totals(layers)
        elif not isinstance(cores, dict):
            raise ArtifactError(f"{where}.cores: expected an object of core -> totals")
        out.append(Cost(raw["name"], _number(raw.get("latency_s"), f"{where}.latency_s"),
                        _number(raw.get("energy_j"), f"{where}.energy_j"), layers,
                        {str(k): {m: float(v.get(m) or 0.0) for m in ("latency_s", "energy_j")}
                         for k, v in cores.items()},
                        _number(raw.get("analog_tiles"), f"{where}.analog_tiles"),
                        _number(raw.get("tile_budget"), f"{where}.tile_budget")))
    return obj.get("hardware"), out


def core_totals(layers: list[LayerCost]) -> dict[str, dict[str, float]]:
    """Per-core sums of the per-layer records (a layer's input transfer counts on its core);
    skipped layers (core "none") are left out."""
    cores: dict[str, dict[str, float]] = {}
    for la in layers:
        if la.core == "none":
            continue
        c = cores.setdefault(la.core, {"latency_s": 0.0, "energy_j": 0.0})
        c["latency_s"] += la.latency_s + la.transfer_latency_s
        c["energy_j"] += la.energy_j + la.transfer_energy_j
    return cores
