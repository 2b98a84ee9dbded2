"""Config files: bad values fail with one line naming the field; overrides; the example
round-trips."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hetmap.config import (
    RunConfig,
    apply_overrides,
    dump_config,
    example_config,
    load_config,
    parse_duration,
    parse_override,
)
from hetmap.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def _error(path: Path | None, overrides: list[str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides or [])
    message = str(info.value)
    assert "\n" not in message, message
    return message


def test_unknown_key_names_the_field_and_the_allowed_keys(tmp_path: Path) -> None:
    msg = _error(_write(tmp_path, "search:\n  strategy: mps\n  budget: 10\n"))
    assert msg.startswith("run.yaml: search.budget: unknown key 'budget' in search")
    assert "evaluations" in msg and "strategy" in msg
    msg = _error(_write(tmp_path, "analog:\n  tile_size: 3\n"))
    assert "analog.tile_size" in msg and "tile_rows" in msg
    assert "unknown key 'sed' in the top level" in _error(_write(tmp_path, "sed: 1\n"))


def test_wrong_type_names_the_field_and_the_value(tmp_path: Path) -> None:
    msg = _error(_write(tmp_path, "search:\n  evaluations: many\n"))
    assert msg.startswith("run.yaml: search.evaluations:") and "integer" in msg
    assert "'many'" in msg
    msg = _error(_write(tmp_path, "device: gpu\n"))
    assert msg == "run.yaml: device: input should be 'auto', 'cpu' or 'cuda' (got 'gpu')"
    msg = _error(_write(tmp_path, "candidates: [fp32, int3]\n"))
    assert "candidates" in msg and "'int3'" in msg and "analog" in msg  # allowed values
    msg = _error(_write(tmp_path, "search:\n  objectives: [accuracy, speed]\n"))
    assert "search.objectives" in msg and "'speed'" in msg and "latency" in msg
    msg = _error(_write(tmp_path, "search:\n  strategy: annealing\n"))
    assert "search.strategy" in msg and "mps" in msg
    msg = _error(_write(tmp_path, "search:\n  constraints: [accuracy_drop<=1, speed>3]\n"))
    assert "search.constraints" in msg and "'speed'" in msg
    msg = _error(_write(tmp_path, "train:\n  stage1: {epochs: -1}\n"))
    assert msg.startswith("run.yaml: train.stage1.epochs: input should be greater")


def test_missing_dataset_path_is_caught_at_load(tmp_path: Path) -> None:
    msg = _error(_write(tmp_path, "task:\n  name: mnist\n  data: no/such/folder\n"))
    assert msg.startswith("run.yaml: task.data: dataset path")
    assert str(tmp_path / "no/such/folder") in msg  # resolved against the config's folder
    (tmp_path / "data").mkdir()
    cfg = load_config(_write(tmp_path, "task:\n  data: data\n"))
    assert cfg.task.data == tmp_path / "data"
    assert "model.checkpoint" in _error(_write(tmp_path, "model:\n  checkpoint: w.pt\n"))


def test_other_file_problems_are_one_line(tmp_path: Path) -> None:
    assert "no config file" in _error(tmp_path / "absent.yaml")
    assert "line 2" in _error(_write(tmp_path, "seed: 1\ndevice: cpu: x\n"))
    assert "top level must be a mapping" in _error(_write(tmp_path, "- a\n- b\n"))
    assert "hardware" in _error(_write(tmp_path, "hardware: tpu-v9\n"))
    assert "unknown task 'imagenet'" in _error(_write(tmp_path, "task: {name: imagenet}\n"))


def test_overrides_are_typed_and_nested(tmp_path: Path) -> None:
    assert parse_override("search.evaluations=50") == (["search", "evaluations"], 50)
    assert parse_override("candidates=[fp32, analog]") == (["candidates"], ["fp32", "analog"])
    assert parse_override("search.seconds=null")[1] is None
    cfg = load_config(_write(tmp_path, "seed: 3\nsearch: {evaluations: 10}\n"),
                      ["search.evaluations=50", "drift.times=[1h, 1d]", "device=cpu",
                       "search.constraints=[analog_tiles<=32]", "analog.out_noise=0.02"])
    assert cfg.seed == 3 and cfg.search.evaluations == 50 and cfg.device == "cpu"
    assert cfg.drift.times == [3600.0, 86400.0]
    assert cfg.search.constraints == ["analog_tiles<=32"] and cfg.analog.out_noise == 0.02
    assert cfg.search.strategy == "mps"  # untouched keys keep the file's / default values
    assert "search.evaluations" in _error(None, ["search.evaluations=-1"])
    with pytest.raises(ConfigError, match=r"key\.subkey=value"):
        parse_override("no-equals-sign")
    with pytest.raises(ConfigError, match="seed is a value"):
        apply_overrides({"seed": 1}, ["seed.x=2"])


def test_override_paths_are_relative_to_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sub = tmp_path / "configs"
    sub.mkdir()
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    cfg = load_config(_write(sub, "seed: 0\n"), ["task.data=data"])
    assert cfg.task.data == tmp_path / "data"


def test_example_config_round_trips(tmp_path: Path) -> None:
    text = example_config()
    assert text.count("\n# ") + text.count("  # ") > 20  # documented
    for section in ("task:", "model:", "candidates:", "analog:", "hardware:", "train:",
                    "search:", "drift:", "seed:", "device:", "method:"):
        assert f"\n{section}" in text
    assert load_config(_write(tmp_path, text)) == RunConfig()
    assert load_config(None) == RunConfig()
    assert RunConfig().candidates == ["fp32", "int8", "int4", "analog"]
    assert RunConfig().hardware == "hermes-pcm" and RunConfig().task.name == "mnist"
    cfg = load_config(None, ["method=mpaas", "seed=7"])
    snapshot = _write(tmp_path, dump_config(cfg))
    assert load_config(snapshot) == cfg
    assert yaml.safe_load(snapshot.read_text())["seed"] == 7


def test_durations() -> None:
    assert parse_duration("1y") == 31536000.0
    assert parse_duration("30 min") == 1800.0
    assert parse_duration(5) == 5.0
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")
    msg = _error(None, ["drift.times=[0]"])
    assert "drift.times" in msg and "positive" in msg
    assert "mpaas" in _error(None, ["method=mpaas", "candidates=[fp32, int8]"])


def test_adapt_section_builds_the_widening_policy() -> None:
    cfg = load_config(None, ["method=mpaas", "adapt.max_factor=2", "adapt.exclude=[fc]",
                             "adapt.max_energy_increase=0.05", "seed=7"])
    policy = cfg.adapt.policy(cfg.seed)
    assert (policy.max_factor, policy.exclude, policy.seed) == (2.0, ("fc",), 7)
    assert policy.max_energy_increase == 0.05 and policy.max_latency_increase == 0.0
    assert "adapt.search" in _error(None, ["adapt.init=net2wider"])
    assert load_config(None, ["adapt.init=net2wider", "adapt.search=false"]).adapt.policy()
    assert "adapt.max_factor" in _error(None, ["adapt.max_factor=0.5"])


def test_stage3_ranks_on_the_search_objectives_unless_told_otherwise(tmp_path: Path) -> None:
    from hetmap.evaluation import DEFAULT_OBJECTIVES

    assert RunConfig().train.stage3.objectives == DEFAULT_OBJECTIVES
    assert tuple(RunConfig().search.objectives) == DEFAULT_OBJECTIVES
    tied = load_config(None, ["search.objectives=[accuracy, latency_s]"])
    assert tied.train.stage3.objectives == ("accuracy", "latency_s")
    own = load_config(None, ["search.objectives=[accuracy, latency_s]",
                             "train.stage3.objectives=[accuracy, analog_mac_ratio]"])
    assert own.train.stage3.objectives == ("accuracy", "analog_mac_ratio")
    assert load_config(_write(tmp_path, dump_config(tied))) == tied  # the snapshot resumes


def test_the_adapt_section_is_the_policy() -> None:
    from hetmap.adaptation import AdaptPolicy
    from hetmap.config.schema import AdaptSection

    assert issubclass(AdaptSection, AdaptPolicy)
    assert set(AdaptPolicy.model_fields) < set(AdaptSection.model_fields)
    policy = load_config(None, ["method=mpaas", "adapt.kinds=[conv]", "adapt.seed=3",
                                "seed=7"]).adapt.policy(7)
    assert type(policy) is AdaptPolicy and (policy.kinds, policy.seed) == (("conv",), 3)
