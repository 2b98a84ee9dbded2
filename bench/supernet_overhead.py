"""Single-path supernet training step over the plain model's (ResNet-20, batch 128).

Usage: .venv/bin/python bench/supernet_overhead.py [--batch 128] [--repeats 10]
Target: all-digital fp32 path <= 1.15x the plain model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved_medians
from hetmap import Mapping, build_supernet
from hetmap.models import resnet_cifar


def train_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor,
               y: torch.Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch,))
    plain = resnet_cifar(20).train()
    sn = build_supernet(plain, x[:8], candidates=("fp32", "int8", "analog")).train()
    sn_int8 = build_supernet(plain, x[:8], candidates=("fp32", "int8", "analog")).train()
    sn.use(Mapping.uniform(sn, "fp32"))
    sn_int8.use(Mapping.uniform(sn_int8, "int8"))
    opts = {name: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
            for name, m in (("plain", plain), ("fp32", sn), ("int8", sn_int8))}
    steps = {
        "plain": lambda: train_step(plain, opts["plain"], x, y),
        "fp32": lambda: train_step(sn, opts["fp32"], x, y),
        "int8": lambda: train_step(sn_int8, opts["int8"], x, y),
    }
    med = interleaved_medians(steps, repeats=args.repeats)
    print(f"ResNet-20 training step, batch {args.batch}, {torch.get_num_threads()} threads")
    print(f"  plain model          {med['plain'] * 1e3:8.1f} ms")
    for name, note in (("fp32", "target <= 1.15x"), ("int8", "fake quantization, reference")):
        print(f"  supernet, all {name}   {med[name] * 1e3:8.1f} ms   "
              f"ratio {med[name] / med['plain']:.3f}x  ({note})")


if __name__ == "__main__":
    main()
