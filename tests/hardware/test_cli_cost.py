"""`hetmap cost`: one line per uniform mapping, the replication/pipelining used, and the
tile budget respected (not fitting is said, or reprogramming is costed)."""

from typer.testing import CliRunner

from hetmap.cli.app import app

runner = CliRunner()


def test_cost_prints_uniform_mappings_with_replication_and_pipelining(tmp_path, monkeypatch):
    monkeypatch.setenv("HETMAP_ZIGZAG_CACHE", str(tmp_path))
    args = ["cost", "small_cnn", "--in-channels", "1", "--size", "8"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "replication on, pipelining on" in result.output
    lines = {ln.split()[0]: ln.split() for ln in result.output.splitlines()
             if ln.startswith("all-")}
    assert set(lines) == {"all-fp32", "all-fp16", "all-int8", "all-analog"}
    assert float(lines["all-analog"][1]) > 0 and lines["all-analog"][7] == "yes"
    off = runner.invoke(app, [*args, "--no-replication", "--no-pipeline"])
    assert "replication off, pipelining off" in off.output
    slow = {ln.split()[0]: ln.split() for ln in off.output.splitlines() if ln.startswith("all-")}
    assert float(slow["all-analog"][1]) > float(lines["all-analog"][1])
    assert slow["all-analog"][5] == slow["all-analog"][4]  # no copies: tiles = tiles w/copies


def test_cost_reports_models_that_do_not_fit(tmp_path, monkeypatch):
    import yaml

    from hetmap.hardware import load_hardware

    monkeypatch.setenv("HETMAP_ZIGZAG_CACHE", str(tmp_path))
    data = load_hardware("hermes-pcm").model_dump(mode="json")
    data["analog"]["n_tiles"] = 1
    path = tmp_path / "one-tile.yaml"
    path.write_text(yaml.safe_dump(data))
    args = ["cost", "small_cnn", "--in-channels", "1", "--size", "8", "--hardware", str(path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "all-analog does NOT fit" in result.output
    paid = runner.invoke(app, [*args, "--overflow", "reprogram"])
    assert "tiles reprogrammed per inference" in paid.output
