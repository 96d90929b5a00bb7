# SPDX-License-Identifier: GPL-2.0-or-later
"""What the client decides once per scene before any task runs: tile grid, scaling, chunks.

Identical results on a cluster come from one rule: every task works on the *global* tile
grid (``TileGrid.for_raster`` of the whole raster) and the *global* input scaling (the
2-98 % stretch of the whole raster for non-8-bit input), both computed here on the
client. A task owns a rectangle of output pixels (a chunk); it runs every global tile
that touches its chunk through the unchanged ``blend_tiles`` and keeps only its own
pixels. Each of those pixels then receives exactly the tiles, the weights and the order
of additions it gets in a single-process run, so the sums are the same floats.

Chunks are whole multiples of the tile stride (``tile - overlap``), about
``DEFAULT_CHUNK`` pixels a side: tiles near a chunk border are computed by both
neighbours, about ``tile / chunk`` of them per axis (12 % at 512 / 8192 over both axes).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from dubai_segmenter.engine.raster_input import BandScaling
from dubai_segmenter.engine.tiling import TileGrid

#: Side of an output chunk (one task) in pixels, before rounding to whole tile strides.
DEFAULT_CHUNK = 8192


@dataclass(frozen=True)
class Chunk:
    """Output pixels [row, row + height) x [col, col + width) of one task."""

    row: int
    col: int
    height: int
    width: int

    @property
    def name(self) -> str:
        return f"r{self.row:07d}-c{self.col:07d}"


def chunk_side(tile_size: int, overlap: int, requested: int = DEFAULT_CHUNK) -> int:
    """``requested`` rounded to the nearest whole number of tile strides (at least one)."""
    stride = tile_size - overlap
    return max(1, round(requested / stride)) * stride


def split_into_chunks(height: int, width: int, side: int) -> tuple[Chunk, ...]:
    """The raster cut into ``side``-pixel squares, row-major; the last row/column are smaller."""
    return tuple(
        Chunk(row, col, min(side, height - row), min(side, width - col))
        for row in range(0, height, side)
        for col in range(0, width, side)
    )


def _touching(origins: tuple[int, ...], tile_size: int, first: int, stop: int) -> tuple[int, ...]:
    return tuple(o for o in origins if o < stop and o + tile_size > first)


@dataclass(frozen=True)
class ChunkGrid:
    """The global tiles touching a chunk, as a grid over the smallest raster window holding them.

    ``grid`` has the global tiles' origins shifted by (``row_offset``, ``col_offset``), and
    the window is clipped to the raster exactly where the global grid is: tiles at the
    raster's edges are reflected the same way, interior tiles are read without padding.
    """

    grid: TileGrid
    row_offset: int
    col_offset: int


def chunk_grid(grid: TileGrid, chunk: Chunk) -> ChunkGrid:
    """The part of the global ``grid`` a task for ``chunk`` runs (see ``ChunkGrid``)."""
    tile = grid.tile_size
    rows = _touching(grid.rows, tile, chunk.row, chunk.row + chunk.height)
    cols = _touching(grid.cols, tile, chunk.col, chunk.col + chunk.width)
    top, left = max(rows[0], 0), max(cols[0], 0)
    bottom, right = min(rows[-1] + tile, grid.height), min(cols[-1] + tile, grid.width)
    local = TileGrid(
        bottom - top, right - left, tile, grid.overlap,
        tuple(r - top for r in rows), tuple(c - left for c in cols),
    )
    return ChunkGrid(local, top, left)


@dataclass(frozen=True)
class ScenePlan:
    """Everything a chunk task needs, small enough to send with every task (no pixels, no model)."""

    input_path: str
    bands: tuple[int, ...]
    scaling: BandScaling
    grid: TileGrid
    chunk_side: int
    batch_size: int
    confidence: bool
    model_sha256: str
    resolution: float | None = None  # tiles run on the input resampled to this (``raster_input.resampled``)

    @property
    def chunks(self) -> tuple[Chunk, ...]:
        return split_into_chunks(self.grid.height, self.grid.width, self.chunk_side)

    def key(self) -> str:
        """A hash of the plan and the input file's identity: finished parts of an earlier run
        are reused only when this matches (same input, model, bands, scaling, tiling, chunks)."""
        stat = os.stat(self.input_path)
        identity = {
            **asdict(self), "input_path": str(Path(self.input_path).resolve()),
            "input_size": stat.st_size, "input_mtime_ns": stat.st_mtime_ns,
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True, default=list).encode()).hexdigest()
