"""Take a chosen mapping away: mapping.json plus a model that torch + aihwkit run without
hetmap.

`export(supernet, mapping, out_dir)` writes
    mapping.json      the Mapping (layer -> candidate), reloadable with Mapping.load
    model.pt          the whole deployed module (torch.save): analog layers are aihwkit
                      AnalogConv2d/AnalogLinear carrying their InferenceRPUConfig (PCM noise
                      and drift model, ADC/DAC, learned input ranges); int8/int4 layers are a
                      torch FakeQuantize (the calibrated input range) followed by the plain
                      layer holding per-channel quantized weights; fp16/bf16 layers hold
                      weights rounded to that format; skipped layers are nn.Identity
    state_dict.pt     its state_dict, for loading into a rebuilt model
    deploy.json       per layer: candidate, what it became, bits; per width choice (MPAAS
                      groups): narrow or wide; versions; the analog config
    README.txt        how to load and evaluate it

One exception to "without hetmap": a model with nn.LSTM/GRU/RNN (or their cells) deploys
them as `hetmap.inventory.recurrent.MappedRecurrent`/`MappedCell`, the recurrence around
the gate matmuls' (analog or digital) Linear layers, since aihwkit's AnalogRNN has another
call signature and output format than torch's. Loading such a model.pt needs hetmap
importable; deploy.json lists those classes under "needs_hetmap" and README.txt says so.

Load (only torch, aihwkit and the model's own class need to be importable):
    from aihwkit.nn import AnalogWrapper
    model = AnalogWrapper(torch.load("model.pt", weights_only=False)).eval()
    model.program_analog_weights()          # programming noise (aihwkit)
    model.drift_analog_weights(86400.0)     # one day of conductance drift
    y = model(x)

The model is numerically the one hetmap.evaluation.drift.deploy builds (and evaluate_drift
scores), i.e. the one the search scored (analog weights clipped as in training, BatchNorm
recalibrated for the mapping when `bn_inputs` are given), except fp16/bf16 layers, whose
activations are no longer rounded (a ~1e-3 relative difference; weights are rounded as
before).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hetmap.candidates import CandidateLayer, FloatCandidate, IntCandidate
from hetmap.errors import ModelError
from hetmap.evaluation.batchnorm import batchnorms
from hetmap.inputs import ModelInput
from hetmap.inventory.recurrent import MappedCell, MappedRecurrent
from hetmap.io import atomic_torch_save, atomic_write_json, atomic_write_text
from hetmap.mapping import Mapping
from hetmap.rundir import RunDir
from hetmap.supernet import Supernet

README = """\
Exported by hetmap {version}: a mapping of {model} onto analog tiles and digital units.

  mapping.json   which candidate each layer runs on
  model.pt       the deployable model (aihwkit analog layers + quantized digital layers)
  state_dict.pt  its weights and aihwkit tile states
  deploy.json    per-layer details, versions, analog configuration

Load and evaluate (needs torch {torch}, aihwkit {aihwkit} and the class {model_class}):

    import torch
    from aihwkit.nn import AnalogWrapper
    model = AnalogWrapper(torch.load("model.pt", weights_only=False)).eval()
    model.program_analog_weights()          # draw PCM programming noise
    model.drift_analog_weights(86400.0)     # conductance drift after one day (seconds)
    with torch.no_grad():
        y = model(x)

