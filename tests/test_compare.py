"""hetmap.compare: one footing, one unit of compute, test-split figures over seeds."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from tests.evaluation.helpers import digits_task, eager_analog
from torch import nn

from hetmap.compare import FEW_SAMPLES, Meter, ci95, compare, time_label
from hetmap.errors import ConfigError
from hetmap.training import make_config

SMALL = {"batch_size": 32, "train_batches": 2}


def _tiny_train(seed: int):
    return make_config(seed=seed, batch_size=32, progress=False, eval_each_epoch=False,
                       stage1={"epochs": 1, "max_steps": 2}, stage2={"epochs": 1, "max_steps": 2})


def _run(tmp_path, methods=("anchors", "mps", "nsga2"), **kw):
    task = digits_task()
    torch.manual_seed(0)
    model = task.build_model()
    options = {"anchors": {"train_steps": 1, "patience": None, **SMALL},
               "mps": {"pop_size": 3}, "nsga2": {"pop_size": 4, "finetune_steps": 1, **SMALL}}
    args = dict(budgets={"anchors": 4, "mps": 4, "nsga2": 4}, options=options,
                candidates=("fp32", "int8", "analog"), analog=eager_analog(),
                train_config=_tiny_train, stage3={"steps": 1, "n_mappings": 3},
                bn_batches=1, val_batches=1, batch_size=64, drift_repeats=2,
                drift_members=1, seeds=2, out=tmp_path, log=lambda s: None)
    return compare(task, model, "hermes-pcm", methods, **(args | kw))


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("cmp"))


def test_meter_counts_training_and_evaluation_sample_passes() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    loss = nn.CrossEntropyLoss()
    x = torch.randn(5, 3)
    with Meter() as m:
        model.train()
        loss(model(x), torch.zeros(5, dtype=torch.long)).backward()  # 5 training passes
        with torch.no_grad():
            model(x[:2])  # 2 evaluation passes (nested Linear calls are not counted again)
        model.eval()
        model(x[:3])  # eval mode: forward only
        with pytest.raises(RuntimeError):
            model(torch.randn(1, 7))  # a failing call leaves the depth balanced
        model(x[:1])
    assert (m.train_passes, m.eval_passes) == (5, 2 + 3 + 1 + 1)
    assert m.wall_s > 0 and m.passes_at(m.timeline[0][0]) == 5
    model(x)  # closed: nothing counted
    assert m.train_passes + m.eval_passes == 12


def test_statistics_helpers() -> None:
    assert ci95([1.0]) != ci95([1.0])  # nan: one value has no interval
    assert ci95([1.0, 1.0, 1.0]) == 0.0
    assert abs(ci95([0.0, 2.0]) - 12.706 * 2 ** 0.5 / 2 ** 0.5) < 0.01
    assert [time_label(t) for t in (0.0, 1.0, 3600.0, 86400.0, 31536000.0)] == \
        ["0 s", "1 s", "1 h", "1 day", "1 year"]


def test_every_method_from_the_same_trained_supernet_over_seeds(result, tmp_path) -> None:
    assert result.seeds == [0, 1] and result.methods == ["anchors", "mps", "nsga2"]
    assert set(result.shared) == {0, 1} and all(c.train_passes > 0 for c in result.shared.values())
    summary = {s.method: s for s in result.summary()}
    assert all(s.seeds == 2 for s in summary.values())
    mps = result.of("mps")
    # stage 3 is mps's: its evaluations are counted, and its compute is in mps's row
    assert all(r.stage3_evaluations > 0 for r in mps)
    assert all(r.evaluations == r.stage3_evaluations + 4 for r in mps)
    assert all(r.compute.eval_passes > 0 for r in result.runs)
    assert all(r.compute.train_passes > 0 for r in result.of("nsga2"))
    assert all(r.curve and r.curve[-1][0] <= r.compute.passes for r in result.runs)


def test_reported_figures_come_from_the_whole_test_split(result) -> None:
    task = digits_task()
    n_test = len(task.loaders(batch_size=64).test.dataset)
    assert all(r.test_samples == n_test for r in result.rows)
    drifted = [r for r in result.rows if r.at(86400) is not None]
    assert {(r.seed, r.method) for r in drifted} == \
        {(s, m) for s in (0, 1) for m in ("anchors", "mps", "nsga2")}
    assert all(r.drift_repeats == 2 and r.at(86400).ci95 >= 0 for r in drifted)
    table = result.table()
    assert "test acc 0 s (%)" in table and "test acc 1 day (%)" in table
    assert "train sample-passes" in table and "(shared stage 1-2)" in table
    assert n_test < FEW_SAMPLES and f"<{FEW_SAMPLES} samples" in table  # digits: warned
    assert "±" in table
    for text in (table, result.members_table()):
        assert len({line.count("|") for line in text.strip().splitlines()}) == 1  # one width
    assert result.to_csv().splitlines()[0].startswith("seed,method,member,uniform,val_accuracy")


def test_each_row_carries_the_mapping_it_reports(result) -> None:
    for r in result.rows:  # the re-scored front is sorted by test accuracy, the rows are not
        member = next(m for m in result.fronts[r.seed][r.method].members
                      if m.mapping == r.mapping)
        assert member.scores["accuracy"] == r.test_accuracy
        assert member.scores["analog_mac_ratio"] == pytest.approx(r.analog_mac_ratio)


def test_outputs_are_written(result, tmp_path) -> None:
    result.save(tmp_path)
    assert (tmp_path / "compare.png").read_bytes()[:4] == b"\x89PNG"
    assert "| mps |" in (tmp_path / "compare.md").read_text()
    assert (tmp_path / "front-nsga2-seed1").exists()


def test_anchors_go_to_every_population_method_or_none(tmp_path) -> None:
    with pytest.raises(ConfigError, match="anchors"):
        _run(tmp_path, methods=("mps",), options={"mps": {"anchors": True}})
    with pytest.raises(ConfigError, match="drift_repeats"):
        _run(tmp_path, drift_repeats=1)


def test_a_method_variant_searches_its_own_objectives_and_is_rescored_on_the_shared(
        tmp_path, monkeypatch) -> None:
    import hetmap.compare as cmp
    from hetmap.compare import MethodSpec

    searched: list[tuple[str, ...]] = []  # the objectives each method's search optimised
    real_search = cmp.search

    def spy(sn, evaluator, **kw):
        searched.append(tuple(evaluator.names))
        return real_search(sn, evaluator, **kw)

    monkeypatch.setattr(cmp, "search", spy)
    drifted = MethodSpec("mps@1d", "mps", {"pop_size": 3},
                         objectives=("accuracy@1d", "analog_mac_ratio", "digital_weight_bytes"))
    res = _run(tmp_path, methods=("anchors", drifted), seeds=1,
               budgets={"anchors": 4, "mps@1d": 4})
    assert res.methods == ["anchors", "mps@1d"]
    assert searched == [("accuracy", "analog_mac_ratio", "digital_weight_bytes"),
                        ("accuracy@1d", "analog_mac_ratio", "digital_weight_bytes")]
    rows = [r for r in res.rows if r.method == "mps@1d"]
    assert rows and all(r.test_accuracy is not None for r in rows)
    # re-scored on the shared objectives: the front's names are the comparison's
    assert res.fronts[0]["mps@1d"].objectives == ("accuracy", "analog_mac_ratio",
                                             "digital_weight_bytes")
    # every anchor is a reference: each one is drift-scored and named
    anchors = [r for r in res.rows if r.method == "anchors"]
    assert {r.uniform for r in anchors} >= {"all-fp32", "all-analog"}
    assert all(r.drift_repeats == 2 for r in anchors)


def test_method_specs_are_checked(tmp_path) -> None:
    from hetmap.compare import MethodSpec, method_specs

    with pytest.raises(ConfigError, match="named twice"):
        method_specs(["mps", MethodSpec("mps", "random")])
    with pytest.raises(ConfigError, match="unknown methods"):
        method_specs([MethodSpec("x", "no-such-strategy")])


def test_harmonica_is_compared_on_a_supernet_offering_its_hybrids(tmp_path) -> None:
    res = _run(tmp_path, methods=("anchors", "harmonica"), seeds=1,
               budgets={"anchors": 4, "harmonica": 4},
               options={"anchors": {"train_steps": 1, "patience": None, **SMALL},
                        "harmonica": {"fractions": (0.05, 0.1), **SMALL}},
               drift_members=4)
    assert res.methods == ["anchors", "harmonica"]
    run = res.of("harmonica")[0]
    assert run.evaluations == 4 and run.compute.train_passes == 0  # no retraining
    rows = [r for r in res.rows if r.method == "harmonica"]
    assert rows and all(r.test_samples > 0 for r in rows)
    drifted = [r for r in rows if r.at(86400) is not None]
    # a hybrid member scored after drift: analog rows on aihwkit, sensitive rows digital
    assert any(0 < r.analog_mac_ratio < 1 for r in drifted)
    front = res.fronts[0]["harmonica"]
    used = {c for m in front.members for c in m.mapping.values()}
    assert used <= {"analog", "hybrid5", "hybrid10", "int8"}
    # the other methods' supernet offers no hybrid: their search space is unchanged
    assert all(not c.startswith("hybrid") for m in res.fronts[0]["anchors"].members
               for c in m.mapping.values())


def test_compare_config_passes_every_setting_of_the_run_config(monkeypatch) -> None:
    import hetmap.compare as cmp_mod
    from hetmap.config import load_config
    from hetmap.search import Budget

    seen: dict = {}
    monkeypatch.setattr(cmp_mod, "compare", lambda *a, **kw: seen.update(args=a, **kw))
    cfg = load_config(None, ["task.name=digits", "exclude=[conv1]", "search.evaluations=7",
                             "search.seconds=30", "search.draws=3", "drift.repeats=4",
                             "drift.members=2", "seed=5",
                             "search.objectives=[accuracy@1d,analog_mac_ratio]"])
    cmp_mod.compare_config(cfg, ["mps", "lionheart"], seeds=2)
    task, model, hardware, specs = seen["args"]
    assert task.name == "digits" and model is None and hardware == cfg.hardware
    assert [s.label for s in specs] == ["mps", "lionheart"]
    assert seen["budgets"] == {"mps": Budget(7, 30.0), "lionheart": Budget(7, 30.0)}
    assert seen["exclude"] == ["conv1"] and seen["seeds"] == [5, 6]
    assert seen["objectives"] == ["accuracy@1d", "analog_mac_ratio"]
    assert (seen["draws"], seen["drift_repeats"], seen["drift_members"]) == (3, 4, 2)
    assert seen["drift_times"] == cfg.drift.times and seen["candidates"] == cfg.candidates
    assert seen["train_config"].progress is False
    assert seen["stage3"]["steps"] == cfg.train.stage3.steps


def test_all_analog_fit_counts_the_tiles_against_the_chips(result) -> None:
    from hetmap.compare import all_analog_fit
    from hetmap.hardware import load_hardware, table_for
    from hetmap.supernet import build_supernet

    task = digits_task()
    torch.manual_seed(0)
    sn = build_supernet(task.build_model(), task.example_input(8),
                        candidates=("fp32", "int8", "analog"), analog=eager_analog())
    hermes = load_hardware("hermes-pcm")
    fit = all_analog_fit(sn, table_for(sn, hermes))
    assert fit is not None and fit.fits and 0 < fit.tiles <= fit.chip_tiles == 64
    assert result.all_analog == fit  # compare records it
    small = hermes.model_copy(update={"analog": hermes.analog.model_copy(
        update={"n_tiles": fit.tiles - 1})})
    short = all_analog_fit(sn, table_for(sn, small))
    assert short == replace(fit, chip_tiles=fit.tiles - 1, fits=False)
    digital = build_supernet(task.build_model(), task.example_input(8),
                             candidates=("fp32", "int8"))
    assert all_analog_fit(digital, table_for(digital, hermes)) is None  # no analog candidate


@pytest.mark.parametrize("search", [True, False])
def test_compare_config_mpaas_widens_and_searches_widths_as_run_does(monkeypatch,
                                                                      search) -> None:
    import hetmap.compare as cmp_mod
    import hetmap.training
    from hetmap.config import load_config

    seen: dict = {}
    monkeypatch.setattr(cmp_mod, "compare", lambda *a, **kw: seen.update(args=a, **kw))
    monkeypatch.setattr(hetmap.training, "pretrain",
                        lambda task, **kw: (task.build_model(), None))
    cfg = load_config(None, ["task.name=digits", "method=mpaas",
                             f"adapt.search={str(search).lower()}"])
    cmp_mod.compare_config(cfg, ["mps"], log=lambda _: None)
    task, model, _, _ = seen["args"]
    width = sum(p.numel() for p in model.parameters())
    assert width > sum(p.numel() for p in task.build_model().parameters())  # widened
    assert bool(seen["widths"]) is search  # adapt.search: widths are choices, as in run


def test_compare_config_refuses_a_gpu_it_would_not_use() -> None:
    from hetmap.compare import compare_config
    from hetmap.config import load_config

    with pytest.raises(ConfigError, match="runs every method on the CPU"):
        compare_config(load_config(None, ["task.name=digits", "device=cuda"]), ["mps"])
