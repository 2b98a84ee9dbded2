from __future__ import annotations

import json

import pytest

from hetmap import HetmapError
from hetmap.config import load_config
from hetmap.pipeline import run

FAST = [
    "task.name=digits", "train.stage1.epochs=1", "train.stage2.epochs=1",
    "train.stage3.steps=3", "train.stage3.n_mappings=8", "train.stage3.tau_mappings=0",
    "train.progress=false", "search.evaluations=24", "drift.times=[1, 86400]",
    "drift.repeats=2", "device=cpu",
]


TEST_READS: list[str | None] = []  # why the test split was opened, per read
DRIFTED: list[object] = []  # the mapping of every aihwkit drift evaluation, in order


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    from hetmap.tasks import base

    sealed_iter = base.SealedLoader.__iter__

    def recording(self):
        TEST_READS.append(base._FINAL.get())
        return sealed_iter(self)

    import hetmap.evaluation as evaluation

    measure = evaluation.evaluate_drift

    def counted(model, mapping=None, *args, **kwargs):
        DRIFTED.append(mapping)
        return measure(model, mapping, *args, **kwargs)

    out = tmp_path_factory.mktemp("run") / "digits"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(base.SealedLoader, "__iter__", recording)
        mp.setattr(evaluation, "evaluate_drift", counted)
        result = run(load_config(None, FAST), out, log=lambda _msg: None)
    return out, result


def test_the_test_split_is_read_only_for_final_scoring(finished_run) -> None:
    assert TEST_READS, "the run never scored the test split"
    assert set(TEST_READS) <= {"stage_evaluate", "the pretrained model's test score"}
    assert TEST_READS.count("stage_evaluate") >= 1


def test_run_writes_every_artifact_and_a_report(finished_run) -> None:
    out, result = finished_run
    for name in ("config.yaml", "environment.json", "pretrained.safetensors", "inventory.json",
                 "front.json", "front.csv", "drift.json", "cost.json", "summary.json",
                 "report.html", "export/mapping.json"):
        assert (out / name).exists(), name
    summary = json.loads((out / "summary.json").read_text())
    names = {row["name"] for row in summary["rows"]}
    assert {"all-fp32", "all-int8", "all-analog"} <= names
    assert any(row["kind"] == "front" for row in summary["rows"])
    fp32 = next(r for r in summary["rows"] if r["name"] == "all-fp32")
    analog = next(r for r in summary["rows"] if r["name"] == "all-analog")
    assert fp32["analog_mac_ratio"] == 0 and analog["analog_mac_ratio"] > 0.9
    assert fp32["test_accuracy"] > 80  # digits is easy; a broken pipeline would be near 10%
    assert summary["split"] == "test" and summary["samples"]["test"] == 359
    search = summary["search"]  # stage 3's scored mappings count against the search
    assert search["stage3_evaluations"] >= 8  # 3 steps of 8 mappings (cached repeats aside)
    assert search["evaluations_total"] == search["evaluations"] + search["stage3_evaluations"]
    assert any("only 359 samples" in w for w in summary["warnings"])  # < 500: flagged
    for row in summary["rows"]:  # every anchor and member: selection and reported figures
        for key in ("val_accuracy", "test_accuracy", "test_1d",
                    "test_1d_std"):
            assert row[key] is not None, (row["name"], key)
    drift = json.loads((out / "drift.json").read_text())
    assert drift["split"] == "test"
    drifted = {m["name"]: m for m in drift["mappings"]}
    assert {r["name"] for r in summary["rows"]} == set(drifted)  # every anchor and member
    assert all(m["samples"] == 359 and len(m["ci95"]) == 2 for m in drift["mappings"])
    for r in summary["rows"]:  # programming draws where something is analog, else one
        assert drifted[r["name"]]["repeats"] == (2 if r["analog_mac_ratio"] > 0 else 1)
    header = (out / "front.csv").read_text().splitlines()[0].split(",")
    assert {"val_accuracy", "test_accuracy", "test_1d"} <= set(header)
    front = json.loads((out / "front.json").read_text())
    assert front["split"] == "val" and "tile_overflow<=0" in front["constraints"]
    budget = json.loads((out / "cost.json").read_text())["mappings"][0]["tile_budget"]
    assert all(r["analog_tiles"] <= budget for r in summary["rows"] if r["kind"] == "front")
    assert result.report is not None and "<img" in result.report.read_text()


def test_used_run_directory_needs_resume_or_force(finished_run) -> None:
    out, _ = finished_run
    with pytest.raises(HetmapError, match="--resume"):
        run(load_config(None, FAST), out, log=lambda _msg: None)


def test_resume_reuses_checkpoints_and_gives_the_same_front(finished_run) -> None:
    out, first = finished_run
    lines: list[str] = []
    again = run(load_config(None, FAST), out, resume=True, log=lines.append, report=False)
    assert any("loaded full-precision weights" in line for line in lines)
    assert not any(line.startswith("pretraining") for line in lines)
    assert [m.mapping for m in again.front] == [m.mapping for m in first.front]


LOAD_AND_SCORE = '''
import sys, types
import torch
# hetmap's machinery is unavailable: only the architecture's own class may be imported
pkg = types.ModuleType("hetmap")
pkg.__path__ = [sys.argv[4]]
sys.modules["hetmap"] = pkg
for blocked in ("hetmap.supernet", "hetmap.candidates", "hetmap.evaluation", "hetmap.search"):
    sys.modules[blocked] = None
from aihwkit.nn import AnalogWrapper
model = AnalogWrapper(torch.load(sys.argv[1], weights_only=False)).eval()
batches = torch.load(sys.argv[2])
torch.manual_seed(int(sys.argv[5]))
model.program_analog_weights()
model.drift_analog_weights(float(sys.argv[6]))
with torch.no_grad():
    hits = sum(int((model(x).argmax(1) == y).sum()) for x, y in batches)
total = sum(len(y) for _, y in batches)
open(sys.argv[3], "w").write(repr(100.0 * hits / total))
'''


