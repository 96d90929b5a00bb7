# SPDX-License-Identifier: GPL-2.0-or-later
"""Augmentation with albumentations: the reference's offline 8x copies and native online crops.

Label maps travel as the `mask` target, so every geometric transform moves them with the
image and resamples them with nearest neighbour (class ids are never blended).

Differences from the reference forced by albumentations 2 (the reference used 1.x):
`OpticalDistortion(shift_limit=0.5)` no longer exists (the principal-point shift was
removed), and border modes default to a constant fill in 2.x, so the 1.x default
(BORDER_REFLECT_101) is set explicitly on the transforms that need a border.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import albumentations as A
import cv2
import numpy as np

from training.config import Recipe
from training.dataset import Sample, colorize, load_sample, write_rgb

_REFLECT = cv2.BORDER_REFLECT_101


def reference_pipeline(crop_width: int, crop_height: int, seed: int | None = None) -> A.Compose:
    """The reference's offline pipeline (README, "Training"), transforms and parameters in its order."""
    return A.Compose([
        A.RandomCrop(height=crop_height, width=crop_width, p=1.0),
        A.HorizontalFlip(p=1.0),
        A.VerticalFlip(p=1.0),
        A.Rotate(limit=(60, 300), interpolation=cv2.INTER_NEAREST, border_mode=_REFLECT, p=1.0),
        A.RandomBrightnessContrast(brightness_limit=(-0.2, 0.3), contrast_limit=0.2, p=1.0),
        A.OneOf([
            A.CLAHE(clip_limit=1.5, tile_grid_size=(8, 8), p=0.5),
            A.GridDistortion(border_mode=_REFLECT, p=0.5),
            A.OpticalDistortion(distort_limit=1, interpolation=cv2.INTER_NEAREST,
                                border_mode=_REFLECT, p=0.5),
        ], p=1.0),
    ], p=1.0, seed=seed)


def native_pipeline(crop: int, seed: int | None = None, rotation: str = "free") -> A.Compose:
    """Online random crops at the image's own resolution, with the reference's transform family.

    With `rotation="free"` the crop is cut with room for any rotation (crop * sqrt 2) and
    centre-cropped after rotating, so the rotation brings in no reflected corners; with
    "rot90" it is turned by multiples of 90 degrees instead, which moves pixels without
    resampling them (a free rotation blurs the image and jags the label edges of the half
    of the crops it turns). Images must be padded with `pad_for_native_crops` first, or
    pixels near the borders are rarely drawn. Unlike the reference every transform is
    optional (p < 1): the sliding window shows the model upright, undistorted imagery too,
    and no scaling transform is used, so ground scale stays that of the raster.
    """
    outer = crop_window(crop, rotation)
    turn = (A.Rotate(limit=180, border_mode=_REFLECT, p=0.5) if rotation == "free"
            else A.RandomRotate90(p=0.5))
    return A.Compose([
        A.RandomCrop(height=outer, width=outer, pad_if_needed=True, border_mode=_REFLECT, p=1.0),
        turn,
        A.CenterCrop(height=crop, width=crop, p=1.0),
        A.HorizontalFlip(p=0.5),
        A.VerticalFlip(p=0.5),
        A.RandomBrightnessContrast(brightness_limit=(-0.2, 0.3), contrast_limit=0.2, p=0.5),
        A.OneOf([
            A.CLAHE(clip_limit=1.5, tile_grid_size=(8, 8), p=0.5),
            A.GridDistortion(border_mode=_REFLECT, p=0.5),
            A.OpticalDistortion(distort_limit=0.5, border_mode=_REFLECT, p=0.5),
        ], p=0.3),
    ], p=1.0, seed=seed)


def crop_window(crop: int, rotation: str = "free") -> int:
    """Side of the window `native_pipeline` cuts before turning it and keeping the centre `crop`."""
    if rotation == "free":
        return math.ceil(crop * math.sqrt(2))
    if rotation == "rot90":
        return crop
    raise ValueError(f"unknown rotation {rotation!r}; choose free or rot90")


