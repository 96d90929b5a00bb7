# SPDX-License-Identifier: GPL-2.0-or-later
"""The tile grid covers every pixel, ends at the edges and mirrors the raster beyond them."""
import numpy as np
import pytest

from dubai_segmenter.engine.tiling import TileGrid, axis_origins, read_tile

CASES = [
    (length, tile, overlap)
    for length in (1, 5, 31, 32, 33, 100, 257, 1000)
    for tile, overlap in ((32, 0), (32, 8), (64, 16), (64, 32))
]


@pytest.mark.parametrize("length, tile, overlap", CASES)
def test_tiles_cover_every_pixel_without_long_steps(length, tile, overlap):
    origins = np.array(axis_origins(length, tile, overlap))
    covered = np.zeros(length, dtype=int)
    for start in origins:
        covered[max(start, 0) : max(start + tile, 0)] += 1
    assert covered.min() >= 1
    assert np.all(np.diff(origins) > 0)
    assert np.all(np.diff(origins) <= tile - overlap)
    margin = overlap // 2
    if length + 2 * margin > tile:
        # First tile starts in the reflected margin, last one ends exactly at the far margin.
        assert origins[0] == -margin
        assert origins[-1] + tile == length + margin
    else:
        assert len(origins) == 1 and origins[0] <= 0 and origins[0] + tile >= length


def test_raster_smaller_than_a_tile_gets_one_centred_tile():
    assert axis_origins(20, 64, 16) == (-22,)


def test_number_of_tiles_is_minimal():
    # 1000 px + 2 x 8 margin with steps of at most 48: (1016 - 64) / 48 -> 20 steps, 21 tiles.
    assert len(axis_origins(1000, 64, 16)) == 21


@pytest.mark.parametrize("overlap", [-1, 33])
def test_overlap_beyond_half_a_tile_is_refused(overlap):
    with pytest.raises(ValueError, match="overlap"):
        axis_origins(100, 64, overlap)


@pytest.mark.parametrize("height, width", [(50, 70), (10, 7), (64, 64), (33, 100)])
def test_tiles_are_cut_from_the_reflect_padded_raster(height, width):
    image = np.arange(height * width * 2, dtype=np.float32).reshape(height, width, 2)
    valid = np.arange(height * width).reshape(height, width) % 3 > 0
    grid = TileGrid.for_raster(height, width, 32, 8)
    top, left = grid.rows[0], grid.cols[0]
    bottom = grid.rows[-1] + grid.tile_size
    pad = ((-top, bottom - height), (-left, grid.cols[-1] + grid.tile_size - width))
    padded = np.pad(image, pad + ((0, 0),), mode="reflect")
    padded_valid = np.pad(valid, pad, mode="reflect")
    reads = []

    def window(row, col, rows, cols):
        reads.append((row, col, rows, cols))
        return image[row : row + rows, col : col + cols], valid[row : row + rows, col : col + cols]

    for k, row in enumerate(grid.rows):
        for j, col in enumerate(grid.cols):
            pixels, pixels_valid = read_tile(window, grid, k, j)
            y, x = row - top, col - left
            np.testing.assert_array_equal(pixels, padded[y : y + 32, x : x + 32])
            np.testing.assert_array_equal(pixels_valid, padded_valid[y : y + 32, x : x + 32])
    # Only raster pixels are ever read, never more than one tile's window at once, so memory
    # does not grow with the raster's width.
    assert all(
        row >= 0 and row + rows <= height and rows <= 32 and col >= 0 and col + cols <= width and cols <= 32
        for row, col, rows, cols in reads
    )
