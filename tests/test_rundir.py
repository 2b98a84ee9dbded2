"""Run directories: never reused silently, provenance written, logs append line by line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hetmap.config import load_config
from hetmap.errors import ConfigError, HetmapError
from hetmap.rundir import MARKER, RunDir


def test_a_used_directory_needs_force_or_resume(tmp_path: Path) -> None:
    root = tmp_path / "run"
    run = RunDir.create(root)
    run.write_json("front.json", {"members": []})
    with pytest.raises(HetmapError, match=r"--resume.*--force"):
        RunDir.create(root)
    resumed = RunDir.create(root, resume=True)
    assert resumed.read_json("front.json") == {"members": []}
    assert [e["event"] for e in resumed.events()] == ["start", "resume"]
    fresh = RunDir.create(root, force=True)
    assert not fresh.exists("front.json") and fresh.exists(MARKER)
    assert [e["event"] for e in fresh.events()] == ["start"]
    with pytest.raises(ConfigError, match="either --force"):
        RunDir.create(root, force=True, resume=True)


def test_force_never_deletes_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").write_text("precious")
    for flags in ({"force": True}, {"resume": True}):
        with pytest.raises(HetmapError, match="not made by hetmap"):
            RunDir.create(tmp_path, **flags)
    assert (tmp_path / "thesis.tex").read_text() == "precious"
    assert RunDir.create(tmp_path / "empty").root.is_dir()  # new and empty folders are fine


def test_config_snapshot_environment_and_log(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run")
    cfg = load_config(None, ["seed=4", "device=cpu"])
    run.write_config(cfg)
    assert load_config(run.path("config.yaml")) == cfg
    env = json.loads(run.write_environment(cfg.seed, "cpu").read_text())
    assert env["seed"] == 4 and env["device"] == "cpu"
    assert env["torch"] and env["hetmap"] and env["python"]
    assert "git_revision" in env
    run.log({"event": "epoch", "stage": "supernet", "loss": 0.5})
    run.log({"event": "epoch", "stage": "supernet", "loss": 0.25})
    lines = run.path("log.jsonl").read_text().splitlines()
    assert all(json.loads(line)["time"] for line in lines)
    assert [e.get("loss") for e in run.events()][-2:] == [0.5, 0.25]
    with run.path("log.jsonl").open("a") as fh:
        fh.write('{"event": "torn')  # a crash mid-line loses only that line
    assert run.events()[-1]["loss"] == 0.25

    resumed = RunDir.create(run.root, resume=True)
    resumed.write_config(cfg)  # same config: fine
    with pytest.raises(ConfigError, match="seed"):
        resumed.write_config(load_config(None, ["seed=5", "device=cpu"]))


def test_files_and_csv(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run")
    assert run.path("checkpoints/supernet.pt").parent.is_dir()
    run.write_csv("front.csv", [{"name": "a", "accuracy": 98.5},
                                {"name": "b", "accuracy": 97.0, "tiles": 4}])
    assert run.path("front.csv").read_text() == "name,accuracy,tiles\na,98.5,\nb,97.0,4\n"
    assert run.read_json("absent.json") is None
    run.path("bad.json").write_text("{")
    with pytest.raises(HetmapError, match=r"bad\.json is not valid JSON"):
        run.read_json("bad.json")
    with pytest.raises(HetmapError, match="no run directory"):
        RunDir.open(tmp_path / "nowhere")


def _layout_names() -> set[str]:
    return {v for k, v in vars(RunDir).items() if k.isupper() and isinstance(v, str)}


def literal_artifact_names(source: str) -> list[str]:
    """Run-directory file names spelled as string literals (prose that mentions them aside)."""
    import ast

    names = {part for n in _layout_names() for part in (n, n.rsplit("/", 1)[-1])
             if "." in part}  # the files (folder names like "train" are words too)
    return [node.value for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Constant) and node.value in names]


def test_only_rundir_spells_the_artifact_names() -> None:
    """The layout has one owner: pipeline, report, search and cli use RunDir's constants."""
    package = Path(__file__).resolve().parents[1] / "src" / "hetmap"
    spelled = {str(p.relative_to(package)): names for p in sorted(package.rglob("*.py"))
               if p.name != "rundir.py" and (names := literal_artifact_names(p.read_text()))}
    assert spelled == {}
    assert literal_artifact_names('x = root / "front.json"') == ["front.json"]
    assert {"front.json", "summary.json", "export/scores.json"} <= _layout_names()
