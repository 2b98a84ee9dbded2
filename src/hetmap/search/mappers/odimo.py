"""`odimo`: differentiable mapping after Risso et al. (arXiv 2306.05060), in its three
phases. Warm-up: the weights train for `warmup_steps` on the softmax mixture of every
layer's candidates (`set_mode("soft")`) with the mixture logits frozen at uniform, once,
shared by every lambda. Search: weights and logits train together on task loss + lambda x
regulariser, the softmax temperature annealed exponentially from `tau` to `tau_end`; the
regulariser is the expected cost under the softmax probabilities: the cost table's
per-layer energy or latency rows (normalised by the dearest candidate of each layer,
summed), or the expected share of MACs left digital. Final training: each layer takes its
most probable candidate and the discrete network is fine-tuned (`finetune_steps`) and
scored. One lambda gives one mapping; the strategy sweeps several, each from the warmed-up
weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from hetmap.errors import ConfigError
from hetmap.mapping import Mapping, is_width_choice
from hetmap.search.mappers._common import MapperStrategy, WorkCopy
from hetmap.search.problem import SearchProblem
from hetmap.search.strategy import register_strategy
from hetmap.supernet import Supernet

COSTS = ("auto", "energy_j", "latency_s", "digital_share")


def cost_rows(supernet: Supernet, cost: str, cost_table: object = None) -> list[Tensor]:
    """Per searchable layer, the cost of each candidate (in the layer's candidate order),
    scaled so that the all-dearest mapping costs 1 (layers at their measured, wide shape).
    Width choices get zero rows: their soft mixture learns from the task loss alone."""
    if cost not in COSTS:
        raise ConfigError(f"cost must be one of {', '.join(COSTS)}, got {cost!r}")
    if cost == "auto":
        cost = "energy_j" if cost_table is not None else "digital_share"
    rows = []
    if cost == "digital_share":
        inv = supernet.inventory
        total = float(sum(info.macs for info in inv)) or 1.0
        for n in supernet.layer_names:
            rows.append([0.0 if is_width_choice(n) or supernet.candidate(n, c).target !=
                         "digital" else inv[n].macs / total for c in supernet.candidates(n)])
    else:
        if cost_table is None:
            raise ConfigError(f"the {cost!r} regulariser needs a cost table: build the "
                              "Evaluator with cost_table=hetmap.hardware.table_for(...)")
        values = cost_table.energy if cost == "energy_j" else cost_table.latency
        rows = [[0.0 if is_width_choice(n) else
                 float(values[cost_table.names.index(n), cost_table.offered[n].index(c)])
                 for c in supernet.candidates(n)] for n in supernet.layer_names]
        scale = sum(max(r) for r in rows) or 1.0
        rows = [[v / scale for v in r] for r in rows]
    device = supernet.arch_parameters()[0].device
    return [torch.tensor(r, dtype=torch.float32, device=device) for r in rows]


def expected_cost(supernet: Supernet, rows: Sequence[Tensor], tau: float = 1.0) -> Tensor:
    """Sum over layers of softmax(logits / tau) . cost row (differentiable in the logits)."""
    total = None
    for p, row in zip(supernet.arch_parameters(), rows):
        term = torch.softmax(p / tau, dim=0) @ row
        total = term if total is None else total + term
    assert total is not None
    return total


@register_strategy("odimo")
class ODiMoStrategy(MapperStrategy):
    """lambdas: trade-off coefficients swept (one mapping each); steps: soft-mixture
    training batches per lambda; arch_lr: Adam rate of the logits; cost: "energy_j",
    "latency_s", "digital_share" or "auto" (energy with a cost table, else digital share);
    finetune_steps: batches on the discrete mapping before it is scored; warmup_steps:
    weight-only mixture training before the sweep; tau -> tau_end: temperature annealing."""

    name = "odimo"

    def __init__(self, lambdas: Sequence[float] = (0.0, 0.5, 2.0, 8.0), steps: int = 20,
                 arch_lr: float = 0.05, cost: str = "auto", finetune_steps: int = 5,
                 tau: float = 1.0, tau_end: float = 0.1, warmup_steps: int = 20,
                 **common: object) -> None:
        super().__init__(**common)  # type: ignore[arg-type]
        if not lambdas or any(v < 0 for v in lambdas):
            raise ConfigError(f"lambdas must be >= 0, got {list(lambdas)}")
        if steps < 0 or finetune_steps < 0 or warmup_steps < 0 or arch_lr <= 0 or tau <= 0 \
                or not 0 < tau_end <= tau:
            raise ConfigError("steps, warmup_steps and finetune_steps must be >= 0; arch_lr "
                              "> 0 and 0 < tau_end <= tau")
        if cost not in COSTS:
            raise ConfigError(f"cost must be one of {', '.join(COSTS)}, got {cost!r}")
        self.lambdas = tuple(float(v) for v in lambdas)
        self.steps, self.arch_lr, self.cost = steps, arch_lr, cost
        self.finetune_steps, self.tau, self.tau_end = finetune_steps, tau, tau_end
        self.warmup_steps = warmup_steps
        self.taus: list[float] = []  # the temperatures of the last search
        self.results: dict[float, Mapping] = {}

    def temperature(self, step: int) -> float:
        """tau at search step `step`: exponential from `tau` to `tau_end`."""
        if self.steps <= 1:
            return self.tau
        return self.tau * (self.tau_end / self.tau) ** (step / (self.steps - 1))

    def warm_up(self, work: WorkCopy) -> None:
        """Weights only, on the uniform mixture (logits zero and frozen)."""
        sn = work.sn
        with torch.no_grad():
            for p in sn.arch_parameters():
                p.zero_()
        sn.set_mode("soft", tau=self.tau)
        try:
            work.finetune(None, self.warmup_steps, self.lr, key=999)
        finally:
            sn.set_mode("single")

    def train_mixture(self, work: WorkCopy, lam: float, rows: Sequence[Tensor],
                      key: int) -> Mapping:
        """Soft-mixture training at trade-off `lam` with the annealed temperature; returns
        the argmax mapping."""
        sn = work.sn
        with torch.no_grad():
            for p in sn.arch_parameters():
                p.zero_()
        tau = [self.tau]
        self.taus = []

        def anneal(i: int) -> None:
            tau[0] = self.temperature(i)
            self.taus.append(tau[0])
            sn.set_mode("soft", tau=tau[0])

        def loss_fn(task_loss: Tensor) -> Tensor:
            return task_loss + lam * expected_cost(sn, rows, tau[0])

        sn.set_mode("soft", tau=self.tau)
        try:
            work.finetune(None, self.steps, self.lr, key=key, loss_fn=loss_fn,
                          extra_params=sn.arch_parameters(), extra_lr=self.arch_lr,
                          on_step=anneal)
        finally:
            sn.set_mode("single")
        choices = {}
        for name, p in zip(sn.layer_names, sn.arch_parameters()):
            choices[name] = sn.candidates(name)[int(torch.argmax(p.detach()))]
        return Mapping(choices, sn.fingerprint)

    def run(self, problem: SearchProblem, seed: int = 0) -> None:
        work = self.start(problem, seed)
        rows = cost_rows(work.sn, self.cost, problem.evaluator.cost_table)
        self.warm_up(work)
        warm = work.state()
        for i, lam in enumerate(self.lambdas):
            if problem.exhausted():
                break
            work.restore(warm)
            mapping = self.train_mixture(work, lam, rows, key=i)
            work.finetune(mapping, self.finetune_steps, self.lr, key=1000 + i)
            self.results[lam] = mapping
            work.score([mapping])
        work.restore()
        self.stats.train_steps = work.steps
