# SPDX-License-Identifier: GPL-2.0-or-later
"""Small georeferenced test rasters with a known class at every pixel (for segment and CLI tests)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

from tests.engine.helpers import paint

CRS = "EPSG:32640"
#: A plausible Dubai origin, 0.3 m pixels.
TRANSFORM = from_origin(300_000.0, 2_800_000.0, 0.3, 0.3)


def block_classes(height: int, width: int, block: int = 4, seed: int = 0) -> np.ndarray:
    """(H, W) random class ids 0..5 in square blocks (edges everywhere, so blending matters)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 6, (height // block + 1, width // block + 1))
    return coarse.repeat(block, 0).repeat(block, 1)[:height, :width]


def write_raster(path: Path, bands: np.ndarray, crs: str | None = CRS, transform=TRANSFORM, **profile) -> Path:
    """Write (count, H, W) ``bands`` as a GeoTIFF; extra profile keys (nodata, dtype ...) pass through."""
    count, height, width = bands.shape
    options = dict(driver="GTiff", width=width, height=height, count=count, dtype=bands.dtype, transform=transform)
    if crs is not None:
        options["crs"] = crs
    options.update(profile)
    with rasterio.open(path, "w", **options) as dataset:
        dataset.write(bands)
    return path


def write_painted(path: Path, class_ids: np.ndarray, **profile) -> Path:
    """An RGB uint8 GeoTIFF painted in the class colours of ``class_ids``."""
    return write_raster(path, np.moveaxis(paint(class_ids), -1, 0), **profile)
