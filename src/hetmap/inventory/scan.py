"""Find every mappable layer of a model and measure its work on a real forward pass."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import operator
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from hetmap.errors import ConfigError, HetmapError, InputShapeError, ModelError
from hetmap.inputs import ModelInput, batch_size_of, call_model
from hetmap.inventory.normalize import normalize_model
from hetmap.inventory.work import UnmappedWork, count_work, warn_functional
from hetmap.layers import LayerSpec, is_mappable, macs_of_call


def check_tile(tile: Any) -> tuple[int, int]:
    """(rows, cols) of a crossbar tile as two positive integers, or a ConfigError.

    Floats are refused, not rounded: a 64.7-row tile does not exist, and silently using 64
    rows would make every tile count and utilisation wrong without a word."""
    if isinstance(tile, str | bytes) or not isinstance(tile, Sequence) or len(tile) != 2:
        raise ConfigError(f"tile must be a pair (rows, cols) of positive integers, e.g. "
                          f"(512, 512); got {tile!r}")
    values = []
    for axis, value in zip(("rows", "cols"), tile, strict=True):
        try:
            if isinstance(value, bool):
                raise TypeError
            values.append(operator.index(value))
        except TypeError:
            raise ConfigError(f"tile {axis} must be a whole number, got {value!r} in tile "
                              f"{tuple(tile)!r}; give the crossbar size in cells, e.g. "
                              "(512, 512)") from None
    rows, cols = values
    if rows <= 0 or cols <= 0:
        raise ConfigError(f"tile sizes must be positive, got rows={rows}, cols={cols}; give "
                          "the crossbar size in cells, e.g. (512, 512)")
    return rows, cols


def check_model(model: Any, who: str) -> nn.Module:
    """`model` if hetmap can run it: a torch Module whose weights hold real values."""
    if not isinstance(model, nn.Module):
        raise ModelError(f"{who} needs a torch.nn.Module, got {type(model).__name__}")
    meta = [name for name, t in (*model.named_parameters(), *model.named_buffers())
            if t.is_meta]
    if meta:
        more = f" and {len(meta) - 3} more" if len(meta) > 3 else ""
        raise ModelError(
            f"{who}: {type(model).__name__} has tensors on the meta device (no values: "
            f"{', '.join(meta[:3])}{more}), so it cannot run a forward. Load real weights "
            "first: model.to_empty(device='cpu') then load_state_dict(...), or from_pretrained "
            "without device_map='meta' / low_cpu_mem_usage tricks")
    return model


def check_pattern_list(patterns: Sequence[str], what: str) -> None:
    """`patterns` is a list of names/globs, not one string (which would match per letter)."""
    if isinstance(patterns, str):
        raise ConfigError(f"{what} must be a list of layer names or glob patterns, got the "
                          f"string {patterns!r}; write {what}=[{patterns!r}]")


def check_patterns(patterns: Sequence[str], names: Sequence[str], what: str) -> None:
    """Every glob pattern of `what` (e.g. 'exclude') matches a layer name, or a ConfigError:
    a typo would otherwise silently exclude nothing."""
    check_pattern_list(patterns, what)
    dead = [p for p in patterns if not any(fnmatch.fnmatchcase(n, p) for n in names)]
    if dead:
        shown = ", ".join(list(names)[:6]) + (", ..." if len(names) > 6 else "")
        raise ConfigError(f"{what} pattern(s) {dead} match no layer of the model; layer "
                          f"names are module paths such as {shown} (see hetmap.scan(model, x))")


def no_mappable_layer(model: nn.Module) -> ModelError:
    return ModelError(f"{type(model).__name__} has no mappable layer (nn.Linear, nn.Conv1d, "
                      "nn.Conv2d, nn.ConvTranspose1d/2d, nn.LSTM/GRU/RNN and their cells, "
                      "nn.MultiheadAttention or transformers Conv1D), so there is nothing to "
                      "map or widen; pass the model whose layers should go onto the chip")


def run_example(model: nn.Module, example_input: ModelInput) -> Any:
    """The model's output on `example_input`; a failing forward is an InputShapeError."""
    try:
        return call_model(model, example_input)
    except (RuntimeError, ValueError, TypeError, IndexError) as err:
        if isinstance(err, HetmapError):
            raise
        raise InputShapeError(
            f"the model failed on the example input ({_describe(example_input)}): {err}. "
            "Pass an input the model accepts, with a batch dimension first") from err


