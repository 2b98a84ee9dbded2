from __future__ import annotations

import re
import subprocess
import sys

import yaml
from typer.testing import CliRunner

from hetmap.cli import app

runner = CliRunner()


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    panel = result.output.split("Commands", 1)[1]
    # a command is the first word of a row of the Commands panel ("train" is not "pretrain")
    listed = re.findall(r"^\S\s(\S+)\s{2,}\S", panel, re.M)
    assert sorted(listed) == sorted(("demo", "run", "resume", "report", "config", "pretrain",
                                     "scan", "cost", "compare", "reproduce", "train", "search",
                                     "evaluate", "export"))


def test_config_example_is_valid_yaml() -> None:
    result = runner.invoke(app, ["config", "example"])
    assert result.exit_code == 0
    assert yaml.safe_load(result.output)["task"]["name"] == "mnist"


def test_bad_config_gives_one_line_error_naming_the_field(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("search:\n  evaluations: many\n")
    proc = subprocess.run([sys.executable, "-m", "hetmap", "run", str(bad), "--out",
                           str(tmp_path / "r")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "search.evaluations" in lines[0]


def test_scan_prints_the_inventory() -> None:
    result = runner.invoke(app, ["scan", "resnet8", "--tile", "256", "256"])
    assert result.exit_code == 0
    assert "layer1.0.conv1" in result.output and "tiles of 256x256" in result.output


def test_compare_writes_the_table(tmp_path) -> None:
    out = tmp_path / "cmp"
    fast = ["task.name=digits", "search.evaluations=6", "drift.repeats=2", "drift.times=[1]",
            "train.stage1.max_steps=2", "train.stage2.max_steps=2", "train.stage3.steps=1",
            "train.stage3.n_mappings=3"]
    sets = [arg for item in fast for arg in ("--set", item)]
    result = runner.invoke(app, ["compare", "--methods", "anchors,random,mps", "--out", str(out),
                                 "--seeds", "2", "--drift-members", "1", *sets])
    assert result.exit_code == 0, result.output
    table = (out / "compare.md").read_text()
    assert all(f"| {m} |" in table for m in ("anchors", "random", "mps"))
    assert "seeds [0, 1]" in table and "(shared stage 1-2)" in table
    assert (out / "compare.png").exists()


def test_stage_commands_run_one_after_another(tmp_path) -> None:
    out = tmp_path / "staged"
    fast = ["task.name=digits", "train.stage1.epochs=1", "train.stage2.epochs=1",
            "train.stage3.steps=2", "train.stage3.n_mappings=4", "train.stage3.tau_mappings=0",
            "train.progress=false", "search.evaluations=8", "drift.times=[1]",
            "drift.repeats=1", "device=cpu"]
    sets = [arg for item in fast for arg in ("--set", item)]
    steps = [["train", "--out", str(out), *sets], ["search", str(out)], ["evaluate", str(out)],
             ["export", str(out), "--member", "0"], ["report", str(out)]]
    for args in steps:
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
    for name in ("supernet.safetensors", "front.json", "summary.json", "export/model.pt",
                 "report.html"):
        assert (out / name).exists(), name
    again = runner.invoke(app, ["search", str(out)])  # reloads the trained supernet
    assert "loaded the trained supernet" in again.output


def test_stage_command_on_a_non_run_directory_names_the_problem(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "hetmap", "search", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "not a hetmap run directory" in proc.stderr


def test_ctrl_c_during_training_leaves_a_resumable_run(tmp_path) -> None:
    import signal
    import time

    out = tmp_path / "interrupted"
    sets = ["--set", "task.name=digits", "--set", "train.stage1.epochs=3", "--set",
            "train.stage2.epochs=3", "--set", "train.checkpoint_steps=1", "--set",
            "train.stage3.steps=2", "--set", "train.stage3.tau_mappings=0", "--set",
            "train.progress=false", "--set", "device=cpu"]
    # a background job of a non-interactive shell (a CI runner's) ignores SIGINT, and Python
    # keeps an inherited SIG_IGN: the child gets the default disposition back
    proc = subprocess.Popen([sys.executable, "-m", "hetmap", "train", "--out", str(out), *sets],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    checkpoint = out / "train" / "checkpoint.pt"
    # a generous deadline, not a speed claim: pretraining, the first native-kernel build
    # and stage 1's analog passes come before the first checkpoint, on a possibly busy machine
    deadline = time.time() + 600
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert checkpoint.exists(), proc.communicate()
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "hetmap resume" in stdout
    assert not (out / "supernet.safetensors").exists()
    resumed = runner.invoke(app, ["train", "--out", str(out), "--resume", *sets])
    assert resumed.exit_code == 0, resumed.output
    assert (out / "supernet.safetensors").exists()
