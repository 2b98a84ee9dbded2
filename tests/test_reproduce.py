"""hetmap.reproduce: cases, the reported row per method, the table, the ordering check; and
(HETMAP_REPRODUCE=1) `hetmap reproduce --quick` end to end."""

from __future__ import annotations

import os
from dataclasses import replace
from types import SimpleNamespace

import pytest

from hetmap.errors import ConfigError
from hetmap.mapping import Mapping
from hetmap.report.comparison import MappingRecord, Spread
from hetmap.report.results import ReportedRow, markdown_table, summarise
from hetmap.reproduce import (
    FULL,
    CaseResult,
    RunInfo,
    cases_for,
    load_results,
    render,
    write_results,
)
from hetmap.training import PretrainMetrics

MAPPING = Mapping({"conv1": "analog", "fc": "int8"}, "abc")


def test_cases_are_checked(tmp_path) -> None:
    assert [c.key for c in cases_for(["fcn-mnistseg"])] == ["fcn-mnistseg"]
    with pytest.raises(ConfigError, match="unknown cases"):
        cases_for(["resnet99"])
    with pytest.raises(ConfigError, match="does not exist"):
        cases_for(cifar10=str(tmp_path / "nowhere"))
    (tmp_path / "c").mkdir()
    assert {c.key for c in cases_for(cifar10=str(tmp_path / "c"))} >= {"resnet20-cifar10"}


def test_quick_runs_one_small_case_per_task() -> None:
    quick = cases_for(quick=True)
    assert [c.task for c in quick] == ["mnist", "mnist-seg", "synthetic-qa"]
    assert {c.task for c in cases_for()} == {c.task for c in quick}  # every task, smaller
    assert quick[0].options == {"model": "resnet8"} and quick[2].options["layers"] == 2
    # a case of either list can be named, in the order given
    assert [c.key for c in cases_for(["minilm2-qa", "resnet20-mnist"])] == [
        "minilm2-qa", "resnet20-mnist"]


def _row(method: str, seed: int, acc: float) -> ReportedRow:
    return ReportedRow("resnet20-mnist", method, seed, MAPPING, acc, acc + 1, 0.1, acc, 0.2,
                       acc - 1, 0.3, 0.5, 2.5e5, 4, True, 0.1, 1.5e-4, 9e-5, 1e-3, 6e-5,
                       hv_test=0.4, hv_test_1y=0.3, evaluations=24, compute_passes=1000,
                       wall_s=12.0)


def test_summary_is_mean_and_std_over_seeds_and_the_table_has_one_width() -> None:
    rows = [_row("mps", 0, 90.0), _row("mps", 1, 92.0), _row("lionheart", 0, 85.0)]
    s = {r.method: r for r in summarise(rows)}
    assert s["mps"].seeds == 2 and s["mps"].test_1d.mean == pytest.approx(91.0)
    assert s["mps"].test_1d.std == pytest.approx(1.4142, rel=1e-3)  # sample std
    table = markdown_table(summarise(rows), "accuracy")
    assert len({line.count("|") for line in table.strip().splitlines()}) == 1
    assert "91.00 ± 1.41" in table
    # SI in the rows, the headers' units in the cells: 2.5e5 B, 1.5e-4 s, 9e-5 J
    assert "| 0.2500 ± 0.0000 |" in table and "| 0.1500 ± 0.0000 |" in table
    assert "| 90.000 ± 0.000 |" in table


def test_schema_1_rows_are_read_in_si_units() -> None:
    new = _row("mps", 0, 90.0)
    old = {k: v for k, v in new.to_dict().items()
           if k not in ("digital_weight_bytes", "analog_tiles", "latency_s", "energy_j",
                        "paper_latency_s", "paper_energy_j")}
    old |= {"digital_mb": 0.25, "tiles": 4, "latency_ms": 0.15, "energy_uj": 90.0,
            "paper_latency_ms": 1.0, "paper_energy_uj": 60.0}
    back = ReportedRow.from_dict(old, version=1)
    assert back.digital_weight_bytes == pytest.approx(2.5e5)
    assert back.latency_s == pytest.approx(1.5e-4) and back.energy_j == pytest.approx(9e-5)
    assert back.paper_latency_s == pytest.approx(1e-3) and back.analog_tiles == 4
    assert ReportedRow.from_dict(new.to_dict()) == new