def test_exported_model_gives_the_reported_accuracy_in_plain_aihwkit(finished_run,
                                                                     tmp_path) -> None:
    import subprocess
    import sys
    from pathlib import Path

    import torch

    import hetmap as hm
    from hetmap.pipeline import make_task, pick_for_drift
    from hetmap.search import ParetoFront

    out, _ = finished_run
    cfg = load_config(out / "config.yaml")
    member = pick_for_drift(ParetoFront.load(out / "front.json"), k=1)[0]
    drift = json.loads((out / "drift.json").read_text())
    reported = next(m for m in drift["mappings"] if m["name"] == f"front-{member}")
    from hetmap.tasks import final_scoring

    with final_scoring():  # drift.json reports the test split
        test = list(make_task(cfg).loaders(batch_size=256, seed=cfg.seed).test)
    torch.save(test, tmp_path / "val.pt")
    script = tmp_path / "score.py"
    script.write_text(LOAD_AND_SCORE)
    src = str(Path(hm.__file__).parent)
    subprocess.run([sys.executable, str(script), str(out / "export" / "model.pt"),
                    str(tmp_path / "val.pt"), str(tmp_path / "acc.txt"), src, str(cfg.seed),
                    str(reported["times_s"][0])], check=True, timeout=300)
    accuracy = float((tmp_path / "acc.txt").read_text())
    assert accuracy == pytest.approx(reported["values"][0][0], abs=1e-9)
    card = json.loads((out / "export" / "scores.json").read_text())
    assert card["split"] == "test" and card["name"] == f"front-{member}"
    assert card["test_1d"] is not None and card["val_accuracy"] is not None


def test_make_task_uses_the_configured_model_or_the_tasks_own() -> None:
    from hetmap.models import ResNetCifar, SmallCNN
    from hetmap.pipeline import make_task

    assert isinstance(make_task(load_config(None, ["task.name=digits"])).build_model(),
                      SmallCNN)
    chosen = make_task(load_config(None, ["task.name=digits", "model.name=resnet8"]))
    assert isinstance(chosen.build_model(), ResNetCifar)


@pytest.fixture(scope="module")
def mpaas_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "digits-mpaas"
    cfg = load_config(None, [*FAST, "method=mpaas", "search.evaluations=16"])
    return out, run(cfg, out, log=lambda _msg: None, report=False)


def test_mpaas_searches_the_widths(mpaas_run) -> None:
    from hetmap.mapping import WIDTHS, Mapping, is_width_choice

    out, result = mpaas_run
    adapt = json.loads((out / "adapt.json").read_text())
    widened = [g for g in adapt["groups"] if g["new_width"] > g["old_width"]]
    assert widened
    gates = {f"width:{g['producers'][0]}" for g in widened if g["kind"] != "attention"}
    for member in result.front:
        assert {n for n in member.mapping if is_width_choice(n)} == gates
        assert all(member.mapping[g] in WIDTHS for g in gates)
    rows = json.loads((out / "summary.json").read_text())["rows"]
    assert all(r["width_groups"] == len(gates) for r in rows)
    assert next(r for r in rows if r["name"] == "all-analog")["wide_groups"] == len(gates)
    exported = Mapping.load(out / "export" / "mapping.json")
    assert gates <= set(exported)


def test_mpaas_can_widen_everything_as_before(mpaas_run, tmp_path) -> None:
    from hetmap.pipeline import Session

    out, _ = mpaas_run
    cfg = load_config(None, [*FAST, "method=mpaas", "adapt.search=false",
                             f"model.checkpoint={out / 'pretrained.safetensors'}"])
    sn = Session.open(cfg, tmp_path / "all-wide", log=lambda _msg: None).supernet
    assert sn.gate_names == () and not any(n.startswith("width:") for n in sn.layer_names)


def test_drift_is_measured_on_every_anchor_and_the_chosen_members() -> None:
    from types import SimpleNamespace

    from hetmap import Mapping
    from hetmap.pipeline import drift_measured
    from hetmap.search import Member

    m = Mapping({"a": "fp32"})
    ratios = [0.5, 0.0, 1.0, 0.25, 0.75]
    front = SimpleNamespace(members=[Member(m, {"analog_mac_ratio": r}) for r in ratios])
    named = {"all-fp32": ("anchor", m), "all-analog": ("anchor", m),
             **{f"front-{i}": ("front", m) for i in range(5)}}
    assert drift_measured(named, front, None) == set(named)
    # three spread along the analog share: the most digital, the middle, the most analog
    assert drift_measured(named, front, 3) == {"all-fp32", "all-analog", "front-1",
                                               "front-0", "front-2"}


def test_a_front_member_that_is_an_anchor_drifts_once(finished_run) -> None:
    from hetmap import Mapping

    out, _ = finished_run
    drift = json.loads((out / "drift.json").read_text())["mappings"]
    by = {d["name"]: Mapping.from_dict(d["mapping"]) for d in drift}
    twins = [n for n in by if n.startswith("front-") and by[n] == by["all-analog"]]
    assert twins, "the front's most analog end is the all-analog mapping"
    assert len(DRIFTED) == len(set(DRIFTED))  # every deployment programmed once
    results = {d["name"]: d for d in drift}
    assert all(results[n]["values"] == results["all-analog"]["values"] for n in twins)
