"""The report from synthetic, schema-valid artifacts: plots and table in the HTML, graceful
notes for missing artifacts, and a real render in headless Chromium."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from hetmap.report import build_report
from hetmap.report.artifacts import ArtifactError, read_cost, read_drift, read_summary
from hetmap.rundir import RunDir

LAYERS = ["conv1", "layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv1", "layer2.0.conv2",
          "layer2.0.shortcut", "layer3.0.conv1", "layer3.0.conv2", "fc"]
MACS = [86_528, 1_179_648, 1_179_648, 589_824, 1_179_648, 65_536, 589_824, 1_179_648, 640]


def _mapping(pattern: str) -> dict[str, str]:
    cands = {"d": "fp32", "8": "int8", "4": "int4", "a": "analog"}
    return {name: cands[c] for name, c in zip(LAYERS[1:-1], pattern)}  # conv1, fc excluded


UNMAPPED = 1000  # MACs no mappable layer does (attention scores, ...)


def _scores(mapping: dict[str, str], acc: float) -> dict[str, float]:
    macs = dict(zip(LAYERS, MACS))
    analog = sum(macs[n] for n, c in mapping.items() if c == "analog")
    bits = {"fp32": 32, "int8": 8, "int4": 4, "analog": 0}
    digital = sum(macs[n] / 100 * bits[c] / 8 for n, c in mapping.items())
    return {"accuracy": acc, "analog_mac_ratio": analog / sum(MACS),
            "analog_mac_ratio_total": analog / (sum(MACS) + UNMAPPED),
            "digital_weight_bytes": digital,
            "analog_tiles": sum(1 for c in mapping.values() if c == "analog") * 2,
            "latency_s": 2e-5 + 1e-11 * (sum(MACS) - analog),
            "energy_j": 1e-7 + 1e-12 * (sum(MACS) - analog)}


def _cost(name: str, mapping: dict[str, str]) -> dict:
    records = []
    prev = "digital"
    for layer, macs in zip(LAYERS, MACS):
        cand = mapping.get(layer, "fp32")
        core = "analog" if cand == "analog" else "digital"
        lat = macs * (2e-13 if core == "analog" else 4e-12)
        records.append({"name": layer, "candidate": cand, "core": core, "latency_s": lat,
                        "energy_j": macs * (1e-13 if core == "analog" else 1e-12),
                        "weight_load_energy_j": 0.0,
                        "transfer_latency_s": 1e-7 if core != prev else 0.0,
                        "transfer_energy_j": 2e-9 if core != prev else 0.0, "tiles": 2})
        prev = core
    return {"name": name, "latency_s": sum(r["latency_s"] for r in records),
            "energy_j": sum(r["energy_j"] for r in records), "analog_tiles": 6,
            "tile_budget": 64, "layers": records}


def make_run(root: Path) -> RunDir:
    """A run directory holding every artifact the report reads."""
    run = RunDir.create(root)
    (root / "config.yaml").write_text("task: {name: mnist}\nmodel: {name: small_cnn}\n"
                                      "hardware: hermes-pcm\nmethod: mps\nseed: 0\n")
    run.write_json("environment.json", {"hetmap": "0.1.0", "torch": "2.13.0",
                                        "aihwkit": "1.2.0", "python": "3.11",
                                        "git_revision": "0123456789abcdef",
                                        "created": "2026-01-01T00:00:00+00:00"})
    run.write_json("inventory.json", {"tile": [256, 256], "batch_size": 1,
                                      "layers": [{"name": n, "macs": m}
                                                 for n, m in zip(LAYERS, MACS)]})
    patterns = ["ddddddd", "8888888", "aa8aaaa", "aa88aa8", "a888a88", "84a4a4a", "aaaaaaa"]
    accs = [98.9, 98.8, 98.1, 98.5, 98.7, 98.3, 97.2]
    front = [{"name": f"front-{i}", "mapping": {"schema_version": 1, "model": "abc",
                                                "choices": _mapping(p)},
              "scores": _scores(_mapping(p), a)}
             for i, (p, a) in enumerate(zip(patterns[2:6], accs[2:6]))]
    evaluated = [{"scores": _scores(_mapping(p), a - 0.6)} for p, a in zip(patterns, accs)]
    run.write_json("front.json", {"schema_version": 3, "objectives": ["accuracy",
                                                                      "analog_mac_ratio"],
                                  "members": front, "evaluated": evaluated})
    rows = []
    for name, p, a in (("all-digital", patterns[0], accs[0]), ("all-int8", patterns[1], accs[1]),
                       ("all-analog", patterns[6], accs[6])):
        rows.append({"name": name, "kind": "anchor", "mapping": _mapping(p),
                     "val_accuracy": a + 0.1, "test_accuracy": a,
                     "test_1d": a - (1.5 if "analog" in name else 0.0),
                     "test_1d_std": 0.3 if "analog" in name else 0.0,
                     **_scores(_mapping(p), a)})
    for m in front[:3]:
        rows.append({"name": m["name"], "kind": "front", **m["scores"],
                     "val_accuracy": m["scores"]["accuracy"],
                     "test_accuracy": m["scores"]["accuracy"] - 0.2,
                     "test_1d": m["scores"]["accuracy"] - 0.4,
                     "test_1d_std": 0.2})
    for r in rows:
        del r["accuracy"]  # summary rows name their split
    rows[-1]["energy_j"] = None  # a value a stage did not measure
    run.write_json("summary.json", {"schema_version": 3, "task": "mnist",
                                    "metric": "accuracy", "hardware": "hermes-pcm",
                                    "split": "test", "samples": {"train": 3500, "val": 500,
                                                                 "test": 1000},
                                    "warnings": ["the val split has only 300 samples"],
                                    "rows": rows})
    times = [1.0, 3600.0, 86400.0, 31536000.0]
    run.write_json("drift.json", {"schema_version": 3, "metric": "accuracy", "mappings": {
        r["name"]: {"times": times,
                    "mean": [r["test_accuracy"]
                             - k * (0.2 + r["analog_mac_ratio"]) * math.log10(t + 1)
                             for k, t in zip((0.3, 0.3, 0.3, 0.3), times)],
                    "std": [0.1 + 0.05 * i for i in range(4)]}
        for r in rows if r["name"] != "all-digital"}})
    run.write_json("cost.json", {"schema_version": 3, "hardware": "hermes-pcm", "mappings": [
        _cost(r["name"], r.get("mapping") or front[int(r["name"][-1])]["mapping"]["choices"])
        for r in rows]})
    return run


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def _png_colours(path: Path) -> int:
    """Distinct colours in a downsampled copy of the image."""
    from PIL import Image

    with Image.open(path) as img:
        small = img.convert("RGB").resize((140, 300))
        return len(small.getcolors(maxcolors=140 * 300) or [])


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("run") / "run"
    make_run(root)
    return build_report(root)


def test_report_has_plots_and_table(report: Path) -> None:
    text = report.read_text()
    imgs = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)"', text)
    alts = {alt for _, alt in imgs}
    assert {"Pareto front", "Per-layer mapping", "Drift", "Cost per core"} <= alts
    assert any(a.startswith("Cost per layer") for a in alts)
    assert all(len(data) > 4000 for data, _ in imgs)  # real pictures, not empty PNGs
    table = re.search(r'<table class="summary">.*?</table>', text, re.S)
    assert table is not None
    body = table.group(0)
    for name in ("all-digital", "all-analog", "front-0", "front-2"):
        assert f">{name}<" in body
    assert body.count("<tr") == 7  # header + 3 anchors + 3 front mappings
    cells = {}  # mapping name -> its cells after the name
    for row in re.findall(r'<tr class="(?:anchor|front)">(.*?)</tr>', body, re.S):
        name = re.search(r"<td>([\w-]+)<span", row)
        assert name is not None, row
        cells[name.group(1)] = re.findall(r"<td[^>]*>(.*?)</td>", row)[1:]
    # validation (selection), test, test after 1 day (mean ± std), analog MAC share (of
    # mappable layers, of all MACs), digital memory, tiles, latency, energy
    assert cells["all-digital"][:4] == ["99.00 %", "98.90 %", "98.90 ± 0.00 %", "0.0 %"]
    assert cells["all-analog"][:4] == ["97.30 %", "97.20 %", "95.70 ± 0.30 %",
                                       "98.6 %"]  # fc, conv1 fp32
    assert cells["front-0"][:3] == ["98.10 %", "97.90 %", "97.70 ± 0.20 %"]
    assert cells["front-2"][8] == "–"  # the unmeasured energy
    assert "analog MACs (of all MACs)" in body
    assert [c for c in cells["front-2"][:8] if c == "–"] == []
    # the best value of a column is marked: accuracy on all-digital, energy on all-analog
    assert '<td class="best">98.90 %</td>' in body and '<td class="best">97.20 %' not in body
    assert re.search(r'all-analog<span.*?<td class="best">187 nJ</td></tr>', body, re.S)
    assert "http://" not in text and "https://" not in text and "<script" not in text
    for png in ("pareto", "mapping", "drift", "cost_cores"):
        assert (report.parent / "plots" / f"{png}.png").is_file()
    assert re.search(r'<table class="layers">.*layer2\.0\.conv1.*analog', text, re.S)


def test_report_labels_its_splits(report: Path) -> None:
    text = report.read_text()
    table = re.search(r'<table class="summary">.*?</table>', text, re.S).group(0)
    assert "validation accuracy (selection)" in table and "test accuracy</th>" in table
    assert "test accuracy after 1 day" in table
    assert "98.90 %" in table and "99.00 %" in table  # all-digital: test, then validation
    assert "Warning: the val split has only 300 samples" in text
    assert "test 1,000" in text
    assert 'alt="Search (validation)"' in text  # the search's own view, labelled


def test_drift_aware_estimates_get_a_labelled_column(tmp_path: Path) -> None:
    """A search on accuracy@1d: each row's val_estimates is shown as hetmap's estimate on
    validation, beside aihwkit's 1-day figure on test; a run without them has no column."""
    run = make_run(tmp_path / "run")
    summary = json.loads(run.path("summary.json").read_text())
    for i, row in enumerate(summary["rows"]):
        row["val_estimates"] = {"accuracy@1d": 90.0 + i}
    summary["estimates"] = {"objectives": ["accuracy@1d"], "source": "hetmap PCM mode"}
    run.write_json("summary.json", summary)
    assert read_summary(summary).estimates == ["accuracy@1d"]
    text = build_report(run.root).read_text()
    table = re.search(r'<table class="summary">.*?</table>', text, re.S).group(0)
    heads = re.findall(r"<th>(.*?)</th>", table)
    assert heads[1:4] == ["validation accuracy (selection)",
                          "validation accuracy@1d (hetmap estimate)", "test accuracy"]
    assert "test accuracy after 1 day (aihwkit)" in heads
    row = re.search(r'<tr class="anchor"><td>all-digital<span.*?</tr>', table).group(0)
    assert re.findall(r"<td[^>]*>(.*?)</td>", row)[1:4] == ["99.00 %", "90.00 %", "98.90 %"]
    assert "hetmap estimate" in text and "aihwkit" in text
    with pytest.raises(ArtifactError, match="val_estimates"):
        read_summary({"rows": [{"name": "x", "val_estimates": [90.0]}]})


