"""Exact work sharing between mappings: the Evaluator's default way of scoring a batch.

Scoring a mapping is BatchNorm recalibration (cumulative average over the calibration
batches, BatchNorms in train mode) and then an eval-mode pass over the scored batches. Every
value the network computes on a batch - an activation, or a BatchNorm's recalibrated
statistics - depends only on the choices (candidates, widths) of the choice layers upstream
of it. `SharedPaths` traces the model once with torch.fx (choice layers as leaves), gives
every graph node the set of choices it depends on, and runs a group of mappings together
node by node: a node is computed once per distinct combination of its upstream choices
among the group, its BatchNorm statistics are accumulated once per such combination, and a
value is freed once its last consumer has run. Mappings that agree on a prefix of layers
(in execution order) therefore share that prefix's work, in the recalibration passes and in
the scoring pass; the recalibration passes run only the nodes that feed a BatchNorm. The
operations are the naive loop's, on the same tensors, so the scores are bit-identical;
`Evaluator(sharing=False)` is the naive loop.

Memory: a group holds at most `group_size` mappings (the Evaluator sorts its mappings by
their choices in execution order first, so neighbours share the longest prefixes); at any
time at most `group_size` copies of each live activation exist, plus the group's model
outputs on the scored batches and its BatchNorm statistics. `peak_values` records the
largest number of activations held at once, `computed` and `naive_computed` the graph nodes
run and the number the naive loop would have run.

Models torch.fx cannot trace (data-dependent control flow, keyword-only inputs of some
Hugging Face models), and models whose graph calls one BatchNorm twice or hides a
BatchNorm inside a leaf, are not shared: `SharedPaths.of` returns None and the Evaluator
scores them one by one. Nodes that may write into their inputs (`x.relu_()`, `+=`,
`inplace=True` modules) get copies of their tensor inputs, so one mapping never changes
another's cached activations.
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Mapping as MappingABC
from contextvars import ContextVar
from typing import Any

import torch
import torch.fx as fx
from torch import Tensor, nn

from hetmap.evaluation.batchnorm import BatchNorm
from hetmap.inputs import ModelInput, first_tensor
from hetmap.mapping import Mapping
from hetmap.supernet import Supernet
from hetmap.supernet.choice import ChoiceLayer
from hetmap.supernet.width import GatedChoiceLayer

_STATS = ("running_mean", "running_var", "num_batches_tracked")
_INPLACE_FUNCTIONS = {operator.iadd, operator.isub, operator.imul, operator.itruediv,
                      operator.ifloordiv, operator.imod, operator.ipow, operator.iand,
                      operator.ior, operator.ixor, operator.ilshift, operator.irshift,
                      operator.setitem}

Stats = tuple[Tensor, Tensor, Tensor]  # running_mean, running_var, num_batches_tracked

# Compute accounting (hetmap.compare's Meter): a shared run calls layers, not the model, so
# it tells these observers the sample-passes the naive loop would have made (an upper
# bound on the work done: the comparison never credits hetmap with the saving) and, while
# it runs, `running()` is true so that the layer calls themselves are not counted.
PASS_OBSERVERS: list[Callable[[int], None]] = []
_RUNNING: ContextVar[bool] = ContextVar("hetmap_shared_running", default=False)


def running() -> bool:
    """Whether a shared run is under way in this context."""
    return _RUNNING.get()


class Unshareable(Exception):
    """The model cannot be run node by node (the reason is the message)."""


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, ChoiceLayer) or super().is_leaf_module(m, qualname)


class SharedPaths:
    """A supernet's model as a graph of nodes, each knowing the choices it depends on."""

    def __init__(self, supernet: Supernet, bns: Sequence[BatchNorm],
                 group_size: int = 16) -> None:
        if group_size <= 0:
            raise ValueError(f"group_size must be positive, got {group_size}")
        self.supernet = supernet
        self.group_size = group_size
        self.peak_values = 0  # the most activations held at once by any `run`
        self.computed = 0  # graph nodes run, over all runs
        self.naive_computed = 0  # ... and how many the naive loop would have run
        model = supernet.model
        try:
            self.graph = _Tracer().trace(model)
        except Exception as exc:  # any tracing failure: score one by one
            raise Unshareable(f"torch.fx cannot trace the model: {exc}") from None
        self.modules = dict(model.named_modules())
        bn_ids = {id(m) for m in bns}
        self.nodes = list(self.graph.nodes)
        self.names = supernet.layer_names + tuple(
            n for n, _ in supernet.choice_layers() if n not in supernet.layer_names)
        column = {n: i for i, n in enumerate(self.names)}
        self.deps: dict[fx.Node, tuple[int, ...]] = {}
        self.bn_nodes: dict[fx.Node, BatchNorm] = {}
        self.choices: dict[fx.Node, list[tuple[Any, int]]] = {}  # (choice object, column)
        called_bns: set[int] = set()
        for node in self.nodes:
            deps: set[int] = set()
            for arg in node.all_input_nodes:
                deps.update(self.deps[arg])
            if node.op == "call_module":
                module = self.modules[node.target]  # type: ignore[index]
                owned = self._choices_in(module, column)
                self.choices[node] = owned
                deps.update(c for _, c in owned)
                if id(module) in bn_ids:
                    if id(module) in called_bns:
                        raise Unshareable(f"the graph calls BatchNorm {node.target!r} twice")
                    called_bns.add(id(module))
                    self.bn_nodes[node] = module  # type: ignore[assignment]
                elif module is not model and any(id(m) in bn_ids for m in module.modules()):
                    raise Unshareable(f"BatchNorm inside the traced leaf {node.target!r}")
            self.deps[node] = tuple(sorted(deps))
        if called_bns != bn_ids:
            raise Unshareable("some BatchNorms are not called by the traced graph")
        self.scoring = _Schedule(self.nodes)
        needed = set(self.bn_nodes)  # recalibration runs only what feeds a BatchNorm
        for node in reversed(self.nodes):
            if node in needed:
                needed.update(node.all_input_nodes)
        self.calibration = _Schedule([n for n in self.nodes if n in needed])
        order = [c for node in self.nodes for _, c in self.choices.get(node, ())]
        self.execution_order = list(dict.fromkeys([*order, *range(len(self.names))]))

    @classmethod
    def of(cls, supernet: Supernet, bns: Sequence[BatchNorm], group_size: int = 16
           ) -> SharedPaths | None:
        """The shared runner of `supernet`, or None where its model cannot be shared."""
        try:
            return cls(supernet, bns, group_size)
        except Unshareable:
            return None

    def _choices_in(self, module: nn.Module, column: dict[str, int]) -> list[tuple[Any, int]]:
        out = []
        for m in module.modules():
            if isinstance(m, ChoiceLayer):
                out.append((m, column[m.layer_name]))
                if isinstance(m, GatedChoiceLayer):
                    gate = m.gate
                    out.append((gate, column[gate.layer_name]))  # type: ignore[union-attr]
        return out

    # -- grouping ----------------------------------------------------------------------------
    def rows(self, mappings: Sequence[Mapping]) -> list[tuple[str, ...]]:
        """Each mapping's choice of every choice layer and width (columns: `names`)."""
        sn = self.supernet
        out = []
        for m in mappings:
            full = sn.full_choices(m)
            out.append(tuple(m[n] if n in m else full[n] for n in self.names))
        return out

    def order(self, mappings: Sequence[Mapping]) -> list[int]:
        """Indices of `mappings` sorted by their choices in execution order, so that
        consecutive mappings share the longest prefixes."""
        rows = self.rows(mappings)
        return sorted(range(len(mappings)),
                      key=lambda i: tuple(rows[i][c] for c in self.execution_order))

    def groups(self, mappings: Sequence[Mapping]) -> Iterator[list[int]]:
        """Indices of `mappings` in groups of at most `group_size`, prefix-sorted."""
        idx = self.order(mappings)
        for start in range(0, len(idx), self.group_size):
            yield idx[start:start + self.group_size]

    # -- running -----------------------------------------------------------------------------
    def recalibrate(self, mappings: Sequence[Mapping], inputs: Sequence[ModelInput]
                    ) -> dict[tuple[fx.Node, tuple[str, ...]], Stats]:
        """BatchNorm statistics of every mapping as `recalibrate_batchnorm` computes them,
        keyed by (BatchNorm node, upstream choices): one cumulative average per distinct
        combination of upstream choices."""
        stats: dict[tuple[fx.Node, tuple[str, ...]], Stats] = {}
        rows = self.rows(mappings)
        bns = list(self.bn_nodes.values())
        momenta = [m.momentum for m in bns]
        self.supernet.model.eval()
        for m in bns:
            m.momentum = None
            m.train()
        try:
            for x in inputs:
                self._run(self.calibration, rows, x, stats, train_bn=True)
        finally:
            for m, momentum in zip(bns, momenta):
                m.eval()
                m.momentum = momentum
        return stats

    def outputs(self, mappings: Sequence[Mapping], inputs: Sequence[ModelInput],
                stats: dict[tuple[fx.Node, tuple[str, ...]], Stats]) -> list[list[Any]]:
        """Eval-mode model outputs of each mapping on each input, BatchNorms on `stats`
        (nothing recalibrated where `stats` lacks them: the module's own statistics)."""
        rows = self.rows(mappings)
        per_input = [self._run(self.scoring, rows, x, stats, train_bn=False)
                     for x in inputs]
        return [[out[i] for out in per_input] for i in range(len(mappings))]

    def load(self, mapping: Mapping, stats: dict[tuple[fx.Node, tuple[str, ...]], Stats]
             ) -> None:
        """Copy `mapping`'s statistics from `stats` into the BatchNorm modules."""
        row = self.rows([mapping])[0]
        for node, bn in self.bn_nodes.items():
            key = (node, tuple(row[c] for c in self.deps[node]))
            if key in stats:
                for name, value in zip(_STATS, stats[key]):
                    getattr(bn, name).copy_(value)

    def _run(self, schedule: _Schedule, rows: Sequence[tuple[str, ...]], x: ModelInput,
             stats: dict[tuple[fx.Node, tuple[str, ...]], Stats], train_bn: bool) -> list[Any]:
        token = _RUNNING.set(True)
        try:
            out = self._run_nodes(schedule, rows, x, stats, train_bn)
        finally:
            _RUNNING.reset(token)
        first = first_tensor(x)
        samples = (int(first.shape[0]) if first is not None and first.dim() else 1) * len(rows)
        for observe in PASS_OBSERVERS:
            observe(samples)
        return out

    @torch.no_grad()
    def _run_nodes(self, schedule: _Schedule, rows: Sequence[tuple[str, ...]], x: ModelInput,
                   stats: dict[tuple[fx.Node, tuple[str, ...]], Stats], train_bn: bool
                   ) -> list[Any]:
        env: dict[fx.Node, dict[tuple[str, ...], Any]] = {}
        placeholders = iter(_positional(x))
        outputs: list[Any] = [None] * len(rows)
        held = 0
        for node in schedule.nodes:
            deps = self.deps[node]
            if node.op == "placeholder":
                env[node] = {(): _placeholder(node, x, placeholders)}
            elif node.op == "get_attr":
                env[node] = {(): _attr(self.supernet.model, str(node.target))}
            elif node.op == "output":
                for i, row in enumerate(rows):
                    outputs[i] = fx.node.map_arg(node.args[0], lambda n, r=row: _value(
                        env, self.deps, n, r))
            else:
                values: dict[tuple[str, ...], Any] = {}
                for row in rows:
                    key = tuple(row[c] for c in deps)
                    if key not in values:
                        values[key] = self._call(node, row, key, env, stats, train_bn)
                env[node] = values
                held += len(values)
                self.computed += len(values)
                self.naive_computed += len(rows)
            for arg in schedule.last_use[node]:
                held -= len(env[arg]) if arg.op not in ("placeholder", "get_attr") else 0
                del env[arg]
            self.peak_values = max(self.peak_values, held)
        return outputs

    def _call(self, node: fx.Node, row: tuple[str, ...], key: tuple[str, ...],
              env: dict[fx.Node, dict[tuple[str, ...], Any]],
              stats: dict[tuple[fx.Node, tuple[str, ...]], Stats], train_bn: bool) -> Any:
        copy = _may_write_inputs(node, self.modules)
        args, kwargs = fx.node.map_arg((node.args, node.kwargs), lambda n: _value(
            env, self.deps, n, row, copy))
        if node.op == "call_function":
            return node.target(*args, **kwargs)  # type: ignore[operator]
        if node.op == "call_method":
            self_obj, *rest = args
            return getattr(self_obj, str(node.target))(*rest, **kwargs)
        module = self.modules[str(node.target)]
        for choice, column in self.choices[node]:
            choice.active, choice.mode = row[column], "single"
        bn = self.bn_nodes.get(node)
        if bn is None:
            return module(*args, **kwargs)
        entry = stats.get((node, key))
        if entry is None:
            if not train_bn:
                return module(*args, **kwargs)
            entry = (torch.zeros_like(bn.running_mean), torch.ones_like(bn.running_var),
                     torch.zeros_like(bn.num_batches_tracked))
            stats[(node, key)] = entry
        with _statistics(bn, entry):
            return module(*args, **kwargs)


