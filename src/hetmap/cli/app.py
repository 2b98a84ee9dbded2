"""`hetmap` commands. Each command is a thin shell over the library API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hetmap.errors import HetmapError

app = typer.Typer(help="Map deep networks onto mixed analog/digital accelerators.",
                  no_args_is_help=True, add_completion=False)


@app.command()
def demo(out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/demo"),
         seed: Annotated[int, typer.Option(help="Random seed.")] = 0) -> None:
    """Run the built-in demonstration end to end and print where its results are."""
    from hetmap.cli.demo import run_demo

    run_demo(out, seed)


@app.command()
def scan(model: Annotated[str, typer.Argument(help="Built-in model: resnet8, resnet20, "
                                                   "resnet32, resnet56, mobilenetv2.")],
         tile: Annotated[tuple[int, int], typer.Option(help="Tile rows and cols.")] = (512, 512),
         in_channels: Annotated[int, typer.Option(help="Input channels.")] = 3,
         size: Annotated[int, typer.Option(help="Input height and width.")] = 32,
         json_out: Annotated[Path | None, typer.Option("--json", help="Write JSON here.")] = None,
         ) -> None:
    """Print the mappable layers of a built-in model: MACs, crossbar shape, tiles."""
    import torch

    from hetmap.inventory import scan as scan_model
    from hetmap.io import atomic_write_text
    from hetmap.models import mobilenetv2_cifar, resnet_cifar

    factories = {f"resnet{d}": (lambda d=d: resnet_cifar(d, in_channels=in_channels))
                 for d in (8, 20, 32, 56)}
    factories["mobilenetv2"] = lambda: mobilenetv2_cifar(in_channels=in_channels)
    if model not in factories:
        raise HetmapError(f"unknown model {model!r}; choose from {', '.join(factories)}")
    inv = scan_model(factories[model](), torch.randn(1, in_channels, size, size), tile=tile)
    typer.echo(str(inv))
    if json_out is not None:
        atomic_write_text(json_out, inv.to_json())
        typer.echo(f"wrote {json_out}")


def main() -> None:
    """Entry point: hetmap errors become one clear line and exit code 2."""
    try:
        app()
    except HetmapError as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise SystemExit(2) from None
