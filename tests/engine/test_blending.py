# SPDX-License-Identifier: GPL-2.0-or-later
"""Blending: smooth positive weights, and the streaming accumulator equals a whole-raster weighted mean."""
import numpy as np
import pytest

from dubai_segmenter.engine.blending import BlendedBlock, BlendingAccumulator, window_profile, window_weights
from dubai_segmenter.engine.classes import NODATA_CLASS
from dubai_segmenter.engine.tiling import TileGrid


@pytest.mark.parametrize("tile, overlap", [(64, 0), (64, 16), (512, 128), (32, 16)])
def test_window_is_positive_symmetric_and_flat_inside(tile, overlap):
    profile = window_profile(tile, overlap)
    assert profile.min() > 0
    np.testing.assert_allclose(profile, profile[::-1])
    np.testing.assert_array_equal(profile[overlap : tile - overlap], 1)
    assert np.all(np.diff(profile[:overlap]) > 0)  # rises smoothly over the overlap
    assert window_weights(tile, overlap).min() > 0


def test_neighbour_tapers_cross_fade_to_one():
    # Two tiles (tile - overlap) apart: their weights sum to 1 over the overlap.
    profile = window_profile(64, 16)
    np.testing.assert_allclose(profile[48:] + profile[:16], 1, atol=1e-6)


def whole_raster_mean(grid, tiles, valids):
    """The reference: accumulate every weighted tile into full-size arrays, then divide."""
    tile = grid.tile_size
    top, left = grid.rows[0], grid.cols[0]
    height = grid.rows[-1] + tile - top
    width = grid.cols[-1] + tile - left
    sums = np.zeros((height, width, tiles[0].shape[-1]))
    weight = window_weights(tile, grid.overlap).astype(np.float64)
    index = 0
    for row in grid.rows:
        for col in grid.cols:
            w = weight * valids[index]
            sums[row - top : row - top + tile, col - left : col - left + tile] += tiles[index] * w[..., None]
            index += 1
    sums = sums[-top : -top + grid.height, -left : -left + grid.width]
    total = sums.sum(-1, keepdims=True)
    return np.divide(sums, total, out=np.zeros_like(sums), where=total > 0)


@pytest.mark.parametrize(
    "height, width, tile, overlap",
    [(100, 130, 32, 8), (20, 17, 32, 8), (257, 64, 64, 16), (64, 64, 64, 0), (300, 301, 48, 24), (70, 200, 32, 16)],
)
def test_streamed_blend_equals_whole_raster_mean(height, width, tile, overlap):
    rng = np.random.default_rng(height * width)
    grid = TileGrid.for_raster(height, width, tile, overlap)
    tiles = [rng.dirichlet(np.ones(4), (tile, tile)).astype(np.float32) for _ in range(grid.tile_count)]
    valids = [rng.random((tile, tile)) > 0.2 for _ in range(grid.tile_count)]
    valids[-1 if grid.tile_count == 1 else 1] = np.zeros((tile, tile), bool)  # a skipped tile
    expected = whole_raster_mean(grid, tiles, valids)

    accumulator = BlendingAccumulator(grid, 4)
    result = np.full((height, width, 4), np.nan, dtype=np.float32)
    seen = np.zeros((height, width), dtype=int)
    for probabilities, valid in zip(tiles, valids):
        for block in accumulator.add(None if not valid.any() else probabilities, valid):
            rows, cols = block.shape
            result[block.row : block.row + rows, block.col : block.col + cols] = block.probabilities()
            seen[block.row : block.row + rows, block.col : block.col + cols] += 1
    assert accumulator.done
    np.testing.assert_array_equal(seen, 1)  # every pixel handed back exactly once
    np.testing.assert_allclose(result, expected, atol=1e-5)


def test_pixels_seen_by_no_valid_tile_come_back_as_zeros():
    grid = TileGrid.for_raster(40, 40, 32, 8)
    accumulator = BlendingAccumulator(grid, 3)
    blocks = [b for _ in range(grid.tile_count) for b in accumulator.add(None)]
    assert sum(b.shape[0] * b.shape[1] for b in blocks) == 40 * 40
    assert all(not b.probabilities().any() for b in blocks)
    assert all((b.classes()[0] == NODATA_CLASS).all() for b in blocks)


def test_block_classes_are_the_first_most_probable_class():
    sums = np.random.default_rng(0).random((5, 30, 40)).astype(np.float32)
    sums[:, 0, 0] = [0.2, 0.4, 0.4, 0.0, 0.0]  # a tie goes to the first, like argmax
    block = BlendedBlock(0, 0, sums)
    class_ids, probability = block.classes()
    np.testing.assert_array_equal(class_ids, sums.argmax(0))
    np.testing.assert_allclose(probability, sums.max(0) / sums.sum(0), rtol=1e-6)
    np.testing.assert_allclose(block.probabilities(), np.moveaxis(sums / sums.sum(0), 0, -1), rtol=1e-6)


def test_carry_depends_on_width_not_height():
    short = BlendingAccumulator(TileGrid.for_raster(5_000, 3_000, 512, 128), 6)
    tall = BlendingAccumulator(TileGrid.for_raster(200_000, 3_000, 512, 128), 6)
    # About `overlap` rows of the raster's width, whatever the height (steps are spread
    # evenly, so the real overlap can be a few pixels more than asked).
    assert tall._carry.shape[::2] == short._carry.shape[::2] == (6, 3_000)
    assert 128 <= tall._carry.shape[1] <= 128 + 8
    assert short._carry.shape[1] <= 512 // 2


def test_adding_more_tiles_than_the_grid_has_fails():
    grid = TileGrid.for_raster(10, 10, 32, 0)
    accumulator = BlendingAccumulator(grid, 2)
    accumulator.add(None)
    with pytest.raises(ValueError):
        accumulator.add(None)
