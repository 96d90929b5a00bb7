# SPDX-License-Identifier: GPL-2.0-or-later
"""Augmentation keeps image and mask aligned; the reference's offline copies are made right."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from tests.training.helpers import block_labels, write_synthetic_dataset
from training.augment import make_offline_copies, native_pipeline, reference_pipeline
from training.config import NATIVE, REFERENCE
from training.dataset import IGNORE, list_samples, load_sample, reference_split
from training.inputs import random_crops

#: Classes 0, 1, 2 are painted with a dominant red, green or blue; unannotated pixels grey.
#: Brightness, contrast and CLAHE keep which channel dominates (and grey stays grey), so the
#: class of every augmented pixel can be read back from the augmented image alone.
_PAINT = np.array([(200, 30, 30), (30, 200, 30), (30, 30, 200)], dtype=np.uint8)
_GREY = (120, 120, 120)


def _paint(labels: np.ndarray) -> np.ndarray:
    image = np.empty(labels.shape + (3,), dtype=np.uint8)
    image[labels == IGNORE] = _GREY
    for k, colour in enumerate(_PAINT):
        image[labels == k] = colour
    return image


def _read_back(image: np.ndarray) -> np.ndarray:
    pixels = image.astype(np.int16)
    labels = np.argmax(pixels, axis=-1).astype(np.uint8)
    labels[pixels.max(axis=-1) - pixels.min(axis=-1) < 40] = IGNORE
    return labels


def _agreement_inside_regions(image: np.ndarray, mask: np.ndarray) -> float:
    """Share of pixels away from class boundaries (where interpolated image colours blend)
    whose class read from the image equals the mask's."""
    uniform = (ndimage.maximum_filter(mask, 3) == ndimage.minimum_filter(mask, 3))
    return float((_read_back(image) == mask)[uniform].mean())


@pytest.mark.parametrize("make", [lambda s: reference_pipeline(160, 128, seed=s),
                                  lambda s: native_pipeline(96, seed=s)], ids=["reference", "native"])
def test_augmentation_keeps_image_and_mask_aligned(make):
    rng = np.random.default_rng(0)
    labels = block_labels(rng, 200, 240, 12, classes=3, ignore_share=0.1)
    image = _paint(labels)
    assert _agreement_inside_regions(image, labels) == 1.0
    for seed in range(12):
        out = make(seed)(image=image, mask=labels)
        assert out["mask"].dtype == np.uint8 and out["image"].shape[:2] == out["mask"].shape
        assert set(np.unique(out["mask"])) <= {0, 1, 2, IGNORE}
        assert _agreement_inside_regions(out["image"], out["mask"]) > 0.99
        # The check can fail: the same mask turned a quarter against its image disagrees.
        if out["mask"].shape[0] == out["mask"].shape[1]:
            assert _agreement_inside_regions(out["image"], np.rot90(out["mask"]).copy()) < 0.6


def test_reference_crop_sizes_are_width_by_height():
    image = np.zeros((1479, 2149, 3), dtype=np.uint8)
    mask = np.zeros((1479, 2149), dtype=np.uint8)
    width, height = REFERENCE.reference_crop_sizes[8]
    out = reference_pipeline(width, height, seed=0)(image=image, mask=mask)
    assert out["image"].shape == (1280, 1920, 3)


def test_native_pipeline_pads_images_smaller_than_the_crop():
    image = np.zeros((50, 70, 3), dtype=np.uint8)
    out = native_pipeline(64, seed=0)(image=image, mask=np.zeros((50, 70), dtype=np.uint8))
    assert out["image"].shape == (64, 64, 3) and out["mask"].shape == (64, 64)


def test_offline_copies_are_written_once_in_the_dataset_layout(tmp_path):
    root = write_synthetic_dataset(tmp_path / "data", tiles=(1, 2), parts=range(1, 4), size=(60, 64))
    train, _ = reference_split(list_samples(root))
    recipe = REFERENCE.with_overrides(offline_copies=3, reference_crop_sizes={1: (48, 40), 2: (32, 32)})
    copies = make_offline_copies(train, tmp_path / "augmented", recipe)
    assert len(copies) == 3 * len(train) == len(list_samples(tmp_path / "augmented"))
    image, labels = load_sample(next(c for c in copies if c.tile == 1))
    assert image.shape == (40, 48, 3) and labels.shape == (40, 48)
    stamp = copies[0].image_path.stat().st_mtime_ns
    again = make_offline_copies(train, tmp_path / "augmented", recipe)
    assert again == copies and copies[0].image_path.stat().st_mtime_ns == stamp


def _draw_rates(pairs, crop: int, count: int, rotation: str = "free") -> np.ndarray:
    """How often each pixel of the first image appears in `count` native crops, over the
    uniform rate (its mask holds each pixel's index, so mirrored pixels count as themselves)."""
    recipe = NATIVE.with_overrides(image_size=crop, rotation=rotation)
    drawn = np.zeros(pairs[0][1].size, dtype=np.int64)
    crops = random_crops(pairs, recipe, seed=3)
    for _ in range(count):
        drawn += np.bincount(next(crops)[1].ravel(), minlength=drawn.size)
    return drawn / (count * crop * crop / drawn.size)


def test_native_crops_draw_every_pixel_about_equally_often():
    height, width, crop = 72, 88, 32
    index = np.arange(height * width, dtype=np.uint16).reshape(height, width)
    image = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    rates = _draw_rates([(image, index)], crop, 3000)
    assert rates.min() > 0.6 and rates.max() < 1.5, (rates.min(), rates.max())
    # Without the reflected border (the pipeline alone) the outermost pixels are never drawn
    # in an unrotated crop and the edges come out far below the uniform rate.
    unpadded = np.zeros_like(rates)
    pipeline = native_pipeline(crop, seed=3)
    for _ in range(3000):
        unpadded += np.bincount(pipeline(image=image, mask=index)["mask"].ravel(), minlength=rates.size)
    assert (unpadded / (3000 * crop * crop / rates.size)).min() < 0.2
