"""Find widenable groups: layers whose output channels feed only other layers' inputs.

Widening the inner dimension of a group (producer out-channels == consumer in-channels) is
safe only when nothing else reads those channels: a residual add, a concat, a reshape into
heads or a norm across channels would tie them to another path. Groups are found with
torch.fx where the model traces (on the largest traceable submodules otherwise), plus
structural patterns for attention heads and transformer FFNs that fx cannot trace. Every
mappable layer that does not start a group gets a reason, so a user can see why.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from hetmap.inputs import ModelInput
from hetmap.inventory import SplitMultiheadAttention
from hetmap.inventory.scan import run_example
from hetmap.layers import is_mappable


@dataclass(frozen=True)
class WidenGroup:
    """Producers whose output channels (the inner width) only consumers read.

    `middles` are channel-wise modules with per-channel state on the way (BatchNorm,
    depthwise conv, per-channel PReLU): they are widened with the producers. For attention,
    the inner width is `heads` x head_dim and `owner` is the module holding the head sizes.
    """

    kind: str  # "conv" | "linear" | "attention"
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    middles: tuple[str, ...]
    width: int
    found_by: str
    heads: int = 1
    owner: str = ""
    depthwise: bool = False  # a depthwise conv is among the middles
    fused: int = 1  # producer outputs per unit of width (3: GPT-2's fused q/k/v c_attn)

    @property
    def layers(self) -> tuple[str, ...]:
        return self.producers + self.middles + self.consumers


@dataclass(frozen=True)
class Skipped:
    layer: str
    reason: str


# -- what may lie between a producer and its consumers ----------------------------------------

_ELEMENTWISE_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.LeakyReLU, nn.ELU, nn.SELU,
    nn.CELU, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Mish, nn.Softplus, nn.Identity,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
_POOL_MODULES: tuple[type[nn.Module], ...] = (
    nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)
_BATCHNORMS: tuple[type[nn.Module], ...] = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_CROSS_CHANNEL: tuple[type[nn.Module], ...] = (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm,
                                              nn.Softmax, nn.LogSoftmax)
_ELEMENTWISE_FUNCTIONS: set[Callable[..., Any]] = {
    torch.relu, F.relu, F.relu6, F.gelu, F.silu, torch.sigmoid, F.sigmoid, torch.tanh,
    F.tanh, F.leaky_relu, F.elu, F.hardswish, F.hardsigmoid, F.mish, F.softplus, F.dropout,
    torch.nn.functional.hardtanh}
_ELEMENTWISE_METHODS = {"relu", "relu_", "sigmoid", "tanh", "contiguous", "clone", "float",
                        "gelu"}
_SCALAR_OPS = {operator.mul, operator.truediv, torch.mul, torch.div}
_ADDS = (operator.add, torch.add, operator.iadd)
_BACKWARD_FUNCTIONS = _ELEMENTWISE_FUNCTIONS | _SCALAR_OPS  # scalars: see _origins' args
_BACKWARD_METHODS = _ELEMENTWISE_METHODS | {"mul", "div"}


def is_activation(module: nn.Module) -> bool:
    """torch.nn activations, dropout, identity, and Hugging Face's activation modules
    (`transformers.activations`: GELU variants written out with pow/tanh)."""
    return isinstance(module, _ELEMENTWISE_MODULES) or (
        type(module).__module__ == "transformers.activations"
        and not any(True for _ in module.parameters()))


def is_dense(module: nn.Module) -> bool:
    """A mappable layer that mixes all input channels (so it can produce or consume);
    transposed convolutions are not widened (their weight is laid out in x out)."""
    return is_mappable(module) and getattr(module, "groups", 1) == 1 and not isinstance(
        module, nn.modules.conv._ConvTransposeNd)


def is_depthwise(module: nn.Module) -> bool:
    return (isinstance(module, nn.Conv1d | nn.Conv2d) and module.groups > 1
            and module.groups == module.in_channels == module.out_channels)


def kind_of(module: nn.Module) -> str:
    return "linear" if isinstance(module, nn.Linear) else "conv"


# -- shapes of every module call, from one real forward ---------------------------------------

def record_shapes(model: nn.Module, example_input: ModelInput
                  ) -> tuple[dict[str, list[tuple]], Any]:
    """Output shape of every call of every module (fx nodes carry no shapes), and the
    model's output (eval mode)."""
    shapes: dict[str, list[tuple]] = {}
    handles = []
    for name, module in model.named_modules():
        def hook(_m: nn.Module, _a: Any, out: Any, name: str = name) -> None:
            if isinstance(out, torch.Tensor):
                shapes.setdefault(name, []).append(tuple(out.shape))
        handles.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            output = run_example(model, example_input)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return shapes, output


