from __future__ import annotations

import subprocess
import sys

import yaml
from typer.testing import CliRunner

from hetmap.cli import app

runner = CliRunner()


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("demo", "run", "resume", "report", "config", "pretrain", "scan", "cost",
                    "compare"):
        assert command in result.output


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
    result = runner.invoke(app, ["compare", "--methods", "anchors,random,mps", "--out", str(out),
                                 "--set", "task.name=digits", "--set", "search.evaluations=6",
                                 "--set", "drift.repeats=1", "--set", "drift.times=[1]"])
    assert result.exit_code == 0, result.output
    table = (out / "compare.md").read_text()
    assert all(f"| {m} |" in table for m in ("anchors", "random", "mps"))
