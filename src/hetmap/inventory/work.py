"""Every multiply-accumulate of a forward, and the part no mappable layer performs.

`count_work` runs a forward under a torch dispatch mode that sees every aten operation.
Matmul-like operations (mm, addmm, bmm, baddbmm, convolution, ...) are costed with
`torch.utils.flop_counter`'s formulas (FLOPs / 2 = MACs). Those inside a mappable layer's
call are that layer's own work (hetmap counts it from the layer's shapes); the rest is
*unmapped work*, grouped by (operation, module) with what it is:

- ``activations``: both operands are activations (attention scores and their weighted sum);
- ``layer``: a torch.nn layer hetmap does not map (LSTM, GRU, RNN, ConvTranspose, ...);
- ``functional``: a user module calling F.linear / F.conv* / matmul on its parameters; this
  also warns, naming the call site, since the weights are there but no candidate can run them.

The forward runs with oneDNN off and the math attention kernel, so LSTM/GRU and
scaled-dot-product attention decompose into matmuls that can be counted (their fused CPU
kernels are opaque to the dispatcher, and FlopCounterMode counts them as 0).
"""

from __future__ import annotations

import contextlib
import os
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import flop_registry

WorkKind = Literal["activations", "layer", "functional"]

_TORCH_DIR = os.path.dirname(torch.__file__)
_HETMAP_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SKIP = {torch.ops.aten.sym_size.default, torch.ops.aten.size.default,
         torch.ops.aten.stride.default, torch.ops.aten.numel.default,
         torch.ops.aten.dim.default, torch.ops.aten.is_contiguous.default,
         torch.ops.aten.sym_stride.default, torch.ops.aten.sym_numel.default,
         torch.ops.aten.storage_offset.default, torch.ops.aten.sym_storage_offset.default,
         torch.ops.prim.layout.default, torch.ops.prim.device.default}


@dataclass(frozen=True)
class UnmappedWork:
    """Multiply-accumulates of one operation in one module that no mappable layer performs
    (per inference, summed over the module's calls); the cost model runs it digitally."""

    op: str  # aten operation, e.g. "bmm", "convolution", "addmm"
    where: str  # module path ("" for the top-level model)
    module_type: str  # class name of that module, e.g. "LSTM", "SplitMultiheadAttention"
    kind: WorkKind
    macs: int
    calls: int
    site: str = ""  # file:line of a functional call on parameters

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "where": self.where, "module_type": self.module_type,
                "kind": self.kind, "macs": self.macs, "calls": self.calls, "site": self.site}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UnmappedWork:
        return cls(d["op"], d["where"], d["module_type"], d["kind"], int(d["macs"]),
                   int(d["calls"]), d.get("site", ""))


def _is_torch_layer(module: nn.Module) -> bool:
    return type(module).__module__.startswith("torch.nn")


def _call_site() -> str:
    """file:line of the innermost frame outside torch and hetmap (the user's F.* call)."""
    for frame in reversed(traceback.extract_stack()):
        path = os.path.abspath(frame.filename)
        if not path.startswith((_TORCH_DIR, _HETMAP_DIR)):
            return f"{frame.filename}:{frame.lineno}"
    return "<unknown>"