# -- fx analysis -------------------------------------------------------------------------------

@dataclass
class _Ctx:
    prefix: str
    modules: dict[str, nn.Module]
    calls: Counter
    shapes: dict[str, list[tuple]]
    residual: bool = False  # widen channels joined by adds as one group (a residual stream)

    def full(self, target: str) -> str:
        return f"{self.prefix}.{target}" if self.prefix else target

    def out_shape(self, target: str) -> tuple | None:
        seen = set(self.shapes.get(self.full(target), []))
        return next(iter(seen)) if len(seen) == 1 else None


@dataclass(frozen=True)
class _Flow:
    """Where the widened channels are in a tensor: its axis and (if known) its shape."""

    axis: int
    shape: tuple | None


class _Stop(Exception):
    """Not widenable; `soft` when the verdict is only "leaves this traced submodule"."""

    def __init__(self, reason: str, soft: bool = False) -> None:
        super().__init__(reason)
        self.soft = soft


def _only_node_arg(user: fx.Node, node: fx.Node) -> bool:
    nodes = [a for a in (*user.args, *user.kwargs.values()) if isinstance(a, fx.Node)]
    return nodes == [node]


def _step(user: fx.Node, node: fx.Node, flow: _Flow, ctx: _Ctx
          ) -> tuple[str, _Flow | None, str | None]:
    """Classify one use of the widened tensor: ("consumer"|"pass", flow, middle) or _Stop."""
    if user.op == "output":
        if ctx.prefix:
            raise _Stop(f"its channels leave {ctx.prefix}, whose caller torch.fx could not "
                        "trace", soft=True)
        raise _Stop("its channels reach the model output")
    if user.op == "call_module":
        target = str(user.target)
        module = ctx.modules[target]
        name = ctx.full(target)
        if not _only_node_arg(user, node):
            raise _Stop(f"{name} takes it together with other tensors")
        if is_dense(module):
            want = flow.axis == 1 if not isinstance(module, nn.Linear) else (
                flow.shape is not None and flow.axis == len(flow.shape) - 1)
            if not want:
                raise _Stop(f"{name} does not read its channels as input features")
            return "consumer", None, name
        if is_depthwise(module) or isinstance(module, _BATCHNORMS) or (
                isinstance(module, nn.PReLU) and module.num_parameters > 1):
            if flow.axis != 1:
                raise _Stop(f"{name} acts on another axis than the widened channels")
            return "pass", _Flow(1, ctx.out_shape(target)), name
        if is_activation(module) or isinstance(module, nn.PReLU):
            return "pass", flow, None
        if isinstance(module, _POOL_MODULES):
            if flow.axis != 1:
                raise _Stop(f"{name} pools another axis than the widened channels")
            return "pass", _Flow(1, ctx.out_shape(target)), None
        if isinstance(module, nn.Flatten):
            return "pass", _flatten(flow, module.start_dim, module.end_dim, name), None
        if isinstance(module, _CROSS_CHANNEL):
            raise _Stop(f"{name} ({type(module).__name__}) mixes channels, so new ones would "
                        "change the existing ones")
        if isinstance(module, nn.modules.conv._ConvTransposeNd):
            raise _Stop(f"{name} is a transposed convolution (not widened)")
        if is_mappable(module):
            raise _Stop(f"{name} is a grouped convolution")
        raise _Stop(f"it reaches {name} ({type(module).__name__}), not known to be channel-wise")
    if user.op == "call_function":
        fn = user.target
        if fn in _ELEMENTWISE_FUNCTIONS and _only_node_arg(user, node):
            return "pass", flow, None
        if fn in _SCALAR_OPS and _only_node_arg(user, node):
            return "pass", flow, None
        if fn is torch.flatten and _only_node_arg(user, node):
            start = user.args[1] if len(user.args) > 1 else user.kwargs.get("start_dim", 0)
            end = user.args[2] if len(user.args) > 2 else user.kwargs.get("end_dim", -1)
            return "pass", _flatten(flow, int(start), int(end), "torch.flatten"), None
        label = getattr(fn, "__name__", str(fn))
        if fn in _ADDS and ctx.residual and _is_join(user):
            return "join", flow, None
        if fn in (*_ADDS, torch.cat, torch.stack):
            raise _Stop(f"its channels are combined with another path by {label} "
                        "(a residual or skip connection ties their width)")
        raise _Stop(f"it reaches {label}(), not known to be channel-wise")
    if user.op == "call_method":
        method = str(user.target)
        if method in _ELEMENTWISE_METHODS and _only_node_arg(user, node):
            return "pass", flow, None
        if method in ("mul", "div") and _only_node_arg(user, node):
            return "pass", flow, None
        if method == "flatten" and _only_node_arg(user, node):
            start = user.args[1] if len(user.args) > 1 else user.kwargs.get("start_dim", 0)
            end = user.args[2] if len(user.args) > 2 else user.kwargs.get("end_dim", -1)
            return "pass", _flatten(flow, int(start), int(end), ".flatten()"), None
        if method in ("add", "add_") and ctx.residual and _is_join(user):
            return "join", flow, None
        if method in ("add", "add_"):
            raise _Stop("its channels are added to another path (a residual ties their width)")
        raise _Stop(f"it reaches .{method}(), not known to be channel-wise")
    raise _Stop(f"it reaches a {user.op} node")


