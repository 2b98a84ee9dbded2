"""Metrics as JSON lines appended to `metrics.jsonl` in the run directory (rank 0 only).
After a crash the lines past the last checkpoint are written again on resume; every line
carries its stage and step, so readers keep the last line per (stage, step)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

METRICS = "metrics.jsonl"


class JsonlLog:
    def __init__(self, run_dir: str | os.PathLike[str] | None, enabled: bool = True) -> None:
        self.path = Path(run_dir) / METRICS if run_dir is not None and enabled else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, **record: Any) -> None:
        if self.path is None:
            return
        line = json.dumps({"time": round(time.time(), 3), **record}, default=float)
        with open(self.path, "a") as fh:
            fh.write(line + "\n")


def read_metrics(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return []
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]