class _Counter(TorchDispatchMode):
    def __init__(self, model: nn.Module, mappable: set[str]) -> None:
        super().__init__()
        self.modules = dict(model.named_modules())
        self.mappable = mappable
        self.stack: list[str] = []
        self.inside_mappable = 0
        self.param_storages = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self.work: dict[tuple[str, str], list[Any]] = {}  # (op, where) -> [kind, macs, site]
        self.calls: dict[tuple[str, str], set[int]] = {}
        self.call_index = 0  # counts module entries, so calls of a module are told apart

    # -- module stack (forward hooks) -------------------------------------------------------
    def enter(self, name: str) -> None:
        self.stack.append(name)
        self.call_index += 1
        if name in self.mappable:
            self.inside_mappable += 1

    def leave(self, name: str) -> None:
        if self.stack and self.stack[-1] == name:
            self.stack.pop()
            if name in self.mappable:
                self.inside_mappable -= 1

    # -- operations -------------------------------------------------------------------------
    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None
                           ) -> Any:
        kwargs = kwargs or {}
        if func in _SKIP:
            return func(*args, **kwargs)
        packet = func._overloadpacket
        if packet not in flop_registry:
            with self:  # composite ops (lstm, linear, matmul, attention) split into counted ones
                out = func.decompose(*args, **kwargs)
            if out is not NotImplemented:
                return out
            return func(*args, **kwargs)
        out = func(*args, **kwargs)
        if not self.inside_mappable:
            self._record(packet, args, kwargs, out)
        return out

    def _record(self, packet: Any, args: Any, kwargs: Any, out: Any) -> None:
        macs = int(flop_registry[packet](*args, **kwargs, out_val=out)) // 2
        if macs <= 0:
            return
        where = self.stack[-1] if self.stack else ""
        module = self.modules.get(where)
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        on_params = any(t.untyped_storage().data_ptr() in self.param_storages for t in tensors)
        kind: WorkKind = "activations"
        site = ""
        if on_params:
            kind = "layer" if module is not None and _is_torch_layer(module) else "functional"
            if kind == "functional":
                site = _call_site()
        key = (packet.__name__, where)
        entry = self.work.setdefault(key, [kind, 0, site])
        entry[1] += macs
        if kind == "functional" and entry[0] != "functional":
            entry[0], entry[2] = kind, site
        self.calls.setdefault(key, set()).add(self.call_index)

    def result(self, batch_size: int) -> tuple[UnmappedWork, ...]:
        out = []
        for (op, where), (kind, macs, site) in self.work.items():
            module = self.modules.get(where)
            out.append(UnmappedWork(op, where, type(module).__name__ if module else "",
                                    kind, macs // batch_size, len(self.calls[(op, where)]),
                                    site))
        return tuple(out)


@contextlib.contextmanager
def count_work(model: nn.Module, mappable: set[str]) -> Iterator[_Counter]:
    """Within the block, the model's forward records its unmapped work on the yielded
    counter (read it with `.result(batch_size)`)."""
    counter = _Counter(model, mappable)
    handles = []
    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(
            lambda _m, _a, name=name: counter.enter(name)))
        handles.append(module.register_forward_hook(
            lambda _m, _a, _o, name=name: counter.leave(name), always_call=True))
    try:
        with countable_kernels(), counter:
            yield counter
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def countable_kernels() -> Iterator[None]:
    """oneDNN off and the math attention kernel: LSTM/GRU and scaled-dot-product attention
    then run as matmuls a dispatch mode sees (FlopCounterMode too: use it for a reference)."""
    onednn = torch.backends.mkldnn.flags(enabled=False)
    with _quiet_onednn():
        onednn.__enter__()
    try:
        with sdpa_kernel(SDPBackend.MATH):
            yield
    finally:
        with _quiet_onednn():
            onednn.__exit__(None, None, None)


@contextlib.contextmanager
def _quiet_onednn() -> Iterator[None]:
    with warnings.catch_warnings():  # toggling oneDNN warns about Intel-GPU TF32
        warnings.filterwarnings("ignore", message=".*TF32 acceleration on top of oneDNN")
        yield


def warn_functional(work: tuple[UnmappedWork, ...]) -> None:
    """One warning per functional call on parameters: no candidate can run those weights."""
    for w in work:
        if w.kind == "functional":
            where = f"module {w.where!r} ({w.module_type})" if w.where else w.module_type
            warnings.warn(
                f"{where} calls {w.op} on its parameters at {w.site} ({w.macs:,} MACs per "
                "inference): hetmap cannot map a functional call, so this work stays digital "
                "and is listed in Inventory.unmapped; use an nn.Linear / nn.Conv module for "
                "it to be mappable", stacklevel=3)