@dataclass(frozen=True)
class LayerInfo:
    """One mappable layer: what it is, how much work it does per inference, how it tiles."""

    name: str
    spec: LayerSpec
    macs: int  # per inference, summed over every call of the module
    calls: int
    input_shape: tuple[int, ...]  # first call, batch dimension included
    output_shape: tuple[int, ...]
    in_activations: int  # elements read per inference, over all calls
    out_activations: int
    tiles: int
    tile_utilisation: float
    skippable: bool  # identity keeps every call's shape, so `skip` is a valid candidate

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def weight_shape(self) -> tuple[int, ...]:
        return self.spec.weight_shape

    @property
    def params(self) -> int:
        return self.spec.params

    @property
    def rows(self) -> int:
        return self.spec.rows

    @property
    def cols(self) -> int:
        return self.spec.cols

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "spec": self.spec.to_dict(),
            "weight_shape": list(self.weight_shape), "params": self.params, "macs": self.macs,
            "calls": self.calls, "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape), "in_activations": self.in_activations,
            "out_activations": self.out_activations, "rows": self.rows, "cols": self.cols,
            "tiles": self.tiles, "tile_utilisation": self.tile_utilisation,
            "skippable": self.skippable,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LayerInfo:
        return cls(d["name"], LayerSpec.from_dict(d["spec"]), d["macs"], d["calls"],
                   tuple(d["input_shape"]), tuple(d["output_shape"]), d["in_activations"],
                   d["out_activations"], d["tiles"], d["tile_utilisation"], d["skippable"])


