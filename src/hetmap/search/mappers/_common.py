"""What the training-based mappers share: a private working copy of the supernet (so their
retraining never touches the shared one), an Evaluator on that copy with the shared one's
settings, short hardware-aware training with early stopping, and scoring through the
search problem so that budgets, archives and fronts work as for every other strategy.

Same footing: a mapping is scored by `problem.evaluate` with an Evaluator that differs
from the search's only in the supernet (the working copy with the weights the method
trained for that mapping); objectives, cost table, BN-recalibration and validation
batches, seed and normalisation are the search's. The weights behind every scored mapping
are kept in `snapshots`, so a comparison can re-score any member the same way later.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hetmap.errors import ConfigError
from hetmap.inputs import call_model
from hetmap.mapping import WIDE, Mapping, is_width_choice
from hetmap.search.problem import SearchProblem
from hetmap.search.strategy import Strategy
from hetmap.supernet import Supernet

State = dict[str, Tensor]


def snapshot(module: nn.Module) -> State:
    """A detached copy of every parameter and buffer."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def analog_rpu_config(supernet: Supernet) -> Any:
    """The aihwkit rpu config of the supernet's analog candidates (drift evaluation)."""
    for name in supernet.layer_names:
        cfg = getattr(supernet.candidate(name, "analog"), "config", None) \
            if "analog" in supernet.candidates(name) else None
        if cfg is not None:
            return cfg.to_aihwkit()
    return supernet.options.analog.to_aihwkit()


