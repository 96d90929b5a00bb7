# SPDX-License-Identifier: GPL-2.0-or-later
"""What one task does on a worker: blend the global tiles touching its chunk, keep its pixels.

The tiles go through the unchanged ``blend_tiles`` (see ``plan.py`` for why that makes
the result identical to a single-process run). The task returns its part of the output
as the bytes of a small tiled GeoTIFF (written in GDAL's memory file system), so workers
need no file system shared with the client for the output: only the input raster must be
readable on every worker at the same path (or a GDAL URL such as /vsis3/...).
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from rasterio.io import MemoryFile
from rasterio.windows import Window

from dubai_segmenter.engine.blending import BlendedBlock
from dubai_segmenter.engine.classes import NODATA_CLASS
from dubai_segmenter.engine.distributed.plan import Chunk, ScenePlan, chunk_grid
from dubai_segmenter.engine.geotiff_output import BLOCK_SIZE
from dubai_segmenter.engine.predictors import Predictor
from dubai_segmenter.engine.raster_input import read_window, resampled
from dubai_segmenter.engine.segment import GDAL_CACHE_MB, TileCounter, blend_tiles, block_layers


@contextlib.contextmanager
def open_processing(plan: ScenePlan) -> Iterator[rasterio.DatasetReader]:
    """The raster the tiles are read from: the input, or its resampled copy (same as a local run)."""
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), rasterio.open(plan.input_path) as source:
        if plan.resolution is None:
            yield source
        else:
            with resampled(source, plan.resolution) as processing:
                yield processing


def chunk_blocks(
    plan: ScenePlan, chunk: Chunk, predictor: Predictor, counter: TileCounter | None = None
) -> Iterator[BlendedBlock]:
    """The finished blocks of ``chunk``, cropped to it, in raster coordinates (``counter``
    counts the tiles run and skipped)."""
    local = chunk_grid(plan.grid, chunk)
    with open_processing(plan) as source:

        def window(row: int, col: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
            area = Window(col + local.col_offset, row + local.row_offset, width, height)
            return read_window(source, plan.bands, area)

        for block in blend_tiles(window, plan.scaling.apply, local.grid, predictor, plan.batch_size, counter=counter):
            height, width = block.shape
            top, left = block.row + local.row_offset, block.col + local.col_offset
            first_row, stop_row = max(top, chunk.row), min(top + height, chunk.row + chunk.height)
            first_col, stop_col = max(left, chunk.col), min(left + width, chunk.col + chunk.width)
            if first_row < stop_row and first_col < stop_col:
                sums = block.sums[:, first_row - top : stop_row - top, first_col - left : stop_col - left]
                yield BlendedBlock(first_row, first_col, sums)


def chunk_probabilities(plan: ScenePlan, chunk: Chunk, predictor: Predictor) -> np.ndarray:
    """(height, width, classes) float32 blended probabilities of ``chunk`` (for checks and analysis)."""
    result = np.zeros((chunk.height, chunk.width, len(predictor.metadata.classes)), dtype=np.float32)
    for block in chunk_blocks(plan, chunk, predictor):
        height, width = block.shape
        result[block.row - chunk.row : block.row - chunk.row + height,
               block.col - chunk.col : block.col - chunk.col + width] = block.probabilities()
    return result


@dataclass(frozen=True)
class ChunkResult:
    """A finished chunk: its part GeoTIFF's bytes and who made it (for logs and tests)."""

    chunk: Chunk
    part: bytes
    tiles: int  # tiles this task ran (those on a seam are also run by the neighbour)
    skipped: int  # of those, tiles without a valid pixel (not sent to the model)
    worker_pid: int


def segment_chunk(plan: ScenePlan, chunk: Chunk, predictor: Predictor) -> ChunkResult:
    """Classify ``chunk`` into a tiled, compressed GeoTIFF part (class ids, and confidence if asked)."""
    layers = np.full((2 if plan.confidence else 1, chunk.height, chunk.width), NODATA_CLASS, dtype=np.uint8)
    counter = TileCounter(chunk_grid(plan.grid, chunk).grid.tile_count)
    for block in chunk_blocks(plan, chunk, predictor, counter):
        height, width = block.shape
        rows = slice(block.row - chunk.row, block.row - chunk.row + height)
        cols = slice(block.col - chunk.col, block.col - chunk.col + width)
        class_ids, sure = block_layers(block, plan.confidence)
        layers[0, rows, cols] = class_ids
        if sure is not None:
            layers[1, rows, cols] = sure
    # Placed in pixel units (north-up, as gdalbuildvrt wants), not map units: the VRT of the
    # parts then puts every part at an exact whole-pixel offset, whatever the raster's
    # pixel size. The client gives the joined raster its place on the map.
    profile = dict(
        driver="GTiff", transform=Affine(1, 0, chunk.col, 0, -1, -chunk.row),
        width=chunk.width, height=chunk.height, count=len(layers), dtype="uint8",
        nodata=NODATA_CLASS, tiled=True, blockxsize=BLOCK_SIZE, blockysize=BLOCK_SIZE, compress="deflate",
    )
    with MemoryFile() as memory:
        with memory.open(**profile) as part:
            part.write(layers)
        data = memory.read()
    return ChunkResult(chunk, data, counter.total, counter.skipped, os.getpid())