def _flatten(flow: _Flow, start: int, end: int, label: str) -> _Flow:
    """Flattening keeps channels addressable only if every other flattened dim has size 1."""
    if flow.shape is None:
        raise _Stop(f"{label}: the shape before it is unknown")
    ndim = len(flow.shape)
    start, end = start % ndim, end % ndim
    if not start <= flow.axis <= end:
        return _Flow(flow.axis if flow.axis < start else flow.axis - (end - start), None)
    if any(flow.shape[d] != 1 for d in range(start, end + 1) if d != flow.axis):
        raise _Stop(f"{label} merges the channels with other dims")
    shape = (*flow.shape[:start], flow.shape[flow.axis], *flow.shape[end + 1:])
    return _Flow(start, shape)


def _is_join(node: fx.Node) -> bool:
    """x + y of two tensors, nothing else (no alpha, no scalar)."""
    return len(node.args) == 2 and not node.kwargs and \
        all(isinstance(a, fx.Node) for a in node.args)


def _start(node: fx.Node, ctx: _Ctx) -> _Flow:
    target = str(node.target)
    shape = ctx.out_shape(target)
    if shape is None:
        raise _Stop(f"the output shape of {ctx.full(target)} is unknown (never called, or "
                    "called with several shapes)")
    return _Flow(len(shape) - 1 if isinstance(ctx.modules[target], nn.Linear) else 1, shape)


def _origins(node: fx.Node, ctx: _Ctx, space: set[fx.Node], producers: list[fx.Node],
             middles: list[str]) -> None:
    """Walk back from a tensor added into the widened channels to the layers producing it."""
    stack = [node]
    while stack:
        current = stack.pop()
        if current in space:
            continue
        space.add(current)
        if current.op == "call_module":
            module = ctx.modules[str(current.target)]
            if is_dense(module):
                producers.append(current)
                continue
            if is_depthwise(module) or isinstance(module, _BATCHNORMS) or (
                    isinstance(module, nn.PReLU) and module.num_parameters > 1):
                middles.append(ctx.full(str(current.target)))
            elif not is_activation(module) and not isinstance(module, nn.PReLU):
                raise _Stop(f"the residual stream also comes from {ctx.full(str(current.target))}"
                            f" ({type(module).__name__}), which is not channel-wise")
        elif _is_join(current) and (current.target in _ADDS if current.op == "call_function"
                                    else current.target in ("add", "add_")):
            pass
        elif not ((current.op == "call_function" and current.target in _BACKWARD_FUNCTIONS)
                  or (current.op == "call_method" and current.target in _BACKWARD_METHODS)):
            where = "the model input" if current.op == "placeholder" else str(current.target)
            raise _Stop(f"the residual stream also comes from {where}")
        stack += [a for a in current.args if isinstance(a, fx.Node)]


