"""The demonstration run. It grows with the project: today it scans a CIFAR ResNet-8 for
MNIST-sized inputs, builds the supernet, runs several mappings and scores them exactly."""

from __future__ import annotations

from pathlib import Path

import torch
import typer

from hetmap.io import atomic_write_json
from hetmap.mapping import Mapping
from hetmap.models import resnet_cifar
from hetmap.supernet import build_supernet


def run_demo(out: Path, seed: int = 0) -> None:
    torch.manual_seed(seed)
    model = resnet_cifar(8, in_channels=1).eval()
    x = torch.randn(8, 1, 28, 28)
    sn = build_supernet(model, x, candidates=("fp32", "fp16", "int8", "int4", "analog", "skip"),
                        exclude=("conv1", "fc"))
    typer.echo(str(sn.inventory))
    gen = torch.Generator().manual_seed(seed)
    mappings = {name: Mapping.uniform(sn, name, fallback="fp32")
                for name in ("fp32", "int8", "analog")}
    mappings.update({f"random-{i}": sn.sample(gen) for i in range(3)})
    with torch.no_grad():
        reference = model(x)
    rows = {}
    typer.echo(f"\n{'mapping':<10} {'analog MACs':>11} {'digital kB':>10} {'tiles':>5} "
               f"{'util':>6} {'max |out - fp32|':>17}")
    for name, mapping in mappings.items():
        obj = sn.objectives(mapping)
        with torch.no_grad():
            diff = (sn.use(mapping)(x) - reference).abs().max().item()
        rows[name] = {"mapping": mapping.to_dict(), "objectives": obj.to_dict(),
                      "max_abs_diff": diff}
        typer.echo(f"{name:<10} {obj.analog_mac_ratio:>11.1%} "
                   f"{obj.digital_weight_bytes / 1e3:>10.1f} {obj.analog_tiles:>5} "
                   f"{obj.tile_utilisation:>6.1%} {diff:>17.4f}")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "inventory.json", sn.inventory.to_dict())
    atomic_write_json(out / "mappings.json", rows)
    typer.echo(f"\nresults in {out}/ (inventory.json, mappings.json)")
