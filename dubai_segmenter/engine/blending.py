# SPDX-License-Identifier: GPL-2.0-or-later
"""Where tiles are blended: smooth window weights and the streaming probability accumulator.

A convolutional model is least reliable near a tile's border (it sees no context beyond
it), so overlapping tiles are combined by a weighted mean of their class probabilities
instead of cropping each tile to its centre, which leaves visible seams. The weight is a
Tukey window: 1 in the middle of the tile and a raised-cosine (Hann) taper over
``overlap`` pixels at each border. With tiles ``tile - overlap`` apart the tapers of two
neighbours add up to exactly 1 (sin^2 + cos^2), so each tile fades smoothly into the next;
the taper is sampled at pixel centres, so no covered pixel ever gets zero weight and every
pixel keeps a defined mean even where a single tile covers it (the raster's edges).

The accumulator keeps memory bounded by tile size and raster width: tiles arrive row by
row, left to right; it sums each tile into a tile-sized buffer, hands back every column
block as soon as no later tile can touch it, and keeps only the rows the next tile row
will overlap ("carry", about ``overlap`` rows of the raster's width). Pixels that are not
valid get no weight, so their probabilities come back as all zeros.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dubai_segmenter.engine.classes import NODATA_CLASS
from dubai_segmenter.engine.tiling import TileGrid


def window_profile(tile_size: int, overlap: int) -> np.ndarray:
    """1-D weights along one tile axis: raised-cosine tapers over ``overlap`` pixels, 1 inside."""
    weights = np.ones(tile_size, dtype=np.float64)
    if overlap:
        taper = np.sin(0.5 * np.pi * (np.arange(overlap) + 0.5) / overlap) ** 2
        weights[:overlap] = taper
        weights[tile_size - overlap :] = taper[::-1]
    return weights.astype(np.float32)


def window_weights(tile_size: int, overlap: int) -> np.ndarray:
    """(tile, tile) float32 weights: the outer product of the 1-D profile, > 0 everywhere."""
    profile = window_profile(tile_size, overlap)
    return np.outer(profile, profile)


@dataclass(frozen=True)
class BlendedBlock:
    """Finished pixels at raster (row, col): weighted probability sums, class-major (C, rows, cols).

    Kept class-major because reductions over a short last axis are ~20x slower in numpy
    than element-wise operations across class planes.
    """

    row: int
    col: int
    sums: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.sums.shape[1:]

    def probabilities(self) -> np.ndarray:
        """(rows, cols, C) weighted mean probabilities; all zeros where no valid tile saw a pixel.

        Softmax outputs sum to 1 over classes, so a pixel's class total is the sum of the
        weights it received: dividing by it gives the weighted mean.
        """
        total = np.add.reduce(self.sums, axis=0)
        return np.moveaxis(self.sums / np.maximum(total, np.finfo(np.float32).tiny), 0, -1)

    def classes(self) -> tuple[np.ndarray, np.ndarray]:
        """uint8 class ids (NODATA_CLASS where no valid tile saw the pixel) and the winning
        class's weighted mean probability (0 there).

        A first-maximum argmax written as plane-by-plane maxima: ``argmax(axis=0)`` walks the
        short class axis pixel by pixel and is many times slower.
        """
        best = self.sums[0].copy()
        class_ids = np.zeros(best.shape, dtype=np.uint8)
        for class_id in range(1, len(self.sums)):
            better = self.sums[class_id] > best
            class_ids[better] = class_id
            np.maximum(best, self.sums[class_id], out=best)
        total = np.add.reduce(self.sums, axis=0)
        class_ids[best <= 0] = NODATA_CLASS
        return class_ids, best / np.maximum(total, np.finfo(np.float32).tiny)


class BlendingAccumulator:
    """Blends the tiles of one ``TileGrid`` in row-major order into finished pixel blocks.

    Call ``add`` once per tile, in order (``None`` for a tile that was skipped); each call
    returns the blocks that became final. Every raster pixel is returned exactly once.
    """

    def __init__(self, grid: TileGrid, num_classes: int) -> None:
        self.grid = grid
        self.num_classes = num_classes
        tile = grid.tile_size
        self._weights = window_weights(tile, grid.overlap)
        # Class-major sums of the tiles touching the current columns, and room for one weighted tile.
        self._local = np.zeros((num_classes, tile, tile), dtype=np.float32)
        self._weighted = np.empty_like(self._local)
        # Rows of tile row k that tile row k + 1 also covers, over the whole raster width.
        carry_rows = [
            min(top + tile, grid.height) - max(below, 0) for top, below in zip(grid.rows, grid.rows[1:])
        ]
        self._carry = np.zeros((num_classes, max(carry_rows, default=0), grid.width), dtype=np.float32)
        self._next = 0  # index of the next tile, row-major

    @property
    def done(self) -> bool:
        return self._next == self.grid.tile_count

    def add(self, probabilities: np.ndarray | None, valid: np.ndarray | None = None) -> list[BlendedBlock]:
        """Add the next tile's (tile, tile, C) probabilities; ``valid`` (tile, tile) bool masks pixels out."""
        grid, tile = self.grid, self.grid.tile_size
        if self.done:
            raise ValueError("all tiles of the grid have been added already")
        k, j = divmod(self._next, len(grid.cols))
        self._next += 1
        if probabilities is not None:
            expected = (tile, tile, self.num_classes)
            if probabilities.shape != expected:
                raise ValueError(f"tile probabilities have shape {probabilities.shape}, expected {expected}")
            weights = self._weights if valid is None else self._weights * valid
            self._local += np.multiply(probabilities.transpose(2, 0, 1), weights, out=self._weighted)
        left = grid.cols[j]
        right = grid.cols[j + 1] if j + 1 < len(grid.cols) else left + tile
        blocks = self._flush_columns(k, left, right)
        shift = right - left
        self._local[:, :, : tile - shift] = self._local[:, :, shift:]
        self._local[:, :, tile - shift :] = 0
        return blocks

    def _flush_columns(self, k: int, left: int, right: int) -> list[BlendedBlock]:
        """Finish raster columns [left, right) of tile row k: add what earlier tile rows left in
        the carry, return the rows no later tile row covers, keep the others as the new carry."""
        grid, rows = self.grid, self.grid.rows
        first_col, stop_col = max(left, 0), min(right, grid.width)
        if first_col >= stop_col:
            return []
        top = rows[k]
        block = self._local[:, :, first_col - left : stop_col - left]
        if k > 0:
            carried = slice(max(top, 0), min(rows[k - 1] + grid.tile_size, grid.height))
            height = carried.stop - carried.start
            block[:, carried.start - top : carried.stop - top] += self._carry[:, :height, first_col:stop_col]
        last_row = k + 1 == len(rows)
        finished = slice(max(top, 0), grid.height if last_row else min(rows[k + 1], grid.height))
        if not last_row:
            kept = slice(max(rows[k + 1], 0), min(top + grid.tile_size, grid.height))
            height = kept.stop - kept.start
            self._carry[:, :height, first_col:stop_col] = block[:, kept.start - top : kept.stop - top]
        if finished.start >= finished.stop:
            return []
        sums = block[:, finished.start - top : finished.stop - top].copy()  # the buffer moves on
        return [BlendedBlock(finished.start, first_col, sums)]