def _follow(node: fx.Node, ctx: _Ctx) -> tuple[list[str], list[str], list[str]]:
    """Producers, consumers and middles of the channels a producer node writes; with
    `ctx.residual`, channels added together form one group whose every writer is a producer.
    Raises _Stop when they cannot be widened."""
    producers: list[fx.Node] = [node]
    consumers: list[str] = []
    middles: list[str] = []
    space: set[fx.Node] = {node}
    stack = [(node, _start(node, ctx))]
    walked: set[fx.Node] = set()
    while stack:
        current, flow = stack.pop()
        if current in walked:
            continue  # a join reached from its second operand
        walked.add(current)
        for user in current.users:
            what, new_flow, name = _step(user, current, flow, ctx)
            if what == "consumer":
                consumers.append(str(name))
                continue
            if what == "join":
                found = len(producers)
                space.add(current)
                for arg in user.args:
                    _origins(arg, ctx, space, producers, middles)
                stack += [(p, _start(p, ctx)) for p in producers[found:]]
            elif name is not None:
                middles.append(name)
            space.add(user)
            assert new_flow is not None
            stack.append((user, new_flow))
    if not consumers:
        raise _Stop("no layer consumes its channels")
    return [ctx.full(str(p.target)) for p in producers], consumers, list(dict.fromkeys(middles))


@dataclass
class _FxResult:
    groups: list[WidenGroup]
    skipped: list[Skipped]
    decided: set[str]  # producers fx gave a final verdict on (widenable or not)
    opaque: list[str]  # submodules fx could not trace through

    def add(self, other: _FxResult) -> None:
        self.groups += other.groups
        self.skipped += other.skipped
        self.decided |= other.decided
        self.opaque += other.opaque


def _groups_of_graph(gm: fx.GraphModule, prefix: str, shapes: dict[str, list[tuple]],
                     residual: bool) -> _FxResult:
    modules = dict(gm.named_modules())
    ctx = _Ctx(prefix, modules, Counter(), shapes, residual)
    ctx.calls.update(ctx.full(str(n.target)) for n in gm.graph.nodes if n.op == "call_module")
    result = _FxResult([], [], set(), [])
    seen: set[str] = set()
    claimed: set[str] = set()
    for node in gm.graph.nodes:
        if node.op != "call_module" or str(node.target) in seen:
            continue
        seen.add(str(node.target))
        module = modules[str(node.target)]
        if not is_dense(module):
            continue  # depthwise/grouped: widened as a middle of another group, if at all
        name = ctx.full(str(node.target))
        if name in claimed:
            continue  # a writer of a residual stream already grouped
        try:
            producers, consumers, middles = _follow(node, ctx)
            shared = [n for n in [*producers, *consumers, *middles] if ctx.calls[n] > 1]
            if shared:
                raise _Stop(f"{shared[0]} is called more than once (shared weights)")
        except _Stop as stop:
            result.skipped.append(Skipped(name, str(stop)))
            if not stop.soft:
                result.decided.add(name)
            continue
        claimed.update(producers)
        result.decided.update(producers)
        width = module.out_features if isinstance(module, nn.Linear) else module.out_channels
        dw = any(is_depthwise(modules[m[len(prefix) + 1:] if prefix else m]) for m in middles)
        result.groups.append(WidenGroup(
            kind_of(module), tuple(producers), tuple(consumers), tuple(middles), width,
            "fx:residual" if len(producers) > 1 else "fx", depthwise=dw))
    return result


class _Tracer(fx.Tracer):
    """Traces through everything but `opaque` submodules, which stay single call nodes."""

    def __init__(self, opaque: set[int]) -> None:
        super().__init__()
        self.opaque = opaque

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return id(m) in self.opaque or is_activation(m) or \
            super().is_leaf_module(m, module_qualified_name)


def _trace(model: nn.Module, opaque: set[int]) -> fx.GraphModule | None:
    try:
        return fx.GraphModule(model, _Tracer(opaque).trace(model))
    except Exception:  # any tracing failure only means: look closer
        return None


def _fx_groups(model: nn.Module, prefix: str, shapes: dict[str, list[tuple]],
               residual: bool) -> _FxResult:
    """fx on `model`; where it fails, children that do not trace become opaque call nodes
    (analysed on their own) and the model is traced again around them."""
    gm = _trace(model, set())
    if gm is not None:
        return _groups_of_graph(gm, prefix, shapes, residual)
    inner: dict[str, _FxResult] = {}
    opaque: set[int] = set()
    for child_name, child in model.named_children():
        if is_mappable(child):
            continue
        full = f"{prefix}.{child_name}" if prefix else child_name
        inner[child_name] = _fx_groups(child, full, shapes, residual)
        if full in inner[child_name].opaque:
            opaque.add(id(child))
    gm = _trace(model, opaque) if opaque else None
    if gm is None:  # the model's own forward does not trace: keep what the children gave
        result = _FxResult([], [], set(), [prefix or "<model>"])
        for child_result in inner.values():
            result.add(child_result)
        return result
    result = _groups_of_graph(gm, prefix, shapes, residual)
    for child_name, child in model.named_children():
        if id(child) in opaque:
            result.add(inner[child_name])
    return result