class _Schedule:
    """Graph nodes to run, in order, and the values each one is the last to read."""

    def __init__(self, nodes: Sequence[fx.Node]) -> None:
        self.nodes = list(nodes)
        self.last_use: dict[fx.Node, list[fx.Node]] = {n: [] for n in self.nodes}
        seen: set[fx.Node] = set()
        for node in reversed(self.nodes):
            for arg in node.all_input_nodes:
                if arg not in seen:
                    seen.add(arg)
                    self.last_use[node].append(arg)


def _value(env: dict[fx.Node, dict[tuple[str, ...], Any]], deps: dict[fx.Node, tuple[int, ...]],
           node: fx.Node, row: tuple[str, ...], copy: bool = False) -> Any:
    value = env[node][tuple(row[c] for c in deps[node])]
    return value.clone() if copy and isinstance(value, Tensor) else value


def _may_write_inputs(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_function":
        return node.target in _INPLACE_FUNCTIONS or bool(node.kwargs.get("inplace"))
    if node.op == "call_method":
        return str(node.target).endswith("_") and not str(node.target).startswith("__")
    if node.op == "call_module":
        return bool(getattr(modules[str(node.target)], "inplace", False))
    return False


def _positional(x: ModelInput) -> list[Any]:
    if isinstance(x, MappingABC):
        return []
    return list(x) if isinstance(x, list | tuple) else [x]


def _placeholder(node: fx.Node, x: ModelInput, positional: Iterator[Any]) -> Any:
    if isinstance(x, MappingABC) and node.target in x:
        return x[node.target]  # type: ignore[index]
    if not isinstance(x, MappingABC):
        value = next(positional, _MISSING)
        if value is not _MISSING:
            return value
    if node.args:
        return node.args[0]  # the parameter's default
    raise TypeError(f"the model input gives no value for {node.target!r}")


_MISSING = object()


def _attr(model: nn.Module, target: str) -> Any:
    obj: Any = model
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


@contextlib.contextmanager
def _statistics(bn: BatchNorm, entry: Stats) -> Iterator[None]:
    """Run `bn` on `entry`'s statistics tensors (updated in place in train mode)."""
    saved = [bn._buffers[name] for name in _STATS]
    for name, value in zip(_STATS, entry):
        bn._buffers[name] = value
    try:
        yield
    finally:
        for name, value in zip(_STATS, saved):
            bn._buffers[name] = value


class Replay(nn.Module):
    """Stands in for the model inside a task's metric: returns the outputs computed for
    each input in turn (checked by identity, so the metric scores what was computed)."""

    def __init__(self, inputs: Sequence[ModelInput], outputs: Sequence[Any]) -> None:
        super().__init__()
        self._inputs = [first_tensor(x) for x in inputs]
        self._outputs = list(outputs)
        self._next = 0

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        i = self._next
        x = first_tensor(kwargs if kwargs else args)
        if i >= len(self._outputs) or x is not self._inputs[i]:
            raise ReplayMismatch("the metric called the model on other inputs than the "
                                 "scored batches, in another order")
        self._next += 1
        return self._outputs[i]


class ReplayMismatch(Exception):
    """The task's metric does not call the model once per scored batch, in order."""
