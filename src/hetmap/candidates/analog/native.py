"""The C++ kernels of `native.cpp`, built once per machine with torch's extension loader.

Two steps of the analog layer are slow in torch on CPU: lightning's exact input-range
gradient of a convolution (a dot product per clipped unfolded entry: gathers that torch and
inductor run at a few percent of memory speed) and the output noise + ADC (a separate
`randn` tensor written and read again). `native.cpp` does each in one pass. The build (about
30 s on 2 cores) lands in ~/.cache/hetmap/native (HETMAP_CACHE_DIR moves it); when it fails, when
HETMAP_NO_NATIVE=1, or for CUDA and non-float32 tensors, the torch code in `engine.py` runs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

log = logging.getLogger(__name__)
SOURCE = Path(__file__).with_name("native.cpp")

_module: Any = None
_failed = False
_lock = threading.Lock()


def _cpu_flags() -> bytes:
    """The CPU's feature flags: the build uses -march=native, so a cache shared between
    machines must not hand one CPU another's binary."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line.encode()
    except OSError:
        pass
    return platform.machine().encode() + platform.processor().encode()


def _build_dir() -> Path:
    root = Path(os.environ.get("HETMAP_CACHE_DIR", Path.home() / ".cache" / "hetmap"))
    key = SOURCE.read_bytes() + torch.__version__.encode() + _cpu_flags()
    return root / "native" / hashlib.sha256(key).hexdigest()[:12]


def _ninja_on_path() -> None:
    """torch runs `ninja` from PATH; the venv's (a dependency) is there only when the venv
    is activated, so add the interpreter's bin directory."""
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


STALE_LOCK_S = 600.0  # a build takes about 30 s; a lock this old outlived its builder


def _stable_source(build: Path) -> Path:
    """The source copied into its build folder (named by its content), so that every
    checkout of the same source (worktrees, a clean clone) builds from one path: ninja
    rebuilds whenever the source path changes, and concurrent rebuilds race."""
    copy = build / SOURCE.name
    text = SOURCE.read_bytes()
    if not copy.exists() or copy.read_bytes() != text:
        tmp = build / f".{SOURCE.name}.{os.getpid()}"
        tmp.write_bytes(text)
        os.replace(tmp, copy)
    return copy


def _clear_stale_lock(build: Path) -> None:
    """torch's build lock is a file its builder deletes when done; a builder killed midway
    leaves it, and every later process would wait on it forever."""
    lock = build / "lock"
    try:
        age = time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return
    if age > STALE_LOCK_S:
        log.warning("removing %s, left %.0f s ago by a build that did not finish", lock, age)
        lock.unlink(missing_ok=True)


def load() -> Any:
    """The compiled module, or None where it cannot be built (the reason is logged once)."""
    global _module, _failed
    if _module is not None or _failed:
        return _module
    if os.environ.get("HETMAP_NO_NATIVE", "") not in ("", "0"):
        _failed = True
        return None
    with _lock:
        if _module is None and not _failed:
            try:
                from torch.utils.cpp_extension import load as load_extension

                _ninja_on_path()
                build = _build_dir()
                build.mkdir(parents=True, exist_ok=True)
                _clear_stale_lock(build)
                _module = load_extension(
                    "hetmap_analog_native", [str(_stable_source(build))],
                    build_directory=str(build),
                    extra_cflags=["-O3", "-march=native", "-fopenmp"],
                    extra_ldflags=["-fopenmp"], verbose=False)
            except Exception as err:  # no compiler, headers or ninja: run the torch code
                log.warning("hetmap's C++ analog kernels could not be built (%s); the slower "
                            "torch implementation runs instead", err)
                _failed = True
    return _module


def usable(*tensors: Tensor) -> bool:
    """Whether the kernels apply: CPU float32 tensors and a built module."""
    return all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors) \
        and load() is not None


def seed() -> int:
    """A seed drawn from torch's default generator, so torch.manual_seed fixes the noise."""
    return int(torch.randint(0, 2**62, (1,)).item())


def adc(y: Tensor, std: Tensor | None, bound: Tensor | None, out_res: float,
        inner: int) -> tuple[Tensor, Tensor | None]:
    """Output noise, ADC quantization and bound of `y` in place; the unclipped-output mask
    packed to one bit an output (None when nothing was clipped or there is no bound), for
    `where_bits`."""
    if (std is None and bound is None) or y.numel() == 0:
        return y, None
    empty = y.new_empty(0)
    s = empty if std is None else std.reshape(-1).float().contiguous()
    b = empty if bound is None else bound.reshape(-1).float().contiguous()
    keep, clipped = load().adc(y, s, b, float(out_res), int(inner), seed() if std is not None
                               else 0)
    return y, (keep if clipped > 0 else None)


def where_bits(grad: Tensor, bits: Tensor) -> Tensor:
    """`grad` where the packed mask `bits` (from `adc`) is set, else 0."""
    return load().where_bits(grad.contiguous(), bits)


def clip_grad(x: Tensor, gq: Tensor, gx: Tensor | None, r: Tensor, need_r: bool,
              gout: Tensor, wl: Tensor, rmask: Tensor | None, geo: list[int]
              ) -> tuple[Tensor, Tensor]:
    """Straight-through input gradient of one conv slice (gq, zero where |x| > r) written
    into the layer's input gradient `gx` (None: not needed), the range-gradient sum over
    clipped unfolded entries and their count per group. `x` is the whole layer input, `gout`
    the slice's 4-d output gradient in any layout (channels-last reads fastest)."""
    mask = x.new_empty(0, dtype=torch.bool) if rmask is None else rmask.contiguous()
    total, counts = load().clip_grad(x, gq.contiguous(), x.new_empty(0) if gx is None else gx,
                                     float(r), need_r, gout, wl.contiguous(), mask, geo)
    return torch.tensor(total, dtype=x.dtype), counts.to(x.dtype)
