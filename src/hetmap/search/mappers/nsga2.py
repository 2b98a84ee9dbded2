"""`nsga2`: pymoo's NSGA-II over mappings, each candidate briefly fine-tuned before it is
scored: the expensive, evaluation-heavy baseline. Genes are candidate indices (integer
SBX crossover and polynomial mutation with rounding, duplicates eliminated); every new
mapping starts from the same weights, trains a few batches on its own path, and is scored
through the search problem (so budgets and the archive's front apply as usual)."""

from __future__ import annotations

import numpy as np

from hetmap.errors import ConfigError
from hetmap.search.mappers._common import MapperStrategy, anchor_genomes
from hetmap.search.problem import SearchProblem
from hetmap.search.strategy import register_strategy


@register_strategy("nsga2")
class NSGA2Strategy(MapperStrategy):
    """pop_size: NSGA-II population; finetune_steps: training batches per candidate before
    scoring (0: plain NSGA-II on the shared weights of the copy); anchors: seed the first
    population with the uniform mappings (`anchor_genomes`), as `mps` does."""

    name = "nsga2"

    def __init__(self, pop_size: int = 8, finetune_steps: int = 3, anchors: bool = False,
                 **common: object) -> None:
        super().__init__(**common)  # type: ignore[arg-type]
        if pop_size < 2:
            raise ConfigError(f"pop_size must be at least 2, got {pop_size}")
        if finetune_steps < 0:
            raise ConfigError(f"finetune_steps must be >= 0, got {finetune_steps}")
        self.pop_size = pop_size
        self.finetune_steps = finetune_steps
        self.anchors = anchors
        self.generations = 0

    def _algorithm(self, problem: SearchProblem, seed: int):  # returns a pymoo NSGA2
        from pymoo.algorithms.moo.nsga2 import NSGA2
        from pymoo.core.problem import Problem
        from pymoo.core.termination import NoTermination
        from pymoo.operators.crossover.sbx import SBX
        from pymoo.operators.mutation.pm import PM
        from pymoo.operators.repair.rounding import RoundingRepair
        from pymoo.operators.sampling.rnd import IntegerRandomSampling

        space = Problem(n_var=len(problem.layers), n_obj=len(problem.objectives),
                        n_ieq_constr=1 if problem.constraints else 0, xl=0,
                        xu=problem.n_choices - 1, vtype=int)
        sampling = IntegerRandomSampling()
        if self.anchors:
            rng = np.random.default_rng(seed)
            rand = rng.integers(0, problem.n_choices, size=(self.pop_size, len(problem.layers)))
            sampling = np.vstack([anchor_genomes(problem), rand])[:max(
                self.pop_size, len(anchor_genomes(problem)))]
        algo = NSGA2(pop_size=self.pop_size, sampling=sampling,
                     crossover=SBX(prob=0.9, eta=3.0, vtype=float, repair=RoundingRepair()),
                     mutation=PM(eta=3.0, vtype=float, repair=RoundingRepair()),
                     eliminate_duplicates=True)
        algo.setup(space, termination=NoTermination(), seed=seed, verbose=False)
        return algo

    def run(self, problem: SearchProblem, seed: int = 0) -> None:
        work = self.start(problem, seed)
        algo = self._algorithm(problem, seed)
        row_of = {}
        while not problem.exhausted():
            pop = algo.ask()
            X = np.clip(np.rint(pop.get("X")).astype(np.int64), 0, problem.n_choices - 1)
            complete = True
            for m in problem.decode(X):
                if m in problem.archive:
                    continue
                if problem.exhausted():
                    complete = False
                    break
                work.restore()
                work.finetune(m, self.finetune_steps, self.lr, key=problem.evaluations)
                work.score([m])
            if not complete:
                break
            row_of.update({m: i for i, m in enumerate(problem.mappings)})
            rows = [row_of[m] for m in problem.decode(X)]
            pop.set("F", problem.F[rows])
            if problem.constraints:
                pop.set("G", problem.CV[rows][:, None])
            algo.tell(infills=pop)
            self.generations += 1
        work.restore()
        self.stats.train_steps = work.steps
        self.stats.generations = self.generations
