"""The demo's config: ResNet-8 with at least 8 searchable layers, small budgets, and the
user's --set on top."""

from __future__ import annotations

from hetmap.config import DEMO_OVERRIDES, RunConfig, demo_config
from hetmap.pipeline import make_task


def test_the_demo_maps_resnet8_with_at_least_8_searchable_layers() -> None:
    from hetmap.supernet import build_supernet

    cfg = demo_config()
    task = make_task(cfg)
    model = task.build_model()
    sn = build_supernet(model, task.example_input(2), candidates=tuple(cfg.candidates))
    assert cfg.model.name == "resnet8" and type(model).__name__.lower().startswith("resnet")
    searchable = [n for n in sn.layer_names if len(sn.candidates(n)) > 1]
    assert len(searchable) >= 8 and len(cfg.candidates) ** len(searchable) >= 65_536
    assert cfg.drift.members == 5 and 86400.0 in cfg.drift.times  # 1 day is reported
    assert cfg.analog.fuse is False  # a few hundred steps: eager beats compiling


def test_user_overrides_go_on_top_and_the_defaults_stay_the_defaults() -> None:
    assert demo_config(["search.evaluations=10"]).search.evaluations == 10
    assert RunConfig().model.name == "small_cnn" and RunConfig().drift.members is None
    assert all("=" in o for o in DEMO_OVERRIDES)
