"""`hetmap` commands. Each command is a thin shell over the library API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from hetmap.errors import HetmapError
from hetmap.rundir import RunDir

app = typer.Typer(help="Map deep networks onto mixed analog/digital accelerators.",
                  no_args_is_help=True, add_completion=False)
config_app = typer.Typer(help="Configuration files.", no_args_is_help=True)
app.add_typer(config_app, name="config")

SetOption = Annotated[list[str] | None, typer.Option(
    "--set", help="Override a config value, e.g. --set search.evaluations=64 (repeatable).")]
ForceOption = Annotated[bool, typer.Option("--force", help="Delete a used run directory and "
                                                           "start over.")]
ResumeOption = Annotated[bool, typer.Option("--resume", help="Continue the run in a used run "
                                                             "directory.")]


def _finish(result: object) -> None:
    from hetmap.pipeline import RunResult

    assert isinstance(result, RunResult)
    if result.summary.get("rows"):
        from hetmap.report.artifacts import read_summary
        from hetmap.report.finding import finding, summary_text

        summary = read_summary(result.summary)
        typer.echo("\n" + summary_text(summary) + "\n\n" + finding(summary))
    typer.echo(f"\ndone in {result.seconds / 60:.1f} min; run directory: {result.run_dir}")
    if result.report is not None:
        typer.echo(f"report: {result.report}")


@app.command()
def demo(out: Annotated[Path | None, typer.Option(help="Run directory (default: a new "
                                                       "runs/demo-<time> folder).")] = None,
         overrides: SetOption = None) -> None:
    """Map ResNet-8 on the embedded MNIST 5k in about five minutes (the defaults plus
    hetmap.config.DEMO_OVERRIDES) and print the summary and where the report is."""
    from hetmap.config import demo_config
    from hetmap.pipeline import run

    out = out or Path("runs") / time.strftime("demo-%Y%m%d-%H%M%S")
    _finish(run(demo_config(overrides or []), out, log=typer.echo))


@app.command("run")
def run_command(config: Annotated[Path, typer.Argument(help="YAML config (see `hetmap config "
                                                            "example`).")],
                out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/run"),
                overrides: SetOption = None, force: ForceOption = False,
                resume: ResumeOption = False) -> None:
    """Run the whole flow of CONFIG into a run directory."""
    from hetmap.config import load_config
    from hetmap.pipeline import run

    _finish(run(load_config(config, overrides or []), out, force=force, resume=resume,
                log=typer.echo))


@app.command()
def resume(out: Annotated[Path, typer.Argument(help="Run directory to continue.")]) -> None:
    """Continue an interrupted run from its checkpoints (same config)."""
    from hetmap.config import load_config
    from hetmap.pipeline import run

    snapshot = out / RunDir.CONFIG
    if not snapshot.is_file():
        raise HetmapError(f"{out} has no {RunDir.CONFIG}: it is not a hetmap run directory")
    _finish(run(load_config(snapshot), out, resume=True, log=typer.echo))


@app.command()
def train(config: Annotated[Path | None, typer.Argument(help="YAML config (omitted: the "
                                                            "demo's).")] = None,
          out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/run"),
          overrides: SetOption = None, force: ForceOption = False,
          resume: ResumeOption = False) -> None:
    """Pretrain (or load) and train the supernet in three stages; saves it in the run."""
    from hetmap.config import load_config
    from hetmap.pipeline import Session, stage_train

    session = Session.open(load_config(config, overrides or []), out, force=force,
                           resume=resume, log=typer.echo)
    metrics = stage_train(session)
    typer.echo(f"trained: {', '.join(f'{k} {v:.4g}' for k, v in metrics.to_dict().items())}")


@app.command()
def search(out: Annotated[Path, typer.Argument(help="Run directory with a trained "
                                                    "supernet.")]) -> None:
    """Search the trained supernet of a run (its config's strategy and budget)."""
    from hetmap.pipeline import Session, stage_search

    front = stage_search(Session.existing(out, log=typer.echo))
    for i, member in enumerate(front):
        typer.echo(f"front-{i}: " + ", ".join(f"{k} {v:.4g}" for k, v in member.scores.items()))


@app.command()
def evaluate(out: Annotated[Path, typer.Argument(help="Run directory with a front.")]) -> None:
    """Drift (aihwkit) and cost of the anchors and chosen front members -> summary.json."""
    from hetmap.pipeline import Session, stage_evaluate

    summary = stage_evaluate(Session.existing(out, log=typer.echo))
    typer.echo(f"summary of {len(summary['rows'])} mappings in {out / RunDir.SUMMARY}")


@app.command()
def export(out: Annotated[Path, typer.Argument(help="Run directory with a front.")],
           member: Annotated[int | None, typer.Option(help="Front member (default: the most "
                                                           "accurate mixed one).")] = None
           ) -> None:
    """The chosen mapping as JSON plus a deployable aihwkit model, in RUN_DIR/export."""
    from hetmap.pipeline import Session, stage_export

    typer.echo(f"exported to {stage_export(Session.existing(out, log=typer.echo), member)}")


@app.command()
def report(out: Annotated[Path, typer.Argument(help="Run directory.")]) -> None:
    """(Re)build report.html and plots/ from a run directory's artifacts."""
    from hetmap.report import build_report

    typer.echo(f"report: {build_report(out)}")


@app.command()
def compare(config: Annotated[Path | None, typer.Argument(help="YAML run config: every "
                                                              "setting of it is used "
                                                              "(compare_config); omitted: "
                                                              "the defaults.")
                              ] = None,
            methods: Annotated[str, typer.Option(help="Comma-separated methods.")] =
            "anchors,random,mps,lionheart,odimo,nsga2",
            seeds: Annotated[int, typer.Option(min=1, help="Seeds (0..N-1); mean ± std over "
                                                           "them.")] = 3,
            anchors: Annotated[bool, typer.Option(help="Uniform anchors for every population "
                                                       "method (mps, nsga2), or for none.")]
            = False,
            drift_members: Annotated[int | None, typer.Option(
                min=1, help="Front members per method scored after drift (default: the "
                "config's drift.members, else 3).")] = None,
            out: Annotated[Path, typer.Option(help="Output folder.")] = Path("runs/compare"),
            overrides: SetOption = None) -> None:
    """Every mapper from the same stage-1/2 trained supernet, over seeds; selection on
    validation, figures on the test split -> compare.md, compare.csv, compare.png."""
    from hetmap.compare import compare_config
    from hetmap.config import load_config

    cfg = load_config(config, overrides or [])
    names = [m.strip() for m in methods.split(",") if m.strip()]
    result = compare_config(cfg, names, seeds=seeds, anchors=anchors,
                            drift_members=drift_members, out=out, log=typer.echo)
    typer.echo(result.to_markdown())
    typer.echo(f"results in {out}/")


@app.command()
def reproduce(out: Annotated[Path, typer.Option(help="Folder of results.md, results.csv, "
                                                     "results.json and the figures.")]
              = Path("docs/results"),
              quick: Annotated[bool, typer.Option(help="Every case and method end to end "
                                                       "on tiny budgets (a smoke run, "
                                                       "minutes).")] = False,
              cases: Annotated[str | None, typer.Option(help="Comma-separated case keys "
                                                             "(default: all).")] = None,
              cifar10: Annotated[Path | None, typer.Option(help="CIFAR-10 folder (python "
                                                               "batches): adds its cases.")]
              = None,
              jobs: Annotated[int, typer.Option(min=1, help="Cases run at once, each in its "
                                                "own process with a share of the CPU "
                                                "threads.")] = 1,
              render: Annotated[bool, typer.Option(help="Only rewrite results.md/csv from "
                                                   "the results.json in --out (no run).")]
              = False,
              resume: Annotated[bool, typer.Option(help="Reuse the cases a run into --out "
                                                   "finished (same budgets) and run the "
                                                   "rest.")] = False) -> None:
    """The paper's comparison table, re-made on offline data: every method on every case,
    figures on the test split over seeds -> results.md (tables, figures, discussion)."""
    from hetmap.reproduce import render as rewrite
    from hetmap.reproduce import reproduce as run

    if render:
        typer.echo(f"results: {rewrite(out)}")
        return
    names = [c.strip() for c in cases.split(",") if c.strip()] if cases else None
    command = "hetmap reproduce" + (" --quick" if quick else "") + \
        (f" --cases {cases}" if cases else "") + (f" --cifar10 {cifar10}" if cifar10 else "") \
        + (f" --jobs {jobs}" if jobs > 1 else "") + (" --resume" if resume else "")
    path = run(out, quick=quick, cases=names, cifar10=str(cifar10) if cifar10 else None,
               command=command, log=typer.echo, jobs=jobs, resume=resume)
    typer.echo(f"results: {path}")


@config_app.command("example")
def config_example() -> None:
    """Print a documented config with the demo's values."""
    from hetmap.config import example_config

    typer.echo(example_config())


@app.command()
def pretrain(task: Annotated[str, typer.Argument(help="Task name, e.g. mnist, digits.")],
             model: Annotated[str | None, typer.Option(help="Model name (task default if "
                                                            "omitted).")] = None,
             epochs: Annotated[int | None, typer.Option(help="Epochs (task default).")] = None,
             out: Annotated[Path, typer.Option(help="Safetensors file to write.")] =
             Path(RunDir.PRETRAINED),
             seed: Annotated[int, typer.Option(help="Random seed.")] = 0) -> None:
    """Train the full-precision starting model of a task and save it as safetensors."""
    from hetmap.tasks import get_task
    from hetmap.training import pretrain as run_pretrain

    t = get_task(task, **({"model": model} if model else {}))
    _, metrics = run_pretrain(t, epochs=epochs, seed=seed, out=out, log=typer.echo)
    typer.echo(f"{t.metric_name}: val {metrics.val:.2f}, test {metrics.test:.2f}; "
               f"saved {out}")


@app.command()
def scan(model: Annotated[str, typer.Argument(help="Registered model name, e.g. resnet20.")],
         tile: Annotated[tuple[int, int], typer.Option(help="Tile rows and cols.")] = (512, 512),
         in_channels: Annotated[int, typer.Option(help="Input channels.")] = 3,
         size: Annotated[int, typer.Option(help="Input height and width.")] = 32,
         json_out: Annotated[Path | None, typer.Option("--json", help="Write JSON here.")] = None,
         ) -> None:
    """Print the mappable layers of a registered model: MACs, crossbar shape, tiles."""
    import torch

    from hetmap.inventory import scan as scan_model
    from hetmap.io import atomic_write_text
    from hetmap.models import build_model

    net = build_model(model, in_channels=in_channels)
    inv = scan_model(net, torch.randn(1, in_channels, size, size), tile=tile)
    typer.echo(str(inv))
    if json_out is not None:
        atomic_write_text(json_out, inv.to_json())
        typer.echo(f"wrote {json_out}")


@app.command()
def cost(model: Annotated[str, typer.Argument(
             help="Registered model name (e.g. resnet20), bert-base or mobilebert.")],
         hardware: Annotated[str, typer.Option(help="Preset name or YAML file.")] =
         "hermes-pcm",
         in_channels: Annotated[int, typer.Option(help="Input channels.")] = 3,
         size: Annotated[int, typer.Option(help="Input height and width.")] = 32,
         seq_len: Annotated[int, typer.Option(help="Tokens (bert-base, mobilebert).")] = 384,
         replication: Annotated[bool | None, typer.Option(
             help="Copy analog layers onto free tiles (greedy); default: the preset's.")] =
         None,
         pipeline: Annotated[bool | None, typer.Option(
             help="Pipeline weight-stationary analog layers; default: the preset's.")] =
         None,
         overflow: Annotated[str | None, typer.Option(
             help="Mappings over the tile budget: 'error' (reported as not fitting) or "
                  "'reprogram' (costed with reprogramming); default: the preset's.")] =
         None) -> None:
    """Latency and energy of the uniform mappings (all-FP32, -FP16, -INT8, -analog) over the
    whole inference (every op), with the replication and pipelining used."""
    import torch

    from hetmap.hardware import load_hardware, trace_graph
    from hetmap.hardware.table import baselines
    from hetmap.inventory import scan as scan_model

    hw = load_hardware(hardware)
    if overflow is not None:
        from hetmap.errors import ConfigError

        if overflow not in ("error", "reprogram"):
            raise ConfigError(f"--overflow must be 'error' or 'reprogram', got {overflow!r}")
        hw = hw.model_copy(update={"on_tile_overflow": overflow})
    if hw.analog is not None:
        replication = hw.analog.replicate if replication is None else replication
        pipeline = hw.analog.pipeline_layers if pipeline is None else pipeline
        hw = hw.model_copy(update={"analog": hw.analog.model_copy(
            update={"replicate": replication, "pipeline_layers": pipeline})})
    if model in ("bert-base", "mobilebert"):
        import transformers

        if model == "bert-base":  # default BertConfig: BERT-base, random weights, offline
            config = transformers.BertConfig()
            net = transformers.BertForQuestionAnswering(config)
        else:
            config = transformers.MobileBertConfig()
            net = transformers.MobileBertForQuestionAnswering(config)
        example = {"input_ids": torch.zeros(1, seq_len, dtype=torch.long)}
    else:
        from hetmap.models import build_model

        net = build_model(model, in_channels=in_channels)
        example = torch.randn(1, in_channels, size, size)
    tile = (hw.analog.tile_rows, hw.analog.tile_cols) if hw.analog else (512, 512)
    inv = scan_model(net, example, tile=tile)
    graph = trace_graph(net, example, inv)
    base = baselines(inv, hw, graph=graph)
    ref = base.get("fp32")
    budget = hw.analog.n_tiles if hw.analog else 0
    counts = graph.summary()
    typer.echo(f"{model} on {hw.name}: {len(inv)} mappable layers, "
               f"{counts.get('matmul', 0)} attention matmuls, {counts.get('vector', 0)} vector "
               f"ops, {counts.get('memory', 0)} look-ups; {budget} tiles; replication "
               f"{'on' if replication else 'off'}, pipelining {'on' if pipeline else 'off'}, "
               f"tile overflow: {hw.on_tile_overflow}")
    typer.echo(f"{'mapping':<10} {'latency ms':>11} {'energy uJ':>11} {'inf/s':>9} "
               f"{'tiles':>6} {'w/copies':>8} {'max copy':>8} {'fits':>5} {'FP32/this lat':>14} "
               f"{'FP32/this en':>13}")
    for name, c in base.items():
        speed = ref.latency_s / c.latency_s if ref else float("nan")
        gain = ref.energy_j / c.energy_j if ref else float("nan")
        copies = max((r.copies for r in c.layers), default=1)
        fits = "yes" if c.fits else ("reprog" if hw.on_tile_overflow == "reprogram" else "NO")
        typer.echo(f"all-{name:<6} {c.latency_s * 1e3:>11.4f} {c.energy_j * 1e6:>11.2f} "
                   f"{c.throughput_per_s:>9,.0f} {c.analog_tiles:>6} {c.replicated_tiles:>8} "
                   f"{copies:>8} {fits:>5} {speed:>13.2f}x {gain:>12.2f}x")
    for name, c in base.items():
        if not c.fits and hw.on_tile_overflow == "reprogram":
            typer.echo(f"note: all-{name} needs {c.analog_tiles} tiles > {budget}: "
                       f"{c.analog_tiles - budget} tiles reprogrammed per inference, "
                       f"{c.reprogram_latency_s * 1e3:.3f} ms and "
                       f"{c.reprogram_energy_j * 1e6:.2f} uJ included")
        elif not c.fits:
            typer.echo(f"note: all-{name} does NOT fit: needs {c.analog_tiles} tiles > "
                       f"{budget}; its figures assume a chip with enough tiles (use "
                       "--overflow reprogram to cost reprogramming)")
    notes = {r.note for c in base.values() for r in c.layers if r.note}
    for note in sorted(notes):
        typer.echo(f"note: {note}")
    if graph.unclassified:
        typer.echo(f"note: ops costed as 1 vector op per element (unclassified): "
                   f"{', '.join(graph.unclassified)}")


def main() -> None:
    """Entry point: hetmap errors become one clear line and exit code 2."""
    try:
        app()
    except HetmapError as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        typer.secho("interrupted: the run directory keeps its last checkpoint; continue "
                    "with `hetmap resume RUN_DIR`", fg=typer.colors.YELLOW, err=True)
        raise SystemExit(130) from None
