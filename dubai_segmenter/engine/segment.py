# SPDX-License-Identifier: GPL-2.0-or-later
"""The segmentation driver: raster (or array) in, blended per-pixel classes out, streamed.

One loop (``blend_tiles``) serves both entry points, so the training evaluation
(``segment_array``) measures exactly what users get from ``segment_raster``:
tiles are read one window at a time (``tiling``), batched through the predictor,
blended (``blending``) and handed back as finished blocks row by row. Memory depends on
tile size, overlap, batch size and, through the blending carry and the output rows, the
raster's width; never its height. Tiles without a single valid pixel are not sent to
the model.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from dubai_segmenter.engine.blending import BlendedBlock, BlendingAccumulator
from dubai_segmenter.engine.classes import NODATA_CLASS
from dubai_segmenter.engine.geotiff_output import BLOCK_SIZE, ClassifiedRasterWriter, check_output_path
from dubai_segmenter.engine.predictors import Predictor
from dubai_segmenter.engine.progress import CancelCheck, ProgressCallback, check_cancelled, report, sub_progress
from dubai_segmenter.engine.raster_input import (
    BandScaling,
    choose_bands,
    compute_scaling,
    open_raster,
    read_validity,
    read_window,
    resampled,
)
from dubai_segmenter.engine.temporary_names import temporary_folder
from dubai_segmenter.engine.tiling import TileGrid, WindowReader, check_tiling, read_tile

#: GDAL's block cache during a run (MB). Its default, 5 % of RAM, fills with every block read
#: or written and never gives memory back, so the process would grow with the raster's
#: height. Tiles go left to right, so neighbours find the blocks they share still cached;
#: only the next tile row's overlap decodes some blocks a second time.
GDAL_CACHE_MB = 32
#: Share of the progress bar given to inference when a processing resolution adds a
#: second pass (resampling the classes back to the input grid).
INFERENCE_SHARE_WITH_RESAMPLING = 0.9


@dataclass(frozen=True)
class SegmentOptions:
    bands: tuple[int, ...] | None = None  # 1-based; default: first model.input_bands bands
    tile_size: int | None = None  # default: the predictor's
    overlap: int | None = None  # default: model's
    batch_size: int = 1
    resolution: float | None = None  # processing ground resolution (CRS units/pixel)
    confidence: bool = False  # add a second band with the max probability (0..100)


@dataclass
class SegmentResult:
    output_path: Path
    class_pixel_counts: dict[int, int]  # pixels per class id in the output (no-data pixels not counted)
    width: int
    height: int
    seconds: float
    tiles: int = 0  # tiles in the grid (at the processing resolution)
    skipped_tiles: int = 0  # tiles without valid pixels, not sent to the model
    details: dict[str, str] = field(default_factory=dict)  # bands, scaling, tiling: for logs


@dataclass
class TileCounter:
    """Tiles of a run: how many in all, handled so far (progress) and skipped (no valid pixel)."""

    total: int
    done: int = 0
    skipped: int = 0


def blend_tiles(
    read_window_: WindowReader,
    to_input: Callable[[np.ndarray], np.ndarray],
    grid: TileGrid,
    predictor: Predictor,
    batch_size: int = 1,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    counter: TileCounter | None = None,
) -> Iterator[BlendedBlock]:
    """Run every tile of ``grid`` through ``predictor`` and yield blended blocks as they finish.

    ``to_input`` turns a tile's raw pixels (tile, tile, bands) into a new float32 model input.
    Batches may span tile rows, so every call but the last gets ``batch_size`` tiles.

    The model runs one batch ahead in its own thread: while it computes batch k + 1, this
    thread blends batch k, hands its blocks on (the caller writes them) and reads the tiles
    of batch k + 2. The model is the long pole, so reading, blending and writing leave its
    critical path; ONNX Runtime and TensorFlow release the GIL while they compute. Batches
    are predicted and blended in the same order as one thread would, so the output is
    bit-identical. At most two batches are in flight (memory: one extra batch).
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    counter = counter or TileCounter(grid.tile_count)
    accumulator = BlendingAccumulator(grid, len(predictor.metadata.classes))
    pending: list[tuple[np.ndarray | None, np.ndarray | None]] = []
    queued = 0

    def predict(inputs: list[np.ndarray]) -> np.ndarray | None:
        return predictor.predict(np.stack(inputs)) if inputs else None

    def blend(
        batch: list[tuple[np.ndarray | None, np.ndarray | None]], outputs: np.ndarray | None,
    ) -> Iterator[BlendedBlock]:
        results = iter(outputs if outputs is not None else ())
        for item, valid in batch:
            yield from accumulator.add(next(results) if item is not None else None, valid)
        counter.done += len(batch)
        report(progress, counter.done / counter.total, f"tile {counter.done}/{counter.total}")

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="model") as model_thread:
        running: tuple[list, Future] | None = None  # the batch the model is computing

        def submit() -> Iterator[BlendedBlock]:
            nonlocal running, pending
            check_cancelled(cancel)
            batch, pending = pending, []
            started = running
            running = batch, model_thread.submit(predict, [item for item, _ in batch if item is not None])
            if started is not None:
                yield from blend(started[0], started[1].result())

        for k in range(len(grid.rows)):
            check_cancelled(cancel)
            for j in range(len(grid.cols)):
                pixels, tile_valid = read_tile(read_window_, grid, k, j)
                if tile_valid.any():
                    model_input = to_input(pixels)
                    model_input[~tile_valid] = 0
                    pending.append((model_input, None if tile_valid.all() else tile_valid))
                    queued += 1
                else:
                    pending.append((None, None))
                    counter.skipped += 1
                if queued == batch_size or not queued:
                    yield from submit()
                    queued = 0
        if pending:
            yield from submit()
        if running is not None:
            yield from blend(running[0], running[1].result())