@dataclass(frozen=True)
class Inventory:
    """The mappable layers of a model in execution order, with totals."""

    layers: tuple[LayerInfo, ...]
    tile: tuple[int, int]
    batch_size: int
    other_params: int = 0  # parameters outside mappable layers (norms, embeddings, ...)
    unmapped: tuple[UnmappedWork, ...] = ()  # MACs of the forward outside mappable layers
    _index: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update({layer.name: i for i, layer in enumerate(self.layers)})

    def __iter__(self) -> Iterator[LayerInfo]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, name: str) -> LayerInfo:
        try:
            return self.layers[self._index[name]]
        except KeyError:
            raise ModelError(f"no mappable layer named {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._index

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)

    @property
    def mappable_macs(self) -> int:
        """MACs per inference of the mappable layers (what a mapping places)."""
        return sum(layer.macs for layer in self.layers)

    @property
    def unmapped_macs(self) -> int:
        """MACs per inference no mappable layer performs: attention score matmuls, LSTM/GRU,
        transposed convolutions, functional calls (they run on the digital core)."""
        return sum(w.macs for w in self.unmapped)

    @property
    def total_macs(self) -> int:
        """Every MAC of the forward, per inference: mappable plus unmapped."""
        return self.mappable_macs + self.unmapped_macs

    @property
    def mappable_share(self) -> float:
        """Fraction of the forward's MACs that mappable layers perform."""
        return self.mappable_macs / self.total_macs if self.total_macs else 1.0

    @property
    def total_params(self) -> int:
        return sum(layer.params for layer in self.layers) + self.other_params

    @property
    def total_tiles(self) -> int:
        return sum(layer.tiles for layer in self.layers)

    @property
    def fingerprint(self) -> str:
        """Identifies the model's mappable structure; mappings carry it to catch mix-ups."""
        text = json.dumps([[layer.name, list(layer.weight_shape)] for layer in self.layers])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def __str__(self) -> str:
        head = f"{'layer':<40} {'kind':<7} {'weight':<18} {'MACs':>12} {'rows x cols':>13} " \
               f"{'tiles':>5} {'util':>6}"
        lines = [head, "-" * len(head)]
        for layer in self.layers:
            shape = "x".join(map(str, layer.weight_shape))
            lines.append(f"{layer.name[-40:]:<40} {layer.kind:<7} {shape:<18} {layer.macs:>12,} "
                         f"{f'{layer.rows}x{layer.cols}':>13} {layer.tiles:>5} "
                         f"{layer.tile_utilisation:>6.1%}")
        lines.append("-" * len(head))
        lines.append(f"{len(self.layers)} mappable layers, {self.mappable_macs:,} MACs per "
                     f"inference, {self.total_params:,} params, {self.total_tiles} tiles of "
                     f"{self.tile[0]}x{self.tile[1]}")
        if self.unmapped:
            lines.append(f"unmapped work (digital): {self.unmapped_macs:,} MACs; mappable "
                         f"layers do {self.mappable_share:.1%} of the {self.total_macs:,}")
            for w in sorted(self.unmapped, key=lambda w: -w.macs):
                where = f"{w.where or '<model>'} ({w.module_type})"
                site = f" at {w.site}" if w.site else ""
                lines.append(f"  {where[-40:]:<40} {w.op:<12} {w.kind:<11} {w.macs:>12,}{site}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"tile": list(self.tile), "batch_size": self.batch_size,
                "other_params": self.other_params, "fingerprint": self.fingerprint,
                "total_macs": self.total_macs, "mappable_macs": self.mappable_macs,
                "layers": [la.to_dict() for la in self.layers],
                "unmapped": [w.to_dict() for w in self.unmapped]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Inventory:
        return cls(tuple(LayerInfo.from_dict(la) for la in d["layers"]),
                   (int(d["tile"][0]), int(d["tile"][1])), int(d["batch_size"]),
                   int(d.get("other_params", 0)),
                   tuple(UnmappedWork.from_dict(w) for w in d.get("unmapped", ())))

    @classmethod
    def from_json(cls, text: str) -> Inventory:
        return cls.from_dict(json.loads(text))


@dataclass
class _Record:
    spec: LayerSpec
    order: int
    macs: int = 0
    calls: int = 0
    input_shape: tuple[int, ...] = ()
    output_shape: tuple[int, ...] = ()
    in_act: int = 0
    out_act: int = 0
    skippable: bool = True


def trace_layers(model: nn.Module, example_input: ModelInput, spec_of: dict[str, LayerSpec],
                 batch_size: int) -> tuple[dict[str, _Record], tuple[UnmappedWork, ...]]:
    """Run one forward and record, for each named layer, its calls, shapes and MACs, and the
    work (per inference) no mappable layer performs."""
    records: dict[str, _Record] = {}
    handles = []
    modules = dict(model.named_modules())

    def hook(name: str):
        def record(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            if not args or not isinstance(args[0], torch.Tensor) or \
                    not isinstance(output, torch.Tensor):
                return
            x = args[0]
            rec = records.setdefault(name, _Record(spec_of[name], len(records)))
            if rec.calls == 0:
                rec.input_shape, rec.output_shape = tuple(x.shape), tuple(output.shape)
            rec.calls += 1
            rec.macs += macs_of_call(rec.spec, x, output)
            rec.in_act += x.numel()
            rec.out_act += output.numel()
            rec.skippable &= x.shape == output.shape and len(args) == 1
        return record

    for name in spec_of:
        handles.append(modules[name].register_forward_hook(hook(name)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), count_work(model, set(spec_of)) as counter:
            run_example(model, example_input)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return records, counter.result(batch_size)


def _describe(example_input: ModelInput) -> str:
    if isinstance(example_input, torch.Tensor):
        return f"tensor of shape {tuple(example_input.shape)}"
    if isinstance(example_input, dict):
        return "dict " + ", ".join(f"{k}: {tuple(v.shape) if hasattr(v, 'shape') else v!r}"
                                    for k, v in example_input.items())
    return f"{type(example_input).__name__} of {len(example_input)}"


def mappable_specs(model: nn.Module) -> dict[str, LayerSpec]:
    return {name: LayerSpec.from_module(m) for name, m in model.named_modules()
            if name and is_mappable(m)}


def scan(model: nn.Module, example_input: ModelInput, tile: tuple[int, int] = (512, 512),
         batch_size: int | None = None) -> Inventory:
    """Inventory of `model`'s mappable layers, measured on a forward of `example_input`.

    MACs are per inference: the totals over the forward divided by `batch_size` (by default
    the leading dimension of the first tensor of the input). Layers the forward never calls
    are left out, since they cost nothing and no mapping can affect them.
    """
    tile = check_tile(tile)
    model = normalize_model(check_model(model, "scan"))
    specs = mappable_specs(model)
    if not specs:
        raise no_mappable_layer(model)
    bs = batch_size if batch_size is not None else batch_size_of(example_input)
    if bs <= 0:
        raise InputShapeError(f"batch_size must be positive, got {bs}")
    records, unmapped = trace_layers(model, example_input, specs, bs)
    if not records:
        raise ModelError(f"the forward of {type(model).__name__} called none of its "
                         f"{len(specs)} mappable layers with a tensor")
    layers = []
    for name, rec in sorted(records.items(), key=lambda kv: kv[1].order):
        layers.append(LayerInfo(
            name=name, spec=rec.spec, macs=rec.macs // bs, calls=rec.calls,
            input_shape=rec.input_shape, output_shape=rec.output_shape,
            in_activations=rec.in_act // bs, out_activations=rec.out_act // bs,
            tiles=rec.spec.tiles(tile), tile_utilisation=rec.spec.tile_utilisation(tile),
            skippable=rec.skippable))
    mapped = {id(p) for name in records for p in dict(model.named_modules())[name].parameters()}
    other = sum(p.numel() for p in model.parameters() if id(p) not in mapped)
    warn_functional(unmapped)
    return Inventory(tuple(layers), tile, bs, other, unmapped)