def native_border(crop: int, rotation: str = "free") -> int:
    """Reflected border added around each training image for `native_pipeline(crop, rotation=rotation)`.

    The pipeline keeps the centre `crop` of a random `outer` window. With a border of half
    the outer margin plus half a crop, the kept square's corner ranges over
    [-crop/2, size - crop/2) of the image, so, counting a border pixel's mirror image as a
    draw of that pixel, every pixel is drawn about equally often (without it, pixels within
    about a quarter-crop of an edge were drawn at under half the rate, the outermost
    (outer - crop) / 2 never in an unrotated crop).
    """
    return (crop_window(crop, rotation) - crop) // 2 + crop // 2


def pad_for_native_crops(image: np.ndarray, labels: np.ndarray, crop: int,
                         rotation: str = "free") -> tuple[np.ndarray, np.ndarray]:
    """`image` and `labels` with the reflected border of `native_border(crop, rotation)` on every
    side (BORDER_REFLECT repeats the edge pixel, so it is drawn as often as its neighbours)."""
    border = native_border(crop, rotation)
    sides = dict(top=border, bottom=border, left=border, right=border, borderType=cv2.BORDER_REFLECT)
    return cv2.copyMakeBorder(image, **sides), cv2.copyMakeBorder(labels, **sides)


def make_offline_copies(train: list[Sample], out_dir: Path, recipe: Recipe) -> list[Sample]:
    """Write `recipe.offline_copies` augmented copies of every training sample (reference).

    Same layout as the dataset (`Tile N/images/image_part_NNN_augK.jpg`, masks as colour
    PNGs with unannotated pixels black) so the same loader reads them. Reuses a finished
    set made with the same recipe and samples (a resumed run does not redo them); a
    half-written set has no `copies.json` and is made again.
    """
    out_dir = Path(out_dir)
    manifest_path = out_dir / "copies.json"
    wanted = {"recipe_seed": recipe.seed, "copies": recipe.offline_copies,
              "crops": {str(k): list(v) for k, v in recipe.reference_crop_sizes.items()},
              "sources": [s.name for s in train]}
    if manifest_path.is_file() and json.loads(manifest_path.read_text())["made_from"] == wanted:
        return _samples_from_manifest(out_dir, json.loads(manifest_path.read_text()))
    pipelines = {tile: reference_pipeline(w, h, seed=recipe.seed + tile)
                 for tile, (w, h) in recipe.reference_crop_sizes.items()}
    written = []
    for sample in train:
        image, labels = load_sample(sample)
        if sample.tile not in pipelines:
            raise ValueError(f"{sample.name}: the reference recipe has no crop size for Tile {sample.tile}")
        for k in range(1, recipe.offline_copies + 1):
            out = pipelines[sample.tile](image=image, mask=labels)
            stem = f"image_part_{sample.part:03d}_aug{k}"
            for sub in ("images", "masks"):
                (out_dir / f"Tile {sample.tile}" / sub).mkdir(parents=True, exist_ok=True)
            write_rgb(out_dir / f"Tile {sample.tile}" / "images" / f"{stem}.jpg", out["image"])
            write_rgb(out_dir / f"Tile {sample.tile}" / "masks" / f"{stem}.png", colorize(out["mask"]))
            written.append({"tile": sample.tile, "part": sample.part, "copy": k, "stem": stem})
    manifest = {"made_from": wanted, "files": written}
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return _samples_from_manifest(out_dir, manifest)


def _samples_from_manifest(out_dir: Path, manifest: dict) -> list[Sample]:
    return [Sample(f["tile"], f["part"], out_dir / f"Tile {f['tile']}" / "images" / f"{f['stem']}.jpg",
                   out_dir / f"Tile {f['tile']}" / "masks" / f"{f['stem']}.png", f["copy"])
            for f in manifest["files"]]

