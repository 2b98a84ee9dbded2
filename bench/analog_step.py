"""Training-step cost of all-analog conv nets (ResNet-20, MobileNetV2, a plain VGG-style
stack) and a BERT-small encoder.

Every mappable layer runs hetmap's `analog` candidate with the full HWA configuration
(8-bit DAC/ADC, output and weight noise, weight clipping, learned input ranges). Time and
peak memory of one training step (forward, backward, SGD step) are printed as ratios to FP32
and to aihwkit-lightning's own `convert_to_analog` model with the same configuration (its
PyTorch path; clipping by its `AnalogOptimizer`), all measured in this run. Times come from
one process that interleaves the variants step by step; peak memory (VmHWM on CPU with large
blocks mmap'd, max allocated on CUDA) from one process per variant.

    .venv/bin/python bench/analog_step.py [--repeats 5] [--device cpu]
        [--only resnet|mobilenet|vgg|bert]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from _timing import interleaved_medians

VARIANTS = ("fp32", "hetmap", "hetmap_folded", "lightning")
NO_LIGHTNING = {"mobilenet"}  # aihwkit-lightning converts no grouped (depthwise) convs


def variants(task: str) -> tuple[str, ...]:
    return tuple(v for v in VARIANTS if v != "lightning" or task not in NO_LIGHTNING)


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


TASKS = ("resnet", "mobilenet", "vgg", "bert")
LABELS = {"resnet": "ResNet-20 b128", "mobilenet": "MobileNetV2 b32",
          "vgg": "VGG-style 6 conv b64", "bert": "BERT-small encoder b64 s128"}


def vgg_stack(num_classes: int = 10) -> nn.Module:
    """A plain VGG-style stack: six 3x3 convs with BN + ReLU, two max-pools, a linear head."""
    layers: list[nn.Module] = []
    cin = 3
    for i, cout in enumerate((64, 64, 128, 128, 256, 256)):
        layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                   nn.ReLU()]
        if i in (1, 3):
            layers.append(nn.MaxPool2d(2))
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes)]
    return nn.Sequential(*layers)


def build(task: str, device: str) -> tuple[nn.Module, Any]:
    torch.manual_seed(0)
    if task != "bert":
        from hetmap.models import mobilenetv2_cifar, resnet_cifar

        model, batch = {"resnet": (resnet_cifar, 128), "mobilenet": (mobilenetv2_cifar, 32),
                        "vgg": (vgg_stack, 64)}[task]
        net = (model(20) if task == "resnet" else model()).to(device)
        x = torch.randn(batch, 3, 32, 32, device=device)
        y = torch.randint(0, 10, (batch,), device=device)

        def loss_fn(m: nn.Module) -> torch.Tensor:
            return nn.functional.cross_entropy(m(x), y)
        return net, loss_fn
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


def make_variant(task: str, variant: str, device: str) -> Any:
    """A closure running one training step of `variant`, after its warm-up step."""
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

    step()  # warm-up (initialises the input ranges, compiles kernels)
    return step


def time_variants(task: str, repeats: int, device: str) -> dict[str, float]:
    """Median step time of every variant, the variants interleaved step by step so that a
    change in machine load hits them all alike."""
    steps = {v: make_variant(task, v, device) for v in variants(task)}  # each warmed up once
    return interleaved_medians(steps, repeats, warmup=0)


def peak_of(task: str, variant: str, device: str) -> float:
    """Peak memory of one step over what the model and its inputs hold. On CPU, large
    blocks are mmap'd (MALLOC_MMAP_THRESHOLD_, set by the parent) so that freed memory
    leaves the resident set and the high-water mark sees only live tensors."""
    step = make_variant(task, variant, device)
    base = peak_reset(device)
    step()
    return peak_read(device) - base


def _child(args: list[str]) -> dict[str, Any]:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                         check=True, env=env if "--peak" in args else None)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--only", choices=TASKS)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--child", metavar="TASK", help=argparse.SUPPRESS)
    ap.add_argument("--peak", metavar="VARIANT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        result = (peak_of(args.child, args.peak, args.device) if args.peak
                  else time_variants(args.child, args.repeats, args.device))
        print(json.dumps(result))
        return
    tasks = [args.only] if args.only else list(TASKS)
    print(f"device={args.device} threads={torch.get_num_threads()} repeats={args.repeats} "
          "(variants interleaved step by step; medians)")
    for task in tasks:
        common = ["--child", task, "--device", args.device]
        t = _child([*common, "--repeats", str(args.repeats)])
        peak = {v: _child([*common, "--peak", v]) for v in variants(task)}
        fp, lt = t["fp32"], t.get("lightning")
        mib = {v: f"{p / 2**20:.0f} MiB" for v, p in peak.items()}
        lightning = "lightning n/a (no grouped convs)" if lt is None else \
            f"lightning {lt:.3f}s ({lt / fp:.2f}x fp32)"
        print(f"{LABELS[task]}: step fp32 {fp:.3f}s  {lightning}  peak fp32 {mib['fp32']}"
              + ("" if lt is None else f"  lightning {mib['lightning']}"))
        for name, label in (("hetmap", "exact range grad"), ("hetmap_folded", "folded")):
            hm = t[name]
            faster = "" if lt is None else f", {lt / hm:.2f}x faster than lightning"
            print(f"  hetmap ({label}): {hm:.3f}s = {hm / fp:.2f}x fp32{faster}; peak "
                  f"{mib[name]} = {peak[name] / peak['fp32']:.2f}x fp32")


if __name__ == "__main__":
    main()
