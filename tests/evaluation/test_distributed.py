from __future__ import annotations

import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from tests.evaluation.helpers import digits_supernet, digits_task


def _worker(rank: int, world: int, init: str, out: str) -> None:
    from hetmap.evaluation import Evaluator

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        sn = digits_supernet()
        gen = torch.Generator().manual_seed(5)
        maps = [sn.sample(gen) for _ in range(4)]
        ev = Evaluator(sn, digits_task(), bn_batches=1, val_batches=1, batch_size=64)
        acc = ev.accuracies(maps)
        torch.save({"acc": acc, "local": ev.local_evaluations, "total": ev.evaluations},
                   f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_population_is_split_across_ranks(tmp_path) -> None:
    from hetmap.evaluation import Evaluator

    init = f"file://{tmp_path / 'rendezvous'}"
    out = str(tmp_path / "result")
    mp.spawn(_worker, args=(2, init, out), nprocs=2, join=True)
    parts = [torch.load(f"{out}.{r}") for r in range(2)]
    sn = digits_supernet()
    gen = torch.Generator().manual_seed(5)
    maps = [sn.sample(gen) for _ in range(4)]
    single = Evaluator(sn, digits_task(), bn_batches=1, val_batches=1, batch_size=64)
    expected = single.accuracies(maps)
    distinct = len(set(maps))
    for p in parts:
        assert p["acc"] == expected and p["total"] == distinct
    assert sum(p["local"] for p in parts) == distinct and all(p["local"] < distinct
                                                              for p in parts)
    assert os.path.exists(f"{out}.1")
