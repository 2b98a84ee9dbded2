"""Training-step cost of all-analog ResNet-20 and a BERT-small encoder.

Every mappable layer runs hetmap's `analog` candidate with the full HWA configuration
(8-bit DAC/ADC, output and weight noise, weight clipping, learned input ranges). Time and
peak memory of one training step (forward, backward, SGD step) are printed as ratios to FP32
and to aihwkit-lightning's own `convert_to_analog` model with the same configuration (its
PyTorch path; clipping by its `AnalogOptimizer`), all measured in this run. Each variant runs
in its own process so that peak memory (VmHWM on CPU, max allocated on CUDA) is its own.

    .venv/bin/python bench/analog_step.py [--repeats 3] [--only resnet|bert] [--device cpu]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

VARIANTS = ("fp32", "hetmap", "hetmap_folded", "lightning")


def analog_config(range_grad: str = "unfolded") -> Any:
    from hetmap.candidates.analog import AnalogConfig

    # HWA defaults; the warm-up step sets the input ranges from data
    return AnalogConfig(init_from_data=1, range_grad=range_grad)


def convert_hetmap(model: nn.Module, range_grad: str) -> nn.Module:
    from hetmap.candidates.analog import AnalogCandidate
    from hetmap.candidates.base import CandidateLayer
    from hetmap.layers import LayerSpec, is_mappable

    cfg = analog_config(range_grad)
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if is_mappable(child):
                cand = AnalogCandidate("analog", LayerSpec.from_module(child), cfg)
                cand.to(child.weight.device)
                setattr(module, child_name, CandidateLayer(child, cand))
    return model


def build(task: str, device: str) -> tuple[nn.Module, Any]:
    torch.manual_seed(0)
    if task == "resnet":
        from hetmap.models import resnet_cifar

        model = resnet_cifar(20).to(device)
        x = torch.randn(128, 3, 32, 32, device=device)
        y = torch.randint(0, 10, (128,), device=device)

        def loss_fn(m: nn.Module) -> torch.Tensor:
            return nn.functional.cross_entropy(m(x), y)
        return model, loss_fn
    from transformers import BertConfig, BertModel

    config = BertConfig(hidden_size=512, num_hidden_layers=4, num_attention_heads=8,
                        intermediate_size=2048, max_position_embeddings=512)
    bert = BertModel(config, add_pooling_layer=False).to(device)
    ids = torch.randint(0, config.vocab_size, (64, 128), device=device)

    def bert_loss(m: nn.Module) -> torch.Tensor:
        return m(input_ids=ids).last_hidden_state.pow(2).mean()
    return bert, bert_loss


def peak_reset(device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return float(torch.cuda.memory_allocated())
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (peak RSS) to current RSS
    return _status_kb("VmRSS") * 1024.0


def peak_read(device: str) -> float:
    if device.startswith("cuda"):
        return float(torch.cuda.max_memory_allocated())
    return _status_kb("VmHWM") * 1024.0


def _status_kb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def run_variant(task: str, variant: str, repeats: int, device: str) -> dict[str, float]:
    model, loss_fn = build(task, device)
    if variant.startswith("hetmap"):
        model = convert_hetmap(model, "folded" if variant == "hetmap_folded" else "unfolded")
        opt: torch.optim.Optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    elif variant == "lightning":
        with contextlib.redirect_stdout(io.StringIO()):
            from aihwkit_lightning.nn.conversion import convert_to_analog
            from aihwkit_lightning.optim import AnalogOptimizer
        model = convert_to_analog(model, analog_config().to_lightning())
        opt = AnalogOptimizer(torch.optim.SGD, model.analog_layers, model.parameters(), lr=1e-3)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    model.train()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(model).backward()
        opt.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    step()  # warm-up (initialises the input ranges)
    base = peak_reset(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"time": statistics.median(times), "peak": peak_read(device) - base}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", choices=("resnet", "bert"))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--child", nargs=2, metavar=("TASK", "VARIANT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_variant(*args.child, args.repeats, args.device)))
        return
    tasks = [args.only] if args.only else ["resnet", "bert"]
    print(f"device={args.device} threads={torch.get_num_threads()} repeats={args.repeats}")
    for task in tasks:
        res = {}
        for variant in VARIANTS:
            out = subprocess.run([sys.executable, __file__, "--child", task, variant,
                                  "--repeats", str(args.repeats), "--device", args.device],
                                 capture_output=True, text=True, check=True)
            res[variant] = json.loads(out.stdout.strip().splitlines()[-1])
        fp, lt = res["fp32"], res["lightning"]
        label = "ResNet-20 b128" if task == "resnet" else "BERT-small encoder b64 s128"
        print(f"{label}: step fp32 {fp['time']:.3f}s  lightning {lt['time']:.3f}s "
              f"({lt['time'] / fp['time']:.2f}x fp32)  peak fp32 {fp['peak'] / 2**20:.0f} MiB"
              f"  lightning {lt['peak'] / 2**20:.0f} MiB")
        for name, label in (("hetmap", "exact range grad"), ("hetmap_folded", "folded")):
            hm = res[name]
            print(f"  hetmap ({label}): {hm['time']:.3f}s = {hm['time'] / fp['time']:.2f}x fp32,"
                  f" {lt['time'] / hm['time']:.2f}x faster than lightning; peak "
                  f"{hm['peak'] / 2**20:.0f} MiB = {hm['peak'] / fp['peak']:.2f}x fp32")


if __name__ == "__main__":
    main()
