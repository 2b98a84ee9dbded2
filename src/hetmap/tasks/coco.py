"""Semantic segmentation from COCO-format data on disk ("coco-seg").

Per image, the label map holds 1 + the index of the category (in sorted category-id order)
of every instance mask (pycocotools annToMask, polygons and RLE alike; larger instances
drawn first so small ones stay visible), 0 for background. Alternatively, semantic label
PNGs (pixel = COCO category id, 0 background, 255 ignored) can be given per image by name.
Images and maps are resized to a fixed square size and held in memory."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np
import torch

from hetmap.errors import DataError
from hetmap.models.registry import build_model
from hetmap.tasks.base import TrainDefaults
from hetmap.tasks.data import Split
from hetmap.tasks.image import IGNORE_INDEX, ImageTask

PathLike = str | os.PathLike[str]


def _open_coco(annotations: PathLike):
    from pycocotools.coco import COCO

    if not Path(annotations).is_file():
        raise DataError(f"COCO annotation file {annotations} does not exist")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # COCO() prints progress
            return COCO(str(annotations))
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{annotations} is not a COCO annotation file: {exc}") from exc


def _semantic_from_instances(coco, img: dict, cat_index: dict[int, int]) -> np.ndarray:
    label = np.zeros((img["height"], img["width"]), np.uint8)
    anns = coco.loadAnns(coco.getAnnIds(imgIds=img["id"], iscrowd=None))
    for ann in sorted(anns, key=lambda a: -float(a.get("area", 0))):
        if ann["category_id"] in cat_index:
            label[coco.annToMask(ann) > 0] = cat_index[ann["category_id"]]
    return label


def _semantic_from_png(path: Path, cat_index: dict[int, int]) -> np.ndarray:
    from PIL import Image

    if not path.is_file():
        raise DataError(f"semantic mask {path} does not exist")
    raw = np.asarray(Image.open(path))
    lut = np.full(256, IGNORE_INDEX, np.uint8)
    lut[0] = 0
    for cid, idx in cat_index.items():
        if cid < 256:
            lut[cid] = idx
    return lut[raw]


def load_coco_semantic(annotations: PathLike, images: PathLike, size: int = 64,
                       masks: PathLike | None = None) -> tuple[Split, list[str]]:
    """All images of a COCO annotation file as a Split of uint8 (N, 3, size, size) images and
    int64 (N, size, size) label maps, plus the category names (label 1 + index)."""
    from PIL import Image

    coco = _open_coco(annotations)
    cats = sorted(coco.loadCats(coco.getCatIds()), key=lambda c: c["id"])
    cat_index = {c["id"]: i + 1 for i, c in enumerate(cats)}
    if len(cats) + 1 >= IGNORE_INDEX:
        raise DataError(f"{annotations} has {len(cats)} categories; at most 253 are supported")
    xs, ys = [], []
    for img in coco.loadImgs(sorted(coco.getImgIds())):
        path = Path(images) / img["file_name"]
        if not path.is_file():
            raise DataError(f"image {path} listed in {annotations} does not exist")
        rgb = Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR)
        label = (_semantic_from_png(Path(masks) / (Path(img["file_name"]).stem + ".png"),
                                    cat_index) if masks is not None
                 else _semantic_from_instances(coco, img, cat_index))
        label_img = Image.fromarray(label).resize((size, size), Image.NEAREST)
        xs.append(np.asarray(rgb).transpose(2, 0, 1))
        ys.append(np.asarray(label_img).astype(np.int64))
    if not xs:
        raise DataError(f"{annotations} lists no images")
    return Split(torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))), \
        [c["name"] for c in cats]


def _holdout(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(len(split)))
    n = max(1, round(fraction * len(split)))
    if n >= len(split):
        raise DataError(f"{len(split)} images are too few to hold out {fraction:.0%}")
    return split.take(perm[n:]), split.take(perm[:n])


def coco_seg_task(train_annotations: PathLike, train_images: PathLike,
                  test_annotations: PathLike | None = None, test_images: PathLike | None = None,
                  train_masks: PathLike | None = None, test_masks: PathLike | None = None,
                  image_size: int = 64, model: str = "fcn_resnet8", val_fraction: float = 0.1,
                  test_fraction: float = 0.1, split_seed: int = 0,
                  **model_kw: object) -> ImageTask:
    """COCO segmentation; val is held out of train; test is the test files if given
    (e.g. val2017), else also held out of train."""
    data, names = load_coco_semantic(train_annotations, train_images, image_size, train_masks)
    if test_annotations is not None:
        test, _ = load_coco_semantic(test_annotations, test_images or train_images, image_size,
                                     test_masks)
    else:
        data, test = _holdout(data, test_fraction, split_seed)
    train, val = _holdout(data, val_fraction, split_seed + 1)
    x = train.x.float() / 255.0
    mean, std = x.mean((0, 2, 3)).tolist(), x.std((0, 2, 3)).clamp(min=1e-3).tolist()
    num_classes = len(names) + 1

    def factory():
        return build_model(model, num_classes=num_classes, in_channels=3, **model_kw)

    return ImageTask("coco-seg", "segmentation", train, val, test, num_classes, factory,
                     mean, std, defaults=TrainDefaults(epochs=30, lr=0.05, batch_size=16),
                     class_names=["background", *names])
