"""COCO-format data written small: PNG images, an instances JSON with polygon and RLE
masks, and semantic label PNGs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from hetmap.errors import DataError
from hetmap.tasks import final_scoring, get_task
from hetmap.tasks.coco import load_coco_semantic

CATS = [{"id": 3, "name": "car"}, {"id": 7, "name": "dog"}]


def _rect(x0: int, y0: int, x1: int, y1: int) -> list[list[float]]:
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def _write_coco(root: Path, n: int, name: str) -> tuple[Path, Path]:
    images = root / f"{name}_images"
    images.mkdir()
    imgs, anns = [], []
    for i in range(n):
        arr = np.zeros((32, 32, 3), np.uint8)
        arr[4:14, 4:20] = (200, 30, 30)  # the car, as a polygon
        Image.fromarray(arr).save(images / f"{i:04d}.png")
        imgs.append({"id": i + 1, "file_name": f"{i:04d}.png", "height": 32, "width": 32})
        anns.append({"id": 2 * i + 1, "image_id": i + 1, "category_id": 3, "iscrowd": 0,
                     "segmentation": _rect(4, 4, 20, 14), "area": 160.0,
                     "bbox": [4, 4, 16, 10]})
        dog = np.zeros((32, 32), np.uint8, order="F")
        dog[20:30, 10 + i % 5:26] = 1  # the dog, as an uncompressed-then-encoded RLE
        rle = mask_utils.encode(np.asfortranarray(dog))
        rle["counts"] = rle["counts"].decode()
        anns.append({"id": 2 * i + 2, "image_id": i + 1, "category_id": 7, "iscrowd": 1,
                     "segmentation": rle, "area": float(dog.sum()),
                     "bbox": [10, 20, 16, 10]})
    path = root / f"{name}.json"
    path.write_text(json.dumps({"images": imgs, "annotations": anns, "categories": CATS}))
    return path, images


def test_instance_masks_become_a_semantic_map(tmp_path: Path) -> None:
    ann, images = _write_coco(tmp_path, 3, "train")
    split, names = load_coco_semantic(ann, images, size=32)
    assert names == ["car", "dog"]
    assert split.x.shape == (3, 3, 32, 32) and split.x.dtype == torch.uint8
    y = split.y[0]
    assert int(y[8, 10]) == 1 and int(y[25, 20]) == 2 and int(y[0, 0]) == 0
    assert int((y == 2).sum()) == 10 * 16  # the RLE area, exactly
    assert int(split.x[0, 0, 8, 10]) == 200  # image pixels kept channel-first


def test_semantic_pngs_from_disk(tmp_path: Path) -> None:
    ann, images = _write_coco(tmp_path, 2, "train")
    masks = tmp_path / "masks"
    masks.mkdir()
    label = np.zeros((32, 32), np.uint8)
    label[0:5, :] = 7
    label[5:8, :] = 255
    for i in range(2):
        Image.fromarray(label).save(masks / f"{i:04d}.png")
    split, _ = load_coco_semantic(ann, images, size=32, masks=masks)
    assert int(split.y[1, 2, 2]) == 2 and int(split.y[1, 6, 0]) == 255
    assert int(split.y[1, 20, 20]) == 0


def test_coco_task_trains_and_scores(tmp_path: Path) -> None:
    ann, images = _write_coco(tmp_path, 12, "train")
    test_ann, test_images = _write_coco(tmp_path, 4, "val")
    task = get_task("coco-seg", train_annotations=ann, train_images=images,
                    test_annotations=test_ann, test_images=test_images, image_size=16)
    assert task.metric_name == "mIoU" and task.class_names == ["background", "car", "dog"]
    assert len(task.test_split) == 4 and len(task.val_split) >= 1
    loaders = task.loaders(4, seed=0)
    x, y = next(iter(loaders.train))
    model = task.build_model()
    out = model(x)
    assert out.shape == (4, 3, 16, 16) and task.loss(out, y).ndim == 0
    with final_scoring():
        assert 0.0 <= task.metric(model, loaders.test) <= 100.0


def test_missing_image_is_a_data_error(tmp_path: Path) -> None:
    ann, images = _write_coco(tmp_path, 2, "train")
    (images / "0001.png").unlink()
    with pytest.raises(DataError, match=r"0001\.png"):
        load_coco_semantic(ann, images)
    with pytest.raises(DataError, match="does not exist"):
        load_coco_semantic(tmp_path / "nope.json", images)