def test_missing_artifacts_become_notes(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    for name in ("drift.json", "cost.json", "inventory.json"):
        run.path(name).unlink()
    (run.root / "front.json").write_text("{broken")
    text = build_report(run.root).read_text()
    assert "No drift.json in this run" in text
    assert "No cost.json in this run" in text
    assert "layer widths are drawn equal" in text
    assert "front.json could not be read" in text
    assert 'alt="Per-layer mapping"' in text and 'alt="Pareto front"' in text


def test_empty_run_dir_still_reports(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run")
    text = build_report(run.root).read_text()
    assert text.count('class="note"') == 5 and "<img" not in text


def test_readers_reject_off_schema_files() -> None:
    with pytest.raises(ArtifactError, match=r"rows\[0\]\.kind"):
        read_summary({"rows": [{"name": "x", "kind": "best"}]})
    with pytest.raises(ArtifactError, match=r"test_accuracy: expected a number"):
        read_summary({"rows": [{"name": "x", "test_accuracy": "high"}]})
    with pytest.raises(ArtifactError, match="same length"):
        read_drift({"mappings": [{"name": "a", "times": [1, 2], "mean": [1.0]}]})
    with pytest.raises(ArtifactError, match="schema_version"):
        read_drift({"schema_version": 4, "mappings": []})
    # an older schema's name is refused with the new one, never read as a missing figure
    with pytest.raises(ArtifactError, match=r"rows\[0\]: 'digital_bytes' is an older "
                       "schema's name of 'digital_weight_bytes'"):
        read_summary({"rows": [{"name": "x", "digital_bytes": 9.0}]})
    with pytest.raises(ArtifactError, match="'test_accuracy_1day_mean' is an older schema's "
                       "name of 'test_1d'"):
        read_summary({"rows": [{"name": "x", "test_accuracy_1day_mean": 90.0}]})
    _, costs = read_cost({"mappings": {"m": {"layers": [
        {"name": "a", "core": "analog", "latency_s": 1.0, "energy_j": 2.0,
         "transfer_latency_s": 0.5, "transfer_energy_j": 0.25},
        {"name": "b", "core": "digital", "latency_s": 3.0, "energy_j": 4.0},
        {"name": "c", "core": "", "latency_s": 0.0, "energy_j": 0.0}]}}})
    assert costs[0].cores == {"analog": {"latency_s": 1.5, "energy_j": 2.25},
                              "digital": {"latency_s": 3.0, "energy_j": 4.0}}


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium is not installed "
                    "(Debian package `chromium`); the screenshot check needs it")
def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
           "--window-size=1400,3000", report.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert shot.is_file(), f"no screenshot; chromium said: {proc.stderr[-2000:]}"
    if os.environ.get("HETMAP_KEEP_SCREENSHOT"):  # to look at it: the path to copy it to
        shutil.copy(shot, os.environ["HETMAP_KEEP_SCREENSHOT"])
    assert _png_size(shot) == (1400, 3000)
    assert shot.stat().st_size > 100_000
    assert _png_colours(shot) > 30  # plots and table, not a blank or single-colour page


def test_reads_what_search_and_drift_write(tmp_path: Path) -> None:
    """front.json as ParetoFront.save writes it and DriftResult.to_dict() items are read
    as they are (the report's keys are the objective names)."""
    from hetmap.evaluation.drift import DriftResult
    from hetmap.mapping import Mapping
    from hetmap.search import Member, ParetoFront

    run = make_run(tmp_path / "run")
    run.path("cost.json").unlink()  # not under test here; its plots are the slowest
    members = [Member(Mapping(_mapping(p)), {"accuracy": a, "analog_mac_ratio": r,
                                             "digital_weight_bytes": b})
               for p, a, r, b in (("aa8aaaa", 98.0, 0.8, 900.0), ("8888888", 98.6, 0.0, 9e3))]
    front = ParetoFront(members, ("accuracy", "analog_mac_ratio", "digital_weight_bytes"))
    front.save(run.root)
    drift = DriftResult((1.0, 86400.0), [[97.0, 97.2], [96.0, 96.4]])
    run.write_json("drift.json", {"mappings": {"front-0": drift.to_dict()}})
    from hetmap.report.artifacts import read_front

    parsed = read_front(json.loads((run.root / "front.json").read_text()))
    assert [m.name for m in parsed.members] == ["front-0", "front-1"]
    assert parsed.members[0].scores["digital_weight_bytes"] == 9e3  # sorted by accuracy, best first
    _, curves = read_drift(run.read_json("drift.json"))
    assert curves[0].times == [1.0, 86400.0] and curves[0].mean == pytest.approx([97.1, 96.2])
    text = build_report(run.root).read_text()
    assert 'alt="Drift"' in text and 'alt="Pareto front"' in text


def test_layer_table_lists_width_choices_after_the_layers() -> None:
    from hetmap.report.artifacts import Layer, Row
    from hetmap.report.html import layer_table

    rows = [Row("front-0", "front", {}, {"fc1": "analog", "width:fc1": "narrow"}),
            Row("front-1", "front", {}, {"fc1": "int8", "width:fc1": "wide"})]
    html = layer_table(rows, [Layer("fc1", 100.0)])
    assert html.index(">fc1<") < html.index(">width:fc1<")
    width_row = html[html.index(">width:fc1<"):]
    assert ">narrow<" in width_row and ">wide<" in width_row
    plain = [Row("a", "front", {}, {"fc1": "fp32"})]  # an mps run: no width rows
    assert "width:" not in layer_table(plain, [Layer("fc1", 1.0)])
