# SPDX-License-Identifier: GPL-2.0-or-later
"""Input rasters: opening with clear errors, band choice, scaling to the model's range, validity.

Scaling rule (what the model sees): a model takes 8-bit-range pixel values times its
``input_scale`` (1/255 for the Dubai models, trained on 8-bit RGB).
- uint8 bands are used as they are: value * input_scale.
- any other type (uint16, int, float) is stretched per band, linearly, so that the 2nd
  percentile of the band's valid pixels becomes 0 and the 98th becomes 255 (values beyond
  are clipped), then times input_scale. The percentiles come from one decimated read of
  the whole raster (at most ~1024 x 1024 samples; GDAL uses overviews when the file has
  them), so every tile is scaled the same way and there are no seams between tiles.
Validity: a pixel has data unless GDAL's mask for the chosen bands says otherwise in all
of them (nodata value, internal/sidecar mask or alpha band) or its value is not finite.
Pixels without data are set to 0 before they go to the model and become 255 (no data)
in the output.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.errors import RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from dubai_segmenter.engine.errors import RasterInputError

#: Longest side of the decimated read the stretch percentiles are computed from.
STATISTICS_SIZE = 1024
STRETCH_PERCENTILES = (2.0, 98.0)


def open_raster(path: str | os.PathLike) -> rasterio.DatasetReader:
    """Open ``path`` read-only, or RasterInputError for a missing file, a non-raster, no CRS."""
    from dubai_segmenter.engine.raster_integrity import check_block_table

    if not os.path.exists(path):
        raise RasterInputError(f"input raster not found: {path}")
    if os.path.isdir(path):
        raise RasterInputError(f"input is a directory, not a raster file: {path}")
    check_block_table(path)  # a truncated file fails here, in a second, not minutes into the run
    try:
        dataset = rasterio.open(path)
    except RasterioIOError as error:
        raise RasterInputError(f"{path} is not a raster GDAL can read ({error})") from error
    if dataset.crs is None:
        dataset.close()
        raise RasterInputError(
            f"{path} has no coordinate reference system, so the result could not be placed on a map; "
            "assign one first (QGIS: Raster > Projections > Assign Projection, or "
            "gdal_edit.py -a_srs EPSG:<code> on a copy)"
        )
    return dataset


def choose_bands(dataset: rasterio.DatasetReader, bands: Sequence[int] | None, input_bands: int) -> tuple[int, ...]:
    """The 1-based bands to feed the model: ``bands`` checked, or the first ``input_bands``."""
    if bands is None:
        if dataset.count < input_bands:
            hint = ",".join(["1"] * input_bands) if dataset.count == 1 else None
            raise RasterInputError(
                f"the model needs {input_bands} bands but the raster has {dataset.count}"
                + (f"; to repeat its single band pass --bands {hint}" if hint else "; choose them with --bands")
            )
        bands = tuple(range(1, input_bands + 1))
    bands = tuple(bands)
    if len(bands) != input_bands:
        raise RasterInputError(
            f"the model needs {input_bands} bands, but {len(bands)} were chosen ({_listed(bands)})"
        )
    for band in bands:
        if not isinstance(band, (int, np.integer)) or not 1 <= band <= dataset.count:
            raise RasterInputError(f"band {band} does not exist: the raster has bands 1 to {dataset.count}")
        if dataset.colorinterp[band - 1] == ColorInterp.alpha:
            raise RasterInputError(
                f"band {band} is the alpha (transparency) band; choose colour bands, e.g. --bands 1,2,3"
            )
    return bands


def describe_input(bands: Sequence[int], band_count: int, scaling: str) -> str:
    """One line for the run log: the bands used, those ignored (e.g. NIR) and how values were scaled."""
    ignored = [b for b in range(1, band_count + 1) if b not in bands]
    note = f"; band{'s' if len(ignored) > 1 else ''} {_listed(ignored)} ignored" if ignored else ""
    return f"Input: bands {_listed(bands)} of {band_count} used{note}; values {scaling}"


def parse_band_list(text: str) -> tuple[int, ...]:
    """'1,2,3' -> (1, 2, 3), or RasterInputError naming what is wrong."""
    try:
        bands = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise RasterInputError(
            f"bad band list {text!r}: give 1-based band numbers separated by commas, e.g. 1,2,3") from None
    return bands


def _listed(bands: Sequence[int]) -> str:
    return ",".join(str(b) for b in bands) or "none"


@dataclass(frozen=True)
class BandScaling:
    """Per-band linear map raw value -> model input; ``low``/``high`` are None for 8-bit data."""

    input_scale: float
    low: tuple[float, ...] | None = None
    high: tuple[float, ...] | None = None

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """(..., bands) raw values -> float32 model input."""
        values = pixels.astype(np.float32)
        if self.low is not None:
            low = np.asarray(self.low, dtype=np.float32)
            span = np.asarray(self.high, dtype=np.float32) - low
            values = np.clip((values - low) * (255.0 / span), 0.0, 255.0)
        values *= np.float32(self.input_scale)
        return values

    def describe(self, bands: Sequence[int] | None = None) -> str:
        """How values become model input; with ``bands``, each stretch range names its band."""
        if self.low is None:
            return f"8-bit values x {self.input_scale:g}"
        names = [f"band {b} " for b in bands] if bands is not None else [""] * len(self.low)
        ranges = ", ".join(f"{name}{lo:g}..{hi:g}" for name, lo, hi in zip(names, self.low, self.high))
        return f"stretched {ranges} -> 0..255, x {self.input_scale:g}"


def compute_scaling(dataset: rasterio.DatasetReader, bands: Sequence[int], input_scale: float) -> BandScaling:
    """The documented scaling rule (module docstring) for these bands of this raster."""
    if all(dataset.dtypes[b - 1] == "uint8" for b in bands):
        return BandScaling(input_scale)
    factor = max(1.0, max(dataset.width, dataset.height) / STATISTICS_SIZE)
    shape = (len(bands), max(1, round(dataset.height / factor)), max(1, round(dataset.width / factor)))
    values = dataset.read(list(bands), out_shape=shape, resampling=Resampling.nearest).astype(np.float64)
    masks = dataset.read_masks(list(bands), out_shape=shape, resampling=Resampling.nearest) > 0
    low, high = [], []
    for band_values, band_mask in zip(values, masks):
        sample = band_values[band_mask & np.isfinite(band_values)]
        lo, hi = np.percentile(sample, STRETCH_PERCENTILES) if sample.size else (0.0, 1.0)
        low.append(float(lo))
        high.append(float(hi) if hi > lo else float(lo) + 1.0)
    return BandScaling(input_scale, tuple(low), tuple(high))


def read_window(dataset: rasterio.DatasetReader, bands: Sequence[int], window: Window) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols, bands) raw pixels and (rows, cols) validity of ``window``.

    A window GDAL cannot decode (corrupted data) raises DamagedRasterError naming it.
    """
    try:
        pixels = dataset.read(list(bands), window=window)
        return np.moveaxis(pixels, 0, -1), read_validity(dataset, bands, window, pixels)
    except RasterioIOError as error:
        from dubai_segmenter.engine.raster_integrity import read_failure

        top, left = int(window.row_off), int(window.col_off)
        raise read_failure(dataset.name, top, left, int(window.height), int(window.width), error) from error


