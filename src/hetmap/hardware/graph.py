"""The whole inference as a dependency graph: mappable-layer calls and every other op.

`trace_graph` runs one forward of the model under a `TorchDispatchMode` and records each aten
op with the ops that produced its inputs. Ops executed inside a mappable module's forward
collapse into one `layer` node per call (its candidate decides where it runs); every other op
becomes a node of the digital system: `matmul` (attention QK^T / AV, costed by ZigZag),
`vector` (element-wise and reduction work on the digital core's vector unit) or `memory`
(embedding look-ups from off-chip). Views and tensor creation cost nothing and pass their
producer through; batch norm in inference is folded into the preceding layer's weights (or the
analog tile's output affine) and passes through too. Ops the table below does not know are
costed as one vector operation per element and listed in `OpGraph.unclassified`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from hetmap.errors import ModelError
from hetmap.inputs import ModelInput, batch_size_of, call_model
from hetmap.inventory import Inventory, normalize_model

NodeKind = Literal["layer", "matmul", "vector", "memory"]

# aten op name (without overload) -> vector operations per element processed
VECTOR_OPS: dict[str, float] = {
    "relu": 1, "relu_": 1, "hardtanh": 2, "hardtanh_": 2, "clamp": 2, "clamp_min": 1,
    "add": 1, "add_": 1, "sub": 1, "mul": 1, "mul_": 1, "div": 1, "neg": 1, "rsub": 1,
    "gelu": 8, "tanh": 4, "sigmoid": 4, "silu": 5, "exp": 4, "sqrt": 4, "rsqrt": 4, "pow": 2,
    "_softmax": 8, "softmax": 8, "_log_softmax": 8, "native_layer_norm": 8,
    "mean": 1, "sum": 1, "amax": 1, "max_pool2d_with_indices": 1, "max_pool2d": 1,
    "avg_pool2d": 1, "_adaptive_avg_pool2d": 1, "adaptive_avg_pool2d": 1,
    "clone": 0, "copy_": 0, "cat": 0, "stack": 0, "where": 1, "masked_fill": 1,
}
STREAMABLE = {"relu", "relu_", "hardtanh", "hardtanh_", "clamp", "clamp_min", "add", "add_",
              "sub", "mul", "mul_", "div", "neg", "rsub", "gelu", "tanh", "sigmoid", "silu",
              "native_layer_norm", "clone", "copy_"}
MATMUL_OPS = {"bmm", "mm", "matmul", "addmm", "baddbmm"}
PASS_OPS = {"view", "_unsafe_view", "reshape", "t", "transpose", "permute", "expand", "slice",
            "select", "squeeze", "unsqueeze", "split", "split_with_sizes", "detach", "alias",
            "as_strided", "flatten", "contiguous", "unbind", "_to_copy", "lift_fresh",
            "native_batch_norm", "_native_batch_norm_legit_no_training", "dropout",
            "native_dropout", "expand_as", "unsafe_view"}
CREATE_OPS = {"zeros", "empty", "ones", "full", "arange", "zeros_like", "ones_like",
              "empty_like", "full_like", "scalar_tensor", "empty_strided", "new_zeros",
              "new_ones", "new_empty", "_local_scalar_dense", "fill_", "zero_"}
MEMORY_OPS = {"embedding", "gather", "index_select", "index"}
SDPA_OPS = {"_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_attention_math",
            "scaled_dot_product_attention", "_scaled_dot_product_efficient_attention",
            "_scaled_dot_product_flash_attention"}


@dataclass(frozen=True)
class OpNode:
    """One unit of work of the inference."""

    name: str
    kind: NodeKind
    deps: tuple[int, ...]  # indices of earlier nodes whose outputs this node reads
    layer: int = -1  # inventory index (kind "layer")
    share: float = 1.0  # this call's share of the layer's per-inference work
    rows: int = 1  # streaming granularity: output rows (conv) or tokens (sequence)
    elements: int = 0  # vector: elements processed; memory: elements fetched
    ops_per_element: float = 0.0
    moved: int = 0  # vector: elements read + written from/to SRAM
    gemm: tuple[int, int, int, int] = (0, 0, 0, 0)  # matmul: (batch, M, K, N)
    streamable: bool = False  # vector op that works on data as it arrives


@dataclass(frozen=True)
class OpGraph:
    """Nodes in execution (topological) order."""

    nodes: tuple[OpNode, ...]
    unclassified: tuple[str, ...] = ()

    @classmethod
    def chain(cls, inventory: Inventory) -> OpGraph:
        """Only the mappable layers, each reading the previous one (no other op is known)."""
        return cls(tuple(OpNode(layer.name, "layer", (i - 1,) if i else (), layer=i,
                                rows=_rows(layer.output_shape))
                         for i, layer in enumerate(inventory)))

    def layer_nodes(self) -> list[int]:
        return [k for k, n in enumerate(self.nodes) if n.kind == "layer"]

    def summary(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for n in self.nodes:
            out[n.kind] = out.get(n.kind, 0) + 1
        return out


def _rows(shape: Sequence[int]) -> int:
    if len(shape) == 4:
        return max(1, int(shape[2]))
    if len(shape) == 3:
        return max(1, int(shape[1]))
    return 1


def _tensors(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, list | tuple):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


@dataclass
class _Tracer:
    layer_index: dict[str, int]
    batch: int
    nodes: list[OpNode] = field(default_factory=list)
    producer: dict[int, int] = field(default_factory=dict)  # id(tensor) -> node
    keep: list[torch.Tensor] = field(default_factory=list)  # ids stay unique while tracing
    active: list[int] = field(default_factory=list)  # stack of open layer nodes
    unclassified: set[str] = field(default_factory=set)

    def deps_of(self, tensors: list[torch.Tensor]) -> tuple[int, ...]:
        found = {self.producer[id(t)] for t in tensors if id(t) in self.producer}
        return tuple(sorted(found))

    def mark(self, tensors: list[torch.Tensor], node: int | None,
             deps: tuple[int, ...] = ()) -> None:
        for t in tensors:
            self.keep.append(t)
            if node is not None:
                self.producer[id(t)] = node
            elif len(deps) == 1:
                self.producer[id(t)] = deps[0]
            elif deps:  # a view of several producers: depend on the latest
                self.producer[id(t)] = max(deps)

    def add(self, node: OpNode, outputs: list[torch.Tensor]) -> None:
        self.nodes.append(node)
        self.mark(outputs, len(self.nodes) - 1)

    # -- module hooks ----------------------------------------------------------------------
    def enter(self, name: str, args: tuple[Any, ...]) -> None:
        if self.active:  # a mappable module inside another one: part of the outer node
            self.active.append(-1)
            return
        node = OpNode(name, "layer", self.deps_of(_tensors(args)), layer=self.layer_index[name])
        self.nodes.append(node)
        self.active.append(len(self.nodes) - 1)

    def leave(self, output: Any) -> None:
        k = self.active.pop()
        if k < 0:
            return
        outs = _tensors(output)
        node = self.nodes[k]
        if outs:
            self.nodes[k] = OpNode(node.name, node.kind, node.deps, layer=node.layer,
                                   rows=_rows(outs[0].shape))
        self.mark(outs, k)

    # -- ops -------------------------------------------------------------------------------
    def op(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        inputs = _tensors(args) + _tensors(kwargs)
        outputs = _tensors(out)
        if self.active:  # inside a mappable layer: its work is the layer's
            self.mark(outputs, self.active[-1] if self.active[-1] >= 0 else
                      next(k for k in reversed(self.active) if k >= 0))
            return
        name = func.__name__.split(".")[0]
        label = f"{name}#{len(self.nodes)}"
        if name in CREATE_OPS:
            self.mark(outputs, None)
            return
        deps = self.deps_of(inputs)
        if name in PASS_OPS:
            self.mark(outputs, None, deps)
            return
        if name in SDPA_OPS:
            self._attention(label, inputs, outputs, deps)
            return
        if name in MATMUL_OPS:
            self.add(OpNode(label, "matmul", deps, gemm=_gemm(name, inputs),
                            rows=_rows(outputs[0].shape) if outputs else 1), outputs)
            return
        out_numel = sum(t.numel() for t in outputs[:1])
        if name in MEMORY_OPS:
            self.add(OpNode(label, "memory", deps, elements=out_numel), outputs)
            return
        if name not in VECTOR_OPS:
            self.unclassified.add(name)
        in_numel = sum(t.numel() for t in inputs)
        self.add(OpNode(label, "vector", deps, elements=max(in_numel, out_numel),
                        ops_per_element=VECTOR_OPS.get(name, 1.0), moved=in_numel + out_numel,
                        rows=_rows(outputs[0].shape) if outputs else 1,
                        streamable=name in STREAMABLE), outputs)

    def _attention(self, label: str, inputs: list[torch.Tensor], outputs: list[torch.Tensor],
                   deps: tuple[int, ...]) -> None:
        """A fused attention kernel as what it computes: QK^T, softmax, AV."""
        q, k = inputs[0], inputs[1]
        *lead, s_q, d = q.shape
        s_k = k.shape[-2]
        heads = math.prod(lead)
        self.nodes.append(OpNode(f"{label}.qk", "matmul", deps, gemm=(heads, s_q, d, s_k),
                                 rows=s_q))
        scores = heads * s_q * s_k
        self.nodes.append(OpNode(f"{label}.softmax", "vector", (len(self.nodes) - 1,),
                                 elements=scores, ops_per_element=VECTOR_OPS["_softmax"],
                                 moved=2 * scores, rows=s_q))
        self.add(OpNode(f"{label}.av", "matmul", (len(self.nodes) - 1, *deps),
                        gemm=(heads, s_q, s_k, d), rows=s_q), outputs[:1])


def _gemm(name: str, inputs: list[torch.Tensor]) -> tuple[int, int, int, int]:
    a, b = (inputs[1], inputs[2]) if name in ("addmm", "baddbmm") else (inputs[0], inputs[1])
    *lead, m, k = a.shape
    n = b.shape[-1]
    return (max(1, math.prod(lead)), int(m), int(k), int(n))


class _Mode(TorchDispatchMode):
    def __init__(self, tracer: _Tracer) -> None:
        super().__init__()
        self.tracer = tracer

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self.tracer.op(func, args, kwargs, out)
        return out


def trace_graph(model: nn.Module, example_input: ModelInput, inventory: Inventory) -> OpGraph:
    """The inference of `model` on `example_input` (batch 1 recommended) as an `OpGraph`
    whose layer nodes point at `inventory`'s layers (scan the same model first)."""
    model = normalize_model(model)
    modules = dict(model.named_modules())
    missing = [n for n in inventory.names if n not in modules]
    if missing:
        raise ModelError(f"the model has no modules {missing[:3]} of the inventory; trace the "
                         "model the inventory was scanned from")
    tracer = _Tracer({n: i for i, n in enumerate(inventory.names)},
                     batch_size_of(example_input))
    handles = []
    for name in inventory.names:
        mod = modules[name]
        handles.append(mod.register_forward_pre_hook(
            lambda _m, args, _n=name: tracer.enter(_n, args)))
        handles.append(mod.register_forward_hook(lambda _m, _a, out: tracer.leave(out)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), _Mode(tracer):
            call_model(model, example_input)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    calls = [0] * len(inventory)
    for n in tracer.nodes:
        if n.kind == "layer":
            calls[n.layer] += 1
    if any(c == 0 for c in calls):
        absent = [inventory.names[i] for i, c in enumerate(calls) if c == 0]
        raise ModelError(f"layers {absent[:3]} were not called in the traced forward")
    nodes = tuple(
        OpNode(n.name, n.kind, n.deps, n.layer, 1.0 / calls[n.layer], n.rows)
        if n.kind == "layer" else _per_sample(n, tracer.batch) for n in tracer.nodes)
    return OpGraph(nodes, tuple(sorted(tracer.unclassified)))


def _per_sample(node: OpNode, batch: int) -> OpNode:
    if batch == 1:
        return node
    b, m, k, n = node.gemm
    return OpNode(node.name, node.kind, node.deps, rows=node.rows,
                  elements=node.elements // batch, ops_per_element=node.ops_per_element,
                  moved=node.moved // batch, gemm=(max(1, b // batch), m, k, n),
                  streamable=node.streamable)