# -- structural patterns (for what fx cannot trace) --------------------------------------------

def _linear(module: nn.Module, attr: str) -> nn.Linear | None:
    child = getattr(module, attr, None)
    return child if isinstance(child, nn.Linear) else None


# Attention modules owning all four projections: (q, k, v, out, heads attribute, head size
# attribute, pattern name). The head size attribute is what their forward reshapes with.
_OWNED_ATTENTION = (
    ("q_lin", "k_lin", "v_lin", "out_lin", "n_heads", "attention_head_size", "distilbert"),
    ("q_proj", "k_proj", "v_proj", "o_proj", "num_attention_heads", "head_dim", "q/k/v/o_proj"),
    ("q", "k", "v", "o", "n_heads", "key_value_proj_dim", "t5"),
)


def _owned_attention(name: str, module: nn.Module) -> WidenGroup | None:
    """DistilBERT, ViT / Llama-style (q/k/v/o_proj) and T5 attention: one module holds the
    four projections and the head sizes."""
    for q_name, k_name, v_name, o_name, heads_attr, size_attr, label in _OWNED_ATTENTION:
        q, k, v, o = (_linear(module, a) for a in (q_name, k_name, v_name, o_name))
        heads, size = getattr(module, heads_attr, None), getattr(module, size_attr, None)
        if q is None or k is None or v is None or o is None or not isinstance(heads, int) \
                or not isinstance(size, int):
            continue
        width = heads * size
        if not q.out_features == k.out_features == v.out_features == o.in_features == width:
            continue
        p = f"{name}." if name else ""
        return WidenGroup("attention", (p + q_name, p + k_name, p + v_name), (p + o_name,), (),
                          width, f"pattern:{label}-attention", heads, name)
    return None


def _fused_attention(name: str, module: nn.Module) -> WidenGroup | None:
    """GPT-2 self-attention: one c_attn projection writes q, k and v (split at `split_size`)
    and c_proj reads the merged heads."""
    qkv, out = _linear(module, "c_attn"), _linear(module, "c_proj")
    heads, size = getattr(module, "num_heads", None), getattr(module, "head_dim", None)
    if qkv is None or out is None or not isinstance(heads, int) or not isinstance(size, int) \
            or getattr(module, "is_cross_attention", False):
        return None
    width = heads * size
    if getattr(module, "split_size", None) != width or qkv.out_features != 3 * width or \
            out.in_features != width:
        return None
    p = f"{name}." if name else ""
    return WidenGroup("attention", (p + "c_attn",), (p + "c_proj",), (), width,
                      "pattern:gpt2-attention", heads, name, fused=3)


def _attention_groups(model: nn.Module) -> Iterator[WidenGroup]:
    """Self-attention: hetmap's SplitMultiheadAttention (q/k/v_proj -> out_proj), Hugging
    Face BERT-style blocks (query/key/value -> sibling output.dense), and attention modules
    owning q/k/v/out (DistilBERT, ViT, T5; see _OWNED_ATTENTION) or a fused q/k/v (GPT-2)."""
    for name, module in model.named_modules():
        if isinstance(module, SplitMultiheadAttention):
            p = f"{name}." if name else ""
            yield WidenGroup("attention", (f"{p}q_proj", f"{p}k_proj", f"{p}v_proj"),
                             (f"{p}out_proj",), (), module.embed_dim, "pattern:split-mha",
                             module.num_heads, name)
            continue
        owned = _owned_attention(name, module) or _fused_attention(name, module)
        if owned is not None:
            yield owned
            continue
        inner = getattr(module, "self", None)
        out = getattr(getattr(module, "output", None), "dense", None)
        if inner is None or not isinstance(out, nn.Linear):
            continue
        q, k, v = (_linear(inner, a) for a in ("query", "key", "value"))
        heads = getattr(inner, "num_attention_heads", None)
        head_dim = getattr(inner, "attention_head_size", None)
        if q is None or k is None or v is None or not isinstance(heads, int) \
                or not isinstance(head_dim, int):
            continue
        if getattr(inner, "position_embedding_type", "absolute") != "absolute":
            continue  # relative position embeddings have head_dim-sized tables
        width = heads * head_dim
        if not q.out_features == k.out_features == v.out_features == out.in_features == width:
            continue
        p = f"{name}.self"
        yield WidenGroup("attention", (f"{p}.query", f"{p}.key", f"{p}.value"),
                         (f"{name}.output.dense",), (), width, "pattern:bert-attention",
                         heads, p)


