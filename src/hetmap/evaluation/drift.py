"""Drift-aware evaluation of a deployed mapping, measured as the field measures it: analog
layers as aihwkit analog layers (PCM programming noise, conductance drift, read noise,
global drift compensation), programmed once per repeat with a seeded draw, then drifted to
each time (1 s to 1 year by default) and scored; digital layers fake-quantized at their
bit-width by hetmap's own candidates; skipped layers removed; a hybrid layer (Harmonica)
split into its analog rows, deployed like an analog layer, plus its digital rows kept on its
integer candidate (`HybridLayer`, the outputs summed).

The analog part is aihwkit's own `convert_to_analog` applied to the mapped layers only, so
an all-analog mapping gives exactly aihwkit's numbers for the same model, rpu config and
seeds. Reproducibility: programming and drift noise come from torch's RNG, but aihwkit's C++
InferenceTile draws its forward (output) noise from an internal RNG no seed reaches; with
`deterministic=True` (default) the same settings run on aihwkit's TorchInferenceTile, whose
every draw follows torch.manual_seed.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from hetmap.candidates import Candidate, CandidateLayer
from hetmap.candidates.analog import AnalogConfig
from hetmap.candidates.analog.engine import clip_weight
from hetmap.candidates.hybrid import HybridCandidate, HybridLayer
from hetmap.errors import ConfigError, ModelError
from hetmap.evaluation.batchnorm import batchnorms, calibration_inputs, recalibrate_batchnorm
from hetmap.inputs import ModelInput
from hetmap.mapping import Mapping
from hetmap.supernet import ChoiceLayer, Supernet

DEFAULT_TIMES = (1.0, 3600.0, 86400.0, 31536000.0)  # 1 s, 1 h, 1 day, 1 year
_PLAIN = (nn.Linear, nn.Conv1d, nn.Conv2d)
InputRanges = Literal["supernet", "config"]


@dataclass
class DriftResult:
    """Task metric after programming and drift: mean and std over repeats per time."""

    times: tuple[float, ...]
    values: list[list[float]]  # [time][repeat]
    metric_name: str = "accuracy"
    mapping: Mapping | None = None
    seed: int = 0
    split: str | None = None  # the task's split scored ("given": batches passed in)
    samples: int | None = None  # samples per score

    @property
    def mean(self) -> list[float]:
        return [float(np.mean(v)) for v in self.values]

    @property
    def std(self) -> list[float]:
        return [float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for v in self.values]

    @property
    def ci95(self) -> list[float]:
        """Half-width of the 95 % Student-t interval of the mean over repeats (0 for one)."""
        from scipy.stats import t as student_t

        return [float(student_t.ppf(0.975, len(v) - 1) * np.std(v, ddof=1) / np.sqrt(len(v)))
                if len(v) > 1 else 0.0 for v in self.values]

    @property
    def repeats(self) -> int:
        return len(self.values[0]) if self.values else 0

    def at(self, t: float) -> tuple[float, float]:
        """(mean, std) at time `t` (one of `times`)."""
        if t not in self.times:
            raise ConfigError(f"time {t} s was not evaluated; evaluated: {list(self.times)}")
        i = self.times.index(t)
        return self.mean[i], self.std[i]

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric_name, "seed": self.seed, "repeats": self.repeats,
                "times_s": list(self.times), "mean": self.mean, "std": self.std,
                "ci95": self.ci95, "values": self.values,
                "mapping": None if self.mapping is None else self.mapping.to_dict(),
                **({} if self.split is None else {"split": self.split}),
                **({} if self.samples is None else {"samples": self.samples})}

    def __str__(self) -> str:
        rows = [f"t={t:>10.0f} s: {m:6.2f} +- {s:5.2f}"
                for t, m, s in zip(self.times, self.mean, self.std)]
        return f"{self.metric_name} after drift ({self.repeats} repeats)\n" + "\n".join(rows)


# -- deployment ----------------------------------------------------------------------------
def _plain_layer(choice: ChoiceLayer, analog_config: AnalogConfig | None = None,
                 weight: Tensor | None = None) -> nn.Module:
    """An ordinary nn.Linear/Conv with (a copy of) the shared weights (or `weight`); for an
    analog layer, the weights its analog path computes with (clipped by `analog_config`'s
    rule, as in training and in the Evaluator's scores)."""
    layer = choice.spec.make_module()
    weight = choice.weight if weight is None else weight
    weight = weight if analog_config is None else clip_weight(weight, analog_config)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if choice.bias is not None:
            layer.bias.copy_(choice.bias)
    return layer.to(choice.weight.device)


class GroupedConv(nn.Module):
    """A grouped convolution as `groups` ungrouped ones on its channel groups, outputs
    concatenated: aihwkit has no grouped analog convolution, and hetmap's engine (and cost
    model) counts a grouped layer as one crossbar per group, so each part becomes one
    aihwkit AnalogConv with that group's rows and columns. `parts[g]` holds output channels
    g * out/groups ... (g + 1) * out/groups - 1 of the original weight."""

    def __init__(self, parts: Sequence[nn.Module]) -> None:
        super().__init__()
        self.parts = nn.ModuleList(parts)

    def forward(self, x: Tensor) -> Tensor:
        xs = torch.chunk(x, len(self.parts), dim=1)
        return torch.cat([part(xg) for part, xg in zip(self.parts, xs, strict=True)], dim=1)

    @staticmethod
    def of(layer: nn.Module) -> GroupedConv:
        """`layer` (an nn.ConvNd with groups > 1) split into its groups (copied weights)."""
        g = layer.groups
        cin, cout = layer.in_channels // g, layer.out_channels // g
        parts = []
        for k in range(g):
            part = type(layer)(cin, cout, layer.kernel_size, stride=layer.stride,
                               padding=layer.padding, dilation=layer.dilation,
                               bias=layer.bias is not None, padding_mode=layer.padding_mode)
            with torch.no_grad():
                part.weight.copy_(layer.weight[k * cout:(k + 1) * cout])
                if layer.bias is not None:
                    part.bias.copy_(layer.bias[k * cout:(k + 1) * cout])
            parts.append(part.to(layer.weight.device))
        return GroupedConv(parts)


def _analog_layer(choice: ChoiceLayer, config: AnalogConfig) -> tuple[nn.Module, list[str]]:
    """The plain module an analog layer deploys as, and the paths (within it) of the parts
    aihwkit converts (""; the module itself). A transposed convolution, which aihwkit has no
    analog layer for, deploys as what the engine simulates: its zero-stuffed input (plain
    torch modules, digital) into the direct convolution holding the flipped weight
    (`LayerSpec.conv_equivalent`), which becomes an aihwkit AnalogConv1d/2d. A grouped
    convolution deploys as one convolution per group (`GroupedConv`)."""
    spec = choice.spec
    if not spec.transposed:
        layer = _plain_layer(choice, config)
        if getattr(layer, "groups", 1) > 1:
            return GroupedConv.of(layer), [f"parts.{k}" for k in range(layer.groups)]
        return layer, [""]
    conv = spec.conv_equivalent().make_module()
    with torch.no_grad():
        conv.weight.copy_(clip_weight(spec.conv_weight(choice.weight), config))
        if choice.bias is not None:
            conv.bias.copy_(choice.bias)
    if spec.groups > 1:
        raise ModelError(f"layer {choice.layer_name!r}: a grouped transposed convolution has "
                         "no analog deployment (aihwkit has no grouped AnalogConv); keep it "
                         "digital (exclude it)")
    module = nn.Sequential(spec.stuffing_module(), conv)
    return module.to(choice.weight.device), ["1"]


def _rpu_for(supernet: Supernet, name: str, rpu_config: Any, deterministic: bool) -> Any:
    rpu = _rpu_config_of(supernet, name) if rpu_config is None else copy.deepcopy(rpu_config)
    return torch_rpu_config(rpu) if deterministic else rpu


def _rpu_config_of(supernet: Supernet, name: str) -> Any:
    # aihwkit also asks about containers (e.g. 'features'), which use the default config
    known = name in supernet.all_layer_names and "analog" in supernet.candidates(name)
    cand = supernet.candidate(name, "analog") if known else None
    config = getattr(cand, "config", None) or supernet.options.analog
    return config.to_aihwkit()


def _analog_config(cand: Any) -> AnalogConfig:
    config = getattr(cand, "config", None)
    if not isinstance(config, AnalogConfig):
        raise ModelError(f"analog candidate {cand.name!r} ({type(cand).__name__}) has no "
                         "AnalogConfig: deploy cannot tell which weights its tiles hold")
    return config


def _analog_tiles_by_slice(layer: nn.Module) -> list[list[nn.Module]]:
    """aihwkit tiles of one analog layer grouped by input (row) slice."""
    module = getattr(layer, "analog_module", layer)
    array = getattr(module, "array", None)
    if array is not None:
        return [list(row) for row in array]
    return [[module]]


def _copy_input_ranges(analog_layer: nn.Module, choice: ChoiceLayer,
                       cand: Candidate | None = None) -> None:
    """Give each aihwkit tile the input range the supernet learned for its row slice
    (aihwkit splits rows over tiles exactly as hetmap's engine does); `cand`: the analog
    candidate holding the ranges (default: the layer's `analog`)."""
    if cand is None:
        cand = choice.candidates["analog"] if "analog" in choice.candidates else None  # noqa: SIM401
    ranges = getattr(cand, "input_range", None)
    if ranges is None:
        return
    slices = _analog_tiles_by_slice(analog_layer)
    if len(slices) != ranges.numel():
        raise ModelError(f"layer {choice.layer_name!r}: aihwkit uses {len(slices)} row "
                         f"slices but the supernet learned {ranges.numel()} input ranges; "
                         "use the same tile size in the rpu config, or input_ranges='config'")
    for value, tiles in zip(ranges.detach().abs().tolist(), slices):
        for tile in tiles:
            if getattr(tile, "input_range", None) is not None:
                tile.input_range.data.fill_(value)


def torch_rpu_config(rpu_config: Any) -> Any:
    """The same aihwkit InferenceRPUConfig on the pure-torch tile (seedable forward noise)."""
    import dataclasses

    from aihwkit.simulator.configs import InferenceRPUConfig, TorchInferenceRPUConfig

    if isinstance(rpu_config, TorchInferenceRPUConfig) or \
            not isinstance(rpu_config, InferenceRPUConfig):
        return rpu_config
    out = TorchInferenceRPUConfig()
    for f in dataclasses.fields(InferenceRPUConfig):
        if f.name not in ("tile_class", "tile_array_class"):
            setattr(out, f.name, copy.deepcopy(getattr(rpu_config, f.name)))
    return out


def deploy(supernet: Supernet, mapping: Mapping | None = None, *, rpu_config: Any = None,
           input_ranges: InputRanges = "supernet", deterministic: bool = True,
           bn_inputs: Sequence[ModelInput] = ()) -> nn.Module:
    """The deployable model of `mapping` (default: the active one) in eval mode: the model
    the search scored.

    BatchNorm: recalibrated on `mapping`'s path over `bn_inputs` exactly as the Evaluator
    does (`recalibrate_batchnorm`; pass the Evaluator's batches, `calibration_inputs(
    task.loaders(batch_size, seed).train, bn_batches)`); without inputs the supernet's shared
    statistics stay. Analog layers become aihwkit AnalogLinear/AnalogConv1d/AnalogConv2d
    holding the weights the analog path computes with (the shared weights clipped as in
    training; rpu config: `rpu_config` or the candidate's AnalogConfig.to_aihwkit(); input
    ranges: the supernet's learned ones, or the config's with 'config'; an analog
    ConvTranspose deploys as its zero-stuffed input into an AnalogConv, see
    `_analog_layer`); digital layers
    become CandidateLayers running their (calibrated) candidate; skipped layers Identity;
    groups on a narrow width choice are built at their original width.
    deterministic: run the rpu config on aihwkit's torch tile (see the module docstring).
    The supernet is not changed, and the global torch RNG is left as it was."""
    from aihwkit.nn.conversion import convert_to_analog

    if input_ranges not in ("supernet", "config"):
        raise ConfigError(f"input_ranges must be 'supernet' or 'config', got {input_ranges!r}")
    mapping = (supernet.current_mapping() if mapping is None else mapping).validate(supernet)
    full = supernet.full_choices(mapping)
    with torch.random.fork_rng(devices=[]):
        model = supernet.model_for(mapping)  # narrow width choices at their real shapes
        recalibrate_batchnorm(model, bn_inputs)  # the statistics the Evaluator scored with
        analog: dict[str, ChoiceLayer] = {}
        ranges: dict[str, Candidate] = {}  # converted layer -> the candidate with its ranges
        for name, choice in list(model.named_modules()):
            if not isinstance(choice, ChoiceLayer):
                continue
            cand_name = full[name]
            cand = choice.candidates[cand_name]
            if isinstance(cand, HybridCandidate):
                part = _hybrid_layer(choice, cand)
                model.set_submodule(name, part)
                if isinstance(part, HybridLayer):
                    analog[f"{name}.analog"], ranges[f"{name}.analog"] = choice, cand.analog
                elif not isinstance(part, CandidateLayer):
                    analog[name], ranges[name] = choice, cand.analog
            elif cand.target == "analog":
                module, subs = _analog_layer(choice, _analog_config(cand))
                model.set_submodule(name, module)
                for sub in subs:
                    analog[f"{name}.{sub}" if sub else name] = choice
            elif cand.target == "none":
                model.set_submodule(name, nn.Identity())
            elif cand_name == "fp32":
                model.set_submodule(name, _plain_layer(choice))
            else:
                model.set_submodule(name, CandidateLayer(choice, cand))
        if analog:
            keep_digital = [n for n, m in model.named_modules()
                            if type(m) in _PLAIN and n not in analog]
            model = convert_to_analog(
                model, _rpu_for(supernet, next(iter(analog)), rpu_config, deterministic),
                specific_rpu_config_fun=lambda n, m, rpu: _rpu_for(
                    supernet, analog[n].layer_name if n in analog else n, rpu_config,
                    deterministic),
                exclude_modules=keep_digital, inplace=True)
            if input_ranges == "supernet":
                root = getattr(model, "module", model)  # aihwkit's AnalogWrapper
                for name, choice in analog.items():
                    _copy_input_ranges(_find(model, root, name), choice, ranges.get(name))
    return model.eval()


def _hybrid_layer(choice: ChoiceLayer, cand: HybridCandidate) -> nn.Module:
    """A hybrid layer deployed: its analog rows as a plain layer (converted to aihwkit with
    the others) plus its digital rows on its integer candidate; at no digital row, the
    plain layer alone; at every row digital, the integer candidate alone."""
    if cand.rows == 0:
        return _plain_layer(choice, _analog_config(cand))
    if cand.rows == cand.spec.rows:
        return CandidateLayer(choice, copy.deepcopy(cand.digital))
    with torch.no_grad():
        analog_w, digital_w = cand.split_weight(choice.weight)
    return HybridLayer(_plain_layer(choice, _analog_config(cand), analog_w), digital_w,
                       copy.deepcopy(cand.digital)).to(choice.weight.device)


def _find(model: nn.Module, root: nn.Module, name: str) -> nn.Module:
    for base in (root, model):
        try:
            return base.get_submodule(name)
        except AttributeError:
            continue
    raise ModelError(f"cannot find the converted layer {name!r} in the deployed model")


# -- evaluation ----------------------------------------------------------------------------
def _program(model: nn.Module) -> None:
    """Draw programming noise on every tile (in module order, as aihwkit does)."""
    if hasattr(model, "program_analog_weights"):
        model.program_analog_weights()
        return
    from aihwkit.simulator.tiles.module import TileModule

    for m in model.modules():
        if isinstance(m, TileModule) and hasattr(m, "program_weights"):
            m.program_weights()


def _drift(model: nn.Module, t: float) -> None:
    if hasattr(model, "drift_analog_weights"):
        model.drift_analog_weights(t)
        return
    from aihwkit.simulator.tiles.inference import InferenceTileWithPeriphery

    for m in model.modules():
        if isinstance(m, InferenceTileWithPeriphery):
            m.drift_weights(t)


def _has_analog(model: nn.Module) -> bool:
    from aihwkit.nn.modules.base import AnalogLayerBase

    return any(isinstance(m, AnalogLayerBase) for m in model.modules())


def _batches(task_or_loader: Any, split: str, batch_size: int, seed: int,
             max_batches: int | None) -> tuple[list[Any], Any, Any]:
    """(scored batches, the task or None, the task's loaders or None)."""
    if hasattr(task_or_loader, "loaders") and hasattr(task_or_loader, "metric"):
        task = task_or_loader
        loaders = task.loaders(batch_size=batch_size, seed=seed)
        if split not in ("val", "test"):
            raise ConfigError(f"split must be 'val' or 'test', got {split!r}")
        loader: Iterable[Any] = getattr(loaders, split)
    else:
        task, loaders, loader = None, None, task_or_loader
    return list(itertools.islice(loader, max_batches)), task, loaders


def _metric(model: nn.Module, batches: Sequence[Any], task: Any,
            device: torch.device | str) -> float:
    if task is not None:
        return float(task.metric(model, batches, device))
    from hetmap.tasks.image import accuracy

    return accuracy(model, batches, device)


def evaluate_drift(model_or_supernet: nn.Module, mapping: Mapping | None = None,
                   task_or_loader: Any = None, *, times: Sequence[float] = DEFAULT_TIMES,
                   repeats: int = 5, seed: int = 0, rpu_config: Any = None,
                   split: str = "val", batch_size: int = 256, max_batches: int | None = None,
                   device: torch.device | str = "cpu",
                   input_ranges: InputRanges = "supernet",
                   deterministic: bool = True, bn_batches: int = 4,
                   bn_inputs: Sequence[ModelInput] | None = None) -> DriftResult:
    """Program, drift and score a mapping `repeats` times; mean +- std per time.

    model_or_supernet: a Supernet (deployed with `mapping`: the model the Evaluator scored,
        see `deploy`), a model that already holds aihwkit analog layers (used as is), or a
        plain model (converted all-analog with `rpu_config`, default
        AnalogConfig().to_aihwkit()).
    task_or_loader: a Task (its `split` loader and metric) or an iterable of
        (inputs, targets) batches scored by top-1 accuracy.
    bn_batches, bn_inputs: a supernet's BatchNorm is recalibrated for the mapping on
        `bn_inputs`, by default (with a Task) on the first `bn_batches` training batches at
        this `batch_size` and `seed`: the Evaluator's batches for the same settings. A
        plain loader has no training split: pass `bn_inputs` (or none: shared statistics).
    Repeat r programs with torch.manual_seed(seed + r); every time then drifts from that
    same programmed state, as in aihwkit's inference examples. deterministic: supernets and
    plain models run on aihwkit's torch tile so that every draw follows the seed."""
    if task_or_loader is None:
        raise ConfigError("evaluate_drift needs a task or a loader of (inputs, targets)")
    if repeats <= 0:
        raise ConfigError(f"repeats must be positive, got {repeats}")
    times = tuple(float(t) for t in times)
    if not times or any(t < 0 for t in times):
        raise ConfigError(f"times must be non-negative seconds, got {list(times)}")
    batches, task, loaders = _batches(task_or_loader, split, batch_size, seed, max_batches)
    if isinstance(model_or_supernet, Supernet):
        if bn_inputs is None:
            where = next((p.device for p in model_or_supernet.parameters()), "cpu")
            bn_inputs = calibration_inputs(loaders.train, bn_batches, where) \
                if loaders is not None and batchnorms(model_or_supernet) else []
        model = deploy(model_or_supernet, mapping, rpu_config=rpu_config,
                       input_ranges=input_ranges, deterministic=deterministic,
                       bn_inputs=bn_inputs)
    elif _has_analog(model_or_supernet):
        model = model_or_supernet
    else:
        from aihwkit.nn.conversion import convert_to_analog

        if rpu_config is None:
            from hetmap.candidates.analog import AnalogConfig

            rpu_config = AnalogConfig().to_aihwkit()
        if deterministic:
            rpu_config = torch_rpu_config(rpu_config)
        with torch.random.fork_rng(devices=[]):
            model = convert_to_analog(model_or_supernet, rpu_config)
    model = model.to(device).eval()
    values: list[list[float]] = [[] for _ in times]
    analog = _has_analog(model)
    for r in range(repeats):
        torch.manual_seed(seed + r)
        if analog:
            _program(model)
        for i, t in enumerate(times):
            if analog:
                _drift(model, t)
            values[i].append(_metric(model, batches, task, device))
    samples = sum(len(b[1]) for b in batches)
    return DriftResult(times, values, getattr(task, "metric_name", "accuracy"),
                       mapping if isinstance(model_or_supernet, Supernet) else None, seed,
                       split=split if task is not None else "given", samples=samples)
