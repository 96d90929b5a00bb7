# SPDX-License-Identifier: GPL-2.0-or-later
"""Where the tiles go: the sliding-window grid, and each tile read with reflected margins.

The grid is laid over the raster grown by a reflected margin of half the overlap on every
side, so pixels at the raster's edge sit inside a tile (with mirrored context around them)
instead of on a tile border, where a convolutional model sees least context.
Tiles are spread evenly along each axis: the first starts at the margin, the last ends
exactly at the far margin, and no step is longer than ``tile - overlap``. So no pixel is
skipped whatever the raster size (it need not be a multiple of anything), every pair of
neighbours overlaps by at least ``overlap`` and the number of tiles is the smallest
possible. A raster smaller than one tile gets one tile, centred, the rest reflected.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

#: read_window(row, col, height, width) -> (pixels (height, width, bands), valid (height, width) bool);
#: called only with windows inside the raster.
WindowReader = Callable[[int, int, int, int], tuple[np.ndarray, np.ndarray]]


def check_tiling(tile_size: int, overlap: int) -> None:
    """ValueError unless the overlap leaves each pixel inside at most two tiles per axis."""
    if tile_size < 1:
        raise ValueError(f"tile size must be positive, got {tile_size}")
    if not 0 <= overlap <= tile_size // 2:
        raise ValueError(
            f"overlap must be between 0 and half the tile size ({tile_size // 2} for tile {tile_size}), got {overlap}"
        )


def axis_origins(length: int, tile_size: int, overlap: int) -> tuple[int, ...]:
    """First pixel of every tile along one axis (negative = starts in the reflected margin)."""
    if length < 1:
        raise ValueError(f"raster dimension must be positive, got {length}")
    check_tiling(tile_size, overlap)
    margin = overlap // 2
    first, last = -margin, length + margin - tile_size
    if last <= first:
        return (-((tile_size - length) // 2),)
    count = math.ceil((last - first) / (tile_size - overlap)) + 1
    return tuple(first + round(i * (last - first) / (count - 1)) for i in range(count))


@dataclass(frozen=True)
class TileGrid:
    """The tiles of one raster: ``rows[k]``, ``cols[j]`` are the top-left corners."""

    height: int
    width: int
    tile_size: int
    overlap: int
    rows: tuple[int, ...]
    cols: tuple[int, ...]

    @classmethod
    def for_raster(cls, height: int, width: int, tile_size: int, overlap: int) -> TileGrid:
        return cls(
            height,
            width,
            tile_size,
            overlap,
            axis_origins(height, tile_size, overlap),
            axis_origins(width, tile_size, overlap),
        )

    @property
    def tile_count(self) -> int:
        return len(self.rows) * len(self.cols)


def _reflect_pad(array: np.ndarray, before: tuple[int, int], after: tuple[int, int]) -> np.ndarray:
    pad = [(before[0], after[0]), (before[1], after[1])] + [(0, 0)] * (array.ndim - 2)
    if not any(before + after):
        return array
    return np.pad(array, pad, mode="reflect")


def read_tile(read_window: WindowReader, grid: TileGrid, k: int, j: int) -> tuple[np.ndarray, np.ndarray]:
    """The pixels and validity of tile (row ``k``, column ``j``), mirrored where it passes the
    raster's edges (a tile there always holds the edge, so it mirrors correctly).

    Reads only the tile's own window, never whole raster rows: a strip of the raster's
    width would make memory grow with width (30 MB of RGB at 20,000 columns), and
    GDAL's block cache already saves re-reading the blocks neighbouring tiles share.
    """
    top, left, tile = grid.rows[k], grid.cols[j], grid.tile_size
    first_row, stop_row = max(top, 0), min(top + tile, grid.height)
    first_col, stop_col = max(left, 0), min(left + tile, grid.width)
    pixels, valid = read_window(first_row, first_col, stop_row - first_row, stop_col - first_col)
    before, after = (first_row - top, first_col - left), (top + tile - stop_row, left + tile - stop_col)
    return _reflect_pad(pixels, before, after), _reflect_pad(valid, before, after)
