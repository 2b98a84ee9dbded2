"""Two processes under torchrun (gloo, localhost) end with identical weights and
preferences, and rank 0 alone writes the run directory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

from hetmap.training.log import read_metrics

ROOT = Path(__file__).parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_ranks_end_identical(tmp_path: Path) -> None:
    out, run_dir = tmp_path / "out", tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
           "-m", "tests.training.tiny_run", str(run_dir), "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = torch.load(out / "rank0.pt", weights_only=True)
    b = torch.load(out / "rank1.pt", weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    start_logits = [k for k in a if k.endswith("logits")]
    assert any(a[k].abs().sum() > 0 for k in start_logits)  # the preferences did learn
    records = read_metrics(run_dir)
    assert records and records[-1]["stage"] == "done"
    assert len([r for r in records if r["stage"] == 1]) == 1  # one writer, not two
