# SPDX-License-Identifier: GPL-2.0-or-later
"""The model runs one batch ahead in its own thread: same output bit for bit, one call at a time,
and nothing left running after a cancel."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from dubai_segmenter.engine.blending import BlendingAccumulator
from dubai_segmenter.engine.errors import Cancelled
from dubai_segmenter.engine.segment import blend_tiles, segment_array
from dubai_segmenter.engine.tiling import TileGrid, read_tile
from tests.engine.helpers import colour_metadata

TILE, OVERLAP, CLASSES = 64, 16, 6


class SlowLinearPredictor:
    """Softmax of a fixed per-pixel linear map, tile by tile (so batching cannot change a bit),
    with random delays, recording which thread ran it and whether two calls ever overlapped."""

    backend = "test"

    def __init__(self, seed: int = 0) -> None:
        self.metadata = colour_metadata(TILE, OVERLAP)
        self.tile_size = TILE
        rng = np.random.default_rng(seed)
        self.weights = rng.normal(0, 3, (3, CLASSES)).astype(np.float32)
        self.delays = rng.uniform(0, 0.01, 1000)
        self.calls, self.threads, self.overlapped = 0, set(), False
        self._busy = threading.Lock()

    def predict(self, batch: np.ndarray) -> np.ndarray:
        if not self._busy.acquire(blocking=False):
            self.overlapped = True
            self._busy.acquire()
        try:
            self.threads.add(threading.current_thread().name)
            time.sleep(self.delays[self.calls % len(self.delays)])
            self.calls += 1
            return np.stack([self._tile(tile) for tile in batch])
        finally:
            self._busy.release()

    def _tile(self, tile: np.ndarray) -> np.ndarray:
        logits = tile @ self.weights
        logits -= logits.max(-1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(-1, keepdims=True)


def one_thread_reference(image: np.ndarray, valid: np.ndarray, predictor: SlowLinearPredictor) -> np.ndarray:
    """What the engine computed before the model thread: every tile in order, blended as it comes."""
    height, width = valid.shape
    grid = TileGrid.for_raster(height, width, TILE, OVERLAP)
    accumulator = BlendingAccumulator(grid, CLASSES)
    result = np.zeros((height, width, CLASSES), np.float32)

    def window(row, col, h, w):
        return image[row : row + h, col : col + w], valid[row : row + h, col : col + w]

    for k in range(len(grid.rows)):
        for j in range(len(grid.cols)):
            pixels, tile_valid = read_tile(window, grid, k, j)
            output = None
            if tile_valid.any():
                model_input = np.array(pixels)
                model_input[~tile_valid] = 0
                output = predictor._tile(model_input)
            for block in accumulator.add(output, None if output is None or tile_valid.all() else tile_valid):
                h, w = block.shape
                result[block.row : block.row + h, block.col : block.col + w] = block.probabilities()
    return result


@pytest.mark.parametrize("batch_size", [1, 3, 4])
def test_model_thread_output_is_bit_identical(batch_size):
    rng = np.random.default_rng(batch_size)
    image = rng.random((250, 310, 3), dtype=np.float32)
    valid = np.ones((250, 310), bool)
    valid[:, :70] = False  # whole tiles without data: skipped, never sent to the model
    valid[180:200, 100:140] = False
    predictor = SlowLinearPredictor()
    got = segment_array(image, predictor, TILE, OVERLAP, batch_size, valid)
    expected = one_thread_reference(image, valid, predictor)
    np.testing.assert_array_equal(got, expected)
    assert predictor.threads and all(name.startswith("model") for name in predictor.threads)
    assert not predictor.overlapped
    assert not any(t.name.startswith("model") for t in threading.enumerate())


def test_cancel_stops_the_model_thread():
    predictor = SlowLinearPredictor()
    image = np.random.default_rng(0).random((400, 400, 3), dtype=np.float32)
    grid = TileGrid.for_raster(400, 400, TILE, OVERLAP)
    reports = []

    def window(row, col, h, w):
        return image[row : row + h, col : col + w], np.ones((h, w), bool)

    with pytest.raises(Cancelled):
        for _ in blend_tiles(window, np.array, grid, predictor, 2, lambda f, m: reports.append(f),
                             cancel=lambda: len(reports) >= 3):
            pass
    assert 3 <= len(reports) < grid.tile_count // 2
    assert predictor.calls <= len(reports) + 2  # at most the batch in flight and the one being submitted
    assert not any(t.name.startswith("model") for t in threading.enumerate())
