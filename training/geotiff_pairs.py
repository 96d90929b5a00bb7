# SPDX-License-Identifier: GPL-2.0-or-later
"""An analyst's own labelled data: GeoTIFF image/mask pairs, for fine-tuning (`--data DIR`).

Layout (README "Fine-tuning on your own data"):

    DIR/images/NAME.tif   3-band 8-bit RGB image
    DIR/masks/NAME.tif    1-band integer mask of the same size, CRS and pixel grid, holding
                          class ids (0 Building, 1 Land, 2 Road, 3 Vegetation, 4 Water,
                          5 Unlabeled); 255 or the mask's nodata value = not annotated

Every pair is checked when training starts (both files present, bands, data types, size,
CRS, pixel grid, class ids), and an error names the file and what to fix, so a long run
never fails on its 40th image. Every fifth pair (in name order) is held out for
validation; with fewer than five pairs the training pairs validate too (said so in run.json).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError

from dubai_segmenter.engine.classes import DUBAI_CLASSES
from training.dataset import IGNORE, Sample

IMAGES, MASKS = "images", "masks"
_SUFFIXES = (".tif", ".tiff")
_CLASS_IDS = frozenset(c.id for c in DUBAI_CLASSES)
_HOLD_OUT_EVERY = 5


class PairError(ValueError):
    """An image/mask pair that cannot be trained on; the message names the file."""


def is_pair_layout(root: Path) -> bool:
    """True when `root` holds the images/ + masks/ layout of this module."""
    return (Path(root) / IMAGES).is_dir() and (Path(root) / MASKS).is_dir()


def _rasters(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in _SUFFIXES}


def list_pairs(root: Path) -> list[Sample]:
    """Every image/mask pair under `root`, checked (PairError naming the file otherwise)."""
    root = Path(root)
    images, masks = _rasters(root / IMAGES), _rasters(root / MASKS)
    if not images:
        raise PairError(f"{root / IMAGES} holds no .tif images; put the RGB GeoTIFFs there "
                        f"and their class-id masks under the same names in {root / MASKS}")
    for stem, mask in masks.items():
        if stem not in images:
            raise PairError(f"{mask} has no image; expected {root / IMAGES / mask.name}")
    samples = []
    for index, (stem, image) in enumerate(images.items()):
        if stem not in masks:
            raise PairError(f"{image} has no mask; expected {root / MASKS / image.name} "
                            "(1 band of class ids, same size and grid)")
        check_pair(image, masks[stem])
        samples.append(Sample(0, index, image, masks[stem], label=stem))
    return samples


def check_pair(image_path: Path, mask_path: Path) -> None:
    """Bands, data types, size, CRS, pixel grid and class ids of one pair."""
    try:
        with rasterio.open(image_path) as image, rasterio.open(mask_path) as mask:
            if image.count != 3 or image.dtypes[0] != "uint8":
                raise PairError(f"{image_path}: {image.count} band(s) of {image.dtypes[0]}; the model takes "
                                "3-band 8-bit RGB (convert it, e.g. gdal_translate -b 1 -b 2 -b 3 -ot Byte -scale)")
            if mask.count != 1 or not np.issubdtype(np.dtype(mask.dtypes[0]), np.integer):
                raise PairError(f"{mask_path}: {mask.count} band(s) of {mask.dtypes[0]}; a mask is 1 band of "
                                "integer class ids")
            if (mask.width, mask.height) != (image.width, image.height):
                raise PairError(f"{mask_path}: {mask.width}x{mask.height} pixels but its image {image_path.name} "
                                f"is {image.width}x{image.height}; masks must cover the image pixel for pixel")
            if mask.crs != image.crs:
                raise PairError(f"{mask_path}: CRS {mask.crs} differs from its image's ({image.crs}); "
                                "reproject the mask onto the image's grid")
            if not mask.transform.almost_equals(image.transform):
                raise PairError(f"{mask_path}: its pixel grid {tuple(mask.transform)[:6]} differs from its "
                                f"image's {tuple(image.transform)[:6]}; align the mask with the image")
            labels = _class_ids(mask.read(1), mask.nodata)
    except RasterioIOError as exc:
        raise PairError(f"cannot read {exc}") from exc
    unknown = sorted(set(np.unique(labels).tolist()) - _CLASS_IDS - {IGNORE})
    if unknown:
        known = ", ".join(f"{c.id} {c.name}" for c in DUBAI_CLASSES)
        raise PairError(f"{mask_path}: class ids {unknown} are not classes of the model ({known}); "
                        f"use {IGNORE} or the mask's nodata value for pixels not annotated")


def _class_ids(values: np.ndarray, nodata: float | None) -> np.ndarray:
    labels = np.full(values.shape, IGNORE, dtype=np.int64)
    keep = np.ones(values.shape, dtype=bool) if nodata is None else values != nodata
    labels[keep] = values[keep]
    return labels


def load_pair(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """(image (H, W, 3) uint8, labels (H, W) uint8 with IGNORE for unannotated) of a checked pair."""
    with rasterio.open(sample.image_path) as image:
        pixels = np.moveaxis(image.read(), 0, -1)
    with rasterio.open(sample.mask_path) as mask:
        labels = _class_ids(mask.read(1), mask.nodata)
    if labels.min() < 0 or labels.max() > IGNORE or not set(np.unique(labels).tolist()) <= _CLASS_IDS | {IGNORE}:
        raise PairError(f"{sample.mask_path}: class ids changed since the start of the run; check it again")
    return np.ascontiguousarray(pixels), labels.astype(np.uint8)


def split_pairs(samples: list[Sample]) -> tuple[list[Sample], list[Sample], str]:
    """(train, validation, description): every fifth pair validates (all, below five pairs)."""
    if len(samples) < _HOLD_OUT_EVERY:
        return list(samples), list(samples), (f"fewer than {_HOLD_OUT_EVERY} pairs: the training pairs "
                                              "validate too (the scores are not held-out scores)")
    validation = samples[_HOLD_OUT_EVERY - 1::_HOLD_OUT_EVERY]
    train = [s for s in samples if s not in validation]
    return train, validation, f"every {_HOLD_OUT_EVERY}th pair in name order validates"
