"""`hetmap demo` (`make demo`): the defaults with these overrides, sized to map ResNet-8 on
the embedded MNIST 5k (10 searchable layers, 4^10 mappings) in about five minutes on two
CPU cores. Every override is an ordinary `--set`; `hetmap demo --set ...` adds to them."""

from __future__ import annotations

from collections.abc import Sequence

from hetmap.config.load import load_config
from hetmap.config.schema import RunConfig

DEMO_OVERRIDES: tuple[str, ...] = (
    "model.name=resnet8",
    "model.pretrain_epochs=6",
    "train.stage1.epochs=1",
    "train.stage1.max_steps=30",
    "train.stage2.epochs=1",
    "train.stage2.max_steps=40",
    "train.stage3.steps=8",
    "train.stage3.n_mappings=8",
    "train.stage3.bn_batches=2",
    "train.eval_each_epoch=false",
    "search.evaluations=64",
    "drift.times=[1s,1d,1y]",
    "drift.repeats=2",
    # five front members spread from the most digital to the most analog, so the finding
    # has mostly-analog members to choose from (three left it only all-analog's twin)
    "drift.members=5",
    # a few hundred steps do not repay torch.compile's graphs (the first stage-1 step took
    # 49 s compiling them): eager kernels, the same numerics. `time make demo` on the idle
    # machine: 6:38 compiled with three drift members, 2:37 eager with three, 4:27 as set here
    "analog.fuse=false",
)


def demo_config(overrides: Sequence[str] = ()) -> RunConfig:
    """The demo's config: the defaults, DEMO_OVERRIDES, then `overrides`."""
    return load_config(None, [*DEMO_OVERRIDES, *overrides])
