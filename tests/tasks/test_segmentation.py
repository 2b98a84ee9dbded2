from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hetmap.models import build_model
from hetmap.tasks import get_task
from hetmap.tasks.data import Split
from hetmap.tasks.image import IGNORE_INDEX, iou_from_confusion, mean_iou
from hetmap.tasks.segmentation import INK, NUM_CLASSES, compose_scenes


@pytest.fixture(scope="module")
def seg_task():
    return get_task("mnist-seg", n_train=64, n_val=16, n_test=16)


def test_scenes_label_ink_with_digit_class(seg_task) -> None:
    split = seg_task.train_split
    assert split.x.shape == (64, 1, 32, 32) and split.y.shape == (64, 32, 32)
    ink = split.x[:, 0] >= INK
    assert torch.equal(ink, split.y > 0)  # every bright pixel labelled, nothing else
    assert int(split.y.max()) <= 10 and set(split.y.unique().tolist()) == set(range(11))
    # several digits per scene: ink in at least two of the four 16x16 cells
    cells = (split.y > 0).view(64, 2, 16, 2, 16).any(2).any(-1).flatten(1).sum(1)
    assert int(cells.min()) >= 2


def test_scenes_are_identical_for_a_seed() -> None:
    digits = Split(torch.randint(0, 256, (20, 1, 28, 28), dtype=torch.uint8),
                   torch.arange(20) % 10)
    a, b = compose_scenes(digits, 5, seed=1), compose_scenes(digits, 5, seed=1)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, compose_scenes(digits, 5, seed=2).x)


def test_mean_iou_of_a_perfect_and_a_known_prediction() -> None:
    y = torch.tensor([[[0, 0, 1, 1], [2, 2, 2, IGNORE_INDEX]]])
    onehot = F.one_hot(y.clamp(max=2), 3).permute(0, 3, 1, 2).float()
    assert mean_iou(nn.Identity(), [(onehot, y)], 3) == pytest.approx(100.0)
    wrong = onehot.clone()
    wrong[0, :, 0, 1] = torch.tensor([0.0, 1.0, 0.0])  # one background pixel called class 1
    # background 1/2, class 1 2/3, class 2 3/3 (the ignored pixel does not count)
    assert mean_iou(nn.Identity(), [(wrong, y)], 3) == pytest.approx(100 * (0.5 + 2 / 3 + 1) / 3)
    iou = iou_from_confusion(torch.tensor([[5, 0, 0], [0, 0, 0], [0, 0, 0]]))
    assert iou[0] == 1 and iou[1:].isnan().all()  # absent classes are skipped, not zero


@pytest.mark.usefixtures("one_thread")
def test_fcn_on_mnist_seg_learns(seg_task) -> None:
    """Smoke check only (the mIoU claim is bench/pretrain_mnist.py): a narrow FCN's loss
    falls from ln(11) = 2.4 far below it within a few steps."""
    from hetmap.training import pretrain

    model = build_model("fcn_resnet8", num_classes=NUM_CLASSES, in_channels=1, width=4)
    model, metrics = pretrain(seg_task, model, epochs=4, batch_size=16, lr=0.05,
                              progress=False)
    assert seg_task.metric_name == "mIoU"
    assert model(seg_task.example_input(2)).shape == (2, NUM_CLASSES, 32, 32)
    assert metrics.train_loss < 1.0
    assert 0.0 < metrics.test <= 100.0
