# SPDX-License-Identifier: GPL-2.0-or-later
"""Tiny synthetic datasets in the real folder layout, for the training tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from training.dataset import IGNORE, colorize, write_rgb

#: Tiles whose masks the real dataset stores as palette PNGs.
PALETTE_TILES = (2, 4)


def block_labels(rng: np.random.Generator, height: int, width: int, block: int, classes: int = 6,
                 ignore_share: float = 0.0) -> np.ndarray:
    """Random class ids in square blocks (so there are long boundaries and real regions)."""
    rows, cols = -(-height // block), -(-width // block)
    ids = rng.integers(0, classes, (rows, cols)).astype(np.uint8)
    ids[rng.random((rows, cols)) < ignore_share] = IGNORE
    return np.kron(ids, np.ones((block, block), dtype=np.uint8))[:height, :width]


def write_mask_png(path: Path, labels: np.ndarray, palette: bool) -> None:
    """A mask PNG in the class colours, as an RGB or (like Tiles 2 and 4) a palette PNG."""
    rgb = colorize(labels)
    if palette:
        Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=8).save(path)
    else:
        Image.fromarray(rgb).save(path)


def write_synthetic_dataset(root: Path, tiles=(1, 2), parts=range(1, 10), size=(72, 80), seed=0) -> Path:
    """Write `Tile N/images|masks/image_part_NNN` pairs whose image is the class colour plus
    noise (so a tiny network can learn it); a few pixels are black (unannotated)."""
    rng = np.random.default_rng(seed)
    height, width = size
    for tile in tiles:
        for sub in ("images", "masks"):
            (root / f"Tile {tile}" / sub).mkdir(parents=True, exist_ok=True)
        for part in parts:
            labels = block_labels(rng, height, width, 8, classes=5, ignore_share=0.03)
            noise = rng.normal(0, 12, (height, width, 3))
            image = np.clip(colorize(labels).astype(np.float64) + noise, 0, 255).astype(np.uint8)
            write_rgb(root / f"Tile {tile}" / "images" / f"image_part_{part:03d}.jpg", image)
            write_mask_png(root / f"Tile {tile}" / "masks" / f"image_part_{part:03d}.png", labels,
                           palette=tile in PALETTE_TILES)
    return root