def read_validity(
    dataset: rasterio.DatasetReader, bands: Sequence[int], window: Window, pixels: np.ndarray | None = None
) -> np.ndarray:
    """(rows, cols) bool: which pixels of ``window`` have data (rule in the module docstring).

    ``pixels`` (bands, rows, cols), when the caller has read them already, saves a second read.
    """
    valid = np.zeros((int(window.height), int(window.width)), dtype=bool)
    per_dataset = all(MaskFlags.per_dataset in dataset.mask_flag_enums[b - 1] for b in bands)
    for band in bands[:1] if per_dataset else bands:  # one band at a time: 1 byte per pixel at most
        valid |= dataset.read_masks(band, window=window) > 0
    if any(np.issubdtype(np.dtype(dataset.dtypes[b - 1]), np.floating) for b in bands):
        if pixels is None:
            pixels = dataset.read(list(bands), window=window)
        valid &= np.isfinite(pixels).all(axis=0)
    return valid


def resampled(dataset: rasterio.DatasetReader, resolution: float) -> WarpedVRT:
    """A virtual copy of ``dataset`` with pixels of about ``resolution`` CRS units, same extent.

    The grid is the nearest one that covers exactly the input's extent. Downsampling
    averages (no aliasing), upsampling interpolates bilinearly. Masks and alpha become an
    alpha band of the copy, so validity survives the resampling.
    """
    if not (resolution > 0 and math.isfinite(resolution)):
        raise RasterInputError(f"processing resolution must be a positive number, got {resolution}")
    pixel_x = math.hypot(dataset.transform.a, dataset.transform.d)
    pixel_y = math.hypot(dataset.transform.b, dataset.transform.e)
    width = max(1, round(dataset.width * pixel_x / resolution))
    height = max(1, round(dataset.height * pixel_y / resolution))
    transform = dataset.transform @ Affine.scale(dataset.width / width, dataset.height / height)
    coarser = resolution > min(pixel_x, pixel_y)
    has_alpha = any(MaskFlags.alpha in flags for flags in dataset.mask_flag_enums)
    return WarpedVRT(
        dataset,
        crs=dataset.crs,
        transform=transform,
        width=width,
        height=height,
        resampling=Resampling.average if coarser else Resampling.bilinear,
        add_alpha=dataset.nodata is None and not has_alpha,
    )
