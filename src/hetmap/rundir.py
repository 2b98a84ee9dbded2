"""The run directory: one folder holds everything a run produced, and nothing in it is
overwritten by accident (a used folder needs `--resume` to continue or `--force` to restart).

Layout (the `RunDir` constants name every entry; docs/report.md has the artifact schemas):
    .hetmap-run             MARKER: this folder was made by hetmap (so --force may clear it)
    config.yaml             CONFIG: the validated config, every default filled in
    environment.json        ENVIRONMENT: versions, seed, device, git revision, command line
    log.jsonl               LOG: one JSON event per line, each with "time" (UTC ISO 8601)
                            and "event"
    pretrained.safetensors  PRETRAINED: the full-precision model (when this run pretrained it)
    pretrain.json           PRETRAIN: its metrics
    adapt.json              ADAPT: what MPAAS widened (method: mpaas)
    inventory.json          INVENTORY: the mappable layers
    train/                  TRAIN_DIR: stage checkpoint (checkpoint.pt) and metrics.jsonl
    supernet.safetensors    SUPERNET: the trained supernet
    train.json              TRAIN: the training metrics
    front.json, front.csv   FRONT, FRONT_CSV: the searched front (test figures joined later)
    drift.json, cost.json   DRIFT, COST: drift curves and cost breakdowns
    summary.json            SUMMARY: every scored mapping's reported figures
    export/                 EXPORT: mapping.json, model.pt, state_dict.pt, deploy.json,
                            README.txt (EXPORT_*) and SCORES (export/scores.json), the
                            exported member's figures
    plots/*.png             PLOTS: pareto, search, mapping, drift, cost_cores (*_PLOT) and
                            cost_layers_<mapping>.png (layer_cost_plot)
    report.html             REPORT
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from hetmap.errors import ConfigError, HetmapError
from hetmap.io import atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    from hetmap.config import RunConfig

MARKER = ".hetmap-run"
LOG = "log.jsonl"


class RunDir:
    """A run folder; create with `RunDir.create`, reopen for reading with `RunDir.open`.
    The class constants are the names of its entries, relative to the root."""

    MARKER: ClassVar[str] = MARKER
    CONFIG: ClassVar[str] = "config.yaml"
    ENVIRONMENT: ClassVar[str] = "environment.json"
    LOG: ClassVar[str] = LOG
    PRETRAINED: ClassVar[str] = "pretrained.safetensors"
    PRETRAIN: ClassVar[str] = "pretrain.json"
    # the version of the JSON artifacts' schemas (hetmap.report.artifacts documents them)
    SCHEMA_VERSION: ClassVar[int] = 3
    ADAPT: ClassVar[str] = "adapt.json"
    INVENTORY: ClassVar[str] = "inventory.json"
    TRAIN_DIR: ClassVar[str] = "train"
    SUPERNET: ClassVar[str] = "supernet.safetensors"
    TRAIN: ClassVar[str] = "train.json"
    FRONT: ClassVar[str] = "front.json"
    FRONT_CSV: ClassVar[str] = "front.csv"
    DRIFT: ClassVar[str] = "drift.json"
    COST: ClassVar[str] = "cost.json"
    SUMMARY: ClassVar[str] = "summary.json"
    EXPORT: ClassVar[str] = "export"
    # inside EXPORT (or any folder `hetmap.export.export` writes)
    EXPORT_MAPPING: ClassVar[str] = "mapping.json"
    EXPORT_MODEL: ClassVar[str] = "model.pt"
    EXPORT_STATE_DICT: ClassVar[str] = "state_dict.pt"
    EXPORT_DEPLOY: ClassVar[str] = "deploy.json"
    EXPORT_README: ClassVar[str] = "README.txt"
    SCORES: ClassVar[str] = "export/scores.json"
    PLOTS: ClassVar[str] = "plots"
    # inside PLOTS
    PARETO_PLOT: ClassVar[str] = "pareto.png"
    SEARCH_PLOT: ClassVar[str] = "search.png"
    MAPPING_PLOT: ClassVar[str] = "mapping.png"
    DRIFT_PLOT: ClassVar[str] = "drift.png"
    COST_PLOT: ClassVar[str] = "cost_cores.png"
    REPORT: ClassVar[str] = "report.html"

    @staticmethod
    def layer_cost_plot(slug: str) -> str:
        """The per-layer cost plot of one mapping, inside PLOTS."""
        return f"cost_layers_{slug}.png"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    # -- creation -------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike[str], force: bool = False,
               resume: bool = False) -> RunDir:
        """A fresh (or, with `resume`, continued) run folder at `path`.

        A folder that exists and is not empty is refused unless `resume` (keep its contents;
        it must be a hetmap run) or `force` (delete its contents first; only a hetmap run
        folder is deleted, never an arbitrary one)."""
        if force and resume:
            raise ConfigError("choose either --force (start over) or --resume (continue), "
                              "not both")
        root = Path(path)
        if root.exists() and not root.is_dir():
            raise HetmapError(f"{root} exists and is not a directory; choose another run "
                              "directory")
        used = root.is_dir() and any(root.iterdir())
        ours = (root / MARKER).is_file()
        if used and not (force or resume):
            raise HetmapError(f"run directory {root} is already used; pass --resume to "
                              "continue that run or --force to delete it and start over")
        if used and not ours:
            raise HetmapError(f"{root} is not empty and was not made by hetmap (no {MARKER}); "
                              "refusing to " + ("delete" if force else "resume in")
                              + " it - choose another run directory")
        if used and force:
            for child in root.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        root.mkdir(parents=True, exist_ok=True)
        (root / MARKER).write_text("hetmap run directory\n")
        run = cls(root)
        run.log({"event": "resume" if (used and resume) else "start",
                 "argv": list(sys.argv)})
        return run

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> RunDir:
        """An existing run folder, for reading (report, export)."""
        root = Path(path)
        if not root.is_dir():
            raise HetmapError(f"no run directory at {root}")
        return cls(root)

    # -- files ----------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        """`root/name`, its parent folders created (e.g. path('train/checkpoint.pt'))."""
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def exists(self, name: str) -> bool:
        return (self.root / name).exists()

    def write_json(self, name: str, obj: Any) -> Path:
        return atomic_write_json(self.path(name), obj)

    def read_json(self, name: str) -> Any:
        """The JSON artifact `name`, or None when the run has not produced it."""
        target = self.root / name
        if not target.is_file():
            return None
        try:
            return json.loads(target.read_text())
        except json.JSONDecodeError as err:
            raise HetmapError(f"{target} is not valid JSON ({err}); rerun the stage that "
                              "writes it") from None

    def write_csv(self, name: str, rows: Iterable[Mapping[str, Any]]) -> Path:
        """Rows of flat dicts as CSV, columns in first-seen order."""
        rows = list(rows)
        columns = list(dict.fromkeys(k for row in rows for k in row))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return atomic_write_text(self.path(name), buf.getvalue())

    # -- provenance -----------------------------------------------------------------------
    def write_config(self, cfg: RunConfig) -> Path:
        """Snapshot the config. On resume the snapshot must match: a resumed run with other
        settings would mix results from two configs."""
        from hetmap.config import dump_config, validate_config
        from hetmap.config.load import read_yaml

        target = self.root / self.CONFIG
        if target.is_file():
            old = validate_config(read_yaml(target), self.CONFIG)
            if old != cfg:
                diff = _differences(old.model_dump(mode="json"), cfg.model_dump(mode="json"))
                raise ConfigError(f"the config differs from the one {self.root} was run with "
                                  f"({', '.join(diff[:5])}); resume with the same config or "
                                  "use --force or another run directory")
            return target
        return atomic_write_text(target, dump_config(cfg))

    def write_environment(self, seed: int, device: str,
                          extra: Mapping[str, Any] | None = None) -> Path:
        return self.write_json(self.ENVIRONMENT, environment(seed, device) | dict(extra or {}))

    def log(self, event: Mapping[str, Any]) -> None:
        """Append one event to the log (log.jsonl); flushed per line so a crash loses at most the
        line being written."""
        record = {"time": datetime.now(UTC).isoformat(timespec="milliseconds")} | dict(event)
        line = json.dumps(record, default=str)
        with open(self.path(LOG), "a") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def events(self) -> list[dict[str, Any]]:
        """The log, skipping a torn last line."""
        target = self.root / LOG
        if not target.is_file():
            return []
        out = []
        for line in target.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in dict.fromkeys([*a, *b]):
            out += _differences(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


def _version(module: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return None


def git_revision(where: Path | None = None) -> str | None:
    """The commit of the hetmap source tree (with '-dirty' if modified), if it is a git
    checkout and git is installed."""
    where = where or Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                             text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=where, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def environment(seed: int, device: str) -> dict[str, Any]:
    """What is needed to reproduce a run: versions, platform, seed, device, git revision."""
    from hetmap._version import __version__

    info: dict[str, Any] = {
        "hetmap": __version__, "python": platform.python_version(),
        "platform": platform.platform(), "seed": seed, "device": device,
        "git_revision": git_revision(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "argv": list(sys.argv),
    }
    for pkg in ("torch", "aihwkit", "aihwkit-lightning", "numpy", "pydantic", "zigzag-dse",
                "pymoo"):
        info[pkg] = _version(pkg)
    try:
        import torch

        info["cuda"] = torch.version.cuda
        if device.startswith("cuda") and torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return info