def check_predictor(predictor: Predictor, tile_size: int | None, overlap: int | None) -> tuple[int, int]:
    """(tile, overlap) of a run: the options checked against what the predictor was opened for."""
    tile = predictor.tile_size if tile_size is None else tile_size
    if tile != predictor.tile_size:
        raise ValueError(
            f"the predictor was opened for {predictor.tile_size}-pixel tiles, not {tile}; "
            f"open it with tile_size={tile}"
        )
    overlap = predictor.metadata.overlap if overlap is None else overlap
    check_tiling(tile, overlap)
    return tile, overlap


def segment_array(
    image: np.ndarray,
    predictor: Predictor,
    tile_size: int,
    overlap: int,
    batch_size: int = 1,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """(H, W, bands) float32 already scaled -> (H, W, C) float32 blended probabilities.

    Same tiling and blending as ``segment_raster``; pixels where ``valid`` is False get
    all-zero probabilities.
    """
    tile, overlap = check_predictor(predictor, tile_size, overlap)
    image = np.asarray(image, dtype=np.float32)
    bands = predictor.metadata.input_bands
    if image.ndim != 3 or image.shape[2] != bands:
        raise ValueError(f"image must be (height, width, {bands}), got shape {image.shape}")
    height, width = image.shape[:2]
    valid = np.ones((height, width), dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    if valid.shape != (height, width):
        raise ValueError(f"valid mask shape {valid.shape} does not match the image ({height}, {width})")
    grid = TileGrid.for_raster(height, width, tile, overlap)
    result = np.zeros((height, width, len(predictor.metadata.classes)), dtype=np.float32)

    def window(row: int, col: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        return image[row : row + height, col : col + width], valid[row : row + height, col : col + width]

    for block in blend_tiles(window, np.array, grid, predictor, batch_size):
        height, width = block.shape
        result[block.row : block.row + height, block.col : block.col + width] = block.probabilities()
    return result


@dataclass(frozen=True)
class _Inference:
    """What every tile of one run shares, checked once at the start of ``segment_raster``."""

    predictor: Predictor
    bands: tuple[int, ...]
    scaling: BandScaling
    tile: int
    overlap: int
    batch_size: int
    cancel: CancelCheck | None


def _writer_on_grid_of(
    dataset: rasterio.DatasetReader, path: str | os.PathLike, run: _Inference, **options
) -> ClassifiedRasterWriter:
    """A classified-raster writer with ``dataset``'s size, CRS and transform."""
    return ClassifiedRasterWriter(
        path, width=dataset.width, height=dataset.height, crs=dataset.crs, transform=dataset.transform,
        classes=run.predictor.metadata.classes, **options,
    )


def _classify_into(
    dataset: rasterio.DatasetReader, run: _Inference, writer: ClassifiedRasterWriter, progress: ProgressCallback | None
) -> TileCounter:
    """Segment ``dataset`` tile by tile and write each finished band of rows to ``writer``."""
    grid = TileGrid.for_raster(dataset.height, dataset.width, run.tile, run.overlap)
    counter = TileCounter(grid.tile_count)
    confidence = writer.has_confidence
    band_row, band_ids, band_confidence = None, None, None

    def window(row: int, col: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        return read_window(dataset, run.bands, Window(col, row, width, height))

    def write_band() -> None:
        writer.write_rows(band_row, band_ids, band_confidence)

    tiles = blend_tiles(window, run.scaling.apply, grid, run.predictor, run.batch_size, progress, run.cancel, counter)
    for block in tiles:
        height, width = block.shape
        if block.row != band_row:
            if band_row is not None:
                write_band()
            band_row = block.row
            band_ids = np.empty((height, dataset.width), dtype=np.uint8)
            band_confidence = np.empty((height, dataset.width), dtype=np.uint8) if confidence else None
        class_ids, sure = block_layers(block, confidence)
        band_ids[:, block.col : block.col + width] = class_ids
        if confidence:
            band_confidence[:, block.col : block.col + width] = sure
    write_band()
    return counter


def _classify_resampled(
    source: rasterio.DatasetReader,
    resolution: float,
    run: _Inference,
    writer: ClassifiedRasterWriter,
    progress: ProgressCallback | None,
) -> TileCounter:
    """Segment ``source`` resampled to ``resolution`` and write the classes back on its own grid.

    The classes of the processing grid go to a scratch GeoTIFF beside the output first: the
    way back (``_resample_back``) reads them in blocks of the input grid.
    """
    share = INFERENCE_SHARE_WITH_RESAMPLING
    with resampled(source, resolution) as processing, temporary_folder(writer.path) as scratch:
        with _writer_on_grid_of(processing, Path(scratch) / "processing-grid.tif", run,
                                confidence=writer.has_confidence, overviews=False) as processed:
            counter = _classify_into(processing, run, processed, sub_progress(progress, 0.0, share))
            classified = processed.finish()
        _resample_back(classified, source, run.bands, writer, sub_progress(progress, share, 1.0), run.cancel)
    return counter


def block_layers(block: BlendedBlock, confidence: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """The output layers of a finished block: uint8 class ids and, if asked, confidence in
    percent (NODATA_CLASS where there is no data). One rule for every writer of results."""
    class_ids, probability = block.classes()
    if not confidence:
        return class_ids, None
    sure = np.rint(probability * 100).astype(np.uint8)
    sure[class_ids == NODATA_CLASS] = NODATA_CLASS
    return class_ids, sure


def run_details(
    bands: tuple[int, ...], scaling: BandScaling, tile: int, overlap: int, options: SegmentOptions,
) -> dict[str, str]:
    """How a run was made (bands, scaling, tiling, resolution): logged and stored in the output's tags."""
    return {
        "bands": ",".join(map(str, bands)),
        "scaling": scaling.describe(bands),
        "tiling": f"tile {tile}, overlap {overlap}, batch {options.batch_size}",
        "resolution": "input grid" if options.resolution is None else f"{options.resolution:g} CRS units/pixel",
    }


def _resample_back(
    classified: Path,
    source: rasterio.DatasetReader,
    bands: tuple[int, ...],
    writer: ClassifiedRasterWriter,
    progress: ProgressCallback | None,
    cancel: CancelCheck | None,
) -> None:
    """Bring classes made on the processing grid back to the input grid (nearest neighbour),
    blanking pixels the input itself has no data for."""
    confidence = writer.has_confidence
    with rasterio.open(classified) as processed, WarpedVRT(
        processed,
        crs=source.crs,
        transform=source.transform,
        width=source.width,
        height=source.height,
        resampling=Resampling.nearest,
        nodata=NODATA_CLASS,
    ) as back:
        for top in range(0, source.height, BLOCK_SIZE):
            check_cancelled(cancel)
            window = Window(0, top, source.width, min(BLOCK_SIZE, source.height - top))
            layers = back.read(window=window)
            layers[:, ~read_validity(source, bands, window)] = NODATA_CLASS
            writer.write_rows(top, layers[0], layers[1] if confidence else None)
            report(progress, (top + window.height) / source.height, "resampling classes to the input grid")


def segment_raster(
    input_path: str | os.PathLike,
    predictor: Predictor,
    output_path: str | os.PathLike,
    options: SegmentOptions = SegmentOptions(),
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> SegmentResult:
    """Classify every pixel of a georeferenced raster into a styled GeoTIFF on the input's grid.

    Raises RasterInputError / OutputPathError / ValueError for unusable input or options
    (before any model work), Cancelled when ``cancel`` said stop. On any exception the
    output path is left as it was.
    """
    started = time.perf_counter()
    tile, overlap = check_predictor(predictor, options.tile_size, options.overlap)
    if options.batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {options.batch_size}")
    output_path = check_output_path(output_path, input_path)
    metadata = predictor.metadata
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), open_raster(input_path) as source:
        bands = choose_bands(source, options.bands, metadata.input_bands)
        scaling = compute_scaling(source, bands, metadata.input_scale)
        details = run_details(bands, scaling, tile, overlap, options)
        run = _Inference(predictor, bands, scaling, tile, overlap, options.batch_size, cancel)
        tags = {"SEGMENTATION": json.dumps({**details, "model": metadata.architecture})}
        with _writer_on_grid_of(source, output_path, run, confidence=options.confidence, tags=tags) as writer:
            if options.resolution is None:
                counter = _classify_into(source, run, writer, progress)
            else:
                counter = _classify_resampled(source, options.resolution, run, writer, progress)
            check_cancelled(cancel)
            report(progress, 1.0, "writing overviews and class names")
            writer.finish(cancel)
    counts = {c.id: int(writer.class_counts[c.id]) for c in metadata.classes}
    return SegmentResult(
        output_path, counts, source.width, source.height, time.perf_counter() - started,
        counter.total, counter.skipped, details,
    )
