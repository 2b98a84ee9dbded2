from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from hetmap.tasks.data import ImageCollate, random_crop_flip, stratified_split


def test_stratified_split_is_disjoint_complete_and_per_class() -> None:
    labels = np.repeat(np.arange(4), 50)
    val, test, train = stratified_split(labels, (0.1, 0.2), seed=0)
    assert len(set(val) | set(test) | set(train)) == 200
    assert len(val) + len(test) + len(train) == 200
    assert np.bincount(labels[val]).tolist() == [5] * 4
    assert np.bincount(labels[test]).tolist() == [10] * 4
    again = stratified_split(labels, (0.1, 0.2), seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(again, (val, test, train)))


def test_random_crop_is_a_window_of_the_padded_image() -> None:
    x = torch.rand(6, 2, 5, 5)
    out, _ = random_crop_flip(pad=2, flip=False)(x, torch.zeros(6), torch.Generator())
    padded = F.pad(x, (2, 2, 2, 2))
    for i in range(6):
        windows = [padded[i, :, r:r + 5, c:c + 5] for r in range(5) for c in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)


def test_flip_mirrors_about_half_of_the_images() -> None:
    x = torch.rand(400, 1, 3, 3)
    out, _ = random_crop_flip(pad=0, flip=True)(x, torch.zeros(400), torch.Generator())
    flipped = torch.tensor([torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x)])
    same = torch.tensor([torch.equal(o, xi) for o, xi in zip(out, x)])
    assert bool((flipped | same).all()) and 150 < int(flipped.sum()) < 250


def test_collate_scales_normalises_and_is_seeded() -> None:
    x = torch.full((4, 1, 2, 2), 255, dtype=torch.uint8)
    batch = [(xi, torch.tensor(0)) for xi in x]
    out, y = ImageCollate([0.5], [0.25])(batch)
    assert torch.allclose(out, torch.full_like(out, 2.0)) and y.shape == (4,)
    aug = random_crop_flip(pad=1)
    imgs = [(torch.randint(0, 255, (1, 4, 4), dtype=torch.uint8), torch.tensor(0))
            for _ in range(8)]
    a, _ = ImageCollate([0.0], [1.0], aug, seed=5)(imgs)
    b, _ = ImageCollate([0.0], [1.0], aug, seed=5)(imgs)
    assert torch.equal(a, b)