class WorkCopy:
    """A deep copy of the problem's supernet plus what training and scoring it needs.

    train_batches: training batches drawn once and cycled, so that a run is reproducible
    and costs no loader set-up per fine-tune; val_batches: validation batches for early
    stopping (the search's Evaluator scores on its own fixed validation batches)."""

    def __init__(self, problem: SearchProblem, seed: int, batch_size: int = 64,
                 train_batches: int = 16, val_batches: int = 1) -> None:
        ev = problem.evaluator
        if ev.task is None:
            raise ConfigError("this mapper trains the supernet, so its evaluator needs a task: "
                              "Evaluator(supernet, hetmap.tasks.get_task(...))")
        self.problem = problem
        self.task = ev.task
        self.device = ev.device
        self.seed = seed
        self.sn: Supernet = copy.deepcopy(problem.supernet)
        self.sn.set_mode("single")
        self.sn.set_noise_scale(1.0)
        reference = ev.reference_accuracy() if "accuracy_drop" in problem.extra else None
        self.ev = ev.on(self.sn, reference)
        self.base = snapshot(self.sn)
        loaders = self.task.loaders(batch_size=batch_size, seed=seed)
        from hetmap.tasks import move_batch

        self.train = [move_batch(b, self.device)
                      for b in itertools.islice(loaders.train, train_batches)]
        self.val = [move_batch(b, self.device) for b in itertools.islice(loaders.val, val_batches)]
        if not self.train or not self.val:
            raise ConfigError(f"task {self.task.name!r} has an empty train or validation split")
        self.snapshots: dict[Mapping, State] = {}
        self.steps = 0  # optimizer steps taken, over all fine-tunes

    # -- weights ----------------------------------------------------------------------------
    def restore(self, state: State | None = None) -> None:
        self.sn.load_state_dict(self.base if state is None else state)

    def state(self) -> State:
        return snapshot(self.sn)

    # -- training ---------------------------------------------------------------------------
    def val_metric(self, mapping: Mapping) -> float:
        self.sn.use(mapping)
        return float(self.task.metric(self.sn, self.val, self.device))

    def finetune(self, mapping: Mapping | None, steps: int, lr: float, *, key: int = 0,
                 patience: int | None = None, eval_every: int = 5,
                 loss_fn: Any = None, extra_params: Sequence[nn.Parameter] = (),
                 extra_lr: float = 0.05, on_step: Any = None) -> int:
        """Hardware-aware training of the weights on `mapping`'s path (None: the current
        mode, e.g. the soft mixture) for up to `steps` batches; with `patience`, early
        stopping on the validation batches (checked every `eval_every` steps, best weights
        kept). `loss_fn(task_loss)` adds a regulariser; `extra_params` (e.g. the mixture's
        logits) train with Adam at `extra_lr`; `on_step(i)` is called before batch i (e.g.
        to anneal a temperature). Returns the steps taken."""
        if steps <= 0:
            return 0
        sn = self.sn
        if mapping is not None:
            sn.use(mapping)
        weights = [p for p in sn.weight_parameters() if p.requires_grad]
        opt = torch.optim.SGD(weights, lr=lr, momentum=0.9)
        arch = torch.optim.Adam(list(extra_params), lr=extra_lr) if extra_params else None
        best, best_state, waited = -np.inf, None, 0
        if patience is not None and mapping is not None:
            best, best_state = self.val_metric(mapping), self.state()
        torch.manual_seed(self.seed * 100_003 + key)
        start = (key * 7) % len(self.train)
        taken = 0
        for i in range(steps):
            if on_step is not None:
                on_step(i)
            x, y = self.train[(start + i) % len(self.train)]
            sn.train()
            out = call_model(sn, x)
            loss = self.task.loss(out, y)
            if loss_fn is not None:
                loss = loss_fn(loss)
            opt.zero_grad(set_to_none=True)
            if arch is not None:
                arch.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(weights, 5.0)
            opt.step()
            if arch is not None:
                arch.step()
            taken += 1
            if patience is not None and mapping is not None and taken % eval_every == 0:
                value = self.val_metric(mapping)
                if value > best:
                    best, best_state, waited = value, self.state(), 0
                else:
                    waited += 1
                    if waited >= patience:
                        break
        sn.eval()
        if best_state is not None and taken % eval_every and self.val_metric(mapping) >= best:
            best_state = None  # the last steps were not checked yet and did no worse
        if best_state is not None:
            self.restore(best_state)
        self.steps += taken
        return taken

    # -- scoring ----------------------------------------------------------------------------
    def score(self, mappings: Sequence[Mapping]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Score `mappings` with the current weights through the problem (budget, archive,
        history); keeps the weights of each newly scored mapping."""
        problem = self.problem
        self.ev.cache.clear()  # the weights changed since the last call
        try:
            before = problem.evaluations
            X, F, CV = problem.evaluate(problem.encode(list(mappings)), evaluator=self.ev)
        finally:
            self.sn.set_mode("single")
        state = self.state() if problem.evaluations > before else None
        for m in problem.mappings[before:]:
            self.snapshots[m] = state  # type: ignore[assignment]
        return X, F, CV


@dataclass
class MapperStats:
    """What a competing mapper did beyond its front: training steps it took, scorings that
    count against its budget outside the front (LionHeart's drift scorings), its baseline
    metric and the generations it ran (where it has them)."""

    train_steps: int = 0
    extra_evaluations: int = 0
    baseline: float | None = None
    generations: int | None = None


class MapperStrategy(Strategy):
    """A strategy that trains a private copy of the supernet and keeps, per scored mapping,
    the weights it was scored with (`snapshots`; empty before `run`)."""

    def __init__(self, batch_size: int = 64, lr: float = 0.005, train_batches: int = 16,
                 val_batches: int = 1) -> None:
        super().__init__(pop_size=1)
        for label, v in (("batch_size", batch_size), ("train_batches", train_batches),
                         ("val_batches", val_batches)):
            if v <= 0:
                raise ConfigError(f"{label} must be positive, got {v}")
        if lr <= 0:
            raise ConfigError(f"lr must be positive, got {lr}")
        self.batch_size, self.lr = batch_size, lr
        self.train_batches, self.val_batches = train_batches, val_batches
        self.work: WorkCopy | None = None
        self.stats = MapperStats()

    @property
    def snapshots(self) -> dict[Mapping, State]:
        return {} if self.work is None else self.work.snapshots

    def start(self, problem: SearchProblem, seed: int) -> WorkCopy:
        self.setup(problem, seed)
        self.work = WorkCopy(problem, seed, self.batch_size, self.train_batches,
                             self.val_batches)
        return self.work

    def analog_layers(self, problem: SearchProblem, analog: str = "analog") -> list[str]:
        return [n for n in problem.layers if analog in problem.supernet.candidates(n)]


def uniform_or(supernet: Supernet, candidate: str, fallback: Mapping) -> Mapping:
    """Every searchable layer on `candidate` where offered, else `fallback`'s choice."""
    return Mapping({n: candidate if candidate in supernet.candidates(n) else fallback[n]
                    for n in supernet.layer_names}, supernet.fingerprint)


def digital_start(supernet: Supernet, order: Sequence[str] = ("fp32", "fp16", "int8")
                  ) -> Mapping:
    """The digital baseline: for each layer the first of `order` it offers. Width choices
    are wide: the layer-wise mappers (lionheart, anchors, and odimo's starting point) map
    the adapted network, as they did before widths were searchable."""
    choices = {}
    for n in supernet.layer_names:
        offered = supernet.candidates(n)
        choices[n] = WIDE if is_width_choice(n) else \
            next((c for c in order if c in offered), offered[0])
    return Mapping(choices, supernet.fingerprint)


def anchor_genomes(problem: SearchProblem) -> np.ndarray:
    """The uniform mappings as genomes: one row per candidate offered anywhere, each layer
    on that candidate where it offers it, else on its first choice."""
    names = sorted({c for cs in problem.choices for c in cs})
    return np.array([[cs.index(c) if c in cs else 0 for cs in problem.choices]
                     for c in names], dtype=np.int64)
