"""Where the tiles go: the sliding-window grid and the reflect-padded strips tiles are cut from.

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

#: read_rows(first_row, row_count) -> (pixels (rows, width, bands), valid (rows, width) bool)
RowReader = Callable[[int, int], tuple[np.ndarray, np.ndarray]]


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
    def for_raster(cls, height: int, width: int, tile_size: int, overlap: int) -> "TileGrid":
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


def read_strip(read_rows: RowReader, grid: TileGrid, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The pixels and validity under tile row ``k``: ``tile`` rows (reflected beyond the raster's
    top or bottom), at the raster's width (cut tiles out with ``cut_tile``).

    Reads whole raster rows, so the working set grows with the raster's width, never its
    height; only the first and last tile rows need a padded copy.
    """
    top = grid.rows[k]
    first, stop = max(top, 0), min(top + grid.tile_size, grid.height)
    pixels, valid = read_rows(first, stop - first)
    before, after = (first - top, 0), (top + grid.tile_size - stop, 0)
    return _reflect_pad(pixels, before, after), _reflect_pad(valid, before, after)


def cut_tile(strip: np.ndarray, grid: TileGrid, j: int) -> np.ndarray:
    """Tile ``j`` of a strip from ``read_strip``: a view, or reflect-padded where it passes the
    raster's left or right edge (a tile there always holds the edge, so it mirrors correctly)."""
    left = grid.cols[j]
    start, stop = max(left, 0), min(left + grid.tile_size, grid.width)
    return _reflect_pad(strip[:, start:stop], (0, start - left), (0, left + grid.tile_size - stop))