_FFN_PATTERNS = (("intermediate.dense", "output.dense"), ("fc1", "fc2"), ("c_fc", "c_proj"),
                 ("lin1", "lin2"), ("wi", "wo"), ("dense_h_to_4h", "dense_4h_to_h"))


def _ffn_groups(model: nn.Module) -> Iterator[WidenGroup]:
    """Transformer FFN up -> activation -> down projections, matched by attribute names."""
    for name, module in model.named_modules():
        for up_path, down_path in _FFN_PATTERNS:
            up, down = _get(module, up_path), _get(module, down_path)
            if not isinstance(up, nn.Linear) or not isinstance(down, nn.Linear) or \
                    up.out_features != down.in_features:
                continue
            if any(isinstance(m, _CROSS_CHANNEL + _BATCHNORMS) and
                   _norm_size(m) == up.out_features for m in module.modules()):
                continue  # a norm over the inner width sits somewhere in between
            p = f"{name}." if name else ""
            yield WidenGroup("linear", (p + up_path,), (p + down_path,), (), up.out_features,
                             "pattern:ffn")


def _get(module: nn.Module, path: str) -> nn.Module | None:
    for part in path.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def _norm_size(module: nn.Module) -> int:
    shape = getattr(module, "normalized_shape", None)
    if shape:
        return int(shape[-1])
    return int(getattr(module, "num_features", getattr(module, "num_channels", -1)))


# -- all together ------------------------------------------------------------------------------

def _untied(model: nn.Module, groups: list[WidenGroup]
            ) -> tuple[list[WidenGroup], list[Skipped]]:
    """Groups none of whose weights is shared with another module (widening would untie)."""
    owners = Counter(id(p) for m in model.modules() for p in m.parameters(recurse=False))
    modules = dict(model.named_modules())
    keep, skipped = [], []
    for group in groups:
        tied = [n for n in group.layers
                if any(owners[id(p)] > 1 for p in modules[n].parameters(recurse=False))]
        if tied:
            skipped.append(Skipped(group.producers[0], f"{tied[0]} shares its weights with "
                                                       "another module"))
        else:
            keep.append(group)
    return keep, skipped


def find_groups(model: nn.Module, example_input: ModelInput, residual: bool = False
                ) -> tuple[list[WidenGroup], list[Skipped], list[str]]:
    """Widenable groups, skipped layers with reasons, and submodules fx could not trace.

    fx's verdict on a layer stands, except that known attention blocks (whose head
    reshapes fx cannot see through) are matched by pattern; FFN patterns only cover layers
    whose fate no traced graph decided (a submodule's output leaves its graph). With
    `residual`, channels joined by adds (a residual stream: every layer writing it and
    every layer reading it) form one group instead of blocking each other.
    """
    return groups_from_shapes(model, record_shapes(model, example_input)[0], residual)


def groups_from_shapes(model: nn.Module, shapes: dict[str, list[tuple]],
                       residual: bool = False
                       ) -> tuple[list[WidenGroup], list[Skipped], list[str]]:
    """`find_groups` with the shapes of a forward already recorded."""
    fx_result = _fx_groups(model, "", shapes, residual)
    groups = list(fx_result.groups)
    used: set[str] = {n for g in groups for n in g.layers}
    patterns = list(_attention_groups(model))
    patterns += [g for g in _ffn_groups(model) if not fx_result.decided.intersection(g.producers)]
    for group in patterns:
        if group.layers and all(n in shapes for n in group.layers) and \
                not used.intersection(group.layers):
            groups.append(group)
            used.update(group.layers)
    groups, tied = _untied(model, groups)
    producers = {p for g in groups for p in g.producers}
    skipped = tied + [s for s in fx_result.skipped if s.layer not in producers]
    covered = producers | {s.layer for s in skipped}
    for name, module in model.named_modules():
        if is_dense(module) and name in shapes and name not in covered:
            reason = "its channels reach an attention head reshape" if name in used else \
                "no pattern matched it (its submodule does not trace with torch.fx)"
            skipped.append(Skipped(name, reason))
    return groups, skipped, fx_result.opaque