def test_every_case_names_a_published_row() -> None:
    from hetmap.report.paper import ACCURACY

    for case in (*cases_for(), *cases_for(quick=True)):
        assert case.paper in ACCURACY, case.key


def test_render_rewrites_the_text_from_results_json_alone(tmp_path) -> None:
    case = cases_for(["resnet20-mnist"])[0]
    rows = [_row("mps", 0, 90.0), _row("mps", 1, 92.0), _row("all-analog", 0, 85.0)]
    (tmp_path / "f.png").write_bytes(b"\x89PNG")
    run = RunInfo("hetmap reproduce", FULL, 600.0, revision="abc1234", machine="box")
    pre = PretrainMetrics(val=97.0, test=96.5, train_loss=0.1, steps=240, wall_s=30.0)
    write_results([CaseResult(case, "accuracy", rows, [tmp_path / "f.png"], pre, 60.0)],
                  tmp_path, run, running=["MobileNetV2 / MNIST 5k"])
    first = (tmp_path / "results.md").read_text()
    assert "at revision abc1234 on box, in 10.0 min" in first
    assert "Partial: still running MobileNetV2 / MNIST 5k" in first
    assert "91.00 ± 1.41" in first and "![f](f.png)" in first
    (tmp_path / "results.md").unlink()
    render(tmp_path)
    again = (tmp_path / "results.md").read_text()
    assert again == first  # all of it from results.json
    assert load_results(tmp_path)[1][0].pretrain == pre  # typed again on reading
    assert "rendered from the run's results.json" in again  # (this checkout is not abc1234)
    # --resume: the finished case is reused (budgets must match), only the rest would run
    from hetmap.reproduce import QUICK, reproduce

    lines: list[str] = []
    reproduce(tmp_path, cases=["resnet20-mnist"], resume=True, log=lines.append)
    assert lines[0] == "== resumed: ResNet-20 / MNIST 5k"
    resumed = (tmp_path / "results.md").read_text()
    assert "Reused by `--resume`" in resumed and "(revision abc1234)" in resumed
    assert "91.00 ± 1.41" in resumed and "Partial" not in resumed
    with pytest.raises(ConfigError, match="other budgets"):
        reproduce(tmp_path, quick=True, cases=["resnet20-mnist"], resume=True)
    assert QUICK != FULL
    (tmp_path / "results.json").write_text("[]")
    with pytest.raises(ConfigError, match="is not a results"):
        render(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        render(tmp_path / "nowhere")


@pytest.mark.skipif(os.environ.get("HETMAP_REPRODUCE") != "1",
                    reason="--quick end to end (about 7 minutes): HETMAP_REPRODUCE=1 (CI sets it)")
def test_reproduce_quick_end_to_end(tmp_path) -> None:
    from typer.testing import CliRunner

    from hetmap.cli.app import app

    res = CliRunner().invoke(app, ["reproduce", "--quick", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    md = (tmp_path / "results.md").read_text()
    assert "hetmap reproduce --quick" in md and "revision" in md
    for case in cases_for(quick=True):
        assert f"## {case.title}" in md
        assert (tmp_path / f"{case.key}-fronts.png").read_bytes()[:4] == b"\x89PNG"
    for method in ("all-fp32", "all-int8", "all-analog", "random", "mps", "mps@1d",
                   "lionheart", "odimo", "nsga2", "mpaas"):
        assert f"| {method} |" in md, method
    assert (tmp_path / "results.csv").read_text().startswith("case,method,seed")


def test_the_reported_member_is_the_best_mostly_analog_one() -> None:
    from hetmap.reproduce import reported_member

    def r(ratio: float, day: float) -> MappingRecord:
        return MappingRecord("mps", 0, 0, MAPPING, day, ratio, 0.0, 0, 0.0, 0.0, 0.0,
                             drift={86400.0: Spread(day)})

    assert reported_member([r(0.0, 99.0), r(0.8, 90.0), r(0.9, 91.0)]) == r(0.9, 91.0)
    # nothing mostly analog: the most analog member, not the most accurate digital one
    assert reported_member([r(0.0, 99.0), r(0.5, 90.0)]) == r(0.5, 90.0)


def test_the_second_chip_offers_every_candidate_the_fronts_use() -> None:

    from hetmap import Mapping
    from hetmap.reproduce import _used
    from hetmap.search import Member

    members = [Member(Mapping({"a": "hybrid5", "b": "int8", "g0": "wide"}), {}),
               Member(Mapping({"a": "analog", "b": "fp32", "g0": "narrow"}), {})]
    cmp = SimpleNamespace(fronts={0: {"harmonica": SimpleNamespace(members=members)}})
    assert _used(cmp) == ("hybrid5",)  # width choices and the shared four left out


def test_a_failing_case_is_reported_and_the_others_still_run(tmp_path, monkeypatch) -> None:
    import hetmap.reproduce as rp
    from hetmap.errors import TrainingError

    def fake(case, b, out, quick, log=print):
        if case.key == "fcn-mnistseg":
            raise ValueError("Only one group is supported")
        return CaseResult(case, "accuracy", [_row("mps", 0, 90.0)], [], None, 1.0)

    monkeypatch.setattr(rp, "run_case", fake)
    with pytest.raises(TrainingError, match=r"1 case.*FCN-ResNet-8 / mnist-seg: ValueError"):
        rp.reproduce(tmp_path, cases=["fcn-mnistseg", "resnet20-mnist"], log=lambda _: None)
    md = (tmp_path / "results.md").read_text()
    assert "**Failed: FCN-ResNet-8 / mnist-seg (ValueError: Only one group is supported).**" in md
    assert "## ResNet-20 / MNIST 5k" in md and "Partial" not in md
    assert render(tmp_path).read_text() == md  # the failure is kept in results.json too


def test_a_heavy_case_scales_every_methods_budgets_down_alike(tmp_path) -> None:
    from hetmap.report.comparison import TileFit
    from hetmap.reproduce import QUICK, Case

    heavy = cases_for(["mobilenetv2x0.5-mnist"])[0]
    b = heavy.budgets_for(FULL, quick=False)
    assert b.seeds == FULL.seeds >= 3  # the table's spread is over three seeds for every case
    assert b.stage_steps == heavy.budgets["stage_steps"] < FULL.stage_steps
    assert b.train_steps == FULL.train_steps
    assert heavy.budgets_for(QUICK, quick=True) == QUICK  # --quick ignores the scale-down
    light = cases_for(["resnet20-mnist"])[0]
    assert light.budgets_for(FULL, quick=False) == FULL
    with pytest.raises(ConfigError, match=r"budgets \['epochs'\] are not Budgets fields"):
        Case("x", "X", "mnist", budgets={"epochs": 1})
    run = RunInfo("hetmap reproduce", FULL, 60.0, revision="abc1234", machine="box")
    row = replace(_row("mps", 0, 90.0), case=heavy.key)
    fit = TileFit(tiles=194, chip_tiles=64, tile="256x256", fits=False)
    write_results([CaseResult(heavy, "accuracy", [row], [], None, 60.0, all_analog=fit)],
                  tmp_path, run)
    md = (tmp_path / "results.md").read_text()
    assert 'Budgets scaled down for this case (every method alike): `{"stage_steps": 8' in md
    assert "No all-analog row: the all-analog mapping needs 194 tiles" in md
    assert render(tmp_path).read_text() == md  # scale-down and tile fit kept in results.json


def test_resume_reruns_a_case_whose_budgets_changed(tmp_path, monkeypatch) -> None:
    import hetmap.reproduce as rp

    case = cases_for(["resnet20-mnist"])[0]
    run = RunInfo("hetmap reproduce", FULL, 60.0, revision="abc1234", machine="box")
    old = replace(case, budgets={"seeds": 1})
    write_results([CaseResult(old, "accuracy", [_row("mps", 0, 90.0)], [], None, 60.0)],
                  tmp_path, run)
    ran: list[str] = []

    def fake(case, b, out, quick, log=print):
        ran.append(case.key)
        return CaseResult(case, "accuracy", [_row("mps", 0, 91.0)], [], None, 1.0)

    monkeypatch.setattr(rp, "run_case", fake)
    lines: list[str] = []
    rp.reproduce(tmp_path, cases=["resnet20-mnist"], resume=True, log=lines.append)
    assert ran == ["resnet20-mnist"]
    assert "== rerun (their case changed since): ResNet-20 / MNIST 5k" in lines
    assert "Budgets scaled down" not in (tmp_path / "results.md").read_text()
    # the same case as recorded is reused
    ran.clear()
    rp.reproduce(tmp_path, cases=["resnet20-mnist"], resume=True, log=lines.append)
    assert ran == []


def test_a_method_on_one_seed_shows_no_spread_over_seeds() -> None:
    from hetmap.report.results import markdown_table, summarise

    one = markdown_table(summarise([_row("mps", 0, 90.0)]), "accuracy")
    assert "| mps | 1 | 91.00 | 90.00 | 89.00 |" in one and "±" not in one.splitlines()[2]
    two = markdown_table(summarise([_row("mps", 0, 90.0), _row("mps", 1, 92.0)]), "accuracy")
    assert "| mps | 2 | 92.00 ± 1.41 | 91.00 ± 1.41 |" in two


def test_the_minilm_case_truncates_no_question() -> None:
    from hetmap.tasks import get_task

    case = cases_for(["minilm-qa"])[0]
    task = get_task(case.task, **case.options)
    # one feature per question: no paragraph overflowed max_length into a second window
    assert sum(len(v) for v in task.split_index.values()) == case.options["questions"]
    assert case.options["max_length"] < 96  # the point of setting it


def test_seed_jobs_start_every_case_before_its_second_seed() -> None:
    from hetmap.reproduce import seed_jobs

    cases = cases_for(["minilm-qa", "resnet20-mnist", "fcn-mnistseg"])
    order = [(c.key, s) for c, s in seed_jobs(cases, FULL, quick=False)]
    assert order[:3] == [("minilm-qa", 0), ("resnet20-mnist", 0), ("fcn-mnistseg", 0)]
    assert order[3:] == [(k, s) for k in ("minilm-qa", "resnet20-mnist", "fcn-mnistseg")
                         for s in range(1, FULL.seeds)]
    assert len(set(order)) == len(order) == 3 * FULL.seeds


def test_merged_comparisons_keep_every_seed_once() -> None:
    from hetmap.report.comparison import Comparison, ComparisonSettings

    def part(seed: int, methods: tuple[str, ...] = ("mps",)) -> Comparison:
        runs = [SimpleNamespace(method=m, seed=seed) for m in methods]
        return Comparison(runs, [], {seed: f"shared{seed}"}, {seed: {"mps": f"front{seed}"}},
                          ComparisonSettings(tuple(methods), (seed,), drift_times=(0.0,)))

    both = Comparison.merged([part(0), part(1)])
    assert both.seeds == [0, 1] and both.settings.seeds == (0, 1)
    assert both.shared == {0: "shared0", 1: "shared1"} and set(both.fronts) == {0, 1}
    assert both.times == [0.0]
    with pytest.raises(ConfigError, match=r"seeds \[0\] are in two"):
        Comparison.merged([part(0), part(0)])
    with pytest.raises(ConfigError, match="other methods"):
        Comparison.merged([part(0), part(1, ("mps", "random"))])


@pytest.mark.skipif(os.environ.get("HETMAP_REPRODUCE") != "1",
                    reason="two quick seeds twice (about 3 minutes): HETMAP_REPRODUCE=1")
def test_a_case_run_seed_by_seed_gives_the_table_of_the_case_run_whole(tmp_path) -> None:
    import hetmap.reproduce as rp

    case = cases_for(["fcn-mnistseg"], quick=True)[0]
    b = replace(rp.QUICK, seeds=2)
    quiet = lambda _: None  # noqa: E731
    whole = rp.finish_case([rp.run_part(case, b, tmp_path, True, log=quiet)], tmp_path)
    apart = rp.finish_case([rp.run_part(case, b, tmp_path, True, seeds=[s], log=quiet)
                            for s in (1, 0)], tmp_path)  # in either order
    assert [r.seed for r in apart.rows] == [r.seed for r in whole.rows]
    assert {0, 1} == {r.seed for r in whole.rows}
    assert [replace(r, wall_s=None) for r in apart.rows] == [
        replace(r, wall_s=None) for r in whole.rows]
    assert (tmp_path / "runs" / f"{case.key}-seed1").is_dir()  # apart, apart on disk