Repeat programming with different torch seeds for error bars, as hetmap's drift report does.
{needs_hetmap}"""
NEEDS_HETMAP = """
This model's recurrent layers run as {classes} (the recurrence around their gate matmuls):
loading model.pt needs hetmap {version} importable as well.
"""


def _plain_like(layer: CandidateLayer) -> nn.Module:
    spec = layer.candidate.spec
    plain = spec.make_module()
    with torch.no_grad():
        plain.weight.copy_(layer.weight)
        if layer.bias is not None and getattr(plain, "bias", None) is not None:
            plain.bias.copy_(layer.bias)
    return plain.to(layer.weight.device)


def _input_quantizer(cand: IntCandidate) -> nn.Module:
    """A torch FakeQuantize fixed at the candidate's calibrated input range (observer off),
    so the exported layer quantizes exactly as the candidate does in eval mode."""
    from torch.ao.quantization import FakeQuantize
    from torch.ao.quantization.observer import MovingAverageMinMaxObserver

    obs = cand.observer
    fq = FakeQuantize(observer=MovingAverageMinMaxObserver, quant_min=obs.quant_min,
                      quant_max=obs.quant_max, dtype=obs.dtype, qscheme=obs.qscheme)
    scale, zero = obs.calculate_qparams()
    fq.scale.resize_(scale.shape).copy_(scale)
    fq.zero_point.resize_(zero.shape).copy_(zero)
    fq.disable_observer()
    return fq.to(cand.observer.min_val.device)


def portable_layer(layer: CandidateLayer) -> tuple[nn.Module, dict[str, Any]]:
    """The torch-only equivalent of a digital CandidateLayer, and what it became."""
    cand = layer.candidate
    plain = _plain_like(layer)
    if isinstance(cand, IntCandidate):
        if not cand.calibrated:
            raise ModelError(f"layer {cand.spec!r} on {cand.name} has no calibrated input range; "
                             "calibrate the supernet (supernet.calibrate(batches)) first")
        with torch.no_grad():
            plain.weight.copy_(cand.quantize_weight(layer.weight))
        return nn.Sequential(_input_quantizer(cand), plain), {
            "as": "FakeQuantize + " + type(plain).__name__, "weight_bits": cand.weight_bits,
            "act_bits": cand.act_bits}
    if isinstance(cand, FloatCandidate):
        with torch.no_grad():
            plain.weight.copy_(plain.weight.to(cand.dtype).to(plain.weight.dtype))
            if getattr(plain, "bias", None) is not None:
                plain.bias.copy_(plain.bias.to(cand.dtype).to(plain.bias.dtype))
        return plain, {"as": type(plain).__name__, "weight_bits": cand.weight_bits,
                       "note": "weights rounded; activations kept in fp32"}
    raise ModelError(f"candidate {cand.name!r} ({type(cand).__name__}) has no torch-only "
                     "export; register an exporter or map the layer to another candidate")


def make_portable(model: nn.Module) -> dict[str, dict[str, Any]]:
    """Replace every CandidateLayer of a deployed model in place; returns per-layer notes."""
    notes: dict[str, dict[str, Any]] = {}
    for name, module in list(model.named_modules()):
        if isinstance(module, CandidateLayer):
            replacement, notes[name] = portable_layer(module)
            model.set_submodule(name, replacement)
    return notes


def unwrap(model: nn.Module) -> nn.Module:
    """The user's model class again instead of aihwkit's AnalogWrapper<Class>, which is made
    at run time and so cannot be pickled. It shares the wrapper's modules; wrap it again after
    loading (`AnalogWrapper(model)`) for program/drift_analog_weights on the whole model."""
    from aihwkit.nn import AnalogWrapper

    if not isinstance(model, AnalogWrapper):
        return model
    base = next(b for b in type(model).__mro__[1:]
                if issubclass(b, nn.Module) and not issubclass(b, AnalogWrapper)
                and b.__module__ != "aihwkit.nn.modules.container")
    plain = base.__new__(base)
    plain.__dict__.update(model.__dict__)
    return plain


def hetmap_classes(model: nn.Module, allowed: tuple[type, ...] = ()) -> list[str]:
    """Classes of hetmap's machinery in `model` (besides `allowed`). The architecture's own
    classes (a user's model, or hetmap.models' factories) are the model, not machinery:
    loading needs them importable, as for any pickled PyTorch model."""
    found = {f"{type(m).__module__}.{type(m).__qualname__}" for m in model.modules()
             if type(m).__module__.startswith("hetmap.")
             and not type(m).__module__.startswith("hetmap.models.")
             and not isinstance(m, allowed)}
    return sorted(found)


def drop_training_hooks(model: nn.Module) -> int:
    """Remove the gradient hooks aihwkit's torch tiles register (local closures, which
    cannot be pickled); they only rescale gradients during hardware-aware training."""
    removed = 0
    for module in model.modules():
        handle = getattr(module, "_backward_hook_handle", None)
        if handle is not None:
            handle.remove()
            module._backward_hook_handle = None
            removed += 1
    return removed


def export(supernet: Supernet, mapping: Mapping, out_dir: str | os.PathLike[str], *,
           rpu_config: Any = None, deterministic: bool = True,
           bn_inputs: Sequence[ModelInput] = ()) -> dict[str, Path]:
    """Write mapping.json, model.pt, state_dict.pt, deploy.json and README.txt into
    `out_dir`; returns their paths. The supernet is not changed.

    The model is `hetmap.evaluation.drift.deploy`'s, i.e. the one the search scored: analog
    weights clipped as in training, BatchNorm recalibrated for the mapping on `bn_inputs`
    (pass the Evaluator's, `calibration_inputs(task.loaders(batch_size, seed).train,
    bn_batches)`; none: the supernet's shared statistics, said so in deploy.json).
    rpu_config, deterministic: as for `deploy` (deterministic=True puts the analog layers on
    aihwkit's torch tile, as hetmap's drift evaluation does)."""
    import aihwkit

    from hetmap._version import __version__
    from hetmap.evaluation.drift import deploy

    mapping.validate(supernet)
    out = Path(out_dir)
    model = unwrap(deploy(supernet, mapping, rpu_config=rpu_config,
                          deterministic=deterministic, bn_inputs=bn_inputs))
    has_bn = bool(batchnorms(model))
    drop_training_hooks(model)
    digital = make_portable(model)
    user_class = type(supernet.model)
    leftover = hetmap_classes(model, allowed=(user_class, MappedRecurrent, MappedCell))
    if leftover:
        raise ModelError(f"the deployed model still holds hetmap-only modules "
                         f"({', '.join(leftover)}); it could not be loaded without hetmap")
    needs_hetmap = hetmap_classes(model, allowed=(user_class,))  # the recurrent ones
    full = supernet.full_choices(mapping)
    layers = {}
    for name in supernet.all_layer_names:
        cand = supernet.candidate(name, full[name])
        entry: dict[str, Any] = {"candidate": full[name], "target": cand.target,
                                 "searched": name in mapping}
        if cand.target == "analog":
            entry["as"] = "aihwkit analog layer"
            if supernet.choice_layer(name).spec.transposed:
                entry["as"] = "zero-stuffing (ConvTranspose of ones, ConstantPad) into an " \
                              "aihwkit AnalogConv: aihwkit has no analog transposed conv"
        elif cand.target == "none":
            entry["as"] = "Identity"
        else:
            entry.update(digital.get(name, {"as": "plain fp32 layer"}))
        layers[name] = entry
    paths = {"mapping": out / RunDir.EXPORT_MAPPING, "model": out / RunDir.EXPORT_MODEL,
             "state_dict": out / RunDir.EXPORT_STATE_DICT,
             "deploy": out / RunDir.EXPORT_DEPLOY, "readme": out / RunDir.EXPORT_README}
    mapping.save(paths["mapping"])
    atomic_torch_save(paths["model"], model)
    atomic_torch_save(paths["state_dict"], model.state_dict())
    atomic_write_json(paths["deploy"], {
        "schema_version": 1, "hetmap": __version__, "torch": torch.__version__,
        "aihwkit": aihwkit.__version__, "python": platform.python_version(),
        "model_class": f"{user_class.__module__}.{user_class.__qualname__}",
        "fingerprint": supernet.fingerprint, "layers": layers,
        "widths": {g: full[g] for g in supernet.gate_names},
        "analog_config": supernet.options.analog.model_dump(mode="json"),
        "rpu_config": "the analog config's to_aihwkit()" if rpu_config is None
        else "given to export (rpu_config=...)",
        "supernet_options": supernet.options.to_dict(),
        "batchnorm": None if not has_bn else
        f"recalibrated for this mapping on {len(bn_inputs)} training batches" if bn_inputs
        else "the supernet's shared statistics (export got no bn_inputs)",
        "load": "aihwkit.nn.AnalogWrapper(torch.load('model.pt', weights_only=False))",
        "needs_hetmap": needs_hetmap})
    atomic_write_text(paths["readme"], README.format(
        version=__version__, model=user_class.__name__, torch=torch.__version__,
        aihwkit=aihwkit.__version__,
        model_class=f"{user_class.__module__}.{user_class.__qualname__}",
        needs_hetmap=NEEDS_HETMAP.format(classes=", ".join(needs_hetmap), version=__version__)
        if needs_hetmap else ""))
    return paths
