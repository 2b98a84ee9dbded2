"""A run SIGKILLed in stage 1 or 2 and resumed ends bitwise equal to an uninterrupted one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tests.training.tiny_run import tiny_config, tiny_setup

from hetmap.errors import TrainingError
from hetmap.training import train_supernet
from hetmap.training.checkpoint import load_state

HERE = Path(__file__).parent


def _final_state(run_dir: Path, resume: bool = False) -> dict[str, torch.Tensor]:
    task, sn = tiny_setup()
    train_supernet(sn, task, tiny_config(), run_dir=run_dir, resume=resume)
    return sn.state_dict()


@pytest.mark.parametrize("stage, kill_at", [(1, 2), (2, 3)])
def test_killed_mid_stage_resumes_to_the_uninterrupted_state(tmp_path: Path, stage: int,
                                                             kill_at: int) -> None:
    """Stage 1 draws analog noise too (its default level is above 0), so both stages must
    restore every RNG stream."""
    threads = torch.get_num_threads()
    killed = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(HERE.parents[1] / "src"))
    proc = subprocess.run(
        [sys.executable, "-m", "tests.training.tiny_run", str(killed), "--kill-at",
         str(kill_at), "--kill-stage", str(stage), "--threads", str(threads)],
        cwd=HERE.parents[1], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    state = load_state(killed)
    assert state is not None and state["progress"]["stage"] == stage
    assert state["progress"]["step"] == kill_at - 1  # the last checkpoint was never written

    resumed = _final_state(killed, resume=True)
    straight = _final_state(tmp_path / "straight")
    assert resumed.keys() == straight.keys()
    for key in straight:
        assert torch.equal(resumed[key], straight[key]), key
    logits = [k for k in straight if k.endswith("logits")]
    assert logits and any(straight[k].abs().sum() > 0 for k in logits)  # stage 3 ran


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_checkpoint(
        tmp_path: Path) -> None:
    task, sn = tiny_setup()

    def poison(stage: int, step: int, loss: float) -> None:
        if stage == 2 and step == 2:
            with torch.no_grad():
                for p in sn.weight_parameters():
                    p.fill_(float("nan"))

    with pytest.raises(TrainingError, match="stage 2: the loss is nan"):
        train_supernet(sn, task, tiny_config(checkpoint_steps=0), run_dir=tmp_path,
                       on_step=poison)
    state = load_state(tmp_path)
    assert state is not None
    assert state["progress"]["stage"] == 2 and state["progress"]["step"] == 0
    assert all(torch.isfinite(v).all() for v in state["model"].values()
               if v.is_floating_point())
