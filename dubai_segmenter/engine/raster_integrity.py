# SPDX-License-Identifier: GPL-2.0-or-later
"""Damaged input rasters found before the model loads, and named by where they are damaged.

A GeoTIFF cut off mid-file (an interrupted copy or download) opens fine: its header is at
the start. The run then failed minutes later, at the first missing block, with a long
traceback ending in ``RasterioIOError: Read failed``. A TIFF's block table says where each
block starts and how long it is, so comparing it with the file's size finds a truncated
file in a fraction of a second (0.1 s for tens of thousands of blocks) without reading
any pixels. Damage inside the file (corrupted compressed data) can only show when the
block is decoded; ``read_failure`` turns that error into the same kind of message.
"""
from __future__ import annotations

import os
from pathlib import Path

from dubai_segmenter.engine.errors import DamagedRasterError


def _rows_cols(x: int, y: int, block_x: int, block_y: int, width: int, height: int) -> str:
    top, left = y * block_y, x * block_x
    return f"rows {top}-{min(height, top + block_y) - 1}, columns {left}-{min(width, left + block_x) - 1}"


def check_block_table(path: str | os.PathLike) -> None:
    """Raise DamagedRasterError if a block of the GeoTIFF at ``path`` lies beyond its end.

    Other formats (and TIFFs GDAL does not describe block by block) pass: there is nothing
    to compare before reading.
    """
    from osgeo import gdal

    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        return
    try:
        dataset = gdal.Open(str(path))
    except RuntimeError:  # exceptions turned on by someone else: rasterio's open decides then
        return
    if dataset is None or dataset.GetDriver().ShortName != "GTiff":
        return
    width, height = dataset.RasterXSize, dataset.RasterYSize
    interleaved = dataset.GetMetadataItem("INTERLEAVE", "IMAGE_STRUCTURE") == "PIXEL"
    bands = [1] if interleaved else range(1, dataset.RasterCount + 1)
    for number in bands:
        band = dataset.GetRasterBand(number)
        block_x, block_y = band.GetBlockSize()
        for y in range((height + block_y - 1) // block_y):
            for x in range((width + block_x - 1) // block_x):
                offset = band.GetMetadataItem(f"BLOCK_OFFSET_{x}_{y}", "TIFF")
                if offset is None:
                    return  # GDAL does not expose the block table of this TIFF
                length = band.GetMetadataItem(f"BLOCK_SIZE_{x}_{y}", "TIFF") or "0"
                if int(offset) and int(offset) + int(length) > size:
                    where = _rows_cols(x, y, block_x, block_y, width, height)
                    raise DamagedRasterError(
                        f"{path} is damaged or truncated: its data for {where}"
                        f"{'' if interleaved else f' of band {number}'} lies beyond the end of the file "
                        f"({size:,} bytes); nothing was written. Copy or download it again"
                    )


def read_failure(path: str, top: int, left: int, height: int, width: int, error: Exception) -> DamagedRasterError:
    """The error for a window of ``path`` that GDAL could not decode (corrupted data)."""
    detail = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
    return DamagedRasterError(
        f"{path} is damaged: rows {top}-{top + height - 1}, columns {left}-{left + width - 1} could not be "
        f"read ({detail}); nothing was written. Copy or download it again"
    )
